"""Cut clean segments into fixed-length windows and derive window labels from beat annotations."""

from __future__ import annotations

import numpy as np

# AAMI EC57 beat classes from MIT-BIH symbols; a window's label is the most clinically severe class it holds.
AAMI_CLASSES: dict[str, str] = {
    **dict.fromkeys("NLRBej", "N"),
    **dict.fromkeys("AaJSn", "S"),
    **dict.fromkeys("VE", "V"),
    "F": "F",
    **dict.fromkeys("/fQ", "Q"),
}
SEVERITY = ("V", "S", "F", "Q", "N")


def fixed_window_starts(segment_length: int, window_length: int, stride: int) -> np.ndarray:
    """Start offsets of all full windows inside a segment."""
    if segment_length < window_length:
        return np.zeros(0, dtype=np.int64)
    return np.arange(0, segment_length - window_length + 1, stride, dtype=np.int64)


def beat_centred_starts(
    beat_samples: np.ndarray, segment_start: int, segment_length: int, window_length: int
) -> np.ndarray:
    """Start offsets (within the segment) of windows centred on each beat that fits entirely."""
    starts = beat_samples - segment_start - window_length // 2
    return starts[(starts >= 0) & (starts + window_length <= segment_length)].astype(np.int64)


def window_label(symbols: list[str]) -> str:
    """AAMI class of the most severe beat in the window, or '' when it holds no beat annotation."""
    classes = {AAMI_CLASSES[s] for s in symbols if s in AAMI_CLASSES}
    return next((c for c in SEVERITY if c in classes), "")


def beats_in_window(beat_samples: np.ndarray, beat_symbols: np.ndarray, start: int, length: int) -> list[str]:
    """Beat symbols whose annotation falls inside ``[start, start + length)`` (record sample indices)."""
    lo, hi = np.searchsorted(beat_samples, [start, start + length])
    return beat_symbols[lo:hi].tolist()
