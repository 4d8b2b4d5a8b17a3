"""Pipelines that ship inside the package: encode, compress and score ECG without training first.

    from tsvq import Pipeline, list_pretrained
    list_pretrained()                                  # {'ecg-single-lead': 'one-line description'}
    pipe = Pipeline.from_pretrained("ecg-single-lead")  # or `tsvq compress REC --pipeline ecg-single-lead ...`

Each is an ordinary pipeline folder (``pipeline.json`` + safetensors) under this package, described by its model
card in ``docs/pretrained.md``; nothing is downloaded.
"""

from __future__ import annotations

import os
from pathlib import Path

from tsvq.io import read_json

HERE = Path(__file__).resolve().parent


def list_pretrained() -> dict[str, str]:
    """Name -> one-line description of every pipeline shipped in the package."""
    found = {}
    for folder in sorted(p for p in HERE.iterdir() if (p / "pipeline.json").is_file()):
        found[folder.name] = read_json(folder / "pipeline.json", "pretrained pipeline").get("description", "")
    return found


def pretrained_folder(name: str) -> Path | None:
    """The folder of the shipped pipeline ``name``, or None when no such pipeline ships."""
    folder = HERE / name
    return folder if (folder / "pipeline.json").is_file() else None


def pipeline_part(path: str, part: str) -> str:
    """``path`` itself, unless it names a pipeline (a shipped name such as ``ecg-single-lead`` or a folder holding
    ``pipeline.json``): then its ``part`` (``codec``, ``priors/diffusion``), so a training config can start from a
    shipped model (``codec: ecg-single-lead``, ``init_from: ecg-single-lead``) without knowing where it is installed."""
    folder = pretrained_folder(path) if path and os.sep not in path and not Path(path).exists() else None
    folder = folder or Path(path)
    return str(folder / part) if (folder / "pipeline.json").is_file() else path
