"""The window store: windows written once as a raw memory-mapped float32 array plus a JSON manifest.

Layout of a store folder::

    manifest.json   preprocessing config and its hash, channels, rate, records and their splits, counts
    windows.f32     (N, L, C) float32 in physical units, C order, read through np.memmap
    index.npz       per window: record index, start sample, split, AAMI label, beat symbols
    normalization.json  statistics of the train split, used by the codec to work in unit scale

Training reads windows lazily, so a store larger than memory trains without being loaded.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from tsvq.data.splits import SPLITS
from tsvq.errors import DataError
from tsvq.io import read_json, write_json

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
            raise DataError(
                f"{manifest_file}: store format {self.manifest.get('format_version')} is not {STORE_FORMAT_VERSION}"
            )
        self.normalization = read_json(self.path / "normalization.json", "normalization statistics")
        with np.load(self.path / "index.npz") as index:
            self.index = {key: index[key] for key in index.files}
        self._windows: np.memmap | None = None
        expected = self.num_windows * self.window_length * self.num_channels * 4
        actual = (self.path / "windows.f32").stat().st_size if (self.path / "windows.f32").exists() else -1
        if actual != expected:
            raise DataError(
                f"{self.path / 'windows.f32'}: size {actual} bytes, manifest expects {expected}; the store is damaged"
            )

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
                self.path / "windows.f32",
                dtype=np.float32,
                mode="r",
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

    def dataset(
        self,
        split: str,
        label_vocabulary: list[str] | None = None,
        balance_groups: bool = False,
        balance_sources: bool = False,
    ) -> WindowDataset:
        return WindowDataset(self, split, label_vocabulary, balance_groups, balance_sources)

    def sources_of(self, indices: np.ndarray) -> np.ndarray:
        """The source (dataset folder) of each window index."""
        records = self.manifest["records"]
        if any("source" not in r for r in records):
            raise DataError(
                f"{self.path}: the store does not record each record's source (made by an older tsvq); "
                "prepare it again to balance sources"
            )
        return np.array([r["source"] for r in records])[self.index["record"][indices]]

    def groups_of(self, indices: np.ndarray) -> np.ndarray:
        """Patient/group id of each window index."""
        groups = np.array([r["group"] for r in self.manifest["records"]])
        return groups[self.index["record"][indices]]

    def __repr__(self) -> str:
        counts = {s: len(self.split_indices(s)) for s in SPLITS}
        return (
            f"WindowStore({self.path}, {self.sampling_rate_hz:g} Hz, window={self.window_length}, "
            f"channels={self.channel_names}, {counts})"
        )


class StoreWriter:
    """Writes a store into a (temporary) folder: windows stream to disk, the index, normalisation and
    manifest are written once every example is in. ``prepare`` decides what to write; this decides how."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self._sink = open(self.folder / "windows.f32", "wb")
        self._index: dict[str, list] = defaultdict(list)
        self.records: list[dict] = []
        self.dropped: Counter = Counter()
        self.channel_names: list[str] | None = None
        self.units: list[str] | None = None

    def add(
        self,
        meta: dict,
        windows: np.ndarray,
        starts: np.ndarray,
        splits: np.ndarray,
        labels: list[str],
        beats: list[str],
        channel_names: list[str],
        units: list[str],
    ) -> None:
        """Append one example's windows ``(n, L, C)`` with their start samples, split codes, labels and beats."""
        where = meta.get("file", meta["name"])
        if self.units is not None and [u.lower() for u in units] != [u.lower() for u in self.units]:
            raise DataError(f"{where}: units {units} differ from earlier records' {self.units}")
        if self.channel_names is None:
            self.channel_names, self.units = list(channel_names), list(units)
        elif list(channel_names) != self.channel_names:
            self.channel_names = ["signal"]  # differently named leads share one channel: no single name fits
        self._append_windows(windows)
        self._index["record"].append(np.full(len(starts), len(self.records), dtype=np.int32))
        self._index["start"].append(np.asarray(starts, dtype=np.int64))
        self._index["split"].append(np.asarray(splits, dtype=np.int8))
        self._index["label"] += labels
        self._index["beats"] += beats
        self.dropped.update(meta.get("dropped_seconds", {}))
        self.records.append(meta)

    def _append_windows(self, windows: np.ndarray) -> None:
        """Append windows to the raw store file (one seam, so tests can simulate a full disk here)."""
        self._sink.write(np.ascontiguousarray(windows, dtype=np.float32).tobytes())

    def finish(self, manifest: dict, where: str) -> None:
        """Write the index, the train split's normalisation statistics and the manifest."""
        self._sink.close()
        if not self.records:
            raise DataError(f"{where}: no usable record; skipped: {manifest.get('skipped_records', {})}")
        index = {
            "record": np.concatenate(self._index["record"]),
            "start": np.concatenate(self._index["start"]),
            "split": np.concatenate(self._index["split"]),
            "label": np.array(self._index["label"], dtype=str),
            "beats": np.array(self._index["beats"], dtype=str),
        }
        np.savez(self.folder / "index.npz", **index)
        counts = {s: int((index["split"] == i).sum()) for i, s in enumerate(SPLITS)}
        if counts["train"] == 0:
            raise DataError(f"{where}: the train split holds no windows; check the split settings")
        shape = (len(index["start"]), manifest["window_length"], len(self.channel_names))
        windows = np.memmap(self.folder / "windows.f32", dtype=np.float32, mode="r", shape=shape)
        write_json(self.folder / "normalization.json", train_statistics(windows, index["split"]))
        minutes_per_group: dict[str, float] = defaultdict(float)
        for record in {r["file"]: r for r in self.records}.values():  # a record's leads share its minutes
            minutes_per_group[record["group"]] += record["minutes"]
        write_json(
            self.folder / "manifest.json",
            {
                "format_version": STORE_FORMAT_VERSION,
                **manifest,
                "channel_names": self.channel_names,
                "units": self.units,
                "num_windows": shape[0],
                "windows_per_split": counts,
                "minutes_per_group": dict(minutes_per_group),
                "dropped_seconds": dict(self.dropped),
                "records": self.records,
            },
        )

    def close(self) -> None:
        self._sink.close()


def train_statistics(windows: np.ndarray, split: np.ndarray) -> dict:
    """Per-channel mean and standard deviation of the train split, read in chunks (the store may exceed memory)."""
    train = np.flatnonzero(split == SPLITS.index("train"))
    total = np.zeros(windows.shape[2])
    total_sq = np.zeros(windows.shape[2])
    count = 0
    for chunk in np.array_split(train, max(1, len(train) // 1024)):
        block = np.asarray(windows[chunk], dtype=np.float64)
        total += block.sum(axis=(0, 1))
        total_sq += (block**2).sum(axis=(0, 1))
        count += block.shape[0] * block.shape[1]
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
    if (std < 1e-6).any():
        raise DataError("the train split's windows are flat (standard deviation ~0); nothing to learn")
    return {"computed_on": "train split", "mean": mean.tolist(), "std": std.tolist()}


def label_ids(names, vocabulary: list[str], missing: int = -1) -> np.ndarray:
    """The index of each label name in ``vocabulary``, ``missing`` for a name it does not hold (or no label)."""
    index = {name: i for i, name in enumerate(vocabulary)}
    return np.array([index.get(str(name), missing) for name in names], dtype=np.int64)


def balanced_indices(indices: np.ndarray, groups: np.ndarray, sources: np.ndarray | None = None) -> np.ndarray:
    """Repeat each group's windows (cyclically) until every group has as many as the largest one, so each patient
    weighs the same in an epoch however many hours they contributed. With ``sources``, groups are balanced within
    each source and then the sources against each other: a database of 1000 short recordings and one of 20
    long ones weigh the same. Deterministic: the shuffle stays the sampler's."""
    if sources is not None:
        parts = [balanced_indices(indices[sources == s], groups[sources == s]) for s in np.unique(sources)]
        target = max(len(part) for part in parts)
        return np.concatenate([np.resize(part, target) for part in parts])
    names, counts = np.unique(groups, return_counts=True)
    target = counts.max()
    return np.concatenate([np.resize(indices[groups == name], target) for name in names])


class WindowDataset(Dataset):
    """Windows of one split as ``{"signal": (L, C) float32 mV, "label": int64}``; label -1 means none/unknown.
    With ``balance_groups`` every patient/group contributes equally many windows per epoch."""

    def __init__(
        self,
        store: WindowStore,
        split: str,
        label_vocabulary: list[str] | None = None,
        balance_groups: bool = False,
        balance_sources: bool = False,
    ):
        self.store_path = store.path
        self.shape = (store.num_windows, store.window_length, store.num_channels)
        self.indices = store.split_indices(split)
        if len(self.indices) == 0:
            raise DataError(f"{store.path}: the '{split}' split holds no windows")
        if balance_groups or balance_sources:
            sources = store.sources_of(self.indices) if balance_sources else None
            self.indices = balanced_indices(self.indices, store.groups_of(self.indices), sources)
        self.labels = label_ids(store.index["label"][self.indices], label_vocabulary or [])
        self._windows: np.memmap | None = None  # opened lazily so DataLoader workers each map their own

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if self._windows is None:
            self._windows = np.memmap(self.store_path / "windows.f32", dtype=np.float32, mode="r", shape=self.shape)
        window = np.array(self._windows[self.indices[i]])
        return {"signal": torch.from_numpy(window), "label": torch.tensor(self.labels[i])}
