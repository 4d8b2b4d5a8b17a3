"""The window store: windows written once as raw float32 shards plus a JSON manifest, read window by window.

Layout of a store folder::

    manifest.json   preprocessing config and its hash, channels, rate, records and their splits, counts, shards
    windows-00000.f32, windows-00001.f32, ...
                    (N, L, C) float32 in physical units, C order, in shards of bounded size (format 1: one
                    windows.f32), read with positional reads
    index.npz       per window: record index, start sample, split, AAMI label, beat symbols
    normalization.json  statistics of the train split, used by the codec to work in unit scale

Training reads windows lazily, so a store larger than memory trains without being loaded: a process reads the
windows it draws and nothing else, and opens a shard when it first reads from it.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from tsvq.data.splits import SPLITS
from tsvq.errors import DataError
from tsvq.io import read_json, write_json

STORE_FORMAT_VERSION = 2  # 2: windows in shards listed by the manifest; format 1 (one windows.f32) still opens
READABLE_FORMATS = (1, 2)
DEFAULT_SHARD_MB = 1024  # shards of at most this many MiB: files a cluster copies, checks and serves one by one


def shard_list(manifest: dict) -> list[dict]:
    """The manifest's shards, ``[{"file", "windows"}]``; a format-1 store is one shard, ``windows.f32``."""
    if "shards" in manifest:
        return manifest["shards"]
    return [{"file": "windows.f32", "windows": int(manifest["num_windows"])}]


class ShardedWindows:
    """The windows of a store's shards read as one ``(N, L, C)`` float32 array: an int, a slice or an array of
    window indices gives those windows in memory. Windows are read from the files with positional reads (runs of
    neighbours in one read), not mapped: a process holds only the windows it asked for, however large the store,
    and opens a shard only when it first reads from it, so a DataLoader worker or a rank opens the shards it reads.
    Forked processes may share the open files: positional reads move no shared file offset."""

    dtype = np.dtype(np.float32)
    ndim = 3

    def __init__(self, folder: Path, shards: list[dict], window_length: int, num_channels: int):
        self.folder = Path(folder)
        self.files = [str(shard["file"]) for shard in shards]
        counts = np.array([int(shard["windows"]) for shard in shards], dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(counts)])
        self.shape = (int(self.starts[-1]), window_length, num_channels)
        self.window_bytes = window_length * num_channels * 4
        self._open: dict[int, object] = {}

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key) -> np.ndarray:
        if isinstance(key, (int, np.integer)):
            return self[np.array([key])][0]
        indices = np.arange(len(self))[key] if isinstance(key, slice) else np.asarray(key, dtype=np.int64)
        if indices.ndim != 1:
            raise IndexError("windows are read by an int, a slice or a 1-D array of indices")
        indices = np.where(indices < 0, indices + len(self), indices)
        if len(indices) and (indices.min() < 0 or indices.max() >= len(self)):
            raise IndexError(f"window index out of range for {len(self)} windows")
        out = np.empty((len(indices), *self.shape[1:]), dtype=np.float32)
        order = np.argsort(indices, kind="stable")
        ordered = indices[order]
        shard_of = np.searchsorted(self.starts, ordered, side="right") - 1
        breaks = np.flatnonzero((np.diff(ordered) != 1) | (np.diff(shard_of) != 0)) + 1
        for run in np.split(np.arange(len(ordered)), breaks):
            if len(run):
                s = int(shard_of[run[0]])
                out[order[run]] = self._read(s, int(ordered[run[0]] - self.starts[s]), len(run))
        return out

    def _read(self, shard: int, first: int, count: int) -> np.ndarray:
        """``count`` windows of one shard from its window ``first`` on."""
        if shard not in self._open:
            self._open[shard] = open(self.folder / self.files[shard], "rb")  # noqa: SIM115 (kept open for reads)
        block = np.empty((count, *self.shape[1:]), dtype=np.float32)
        view = memoryview(block).cast("B")
        handle = self._open[shard]
        if hasattr(os, "preadv"):
            read = os.preadv(handle.fileno(), [view], first * self.window_bytes)
        else:  # no positional reads on this system: a file of its own for each read
            with open(self.folder / self.files[shard], "rb") as own:
                own.seek(first * self.window_bytes)
                read = own.readinto(view)
        if read != len(view):
            raise DataError(f"{self.folder / self.files[shard]}: ended early; the store is damaged")
        return block

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return np.asarray(self[:], dtype=dtype)


def check_shards(folder: Path, manifest: dict) -> list[dict]:
    """The manifest's shards, each checked to be a plain file in the folder of the size its windows need."""
    shards = shard_list(manifest)
    window_bytes = int(manifest["window_length"]) * len(manifest["channel_names"]) * 4
    if sum(int(shard["windows"]) for shard in shards) != int(manifest["num_windows"]):
        raise DataError(f"{folder / 'manifest.json'}: the shards' windows do not add up to num_windows")
    for shard in shards:
        file = folder / str(shard["file"])
        if file.parent != folder:
            raise DataError(f"{folder / 'manifest.json'}: shard {shard['file']!r} is not a file of the store's folder")
        expected = int(shard["windows"]) * window_bytes
        actual = file.stat().st_size if file.is_file() else -1
        if actual != expected:
            raise DataError(f"{file}: size {actual} bytes, manifest expects {expected}; the store is damaged")
    return shards


class WindowStore:
    """Read-only view of a prepared store."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        manifest_file = self.path / "manifest.json"
        if not manifest_file.is_file():
            raise DataError(f"{self.path}: not a window store (no manifest.json); run `tsvq prepare` first")
        self.manifest = read_json(manifest_file, "window store manifest")
        if self.manifest.get("format_version") not in READABLE_FORMATS:
            raise DataError(
                f"{manifest_file}: store format {self.manifest.get('format_version')!r}; this tsvq reads formats "
                f"{', '.join(map(str, READABLE_FORMATS))}"
            )
        if "part" in self.manifest:
            part = self.manifest["part"]
            raise DataError(
                f"{self.path}: part {part['index']}/{part['count']} of a store prepared in parts; merge all the parts "
                "with `tsvq merge-stores PART... --out STORE` and use the merged store"
            )
        self.shards = check_shards(self.path, self.manifest)
        self.normalization = read_json(self.path / "normalization.json", "normalization statistics")
        with np.load(self.path / "index.npz") as index:
            self.index = {key: index[key] for key in index.files}
        self._windows: ShardedWindows | None = None

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
    def windows(self) -> ShardedWindows:
        """All windows, ``(N, L, C)`` float32 physical units, read on demand (nothing is loaded)."""
        if self._windows is None:
            self._windows = ShardedWindows(self.path, self.shards, self.window_length, self.num_channels)
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

    def __init__(self, folder: Path, shard_mb: float = DEFAULT_SHARD_MB):
        self.folder = Path(folder)
        if not shard_mb > 0:
            raise DataError(f"shard size {shard_mb!r} MiB: must be positive")
        self.shard_bytes = int(shard_mb * 2**20)
        self.shards: list[dict] = []
        self._sink = None
        self._index: dict[str, list] = defaultdict(list)
        self.records: list[dict] = []
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
        self.records.append(meta)

    def _append_windows(self, windows: np.ndarray) -> None:
        """Append windows to the shards, starting a new shard when the current one is full (one seam, so tests can
        simulate a full disk here)."""
        windows = np.ascontiguousarray(windows, dtype=np.float32)
        per_window = max(1, windows[:1].nbytes)
        while len(windows):
            room = self._room(per_window) if self.shards else 0
            if room == 0:
                self._start_shard()
                room = max(1, self._room(per_window))  # a window larger than a shard gets a shard of its own
            self._sink.write(windows[:room].tobytes())
            self.shards[-1]["windows"] += len(windows[:room])
            windows = windows[room:]

    def _room(self, per_window: int) -> int:
        """Windows that still fit in the current shard."""
        return max(0, (self.shard_bytes - self.shards[-1]["windows"] * per_window) // per_window)

    def _start_shard(self) -> None:
        if self._sink is not None:
            self._sink.close()
        self.shards.append({"file": f"windows-{len(self.shards):05d}.f32", "windows": 0})
        self._sink = open(self.folder / self.shards[-1]["file"], "wb")

    def finish(self, manifest: dict, where: str) -> None:
        """Write the index, the train split's normalisation statistics and the manifest."""
        self.close()
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
        part = manifest.get("part")
        if counts["train"] == 0 and part is None:
            raise DataError(f"{where}: the train split holds no windows; check the split settings")
        windows = ShardedWindows(self.folder, self.shards, manifest["window_length"], len(self.channel_names))
        sums = train_sums(windows, index["split"])
        if part is None:
            write_json(self.folder / "normalization.json", statistics_from_sums(sums))
        else:
            part["train_sums"] = sums  # the merge adds every part's sums into the whole store's statistics
        write_json(
            self.folder / "manifest.json",
            {
                "format_version": STORE_FORMAT_VERSION,
                **manifest,
                "channel_names": self.channel_names,
                "units": self.units,
                "num_windows": len(windows),
                "shards": self.shards,
                "windows_per_split": counts,
                **record_totals(self.records),
                "records": self.records,
            },
        )

    def close(self) -> None:
        if self._sink is not None:
            self._sink.close()


def record_totals(records: list[dict]) -> dict:
    """The manifest's totals over its records, in their order: minutes per patient/group (a record's leads share
    its minutes) and seconds dropped by reason."""
    minutes_per_group: dict[str, float] = defaultdict(float)
    for record in {r["file"]: r for r in records}.values():
        minutes_per_group[record["group"]] += record["minutes"]
    dropped: Counter = Counter()
    for record in records:
        dropped.update(record.get("dropped_seconds", {}))
    return {"minutes_per_group": dict(minutes_per_group), "dropped_seconds": dict(dropped)}


def train_sums(windows, split: np.ndarray) -> dict:
    """Per-channel sum and sum of squares of the train split's samples and their count, read in chunks (the store
    may exceed memory): what its statistics are computed from, and what parts of a store add up."""
    train = np.flatnonzero(split == SPLITS.index("train"))
    total = np.zeros(windows.shape[2])
    total_sq = np.zeros(windows.shape[2])
    count = 0
    for chunk in np.array_split(train, max(1, len(train) // 1024)):
        block = np.asarray(windows[chunk], dtype=np.float64)
        total += block.sum(axis=(0, 1))
        total_sq += (block**2).sum(axis=(0, 1))
        count += block.shape[0] * block.shape[1]
    return {"count": count, "sum": total.tolist(), "sum_of_squares": total_sq.tolist()}


def statistics_from_sums(sums: dict) -> dict:
    """Per-channel mean and standard deviation of the train split (``normalization.json``) from its sums."""
    if not sums["count"]:
        raise DataError("the train split holds no windows; check the split settings")
    mean = np.asarray(sums["sum"]) / sums["count"]
    std = np.sqrt(np.maximum(np.asarray(sums["sum_of_squares"]) / sums["count"] - mean**2, 0.0))
    if (std < 1e-6).any():
        raise DataError("the train split's windows are flat (standard deviation ~0); nothing to learn")
    return {"computed_on": "train split", "mean": mean.tolist(), "std": std.tolist()}


def label_ids(names, vocabulary: list[str], missing: int = -1) -> np.ndarray:
    """The index of each label name in ``vocabulary``, ``missing`` for a name it does not hold (or no label)."""
    index = {name: i for i, name in enumerate(vocabulary)}
    return np.array([index.get(str(name), missing) for name in names], dtype=np.int64)


def balanced_indices(
    indices: np.ndarray, groups: np.ndarray, sources: np.ndarray | None = None, power: float = 1.0
) -> np.ndarray:
    """Repeat each group's windows (cyclically) until every group has as many as the largest one, so each patient
    weighs the same in an epoch however many hours they contributed. With ``sources``, groups are balanced within
    each source and then the sources against each other: a database of 1000 short recordings and one of 20
    long ones weigh the same. ``power`` < 1 balances part way: a group of n windows gets
    n^(1 - power) x largest^power (0: as stored; 0.5: a patient weighs as the square root of their windows), so
    a generative prior sees every patient often without one database's short records outweighing the rest.
    Every window stays at least once. Deterministic: the shuffle stays the sampler's."""
    if sources is not None:
        parts = [balanced_indices(indices[sources == s], groups[sources == s], power=power) for s in np.unique(sources)]
        target = max(len(part) for part in parts)
        return np.concatenate([np.resize(part, target) for part in parts])
    names, counts = np.unique(groups, return_counts=True)
    targets = np.maximum(counts, np.round(counts ** (1.0 - power) * counts.max() ** power).astype(np.int64))
    return np.concatenate([np.resize(indices[groups == name], target) for name, target in zip(names, targets)])


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
        self.shards = store.shards
        self.shape = (store.num_windows, store.window_length, store.num_channels)
        self.indices = store.split_indices(split)
        if len(self.indices) == 0:
            raise DataError(f"{store.path}: the '{split}' split holds no windows")
        if balance_groups or balance_sources:
            sources = store.sources_of(self.indices) if balance_sources else None
            self.indices = balanced_indices(self.indices, store.groups_of(self.indices), sources)
        self.labels = label_ids(store.index["label"][self.indices], label_vocabulary or [])
        self._windows: ShardedWindows | None = None  # opened lazily so DataLoader workers each open their own

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if self._windows is None:
            self._windows = ShardedWindows(self.store_path, self.shards, *self.shape[1:])
        window = self._windows[self.indices[i]]  # read into a fresh array: no copy needed
        return {"signal": torch.from_numpy(window), "label": torch.tensor(self.labels[i])}
