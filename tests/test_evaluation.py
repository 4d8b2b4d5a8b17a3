"""Evaluation metrics on known cases, and `tsvq eval` on a tiny trained pipeline."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import scipy.linalg
import torch

from tests.conftest import ecg_like
from tsvq.cli import main as cli_main
from tsvq.evaluation import (
    RandomKernelFeatures,
    amplitude_distance,
    autocorrelation_distance,
    discriminative_score,
    frechet_distance,
    heart_rhythm,
    mmd_rbf,
    phase_randomized,
    predictive_score,
    psd_distance_db,
    rhythm_distance,
)
from tsvq.evaluation.generation import fit_all, predictive_scores
from tsvq.evaluation.scoring import ScoredSet, finish_set, plan_set, set_figures

RATE = 125.0


def ecg_windows(n: int, seed: int, length: int = 512) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack(
        [
            ecg_like(length / RATE, RATE, seed=seed * 1000 + i, heart_rate_bpm=rng.uniform(60, 80))[:length, None]
            for i in range(n)
        ]
    ).astype(np.float32)


@pytest.fixture(scope="module")
def sets():
    real_a, real_b = ecg_windows(60, 1), ecg_windows(60, 2)
    noise = np.random.default_rng(3).normal(0, real_a.std(), real_a.shape).astype(np.float32)
    features = RandomKernelFeatures(512, 1, num_kernels=64, seed=0).fit_scale(real_a)
    return real_a, real_b, noise, features


def test_identical_sets_give_floor_values(sets):
    real_a, real_b, _, features = sets
    f = features.transform(real_a)
    assert frechet_distance(f, f) == pytest.approx(0.0, abs=1e-6)
    assert mmd_rbf(f, f) < 0.05
    assert psd_distance_db(real_a, real_a, RATE) == 0 and autocorrelation_distance(real_a, real_a, 100) == 0
    assert amplitude_distance(real_a, real_a) == 0
    # two draws of one distribution (a window and its exact copy in opposite folds would teach the classifier backwards)
    assert discriminative_score(real_a, real_b, folds=3, steps=100)["mean"] < 0.15


def test_frechet_distance_is_exact_for_singular_covariances():
    """Fewer windows than features: the covariances are singular, and the closed form must still hold, silently."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(300, 8)), rng.normal(size=(300, 8)) + 0.5
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    reference = (
        ((a.mean(0) - b.mean(0)) ** 2).sum()
        + np.trace(cov_a + cov_b)
        - 2 * np.trace(np.real(scipy.linalg.sqrtm(cov_a @ cov_b)))
    )
    assert frechet_distance(a, b) == pytest.approx(reference, rel=1e-9)
    few = rng.normal(size=(10, 50))  # rank 9 covariance in 50 dimensions
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # twice the features: covariance 4x, so tr sqrt(S S') = 2 tr S and the distance is |mean|^2 + tr S
        distance = frechet_distance(few, 2 * few)
    assert distance == pytest.approx((few.mean(0) ** 2).sum() + np.trace(np.cov(few, rowvar=False)), rel=1e-9)


def test_frechet_distance_of_few_windows_matches_the_full_covariance_route():
    """Fewer windows than features takes the small cross-product route; it must agree with tr sqrt(S_a S_b) from
    the full covariances, for two unrelated sets of different sizes (not only for a set and its multiple)."""
    rng = np.random.default_rng(1)
    mixing = rng.normal(size=(64, 64))
    a, b = rng.normal(size=(30, 64)) @ mixing, rng.gamma(2.0, size=(45, 64)) @ mixing
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    values, vectors = np.linalg.eigh(cov_a)
    sqrt_a = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(sqrt_a @ cov_b @ sqrt_a), 0, None)).sum()
    reference = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * cross
    assert frechet_distance(a, b) == pytest.approx(reference, rel=1e-6)


def test_real_vs_white_noise_is_far(sets):
    real_a, real_b, noise, features = sets
    fa, fb, fn = features.transform(real_a), features.transform(real_b), features.transform(noise)
    assert frechet_distance(fa, fn) > 20 * frechet_distance(fa, fb)
    assert mmd_rbf(fa, fn) > 10 * max(mmd_rbf(fa, fb), 1e-3)
    assert psd_distance_db(real_a, noise, RATE) > 3 * psd_distance_db(real_a, real_b, RATE)
    assert discriminative_score(real_a, noise, folds=3, steps=100)["mean"] > 0.4
    rhythm = heart_rhythm(real_a, RATE)
    assert np.nanmedian(rhythm["heart_rate_bpm"]) == pytest.approx(70, abs=12)
    assert (
        rhythm_distance(rhythm, heart_rhythm(noise, RATE))["heart_rate_wasserstein_bpm"]
        > rhythm_distance(rhythm, heart_rhythm(real_b, RATE))["heart_rate_wasserstein_bpm"]
    )


def test_shifted_and_scaled_copies_move_figures_the_right_way(sets):
    real_a, real_b, _, features = sets
    fa = features.transform(real_a)
    distances = [frechet_distance(fa, features.transform(real_b * scale)) for scale in (1.0, 1.5, 2.5)]
    assert distances[0] < distances[1] < distances[2]
    amplitude = [amplitude_distance(real_a, real_b + shift) for shift in (0.0, 0.2, 0.5)]
    assert amplitude[0] < amplitude[1] < amplitude[2]


def test_phase_randomised_surrogate_keeps_the_spectrum(sets):
    real_a = sets[0]
    surrogate = phase_randomized(real_a)
    assert np.allclose(np.abs(np.fft.rfft(surrogate, axis=1)), np.abs(np.fft.rfft(real_a, axis=1)), atol=1e-3)
    assert not np.allclose(surrogate, real_a)


def test_cli_eval_writes_a_valid_report(tiny_runs, tiny_pipeline, tmp_path, capsys):
    out = tmp_path / "report"
    rc = cli_main(
        [
            "eval",
            "--pipeline",
            str(tiny_pipeline),
            "--data",
            str(tiny_runs["store"]),
            "--n",
            "16",
            "--steps",
            "4",
            "--folds",
            "2",
            "--seeds",
            "2",
            "--classifier-steps",
            "20",
            "--search",
            "2",
            "--out",
            str(out),
        ]
    )
    printed = capsys.readouterr().out
    assert rc == 0 and "PRDN" in printed and "frechet_distance" in printed and "code search: 2 candidates" in printed
    assert f"codec of {tiny_pipeline}" in printed and "mean±std over 2 seeds" in printed
    report = json.loads((out / "report.json").read_text())
    generation = report["generation"]
    assert generation["compared"] == ["diffusion"] and generation["seeds"] == [0, 1]
    assert generation["references"] == ["train_windows", "train_decoded"]
    assert set(generation["generators"]) == {
        "diffusion",
        "floor",
        "train_windows",
        "train_decoded",
        "phase_randomised",
        "autoregressive",
        "gaussian",
        "train_copies",
    }
    assert "train-decoded" in printed and "a perfect prior over its codes" in printed
    references = generation["generators"]["train_windows"], generation["generators"]["train_decoded"]
    # copies vs decoded; copies score 0 up to the float32 FFT's rounding (1.8e-4 on one 2-core machine, 0 on another)
    assert references[0]["memorisation_ratio"]["mean"] < 1e-3 < references[1]["memorisation_ratio"]["mean"]
    diffusion = generation["generators"]["diffusion"]
    assert diffusion["windows_per_seed"] == 16 and len(diffusion["figures"]["mmd"]["per_seed"]) == 2
    assert diffusion["info"]["kind"] == "diffusion" and diffusion["info"]["steps"] == 4
    assert report["reconstruction"]["per_record"] and report["codebook"]["num_codes"] == 32
    assert report["versions"]["torch"] and report["config"]["seed"] == 0 and report["codec_of"] == str(tiny_pipeline)
    for name in (
        "examples.png",
        "spectra.png",
        "heart_rate.png",
        "rr_irregularity.png",
        "beats.png",
        "codebook_usage.png",
        "reconstruction.png",
        "features_pca.png",
        "comparison.png",
    ):
        assert (out / name).stat().st_size > 1000, name

    # external samples alone: no codec figures that a reader could take for the generator's
    noise = np.random.default_rng(0).normal(size=(12, 256, 1)).astype(np.float32)
    np.save(tmp_path / "external.npy", noise)
    rc = cli_main(
        [
            "eval",
            "--samples",
            f"noise={tmp_path / 'external.npy'}",
            "--data",
            str(tiny_runs["store"]),
            "--n",
            "8",
            "--folds",
            "2",
            "--seeds",
            "2",
            "--classifier-steps",
            "20",
            "--baselines",
            "gaussian",
            "--no-morphology",
            "--out",
            str(tmp_path / "external"),
        ]
    )
    external = json.loads((tmp_path / "external" / "report.json").read_text())
    assert rc == 0 and "reconstruction" not in external and "codec of" not in capsys.readouterr().out
    assert (
        external["generation"]["generators"]["noise"]["windows_per_seed"] == 6
    )  # 12 windows, a disjoint share per seed
    assert set(external["generation"]["generators"]) == {
        "noise",
        "floor",
        "train_windows",
        "gaussian",
    }  # no codec: no train_decoded
    assert external["generation"]["morphology"] == "off"
    assert (
        "qtc_wasserstein_ms" in report["generation"]["generators"]["floor"]["figures"]
    )  # the first report delineated beats

    # two reports side by side
    assert cli_main(["eval", "--compare", str(out), str(tmp_path / "external")]) == 0
    printed = capsys.readouterr().out
    assert "report:diffusion" in printed and "external:noise" in printed and "frechet_distance" in printed

    # an unknown baseline is refused by name before any work; the help names every baseline there is
    assert (
        cli_main(
            [
                "eval",
                "--samples",
                str(tmp_path / "external.npy"),
                "--data",
                str(tiny_runs["store"]),
                "--baselines",
                "nope",
                "--out",
                str(tmp_path / "nope"),
            ]
        )
        == 2
    )
    assert "unknown baseline(s) ['nope']" in capsys.readouterr().err and not (tmp_path / "nope").exists()
    from tsvq.evaluation.baselines import BASELINES

    with pytest.raises(SystemExit):
        cli_main(["eval", "--help"])
    eval_help = capsys.readouterr().out
    assert all(name in eval_help for name in BASELINES)

    np.save(tmp_path / "bad.npy", np.zeros((8, 100, 1), dtype=np.float32))
    assert (
        cli_main(
            [
                "eval",
                "--samples",
                str(tmp_path / "bad.npy"),
                "--data",
                str(tiny_runs["store"]),
                "--out",
                str(tmp_path / "bad"),
            ]
        )
        == 2
    )
    assert not (tmp_path / "bad").exists()


def test_cli_eval_compare_puts_priors_and_external_samples_in_one_report(tiny_runs, tiny_pipeline, tmp_path, capsys):
    samples = np.random.default_rng(1).normal(size=(9, 256, 1)).astype(np.float32)
    np.save(tmp_path / "other.npy", samples)
    rc = cli_main(
        [
            "eval",
            "--pipeline",
            str(tiny_pipeline),
            "--data",
            str(tiny_runs["store"]),
            "--compare",
            "diffusion",
            "wavenet",
            f"other={tmp_path / 'other.npy'}",
            "--n",
            "8",
            "--steps",
            "3",
            "--folds",
            "2",
            "--seeds",
            "1",
            "--classifier-steps",
            "10",
            "--baselines",
            "--no-physiology",
            "--no-references",
            "--out",
            str(tmp_path / "report"),
        ]
    )
    printed = capsys.readouterr().out
    assert rc == 0 and all(name in printed.splitlines()[3] for name in ("diffusion", "wavenet", "other", "floor"))
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    generation = report["generation"]
    assert generation["compared"] == ["diffusion", "wavenet", "other"] and generation["baselines"] == []
    assert generation["references"] == [] and set(generation["generators"]) == {
        "diffusion",
        "wavenet",
        "other",
        "floor",
    }
    assert (
        generation["informative"] == {} and "(uninf.)" not in printed
    )  # no baseline scored: no figure marked uninformative
    # --steps belongs to the diffusion prior; the WaveNet prior is drawn without it instead of refusing it
    assert (
        generation["generators"]["diffusion"]["info"]["steps"] == 3
        and "steps" not in generation["generators"]["wavenet"]["info"]
    )
    assert (tmp_path / "report" / "comparison.png").stat().st_size > 1000
    assert (
        cli_main(["eval", "--data", str(tiny_runs["store"]), "--compare", "diffusion", "--out", str(tmp_path / "x")])
        == 2
    )
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "report.json").write_text(json.dumps({"format_version": 1}))
    assert cli_main(["eval", "--compare", str(tmp_path / "report"), str(tmp_path / "old")]) == 2
    assert "report format 1; this tsvq compares format 2" in capsys.readouterr().err


def test_label_classification_score_separates_learnable_classes(sets):
    from tsvq.evaluation.classify import label_classification_score

    real_a, real_b, noise, _ = sets
    x_train = np.concatenate([real_a[:40], noise[:40]])
    y_train = np.array([0] * 40 + [1] * 40)
    x_test = np.concatenate([real_b[:20], noise[40:]])
    y_test = np.array([0] * 20 + [1] * 20)
    score = label_classification_score(x_train, y_train, x_test, y_test, 2)
    assert score["balanced_accuracy"] > 0.9 and score["macro_f1"] > 0.9
    shuffled = label_classification_score(x_train, np.random.default_rng(0).permutation(y_train), x_test, y_test, 2)
    assert shuffled["balanced_accuracy"] < score["balanced_accuracy"]


def test_eval_refuses_a_store_that_does_not_match_the_pipeline(tiny_pipeline, tmp_path):
    from tsvq.data import ArraySource, PrepareConfig, prepare
    from tsvq.errors import DataError
    from tsvq.evaluation import evaluate
    from tsvq.pipeline import Pipeline

    signals = np.random.default_rng(0).normal(size=(6, 2048, 1))
    store = prepare(
        PrepareConfig(source="unused", rate_hz=250, window_samples=256, test_groups=["row0"], val_groups=["row1"]),
        tmp_path / "store",
        progress=False,
        sources=[ArraySource(signals, 250)],
    )
    with pytest.raises(
        DataError, match=r"does not match the pipeline: sampling rate \(Hz\) 250.0 vs the pipeline's 125.0"
    ):
        evaluate(store, tmp_path / "report", pipeline=Pipeline.from_pretrained(tiny_pipeline), progress=False)
    assert not (tmp_path / "report").exists()


def test_eval_refuses_a_held_out_split_too_small_for_two_disjoint_halves(tmp_path):
    """Four test windows cut with 75% overlap all fall in one time block: no two halves can avoid sharing samples."""
    from tsvq.data import ArraySource, PrepareConfig, prepare
    from tsvq.errors import DataError
    from tsvq.evaluation import EvalConfig, evaluate

    signals = np.stack([ecg_like(2560 / RATE, RATE, seed=i)[:2560, None] for i in range(3)])
    store = prepare(
        PrepareConfig(
            source="unused",
            rate_hz=RATE,
            window_samples=256,
            stride_seconds=64 / RATE,
            test_groups=["row0"],
            val_groups=["row1"],
        ),
        tmp_path / "store",
        progress=False,
        sources=[ArraySource(signals[:, :448], RATE)],
    )
    samples = np.zeros((4, 256, 1), dtype=np.float32) + np.random.default_rng(0).normal(size=(4, 256, 1)).astype(
        np.float32
    )
    with pytest.raises(DataError, match="leave too few for two non-overlapping halves"):
        evaluate(store, tmp_path / "report", EvalConfig(n=4, seeds=1), samples=samples, progress=False)
    assert not (tmp_path / "report").exists()


def test_reference_rows_are_training_windows_and_their_codec_round_trip(tiny_runs, tiny_pipeline, tmp_path, capsys):
    """train_decoded must be the codec's round trip of the very windows train_windows draws (the decomposition of a
    prior's gap rests on it), drawn anew for each seed and at the size asked for."""
    from tsvq.data import WindowStore
    from tsvq.evaluation.config import EvalConfig
    from tsvq.evaluation.generators import reference_generators
    from tsvq.evaluation.heldout import held_out
    from tsvq.pipeline import Pipeline

    pipeline = Pipeline.from_pretrained(tiny_pipeline)
    store = WindowStore(tiny_runs["store"])
    index = store.subset_indices("test", max_windows=8, seed=0)
    heldout = held_out(store, np.asarray(store.windows[index]), index, EvalConfig(n=4, seeds=1))
    windows, decoded = (g.draw(0, 5, 6) for g in reference_generators(pipeline, heldout))
    assert windows.shape == decoded.shape == (6, *heldout.train.shape[1:])
    assert all(np.any(np.all(heldout.train == w, axis=(1, 2))) for w in windows)  # real training windows, unchanged
    np.testing.assert_allclose(decoded, pipeline.codec.decode_codes(pipeline.codec.encode_windows(windows)), atol=1e-6)
    assert not np.allclose(decoded, windows)
    assert not np.array_equal(
        reference_generators(pipeline, heldout)[0].draw(1, 6, 6), windows
    )  # another seed, other windows

    # a pipeline with a codec and no prior: the codec's figures and how close any prior over it could get
    assert cli_main(["assemble", "--codec", str(tiny_pipeline / "codec"), "--out", str(tmp_path / "codec-only")]) == 0
    assert (
        cli_main(
            [
                "eval",
                "--pipeline",
                str(tmp_path / "codec-only"),
                "--data",
                str(tiny_runs["store"]),
                "--n",
                "8",
                "--seeds",
                "1",
                "--folds",
                "2",
                "--classifier-steps",
                "10",
                "--baselines",
                "--no-physiology",
                "--out",
                str(tmp_path / "report"),
            ]
        )
        == 0
    )
    assert "PRDN" in capsys.readouterr().out
    generation = json.loads((tmp_path / "report" / "report.json").read_text())["generation"]
    assert generation["compared"] == [] and set(generation["generators"]) == {"floor", "train_windows", "train_decoded"}


def test_learned_scores_are_the_same_fitted_side_by_side(sets):
    """The folds' classifiers and the chunks' forecasters train on two threads when torch has two; the scores must
    not change with that (each fit is single-threaded, with its own model and batches)."""
    real_a, real_b, noise, _ = sets
    mixed = np.concatenate([real_b[:20], noise[:20]])
    previous = torch.get_num_threads()
    scores = {}
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            scores[threads] = (
                discriminative_score(real_a[:40], mixed, folds=3, steps=20),
                predictive_scores([real_b[:20], noise[:20], mixed], real_a[:20], steps=20, seeds=[4, 5, 6]),
            )
    finally:
        torch.set_num_threads(previous)
    assert scores[1] == scores[2]
    one_by_one = [
        predictive_score(train, real_a[:20], steps=20, seed=seed)
        for train, seed in ((real_b[:20], 4), (noise[:20], 5), (mixed, 6))
    ]
    assert scores[2][1] == one_by_one


def test_sets_scored_together_match_sets_scored_alone(sets):
    """`tsvq eval` pools the fits of every set of a seed (the floor's, each generator's) into one side-by-side run;
    each set's figures must be those it gets scored alone."""
    real_a, real_b, noise, features = sets
    reference, *candidates = (ScoredSet.of(w, features, RATE, None) for w in (real_a[:30], real_b[:30], noise[:40]))
    alone = [
        set_figures(reference, candidate, RATE, folds=2, steps=15, seed=3, chunk_size=20) for candidate in candidates
    ]
    planned = [plan_set(reference, candidate, folds=2, steps=15, seed=3, chunk_size=20) for candidate in candidates]
    together = [
        finish_set(pending, learned, RATE) for pending, learned in zip(planned, fit_all([p.learned for p in planned]))
    ]
    assert together == alone
    assert (
        alone[1]["discriminative_score"] > alone[0]["discriminative_score"]
    )  # noise is told apart, so the test can fail


def test_sets_scored_in_worker_processes_match_sets_scored_in_turn(monkeypatch):
    """`tsvq eval` scores a seed's sets side by side in worker processes when there is much signal (delineation holds
    the GIL); every field of every set must be what scoring them one after another gives."""
    pytest.importorskip(
        "neurokit2", reason="beat morphology needs neurokit2 (pip install 'tsvq[morphology]'; make test has it)"
    )
    import dataclasses

    from tsvq.evaluation import scoring
    from tsvq.evaluation.physiology import beat_source

    windows = [ecg_windows(12, seed) for seed in (5, 6)]
    windows.append(np.random.default_rng(8).normal(0, 0.3, windows[0].shape).astype(np.float32))  # noise: other "beats"
    features = RandomKernelFeatures(512, 1, num_kernels=16, seed=0).fit_scale(windows[0])
    beats = beat_source(["MLII"], ["mV"])
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        monkeypatch.setattr(scoring, "PARALLEL_MIN_SAMPLES", 10**15)
        in_turn = scoring.score_sets(windows, features, RATE, beats, morphology=True)
        monkeypatch.setattr(scoring, "PARALLEL_MIN_SAMPLES", 0)
        side_by_side = scoring.score_sets(windows, features, RATE, beats, morphology=True)
    finally:
        torch.set_num_threads(previous)
    assert len(in_turn[0].beats.qrs) > 12  # beats were delineated, so the comparison has something to compare
    for alone, parallel in zip(in_turn, side_by_side, strict=True):
        np.testing.assert_array_equal(alone.windows, parallel.windows)
        np.testing.assert_array_equal(alone.features, parallel.features)
        for name, value in dataclasses.asdict(alone.beats).items():
            np.testing.assert_array_equal(value, getattr(parallel.beats, name), err_msg=name)
        assert alone.rhythm.keys() == parallel.rhythm.keys()
        for key, value in alone.rhythm.items():
            if isinstance(value, list):
                assert len(value) == len(parallel.rhythm[key])
                for a, b in zip(value, parallel.rhythm[key], strict=True):
                    np.testing.assert_array_equal(a, b, err_msg=key)
            else:
                np.testing.assert_array_equal(value, parallel.rhythm[key], err_msg=key)
