"""What the priors over code indices (WaveNet, MaskGIT) share beside their models: the folder (``model/`` +
``prior.json`` with labels, codec signature and validation figures), the codec check and the label check."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import torch

from tsvq.errors import ConfigError, DataError
from tsvq.io import atomic_directory, write_json
from tsvq.priors.base import PRIOR_FORMAT_VERSION, read_prior_description
from tsvq.priors.signature import as_long, check_signature
from tsvq.safe_loading import load_model


class CodePrior:
    """A trained model over ``(B, L')`` code indices with its labels, codec signature and statistics. Subclasses
    set ``kind``, ``title``, ``model_class``, ``SamplingOptions`` and ``sample`` (and ``@register_prior``)."""

    models: ClassVar[str] = "codes"
    residual_codes: ClassVar[bool] = False  # True: models a residual-VQ codec's (B, L', Q) codes too
    kind: ClassVar[str]
    title: ClassVar[str]  # how errors name the prior, e.g. "WaveNet prior"
    model_class: ClassVar[type]

    def __init__(
        self,
        model,
        labels: list[str] | None = None,
        codec_signature: dict | None = None,
        statistics: dict | None = None,
    ):
        self.model = model
        self.labels = list(labels or [])
        self.codec_signature = dict(codec_signature or {})
        self.statistics = dict(statistics or {})

    @classmethod
    def check_codebooks(cls, codec, prior: str) -> None:
        """A prior of one code per position refuses a residual-VQ codec; one that models all stages takes it."""
        if not cls.residual_codes and codec.config.num_quantizers != 1:
            raise ConfigError(
                f"{prior} models one code per position; this codec has {codec.config.num_quantizers} "
                "residual quantizers (use the diffusion prior, which models their summed vectors, or the "
                "WaveNet prior, which draws them stage by stage)"
            )

    def check_codec(self, codec) -> None:
        self.check_codebooks(codec, f"the {self.title}")
        check_signature(self.codec_signature, codec, self.title)

    def label_ids(self, labels, n: int) -> torch.Tensor | None:
        """``labels`` (names or indices, one or n) as indices; refused when the model was trained without them."""
        if labels is not None and self.model.class_embedding is None:
            raise DataError(f"{self.title}: labels given, but this prior was trained without class conditioning")
        return as_long(labels, n, self.labels, self.title)

    def _in_batches(
        self,
        n: int,
        labels: torch.Tensor | None,
        seed: int | None,
        batch_size: int,
        draw: Callable[[int, torch.Tensor | None, int | None], torch.Tensor],
    ) -> torch.Tensor:
        """``draw(count, labels, seed)`` over batches of ``batch_size``; batch i is seeded ``seed + i``, so a draw
        depends on the seed and batch size only."""
        self.model.eval()
        out = []
        for i, start in enumerate(range(0, n, batch_size)):
            count = min(batch_size, n - start)
            out.append(
                draw(
                    count, None if labels is None else labels[start : start + count], None if seed is None else seed + i
                )
            )
        return torch.cat(out)

    def models_description(self) -> str:
        stages = getattr(self.model.config, "num_quantizers", 1)
        return "code indices (B, L')" if stages == 1 else f"code indices (B, L', {stages})"

    def save_pretrained(self, folder: str | Path) -> None:
        with atomic_directory(folder) as tmp:
            self.model.save_pretrained(tmp / "model")
            write_json(
                tmp / "prior.json",
                {
                    "kind": self.kind,
                    "format_version": PRIOR_FORMAT_VERSION,
                    "models": self.models_description(),
                    "labels": self.labels,
                    "codec_signature": self.codec_signature,
                    "statistics": self.statistics,
                },
            )

    @classmethod
    def from_pretrained(cls, folder: str | Path, device: str | torch.device = "cpu"):
        folder = Path(folder)
        info = read_prior_description(folder, cls.kind)
        model = load_model(cls.model_class, folder / "model").to(device)
        return cls(model, info.get("labels"), info.get("codec_signature"), info.get("statistics"))
