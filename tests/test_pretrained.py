"""The pipeline shipped inside the package: listed, loaded by name (API and CLI), and it round-trips a record."""

from __future__ import annotations

import numpy as np
import pytest
import wfdb

from tsvq import Pipeline, list_pretrained
from tsvq.cli import main
from tsvq.data import builtin, read_record
from tsvq.errors import CheckpointError

NAME = "ecg-single-lead"


def test_the_shipped_pipeline_is_listed_small_and_records_its_preprocessing():
    assert NAME in list_pretrained() and list_pretrained()[NAME]
    pipe = Pipeline.from_pretrained(NAME)
    assert pipe.name == NAME and set(pipe.priors) == {"diffusion", "wavenet"}
    assert pipe.preprocessing.sampling_rate_hz == 250 and (
        pipe.preprocessing.highpass_hz,
        pipe.preprocessing.lowpass_hz,
    ) == (0.5, 40)
    assert sum(p.numel() for p in pipe.codec.parameters()) < 1_000_000


def test_the_shipped_pipeline_round_trips_a_real_record_through_the_cli(tmp_path, capsys):
    """Five minutes of MIT-BIH record 208 (built in), compressed and decompressed with the pipeline named, not a
    folder."""
    record = builtin.materialize(builtin.MITDB208, tmp_path / "cache") / "208"
    assert main(["compress", str(record), "--pipeline", NAME, "--out", str(tmp_path / "208.tsvqz")]) == 0
    printed = capsys.readouterr().out
    prdn = float(printed.split("PRDN against")[1].split(": MLII ")[1].split("%")[0])
    assert prdn < 12.0  # measured 2026-11-23: see docs/pretrained.md
    assert main(["decompress", str(tmp_path / "208.tsvqz"), "--pipeline", NAME, "--out", str(tmp_path / "r208")]) == 0
    restored = wfdb.rdrecord(str(tmp_path / "r208"))
    original = read_record(record)
    assert restored.fs == original.sampling_rate_hz and restored.p_signal.shape == original.signal[:, :1].shape


def test_a_name_that_is_neither_a_folder_nor_shipped_is_named():
    with pytest.raises(CheckpointError, match="no pretrained pipeline of that name"):
        Pipeline.from_pretrained("ecg-does-not-exist")


def test_the_shipped_pipeline_scores_ecg_as_more_typical_than_noise():
    pipe = Pipeline.from_pretrained(NAME)
    record = builtin.materialize(builtin.MITDB208) / "208"
    x = pipe.preprocess(read_record(record).signal[:, :1], 360.0)[None, : 4 * pipe.window_length]
    noise = np.random.default_rng(0).normal(0, x.std(), x.shape).astype(np.float32)
    ecg_bits, noise_bits = pipe.log_likelihood(x)[0], pipe.log_likelihood(noise)[0]
    assert ecg_bits < noise_bits


def test_tsvq_eval_scores_the_shipped_pipeline_out_of_the_box(tmp_path):
    """A store prepared at the pipeline's rate and window (the defaults) is all `tsvq eval --pipeline NAME` needs."""
    import json

    assert main(["prepare", "--source", "mitdb208", "--split-by", "time", "--out", str(tmp_path / "store")]) == 0
    assert (
        main(
            [
                "eval",
                "--pipeline",
                NAME,
                "--data",
                str(tmp_path / "store"),
                "--n",
                "16",
                "--steps",
                "5",
                "--no-physiology",
                "--folds",
                "2",
                "--seeds",
                "1",
                "--classifier-steps",
                "20",
                "--out",
                str(tmp_path / "report"),
            ]
        )
        == 0
    )
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["reconstruction"]["prdn"] < 15 and report["codec_of"] == NAME
    assert (
        report["generation"]["generators"][report["generation"]["compared"][0]]["figures"]["frechet_distance"]["mean"]
        > 0
    )
