"""Which beats the physiology figures use: ECG QRS complexes on the rhythm lead, PPG pulse peaks, or none; and the
PPG pulse detector checked against the bedside monitor's pulse rate on real BIDMC recordings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tsvq.errors import ConfigError
from tsvq.evaluation.physiology import beat_source, detect_pulses, heart_rhythm
from tsvq.evaluation.report import EvalConfig

REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
LEADS = ["I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"]


def test_beat_source_follows_the_channels():
    assert beat_source(["PLETH,"], ["NU"]).kind == "ppg"
    twelve = beat_source(LEADS, ["mV"] * 12)
    assert (twelve.kind, twelve.channel, twelve.channel_name) == ("ecg", 1, "II")  # the rhythm lead, not lead I
    assert beat_source(["V1", "MLII"], ["mV", "mV"]).channel == 1
    assert beat_source(["RESP"], ["pm"]) is None  # respiration has no beats
    assert beat_source(["ECG"], ["mV"], "none") is None
    assert beat_source(["II", "PLETH"], ["mV", "NU"], "ecg").channel == 0
    assert beat_source(["II", "PLETH"], ["mV", "NU"]).channel == 1  # auto: a PPG channel makes it a PPG dataset
    assert beat_source(["II", "PLETH"], ["mV", "NU"]).unit == "NU"  # the beat channel's unit labels its plots
    with pytest.raises(ValueError, match="unknown physiology 'emg'"):
        beat_source(["II"], ["mV"], "emg")


def test_eval_config_takes_the_old_flag_and_refuses_unknown_kinds():
    assert EvalConfig(physiology=True).physiology == "auto" and EvalConfig(physiology=False).physiology == "none"
    assert EvalConfig(physiology="eeg").physiology == "eeg"
    with pytest.raises(ConfigError, match="physiology"):
        EvalConfig(physiology="emg")


def _pulse_wave(seconds: float, rate_hz: float, pulse_per_minute: float, seed: int) -> np.ndarray:
    """A PPG-like wave: a systolic peak and a dicrotic wave of 40% of its height 0.3 of a period later, plus noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate_hz)) / rate_hz
    phase = (t * pulse_per_minute / 60 + rng.uniform()) % 1.0
    wave = np.exp(-0.5 * ((phase - 0.2) / 0.1) ** 2) + 0.4 * np.exp(-0.5 * ((phase - 0.5) / 0.1) ** 2)
    return (wave + rng.normal(0, 0.03, len(t))).astype(np.float32)


@pytest.mark.parametrize("rate_per_minute", [45, 75, 140])
def test_pulse_detector_counts_systolic_peaks_not_dicrotic_waves(rate_per_minute):
    windows = np.stack([_pulse_wave(8.192, 125, rate_per_minute, seed)[:1024, None] for seed in range(6)])
    rhythm = heart_rhythm(windows, 125, kind="ppg")
    assert rhythm["kind"] == "ppg"
    np.testing.assert_allclose(rhythm["heart_rate_bpm"], rate_per_minute, rtol=0.05)
    flat = np.zeros((1, 1024, 1), dtype=np.float32)
    assert len(detect_pulses(flat, 125)[0]) == 0 and len(detect_pulses(flat + np.nan, 125)[0]) == 0


def test_pulse_rate_agrees_with_the_bedside_monitor_on_bidmc():
    """On five BIDMC patients' PPG (8.192 s windows, the recipe's filtering), the pulse rate of the detected peaks
    against the monitor's 1 Hz PULSE numerics over the same seconds."""
    import wfdb

    from tsvq.data.preprocess import bandpass
    from tsvq.data.records import clean_channel_name

    if not (REAL_DATA / "bidmc").is_dir():
        pytest.skip(
            f"real recordings not found at {REAL_DATA / 'bidmc'} (they live in ../shared/data beside the project)"
        )
    rate, length, found, monitor = 125, 1024, [], []
    for number in (1, 12, 23, 34, 45):
        path = str(REAL_DATA / "bidmc" / f"bidmc{number:02d}")
        record, numerics = wfdb.rdrecord(path), wfdb.rdrecord(path + "n")
        names = [clean_channel_name(n) for n in record.sig_name]
        ppg = bandpass(record.p_signal[:, names.index("PLETH")], rate, 0.5, 12)
        pulse = numerics.p_signal[:, [clean_channel_name(n) for n in numerics.sig_name].index("PULSE")]
        starts = np.arange(0, len(ppg) - length, length)
        windows = np.stack([ppg[s : s + length, None] for s in starts])
        found.append(heart_rhythm(windows, rate, kind="ppg")["heart_rate_bpm"])
        seconds = [pulse[s // rate : (s + length) // rate] for s in starts]
        monitor.append([np.median(p[np.isfinite(p)]) if np.isfinite(p).any() else np.nan for p in seconds])
    error = np.abs(np.concatenate(found) - np.concatenate(monitor))
    error = error[np.isfinite(error)]
    assert len(error) > 200
    assert np.median(error) < 3 and np.mean(error < 5) > 0.8, (np.median(error), np.mean(error < 5))


def test_rr_irregularity_separates_an_irregular_rhythm():
    """Per-window beat-interval variation: regular rhythms (2% jitter) against irregularly irregular ones (AF-like,
    20%), and windows with under three intervals left out."""
    from tsvq.evaluation.physiology import rhythm_distance, rr_irregularity

    rng = np.random.default_rng(0)

    def rhythm(spread, windows=60):
        rr = [0.8 * (1 + spread * rng.standard_normal(5)) for _ in range(windows)] + [np.array([0.8, 0.8])]
        return {
            "heart_rate_bpm": np.array([60 / np.median(r) for r in rr]),
            "rr_per_window": rr,
            "rr_s": np.concatenate(rr),
            "beats": np.array([len(r) + 1 for r in rr]),
        }

    regular_a, regular_b, irregular = rhythm(0.02), rhythm(0.02), rhythm(0.2)
    assert len(rr_irregularity(regular_a)) == 60  # the two-interval window has no irregularity figure
    assert np.median(rr_irregularity(irregular)) > 5 * np.median(rr_irregularity(regular_a))
    same = rhythm_distance(regular_a, regular_b)["rr_irregularity_wasserstein"]
    assert rhythm_distance(regular_a, irregular)["rr_irregularity_wasserstein"] > 10 * same


def test_beat_examples_marks_the_beats_found(tmp_path):
    """The figure that shows why a rhythm figure is off: each set's windows with their beats, including windows
    where too few beats were found for an irregularity figure."""
    from tsvq.plots import beat_examples

    regular = np.stack([_pulse_wave(8.192, 125, 75, seed)[:1024, None] for seed in range(3)])
    flat = np.zeros((3, 1024, 1), dtype=np.float32)
    sets = {
        name: (windows, heart_rhythm(windows, 125, kind="ppg")) for name, windows in (("real", regular), ("flat", flat))
    }
    assert all(len(peaks) >= 9 for peaks in sets["real"][1]["peaks"]) and not any(
        len(p) for p in sets["flat"][1]["peaks"]
    )
    path = beat_examples(sets, 125, tmp_path / "beats.png", units="NU", rows=4)
    assert path.stat().st_size > 1000 and not list(tmp_path.glob("*.tmp*"))
