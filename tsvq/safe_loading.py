"""Loading saved models without trusting the folder: JSON configs, safetensors weights, never pickles.

One path for every model: diffusers' ``ModelMixin.from_pretrained`` with ``use_safetensors=True`` and
``local_files_only=True`` (no hub, no pickled ``.bin`` fallback), wrapped in tsvq's checks, which diffusers only
warns about: the config names this class and no setting this version lacks, and the weights fit the model
exactly (no missing, unexpected or mis-shaped tensors). A folder from elsewhere can only supply numbers and plain
configuration, and every problem is a ``CheckpointError`` that names the file.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import TypeVar

from safetensors import SafetensorError

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
        raise CheckpointError(
            f"{config_file}: settings {unknown} are unknown to this version of {cls.__name__}; "
            "the folder was written by a newer or incompatible tsvq"
        )
    weights = folder / WEIGHTS_NAME
    if not weights.is_file():
        others = sorted(p.name for p in folder.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".pkl", ".ckpt"))
        hint = f" (found {others}: tsvq never loads pickled weights)" if others else ""
        raise CheckpointError(f"{weights}: weights file missing{hint}")
    try:
        model, info = cls.from_pretrained(
            folder, use_safetensors=True, local_files_only=True, low_cpu_mem_usage=False, output_loading_info=True
        )
    except (SafetensorError, OSError) as error:
        raise CheckpointError(f"{weights}: corrupt or truncated safetensors file ({error})") from error
    except (TypeError, ValueError, RuntimeError) as error:
        if "size" in str(error) or "shape" in str(error):
            raise CheckpointError(
                f"{weights}: weights do not fit the model described by {config_file}: {error}"
            ) from error
        raise CheckpointError(f"{config_file}: invalid settings or weights ({error})") from error
    missing, unexpected = info.get("missing_keys", []), info.get("unexpected_keys", [])
    if missing or unexpected or info.get("mismatched_keys"):
        raise CheckpointError(
            f"{weights}: weights do not match {config_file} (missing {list(missing)[:5]}, "
            f"unexpected {list(unexpected)[:5]}, mis-shaped {list(info.get('mismatched_keys') or [])[:5]})"
        )
    model.eval()
    return model
