"""ECG physiology of windows: beats found by wfdb's XQRS detector, heart rate and RR intervals."""

from __future__ import annotations

import logging

import numpy as np
from scipy.stats import wasserstein_distance


def detect_beats(windows: np.ndarray, rate_hz: float) -> list[np.ndarray]:
    """QRS sample indices of each window (first channel), by ``wfdb.processing.XQRS``."""
    from wfdb.processing import XQRS

    logging.getLogger("wfdb").setLevel(logging.ERROR)
    peaks = []
    for window in windows:
        x = np.asarray(window[:, 0], dtype=np.float64)
        if not np.isfinite(x).all() or np.ptp(x) == 0:
            peaks.append(np.zeros(0, dtype=np.int64))
            continue
        try:
            detector = XQRS(sig=x, fs=rate_hz)
            detector.detect(verbose=False)
            peaks.append(np.asarray(detector.qrs_inds, dtype=np.int64))
        except Exception:  # the detector gives up on windows with no usable QRS
            peaks.append(np.zeros(0, dtype=np.int64))
    return peaks


def heart_rhythm(windows: np.ndarray, rate_hz: float) -> dict:
    """Per-window heart rate (bpm, from the median RR; NaN below two beats), RR intervals (s) per window and pooled,
    beat counts, and the R peaks themselves (for beat morphology)."""
    peaks = detect_beats(windows, rate_hz)
    rr = [np.diff(p) / rate_hz for p in peaks]
    plausible = [r[(r > 0.25) & (r < 2.5)] for r in rr]  # 24-240 bpm
    heart_rate = np.array([60.0 / np.median(r) if len(r) else np.nan for r in plausible])
    return {"heart_rate_bpm": heart_rate, "rr_per_window": plausible,
            "rr_s": np.concatenate(plausible) if plausible else np.zeros(0), "beats": np.array([len(p) for p in peaks]),
            "peaks": peaks}


def rhythm_subset(rhythm: dict, positions: np.ndarray) -> dict:
    """The rhythm of some of the windows, without detecting their beats again."""
    rr = [rhythm["rr_per_window"][i] for i in positions]
    return {"heart_rate_bpm": rhythm["heart_rate_bpm"][positions], "rr_per_window": rr,
            "rr_s": np.concatenate(rr) if rr else np.zeros(0), "beats": rhythm["beats"][positions],
            "peaks": [rhythm["peaks"][i] for i in positions]}


def rhythm_distance(rhythm_a: dict, rhythm_b: dict) -> dict[str, float]:
    """Wasserstein distances of heart-rate (bpm) and RR (ms) distributions, and the share of windows of ``rhythm_b``
    where fewer than two beats were found (lower is better, like every other generation figure)."""
    hr_a, hr_b = rhythm_a["heart_rate_bpm"], rhythm_b["heart_rate_bpm"]
    hr_a, hr_b = hr_a[np.isfinite(hr_a)], hr_b[np.isfinite(hr_b)]
    return {
        "heart_rate_wasserstein_bpm": float(wasserstein_distance(hr_a, hr_b)) if len(hr_a) and len(hr_b) else float("nan"),
        "rr_wasserstein_ms": float(1000 * wasserstein_distance(rhythm_a["rr_s"], rhythm_b["rr_s"]))
        if len(rhythm_a["rr_s"]) and len(rhythm_b["rr_s"]) else float("nan"),
        "windows_without_beats": float(np.mean(rhythm_b["beats"] < 2)),
    }
