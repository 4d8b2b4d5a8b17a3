"""What the prior stages start from: the store, the trained codec, and the cached codes of train and validation;
and what the code-prior stages (WaveNet, MaskGIT) share: the codes as datasets, the codec check."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from tsvq.codec import VQVAE
from tsvq.data import WindowStore
from tsvq.data.store import balanced_indices, label_ids
from tsvq.errors import ConfigError
from tsvq.pretrained import pipeline_part
from tsvq.priors.code_prior import CodePrior
from tsvq.priors.latents import cached_codes
from tsvq.safe_loading import load_model
from tsvq.training.loop import claim_output_dir


@dataclass
class PriorData:
    store: WindowStore
    codec: VQVAE
    train_codes: np.ndarray
    train_label_ids: np.ndarray  # class of each row of train_codes: its label's index, len(labels) for "no label"
    val_codes: np.ndarray
    val_label_ids: np.ndarray
    labels: list[str]  # the label vocabulary of a conditional prior; empty for an unconditional one
    train_rows: np.ndarray  # rows of train_codes making up an epoch (some repeated when patients are balanced)

    def datasets(self) -> tuple[CodeDataset, CodeDataset]:
        """The training codes (an epoch's rows, patients balanced as asked) and the validation codes."""
        return (
            CodeDataset(self.train_codes, self.train_label_ids, self.train_rows),
            CodeDataset(self.val_codes, self.val_label_ids),
        )


def load_stage_data(config) -> PriorData:
    """``load_prior_data`` for a prior stage's config: its store, codec and patient balance, with the codes cached
    in its output folder."""
    cache_dir = claim_output_dir(config.training, config.store, config.codec) / "cache"
    return load_prior_data(
        config.store,
        config.codec,
        cache_dir,
        config.val_max_windows,
        config.conditional,
        config.balance_groups,
        config.balance_labels,
    )


def load_prior_data(
    store_path: str,
    codec_path: str,
    cache_dir: Path,
    val_max_windows: int,
    conditional: bool,
    balance_groups: float = 0.0,
    balance_labels: bool = False,
) -> PriorData:
    """Open the store and codec, check they belong together, and encode (or reuse) the codes of both splits.
    ``balance_groups`` weighs patients against each other in an epoch (``balanced_indices``' power: 0 as stored,
    1 every patient the same); ``balance_labels`` makes every label (and "no label") weigh the same, patients
    balanced within each: a conditional prior learns its rare classes as well as its common ones."""
    if balance_labels and not conditional:  # said before minutes of encoding, not after
        raise ConfigError("balance_labels needs conditional=True: an unconditional prior has no labels to balance")
    store = WindowStore(store_path)
    codec_path = pipeline_part(codec_path, "codec")
    codec = load_model(VQVAE, codec_path)
    if codec.config.window_length != store.window_length:
        raise ConfigError(
            f"{codec_path}: codec windows are {codec.config.window_length} samples, the store's are "
            f"{store.window_length}"
        )
    train_codes, train_index = cached_codes(codec, store, "train", cache_dir)
    val_codes, val_index = cached_codes(codec, store, store.validation_split(), cache_dir, val_max_windows)
    labels = sorted({str(label) for label in store.labels("train") if str(label)}) if conditional else []
    if conditional and not labels:
        raise ConfigError(f"{store_path}: conditional=True but the train split has no window labels")
    # unlabelled windows of a conditional prior train the "no label" class; unconditional priors ignore labels
    ids = label_ids(store.index["label"], labels, missing=len(labels))
    rows = np.arange(len(train_index))
    if balance_groups or balance_labels:
        classes = ids[train_index] if balance_labels else None
        rows = balanced_indices(rows, store.groups_of(train_index), classes, power=float(balance_groups))
    return PriorData(store, codec, train_codes, ids[train_index], val_codes, ids[val_index], labels, rows)


def check_balance_groups(value, stage: str) -> None:
    """``balance_groups`` is a power between 0 and 1."""
    if isinstance(value, str) or not 0 <= float(value) <= 1:
        raise ConfigError(
            f"{stage}: balance_groups must be between 0 (as stored) and 1 (every patient the same), not {value!r}"
        )


def drop_labels(labels: torch.Tensor, num_labels: int, probability: float) -> torch.Tensor:
    """Classifier-free guidance's training half: each label becomes "no label" (index ``num_labels``) with
    ``probability``, so one model learns the conditional and the unconditional distribution."""
    drop = torch.rand(labels.shape, device=labels.device) < probability
    return torch.where(drop, torch.full_like(labels, num_labels), labels)


class CodeDataset(Dataset):
    """Code rows ``(L',)`` with their label index (``len(labels)``: no label); ``rows`` (default: each once) says
    which rows an epoch holds, so balancing patients repeats indices, not codes."""

    def __init__(self, codes: np.ndarray, labels: np.ndarray, rows: np.ndarray | None = None):
        self.codes = torch.from_numpy(codes.astype(np.int64))
        self.labels = torch.from_numpy(labels.astype(np.int64))
        self.rows = np.arange(len(codes)) if rows is None else rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        row = self.rows[i]
        return {"codes": self.codes[row], "label": self.labels[row]}


class CodePriorTask:
    """The part of a code-prior stage's task that is the same for every such prior: data, datasets, the codec
    check, and no per-step work or extra checkpoint state. Subclasses add the model, loss, evaluate and save."""

    title: str = "a code prior"
    prior_class: type[CodePrior]  # what the stage trains: it says which codecs' codes it models

    def __init__(self, config):
        self.config = config
        data = load_stage_data(config)
        self.data = data
        self.store, self.codec, self.labels = data.store, data.codec, data.labels
        self.prior_class.check_codebooks(self.codec, self.title)
        self.train_dataset, self.val_dataset = data.datasets()
        self.last_metrics: dict[str, float] | None = None

    def after_step(self, model) -> None:
        pass

    def checkpoint_objects(self) -> list:
        return []
