"""Entropy coding of code sequences: an adaptive context model and constriction's range coder.

The VQ-VAE's ELBO makes -log2 p(z) under a model of the codes the rate they can be stored at. The model here learns
each recording as it is coded, which suits biosignals: a patient's beats repeat, so the code that followed a code
before is likely to follow it again. For each stream (and residual stage) it counts ``n(a, b)``, how often code
``b`` followed code ``a`` so far, and ``m(b)``, how often ``b`` occurred:

    p(b | a) = (g n(a, b) + c q(b)) / (g n(a) + c),   q(b) = (m(b) + 1) / (m + K)

with ``g`` (gain) and ``c`` (back-off) fixed integers. Every probability is a ratio of integers, so encoder and
decoder compute the very same numbers on any machine and thread count; constriction's range coder quantises them
in fixed point. The model needs no weights: any pipeline's codes are coded with it, and a file names the settings
it was written with.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from tsvq.errors import DataError

MODEL_NAME = "adaptive-context"
CHUNK = 1024  # frequency rows built and coded at once (1024 x K float64)


@dataclass(frozen=True)
class ContextModel:
    """The adaptive order-1 model with an adaptive order-0 back-off, over ``num_codes`` symbols."""

    num_codes: int
    gain: int = 16  # weight of one observed (previous, next) pair against the back-off
    backoff: int = 1024  # weight of the order-0 estimate; measured best of 256-16384 on MIT-BIH records

    def describe(self) -> dict:
        return {"model": MODEL_NAME, **asdict(self)}

    @classmethod
    def from_description(cls, description, where: str) -> ContextModel:
        """The model a file was written with, checked (a forged description is a DataError)."""
        keys = {"model", "num_codes", "gain", "backoff"}
        if not isinstance(description, dict) or set(description) != keys or description["model"] != MODEL_NAME:
            raise DataError(
                f"{where}: header field 'entropy' = {str(description)[:80]!r}: expected the settings of "
                f"the '{MODEL_NAME}' model"
            )
        values = {k: description[k] for k in keys - {"model"}}
        limits = {"num_codes": (2, 2**24), "gain": (1, 2**16), "backoff": (1, 2**24)}
        for name, (low, high) in limits.items():
            value = values[name]
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise DataError(
                    f"{where}: entropy model setting '{name}' = {value!r}: expected an integer in [{low}, {high}]"
                )
        return cls(**values)


class Counts:
    """What the model has seen of one sequence so far: ``n(a, b)`` per previous code ``a`` (a row is made on first
    use), ``m(b)`` and their total."""

    def __init__(self, model: ContextModel):
        self.model = model
        self.pairs: dict[int, np.ndarray] = {}
        self.singles = np.zeros(model.num_codes, np.int64)
        self.seen = 0
        self.previous: int | None = None

    def frequencies(self) -> np.ndarray:
        """``(K,)`` float64 frequencies (exact integers) the next code is coded with."""
        back_off = (self.singles + 1).astype(np.float64)
        if self.previous is None:
            return back_off
        row = self.model.backoff * back_off
        pairs = self.pairs.get(self.previous)
        if pairs is not None:  # products stay below 2**53: exact in float64
            row += (self.model.gain * (self.seen + self.model.num_codes)) * pairs
        return row

    def observe(self, code: int) -> None:
        if self.previous is not None:
            self.pairs.setdefault(self.previous, np.zeros(self.model.num_codes, np.int64))[code] += 1
        self.singles[code] += 1
        self.seen += 1
        self.previous = code


def encode(streams: list[list[np.ndarray]], model: ContextModel) -> tuple[bytes, float]:
    """The codes of each stream (a list of segments' codes, ``(n,)`` or ``(n, Q)``) -> range-coded bytes and the
    model's own code length in bits (what an ideal coder would write). A stream's counts carry across its
    segments (one patient's beats), each residual stage with its own."""
    import constriction

    encoder = constriction.stream.queue.RangeEncoder()
    family = constriction.stream.model.Categorical(perfect=False)
    model_bits = 0.0
    for stream in streams:
        stages = stream[0].shape[1] if stream and stream[0].ndim == 2 else 1
        for stage in range(stages):
            sequence = np.concatenate([c[:, stage] if c.ndim == 2 else c for c in stream]).astype(np.int32)
            counts = Counts(model)  # one stream's stage
            for start in range(0, len(sequence), CHUNK):
                chunk, rows = sequence[start : start + CHUNK], []
                for code in chunk:
                    rows.append(counts.frequencies())
                    model_bits -= np.log2(rows[-1][code] / rows[-1].sum())
                    counts.observe(int(code))
                encoder.encode(chunk, family, np.stack(rows))
    return encoder.get_compressed().astype("<u4").tobytes(), float(model_bits)


def decode(
    payload: bytes, stream_lengths: list[list[int]], stages: int, residual: bool, model: ContextModel, where: str
) -> list[list[np.ndarray]]:
    """The inverse of ``encode``: codes per stream and segment, ``(n, stages)`` for a residual codec, else ``(n,)``."""
    import constriction

    if len(payload) % 4:
        raise DataError(f"{where}: entropy-coded payload of {len(payload)} bytes is not whole 32-bit words")
    decoder = constriction.stream.queue.RangeDecoder(np.frombuffer(payload, dtype="<u4").astype(np.uint32))
    family = constriction.stream.model.Categorical(perfect=False)
    out = []
    for lengths in stream_lengths:
        total = sum(lengths)
        decoded = np.zeros((total, stages), np.int64)
        for stage in range(stages):
            counts = Counts(model)  # one stream's stage
            for position in range(total):
                try:
                    code = int(decoder.decode(family, counts.frequencies()[None])[0])
                except Exception as error:  # constriction refuses data that no encoder wrote
                    raise DataError(f"{where}: entropy-coded payload is damaged ({error})") from error
                decoded[position, stage] = code
                counts.observe(code)
        bounds = np.cumsum([0, *lengths])
        out.append([decoded[a:b] if residual else decoded[a:b, 0] for a, b in zip(bounds[:-1], bounds[1:])])
    return out
