"""The codec stage: train a VQ-VAE on a window store; keep the checkpoint with the best validation PRDN."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from tsvq.codec import VQVAE, CodecModelConfig
from tsvq.codec.metrics import codebook_report, prdn
from tsvq.config import as_config
from tsvq.data import WindowStore
from tsvq.data.preprocess import Preprocessing
from tsvq.errors import ConfigError
from tsvq.training.augment import AugmentConfig, augment
from tsvq.training.loop import ModelFolderTask, TrainingConfig, train_stage
from tsvq.training.stages import Stage


@dataclass
class CodecStageConfig:
    """``model`` chooses the architecture and quantizer; shape, rate and normalisation come from the store."""

    store: str = "runs/store"
    model: CodecModelConfig = field(default_factory=CodecModelConfig)
    training: TrainingConfig = field(default_factory=lambda: TrainingConfig(output_dir="runs/codec"))
    val_max_windows: int = 512
    balance_groups: bool = True  # every patient weighs the same per epoch (one long recording cannot dominate)
    balance_sources: bool = False  # ...within its source, and every source (database) the same
    augment: AugmentConfig = field(
        default_factory=AugmentConfig
    )  # gain/polarity/stretch: generalise to unseen patients

    def __post_init__(self):
        self.model = as_config(CodecModelConfig, self.model, "codec stage: model")
        self.augment = as_config(AugmentConfig, self.augment, "codec stage: augment")


def codec_from_store(store: WindowStore, model: CodecModelConfig | None = None) -> VQVAE:
    """A fresh codec sized for the store: channels, window length, rate and train-split statistics."""
    fixed = {
        "in_channels": store.num_channels,
        "channel_names": tuple(store.channel_names),
        "units": tuple(store.units),
        "sampling_rate_hz": store.sampling_rate_hz,
        "window_length": store.window_length,
        "norm_mean": tuple(store.normalization["mean"]),
        "norm_std": tuple(store.normalization["std"]),
        "preprocessing": Preprocessing.from_store_manifest(store.manifest).to_dict(),
    }
    try:
        return VQVAE(**fixed, **asdict(model or CodecModelConfig()))
    except (TypeError, ValueError) as error:
        raise ConfigError(f"codec config: {error}") from error


class CodecTask(ModelFolderTask):
    best_metric = "prdn"

    def __init__(self, config: CodecStageConfig):
        self.config = config
        self.store = WindowStore(config.store)
        self.model = codec_from_store(self.store, config.model)
        self.train_dataset = self.store.dataset(
            "train", balance_groups=config.balance_groups, balance_sources=config.balance_sources
        )
        self.val_windows = self.store.load(
            self.store.validation_split(), max_windows=config.val_max_windows, seed=config.training.seed
        )

    def loss(self, model, batch):
        out = model(augment(batch["signal"], self.config.augment))
        logs = {
            "reconstruction_loss": float(out.reconstruction_loss),
            "quantizer_loss": float(out.quantizer_loss),
            "perplexity": float(out.quantizer.perplexity),
            "usage": float(out.quantizer.usage),
            "dead_codes_restarted": float(out.quantizer.dead_codes),
        }
        if out.spectral_loss is not None:
            logs["spectral_loss"] = float(out.spectral_loss)
        return out.loss, logs

    @torch.no_grad()
    def evaluate(self, model) -> dict[str, float]:
        codes = model.encode_windows(self.val_windows, batch_size=128)
        health = codebook_report(codes, model.config.num_codes)
        return {
            "prdn": float(prdn(self.val_windows, model.decode_codes(codes, batch_size=128)).mean()),
            "usage_percent": health["usage_percent"],
            "perplexity": health["perplexity"],
        }


def train_codec(config: CodecStageConfig) -> Path:
    """Train the codec stage; returns the folder of the best codec."""
    return train_stage(CodecTask, config)


STAGE = Stage(CodecStageConfig, train_codec)
