"""The detail layer: what the codec's reconstruction missed, wavelet-coded, for rates above the codes' own.

The codes of a VQ codec buy one operating point per stage; a user who asks for 1% PRDN or 625 bit/s wants a file
that gets there. The detail layer codes the residual ``x - decode(codes)`` of each coded stretch with a wavelet
transform (PyWavelets ``bior4.4``, 6 levels), one dead-zone quantiser ``step`` for every subband, and constriction's
range coder under an adaptive model: per subband and *parent context* (how large the coarser subband's quantised
coefficients are at the same time: the residual is large around each QRS complex at every scale), counts that start
at one and grow by ``GAIN`` per symbol, updated every ``BLOCK`` symbols so that decoding runs a block at a time. The
model needs no table in the file (a 10-s ECG cannot afford one) and uses integers only: decoding is bit-exact on any
machine and thread count, as the codec's own floats never enter it. On MIT-BIH's unseen patients the codes plus this
layer reach a given PRDN with fewer bits than the same wavelet coder applied to the signal itself (the codes carry
the beats; the layer only their details): ``benchmarks.rate_distortion``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tsvq.errors import ConfigError, DataError

MODEL_NAME = "wavelet-detail"
WAVELET = "bior4.4"
LEVELS = 6  # subband classes: 0 the approximation, j = 1..LEVELS the details (1 finest)
ORDER = (0, *range(LEVELS, 0, -1))  # coded coarse to fine: each parent is decoded before its children
ROUNDING = 0.3  # q = sign(c) floor(|c| / step + ROUNDING): a dead zone of 1.4 steps, reconstructed at the bin's middle
BLOCK = 16  # symbols coded with one set of counts; the decoder updates its counts after each block
WARMUP = 1024  # ... except the first symbols of each subband class, counted one by one (most of a 10-s ECG)
GAIN = 8  # count added per observed symbol (against 1 for the unseen): adapts within the first beats
PARENT_EDGES = (1, 3, 6)  # |p[k-1]| + 2|p[k]| + |p[k+1]| of the parent subband -> 4 contexts
CHUNK = 256 * BLOCK  # symbols whose frequencies are made at once (a multiple of BLOCK, as WARMUP is)
MAX_MAGNITUDE = 2**15  # largest |q|: a finer step would code noise far below any ECG's resolution


def _levels(n: int) -> int:
    import pywt

    return min(LEVELS, pywt.dwt_max_level(n, WAVELET))


def _quantise(values: np.ndarray, step: float) -> np.ndarray:
    return (np.sign(values) * np.floor(np.abs(values) / step + ROUNDING)).astype(np.int64)


def _dequantise(q: np.ndarray, step: float) -> np.ndarray:
    return np.sign(q) * (np.abs(q) + 0.5 - ROUNDING) * step


def _classes(n: int) -> list[int]:
    """Subband class of each of ``pywt.wavedec``'s outputs for a signal of ``n`` samples, coarse to fine."""
    levels = _levels(n)
    return [0, *range(levels, 0, -1)]


def _contexts(parent: np.ndarray | None, size: int) -> np.ndarray:
    if parent is None or not len(parent):
        return np.zeros(size, np.int64)
    p = np.abs(parent)
    k = np.minimum(np.arange(size) // 2, len(p) - 1)
    activity = np.roll(p, 1)[k] + 2 * p[k] + np.roll(p, -1)[k]
    return np.digitize(activity, PARENT_EDGES).astype(np.int64)


@dataclass(frozen=True)
class DetailLayer:
    """The residual coder at one quantiser ``step`` (in the pipeline's unit, e.g. mV)."""

    step: float

    def __post_init__(self):
        if not (isinstance(self.step, (int, float)) and np.isfinite(self.step) and self.step > 0):
            raise ConfigError(f"detail step = {self.step!r}: must be a number greater than 0")

    @classmethod
    def rounded(cls, step: float) -> DetailLayer:
        """A step with four significant digits, so that the header stores it in a few bytes."""
        return cls(float(f"{step:.4g}"))

    def describe(self) -> dict:
        return {"model": MODEL_NAME, "step": self.step}

    @classmethod
    def from_description(cls, description, where: str) -> DetailLayer:
        """The layer a file was written with, checked (a forged description is a DataError)."""
        if (
            not isinstance(description, dict)
            or set(description) != {"model", "step"}
            or description["model"] != MODEL_NAME
            or isinstance(description["step"], bool)
            or not isinstance(description["step"], (int, float))
            or not (np.isfinite(description["step"]) and description["step"] > 0)
        ):
            raise DataError(
                f"{where}: header field 'detail' = {str(description)[:80]!r}: expected the '{MODEL_NAME}' model "
                "and a quantiser step above 0"
            )
        return cls(float(description["step"]))

    # ----- the transform ------------------------------------------------------------------------------
    def _quantised(self, residuals: list[np.ndarray]) -> list[list[np.ndarray]]:
        import pywt

        out = []
        for r in residuals:
            bands = pywt.wavedec(np.asarray(r, np.float64), WAVELET, level=_levels(len(r)), mode="periodization")
            out.append([_quantise(band, self.step) for band in bands])
        return out

    def _synthesised(self, quantised: list[list[np.ndarray]], lengths: list[int]) -> list[np.ndarray]:
        import pywt

        return [
            pywt.waverec([_dequantise(q, self.step) for q in bands], WAVELET, mode="periodization")[:n]
            if len(bands) > 1
            else _dequantise(bands[0], self.step)[:n]
            for bands, n in zip(quantised, lengths)
        ]

    def reconstruct(self, residuals: list[np.ndarray]) -> list[np.ndarray]:
        """What ``decode(encode(residuals))`` gives, without coding (to choose a step)."""
        return self._synthesised(self._quantised(residuals), [len(r) for r in residuals])

    # ----- coding --------------------------------------------------------------------------------------
    def encode(self, residuals: list[np.ndarray]) -> bytes:
        """Residual stretches (1-D, any lengths) -> the layer's bytes: each subband class's largest magnitude
        (varint), then the range-coded words."""
        import constriction

        largest, sequences = self._coded(residuals)
        if max(largest) >= MAX_MAGNITUDE:
            raise ConfigError(f"detail step {self.step:g} is too fine for this signal (|q| up to {max(largest)})")
        encoder = constriction.stream.queue.RangeEncoder()
        family = constriction.stream.model.Categorical(perfect=False)
        for c, symbols, contexts in sequences:
            if largest[c] == 0:
                continue  # every symbol is 0: the header's magnitude says it all
            symbols = (symbols + largest[c]).astype(np.int32)
            for start, end, rows in _block_frequencies(symbols, contexts, 2 * largest[c] + 1):
                encoder.encode(symbols[start:end], family, rows)
        words = encoder.get_compressed().astype("<u4").tobytes()
        return b"".join(_varint(m) for m in largest) + words

    def bits(self, residuals: list[np.ndarray]) -> float:
        """The model's code length of ``residuals`` (what ``encode`` writes, give or take a word): to choose a step
        without coding every candidate."""
        largest, sequences = self._coded(residuals)
        total = 8.0 * sum(len(_varint(m)) for m in largest)
        for c, symbols, contexts in sequences:
            shifted = symbols + largest[c]
            for start, end, rows in _block_frequencies(shifted, contexts, 2 * largest[c] + 1) if largest[c] else ():
                total -= float(np.sum(np.log2(rows[np.arange(end - start), shifted[start:end]] / rows.sum(axis=1))))
        return total

    def decode(self, data: bytes, lengths: list[int], where: str) -> list[np.ndarray]:
        """The inverse of ``encode`` for stretches of ``lengths`` samples; damage is a DataError naming ``where``."""
        import constriction
        import pywt

        largest, at = [], 0
        for _ in range(LEVELS + 1):
            value, at = _read_varint(data, at, where)
            if value >= MAX_MAGNITUDE:
                raise DataError(f"{where}: detail layer claims coefficients up to {value}; the file is damaged")
            largest.append(value)
        if (len(data) - at) % 4:
            raise DataError(f"{where}: detail layer of {len(data) - at} bytes is not whole 32-bit words")
        decoder = constriction.stream.queue.RangeDecoder(np.frombuffer(data[at:], "<u4").astype(np.uint32))
        family = constriction.stream.model.Categorical(perfect=False)
        shapes = [[len(b) for b in pywt.wavedec(np.zeros(n), WAVELET, level=_levels(n), mode="periodization")]
                  for n in lengths]  # fmt: skip
        quantised = [[np.zeros(size, np.int64) for size in sizes] for sizes in shapes]
        for c in ORDER:
            members = _members(lengths, c)
            if not members or largest[c] == 0:
                continue
            contexts = np.concatenate([_parent_contexts(quantised[i], b) for i, b in members])
            symbols = _decode_blocks(decoder, family, contexts, 2 * largest[c] + 1, where) - largest[c]
            bounds = np.cumsum([0] + [shapes[i][b] for i, b in members])
            for (i, b), start, end in zip(members, bounds[:-1], bounds[1:]):
                quantised[i][b] = symbols[start:end]
        return self._synthesised(quantised, lengths)

    def _coded(self, residuals: list[np.ndarray]) -> tuple[list[int], list[tuple[int, np.ndarray, np.ndarray]]]:
        """What ``encode`` writes, before range coding: each subband class's largest magnitude (0 for a class no
        stretch has) and, per class present, coarse to fine, the symbols of every stretch in order and their
        contexts."""
        quantised, lengths = self._quantised(residuals), [len(r) for r in residuals]
        largest, sequences = [0] * (LEVELS + 1), []
        for c in ORDER:
            members = _members(lengths, c)
            if members:
                symbols = np.concatenate([quantised[i][b] for i, b in members])
                contexts = np.concatenate([_parent_contexts(quantised[i], b) for i, b in members])
                largest[c] = int(np.abs(symbols).max(initial=0))
                sequences.append((c, symbols, contexts))
        return largest, sequences


def _members(lengths: list[int], c: int) -> list[tuple[int, int]]:
    """``(stretch, subband)`` of every stretch's subband of class ``c``, in order."""
    return [(i, b) for i, n in enumerate(lengths) for b, cls in enumerate(_classes(n)) if cls == c]


def _parent_contexts(bands: list[np.ndarray], b: int) -> np.ndarray:
    """Contexts of subband ``b`` of one stretch: its parent is the detail one level coarser (the coarsest detail and
    the approximation have none)."""
    return _contexts(bands[b - 1] if b >= 2 else None, len(bands[b]))


def _block_frequencies(symbols: np.ndarray, contexts: np.ndarray, size: int):
    """Chunks ``(start, end, rows)`` of the ``(n, size)`` float64 frequencies (exact integers) each symbol is coded
    with: 1 + GAIN x how often each value occurred in the same context in earlier blocks. Chunked, so that a
    long record's rows never sit in memory at once."""
    counts = np.ones((len(PARENT_EDGES) + 1, size), np.int64)
    for start in range(0, len(symbols), CHUNK):
        s, c = symbols[start : start + CHUNK], contexts[start : start + CHUNK]
        block = _block_ids(np.arange(start, start + len(s)))
        block -= block[0]
        seen = np.zeros((block[-1] + 2, *counts.shape), np.int64)
        np.add.at(seen, (block + 1, c, s), GAIN)
        before = counts + np.cumsum(seen, axis=0)  # before[b]: counts after the blocks ahead of b
        yield start, start + len(s), before[block, c].astype(np.float64)
        counts = before[-1]


def _block_ids(positions: np.ndarray) -> np.ndarray:
    """Which block each position of a class's sequence is in: one per symbol for the first WARMUP, then BLOCK."""
    return np.where(positions < WARMUP, positions, WARMUP + (positions - WARMUP) // BLOCK)


def _decode_blocks(decoder, family, contexts: np.ndarray, size: int, where: str) -> np.ndarray:
    counts = np.ones((len(PARENT_EDGES) + 1, size), np.int64)
    out = np.zeros(len(contexts), np.int64)
    starts = [*range(min(WARMUP, len(contexts))), *range(WARMUP, len(contexts), BLOCK), len(contexts)]
    for start, end in zip(starts[:-1], starts[1:]):
        ctx = contexts[start:end]
        try:
            symbols = np.asarray(decoder.decode(family, counts[ctx].astype(np.float64)), np.int64)
        except Exception as error:  # constriction refuses data no encoder wrote
            raise DataError(f"{where}: detail layer is damaged ({error})") from error
        np.add.at(counts, (ctx, symbols), GAIN)
        out[start:end] = symbols
    return out


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _read_varint(data: bytes, at: int, where: str) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if at >= len(data) or shift > 28:
            raise DataError(f"{where}: detail layer is cut short")
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at, shift = at + 1, shift + 7
        if not byte & 0x80:
            return value, at
