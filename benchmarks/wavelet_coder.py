"""A textbook wavelet transform coder, the baseline a compression specialist tries first, counting every byte.

PyWavelets' ``bior4.4`` over ``levels`` levels; one dead-zone uniform quantiser step for every subband
(``q = sign(c) floor(|c| / step)``, reconstructed at the middle of its bin); each subband's integers range-coded
(constriction) with that subband's own histogram, which is stored in the file. The bytes are the whole file:
a small header, the compressed histograms and the range-coded words. Several channels (a 12-lead ECG's eight
independent leads) share each subband's histogram: one table per subband rather than per lead and subband, which on
a 10-s ECG would cost more than the coefficients.
"""

from __future__ import annotations

import struct
import zlib

import constriction
import numpy as np
import pywt

WAVELET = "bior4.4"
LEVELS = 6


def _subbands(n: int, levels: int) -> list[int]:
    return [len(c) for c in pywt.wavedec(np.zeros(n), WAVELET, level=levels, mode="periodization")]


def encode(x: np.ndarray, step: float, levels: int = LEVELS) -> bytes:
    """A finite signal ``(L,)`` or ``(L, C)`` -> the coded bytes at quantiser ``step``."""
    x = np.asarray(x, np.float64)
    channels = x[:, None] if x.ndim == 1 else x
    transforms = [pywt.wavedec(channel, WAVELET, level=levels, mode="periodization") for channel in channels.T]
    parts = [struct.pack("<IfI", len(x), step, len(transforms))]
    for bands in zip(*transforms):
        band = np.concatenate(bands)
        q = (np.sign(band) * np.floor(np.abs(band) / step)).astype(np.int64)
        low, high = int(q.min()), int(q.max())
        counts = np.bincount(q - low, minlength=high - low + 1).astype(np.uint32)
        table = zlib.compress(counts.tobytes(), 9)
        words = b""
        if high > low:  # one value only: the table says it all
            encoder = constriction.stream.queue.RangeEncoder()
            model = constriction.stream.model.Categorical(counts / counts.sum(), perfect=False)
            encoder.encode((q - low).astype(np.int32), model)
            words = encoder.get_compressed().astype("<u4").tobytes()
        parts.append(struct.pack("<iII", low, len(table), len(words)) + table + words)
    return b"".join(parts)


def decode(data: bytes, levels: int = LEVELS) -> np.ndarray:
    """The inverse of ``encode`` (proves the bytes hold the signal): ``(L,)`` for one channel, else ``(L, C)``."""
    n, step, channels = struct.unpack_from("<IfI", data, 0)
    at, bands = 12, []
    for size in _subbands(n, levels):
        low, table_length, words_length = struct.unpack_from("<iII", data, at)
        at += 12
        counts = np.frombuffer(zlib.decompress(data[at : at + table_length]), np.uint32)
        at += table_length
        if len(counts) == 1:
            q = np.full(size * channels, low)
        else:
            words = np.frombuffer(data[at : at + words_length], "<u4").astype(np.uint32)
            model = constriction.stream.model.Categorical(counts / counts.sum(), perfect=False)
            q = constriction.stream.queue.RangeDecoder(words).decode(model, size * channels).astype(np.int64) + low
        at += words_length
        bands.append(np.split(np.sign(q) * (np.abs(q) + 0.5) * step, channels))
    signals = [pywt.waverec([band[c] for band in bands], WAVELET, mode="periodization")[:n] for c in range(channels)]
    return signals[0] if channels == 1 else np.column_stack(signals)


def at_rate(x: np.ndarray, bits: float, levels: int = LEVELS) -> tuple[bytes, np.ndarray]:
    """The finest step whose file fits ``bits`` (bisection on the step's logarithm), its bytes and the decoded
    signal (``(L,)`` for one channel, else ``(L, C)``, as ``decode`` gives it)."""
    low, high = 1e-6 * np.std(x), 10.0 * np.abs(x).max()
    best = encode(x, high, levels)
    for _ in range(30):
        step = float(np.sqrt(low * high))
        data = encode(x, step, levels)
        if 8 * len(data) <= bits:
            high, best = step, data
        else:
            low = step
    return best, decode(best, levels)
