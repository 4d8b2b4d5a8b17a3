"""What every prior is, and the registry that finds a prior class by the ``kind`` its folder records.

A prior models the codec's latents: either the integer codes ``(B, L')`` or the codebook vectors ``(B, L', D)``.
The pipeline needs nothing else from it: ``sample`` returns one of the two, ``save_pretrained``/``from_pretrained``
keep it in a folder (``prior.json`` + weights), and ``check_codec`` refuses a codec it was not trained for.
Adding a prior is one module that defines such a class with ``@register_prior`` and one training stage
(``tsvq.training.stages.register_stage``); pipeline, CLI and evaluation do not change.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import torch

from tsvq.errors import CheckpointError
from tsvq.io import read_json

PRIOR_FORMAT_VERSION = 1


@dataclass
class PriorSample:
    """One draw: ``codes`` ``(n, L')`` / ``(n, L', Q)`` int64 from a code prior, or ``vectors`` ``(n, L', D)`` float32
    (not yet snapped to the codebook) from a vector prior; ``info`` holds the draw's settings and health figures."""

    codes: torch.Tensor | None = None
    vectors: torch.Tensor | None = None
    info: dict = field(default_factory=dict)


class Prior(Protocol):
    kind: ClassVar[str]  # registry name, recorded in prior.json
    models: ClassVar[str]  # "codes" or "vectors"
    SamplingOptions: ClassVar[type]  # dataclass of this prior's own sampling settings (CLI flags come from it)
    labels: list[str]  # class vocabulary of a conditional prior; empty when unconditional

    def sample(
        self, n: int, *, labels=None, seed: int | None = 0, batch_size: int = 256, progress: bool = True, **options: Any
    ) -> PriorSample: ...

    def check_codec(self, codec) -> None: ...

    def save_pretrained(self, folder: str | Path) -> None: ...

    @classmethod
    def from_pretrained(cls, folder: str | Path, device: str | torch.device = "cpu") -> Prior: ...


PRIORS: dict[str, type] = {}


def register_prior(cls: type) -> type:
    """Class decorator: make a prior loadable from any folder whose ``prior.json`` names its ``kind``."""
    if cls.models not in ("codes", "vectors"):
        raise TypeError(f"{cls.__name__}.models must be 'codes' or 'vectors', got {cls.models!r}")
    PRIORS[cls.kind] = cls
    return cls


def read_prior_description(folder: str | Path, kind: str | None = None) -> dict:
    """``prior.json`` of a saved prior, checked to be of ``kind`` (if given) and not from a newer tsvq."""
    folder = Path(folder)
    info = read_json(folder / "prior.json", "prior description")
    if kind is not None and info.get("kind") != kind:
        raise CheckpointError(f"{folder / 'prior.json'}: not a {kind} prior (kind = {info.get('kind')})")
    if info.get("format_version", 0) > PRIOR_FORMAT_VERSION:
        raise CheckpointError(
            f"{folder / 'prior.json'}: written by a newer tsvq (format {info['format_version']}); upgrade tsvq"
        )
    return info


def load_prior(folder: str | Path, device: str | torch.device = "cpu"):
    """Any registered prior from its folder, by the kind its ``prior.json`` records."""
    kind = read_prior_description(folder).get("kind")
    if kind not in PRIORS:
        raise CheckpointError(
            f"{Path(folder) / 'prior.json'}: unknown prior kind '{kind}'; known kinds: {sorted(PRIORS)} "
            "(a prior from a plug-in needs its module imported first)"
        )
    return PRIORS[kind].from_pretrained(folder, device)


def sampling_options(prior_cls: type, options: dict[str, Any], where: str):
    """``options`` as the prior's ``SamplingOptions``; a setting the prior does not have is a ConfigError naming it."""
    from tsvq.config import from_dict

    return from_dict(prior_cls.SamplingOptions, {k: v for k, v in options.items() if v is not None}, where)


def option_names(prior) -> set[str]:
    """The names of the sampling options a prior (instance or class) takes."""
    return {f.name for f in dataclasses.fields(prior.SamplingOptions)}


def option_fields() -> dict[str, list[dataclasses.Field]]:
    """Every registered prior's sampling options by name, each with the fields of the priors that have it (the CLI
    makes one flag of each name, e.g. ``--steps`` for the diffusion and MaskGIT priors, and joins their help)."""
    found: dict[str, list[dataclasses.Field]] = {}
    for cls in PRIORS.values():
        for f in dataclasses.fields(cls.SamplingOptions):
            found.setdefault(f.name, []).append(f)
    return found
