"""docs/tutorial.md, run as written on four MIT-BIH records: only the step counts, the sample counts, the window
stride and the evaluation's effort (one seed, fewer classifier steps, no delineation, one baseline) are cut so that
it takes seconds; every command, path and option of the tutorial is kept."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np
import pytest
import wfdb

ROOT = Path(__file__).resolve().parents[1]
MITDB = ROOT.parent / "shared" / "data" / "mitdb"
RECORDS = ("100", "101", "103", "105")
SHORTER = {
    "training.max_steps=3000": "training.max_steps=2",
    "--n 16": "--n 2",
    "--n 200": "--n 12 --seeds 1 --no-morphology --classifier-steps 20 --baselines gaussian",
    "--val-groups 103": "--val-groups 103 --stride 20",
}


def tutorial_commands() -> list[str]:
    text = (ROOT / "docs" / "tutorial.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
    return [line for block in blocks for line in block.replace("\\\n", " ").splitlines() if line.strip()]


def test_the_tutorial_names_about_ten_commands_each_a_tsvq_command():
    commands = tutorial_commands()
    assert 8 <= len(commands) <= 12 and all(c.startswith("tsvq ") for c in commands), commands


@pytest.mark.slow
def test_the_tutorial_runs_as_written_on_real_records(tmp_path, monkeypatch):
    from tsvq.cli import main

    if not MITDB.is_dir():
        pytest.skip(f"real recordings not found at {MITDB} (they live in ../shared/data beside the project)")
    records = tmp_path / "my_records"
    records.mkdir()
    for name in RECORDS:  # the user's folder: links to the shared copies, nothing copied
        for suffix in (".hea", ".dat", ".atr"):
            (records / f"{name}{suffix}").symlink_to(MITDB / f"{name}{suffix}")
    monkeypatch.chdir(tmp_path)
    for command in tutorial_commands():
        for long, short in SHORTER.items():
            command = command.replace(long, short)
        assert main(shlex.split(command)[1:]) == 0, command
    assert (tmp_path / "runs/mine/report/report.json").is_file()
    assert len(np.load(tmp_path / "runs/mine/samples/samples.npy")) == 2
    restored = wfdb.rdrecord(str(tmp_path / "runs/mine/restored/105"))
    original = wfdb.rdheader(str(MITDB / "105"))
    assert restored.fs == original.fs and restored.sig_len == original.sig_len
