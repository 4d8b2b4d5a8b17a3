"""Physiology of windows: beats (ECG QRS complexes by wfdb's XQRS, or PPG pulse peaks), rate and beat intervals;
for EEG, which has no beats, the figures of ``tsvq.evaluation.eeg``.

Which physiology a dataset has follows from its channels (``beat_source``): a PPG channel (PLETH) gives pulse
peaks, an ECG in mV gives QRS complexes on lead II where there is one, an EEG channel (by name, or in microvolts)
gives band powers, spectral entropy, line length and Hjorth parameters; any other signal gets none of them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.signal import find_peaks
from scipy.stats import wasserstein_distance

from tsvq.data.records import clean_channel_name
from tsvq.evaluation.eeg import EEG_CHANNEL_NAMES, eeg_features

BEAT_KINDS = ("ecg", "ppg")
PHYSIOLOGY_KINDS = (*BEAT_KINDS, "eeg")
MICROVOLTS = ("uv", "µv", "μv")
PPG_CHANNELS = ("PLETH", "PPG")
ECG_LEADS_PREFERRED = ("II", "MLII")  # the rhythm lead of a 12-lead ECG and of MIT-BIH
MIN_PULSE_INTERVAL_S = 0.27  # 222 per minute: a dicrotic notch follows its systolic peak more closely than this
PULSE_PROMINENCE = 0.45  # of the window's 5-95 percentile range: systolic peaks, not dicrotic waves or noise
MIN_RR_S, MAX_RR_S = 0.25, 2.5  # plausible beat intervals, 240-24 per minute: shorter is a beat found twice
MIN_INTERVALS = 3  # beat intervals a window needs for an irregularity figure


@dataclass(frozen=True)
class BeatSource:
    """Which physiology figures a dataset gets and from which channel: ``kind`` "ecg" (QRS complexes), "ppg" (pulse
    peaks) or "eeg" (no beats: the EEG figures), on one channel of multi-channel windows."""

    kind: str
    channel: int = 0
    channel_name: str = ""
    unit: str = ""  # of that channel, for plots of it

    def lead(self, windows: np.ndarray) -> np.ndarray:
        """The channel the beats are found on, as ``(n, L, 1)`` windows."""
        return windows[:, :, self.channel : self.channel + 1]

    @property
    def has_beats(self) -> bool:
        return self.kind in BEAT_KINDS

    def rhythm(self, windows: np.ndarray, rate_hz: float) -> dict | None:
        return heart_rhythm(self.lead(windows), rate_hz, self.kind) if self.has_beats else None

    def eeg(self, windows: np.ndarray, rate_hz: float) -> dict | None:
        return eeg_features(self.lead(windows), rate_hz) if self.kind == "eeg" else None

    def describe(self) -> str:
        what = {
            "ecg": "QRS complexes (wfdb XQRS)",
            "ppg": "PPG pulse peaks (scipy find_peaks)",
            "eeg": "no beats: EEG band powers, spectral entropy, line length and Hjorth parameters",
        }[self.kind]
        return f"{what} on channel {self.channel_name or self.channel}"


def beat_source(channel_names: list[str], units: list[str], requested: str = "auto") -> BeatSource | None:
    """The physiology of a dataset: ``requested`` "ecg", "ppg", "eeg", "none", or "auto" (a PLETH/PPG channel means
    PPG, a channel in mV means ECG, an EEG channel name (EEG, Fp1, C3, O2, ...) or microvolts means EEG, anything
    else has none)."""
    names = [clean_channel_name(n).upper() for n in channel_names]
    units = list(units) + [""] * (len(names) - len(units))
    ppg = [i for i, n in enumerate(names) if n.startswith(PPG_CHANNELS)]
    ecg = [i for i, u in enumerate(units) if u.lower() == "mv"]
    eeg = [
        i for i, (n, u) in enumerate(zip(names, units)) if n.startswith(EEG_CHANNEL_NAMES) or u.lower() in MICROVOLTS
    ]
    if requested == "auto":
        requested = "ppg" if ppg else "ecg" if ecg else "eeg" if eeg else "none"
    if requested == "none":
        return None
    if requested not in PHYSIOLOGY_KINDS:
        raise ValueError(f"unknown physiology {requested!r}; expected auto, none or one of {PHYSIOLOGY_KINDS}")
    if requested == "ppg":
        channel = ppg[0] if ppg else 0
    elif requested == "eeg":
        channel = eeg[0] if eeg else 0
    else:
        leads = [names.index(lead) for lead in ECG_LEADS_PREFERRED if lead in names]
        channel = leads[0] if leads else ecg[0] if ecg else 0
    return BeatSource(
        requested,
        channel,
        channel_names[channel] if channel < len(channel_names) else "",
        units[channel] if channel < len(units) else "",
    )


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


def detect_pulses(windows: np.ndarray, rate_hz: float) -> list[np.ndarray]:
    """Systolic peak indices of each PPG window (first channel): local maxima at least 0.27 s apart that stand out
    by 45% of the window's 5-95 percentile range (so the dicrotic wave does not count as a second pulse)."""
    peaks = []
    for window in windows:
        x = np.asarray(window[:, 0], dtype=np.float64)
        spread = np.subtract(*np.percentile(x, [95, 5])) if np.isfinite(x).all() else 0.0
        if spread <= 0:
            peaks.append(np.zeros(0, dtype=np.int64))
            continue
        found, _ = find_peaks(
            x, distance=max(1, int(MIN_PULSE_INTERVAL_S * rate_hz)), prominence=PULSE_PROMINENCE * spread
        )
        peaks.append(found.astype(np.int64))
    return peaks


def heart_rhythm(windows: np.ndarray, rate_hz: float, kind: str = "ecg") -> dict:
    """Per-window heart (or pulse) rate (bpm, from the median beat interval; NaN below two beats), beat intervals
    (s) per window and pooled, beat counts, and the peaks themselves (R peaks for beat morphology)."""
    peaks = detect_pulses(windows, rate_hz) if kind == "ppg" else detect_beats(windows, rate_hz)
    rr = [np.diff(p) / rate_hz for p in peaks]
    plausible = [r[(r > MIN_RR_S) & (r < MAX_RR_S)] for r in rr]
    heart_rate = np.array([60.0 / np.median(r) if len(r) else np.nan for r in plausible])
    return {
        "heart_rate_bpm": heart_rate,
        "rr_per_window": plausible,
        "rr_variation_per_window": np.array([interval_variation(r) for r in plausible]),
        "rr_s": np.concatenate(plausible) if plausible else np.zeros(0),
        "beats": np.array([len(p) for p in peaks]),
        "peaks": peaks,
        "kind": kind,
    }


def rhythm_subset(rhythm: dict, positions: np.ndarray) -> dict:
    """The rhythm of some of the windows, without detecting their beats again."""
    rr = [rhythm["rr_per_window"][i] for i in positions]
    return {
        "heart_rate_bpm": rhythm["heart_rate_bpm"][positions],
        "rr_per_window": rr,
        "rr_variation_per_window": rhythm["rr_variation_per_window"][positions],
        "rr_s": np.concatenate(rr) if rr else np.zeros(0),
        "beats": rhythm["beats"][positions],
        "peaks": [rhythm["peaks"][i] for i in positions],
        "kind": rhythm["kind"],
    }


def rr_irregularity(rhythm: dict) -> np.ndarray:
    """Coefficient of variation of each window's beat intervals (windows with at least three): near 0.02-0.05 in
    sinus rhythm, several times more in atrial fibrillation, whose hallmark is an irregularly irregular rhythm."""
    return np.array([interval_variation(r) for r in rhythm["rr_per_window"] if len(r) >= MIN_INTERVALS])


def interval_variation(intervals: np.ndarray) -> float:
    """One window's RR irregularity: the coefficient of variation of its beat intervals (NaN below
    ``MIN_INTERVALS``, too few to tell a rhythm from one odd beat)."""
    return float(np.std(intervals) / np.mean(intervals)) if len(intervals) >= MIN_INTERVALS else float("nan")


def rhythm_distance(rhythm_a: dict, rhythm_b: dict) -> dict[str, float]:
    """Wasserstein distances of heart-rate (bpm), RR (ms) and per-window RR-irregularity distributions, and the
    share of windows of ``rhythm_b`` where fewer than two beats were found (lower is better, like every other
    generation figure)."""
    hr_a, hr_b = rhythm_a["heart_rate_bpm"], rhythm_b["heart_rate_bpm"]
    hr_a, hr_b = hr_a[np.isfinite(hr_a)], hr_b[np.isfinite(hr_b)]
    irregular_a, irregular_b = rr_irregularity(rhythm_a), rr_irregularity(rhythm_b)
    return {
        "heart_rate_wasserstein_bpm": float(wasserstein_distance(hr_a, hr_b))
        if len(hr_a) and len(hr_b)
        else float("nan"),
        "rr_wasserstein_ms": float(1000 * wasserstein_distance(rhythm_a["rr_s"], rhythm_b["rr_s"]))
        if len(rhythm_a["rr_s"]) and len(rhythm_b["rr_s"])
        else float("nan"),
        "rr_irregularity_wasserstein": float(wasserstein_distance(irregular_a, irregular_b))
        if len(irregular_a) and len(irregular_b)
        else float("nan"),
        "windows_without_beats": float(np.mean(rhythm_b["beats"] < 2)),
    }
