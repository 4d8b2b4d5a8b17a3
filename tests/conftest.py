"""Shared fixtures: small WFDB records written by the tests themselves, and the real data when present."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import wfdb

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "wfdb"


def _threads_per_worker() -> int:
    """At most 2 threads, and no more than the worker's share of the cores when pytest-xdist runs several
    workers (oversubscribed torch threads spin and slow every worker down)."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    return max(1, min(2, (os.cpu_count() or 1) // workers))


@pytest.fixture(autouse=True)
def _seed_and_cache(tmp_path_factory, monkeypatch):
    torch.manual_seed(0)
    np.random.seed(0)
    torch.set_num_threads(_threads_per_worker())
    monkeypatch.setenv("TSVQ_CACHE", str(tmp_path_factory.getbasetemp() / "tsvq-cache"))


@pytest.fixture(scope="module")
def shipped():
    """The shipped pipeline, loaded once per test module (every test is reseeded by ``_seed_and_cache``)."""
    from tsvq.pipeline import Pipeline

    return Pipeline.from_pretrained("ecg-single-lead")


def free_port() -> int:
    """A port no one listens on, so that concurrent test workers' process groups do not collide."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real recordings not found at {SHARED_DATA} (they live in ../shared/data beside the project)")
    return SHARED_DATA


def ecg_like(seconds: float, rate: float, seed: int = 0, heart_rate_bpm: float = 72.0) -> np.ndarray:
    """A quick spiky periodic signal in mV (for reader tests; the realistic generator is tsvq.data.synthetic)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    phase = (t * heart_rate_bpm / 60.0) % 1.0
    return np.exp(-((phase - 0.5) ** 2) / 0.0008) + 0.1 * np.sin(2 * np.pi * 0.3 * t) + 0.01 * rng.normal(size=t.shape)


def write_record(
    folder: Path,
    name: str,
    signal: np.ndarray,
    rate: float,
    sig_names=None,
    fmt="16",
    beats: np.ndarray | None = None,
    symbols=None,
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    signal = signal[:, None] if signal.ndim == 1 else signal
    channels = signal.shape[1]
    sig_names = sig_names or [f"ch{i}" for i in range(channels)]
    gain = {"16": 1000.0, "212": 200.0, "80": 50.0}[fmt]
    wfdb.wrsamp(
        name,
        fs=rate,
        units=["mV"] * channels,
        sig_name=sig_names,
        p_signal=signal,
        fmt=[fmt] * channels,
        adc_gain=[gain] * channels,
        baseline=[0] * channels,
        write_dir=str(folder),
    )
    if beats is not None:
        wfdb.wrann(name, "atr", np.asarray(beats), symbol=symbols or ["N"] * len(beats), write_dir=str(folder))
    return folder / name


def spoil_gain(header: Path, gain: str = "abc/mV") -> None:
    """Write a non-numeric gain into a header's first signal line (wfdb would read it as its default, 200)."""
    lines = header.read_text().splitlines()
    fields = lines[1].split()
    fields[2] = gain
    header.write_text("\n".join([lines[0], " ".join(fields), *lines[2:]]) + "\n")


@pytest.fixture
def small_database(tmp_path) -> Path:
    """Four patients, one of them with two records in a subfolder, 250 Hz, 60 s each, with beat annotations."""
    root = tmp_path / "db"
    rate = 250.0
    for i, name in enumerate(["p1", "p2", "p3"]):
        x = ecg_like(60, rate, seed=i, heart_rate_bpm=60 + 10 * i)
        beats = np.arange(int(0.5 * rate * 60 / (60 + 10 * i)), len(x), int(rate * 60 / (60 + 10 * i)))
        symbols = ["V" if k % 7 == 3 else "N" for k in range(len(beats))]
        write_record(root, name, x, rate, ["MLII"], beats=beats, symbols=symbols)
    for j in range(2):
        write_record(root / "p4", f"seg{j}", ecg_like(60, rate, seed=10 + j), rate, ["II"])
    return root


TINY_CODEC = dict(hidden_channels=16, num_res_blocks=1, latent_dim=16, num_codes=32, downsample_factor=4)


def tiny_training(output_dir: Path, steps: int = 30, **extra):
    from tsvq.training.loop import TrainingConfig

    values = dict(
        output_dir=str(output_dir),
        max_steps=steps,
        batch_size=16,
        eval_every=steps,
        checkpoint_every=steps,
        log_every=10,
        warmup_steps=2,
        learning_rate=2e-3,
        progress=False,
        log_with=["jsonl"],
    )
    return TrainingConfig(**(values | extra))


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory) -> dict[str, Path]:
    """A small store of synthetic subjects and codec, diffusion and WaveNet stages trained on it briefly."""
    from tsvq.data import PrepareConfig, prepare
    from tsvq.data.synthetic import write_synthetic_database
    from tsvq.training.codec import CodecStageConfig, train_codec
    from tsvq.training.diffusion import DiffusionStageConfig, train_diffusion
    from tsvq.training.wavenet import WaveNetStageConfig, train_wavenet

    root = tmp_path_factory.mktemp("tiny")
    source = write_synthetic_database(
        root / "synthetic", n_subjects=4, records_per_subject=1, minutes_per_record=1.0, rate_hz=125
    )
    store = prepare(
        PrepareConfig(source=str(source), rate_hz=125, window_samples=256, val_fraction=0.25, test_fraction=0.25),
        root / "store",
        progress=False,
    )
    codec = train_codec(
        CodecStageConfig(store=str(store.path), model=TINY_CODEC, training=tiny_training(root / "codec", 40))
    )
    diffusion = train_diffusion(
        DiffusionStageConfig(
            store=str(store.path),
            codec=str(codec),
            model={"block_out_channels": [16, 32]},
            training=tiny_training(root / "diffusion", 30),
        )
    )
    wavenet = train_wavenet(
        WaveNetStageConfig(
            store=str(store.path),
            codec=str(codec),
            model={"residual_channels": 16, "skip_channels": 16, "dilation_cycle": [1, 2, 4, 8]},
            training=tiny_training(root / "wavenet", 30),
        )
    )
    return {"root": root, "store": store.path, "codec": codec, "diffusion": diffusion, "wavenet": wavenet}


@pytest.fixture(scope="session")
def tiny_pipeline(tiny_runs) -> Path:
    from tsvq.pipeline import Pipeline

    pipe = Pipeline.from_stages(tiny_runs["codec"], tiny_runs["diffusion"], tiny_runs["wavenet"])
    return pipe.save_pretrained(tiny_runs["root"] / "pipeline")
