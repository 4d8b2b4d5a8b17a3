"""Pipelines that ship inside the package: encode, compress and score ECG without training first.

    from tsvq import Pipeline, list_pretrained
    list_pretrained()                                  # {'ecg-single-lead': 'one-line description'}
    pipe = Pipeline.from_pretrained("ecg-single-lead")  # or `tsvq compress REC --pipeline ecg-single-lead ...`

Each is an ordinary pipeline folder (``pipeline.json`` + safetensors) under this package, described by its model
card in ``docs/pretrained.md``; nothing is downloaded.
"""

from __future__ import annotations

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
