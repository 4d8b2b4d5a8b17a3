"""Beat templates: the long-term prediction the detail layer subtracts from an ECG before its wavelet coding.

Why: at low rates a wavelet coder spends most of its bits on the QRS complexes, and these repeat nearly unchanged
from beat to beat. Subtracting a template beat (the median of the beats like it) at every R peak leaves the wavelet
coder only what changes from beat to beat. The file pays for the templates (up to ``MAX_TEMPLATES`` per stretch,
wavelet-coded by the layer itself), each beat's position (the change of its RR interval, in a few bits) and its
template (or none, for a beat no template fits), range-coded under adaptive models (no table in the file). Beats
come from the encoder (``tsvq.compression`` finds R peaks with wfdb's XQRS); the decoder needs no detector, only
the positions the file gives. Measured on MIT-BIH DS2 (``benchmarks.rate_distortion``): at 150 and 312.5 bit/s
the shipped pipeline's files reach 5.15 and 2.11% PRDN with them, 7.32 and 2.54% without.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tsvq.adaptive_coding import BLOCK, GAIN, WARMUP, decode_blocks, encode_blocks, read_varint, varint
from tsvq.errors import DataError

MAX_TEMPLATES = 4  # templates per stretch: normal beats, ventricular beats, ... (6: the same PRDN on DS1)
MIN_BEATS = 4  # fewer beats in a stretch: no templates (they would cost more than they save)
BEFORE_S, AFTER_S = 0.2, 0.4  # a template around its R peak: P wave to T wave (MIT-BIH DS1, 22 training patients,
# 150 bit/s: PRDN 5.08% against 5.19% for 0.24 / 0.46 s, 5.12-5.16% for 0.18 / 0.42 and 0.22 / 0.38)
CLUSTER_ROUNDS = 3  # assign each beat to its nearest template (or none), re-estimate the medians, again
SPLIT_QUANTILE = 90  # a new template is the median of the beats its predecessors fit worst
CATEGORIES = 34  # an integer's bit length after zigzag (0 .. 33), coded adaptively; the bits below it are uniform
MANTISSA_CHUNK = 16  # bits of a value below its leading one coded as one uniform symbol
NONE, OWN, SHARED = 0, 1, 2  # a stretch's beats: none, its own positions, the previous stretch's (another lead)


@dataclass
class StretchBeats:
    """The beats of one stretch: their sample ``positions`` (sorted), the template of each (``which``; -1: none)
    and the ``templates`` ``(K, length)``; ``shared``: the positions are the previous stretch's."""

    positions: np.ndarray
    which: np.ndarray
    templates: np.ndarray
    shared: bool = False


@dataclass
class BeatFit:
    """Every stretch's beats (None: a stretch without) and the window of a template: ``before`` samples ahead of
    its beat's position, ``length`` in all."""

    before: int
    length: int
    stretches: list[StretchBeats | None]
    _side: bytes | None = field(default=None, repr=False)

    def templates(self) -> list[np.ndarray]:
        """Every template, stretch by stretch: what the detail layer wavelet-codes ahead of the residuals."""
        return [t for s in self.stretches if s is not None for t in s.templates]

    def side_bytes(self) -> bytes:
        """Positions and template choices, coded (once: they do not depend on the layer's step)."""
        if self._side is None:
            self._side = encode_side(self)
        return self._side

    def predictions(self, coded_templates: list[np.ndarray], lengths: list[int]) -> list[np.ndarray]:
        """What the (coded) templates predict of each stretch: zero where it has no beats."""
        out, at = [], 0
        for s, n in zip(self.stretches, lengths):
            if s is None:
                out.append(np.zeros(n))
                continue
            k = len(s.templates)
            out.append(predict(n, s.positions, s.which, coded_templates[at : at + k], self.before))
            at += k
        return out


def window(rate_hz: float) -> tuple[int, int]:
    """A template's samples ahead of its beat and in all, at ``rate_hz``."""
    before = int(round(BEFORE_S * rate_hz))
    return before, before + int(round(AFTER_S * rate_hz))


def beat_matrix(x: np.ndarray, positions: np.ndarray, before: int, length: int) -> np.ndarray:
    """``(beats, length)``: the signal around each position, zero beyond its ends."""
    padded = np.concatenate([np.zeros(length), x, np.zeros(length)])
    starts = positions - before + length
    return padded[starts[:, None] + np.arange(length)[None, :]]


def predict(n: int, positions: np.ndarray, which: np.ndarray, templates: list[np.ndarray], before: int) -> np.ndarray:
    """The templates placed at their beats, each cut at the midpoints to its neighbours (beats closer than a template
    is long do not add up)."""
    out = np.zeros(n)
    if not len(positions):
        return out
    length = len(templates[0]) if templates else 0
    mids = np.concatenate([[0], (positions[1:] + positions[:-1]) // 2, [n]])
    for i, (p, k) in enumerate(zip(positions, which)):
        if k < 0:
            continue
        a, b = max(p - before, mids[i], 0), min(p - before + length, mids[i + 1], n)
        if a < b:
            out[a:b] += templates[k][a - (p - before) : b - (p - before)]
    return out


def fit_stretch(residual: np.ndarray, positions: np.ndarray, before: int, length: int) -> StretchBeats | None:
    """Templates for one stretch's beats: the median beat, then up to ``MAX_TEMPLATES - 1`` more, each the median
    of the beats the others fit worst; then each beat to its nearest template or to none (where subtracting any
    would add energy) and the medians again."""
    positions = np.unique(np.asarray(positions, np.int64))
    positions = positions[(positions >= 0) & (positions < len(residual))]
    if len(positions) < MIN_BEATS:
        return None
    beats = beat_matrix(residual, positions, before, length)
    templates = [np.median(beats, axis=0)]
    for _ in range(MAX_TEMPLATES - 1):
        error = np.min([np.sum((beats - t) ** 2, axis=1) for t in templates], axis=0)
        worst = error > np.percentile(error, SPLIT_QUANTILE)
        if worst.sum() < MIN_BEATS:
            break
        templates.append(np.median(beats[worst], axis=0))
    for _ in range(CLUSTER_ROUNDS):
        which = _nearest(beats, templates)
        used = [k for k in range(len(templates)) if np.any(which == k)]
        templates = [np.median(beats[which == k], axis=0) for k in used]
        if not templates:
            return None
    which = _nearest(beats, templates)
    return StretchBeats(positions, which, np.array(templates))


def _nearest(beats: np.ndarray, templates: list[np.ndarray]) -> np.ndarray:
    errors = np.array([np.sum((beats - t) ** 2, axis=1) for t in templates] + [np.sum(beats**2, axis=1)])
    which = errors.argmin(axis=0)
    return np.where(which == len(templates), -1, which).astype(np.int64)


def fit(residuals: list[np.ndarray], anchors: list[np.ndarray | None], rate_hz: float) -> BeatFit | None:
    """Templates for every stretch whose ``anchors`` (beat positions) are given; the same array object for
    consecutive stretches (the leads of one stream) is coded once. None where no stretch has beats."""
    before, length = window(rate_hz)
    stretches, previous, previous_length = [], None, 0
    for r, a in zip(residuals, anchors):
        s = fit_stretch(r, a, before, length) if a is not None else None
        if s is not None and stretches and stretches[-1] is not None and a is previous and len(r) == previous_length:
            s.shared = True  # the same anchors and length give the same positions: the decoder reuses them
        stretches.append(s)
        previous, previous_length = a, len(r)
    if all(s is None for s in stretches):
        return None
    return BeatFit(before, length, stretches)


# ----- the side information: positions and template choices ---------------------------------------------------
def _zigzag(v: np.ndarray) -> np.ndarray:
    return np.where(v >= 0, 2 * v, -2 * v - 1).astype(np.int64)


def _unzigzag(u: np.ndarray) -> np.ndarray:
    return np.where(u % 2 == 0, u // 2, -(u + 1) // 2).astype(np.int64)


def _position_values(positions: np.ndarray) -> np.ndarray:
    """The first position, the first RR interval, then each RR interval's change: small numbers in sinus rhythm."""
    intervals = np.diff(positions)
    return np.concatenate([positions[:1], intervals[:1], np.diff(intervals)]).astype(np.int64)


def _positions(values: np.ndarray) -> np.ndarray:
    intervals = np.cumsum(values[1:])
    return np.concatenate([values[:1], values[0] + np.cumsum(intervals)]).astype(np.int64)


def encode_side(beats: BeatFit) -> bytes:
    """``before``, ``length`` and one byte per stretch (mode x 8 + templates) and its beat count as varints, then
    range-coded: every position value's bit length (adaptive), the bits below it (uniform), every beat's template
    (adaptive, in the context of the beat before's)."""
    import constriction

    head = varint(beats.before) + varint(beats.length)
    values, which = [], []
    for s in beats.stretches:
        if s is None:
            head += bytes([NONE * 8])
            continue
        head += bytes([(SHARED if s.shared else OWN) * 8 + len(s.templates)])
        if not s.shared:
            head += varint(len(s.positions))
            values.append(_position_values(s.positions))
        which.append(s.which + 1)
    encoder = constriction.stream.queue.RangeEncoder()
    if values:
        u = _zigzag(np.concatenate(values))
        categories = np.array([int(v).bit_length() for v in u], np.int64)
        encode_blocks(encoder, categories, np.zeros(len(u), np.int64), CATEGORIES, 1)
        mantissas = u - np.where(categories > 0, 1 << np.maximum(categories - 1, 0), 0)
        for chosen, shift, bits in _mantissa_chunks(categories):
            if not len(bits):
                continue
            chunk = (mantissas[chosen] >> shift) & ((1 << bits) - 1)
            encoder.encode(chunk.astype(np.int32), constriction.stream.model.Uniform(), (1 << bits).astype(np.int32))
    symbols = np.concatenate(which)
    contexts = np.concatenate([[0], symbols[:-1]])
    encode_blocks(encoder, symbols, contexts, MAX_TEMPLATES + 1, MAX_TEMPLATES + 1)
    return head + encoder.get_compressed().astype("<u4").tobytes()


def _mantissa_chunks(categories: np.ndarray) -> list[tuple[np.ndarray, int, np.ndarray]]:
    """``(values, shift, bits)`` of each uniform chunk of the bits below each value's leading one: the lowest
    ``MANTISSA_CHUNK``, then the rest (constriction's uniform model holds fewer than 2**24 values)."""
    below = np.maximum(categories - 1, 0)
    low = np.minimum(below, MANTISSA_CHUNK)
    return [(low > 0, 0, low[low > 0]), (below > low, MANTISSA_CHUNK, (below - low)[below > low])]


MAX_TEMPLATE_LENGTH = 1 << 16  # samples: a template of a few seconds at any rate a pipeline runs at


def decode_side(data: bytes, lengths: list[int], where: str) -> BeatFit:
    """The inverse of ``encode_side`` for stretches of ``lengths`` samples: the beats with templates of zeros (the
    detail layer decodes them next); anything inconsistent is a DataError naming ``where``."""
    import constriction

    def damaged(what: str) -> DataError:
        return DataError(f"{where}: detail layer's beat templates are damaged ({what})")

    before, at = read_varint(data, 0, where)
    length, at = read_varint(data, at, where)
    if not 0 < length <= MAX_TEMPLATE_LENGTH or before >= length:
        raise damaged(f"a template of {length} samples, {before} ahead of its beat")
    modes, counts = [], []
    for n in lengths:
        if at >= len(data):
            raise damaged("cut short")
        mode, k = divmod(data[at], 8)
        at += 1
        if mode not in (NONE, OWN, SHARED) or (mode == NONE) != (k == 0) or k > MAX_TEMPLATES:
            raise damaged(f"stretch mode {mode} with {k} templates")
        if mode == SHARED and (not modes or modes[-1][0] == NONE or modes[-1][2] != n):
            raise damaged("a stretch shares positions no stretch before it has")
        count = 0
        if mode == OWN:
            count, at = read_varint(data, at, where)
            if not MIN_BEATS <= count <= n:
                raise damaged(f"{count} beats in a stretch of {n} samples")
            counts.append(count)
        modes.append((mode, k, n, modes[-1][3] if mode == SHARED else count))
    if (len(data) - at) % 4:
        raise damaged("not whole 32-bit words")
    decoder = constriction.stream.queue.RangeDecoder(np.frombuffer(data[at:], "<u4").astype(np.uint32))
    total = sum(counts)
    values = np.zeros(0, np.int64)
    if total:
        categories = decode_blocks(decoder, np.zeros(total, np.int64), CATEGORIES, 1, where)
        mantissas = np.zeros(total, np.int64)
        for chosen, shift, bits in _mantissa_chunks(categories):
            if len(bits):
                try:
                    chunk = decoder.decode(constriction.stream.model.Uniform(), (1 << bits).astype(np.int32))
                except Exception as error:  # constriction refuses data no encoder wrote
                    raise damaged(str(error)) from error
                mantissas[chosen] |= np.asarray(chunk, np.int64) << shift
        u = np.where(categories > 0, 1 << np.maximum(categories - 1, 0), 0) + mantissas
        values = _unzigzag(u)
    beat_counts = [m[3] for m in modes if m[0] != NONE]
    which = _decode_which(decoder, sum(beat_counts), where)
    stretches, v_at, w_at, positions = [], 0, 0, None
    for mode, k, n, count in modes:
        if mode == NONE:
            stretches.append(None)
            continue
        if mode == OWN:
            positions = _positions(values[v_at : v_at + count])
            v_at += count
            if np.any(np.diff(positions) <= 0) or positions[0] < 0 or positions[-1] >= n:
                raise damaged("beat positions out of order or outside their stretch")
        w = which[w_at : w_at + count] - 1
        w_at += count
        if np.any(w >= k):
            raise damaged(f"a beat's template beyond the stretch's {k}")
        stretches.append(StretchBeats(positions, w, np.zeros((k, length)), shared=mode == SHARED))
    return BeatFit(before, length, stretches)


def _decode_which(decoder, count: int, where: str) -> np.ndarray:
    """Template choices, one by one (each in the context of the one before): a few thousand per record."""
    import constriction

    family = constriction.stream.model.Categorical(perfect=False)
    size = MAX_TEMPLATES + 1
    counts = np.ones((size, size), np.int64)
    out, previous = np.zeros(count, np.int64), 0
    i = 0
    while i < count:
        end = i + 1 if i < WARMUP else min(i + BLOCK, count)
        # within a block the contexts are the previous symbols: decode one at a time, counts updated per block
        block = []
        for _ in range(end - i):
            try:
                (symbol,) = decoder.decode(family, counts[previous][None, :].astype(np.float64))
            except Exception as error:
                raise DataError(f"{where}: detail layer's beat templates are damaged ({error})") from error
            block.append((previous, int(symbol)))
            previous = int(symbol)
        for ctx, symbol in block:
            counts[ctx, symbol] += GAIN
        out[i:end] = [s for _, s in block]
        i = end
    return out
