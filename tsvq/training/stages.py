"""Training stages by name: ``tsvq train NAME`` finds the stage's config class and training function here.

Each stage module defines ``STAGE = Stage(config_class, train)``. Built-in stages are imported when first asked
for (so ``tsvq --help`` stays quick); a plug-in prior registers its stage with ``register_stage``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tsvq.errors import ConfigError


@dataclass(frozen=True)
class Stage:
    config_class: type  # dataclass of the stage's YAML file
    train: Callable[[Any], Path]  # trains and returns the folder of the best model


_STAGES: dict[str, str | Stage] = {
    "codec": "tsvq.training.codec",
    "diffusion": "tsvq.training.diffusion",
    "wavenet": "tsvq.training.wavenet",
    "maskgit": "tsvq.training.maskgit",
    "denoiser": "tsvq.training.denoiser",
}


def register_stage(name: str, stage: Stage | str) -> None:
    """Make ``tsvq train NAME`` train ``stage`` (a Stage, or the module path of one that defines ``STAGE``)."""
    _STAGES[name] = stage


def stage_names() -> list[str]:
    return list(_STAGES)


def get_stage(name: str) -> Stage:
    if name not in _STAGES:
        raise ConfigError(f"unknown stage '{name}'; known stages: {stage_names()}")
    stage = _STAGES[name]
    if isinstance(stage, str):
        stage = _STAGES[name] = importlib.import_module(stage).STAGE
    return stage
