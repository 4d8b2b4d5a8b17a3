"""Pipelines that ship inside the package: encode, compress and score ECG without training first.

    from tsvq import Pipeline, list_pretrained
    list_pretrained()                                  # {'ecg-single-lead': 'one-line description'}
    pipe = Pipeline.from_pretrained("ecg-single-lead")  # or `tsvq compress REC --pipeline ecg-single-lead ...`

Each is an ordinary pipeline folder (``pipeline.json`` + safetensors) under this package, described by its model
card in ``docs/pretrained.md``; nothing is downloaded.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from tsvq.io import read_json

HERE = Path(__file__).resolve().parent
logger = logging.getLogger(__name__)


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


def shipped_or_local(path: str | os.PathLike) -> Path:
    """The folder ``path`` stands for. A bare name of a shipped pipeline always means the shipped one (a local folder
    of that name is reached with a path, ``./ecg-single-lead``, and a warning says one exists); anything else is
    itself."""
    raw = os.fspath(path)
    shipped = pretrained_folder(raw) if raw and os.sep not in raw else None
    if shipped is None:
        return Path(raw)
    if Path(raw).exists():
        logger.warning("'%s' names the shipped pipeline; the local folder of that name is read as './%s'", raw, raw)
    return shipped


def pipeline_part(path: str, part: str) -> str:
    """``path`` itself, unless it names a pipeline (a shipped name such as ``ecg-single-lead`` or a folder holding
    ``pipeline.json``): then its ``part`` (``codec``, ``priors/diffusion``), so a training config can start from a
    shipped model (``codec: ecg-single-lead``, ``init_from: ecg-single-lead``) without knowing where it is installed."""
    folder = shipped_or_local(path)
    return str(folder / part) if (folder / "pipeline.json").is_file() else path
