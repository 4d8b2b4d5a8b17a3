"""The window store: windows written once as a raw memory-mapped float32 array plus a JSON manifest.

Layout of a store folder::

    manifest.json   preprocessing config and its hash, channels, rate, records and their splits, counts
    windows.f32     (N, L, C) float32 in physical units, C order, read through np.memmap
    index.npz       per window: record index, start sample, split, AAMI label, beat symbols
    normalization.json  statistics of the train split, used by the codec to work in unit scale

Training reads windows lazily, so a store larger than memory trains without being loaded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from tsvq.data.splits import SPLITS
from tsvq.errors import DataError
from tsvq.io import read_json

STORE_FORMAT_VERSION = 1


class WindowStore:
    """Read-only view of a prepared store."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        manifest_file = self.path / "manifest.json"
        if not manifest_file.is_file():
            raise DataError(f"{self.path}: not a window store (no manifest.json); run `tsvq prepare` first")
        self.manifest = read_json(manifest_file, "window store manifest")
        if self.manifest.get("format_version") != STORE_FORMAT_VERSION:
            raise DataError(f"{manifest_file}: store format {self.manifest.get('format_version')} is not {STORE_FORMAT_VERSION}")
        self.normalization = read_json(self.path / "normalization.json", "normalization statistics")
        with np.load(self.path / "index.npz") as index:
            self.index = {key: index[key] for key in index.files}
        self._windows: np.memmap | None = None
        expected = self.num_windows * self.window_length * self.num_channels * 4
        actual = (self.path / "windows.f32").stat().st_size if (self.path / "windows.f32").exists() else -1
        if actual != expected:
            raise DataError(f"{self.path / 'windows.f32'}: size {actual} bytes, manifest expects {expected}; the store is damaged")

    @property
    def num_windows(self) -> int:
        return int(self.manifest["num_windows"])

    @property
    def window_length(self) -> int:
        return int(self.manifest["window_length"])

    @property
    def num_channels(self) -> int:
        return len(self.manifest["channel_names"])

    @property
    def channel_names(self) -> list[str]:
        return list(self.manifest["channel_names"])

    @property
    def units(self) -> list[str]:
        return list(self.manifest["units"])

    @property
    def sampling_rate_hz(self) -> float:
        return float(self.manifest["sampling_rate_hz"])

    @property
    def record_names(self) -> list[str]:
        return [r["name"] for r in self.manifest["records"]]

    @property
    def windows(self) -> np.memmap:
        """All windows, ``(N, L, C)`` float32 physical units, memory-mapped (nothing is loaded)."""
        if self._windows is None:
            self._windows = np.memmap(
                self.path / "windows.f32", dtype=np.float32, mode="r",
                shape=(self.num_windows, self.window_length, self.num_channels),
            )
        return self._windows

    def split_indices(self, split: str) -> np.ndarray:
        if split not in SPLITS:
            raise DataError(f"unknown split '{split}'; choose one of {SPLITS}")
        return np.flatnonzero(self.index["split"] == SPLITS.index(split))

    def validation_split(self) -> str:
        """'val', or 'train' when the store has no validation windows (e.g. a single short record)."""
        return "val" if len(self.split_indices("val")) else "train"

    def subset_indices(self, split: str, max_windows: int | None = None, seed: int = 0) -> np.ndarray:
        """Window indices of a split: all of them, or a seeded, sorted subset of ``max_windows``."""
        indices = self.split_indices(split)
        if max_windows is not None and len(indices) > max_windows:
            indices = np.sort(np.random.default_rng(seed).choice(indices, max_windows, replace=False))
        return indices

    def load(self, split: str, max_windows: int | None = None, seed: int = 0) -> np.ndarray:
        """Windows of one split in memory, ``(n, L, C)`` float32 mV; a seeded subset when ``max_windows`` is set."""
        return np.asarray(self.windows[self.subset_indices(split, max_windows, seed)])

    def labels(self, split: str) -> np.ndarray:
        return self.index["label"][self.split_indices(split)]

    def record_of(self, split: str) -> np.ndarray:
        """Record name of each window of a split."""
        return self.record_names_at(self.split_indices(split))

    def record_names_at(self, indices: np.ndarray) -> np.ndarray:
        """Record name of each window index."""
        return np.array(self.record_names)[self.index["record"][indices]]

    def dataset(self, split: str, label_vocabulary: list[str] | None = None, balance_groups: bool = False) -> "WindowDataset":
        return WindowDataset(self, split, label_vocabulary, balance_groups)

    def groups_of(self, indices: np.ndarray) -> np.ndarray:
        """Patient/group id of each window index."""
        groups = np.array([r["group"] for r in self.manifest["records"]])
        return groups[self.index["record"][indices]]

    def __repr__(self) -> str:
        counts = {s: len(self.split_indices(s)) for s in SPLITS}
        return f"WindowStore({self.path}, {self.sampling_rate_hz:g} Hz, window={self.window_length}, channels={self.channel_names}, {counts})"


def balanced_indices(indices: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Repeat each group's windows (cyclically) until every group has as many as the largest one, so each patient
    weighs the same in an epoch however many hours they contributed. Deterministic: the shuffle stays the sampler's."""
    names, counts = np.unique(groups, return_counts=True)
    target = counts.max()
    return np.concatenate([np.resize(indices[groups == name], target) for name in names])


class WindowDataset(Dataset):
    """Windows of one split as ``{"signal": (L, C) float32 mV, "label": int64}``; label -1 means none/unknown.
    With ``balance_groups`` every patient/group contributes equally many windows per epoch."""

    def __init__(self, store: WindowStore, split: str, label_vocabulary: list[str] | None = None, balance_groups: bool = False):
        self.store_path = store.path
        self.shape = (store.num_windows, store.window_length, store.num_channels)
        self.indices = store.split_indices(split)
        if len(self.indices) == 0:
            raise DataError(f"{store.path}: the '{split}' split holds no windows")
        if balance_groups:
            self.indices = balanced_indices(self.indices, store.groups_of(self.indices))
        vocabulary = {name: i for i, name in enumerate(label_vocabulary or [])}
        self.labels = np.array([vocabulary.get(str(l), -1) for l in store.index["label"][self.indices]], dtype=np.int64)
        self._windows: np.memmap | None = None  # opened lazily so DataLoader workers each map their own

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if self._windows is None:
            self._windows = np.memmap(self.store_path / "windows.f32", dtype=np.float32, mode="r", shape=self.shape)
        window = np.array(self._windows[self.indices[i]])
        return {"signal": torch.from_numpy(window), "label": torch.tensor(self.labels[i])}
