"""Helpers shared by the benchmarks: where results go and what machine produced them."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import torch

from tsvq.io import atomic_file

RESULTS = Path(__file__).resolve().parent / "results"
# The whole denoiser of the demo's diffusion prior until 2026-12-04 (a [32, 64] UNet since): the levers, the anchors
# and the sampling benchmark were measured with it, so their scripts train it as written here, not merged with the
# demo's recipe, and their results stay reproducible (and resumable) whatever the demo trains next.
MEASURED_DENOISER = {"block_out_channels": [64, 128], "layers_per_block": 1}


def machine() -> dict:
    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def save(name: str, payload: dict) -> Path:
    """``results/<name>.json`` with the machine stamped in, written atomically (an interrupted run keeps the old
    file)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    with atomic_file(path) as handle:
        handle.write(json.dumps({"machine": machine()} | payload, indent=2, default=float) + "\n")
    return path
