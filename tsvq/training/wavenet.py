"""The WaveNet-prior stage: teacher-forced cross-entropy on the cached codes of the training windows."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from tsvq.codec.metrics import codebook_report
from tsvq.config import as_config
from tsvq.priors.signature import codec_signature
from tsvq.priors.wavenet import WaveNet, WaveNetConfig, WaveNetPrior
from tsvq.training.loop import TrainingConfig, train_stage
from tsvq.training.prior_data import CodePriorTask, check_balance_groups
from tsvq.training.stages import Stage


@dataclass
class WaveNetStageConfig:
    store: str = "runs/store"
    codec: str = "runs/codec/model"
    model: WaveNetConfig = field(default_factory=WaveNetConfig)
    conditional: bool = False
    # how much each patient weighs per epoch: 0 as stored, 1 every patient the same (``balanced_indices``)
    balance_groups: float = 0.0
    balance_labels: bool = False  # conditional: every label weighs the same (patients balanced within each)
    val_max_windows: int = 512
    training: TrainingConfig = field(
        default_factory=lambda: TrainingConfig(output_dir="runs/wavenet", learning_rate=1e-3)
    )

    def __post_init__(self):
        check_balance_groups(self.balance_groups, "wavenet stage")
        self.model = as_config(WaveNetConfig, self.model, "wavenet stage: model")


class WaveNetTask(CodePriorTask):
    best_metric = "val_bits_per_code"
    title = "the WaveNet prior"
    prior_class = WaveNetPrior

    def __init__(self, config: WaveNetStageConfig):
        super().__init__(config)
        report = codebook_report(self.data.train_codes, self.codec.config.num_codes)
        # a residual codec's stages each have their own code statistics: the unigram bound is their mean
        self.unigram_bits = float(np.mean([stage["entropy_bits"] for stage in report.get("stages", [report])]))
        self.model = WaveNet(
            num_codes=self.codec.config.num_codes,
            latent_length=self.codec.latent_length,
            num_classes=len(self.labels),
            num_quantizers=self.codec.config.num_quantizers,
            **asdict(config.model),
        )

    def loss(self, model, batch):
        logits = model(batch["codes"], batch["label"] if self.labels else None)
        loss = F.cross_entropy(logits.float(), batch["codes"])
        return loss, {"bits_per_code": float(loss.detach()) / math.log(2)}

    @torch.no_grad()
    def evaluate(self, model) -> dict[str, float]:
        codes = self.val_dataset.codes.to(model.device)
        labels = self.val_dataset.labels.to(model.device) if self.labels else None
        bits = float(
            torch.cat(
                [
                    model.nll_bits(codes[i : i + 256], None if labels is None else labels[i : i + 256])
                    for i in range(0, len(codes), 256)
                ]
            ).mean()
        )
        self.last_metrics = {
            "val_bits_per_code": bits,
            "val_bits_per_second": bits * self.codec.codes_per_second(),
            "unigram_bits_per_code": self.unigram_bits,
        }
        return self.last_metrics

    def save(self, model, folder: Path) -> None:
        # The loop saves right after evaluating these same weights; evaluate only if it has not.
        statistics = (self.last_metrics or self.evaluate(model)) | {"codes_per_second": self.codec.codes_per_second()}
        WaveNetPrior(model, self.labels, codec_signature(self.codec), statistics).save_pretrained(folder)


def train_wavenet(config: WaveNetStageConfig) -> Path:
    """Train the WaveNet prior stage; returns the folder of the best prior (by validation bits per code)."""
    return train_stage(WaveNetTask, config)


STAGE = Stage(WaveNetStageConfig, train_wavenet)
