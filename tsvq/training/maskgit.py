"""The MaskGIT-prior stage: masked-code cross-entropy on the cached codes of the training windows."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from tsvq.config import as_config
from tsvq.priors.maskgit import (
    MaskedCodeTransformer,
    MaskGITConfig,
    MaskGITPrior,
    masked_cross_entropy,
    masked_fraction,
)
from tsvq.priors.signature import codec_signature
from tsvq.training.loop import TrainingConfig, train_stage
from tsvq.training.prior_data import CodePriorTask, check_balance_groups, drop_labels
from tsvq.training.stages import Stage

VALIDATION_FRACTIONS = (0.1, 0.3, 0.5, 0.7, 0.9)  # the hidden fractions the validation loss averages over


@dataclass
class MaskGITStageConfig:
    store: str = "runs/store"
    codec: str = "runs/codec/model"
    model: MaskGITConfig = field(default_factory=MaskGITConfig)
    conditional: bool = False  # condition on window labels (classifier-free guidance at sampling)
    # how much each patient weighs per epoch: 0 as stored, 1 every patient the same (``balanced_indices``)
    balance_groups: float = 0.0
    balance_labels: bool = False  # conditional: every label weighs the same (patients balanced within each)
    label_dropout: float = 0.1
    val_max_windows: int = 512
    training: TrainingConfig = field(
        default_factory=lambda: TrainingConfig(output_dir="runs/maskgit", learning_rate=2e-3, weight_decay=0.01)
    )

    def __post_init__(self):
        check_balance_groups(self.balance_groups, "maskgit stage")
        self.model = as_config(MaskGITConfig, self.model, "maskgit stage: model")


class MaskGITTask(CodePriorTask):
    best_metric = "val_bits_per_hidden_code"
    title = "the MaskGIT prior"
    prior_class = MaskGITPrior

    def __init__(self, config: MaskGITStageConfig):
        super().__init__(config)
        self.model = MaskedCodeTransformer(
            num_codes=self.codec.config.num_codes,
            latent_length=self.codec.latent_length,
            num_classes=len(self.labels),
            **asdict(config.model),
        )

    def loss(self, model, batch):
        codes, labels = batch["codes"], batch["label"]
        if self.labels:
            labels = drop_labels(labels, len(self.labels), self.config.label_dropout)
        fraction = masked_fraction(torch.rand(len(codes)))  # as many hidden positions as the sampling passes see
        loss = masked_cross_entropy(
            model, codes, labels if self.labels else None, fraction, self.codec.config.num_codes
        )
        return loss, {"bits_per_hidden_code": float(loss.detach()) / math.log(2)}

    @torch.no_grad()
    def evaluate(self, model) -> dict[str, float]:
        """Bits per hidden code on the validation codes at fixed hidden fractions and positions (comparable across
        steps)."""
        codes = self.val_dataset.codes.to(model.device)
        labels = self.val_dataset.labels.to(model.device) if self.labels else None
        generator = torch.Generator().manual_seed(1234)
        figures = {}
        for fraction in VALIDATION_FRACTIONS:
            losses = [
                model.masked_loss(
                    codes[i : i + 256],
                    None if labels is None else labels[i : i + 256],
                    torch.full((len(codes[i : i + 256]),), fraction),
                    generator,
                )
                for i in range(0, len(codes), 256)
            ]
            figures[fraction] = float(torch.stack(losses).mean()) / math.log(2)
        self.last_metrics = {"val_bits_per_hidden_code": sum(figures.values()) / len(figures)} | {
            f"val_bits_hidden_{int(fraction * 100)}pct": bits for fraction, bits in figures.items()
        }
        return self.last_metrics

    def save(self, model, folder: Path) -> None:
        statistics = self.last_metrics or self.evaluate(model)  # the loop saves right after evaluating these weights
        MaskGITPrior(model, self.labels, codec_signature(self.codec), statistics).save_pretrained(folder)


def train_maskgit(config: MaskGITStageConfig) -> Path:
    """Train the MaskGIT prior stage; returns the folder of the best prior (by validation bits per hidden code)."""
    return train_stage(MaskGITTask, config)


STAGE = Stage(MaskGITStageConfig, train_maskgit)
