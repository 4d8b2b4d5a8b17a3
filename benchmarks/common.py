"""Helpers shared by the benchmarks: where results go, and what every results file carries (the command that
rewrites it, the machine, package versions, commit and date), so a figure can be traced and regenerated."""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import torch

from tsvq.io import atomic_file

RESULTS = Path(__file__).resolve().parent / "results"
# The whole denoiser of the demo's diffusion prior until release 0.2.0 (a [32, 64] UNet since): the levers, the
# anchors and the sampling benchmark were measured with it, so their scripts train it as written here, not merged with
# the demo's recipe, and their results stay reproducible (and resumable) whatever the demo trains next.
MEASURED_DENOISER = {"block_out_channels": [64, 128], "layers_per_block": 1}
PACKAGES = ("tsvq", "torch", "numpy", "scipy", "diffusers", "accelerate", "wfdb", "constriction", "PyWavelets")


def machine() -> dict:
    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def versions() -> dict[str, str]:
    """The versions of the packages a figure depends on (absent ones left out)."""
    found = {}
    for package in PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return found


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True, cwd=RESULTS.parent, check=True).stdout


def commit() -> str:
    """The short commit of the checkout the figure came from, '-dirty' when code differs from it (results files
    rewritten by an earlier benchmark of the same run do not count: they are not code)."""
    try:
        head = _git("rev-parse", "--short", "HEAD").strip()
        results = f":(top,exclude){RESULTS.relative_to(RESULTS.parents[1]).as_posix()}"
        changed = _git("status", "--porcelain", "--untracked-files=no", "--", ":(top)", results)
        return head + ("-dirty" if changed.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"


def command() -> str:
    """The command line that ran this benchmark, as a user would type it again."""
    return shlex.join(["python", "-m", f"benchmarks.{Path(sys.argv[0]).stem}", *sys.argv[1:]])


def provenance() -> dict:
    return {
        "command": command(),
        "machine": machine(),
        "versions": versions(),
        "commit": commit(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }


def save(name: str, payload: dict) -> Path:
    """``results/<name>.json``, rewritten whole, its provenance first; written atomically (an interrupted run keeps
    the old file)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    stamped = provenance() | {key: value for key, value in payload.items() if key not in ("machine", "command")}
    with atomic_file(path) as handle:
        handle.write(json.dumps(stamped, indent=2, default=float) + "\n")
    return path
