"""`tsvq eval --task impute|forecast|denoise`: the pipeline repairing held-out stretches beside the baselines."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import tiny_training, write_record
from tsvq.cli import main
from tsvq.data import WindowStore
from tsvq.errors import ConfigError, DataError
from tsvq.evaluation.tasks import TaskConfig, format_task, stretches


def test_stretches_join_consecutive_windows_of_one_recording(tiny_runs):
    store = WindowStore(tiny_runs["store"])
    joined = stretches(store, "test", 6.0, 10, seed=0)
    per = int(np.ceil(6.0 * store.sampling_rate_hz / store.window_length))
    assert joined and all(len(s.signal) == per * store.window_length and len(s.labels) == per for s in joined)
    first = store.split_indices("test")[:per]
    if (np.diff(store.index["start"][first]) == store.window_length).all():
        same = [s for s in joined if np.array_equal(s.signal, np.asarray(store.windows[first])[:, :, 0].reshape(-1))]
        assert same and list(same[0].labels) == list(store.index["label"][first])
    stretch = joined[0]  # a sample's label is its window's
    assert stretch.label_at(0) == stretch.labels[0] and stretch.label_at(len(stretch.signal) - 1) == stretch.labels[-1]
    assert stretch.label_at(store.window_length) == stretch.labels[1]
    with pytest.raises(DataError, match="consecutive"):
        stretches(store, "test", 3600.0, 10, seed=0)
    with pytest.raises(ConfigError, match="needs --noise"):
        TaskConfig(task="denoise")


@pytest.mark.parametrize("task", ["impute", "forecast"])
def test_eval_task_scores_the_pipeline_beside_the_baselines(task, tiny_pipeline, tiny_runs, tmp_path, capsys):
    out = tmp_path / task
    argv = ["eval", "--task", task, "--pipeline", str(tiny_pipeline), "--data", str(tiny_runs["store"])]
    assert main([*argv, "--out", str(out), "--n", "3", "--stretch-seconds", "6", "--draws", "2"]) == 0
    report = json.loads((out / "report.json").read_text())
    expected = {"tsvq", "tsvq_mean", "autoregressive", "template_copy"}  # tsvq_mean: the mean of the two draws
    expected |= {"linear", "autoregressive_both_sides", "template_both_sides"} if task == "impute" else set()
    assert set(report["methods"]) == expected and report["stretches"] == 3
    assert all(0 <= m["r_peak_f1"] <= 1 and m["prdn_mean"] > 0 for m in report["methods"].values())
    assert (out / "task.png").stat().st_size > 10_000
    assert "template_copy" in capsys.readouterr().out
    by_label = report["by_label"]  # by the store's label of the window the hidden part lies in
    assert set(by_label) <= set(WindowStore(tiny_runs["store"]).index["label"])
    assert sum(next(iter(m.values()))["stretches"] for m in by_label.values()) == 3
    assert all(set(m) == expected for m in by_label.values())
    if len(by_label) == 1:
        assert next(iter(by_label.values())) == report["methods"]


def test_the_task_table_shows_each_label_beside_the_others():
    def summary(prdn: float, stretches: int) -> dict:
        return {"stretches": stretches, "prdn_mean": prdn, "prdn_median": prdn, "snr_db": 0.0, "r_peak_f1": 1.0}

    report = {
        "task": "impute", "stretches": 3, "stretch_seconds": 12.0,
        "methods": {"tsvq": summary(90.0, 3), "linear": summary(110.0, 3)},
        "by_label": {"N": {"tsvq": summary(80.0, 2), "linear": summary(105.0, 2)},
                     "V": {"tsvq": summary(110.0, 1), "linear": summary(120.0, 1)}},
    }  # fmt: skip
    lines = format_task(report).splitlines()
    start = lines.index("PRDN mean by the label of the window the hidden part lies in (stretches):")
    assert lines[start + 1].split()[-4:] == ["N", "(2)", "V", "(1)"]
    assert lines[start + 2].split() == ["tsvq", "80.0", "110.0"] and lines[start + 3].split() == [
        "linear",
        "105.0",
        "120.0",
    ]
    report["by_label"] = {"N": report["methods"]}  # one label: nothing more to show
    assert "by the label" not in format_task(report)


def test_eval_task_fills_with_the_prior_it_is_told(tiny_pipeline, tiny_runs, tmp_path):
    argv = ["eval", "--task", "impute", "--pipeline", str(tiny_pipeline), "--data", str(tiny_runs["store"])]
    argv += ["--n", "2", "--stretch-seconds", "6", "--draws", "2", "--prior", "diffusion", "--steps", "4"]
    assert main([*argv, "--out", str(tmp_path / "diffusion")]) == 0
    report = json.loads((tmp_path / "diffusion" / "report.json").read_text())
    assert report["config"]["prior"] == "diffusion" and report["config"]["sampling"] == {"steps": 4}
    assert 0 <= report["methods"]["tsvq"]["r_peak_f1"] <= 1 and report["methods"]["tsvq"]["prdn_mean"] > 0
    assert main([*argv, "--top-p", "0.9", "--out", str(tmp_path / "wrong")]) == 2  # a WaveNet option: refused
    assert not (tmp_path / "wrong").exists()  # nothing half-written


def test_eval_task_denoise_adds_recorded_noise(tiny_runs, tmp_path, capsys):
    from tsvq.pipeline import Pipeline
    from tsvq.training.denoiser import DenoiserStageConfig, train_denoiser

    rng = np.random.default_rng(0)
    noise = write_record(tmp_path / "noise", "ma", rng.normal(0, 0.2, 125 * 120), 125.0)
    denoiser = train_denoiser(
        DenoiserStageConfig(
            store=str(tiny_runs["store"]),
            codec=str(tiny_runs["codec"]),
            noise=[str(noise)],
            hidden_channels=16,
            num_res_blocks=1,
            training=tiny_training(tmp_path / "run", 4),
        )
    )
    pipe = Pipeline.from_stages(tiny_runs["codec"], denoiser=denoiser).save_pretrained(tmp_path / "pipe")
    out = tmp_path / "report"
    argv = ["eval", "--task", "denoise", "--pipeline", str(pipe), "--data", str(tiny_runs["store"]), "--out", str(out)]
    assert main([*argv, "--noise", str(noise), "--snr", "0", "12", "--n", "2", "--stretch-seconds", "6"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert set(report["by_snr_db"]) == {"0", "12"}
    noisy = report["by_snr_db"]["0"]["noisy"]["snr_db"]
    assert set(report["by_snr_db"]["0"]) == {"noisy", "wavelet", "tsvq"} and -12 < noisy < 0  # nst's 0 dB: QRS pp^2/8
    assert report["by_snr_db"]["12"]["noisy"]["snr_db"] > noisy + 8
    assert set(report["by_snr_db_and_label"]) == {"0", "12"}  # and by the label most of a stretch's windows carry
    for labels in report["by_snr_db_and_label"].values():
        assert sum(m["noisy"]["stretches"] for m in labels.values()) == 2
    assert "dB in" in capsys.readouterr().out
