"""The detail layer: what the codec's reconstruction missed, wavelet-coded, for rates above the codes' own.

The codes of a VQ codec buy one operating point per stage; a user who asks for 1% PRDN or 625 bit/s wants a file
that gets there. The detail layer codes the residual ``x - decode(codes)`` of each coded stretch with a wavelet
transform (PyWavelets ``bior4.4``, 6 levels), one dead-zone quantiser ``step`` for every subband, and constriction's
range coder under an adaptive model (``tsvq.adaptive_coding``): per subband and *parent context* (how large the
coarser subband's quantised coefficients are at the same time: the residual is large around each QRS complex at
every scale), counts that start at one and grow with every symbol. The model needs no table in the file (a 10-s
ECG cannot afford one) and uses integer counts only: decoding is bit-exact on any machine and thread count, as the
codec's own floats never enter it. Without codes, an ECG's layer can subtract beat templates first
(``tsvq.beats``, file format 5): the wavelet coder then codes only what changes from beat to beat. On MIT-BIH's
unseen patients the codes plus this layer, or the templates plus this layer at low rates, reach a given PRDN with
fewer bits than the same wavelet coder applied to the signal itself: ``benchmarks.rate_distortion``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tsvq.adaptive_coding import GAIN, decode_blocks, encode_blocks, read_varint, varint
from tsvq.beats import BeatFit, decode_side
from tsvq.errors import ConfigError, DataError

MODEL_NAME = "wavelet-detail"
WAVELET = "bior4.4"
LEVELS = 6  # subband classes: 0 the approximation, j = 1..LEVELS the details (1 finest)
ORDER = (0, *range(LEVELS, 0, -1))  # coded coarse to fine: each parent is decoded before its children
ROUNDING = 0.3  # q = sign(c) floor(|c| / step + ROUNDING): a dead zone of 1.4 steps, reconstructed at the bin's middle
PARENT_EDGES = (1, 3, 6)  # |p[k-1]| + 2|p[k]| + |p[k+1]| of the parent subband -> 4 contexts
CONTEXTS = len(PARENT_EDGES) + 1
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
    """The residual coder at one quantiser ``step`` (in the pipeline's unit, e.g. mV); ``beats``: beat templates
    (``tsvq.beats``) are subtracted before the wavelet coding (file format 5)."""

    step: float
    beats: bool = False

    def __post_init__(self):
        if not (isinstance(self.step, (int, float)) and np.isfinite(self.step) and self.step > 0):
            raise ConfigError(f"detail step = {self.step!r}: must be a number greater than 0")

    @classmethod
    def rounded(cls, step: float, beats: bool = False) -> DetailLayer:
        """A step with four significant digits, so that the header stores it in a few bytes."""
        return cls(float(f"{step:.4g}"), beats)

    def describe(self) -> dict:
        return {"model": MODEL_NAME, "step": self.step} | ({"beats": True} if self.beats else {})

    @classmethod
    def from_description(cls, description, where: str, beats: bool = False) -> DetailLayer:
        """The layer a file was written with, checked (a forged description is a DataError); ``beats``: the file's
        format says it has beat templates."""
        keys = {"model", "step"} | ({"beats"} if beats else set())
        if (
            not isinstance(description, dict)
            or set(description) != keys
            or description["model"] != MODEL_NAME
            or isinstance(description["step"], bool)
            or not isinstance(description["step"], (int, float))
            or not (np.isfinite(description["step"]) and description["step"] > 0)
            or (beats and description["beats"] is not True)
        ):
            raise DataError(
                f"{where}: header field 'detail' = {str(description)[:80]!r}: expected the '{MODEL_NAME}' model, "
                f"a quantiser step above 0{' and beats true' if beats else ''}"
            )
        return cls(float(description["step"]), beats)

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

    def reconstruct(self, residuals: list[np.ndarray], beats: BeatFit | None = None) -> list[np.ndarray]:
        """What ``decode(encode(residuals, beats))`` gives, without coding (to choose a step)."""
        self._check_beats(beats)
        if beats is None:
            return self._reconstructed(residuals)
        predictions, rest = self._predicted(residuals, beats)
        return [r + p for r, p in zip(self._reconstructed(rest), predictions)]

    def _reconstructed(self, residuals: list[np.ndarray]) -> list[np.ndarray]:
        return self._synthesised(self._quantised(residuals), [len(r) for r in residuals])

    def _predicted(self, residuals: list[np.ndarray], beats: BeatFit) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """What the templates, as this step codes them, predict of each stretch, and what is left to wavelet-code."""
        predictions = beats.predictions(self._reconstructed(beats.templates()), [len(r) for r in residuals])
        return predictions, [r - p for r, p in zip(residuals, predictions)]

    def _check_beats(self, beats: BeatFit | None) -> None:
        if self.beats != (beats is not None):
            raise ConfigError(f"a detail layer {'with' if self.beats else 'without'} beat templates was given "
                              f"{'none' if beats is None else 'some'}")  # fmt: skip

    # ----- coding --------------------------------------------------------------------------------------
    def encode(self, residuals: list[np.ndarray], beats: BeatFit | None = None) -> bytes:
        """Residual stretches (1-D, any lengths) -> the layer's bytes. With ``beats``: their side information and
        the wavelet-coded templates (each with its length as a varint) ahead of the wavelet-coded rest."""
        self._check_beats(beats)
        if beats is None:
            return self._encoded(residuals)
        side, coded_templates = beats.side_bytes(), self._encoded(beats.templates())
        rest = self._encoded(self._predicted(residuals, beats)[1])
        return varint(len(side)) + side + varint(len(coded_templates)) + coded_templates + rest

    def decode(self, data: bytes, lengths: list[int], where: str) -> list[np.ndarray]:
        """The inverse of ``encode`` for stretches of ``lengths`` samples; damage is a DataError naming ``where``."""
        if not self.beats:
            return self._decoded(data, lengths, where)
        parts, at = [], 0
        for _ in range(2):
            size, at = read_varint(data, at, where)
            if at + size > len(data):
                raise DataError(f"{where}: detail layer is cut short")
            parts.append(data[at : at + size])
            at += size
        beats = decode_side(parts[0], lengths, where)
        templates = self._decoded(parts[1], [beats.length] * len(beats.templates()), where)
        predictions = beats.predictions(templates, lengths)
        return [r + p for r, p in zip(self._decoded(data[at:], lengths, where), predictions)]

    def _encoded(self, residuals: list[np.ndarray]) -> bytes:
        """The wavelet coding of stretches: each subband class's largest magnitude (varint), then the range-coded
        words."""
        import constriction

        largest, sequences = self._coded(residuals)
        if max(largest) >= MAX_MAGNITUDE:
            raise ConfigError(f"detail step {self.step:g} is too fine for this signal (|q| up to {max(largest)})")
        encoder = constriction.stream.queue.RangeEncoder()
        for c, symbols, contexts in sequences:
            if largest[c] == 0:
                continue  # every symbol is 0: the header's magnitude says it all
            encode_blocks(encoder, symbols + largest[c], contexts, 2 * largest[c] + 1, CONTEXTS)
        words = encoder.get_compressed().astype("<u4").tobytes()
        return b"".join(varint(m) for m in largest) + words

    def estimated_bits(self, residuals: list[np.ndarray], beats: BeatFit | None = None) -> float:
        """About what ``encode`` writes, in bits, from each context's counts alone (the code length of counts
        updated after every symbol, order aside): a step for a rate is found on this, then checked by coding."""
        self._check_beats(beats)
        if beats is None:
            return self._estimated(residuals)
        rest = self._estimated(self._predicted(residuals, beats)[1])
        return 8 * (len(beats.side_bytes()) + 4) + self._estimated(beats.templates()) + rest

    def _estimated(self, residuals: list[np.ndarray]) -> float:
        from scipy.special import gammaln

        largest, sequences = self._coded(residuals)
        nats, prior = 0.0, 1.0 / GAIN  # a count of 1 against GAIN per symbol: a Dirichlet prior of 1/GAIN
        for c, symbols, contexts in sequences:
            size = 2 * largest[c] + 1
            if size == 1:
                continue
            counts = np.bincount(contexts * size + symbols + largest[c], minlength=CONTEXTS * size)
            counts = counts.reshape(CONTEXTS, size)
            seen = counts.sum(axis=1)
            nats += float(np.sum(gammaln(seen + size * prior) - gammaln(size * prior)))
            nats -= float(np.sum(gammaln(counts + prior) - gammaln(prior)))
        return 8.0 * (sum(len(varint(m)) for m in largest) + 4) + nats / np.log(2)

    def _decoded(self, data: bytes, lengths: list[int], where: str) -> list[np.ndarray]:
        import constriction
        import pywt

        largest, at = [], 0
        for _ in range(LEVELS + 1):
            value, at = read_varint(data, at, where)
            if value >= MAX_MAGNITUDE:
                raise DataError(f"{where}: detail layer claims coefficients up to {value}; the file is damaged")
            largest.append(value)
        if (len(data) - at) % 4:
            raise DataError(f"{where}: detail layer of {len(data) - at} bytes is not whole 32-bit words")
        decoder = constriction.stream.queue.RangeDecoder(np.frombuffer(data[at:], "<u4").astype(np.uint32))
        shapes = [[len(b) for b in pywt.wavedec(np.zeros(n), WAVELET, level=_levels(n), mode="periodization")]
                  for n in lengths]  # fmt: skip
        quantised = [[np.zeros(size, np.int64) for size in sizes] for sizes in shapes]
        for c in ORDER:
            members = _members(lengths, c)
            if not members or largest[c] == 0:
                continue
            contexts = np.concatenate([_parent_contexts(quantised[i], b) for i, b in members])
            symbols = decode_blocks(decoder, contexts, 2 * largest[c] + 1, CONTEXTS, where) - largest[c]
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
