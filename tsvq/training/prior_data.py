"""What both prior stages start from: the store, the trained codec, and the cached codes of train and validation."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tsvq.codec import VQVAE
from tsvq.data import WindowStore
from tsvq.data.store import label_ids
from tsvq.errors import ConfigError
from tsvq.priors.latents import cached_codes
from tsvq.safe_loading import load_model


@dataclass
class PriorData:
    store: WindowStore
    codec: VQVAE
    train_codes: np.ndarray
    train_label_ids: np.ndarray  # class of each row of train_codes: its label's index, len(labels) for "no label"
    val_codes: np.ndarray
    val_label_ids: np.ndarray
    labels: list[str]  # the label vocabulary of a conditional prior; empty for an unconditional one


def load_prior_data(store_path: str, codec_path: str, cache_dir: Path, val_max_windows: int, conditional: bool) -> PriorData:
    """Open the store and codec, check they belong together, and encode (or reuse) the codes of both splits."""
    store = WindowStore(store_path)
    codec = load_model(VQVAE, codec_path)
    if codec.config.window_length != store.window_length:
        raise ConfigError(f"{codec_path}: codec windows are {codec.config.window_length} samples, the store's are {store.window_length}")
    train_codes, train_index = cached_codes(codec, store, "train", cache_dir)
    val_codes, val_index = cached_codes(codec, store, store.validation_split(), cache_dir, val_max_windows)
    labels = sorted({str(l) for l in store.labels("train") if str(l)}) if conditional else []
    if conditional and not labels:
        raise ConfigError(f"{store_path}: conditional=True but the train split has no window labels")
    # unlabelled windows of a conditional prior train the "no label" class; unconditional priors ignore labels
    ids = label_ids(store.index["label"], labels, missing=len(labels))
    return PriorData(store, codec, train_codes, ids[train_index], val_codes, ids[val_index], labels)
