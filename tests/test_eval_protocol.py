"""The evaluation protocol: baselines that fail in known ways, disjoint real halves, equal-n chunks, seed
statistics, and learned scores that do not move with the thread count."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import ecg_like
from tsvq.evaluation.baselines import BASELINES, fit_ar_by_aic, fit_baselines
from tsvq.evaluation.generation import discriminative_score, nearest_shifted_distances, predictive_score, shapes
from tsvq.evaluation.scoring import (
    chunks,
    disjoint_halves,
    gap_in_deviations,
    informative_figures,
    overlap_groups,
    within_noise,
)

RATE = 125.0


@pytest.fixture(scope="module")
def train():
    return np.stack(
        [ecg_like(256 / RATE, RATE, seed=i, heart_rate_bpm=60 + i % 20)[:256, None] for i in range(40)]
    ).astype(np.float32)


def test_autoregressive_order_by_aic_recovers_a_known_process():
    rng = np.random.default_rng(0)
    from scipy.signal import lfilter

    noise = rng.standard_normal((50, 2000))
    series = lfilter([1.0], [1.0, -1.5, 0.75], noise, axis=1)[:, 500:]  # AR(2), stable
    model = fit_ar_by_aic(series, max_order=12)
    assert 2 <= model.order <= 4
    assert model.coefficients[:2] == pytest.approx([1.5, -0.75], abs=0.05)
    assert model.noise_variance == pytest.approx(1.0, rel=0.05)


def test_every_baseline_draws_finite_windows_of_the_training_shape(train):
    fitted = fit_baselines(train)
    assert list(fitted) == list(BASELINES)
    for name, baseline in fitted.items():
        draw = baseline.sample(12, seed=1)
        assert draw.shape == (12, 256, 1) and draw.dtype == np.float32 and np.isfinite(draw).all(), name
        assert np.array_equal(draw, baseline.sample(12, seed=1)) and not np.array_equal(
            draw, baseline.sample(12, seed=2)
        ), name
    gaussian = fitted["gaussian"].sample(4000, seed=0)
    assert np.abs(gaussian.mean(0) - train.mean(0)).max() < 0.1 * train.std()
    assert fitted["autoregressive"].info["orders"][0] >= 2


def test_train_copies_are_shifted_training_windows_and_the_shift_invariant_distance_sees_it(train):
    copies = fit_baselines(train, ["train_copies"])["train_copies"].sample(10, seed=0)
    assert nearest_shifted_distances(copies, train).max() < 1e-3 * np.linalg.norm(train[0])
    other = np.stack([ecg_like(256 / RATE, RATE, seed=1000 + i)[:256, None] for i in range(10)]).astype(np.float32)
    assert nearest_shifted_distances(other, train).min() > 0.05 * np.linalg.norm(train[0])
    # a copy at another gain and baseline is still a copy of the training window's shape
    rescaled = 3 * copies + 0.5
    assert nearest_shifted_distances(shapes(rescaled), shapes(train)).max() < 1e-3
    assert nearest_shifted_distances(shapes(other), shapes(train)).min() > 0.05


def test_a_quieter_set_sits_nearer_the_training_windows_but_not_its_shapes():
    """Patients differ in amplitude: windows drawn at half the real gain find quiet training windows nearer than
    real ones find theirs (Euclidean ratio well under 1) without copying any; their shapes score as real ones do."""
    from tsvq.evaluation.scoring import memorisation

    def patients(first: int, count: int) -> np.ndarray:
        gains = np.random.default_rng(first).uniform(0.2, 2.0, count)
        return np.stack(
            [gain * ecg_like(256 / RATE, RATE, seed=first + i)[:256, None] for i, gain in enumerate(gains)]
        ).astype(np.float32)

    train, real = patients(0, 200), patients(5000, 40)
    quiet = real / 2
    held_out = float(np.median(nearest_shifted_distances(real, train)))
    assert memorisation(nearest_shifted_distances(quiet, train), held_out) < 0.8
    shape_held_out = float(np.median(nearest_shifted_distances(shapes(real), shapes(train))))
    assert memorisation(nearest_shifted_distances(shapes(quiet), shapes(train)), shape_held_out) == pytest.approx(1)


def test_disjoint_halves_never_share_a_sample_across_halves():
    length, stride = 100, 25  # windows overlap by 75%, as the demo's store cuts them
    records = np.repeat([0, 1, 2], 60)
    starts = np.tile(np.arange(60) * stride, 3)
    halves = disjoint_halves(records, starts, length, seed=3)
    assert len(halves.reference) > 40 and len(halves.floor) > 40 and halves.dropped > 0
    assert len(set(halves.reference) | set(halves.floor)) + halves.dropped == len(starts)
    for a in halves.reference:
        same = records[halves.floor] == records[a]
        assert np.all(np.abs(starts[halves.floor][same] - starts[a]) >= length)
    other = disjoint_halves(records, starts, length, seed=4)
    assert not np.array_equal(other.reference, halves.reference)
    no_overlap = disjoint_halves(records, np.tile(np.arange(60) * length, 3), length, seed=3)
    assert no_overlap.dropped == 0


def test_record_halves_keep_each_record_on_one_side():
    """Segment databases: a recording compared with itself would make the floor unreachable for new recordings."""
    records = np.repeat(np.arange(9), 5)
    starts = np.tile(np.arange(5) * 100, 9)
    halves = disjoint_halves(records, starts, 100, seed=3, by_record=True)
    assert not set(records[halves.reference]) & set(records[halves.floor])
    assert len(halves.reference) + len(halves.floor) == len(records) and halves.dropped == 0
    assert sorted({len(set(records[halves.reference])), len(set(records[halves.floor]))}) == [4, 5]
    blocks = disjoint_halves(records, starts, 100, seed=3)
    assert set(records[blocks.reference]) & set(records[blocks.floor])  # the default: time blocks split records


def test_chunks_cover_every_window_once_at_about_the_floor_size():
    parts = chunks(203, 34, seed=0)
    assert sorted(np.concatenate(parts)) == list(range(203))
    assert len(parts) == 6 and all(33 <= len(p) <= 34 for p in parts)
    assert [len(p) for p in chunks(10, 34, seed=0)] == [10]


def test_a_figure_is_informative_only_where_a_baseline_leaves_the_floor():
    floor = {"a": {"mean": 1.0, "std": 0.1}, "b": {"mean": 1.0, "std": 0.1}}
    baselines = {"noise": {"a": {"mean": 5.0, "std": 0.2}, "b": {"mean": 1.1, "std": 0.2}}}
    assert informative_figures(floor, baselines) == {"a": True, "b": False}
    model = {"a": {"mean": 1.05, "std": 0.1}, "b": {"mean": 3.0, "std": 0.1}}
    assert within_noise(model, floor) == ["a"]
    assert gap_in_deviations({"mean": 2.0, "std": 0.0}, {"mean": 1.0, "std": 0.0}) == np.inf


def test_learned_scores_do_not_move_with_the_thread_count(train):
    other = train[:, ::-1].copy()
    previous = torch.get_num_threads()
    try:
        scores = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            scores.append(
                (
                    discriminative_score(train[:20], other[:20], folds=2, steps=30)["mean"],
                    predictive_score(other[:20], train[20:], steps=30),
                )
            )
        assert torch.get_num_threads() == 2  # the scores restore the caller's setting
    finally:
        torch.set_num_threads(previous)
    assert scores[0] == scores[1]


def test_overlapping_windows_share_a_group_and_separate_runs_do_not():
    records = np.array([0, 0, 0, 0, 1, 1])
    starts = np.array([0, 25, 50, 300, 0, 100])
    groups = overlap_groups(records, starts, 100)
    assert groups[0] == groups[1] == groups[2] and len({groups[2], groups[3], groups[4], groups[5]}) == 4


def test_the_discriminative_classifier_cannot_recognise_real_windows_by_their_overlapping_twins():
    """Two interleaved sets of time stretches from one source, cut with 75% overlap. Each stretch has its own
    amplitude and rhythm, so with random folds a test window's twins in the training folds give it away."""
    rng = np.random.default_rng(0)
    length, stretch, stretches = 128, 1024, 24
    t = np.arange(stretch) / length
    signal = np.concatenate(
        [
            rng.uniform(0.3, 3) * np.sin(2 * np.pi * rng.uniform(2, 12) * t + rng.uniform(0, 6))
            + 0.1 * rng.standard_normal(stretch)
            for _ in range(stretches)
        ]
    ).astype(np.float32)
    starts = np.array([s * stretch + offset for s in range(stretches) for offset in range(0, stretch - length + 1, 32)])
    windows = np.stack([signal[s : s + length] for s in starts])[:, :, None]
    side = (starts // stretch) % 2 == 0
    groups = [overlap_groups(np.zeros(part.sum()), starts[part], length) for part in (side, ~side)]
    fair = discriminative_score(
        windows[side], windows[~side], folds=3, steps=150, real_groups=groups[0], generated_groups=groups[1]
    )
    leaky = discriminative_score(windows[side], windows[~side], folds=3, steps=150)
    assert fair["mean"] < 0.12 and leaky["mean"] > 0.25


def test_beat_morphology_tells_ecg_from_noise_and_subsets_by_window():
    pytest.importorskip("neurokit2", reason="beat morphology needs neurokit2 (pip install 'tsvq[morphology]')")
    from tsvq.evaluation.morphology import delineate, morphology_distance
    from tsvq.evaluation.physiology import detect_beats

    def windows(seed):
        return np.stack(
            [ecg_like(1024 / RATE, RATE, seed=seed * 100 + i, heart_rate_bpm=70)[:1024, None] for i in range(12)]
        ).astype(np.float32)

    a, b = windows(1), windows(2)
    noise = np.random.default_rng(0).normal(0, a.std(), a.shape).astype(np.float32)
    beats = {name: delineate(x, detect_beats(x, RATE), RATE) for name, x in (("a", a), ("b", b), ("noise", noise))}
    assert (
        len(beats["a"].qrs) >= 60
        and np.isfinite(beats["a"].qrs).sum() >= 20
        and np.isfinite(beats["a"].qtc).sum() >= 20
    )
    same, other = morphology_distance(beats["a"], beats["b"]), morphology_distance(beats["a"], beats["noise"])
    assert other["average_beat_rms"] > 3 * same["average_beat_rms"]
    part = beats["a"].subset(np.array([3, 5]))
    assert set(part.window) <= {0, 1} and len(part.qrs) == int(np.isin(beats["a"].window, [3, 5]).sum())


def test_p_wave_amplitude_tells_flattened_p_waves_where_presence_cannot():
    """McSharry-model ECG of one virtual subject with its P waves at full and at a fifth of their amplitude: the
    delineator finds a P peak before every beat of both, so presence is 1 on both sides, while the amplitude
    distance to the flattened set is several times the distance between two full sets."""
    pytest.importorskip("neurokit2", reason="beat morphology needs neurokit2 (pip install 'tsvq[morphology]')")
    from tsvq.data.synthetic import BASE_A, VirtualSubject, synthesize
    from tsvq.evaluation.morphology import delineate, morphology_distance
    from tsvq.evaluation.physiology import detect_beats

    rate = 250.0  # 4 s windows, long enough for the delineator

    def beats(p_scale: float, seed: int):
        waves = BASE_A.copy()
        waves[0] *= p_scale  # the P wave is the first of the model's five
        signal, _ = synthesize(VirtualSubject("subject", a=waves), 60, rate, seed=seed)
        windows = signal[: 12 * 1024].reshape(12, 1024, 1).astype(np.float32)
        return delineate(windows, detect_beats(windows, rate), rate)

    full, other_full, flat = beats(1.0, 1), beats(1.0, 2), beats(0.2, 3)
    assert flat.p_present.mean() == full.p_present.mean() == 1.0
    assert np.nanmedian(flat.p_amplitude) < 0.3 * np.nanmedian(full.p_amplitude)
    same = morphology_distance(full, other_full)["p_wave_amplitude_wasserstein"]
    assert morphology_distance(full, flat)["p_wave_amplitude_wasserstein"] > 3 * same
