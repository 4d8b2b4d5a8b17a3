"""Multi-node training proven on loopback: two "machines" of one CPU process each (gloo), launched as a cluster
launches them, against one machine with two processes; and a run killed on both nodes that resumes."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from tests.conftest import TINY_CODEC, free_port
from tests.test_distributed import ACCELERATE, ROOT, _launch, _training


def _launch_machines(stage: str, config: dict, tmp_path: Path, kill_after: Path | None = None) -> list[str]:
    """The stage as two "machines" of one CPU process each on loopback (`recipes/accelerate/multi_node.yaml`,
    gloo), launched as a cluster would: the same command on each node with its --machine_rank. With ``kill_after``
    (a checkpoints folder) both are killed (SIGKILL, whole process groups) once it holds a finished checkpoint.
    Returns each launcher's stdout."""
    import signal
    import time

    path = tmp_path / f"{stage}-nodes.yaml"
    path.write_text(yaml.safe_dump(config))
    env = os.environ | {"ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    port = str(free_port())
    launchers = [
        subprocess.Popen(
            [
                str(ACCELERATE),
                "launch",
                "--config_file",
                str(ROOT / "recipes/accelerate/multi_node.yaml"),
                "--machine_rank",
                str(rank),
                "--main_process_ip",
                "127.0.0.1",
                "--main_process_port",
                port,
                "-m",
                "tsvq.cli",
                "train",
                stage,
                "--config",
                str(path),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        for rank in (0, 1)
    ]
    if kill_after is not None:
        deadline = time.time() + 300

        def finished() -> bool:
            return kill_after.is_dir() and any(p.name.startswith("checkpoint-") for p in kill_after.iterdir())

        while not finished() and time.time() < deadline and all(p.poll() is None for p in launchers):
            time.sleep(0.02)
        assert finished() and all(p.poll() is None for p in launchers), "the run ended before it could be killed"
        import psutil  # torchrun starts its workers in their own process groups: kill each launcher's whole tree

        tree = [psutil.Process(p.pid) for p in launchers]
        tree += [child for process in list(tree) for child in process.children(recursive=True)]
        for process in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.send_signal(signal.SIGKILL)
    outputs = []
    for launcher in launchers:
        out, err = launcher.communicate(timeout=600)
        if kill_after is None:
            assert launcher.returncode == 0, err[-4000:]
        outputs.append(out)
    return outputs


def _state_hash(output: Path) -> list[str]:
    return json.loads((output / "training_summary.json").read_text())["rank_state_hashes"]


def _one_process(stage: str, config: dict, tmp_path: Path) -> None:
    """The stage as one plain process (no launcher), as on a laptop."""
    path = tmp_path / f"{stage}-one-process.yaml"
    path.write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "tsvq.cli", "train", stage, "--config", str(path)]
    done = subprocess.run(command, cwd=ROOT, env=os.environ | {"OMP_NUM_THREADS": "1"}, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-4000:]


def _weights(model: Path) -> dict:
    from safetensors.torch import load_file

    return {
        f"{f.relative_to(model)}:{k}": v for f in sorted(model.rglob("*.safetensors")) for k, v in load_file(f).items()
    }


@pytest.mark.slow
def test_two_machines_on_loopback_train_as_one_machine_with_two_processes_and_resume_when_killed(tiny_runs, tmp_path):
    store, codec = str(tiny_runs["store"]), str(tiny_runs["codec"])
    augment = {"gain": [0.5, 2.0], "flip_probability": 0.5, "stretch": [0.8, 1.25], "time_warp": 0.2}
    stages = {
        "codec": {"store": store, "model": TINY_CODEC, "augment": augment},
        "wavenet": {"store": store, "codec": codec, "model": {"residual_channels": 16, "skip_channels": 16}},
    }
    for stage, config in stages.items():
        machines = config | {"training": _training(tmp_path / f"{stage}-machines")}
        outputs = _launch_machines(stage, machines, tmp_path)
        assert sum(out.count(f"{stage} saved to") for out in outputs) == 1  # the main process of node 0 only
        _launch(stage, config | {"training": _training(tmp_path / f"{stage}-one")}, tmp_path)
        two, one = _state_hash(tmp_path / f"{stage}-machines"), _state_hash(tmp_path / f"{stage}-one")
        assert two[0] == two[1] == one[0] == one[1], f"{stage}: two machines {two} against one machine {one}"
        # one process at the same global batch (2 x 8): the same data, k-means, restarts and augmentations, so the
        # same weights but for the order of the gradients' sums
        single = _training(tmp_path / f"{stage}-single") | {"batch_size": 16}
        _one_process(stage, config | {"training": single}, tmp_path)
        got, expected = (
            _weights(tmp_path / f"{stage}-single" / "model"),
            _weights(tmp_path / f"{stage}-machines" / "model"),
        )
        assert got.keys() == expected.keys() and got
        for name, tensor in expected.items():
            torch.testing.assert_close(got[name], tensor, rtol=1e-4, atol=1e-5, msg=f"{stage}: {name}")
    # killed on both nodes at once after a checkpoint, the same command resumes and ends where an unbroken run ends
    long = {"max_steps": 600, "checkpoint_every": 20, "eval_every": 600}
    unbroken = stages["codec"] | {"training": _training(tmp_path / "unbroken") | long}
    _launch_machines("codec", unbroken, tmp_path)
    broken = stages["codec"] | {"training": _training(tmp_path / "broken") | long}
    _launch_machines("codec", broken, tmp_path, kill_after=tmp_path / "broken" / "checkpoints")
    assert not (tmp_path / "broken" / "training_summary.json").exists()
    outputs = _launch_machines("codec", broken, tmp_path)
    assert any("resumed from" in out for out in outputs)
    assert _state_hash(tmp_path / "broken") == _state_hash(tmp_path / "unbroken")
