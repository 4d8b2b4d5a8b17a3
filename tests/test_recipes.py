"""Every recipe in recipes/ parses into its config, and every codec recipe builds its model: a typo in a recipe
fails here instead of minutes into a user's run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tsvq.cli import load_stage_config
from tsvq.codec import VQVAE
from tsvq.config import from_dict, load_yaml
from tsvq.data import PrepareConfig

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
STAGE_FILES = sorted(p for p in RECIPES.glob("*/*.yaml") if p.stem in ("codec", "diffusion", "wavenet"))


@pytest.mark.parametrize("path", sorted(RECIPES.glob("*/prepare.yaml")), ids=lambda p: p.parent.name)
def test_prepare_recipes_parse(path):
    config = from_dict(PrepareConfig, load_yaml(path)["data"], str(path))
    assert config.source and config.rate_hz


@pytest.mark.parametrize("path", STAGE_FILES, ids=lambda p: f"{p.parent.name}-{p.stem}")
def test_stage_recipes_parse_and_codecs_build(path):
    config = load_stage_config(path.stem, str(path), [])
    assert config.training.max_steps > 0
    if path.stem == "codec":
        model = VQVAE(**config.model)
        assert model.config.downsample_factor >= 1


def test_every_dataset_recipe_has_a_prepare_and_a_codec():
    for folder in (p for p in RECIPES.iterdir() if p.is_dir() and p.name != "accelerate"):
        assert (folder / "prepare.yaml").exists() and (folder / "codec.yaml").exists(), folder
