"""Synthetic ECG from a dynamical PQRST model, in the spirit of McSharry et al. (2003), "A dynamical model
for generating synthetic electrocardiogram signals", IEEE TBME 50(3).

The phase theta turns once per beat at the instantaneous heart rate; each wave (P, Q, R, S, T) is a
Gaussian event at a fixed phase, and z follows dz/dt = -sum_i a_i dtheta_i omega exp(-dtheta_i^2 / 2 b_i^2) - (z - z0).
RR intervals carry heart-rate variability with the bimodal spectrum of the paper (Mayer waves near 0.1 Hz,
respiratory sinus arrhythmia near the breathing rate); z0 adds respiratory baseline wander. Virtual subjects
differ in heart rate, variability, wave shapes and noise, so patient-wise splits mean something.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import wfdb
from scipy import signal as sps

# Wave phases (rad), amplitudes and widths from McSharry et al. Table 1.
BASE_THETA = np.array([-np.pi / 3, -np.pi / 12, 0.0, np.pi / 12, np.pi / 2])
BASE_A = np.array([1.2, -5.0, 30.0, -7.5, 0.75])
BASE_B = np.array([0.25, 0.1, 0.1, 0.1, 0.4])


@dataclass
class VirtualSubject:
    """Physiology of one synthetic patient."""

    name: str
    heart_rate_bpm: float = 70.0
    hrv_std_s: float = 0.03
    lf_hf_ratio: float = 0.5
    respiration_hz: float = 0.25
    theta: np.ndarray = field(default_factory=lambda: BASE_THETA.copy())
    a: np.ndarray = field(default_factory=lambda: BASE_A.copy())
    b: np.ndarray = field(default_factory=lambda: BASE_B.copy())
    gain_mv: float = 1.0
    noise_mv: float = 0.01
    wander_mv: float = 0.05


def random_subjects(n: int, seed: int = 0) -> list[VirtualSubject]:
    """``n`` virtual subjects with distinct, plausible morphologies and rhythms."""
    rng = np.random.default_rng(seed)
    subjects = []
    for i in range(n):
        subjects.append(
            VirtualSubject(
                name=f"subject_{i + 1:02d}",
                heart_rate_bpm=float(rng.uniform(55, 95)),
                hrv_std_s=float(rng.uniform(0.015, 0.05)),
                lf_hf_ratio=float(rng.uniform(0.3, 1.5)),
                respiration_hz=float(rng.uniform(0.18, 0.33)),
                theta=BASE_THETA + rng.normal(0, [0.06, 0.02, 0.0, 0.02, 0.1]),
                a=BASE_A * rng.uniform([0.6, 0.5, 0.8, 0.4, 0.5], [1.6, 1.5, 1.2, 1.6, 1.8]),
                b=BASE_B * rng.uniform(0.8, 1.25, size=5),
                gain_mv=float(rng.uniform(0.7, 1.5)),
                noise_mv=float(rng.uniform(0.005, 0.025)),
                wander_mv=float(rng.uniform(0.02, 0.12)),
            )
        )
    return subjects


def rr_tachogram(n_beats: int, subject: VirtualSubject, rng: np.random.Generator) -> np.ndarray:
    """RR intervals (s) with a bimodal LF/HF spectrum, built in the frequency domain as in the paper."""
    n = max(256, int(2 ** np.ceil(np.log2(n_beats * 2))))
    mean_rr = 60.0 / subject.heart_rate_bpm
    freqs = np.fft.rfftfreq(n, d=mean_rr)  # the tachogram is sampled once per beat
    lf = subject.lf_hf_ratio * np.exp(-((freqs - 0.1) ** 2) / (2 * 0.01**2))
    hf = np.exp(-((freqs - subject.respiration_hz) ** 2) / (2 * 0.01**2))
    amplitude = np.sqrt(lf + hf)
    spectrum = amplitude * np.exp(1j * rng.uniform(0, 2 * np.pi, len(freqs)))
    series = np.fft.irfft(spectrum, n)[:n_beats]
    series = (series - series.mean()) / (series.std() + 1e-12)
    return np.clip(mean_rr + subject.hrv_std_s * series, 0.3, 2.0)


def synthesize(
    subject: VirtualSubject, duration_s: float, rate_hz: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """One lead of ECG in mV, ``(L,)``, and the sample index of each R peak."""
    rng = np.random.default_rng(seed)
    oversample = 4  # integrate finer than the output rate, then decimate by picking
    dt = 1.0 / (rate_hz * oversample)
    n = int(round(duration_s * rate_hz)) * oversample
    rr = rr_tachogram(int(duration_s / (60.0 / subject.heart_rate_bpm)) + 16, subject, rng)
    beat_times = np.concatenate([[0.0], np.cumsum(rr)])
    t = np.arange(n) * dt
    beat_index = np.clip(np.searchsorted(beat_times, t, side="right") - 1, 0, len(rr) - 1)
    omega = 2 * np.pi / rr[beat_index]
    # The phase restarts at -pi each beat; the R wave (theta = 0) sits mid-cycle.
    theta = -np.pi + 2 * np.pi * (t - beat_times[beat_index]) / rr[beat_index]
    z0 = subject.wander_mv * 0.15 * np.sin(2 * np.pi * subject.respiration_hz * t)
    # Forward-Euler of the linear ODE above is a first-order IIR filter of the wave forcing: run it as one.
    d_theta = np.remainder(theta[:, None] - subject.theta[None, :] + np.pi, 2 * np.pi) - np.pi
    forcing = -np.sum(subject.a * d_theta * omega[:, None] * np.exp(-(d_theta**2) / (2 * subject.b**2)), axis=1)
    z = sps.lfilter([0.0, dt], [1.0, -(1.0 - dt)], forcing + z0)
    ecg = z[::oversample]
    r_peak_times = beat_times[:-1] + rr / 2
    r_peaks = np.round(r_peak_times[r_peak_times < duration_s] * rate_hz).astype(np.int64)
    r_peaks = r_peaks[(r_peaks > 0) & (r_peaks < len(ecg))]
    span = np.percentile(ecg, 99.5) - np.percentile(ecg, 0.5)
    ecg = subject.gain_mv * (ecg - np.median(ecg)) / max(span, 1e-9)
    ecg += subject.wander_mv * np.sin(2 * np.pi * subject.respiration_hz * t[::oversample] + rng.uniform(0, 2 * np.pi))
    ecg += rng.normal(0, subject.noise_mv, ecg.shape)
    return ecg.astype(np.float64), r_peaks


def write_synthetic_database(
    out_dir: str | Path,
    n_subjects: int = 12,
    records_per_subject: int = 1,
    minutes_per_record: float = 3.0,
    rate_hz: float = 250.0,
    seed: int = 0,
) -> Path:
    """Write virtual subjects as WFDB records (``subject_XX/rec_N``, format 16, mV, lead MLII, ``.atr`` R peaks)."""
    out_dir = Path(out_dir)
    for s, subject in enumerate(random_subjects(n_subjects, seed)):
        folder = out_dir / subject.name
        folder.mkdir(parents=True, exist_ok=True)
        for r in range(records_per_subject):
            ecg, peaks = synthesize(subject, minutes_per_record * 60, rate_hz, seed=seed * 1000 + s * 10 + r)
            name = f"rec_{r}"
            wfdb.wrsamp(
                name,
                fs=rate_hz,
                units=["mV"],
                sig_name=["MLII"],
                p_signal=ecg[:, None],
                fmt=["16"],
                adc_gain=[1000.0],
                baseline=[0],
                write_dir=str(folder),
                comments=[
                    f"tsvq synthetic ECG (McSharry-style dynamical model), {subject.name}, "
                    f"HR {subject.heart_rate_bpm:.0f} bpm, seed {seed}"
                ],
            )
            wfdb.wrann(name, "atr", peaks, symbol=["N"] * len(peaks), write_dir=str(folder))
    return out_dir
