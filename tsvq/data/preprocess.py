"""Signal conditioning at the record level: quality masking, resampling and zero-phase filtering.

Bad stretches (NaN/Inf, flat line, clipping) are cut out and counted, never interpolated: a record
becomes a list of clean segments, each resampled and filtered on its own so no filter runs across a gap.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from scipy import signal as sps

from tsvq.errors import DataError

OK, NOT_FINITE, FLAT, CLIPPED = 0, 1, 2, 3
REASONS = {NOT_FINITE: "nan_or_inf", FLAT: "flat_line", CLIPPED: "clipped"}


@dataclass(frozen=True)
class QualityConfig:
    """Thresholds for the stretches that are dropped."""

    # A lead unchanged this long is disconnected: any heart rate >= 30 bpm puts a QRS in 2 s, even after coarse
    # 8-bit quantisation (MIMIC format 80) leaves diastole unchanged for a second.
    flat_seconds: float = 2.0
    clip_seconds: float = 0.05  # samples pinned at the channel's extreme this long are clipping
    clip_min_fraction: float = 0.0005  # ...and only if the extreme is hit this often (a true peak is hit once)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Start/end (exclusive) of the True runs of a boolean vector."""
    padded = np.concatenate([[False], mask, [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return list(zip(edges[0::2].tolist(), edges[1::2].tolist()))


def quality_mask(signal: np.ndarray, rate_hz: float, config: QualityConfig = QualityConfig()) -> np.ndarray:
    """Per-sample reason code (0 = usable) for an ``(L, C)`` signal at its native rate."""
    length, channels = signal.shape
    mask = np.zeros(length, dtype=np.int8)
    finite = np.isfinite(signal)
    mask[~finite.all(axis=1)] = NOT_FINITE
    flat_min = max(2, int(round(config.flat_seconds * rate_hz)))
    clip_min = max(2, int(round(config.clip_seconds * rate_hz)))
    for c in range(channels):
        x = signal[:, c]
        good = finite[:, c]
        if not good.any():
            continue
        unchanged = np.zeros(length, dtype=bool)
        unchanged[1:] = (np.diff(x) == 0) & good[1:] & good[:-1]
        for start, end in _runs(unchanged):
            if end - start + 1 >= flat_min:
                mask[max(start - 1, 0) : end][mask[max(start - 1, 0) : end] == OK] = FLAT
        low, high = np.nanmin(x[good]), np.nanmax(x[good])
        if high <= low:
            continue
        for extreme in (low, high):
            pinned = good & (x == extreme)
            if pinned.sum() < config.clip_min_fraction * length:
                continue
            for start, end in _runs(pinned):
                if end - start >= clip_min:
                    mask[start:end][mask[start:end] == OK] = CLIPPED
    return mask


def clean_segments(mask: np.ndarray) -> list[tuple[int, int]]:
    """Start/end of the runs of usable samples."""
    return _runs(mask == OK)


def dropped_seconds(mask: np.ndarray, rate_hz: float) -> dict[str, float]:
    """Seconds removed per reason."""
    return {name: float((mask == code).sum() / rate_hz) for code, name in REASONS.items() if (mask == code).any()}


def resample(signal: np.ndarray, from_hz: float, to_hz: float) -> np.ndarray:
    """Polyphase resampling of an ``(L, C)`` signal; exact rational ratio where rates allow."""
    if from_hz <= 0 or to_hz <= 0:
        raise DataError(f"sampling rates must be positive (got {from_hz} -> {to_hz} Hz)")
    if from_hz == to_hz:
        return signal
    ratio = Fraction(to_hz / from_hz).limit_denominator(1000)
    return sps.resample_poly(signal, ratio.numerator, ratio.denominator, axis=0, padtype="line")


def bandpass(signal: np.ndarray, rate_hz: float, low_hz: float | None, high_hz: float | None, order: int = 4) -> np.ndarray:
    """Zero-phase Butterworth band-pass (or high-/low-pass when one edge is None) along time.

    A high-pass near 0.5 Hz removes baseline wander from breathing and movement without touching the QRS.
    """
    nyquist = rate_hz / 2
    if high_hz is not None and high_hz >= nyquist:
        high_hz = None  # already band-limited by resampling
    if low_hz is None and high_hz is None:
        return signal
    if low_hz is not None and high_hz is not None:
        sos = sps.butter(order, [low_hz, high_hz], btype="bandpass", fs=rate_hz, output="sos")
    elif low_hz is not None:
        sos = sps.butter(order, low_hz, btype="highpass", fs=rate_hz, output="sos")
    else:
        sos = sps.butter(order, high_hz, btype="lowpass", fs=rate_hz, output="sos")
    padlen = min(signal.shape[0] - 1, 3 * (2 * len(sos) + 1) * 10)
    return sps.sosfiltfilt(sos, signal, axis=0, padlen=padlen)
