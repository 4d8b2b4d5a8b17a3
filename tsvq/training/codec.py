"""The codec stage: train a VQ-VAE on a window store; keep the checkpoint with the best validation PRDN."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate.utils import set_seed

from tsvq.codec import VQVAE
from tsvq.codec.metrics import codebook_report, prdn
from tsvq.data import WindowStore
from tsvq.errors import ConfigError
from tsvq.training.augment import AugmentConfig, augment
from tsvq.training.loop import TrainingConfig, train


@dataclass
class CodecStageConfig:
    """``model`` holds VQVAE arguments; shape, rate and normalisation come from the store."""

    store: str = "runs/store"
    model: dict[str, Any] = field(default_factory=dict)
    training: TrainingConfig = field(default_factory=lambda: TrainingConfig(output_dir="runs/codec"))
    val_max_windows: int = 512
    balance_groups: bool = False  # every patient weighs the same per epoch (one long recording cannot dominate)
    augment: AugmentConfig = field(default_factory=AugmentConfig)  # gain/polarity/stretch: generalise to unseen patients


def codec_from_store(store: WindowStore, **model_kwargs) -> VQVAE:
    """A fresh codec sized for the store: channels, window length, rate and train-split statistics."""
    fixed = {
        "in_channels": store.num_channels, "channel_names": tuple(store.channel_names), "units": tuple(store.units),
        "sampling_rate_hz": store.sampling_rate_hz, "window_length": store.window_length,
        "norm_mean": tuple(store.normalization["mean"]), "norm_std": tuple(store.normalization["std"]),
    }
    clash = sorted(set(fixed) & set(model_kwargs))
    if clash:
        raise ConfigError(f"codec config: {clash} come from the window store and cannot be set")
    try:
        return VQVAE(**fixed, **model_kwargs)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"codec config: {error}") from error


class CodecTask:
    best_metric = "prdn"

    def __init__(self, config: CodecStageConfig):
        self.config = config
        self.store = WindowStore(config.store)
        self.model = codec_from_store(self.store, **config.model)
        self.train_dataset = self.store.dataset("train", balance_groups=config.balance_groups)
        self.val_windows = self.store.load(self.store.validation_split(), max_windows=config.val_max_windows,
                                           seed=config.training.seed)

    def loss(self, model, batch):
        out = model(augment(batch["signal"], self.config.augment))
        logs = {"reconstruction_loss": float(out.reconstruction_loss), "quantizer_loss": float(out.quantizer_loss),
                "perplexity": float(out.quantizer.perplexity), "usage": float(out.quantizer.usage),
                "dead_codes_restarted": float(out.quantizer.dead_codes)}
        return out.loss, logs

    @torch.no_grad()
    def evaluate(self, model) -> dict[str, float]:
        reconstructions, codes = [], []
        for chunk in np.array_split(np.arange(len(self.val_windows)), max(1, len(self.val_windows) // 128)):
            encoded = model.encode(self.val_windows[chunk])
            reconstructions.append(model.decode(encoded.vectors).cpu().numpy())
            codes.append(encoded.codes.cpu().numpy())
        health = codebook_report(np.concatenate(codes), model.config.num_codes)
        return {"prdn": float(prdn(self.val_windows, np.concatenate(reconstructions)).mean()),
                "usage_percent": health["usage_percent"], "perplexity": health["perplexity"]}

    def save(self, model, folder: Path) -> None:
        from tsvq.io import atomic_directory

        with atomic_directory(folder) as tmp:
            model.save_pretrained(tmp)

    def after_step(self, model) -> None:
        pass

    def checkpoint_objects(self) -> list:
        return []


def train_codec(config: CodecStageConfig) -> Path:
    """Train the codec stage; returns the folder of the best codec."""
    set_seed(config.training.seed)  # before the model exists, so its initial weights are reproducible
    return train(CodecTask(config), config.training)

