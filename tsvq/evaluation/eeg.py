"""EEG figures of windows: where an EEG's information is (band power, spectral shape, activity, spikes) rather than
beats. Each is one number per window; a generator is scored by the Wasserstein distance of each figure's
distribution to the held-out windows', like the heart-rate figures of ECG.

- **Relative band power**: the share of 0.5-40 Hz power in delta (0.5-4 Hz), theta (4-8), alpha (8-13), beta
  (13-30) and gamma (30-40), from a Welch spectrum: what sleep staging and most EEG features start from.
- **Spectral entropy**: Shannon entropy of the normalised 0.5-40 Hz spectrum over its maximum (1: flat, white; low:
  one dominant rhythm, as in the rhythmic discharges of a seizure).
- **Line length** (Esteller et al., 2001): the mean absolute sample-to-sample change, the classic seizure detector,
  as log10 (amplitudes differ by orders between surface and intracranial EEG).
- **Hjorth parameters** (Hjorth, 1970): activity (variance, as log10), mobility (a mean frequency) and complexity
  (how far the signal is from a pure sine).
"""

from __future__ import annotations

import numpy as np
from scipy.signal import welch
from scipy.stats import wasserstein_distance

BANDS_HZ = {"delta": (0.5, 4.0), "theta": (4.0, 8.0), "alpha": (8.0, 13.0), "beta": (13.0, 30.0), "gamma": (30.0, 40.0)}
EEG_FEATURES = (
    *(f"{band}_power" for band in BANDS_HZ),
    "spectral_entropy",
    "log_line_length",
    "log_hjorth_activity",
    "hjorth_mobility",
    "hjorth_complexity",
)
EEG_FIGURES = tuple(f"{name}_wasserstein" for name in EEG_FEATURES)
EEG_CHANNEL_NAMES = (
    "EEG", "FP1", "FP2", "F3", "F4", "F7", "F8", "FZ", "C3", "C4", "CZ", "P3", "P4", "P7", "P8", "PZ",
    "O1", "O2", "OZ", "T3", "T4", "T5", "T6", "T7", "T8", "A1", "A2",
)  # fmt: skip
_TINY = 1e-12


def eeg_features(windows: np.ndarray, rate_hz: float) -> dict[str, np.ndarray]:
    """``(n, L, 1)`` windows (one channel) -> each figure of ``EEG_FEATURES`` as an ``(n,)`` array."""
    x = np.asarray(windows[:, :, 0], dtype=np.float64)
    x = x - x.mean(axis=1, keepdims=True)
    frequencies, power = welch(x, fs=rate_hz, nperseg=min(x.shape[1], int(2 * rate_hz)), axis=1)
    in_band = (frequencies >= BANDS_HZ["delta"][0]) & (frequencies <= BANDS_HZ["gamma"][1])
    total = power[:, in_band].sum(axis=1) + _TINY
    features = {
        f"{band}_power": power[:, (frequencies >= low) & (frequencies < high)].sum(axis=1) / total
        for band, (low, high) in BANDS_HZ.items()
    }
    shares = power[:, in_band] / total[:, None]
    features["spectral_entropy"] = -(shares * np.log(shares + _TINY)).sum(axis=1) / np.log(in_band.sum())
    first, second = np.diff(x, axis=1), np.diff(x, n=2, axis=1)
    activity, first_var, second_var = x.var(axis=1), first.var(axis=1), second.var(axis=1)
    mobility = np.sqrt(first_var / (activity + _TINY))
    features["log_line_length"] = np.log10(np.abs(first).mean(axis=1) + _TINY)
    features["log_hjorth_activity"] = np.log10(activity + _TINY)
    features["hjorth_mobility"] = mobility
    features["hjorth_complexity"] = np.sqrt(second_var / (first_var + _TINY)) / (mobility + _TINY)
    return features


def eeg_subset(features: dict[str, np.ndarray], positions: np.ndarray) -> dict[str, np.ndarray]:
    return {name: values[positions] for name, values in features.items()}


def eeg_distance(reference: dict[str, np.ndarray], candidate: dict[str, np.ndarray]) -> dict[str, float]:
    """Wasserstein distance of each EEG figure's distribution (lower is better)."""
    return {
        f"{name}_wasserstein": float(wasserstein_distance(reference[name], candidate[name])) for name in EEG_FEATURES
    }
