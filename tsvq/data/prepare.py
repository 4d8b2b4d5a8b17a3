"""From a folder of WFDB records (or a built-in source) to a window store, in one pass, record by record.

Memory holds one record at a time; windows stream to disk, so the source may be larger than RAM.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from tsvq.data import builtin
from tsvq.data.preprocess import QualityConfig, bandpass, clean_segments, dropped_seconds, quality_mask, resample
from tsvq.data.records import find_records, read_header, read_record
from tsvq.data.splits import SPLITS, assign_group_splits, time_split_bounds
from tsvq.data.store import STORE_FORMAT_VERSION, WindowStore
from tsvq.data.windows import beat_centred_starts, beats_in_window, fixed_window_starts, window_label
from tsvq.errors import DataError
from tsvq.io import atomic_directory, write_json

logger = logging.getLogger(__name__)


@dataclass
class PrepareConfig:
    """How records become windows. Defaults suit single-lead ECG."""

    source: str | list[str] = builtin.MITDB208  # a folder or record of WFDB files, a built-in source name, or a list
    rate_hz: float | None = 250.0  # None keeps the native rate (then every record must share it)
    window_seconds: float = 4.096  # 1024 samples at 250 Hz
    window_samples: int | None = None  # overrides window_seconds
    stride_seconds: float | None = None  # None: non-overlapping windows
    channels: list[str] | None = None  # None: the first channel of each record
    channel_aliases: bool = False  # match MLII/II, V/V5, ... when exact names are absent
    leads_as_examples: bool = False  # each lead in the first channel's unit (e.g. every mV lead) is its own 1-channel example
    lead_projections: int = 0  # with leads_as_examples: this many random mixtures of each train record's leads join too
    highpass_hz: float | None = 0.5  # baseline wander removal; None to keep it
    lowpass_hz: float | None = 40.0
    annotation_extensions: list[str] = field(default_factory=lambda: ["atr"])
    label_extension: str = "atr"  # beat labels (AAMI classes) come from this annotation only
    beat_centred: bool = False  # one window centred on each annotated beat instead of fixed strides
    group_by: str = "auto"  # 'record', 'parent' (folder = patient), or 'auto' (parent for records in subfolders)
    split_by: str = "group"  # 'group' (patient-wise) or 'time' (contiguous blocks of each record)
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    test_groups: list[str] = field(default_factory=list)
    val_groups: list[str] = field(default_factory=list)
    skip_bad_records: bool = False  # count and skip unreadable/unusable records instead of stopping
    seed: int = 0
    flat_seconds: float = 2.0
    clip_seconds: float = 0.05

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _config_hash(config: PrepareConfig, fingerprint: list) -> str:
    payload = json.dumps({"config": config.to_dict(), "sources": fingerprint, "version": STORE_FORMAT_VERSION}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _fingerprint(paths: list[Path]) -> list:
    """Names, sizes and modification times of the source files, so an edited record invalidates the store."""
    items = []
    for path in paths:
        for file in sorted(path.parent.glob(path.name + ".*")):
            stat = file.stat()
            items.append([file.name, stat.st_size, int(stat.st_mtime)])
    return items


def _group_of(path: Path, root: Path, group_by: str) -> str:
    relative = path.relative_to(root) if root.is_dir() else Path(path.name)
    in_subfolder = len(relative.parts) > 1
    if group_by == "record" or (group_by == "auto" and not in_subfolder):
        return relative.as_posix()
    if group_by in ("parent", "auto"):
        return relative.parent.as_posix() if in_subfolder else relative.as_posix()
    raise DataError(f"unknown group_by '{group_by}'; choose 'record', 'parent' or 'auto'")


def resolve_source(source: str) -> Path:
    """A built-in source name becomes its cached folder; anything else is a path."""
    if source in builtin.BUILTIN_SOURCES and not Path(source).exists():
        return builtin.materialize(source)
    return Path(source)


def _as_list(source: str | list[str]) -> list[str]:
    sources = [source] if isinstance(source, (str, Path)) else list(source)
    if not sources:
        raise DataError("prepare: 'source' is an empty list; name at least one folder, record or built-in source")
    return [str(s) for s in sources]


def _records_of_sources(roots: list[Path], group_by: str) -> tuple[list[Path], list[str], list[str]]:
    """Records of every source with their names and patient groups, relative to their own source.

    Sources combine databases (e.g. a folder of recordings plus the built-in MIT-BIH excerpt); a record name or a
    patient group found in two of them would merge two patients or hide one, so it is an error.
    """
    paths, names, groups, origin = [], [], [], {}
    for root in roots:
        found = find_records(root)
        record_root = root if root.is_dir() else root.parent
        groups_here = [_group_of(p, record_root, group_by) for p in found]
        for group in set(groups_here):
            if origin.setdefault(group, root) != root:
                raise DataError(f"sources {origin[group]} and {root} both hold records of group '{group}'; "
                                "rename one, or prepare them separately")
        paths += found
        names += [p.relative_to(record_root).as_posix() for p in found]
        groups += groups_here
    return paths, names, groups


def prepare(config: PrepareConfig, out: str | Path, overwrite: bool = False, progress: bool = True) -> WindowStore:
    """Build (or reuse) the window store for ``config`` at ``out`` and return it."""
    out = Path(out)
    roots = [resolve_source(source) for source in _as_list(config.source)]
    paths, names, groups = _records_of_sources(roots, config.group_by)
    where = ", ".join(map(str, roots))  # names the sources in messages
    if config.split_by not in ("group", "time"):
        raise DataError(f"unknown split_by '{config.split_by}'; choose 'group' or 'time'")
    if config.lead_projections < 0 or (config.lead_projections and not (config.leads_as_examples and config.split_by == "group")):
        raise DataError(f"lead_projections={config.lead_projections}: needs a count >= 0, leads_as_examples and split_by 'group' "
                        "(mixtures augment the train patients only)")
    config_hash = _config_hash(config, _fingerprint(paths))
    if (out / "manifest.json").exists():
        existing = WindowStore(out)
        if existing.manifest.get("config_hash") == config_hash:
            logger.info("reusing window store %s (same config and sources)", out)
            return existing
        if not overwrite:
            raise DataError(f"{out}: a window store made with another config already exists; pass overwrite=True / --overwrite")
    skipped: dict[str, str] = {}
    headers = {}
    for path, name in zip(paths, names):
        try:
            headers[name] = read_header(path)
        except DataError as error:
            if not config.skip_bad_records:
                raise
            skipped[name] = str(error)
    if config.rate_hz is None:
        rates = {name: float(h.fs) for name, h in headers.items()}
        if len(set(rates.values())) > 1:
            raise DataError(f"{where}: records have different sampling rates {rates}; set a target rate (--rate HZ) to resample them")
    rate = float(config.rate_hz or next(iter(headers.values())).fs)
    window = int(config.window_samples or round(config.window_seconds * rate))
    stride = int(round(config.stride_seconds * rate)) if config.stride_seconds else window
    if window < 8:
        raise DataError(f"window of {window} samples is too short")
    if config.split_by == "group":
        group_split = assign_group_splits(
            [g for g, n in zip(groups, names) if n in headers], config.val_fraction, config.test_fraction,
            config.seed, config.test_groups, config.val_groups,
        )
    quality = QualityConfig(flat_seconds=config.flat_seconds, clip_seconds=config.clip_seconds)

    with atomic_directory(out) as tmp:
        record_index, starts, split_codes, labels, beats = [], [], [], [], []
        records_meta, dropped = [], Counter()
        channel_names = units = None
        named_channels = bool(config.channels) and not config.leads_as_examples  # the store's channels are these names
        with open(tmp / "windows.f32", "wb") as sink:
            iterator = tqdm(list(zip(paths, names, groups)), desc="prepare", unit="record", disable=not progress)
            for path, name, group in iterator:
                if name in skipped:
                    continue
                iterator.set_postfix_str(name)
                try:
                    record = read_record(path, config.channels, config.channel_aliases, tuple(config.annotation_extensions), group)
                    examples = [(entry, names_here, units_here,
                                 _windows_of_record(record, signal, rate, window, stride, quality, config))
                                for entry, signal, names_here, units_here in _examples_of_record(
                                    record, name, config, config.split_by == "group" and group_split[group] == "train")]
                    for _, _, units_here, _ in examples:
                        if units is not None and [u.lower() for u in units_here] != [u.lower() for u in units]:
                            raise DataError(f"{path}.hea: units {units_here} differ from earlier records' {units}")
                except DataError as error:
                    if not config.skip_bad_records:
                        raise
                    skipped[name] = str(error)
                    continue
                for entry, names_here, units_here, result in examples:
                    if channel_names is None:
                        channel_names = list(config.channels) if named_channels else names_here
                    elif names_here != channel_names and not named_channels:
                        channel_names = ["signal"]  # differently named leads share one channel: no single name fits
                    units = units or units_here
                    if config.split_by == "group":
                        split_of_window = np.full(len(result["starts"]), SPLITS.index(group_split[group]), dtype=np.int8)
                    else:
                        split_of_window = result["time_split"]
                    _append_windows(sink, result["windows"])
                    index = len(records_meta)
                    record_index.append(np.full(len(result["starts"]), index, dtype=np.int32))
                    starts.append(result["starts"])
                    split_codes.append(split_of_window)
                    labels += result["labels"]
                    beats += result["beats"]
                    dropped.update(result["dropped_s"])
                    records_meta.append({
                        "name": entry, "group": group, "file": str(path) + ".hea",
                        "split": group_split[group] if config.split_by == "group" else "time-blocks",
                        "native_rate_hz": record.sampling_rate_hz, "channels": names_here,
                        "minutes": round(record.duration_s / 60, 3), "windows": int(len(result["starts"])),
                        "dropped_seconds": result["dropped_s"],
                    })
        if not records_meta:
            raise DataError(f"{where}: no usable record; skipped: {skipped}")
        index = {
            "record": np.concatenate(record_index), "start": np.concatenate(starts),
            "split": np.concatenate(split_codes), "label": np.array(labels, dtype="U1"),
            "beats": np.array(beats, dtype=str),
        }
        if len(index["start"]) == 0:
            raise DataError(f"{where}: no record is long enough for one {window}-sample window after cleaning")
        np.savez(tmp / "index.npz", **index)
        counts = {s: int((index["split"] == i).sum()) for i, s in enumerate(SPLITS)}
        if counts["train"] == 0:
            raise DataError(f"{where}: the train split holds no windows; check the split settings")
        shape = (len(index["start"]), window, len(channel_names))
        windows = np.memmap(tmp / "windows.f32", dtype=np.float32, mode="r", shape=shape)
        write_json(tmp / "normalization.json", _normalization(windows, index, records_meta))
        minutes_per_group = defaultdict(float)
        for r in {r["file"]: r for r in records_meta}.values():  # a record's leads share its minutes
            minutes_per_group[r["group"]] += r["minutes"]
        write_json(tmp / "manifest.json", {
            "format_version": STORE_FORMAT_VERSION, "config": config.to_dict(), "config_hash": config_hash,
            "source": str(roots[0]) if len(roots) == 1 else [str(r) for r in roots],
            "sampling_rate_hz": rate, "window_length": window, "stride": stride,
            "channel_names": channel_names, "units": units, "num_windows": shape[0], "windows_per_split": counts,
            "minutes_per_group": dict(minutes_per_group), "dropped_seconds": dict(dropped),
            "skipped_records": skipped, "records": records_meta,
            "split_note": ("patient-wise: every record of a group lands in one split" if config.split_by == "group" else
                           "by time: each record's first part trains, its middle validates, its end tests; "
                           "windows crossing a block boundary are dropped"),
        })
    return WindowStore(out)


def _append_windows(sink, windows: np.ndarray) -> None:
    """Append windows to the raw store file (one seam, so tests can simulate a full disk here)."""
    sink.write(np.ascontiguousarray(windows, dtype=np.float32).tobytes())


def _examples_of_record(record, name: str, config: PrepareConfig, train: bool) -> list[tuple[str, np.ndarray, list[str], list[str]]]:
    """``(entry name, signal (T, C), channel names, units)`` of each example a record gives.

    By default one example: the record's first channel, or the ``channels`` asked for, together. With
    ``leads_as_examples`` every lead that shares the first one's unit becomes its own single-channel example
    named ``record:lead``: a 12-lead recording then teaches a single-lead codec twelve views of one heart, and the
    examples stay in their patient's split. ``lead_projections`` adds mixtures of those leads for train records.
    """
    units = list(record.units)
    if not config.leads_as_examples:
        if config.channels:
            return [(name, record.signal, list(record.channel_names), units)]
        return [(name, record.signal[:, :1], list(record.channel_names[:1]), units[:1])]
    unit = units[0].lower()
    leads = [i for i in range(len(units)) if units[i].lower() == unit]
    examples = [(f"{name}:{record.channel_names[i]}", record.signal[:, i : i + 1], [record.channel_names[i]], [units[i]])
                for i in leads]
    if train and len(leads) > 1:
        for k, signal in enumerate(mix_leads(record.signal[:, leads], config.lead_projections, (config.seed, name)), 1):
            examples.append((f"{name}:mix{k}", signal, [f"mix{k}"], [units[0]]))
    return examples


def mix_leads(signal: np.ndarray, count: int, seed: tuple[int, str]) -> list[np.ndarray]:
    """``count`` random unit-norm mixtures ``(T, 1)`` of the leads ``signal (T, C)``, at the leads' typical amplitude.

    Every surface lead is roughly a projection of the heart's electrical axis onto a direction; mixing a
    record's leads looks at that heart from directions no electrode had, so a single-lead codec learns beat shapes
    of leads its training data lacks. Weights are drawn from the record's name, so a store is reproducible.
    """
    rng = np.random.default_rng([seed[0], int(hashlib.sha256(seed[1].encode()).hexdigest()[:8], 16)])
    typical = float(np.mean(np.nanstd(signal, axis=0)))
    mixtures = []
    for _ in range(count):
        weights = rng.standard_normal(signal.shape[1])
        mixture = signal @ (weights / np.linalg.norm(weights))
        spread = float(np.nanstd(mixture))
        if spread > 1e-9:  # a mixture that cancels out carries no beat
            mixtures.append((mixture * (typical / spread))[:, None])
    return mixtures


def _windows_of_record(record, signal, rate, window, stride, quality, config) -> dict:
    """Clean, resample, filter and cut one record; returns windows and their metadata."""
    native = record.sampling_rate_hz
    mask = quality_mask(signal, native, quality)
    dropped = dropped_seconds(mask, native)
    if (mask != 0).all():
        raise DataError(f"{record.path}.hea: no usable samples ({', '.join(dropped)})")
    scale = rate / native
    label_ann = record.annotations.get(config.label_extension)
    if config.beat_centred and label_ann is None:
        raise DataError(f"{record.path}.hea: beat-centred windows need beat annotations "
                        f"('{record.path.name}.{config.label_extension}' not found)")
    beat_samples = np.round(label_ann.sample * scale).astype(np.int64) if label_ann else np.zeros(0, np.int64)
    beat_symbols = np.array(label_ann.symbol if label_ann else [], dtype=object)
    total = int(round(signal.shape[0] * scale))
    bounds = time_split_bounds(total, config.val_fraction, config.test_fraction)
    out_windows, out_starts, out_split, labels, beats = [], [], [], [], []
    short = 0.0
    for seg_start, seg_end in clean_segments(mask):
        segment = resample(signal[seg_start:seg_end], native, rate)
        if segment.shape[0] < window:
            short += (seg_end - seg_start) / native
            continue
        segment = bandpass(segment, rate, config.highpass_hz, config.lowpass_hz)
        offset = int(round(seg_start * scale))
        if config.beat_centred:
            local = beat_centred_starts(beat_samples, offset, segment.shape[0], window)
        else:
            local = fixed_window_starts(segment.shape[0], window, stride)
        for start in local:
            absolute = offset + int(start)
            split_code = 0
            if config.split_by == "time":
                inside = [i for i, s in enumerate(SPLITS) if bounds[s][0] <= absolute and absolute + window <= bounds[s][1]]
                if not inside:
                    dropped["split_boundary"] = dropped.get("split_boundary", 0.0) + stride / rate
                    continue
                split_code = inside[0]
            symbols = beats_in_window(beat_samples, beat_symbols, absolute, window)
            out_windows.append(segment[start : start + window])
            out_starts.append(absolute)
            out_split.append(split_code)
            labels.append(window_label(symbols))
            beats.append("".join(sorted(set(symbols))))
    if short:
        dropped["shorter_than_window"] = round(short, 3)
    if not out_windows:
        raise DataError(f"{record.path}.hea: no clean stretch as long as one window ({window} samples at {rate:g} Hz); dropped {dropped}")
    return {
        "windows": np.stack(out_windows), "starts": np.array(out_starts, dtype=np.int64),
        "time_split": np.array(out_split, dtype=np.int8), "labels": labels, "beats": beats, "dropped_s": dropped,
    }


def _normalization(windows: np.ndarray, index: dict, records_meta: list[dict]) -> dict:
    """Per-channel mean/std of the train split (global), and of each record (for per-record use)."""
    train = np.flatnonzero(index["split"] == SPLITS.index("train"))
    total = np.zeros(windows.shape[2]); total_sq = np.zeros(windows.shape[2]); count = 0
    for chunk in np.array_split(train, max(1, len(train) // 1024)):
        block = np.asarray(windows[chunk], dtype=np.float64)
        total += block.sum(axis=(0, 1)); total_sq += (block**2).sum(axis=(0, 1)); count += block.shape[0] * block.shape[1]
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
    if (std < 1e-6).any():
        raise DataError("the train split's windows are flat (standard deviation ~0); nothing to learn")
    per_record = {}
    for i, meta in enumerate(records_meta):
        rows = np.flatnonzero(index["record"] == i)
        if len(rows):
            block = np.asarray(windows[rows], dtype=np.float64)
            per_record[meta["name"]] = {"mean": block.mean(axis=(0, 1)).tolist(), "std": block.std(axis=(0, 1)).tolist()}
    return {"computed_on": "train split", "mean": mean.tolist(), "std": std.tolist(), "per_record": per_record}
