"""Loading saved models without trusting the folder: JSON configs, safetensors weights, never pickles.

``ModelMixin.from_pretrained`` would also look at a hub and fall back to pickled ``.bin`` weights; tsvq loads
model folders itself so that a folder from elsewhere can only ever supply numbers and plain configuration.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import TypeVar

from safetensors import SafetensorError
from safetensors.torch import load_file

from tsvq.errors import CheckpointError
from tsvq.io import read_json

WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"
M = TypeVar("M")


def load_model(cls: type[M], folder: str | Path) -> M:
    """Instantiate ``cls`` from ``folder/config.json`` and load ``folder/*.safetensors`` strictly."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: model folder not found")
    config_file = folder / "config.json"
    try:
        config = read_json(config_file, f"{cls.__name__} config")
    except Exception as error:
        raise CheckpointError(str(error)) from error
    if not isinstance(config, dict):
        raise CheckpointError(f"{config_file}: expected a JSON object")
    if config.get("_class_name", cls.__name__) not in (cls.__name__, *getattr(cls, "former_class_names", ())):
        raise CheckpointError(f"{config_file}: holds a {config['_class_name']}, not a {cls.__name__}")
    accepted = inspect.signature(cls.__init__).parameters
    unknown = sorted(k for k in config if not k.startswith("_") and k not in accepted)
    if unknown:
        raise CheckpointError(f"{config_file}: settings {unknown} are unknown to this version of {cls.__name__}; "
                              "the folder was written by a newer or incompatible tsvq")
    weights = folder / WEIGHTS_NAME
    if not weights.is_file():
        others = sorted(p.name for p in folder.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".pkl", ".ckpt"))
        hint = f" (found {others}: tsvq never loads pickled weights)" if others else ""
        raise CheckpointError(f"{weights}: weights file missing{hint}")
    try:
        state = load_file(weights)
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{weights}: corrupt or truncated safetensors file ({error})") from error
    try:
        model = cls.from_config(config)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{config_file}: invalid settings ({error})") from error
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as error:  # shape mismatches
        raise CheckpointError(f"{weights}: weights do not fit the model described by {config_file}: {error}") from error
    if missing or unexpected:
        raise CheckpointError(f"{weights}: weights do not match {config_file} "
                              f"(missing {list(missing)[:5]}, unexpected {list(unexpected)[:5]})")
    model.eval()
    return model
