"""A store prepared in parts by separate jobs (``tsvq prepare --part i/n``), joined into the store one job would
have written: records, index and statistics are added up from the parts' manifests and the parts' shard files are
linked (copied across file systems) into the store, so nothing is read or windowed twice."""

from __future__ import annotations

import os
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np

from tsvq.data.store import STORE_FORMAT_VERSION, WindowStore, check_shards, record_totals, statistics_from_sums
from tsvq.errors import DataError
from tsvq.io import atomic_directory, check_output_path, read_json, write_json

# what every part of one store holds alike, as one job would write it
_SHARED_KEYS = ("config", "config_hash", "source", "sampling_rate_hz", "window_length", "stride", "split_note")


def read_part(folder: Path) -> dict:
    """A part's manifest, checked to be one and to hold the shard files it lists."""
    manifest = read_json(folder / "manifest.json", "window store manifest")
    if "part" not in manifest:
        raise DataError(
            f"{folder}: not a part of a store (its manifest has no 'part'); name the folders that "
            "`tsvq prepare --part i/n` wrote"
        )
    check_shards(folder, manifest)
    return manifest


def merge_stores(parts: list[str | Path], out: str | Path, overwrite: bool = False) -> WindowStore:
    """Join all ``n`` parts of a store into ``out``. The parts stay as they are (their files are linked, so
    removing them afterwards frees nothing but their names)."""
    folders = [Path(p) for p in parts]
    if not folders:
        raise DataError("merge: name the part folders to join")
    check_output_path(out, folders, "window store")
    manifests = [read_part(folder) for folder in folders]
    order = sorted(range(len(folders)), key=lambda k: manifests[k]["part"]["index"])
    folders, manifests = [folders[k] for k in order], [manifests[k] for k in order]
    first = manifests[0]
    count = first["part"]["count"]
    for folder, manifest in zip(folders, manifests, strict=True):
        rate, first_rate = manifest["sampling_rate_hz"], first["sampling_rate_hz"]
        if rate != first_rate and manifest["config_hash"] == first["config_hash"]:
            raise DataError(
                f"{folder}: sampling rate {rate:g} Hz differs from {first_rate:g} Hz of {folders[0]}'s records; set a "
                "target rate (--rate HZ) to resample them"
            )
        for key in _SHARED_KEYS:
            if manifest.get(key) != first.get(key):
                raise DataError(f"{folder}: its {key} differs from {folders[0]}'s; the parts are of different stores")
        if [u.lower() for u in manifest["units"]] != [u.lower() for u in first["units"]]:
            raise DataError(f"{folder}: units {manifest['units']} differ from {folders[0]}'s {first['units']}")
    indices = [m["part"]["index"] for m in manifests]
    if indices != list(range(count)) or any(m["part"]["count"] != count for m in manifests):
        missing = sorted(set(range(count)) - set(indices))
        raise DataError(
            f"merge needs each of the {count} parts once; got parts {indices}"
            + (f" (missing {missing})" if missing else "")
        )
    with atomic_directory(out, overwrite, "window store") as tmp:
        shards = []
        for folder, manifest in zip(folders, manifests, strict=True):
            for shard in manifest["shards"]:
                name = f"windows-{len(shards):05d}.f32"
                _link_or_copy(folder / shard["file"], tmp / name)
                shards.append({"file": name, "windows": shard["windows"]})
        _merge_index(folders, manifests, tmp)
        write_json(tmp / "normalization.json", statistics_from_sums(_added_sums(manifests)))
        write_json(tmp / "manifest.json", _merged_manifest(manifests, shards))
    return WindowStore(out)


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system, or one without hard links
        shutil.copyfile(source, target)


def _merge_index(folders: list[Path], manifests: list[dict], tmp: Path) -> None:
    """The parts' index files end to end, their record numbers shifted past the earlier parts' records."""
    index: dict[str, list] = defaultdict(list)
    offset = 0
    for folder, manifest in zip(folders, manifests, strict=True):
        with np.load(folder / "index.npz") as part:
            for key in part.files:
                index[key].append(part[key] + offset if key == "record" else part[key])
        offset += len(manifest["records"])
    np.savez(tmp / "index.npz", **{key: np.concatenate(values) for key, values in index.items()})


def _added_sums(manifests: list[dict]) -> dict:
    sums = [m["part"]["train_sums"] for m in manifests]
    return {
        "count": sum(s["count"] for s in sums),
        "sum": np.sum([s["sum"] for s in sums], axis=0).tolist(),
        "sum_of_squares": np.sum([s["sum_of_squares"] for s in sums], axis=0).tolist(),
    }


def _merged_manifest(manifests: list[dict], shards: list[dict]) -> dict:
    """The manifest one job would have written: totals recomputed from the records in their order."""
    first = manifests[0]
    records = [record for m in manifests for record in m["records"]]
    channel_names = first["channel_names"]
    if any(m["channel_names"] != channel_names for m in manifests):
        channel_names = ["signal"]  # differently named leads share one channel, as in one job
    manifest = {key: value for key, value in first.items() if key != "part"}
    manifest.update(
        format_version=STORE_FORMAT_VERSION,
        skipped_records={k: v for m in manifests for k, v in m["skipped_records"].items()},
        channel_names=channel_names,
        num_windows=sum(s["windows"] for s in shards),
        shards=shards,
        windows_per_split={k: sum(m["windows_per_split"][k] for m in manifests) for k in first["windows_per_split"]},
        **record_totals(records),
        records=records,
    )
    return manifest
