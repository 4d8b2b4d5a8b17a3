"""Bad input a careful user tried, one line each: every probe must end in one `tsvq <command>: error:` line that
says what is wrong, exit status 2, and leave every file in the workspace as it was (nothing written, nothing
deleted). Add a probe: one `Probe(...)` line below; `{name}` fields are filled from `workspace`, and `files`
writes small inputs (a YAML config, a forged file) before the probe runs.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import wfdb
from conftest import ecg_like, spoil_gain, write_record

from tsvq.cli import main

PIPE = "--pipeline ecg-single-lead"


@dataclass
class Probe:
    name: str
    command: str  # the `tsvq` arguments, with {placeholders} from the workspace
    says: str  # a part of the one-line error
    files: dict[str, str] = field(default_factory=dict)  # small inputs written first (relative to the workspace)


PROBES = [
    # outputs that would destroy or mix into what a user made
    Probe("prepare into a user's folder", "prepare --source db --out user", "was not made by tsvq"),
    Probe("prepare over its own source", "prepare --source db --out db", "is the input"),
    Probe("prepare into the current folder", "prepare --source db --out .", "holds the input db"),
    Probe(
        "prepare into a user's folder, overwrite", "prepare --source db --out user --overwrite", "was not made by tsvq"
    ),
    Probe("sample into a user's folder", f"sample {PIPE} --n 2 --steps 2 --out user", "was not made by tsvq"),
    Probe(
        "sample into a user's folder, overwrite", f"sample {PIPE} --n 2 --out user --overwrite", "was not made by tsvq"
    ),
    Probe(
        "eval into a user's folder",
        "eval --pipeline {pipeline} --data {store} --out user --n 4",
        "was not made by tsvq",
    ),
    Probe("assemble into a user's folder", "assemble --codec {codec} --out user", "was not made by tsvq"),
    Probe("assemble over its own codec", "assemble --codec {codec} --out {codec}", "is the input"),
    Probe("train into a user's folder", "train codec --store {store} --output-dir user", "was not made by tsvq"),
    # a refused run leaves no output folder behind (it was left holding only tsvq's marker and lock)
    Probe("train a prior on no codec", "train wavenet --store {store} --codec gone --output-dir run", "gone"),
    Probe(
        "train with a batch past the split",
        "train codec --store {store} --output-dir run --set training.batch_size=100000",
        "fewer than one batch",
    ),
    Probe("compress over an existing file", f"compress rec/100 {PIPE} --out kept.tsvqz", "already exists"),
    Probe(
        "compress over its own signal file", f"compress rec/100 {PIPE} --out rec/100.dat --overwrite", "is the input"
    ),
    Probe("decompress over an existing record", f"decompress kept.tsvqz {PIPE} --out rec/100", "not a file tsvq wrote"),
    Probe("decompress to a non-ASCII name", f"decompress kept.tsvqz {PIPE} --out rec/dé", "ASCII"),
    Probe("output under a file, not a folder", f"sample {PIPE} --n 2 --steps 2 --out user/thesis.txt/s", "thesis.txt"),
    # forged or inconsistent inputs
    Probe(
        "a forged compressed file",
        f"decompress forged.tsvqz {PIPE} --out out1",
        "not a tsvq compressed record",
        files={"forged.tsvqz": "TSVQY this is not one"},
    ),
    Probe(
        "a pipeline whose codec lies outside it",
        "sample --pipeline evil --n 2 --out s",
        "relative path inside",
        files={"evil/pipeline.json": '{"format_version": 2, "components": {"codec": "/etc"}, "priors": {}}'},
    ),
    Probe(
        "a pipeline whose prior climbs out of it",
        "sample --pipeline evil2 --n 2 --out s",
        "outside the pipeline folder",
        files={
            "evil2/pipeline.json": '{"format_version": 2, "components": {"codec": "codec"}, '
            '"priors": {"p": {"folder": "../../../../etc"}}}'
        },
    ),
    Probe("a header with a non-numeric gain", "prepare --source gain --out store1", "is not a number"),
    Probe("microvolts labelled mV", f"compress rec/uv {PIPE} --out uv.tsvqz", "check its unit"),
    Probe(
        "a bit rate below the lowest point",
        f"compress rec/100 {PIPE} --out x.tsvqz --bitrate 5",
        "lowest operating point",
    ),
    Probe(
        "two ways to set the point", f"compress rec/100 {PIPE} --out x.tsvqz --bitrate 500 --quantizers 1", "give one"
    ),
    # configs of the wrong type or range
    Probe(
        "max_steps: sixty",
        "train codec --config bad.yaml --store {store} --output-dir run1",
        "expected an integer",
        files={"bad.yaml": "training: {max_steps: sixty}"},
    ),
    Probe(
        "rate_hz: fast",
        "prepare --config bad.yaml --source db --out store1",
        "expected a number",
        files={"bad.yaml": "data: {rate_hz: fast}"},
    ),
    Probe(
        "hidden_channels: '8'",
        "train codec --config bad.yaml --store {store} --output-dir run1",
        "hidden_channels = '8'",
        files={"bad.yaml": "model: {hidden_channels: '8'}"},
    ),
    Probe(
        "negative learning rate",
        "train codec --store {store} --output-dir run1 --set training.learning_rate=-0.001",
        "learning_rate = -0.001",
    ),
    Probe(
        "batch_size: 0", "train codec --store {store} --output-dir run1 --set training.batch_size=0", "batch_size = 0"
    ),
    Probe(
        "channels: ii (a string)",
        "prepare --config bad.yaml --source db --out store1",
        "channels = 'ii'",
        files={"bad.yaml": "data: {channels: ii}"},
    ),
    Probe(
        "rate_hz: -250",
        "prepare --config bad.yaml --source db --out store1",
        "rate_hz = -250",
        files={"bad.yaml": "data: {rate_hz: -250}"},
    ),
    # command-line values out of range
    Probe("sample --batch-size 0", f"sample {PIPE} --n 2 --batch-size 0 --out s", "batch_size must be"),
    Probe(
        "sample --temperature -1", f"sample {PIPE} --prior wavenet --n 2 --temperature -1 --out s", "temperature = -1"
    ),
    Probe("sample --top-p 2", f"sample {PIPE} --prior wavenet --n 2 --top-p 2 --out s", "top_p = 2"),
    Probe("sample --guidance -3", f"sample {PIPE} --n 2 --guidance -3 --out s", "guidance = -3"),
    Probe("sample --device cuda:99", f"sample {PIPE} --n 2 --device cuda:99 --out s", "device 'cuda:99': this machine"),
    Probe("denoise --device bogus", f"denoise rec/100 {PIPE} --device bogus --out d", "device 'bogus': not a torch"),
    Probe("eval --n -1", "eval --pipeline {pipeline} --data {store} --out r --n -1", "n = -1"),
    Probe("eval --n 0", "eval --pipeline {pipeline} --data {store} --out r --n 0", "n = 0"),
    Probe("eval --samples of text", "eval --samples text.npy --data {store} --out r --n 4", "expected numbers"),
    Probe("eval --samples empty", "eval --samples empty.npy --data {store} --out r --n 4", "expected samples of shape"),
    Probe("eval --samples .npz", "eval --samples two.npz --data {store} --out r --n 4", ".npz archive"),
    Probe(
        "eval --task denoise --snr nan",
        "eval --task denoise --pipeline {pipeline} --data {store} --noise rec/100 --snr 6 nan --out r",
        "--snr: SNR nan dB: each must be a number of dB in [-100, 100]",
    ),
    Probe(
        "eval --task denoise --snr 1e9 (overflowed)",
        "eval --task denoise --pipeline {pipeline} --data {store} --noise rec/100 --snr 1e9 --out r",
        "SNR 1000000000.0 dB",
    ),
]


def _snapshot(root: Path) -> dict[str, str]:
    """Every file and folder under ``root`` with a hash of its content."""
    found = {}
    for folder, folders, files in os.walk(root):
        for name in folders:
            found[os.path.relpath(os.path.join(folder, name), root) + "/"] = "folder"
        for name in files:
            path = os.path.join(folder, name)
            found[os.path.relpath(path, root)] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return found


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, tiny_runs, tiny_pipeline) -> dict:
    """What the probes read: records, a compressed file, sample files, the tiny pipeline and its store."""
    root = tmp_path_factory.mktemp("probe-inputs")
    x = ecg_like(20, 360.0, seed=0)
    write_record(root / "rec", "100", np.stack([x, 0.5 * x], axis=1), 360.0, ["MLII", "V5"])
    wfdb.wrsamp(
        "uv",
        fs=360.0,
        units=["mV"],
        sig_name=["MLII"],
        p_signal=x[:, None] * 1000,
        fmt=["16"],
        write_dir=str(root / "rec"),
    )  # microvolt values, labelled mV
    for i in range(3):
        write_record(root / "db", f"r{i}", ecg_like(30, 250.0, seed=i), 250.0, ["II"])
        write_record(root / "gain", f"g{i}", ecg_like(30, 250.0, seed=i), 250.0, ["II"])
    spoil_gain(root / "gain" / "g1.hea")
    assert (
        main(["compress", str(root / "rec" / "100"), *PIPE.split(), "--out", str(root / "kept.tsvqz"), "--no-prdn"])
        == 0
    )
    np.save(root / "text.npy", np.array([["a", "b"]]))
    np.save(root / "empty.npy", np.zeros((0, 256, 1), np.float32))
    np.savez(root / "two.npz", a=np.zeros(3), b=np.ones(3))
    return {
        "root": root,
        "pipeline": str(tiny_pipeline),
        "store": str(tiny_runs["store"]),
        "codec": str(tiny_runs["codec"]),
    }


@pytest.mark.parametrize("probe", PROBES, ids=[p.name for p in PROBES])
def test_bad_input_gets_one_line_and_changes_nothing(probe, inputs, tmp_path, monkeypatch, capsys):
    import shutil

    for name in ("rec", "db", "gain", "kept.tsvqz", "text.npy", "empty.npy", "two.npz"):
        source = inputs["root"] / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, tmp_path / name)
    (tmp_path / "user").mkdir()
    (tmp_path / "user" / "thesis.txt").write_text("two years of work\n")
    for name, text in probe.files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    monkeypatch.chdir(tmp_path)
    before = _snapshot(tmp_path)
    argv = probe.command.format(**{k: v for k, v in inputs.items() if k != "root"}).split()
    status = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith(f"tsvq {argv[0]}: error:")]
    assert status == 2, f"{probe.name}: exit {status}; stderr: {err[-3:]}"
    assert len(errors) == 1 and probe.says in errors[0], f"{probe.name}: {err[-3:]}"
    assert not any("Traceback" in line for line in err)
    assert _snapshot(tmp_path) == before, f"{probe.name}: files changed"


def test_every_probe_has_a_distinct_name():
    assert len({p.name for p in PROBES}) == len(PROBES)
    assert all(json.dumps(p.files) for p in PROBES)
