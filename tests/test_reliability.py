"""Crash-safe training, safe loading and the bad-input catalogue of docs/errors.md."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from tests.conftest import TINY_CODEC, tiny_training
from tsvq.errors import CheckpointError, ConfigError
from tsvq.pipeline import Pipeline
from tsvq.training.loop import list_checkpoints

ROOT = Path(__file__).resolve().parents[1]


def _stage_config(tmp_path: Path, stage: str, store: Path, output: Path, codec: Path | None = None) -> Path:
    config = {
        "store": str(store),
        "training": {
            "output_dir": str(output),
            "max_steps": 24,
            "batch_size": 8,
            "learning_rate": 2e-3,
            "warmup_steps": 2,
            "eval_every": 24,
            "checkpoint_every": 4,
            "checkpoints_to_keep": 2,
            "log_every": 4,
            "progress": False,
            "log_with": [],
        },
    }
    if stage == "codec":
        config["model"] = TINY_CODEC
    else:
        config["codec"] = str(codec)
        config["model"] = {"block_out_channels": [16, 32]}
    path = tmp_path / f"{stage}-{output.name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _train_command(stage: str, config: Path) -> list[str]:
    return [sys.executable, "-m", "tsvq.cli", "train", stage, "--config", str(config)]


def _run(command: list[str]) -> None:
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]


def _kill_after_first_checkpoint(command: list[str], output: Path) -> None:
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None:
        if list_checkpoints(output):
            break
        time.sleep(0.02)
    time.sleep(0.3)  # let it run on into the next steps (and maybe into the next checkpoint write)
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "training ended before it could be killed; make the run longer"


def _final_weights(output: Path) -> dict[str, torch.Tensor]:
    return load_file(list_checkpoints(output)[-1] / "model.safetensors")


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["codec", "diffusion"])
def test_sigkill_then_rerun_resumes_to_identical_weights(tiny_runs, tmp_path, stage):
    store, codec = tiny_runs["store"], tiny_runs["codec"]
    reference, interrupted = tmp_path / "reference", tmp_path / "interrupted"
    _run(_train_command(stage, _stage_config(tmp_path, stage, store, reference, codec)))
    command = _train_command(stage, _stage_config(tmp_path, stage, store, interrupted, codec))
    _kill_after_first_checkpoint(command, interrupted)
    assert not (interrupted / "model").exists() or stage == "codec"
    _run(command)  # the same command again resumes
    assert [p.name for p in list_checkpoints(interrupted)] == [p.name for p in list_checkpoints(reference)]
    a, b = _final_weights(reference), _final_weights(interrupted)
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    if stage == "diffusion":  # the EMA weights (what the prior is saved with) resume exactly too
        from tsvq.priors import DiffusionPrior

        ema_a = DiffusionPrior.from_pretrained(reference / "model").denoiser.state_dict()
        ema_b = DiffusionPrior.from_pretrained(interrupted / "model").denoiser.state_dict()
        assert all(torch.equal(ema_a[k], ema_b[k]) for k in ema_a)
    assert not [p for p in (interrupted / "checkpoints").iterdir() if p.name.startswith(".")]
    assert len(list_checkpoints(interrupted)) == 2  # bounded number kept
    summary = json.loads((interrupted / "training_summary.json").read_text())
    assert summary["resumed_at_step"] > 0
    # the time and windows of the stretch before the kill count too: every kept step's 8 windows, none twice
    assert summary["windows"] == json.loads((reference / "training_summary.json").read_text())["windows"] == 24 * 8


def test_training_drops_the_prepared_model_before_the_process_group_ends(tiny_runs, tmp_path, monkeypatch):
    """accelerate's end_training destroys the process group. A DDP wrapper still held then makes its reducer tear the
    group down later with the GIL held, which deadlocked 2-process runs at exit; the loop must let go of it first."""
    from accelerate import Accelerator

    from tsvq.training.codec import CodecStageConfig, train_codec

    held_at_end = []
    original = Accelerator.end_training

    def end_training(self):
        held_at_end.append(len(self._models))
        original(self)

    monkeypatch.setattr(Accelerator, "end_training", end_training)
    train_codec(
        CodecStageConfig(store=str(tiny_runs["store"]), model=TINY_CODEC, training=tiny_training(tmp_path / "codec", 2))
    )
    assert held_at_end == [0]


def test_unfinished_checkpoint_folder_is_never_resumed(tmp_path):
    (tmp_path / "checkpoints" / ".checkpoint-0000008.tmp").mkdir(parents=True)
    (tmp_path / "checkpoints" / "checkpoint-0000004").mkdir()
    assert [p.name for p in list_checkpoints(tmp_path)] == ["checkpoint-0000004"]


class _Exploit:
    def __reduce__(self):
        return (os.system, (f"touch {os.environ.get('TSVQ_EXPLOIT_MARKER', '/tmp/tsvq-exploit-marker')}",))


def test_malicious_pickle_in_a_pipeline_folder_is_never_executed(tiny_pipeline, tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    monkeypatch.setenv("TSVQ_EXPLOIT_MARKER", str(marker))
    folder = Pipeline.from_pretrained(tiny_pipeline).save_pretrained(tmp_path / "pipeline")
    payload = pickle.dumps(_Exploit())
    for name in ("diffusion_pytorch_model.bin", "pytorch_model.bin", "model.pt"):
        (folder / "codec" / name).write_bytes(payload)
    Pipeline.from_pretrained(folder)  # safetensors present: the pickles are ignored
    (folder / "codec" / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="never loads pickled weights"):
        Pipeline.from_pretrained(folder)
    assert not marker.exists()


def test_truncated_or_corrupt_safetensors_is_named(tiny_pipeline, tmp_path):
    folder = Pipeline.from_pretrained(tiny_pipeline).save_pretrained(tmp_path / "pipeline")
    weights = folder / "codec" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"codec/diffusion_pytorch_model\.safetensors: corrupt or truncated"):
        Pipeline.from_pretrained(folder)
    weights.write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        Pipeline.from_pretrained(folder)


def test_configs_from_newer_or_incompatible_versions_are_refused(tiny_pipeline, tmp_path):
    folder = Pipeline.from_pretrained(tiny_pipeline).save_pretrained(tmp_path / "pipeline")
    config_file = folder / "codec" / "config.json"
    config = json.loads(config_file.read_text())
    config_file.write_text(json.dumps(config | {"hyperbolic_codes": True}))
    with pytest.raises(CheckpointError, match=r"\['hyperbolic_codes'\] are unknown.*newer or incompatible"):
        Pipeline.from_pretrained(folder)
    config_file.write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        Pipeline.from_pretrained(folder)
    config_file.write_text(json.dumps(config))
    index = json.loads((folder / "pipeline.json").read_text())
    (folder / "pipeline.json").write_text(json.dumps(index | {"format_version": 99}))
    with pytest.raises(CheckpointError, match="newer tsvq"):
        Pipeline.from_pretrained(folder)
    (folder / "pipeline.json").write_text(json.dumps(index))
    prior_file = folder / "priors" / "diffusion" / "prior.json"
    prior_file.write_text(json.dumps(json.loads(prior_file.read_text()) | {"format_version": 7}))
    with pytest.raises(CheckpointError, match="newer tsvq"):
        Pipeline.from_pretrained(folder)


def test_weights_that_do_not_fit_the_config_are_named(tiny_pipeline, tmp_path):
    folder = Pipeline.from_pretrained(tiny_pipeline).save_pretrained(tmp_path / "pipeline")
    config_file = folder / "codec" / "config.json"
    config_file.write_text(json.dumps(json.loads(config_file.read_text()) | {"hidden_channels": 24}))
    with pytest.raises(CheckpointError, match="do not fit"):
        Pipeline.from_pretrained(folder)


def test_unknown_config_keys_in_yaml_are_errors(tmp_path):
    from tsvq.cli import load_stage_config

    path = tmp_path / "codec.yaml"
    path.write_text("store: x\ntraining:\n  max_stepz: 3\n")
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['max_stepz'\]"):
        load_stage_config("codec", str(path), [])
    path.write_text("store: [unclosed\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_stage_config("codec", str(path), [])


def test_codec_input_shape_and_dtype_errors_through_the_pipeline(tiny_pipeline):
    from tsvq.errors import DataError

    pipe = Pipeline.from_pretrained(tiny_pipeline)
    with pytest.raises(DataError, match="expected real-valued"):
        pipe.encode(np.zeros((1, 256, 1), dtype=np.complex64))
    with pytest.raises(DataError, match=r"expected shape \(B, L, C\)"):
        pipe.encode(np.zeros((256,), dtype=np.float32))
    with pytest.raises(DataError, match="must be integers"):
        pipe.codec.codes_to_vectors(torch.zeros(1, 64))
