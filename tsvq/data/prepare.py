"""From sources to a window store: plan the split from the record references, window each record, write.

Memory holds one record at a time; windows stream to disk, so the sources may be larger than RAM.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import hashlib
import itertools
import json
import logging
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from tsvq.config import check_ranges
from tsvq.data import builtin
from tsvq.data.leads import lead_label
from tsvq.data.preprocess import Preprocessing, QualityConfig, clean_segments, dropped_seconds, quality_mask
from tsvq.data.sources import ReadOptions, RecordRef, Source, open_source
from tsvq.data.splits import SPLITS, assign_group_splits, splits_from_label, time_split_bounds
from tsvq.data.store import DEFAULT_SHARD_MB, StoreWriter, WindowStore
from tsvq.data.windows import beat_centred_starts, beats_in_window, fixed_window_starts, window_label
from tsvq.errors import ConfigError, DataError
from tsvq.io import atomic_directory, check_output_path, claim_output_folder, read_json

logger = logging.getLogger(__name__)


def _option(
    default=dataclasses.MISSING, help: str = "", flag: str | None = None, default_factory=dataclasses.MISSING, **cli
):
    """A config field with the help text (and, where it is shorter than the name, the flag; ``cli``: argparse's
    ``choices``/``metavar``) of its CLI option: `tsvq prepare` makes its options from these, so help and
    defaults cannot drift from the config."""
    return field(default=default, default_factory=default_factory, metadata={"help": help, "flag": flag, **cli})


@dataclass
class PrepareConfig:
    """How records become windows. Defaults suit single-lead ECG."""

    source: Any = _option(
        builtin.MITDB208,
        flag="source",
        help=(
            "folder or record of WFDB files, or a built-in source (mitdb208, synthetic); several combine; one path "
            "replaces the path of a recipe's source mapping (tsvq.data.SourceConfig) and keeps its groups and table; "
            "for a "
            "recipe with several mappings, give the folder that holds them all, or one path per mapping in order"
        ),
    )
    rate_hz: float | None = _option(
        250.0,
        flag="rate",
        help="target sampling rate in Hz (none: keep the native rate, which every record must share)",
    )
    window_seconds: float = _option(4.096, flag="window", help="window length in seconds")
    window_samples: int | None = _option(None, help="window length in samples (overrides --window)")
    stride_seconds: float | None = _option(None, flag="stride", help="stride in seconds (default: the window length)")
    channels: list[str] | None = _option(None, help="channel names to keep (default: each record's first channel)")
    channel_aliases: bool = _option(False, help="also match aliases such as MLII/II and V/V5")
    leads_as_examples: bool = _option(
        False, help="each lead in the first channel's unit becomes its own single-channel example"
    )
    example_unit: str | None = _option(
        None,
        metavar="UNIT",
        help="with --leads-as-examples: the unit of the leads that become examples (default: the first channel's), "
        "e.g. mV to take a record's ECG leads and leave its PPG and blood pressure",
    )
    lead_projections: int = _option(
        0, metavar="N", help="with --leads-as-examples: N random mixtures of each train record's leads join as examples"
    )
    highpass_hz: float | None = _option(0.5, flag="highpass", help="high-pass edge in Hz (baseline wander removal)")
    lowpass_hz: float | None = _option(40.0, flag="lowpass", help="low-pass edge in Hz")
    annotation_extensions: list[str] = _option(
        default_factory=lambda: ["atr"], flag="annotations", help="annotation extensions to read"
    )
    label_extension: str = _option("atr", help="the annotation whose beat symbols give AAMI beat labels")
    beat_centred: bool = _option(False, help="one window centred on each annotated beat instead of fixed strides")
    group_by: str = _option(
        "auto",
        choices=["auto", "record", "parent"],
        help=(
            "what a patient is, for plain paths: a record, its folder (parent), or auto (folder for records in "
            "subfolders)"
        ),
    )
    split_by: str = _option(
        "group",
        choices=["group", "label", "time"],
        help=(
            "group: patient-wise, seeded; label: by a record label such as a fold (split_label, split_values); time: "
            "contiguous blocks of each record (one-patient data)"
        ),
    )
    split_label: str | None = _option(
        None, help="with --split-by label: which record label places a patient (e.g. strat_fold)"
    )
    split_values: dict[str, list] = _option(
        default_factory=dict, help="with split_by label: {train: [1, ..., 8], val: [9], test: [10]} (YAML or --set)"
    )
    window_label: str = _option(
        "beats",
        help="beats: the AAMI class of the window's beats; lead: the example's standard lead name (II, aVR, V1; "
        "mixtures and unknown leads get none); else a record label (e.g. rhythm, superclass)",
    )
    lead_names: dict[str, str] = _option(
        default_factory=dict,
        help="with window_label lead: labels for channel names that are not standard leads (YAML or --set), "
        "e.g. {ECG: handheld}; a name given '' gets no label",
    )
    stratify_label: str | None = _option(
        None, help="with --split-by group: cut each value of this record label by the fractions (e.g. set)"
    )
    val_fraction: float = _option(0.1, help="share of the patients that validate (when --val-groups is not given)")
    test_fraction: float = _option(0.2, help="share of the patients that test (when --test-groups is not given)")
    test_groups: list[str] = _option(default_factory=list, help="patients/groups that must land in the test split")
    val_groups: list[str] = _option(default_factory=list, help="patients/groups that must land in the validation split")
    skip_bad_records: bool = _option(False, help="skip (and count) unreadable or unusable records instead of stopping")
    seed: int = _option(0, help="seed of the split and the lead mixtures")
    flat_seconds: float = _option(2.0, help="an unchanged stretch this long is a lead-off flat line, cut out")
    clip_seconds: float = _option(0.05, help="a plateau at the channel's extreme this long is clipping, cut out")

    def __post_init__(self) -> None:
        check_ranges(
            self,
            positive=("rate_hz", "window_seconds", "window_samples", "stride_seconds", "flat_seconds", "clip_seconds"),
            non_negative=("highpass_hz", "lowpass_hz", "lead_projections"),
        )
        if not isinstance(self.lead_names, dict):
            raise ConfigError(
                f"lead_names = {self.lead_names!r}: must map channel names to labels, e.g. {{ECG: handheld}}"
            )
        for name in ("val_fraction", "test_fraction"):
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(f"{name} = {getattr(self, name)!r}: must lie in [0, 1)")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# Bumped when a store of the same format gains manifest fields (2: each record's source), so stores made before
# are rebuilt instead of reused.
MANIFEST_REVISION = 2


# Settings added after stores were first written: left out of the hash while unset, so those stores stay valid.
_LATER_SETTINGS = ("stratify_label", "lead_names")


def _config_hash(config: PrepareConfig, fingerprint: list) -> str:
    settings = {k: v for k, v in config.to_dict().items() if not (k in _LATER_SETTINGS and v is None)}
    payload = json.dumps(
        {
            "config": settings,
            "sources": fingerprint,
            "version": 1,  # the store format the hash was defined for: later formats hold the same windows
            "manifest_revision": MANIFEST_REVISION,
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def open_sources(config: PrepareConfig) -> list[Source]:
    """The sources a config names (a path, a built-in name or a source mapping, or a list of them)."""
    specs = config.source if isinstance(config.source, list) else [config.source]
    if not specs:
        raise DataError("prepare: 'source' is an empty list; name at least one folder, record or built-in source")
    return [open_source(spec, config.group_by) for spec in specs]


def list_references(sources: list[Source]) -> list[tuple[Source, RecordRef]]:
    """Every source's references. A record name or patient group found in two sources would merge two patients
    or hide one, so it is an error."""
    found, origin = [], {}
    for source in sources:
        refs = source.references()
        checks = sorted({("records of group", r.group) for r in refs}) + sorted({("record", r.name) for r in refs})
        for kind, key in checks:  # patients first: the clash that matters most
            if origin.setdefault((kind, key), source.description) != source.description:
                raise DataError(
                    f"sources {origin[kind, key]} and {source.description} both hold {kind} '{key}'; "
                    "rename one, or prepare them separately"
                )
        found += [(source, ref) for ref in refs]
    return found


def plan_splits(refs: list[RecordRef], config: PrepareConfig) -> dict[str, str]:
    """Group (patient) -> split, decided from the references alone, before any signal is read."""
    if config.split_by == "time":
        return {ref.group: "time-blocks" for ref in refs}
    if config.split_by == "label":
        if not config.split_label or not config.split_values:
            raise ConfigError(
                "split_by 'label' needs split_label (e.g. strat_fold) and split_values ({train: [...], ...})"
            )
        labels_of_group: dict[str, set[str]] = {}
        for ref in refs:
            if config.split_label not in ref.labels:
                raise DataError(f"{ref.where}: record has no label '{config.split_label}' to split by")
            labels_of_group.setdefault(ref.group, set()).add(str(ref.labels[config.split_label]))
        return splits_from_label(labels_of_group, config.split_label, config.split_values)
    if config.split_by == "group":
        strata = None
        if config.stratify_label:
            strata = {}
            for ref in refs:
                if config.stratify_label not in ref.labels:
                    raise DataError(f"{ref.where}: record has no label '{config.stratify_label}' to stratify by")
                value = str(ref.labels[config.stratify_label])
                if strata.setdefault(ref.group, value) != value:
                    raise DataError(
                        f"split: group '{ref.group}' has records of two '{config.stratify_label}' values; "
                        "a stratified split places a patient by one"
                    )
        return assign_group_splits(
            [ref.group for ref in refs],
            config.val_fraction,
            config.test_fraction,
            config.seed,
            [str(g) for g in config.test_groups],
            [str(g) for g in config.val_groups],
            strata,
        )
    raise ConfigError(f"unknown split_by '{config.split_by}'; choose 'group', 'label' or 'time'")


def _check(config: PrepareConfig) -> None:
    if config.lead_projections < 0 or (
        config.lead_projections and not (config.leads_as_examples and config.split_by != "time")
    ):
        raise ConfigError(
            f"lead_projections={config.lead_projections}: needs a count >= 0, leads_as_examples and a "
            "patient-wise split (mixtures augment the train patients only)"
        )
    if config.beat_centred and config.window_label != "beats":
        raise ConfigError(
            "beat_centred windows take their label from the beat they centre on; leave window_label 'beats'"
        )


def prepare(
    config: PrepareConfig,
    out: str | Path,
    overwrite: bool = False,
    progress: bool = True,
    sources: list[Source] | None = None,
    workers: int | None = None,
    part: tuple[int, int] | None = None,
    shard_mb: float = DEFAULT_SHARD_MB,
) -> WindowStore | Path:
    """Build (or reuse) the window store for ``config`` at ``out`` and return it.

    ``sources`` replaces ``config.source``, e.g. ``[ArraySource(signals, 250, groups=...)]`` for data in memory.
    ``workers``: processes that read and window records (default: the machine's cores); the store is the same
    byte for byte whatever their number, as records are written in their order. ``shard_mb``: the windows go to
    files of at most this many MiB.

    ``part=(i, n)``: write only part ``i`` of ``n`` (0-based) of the records, in their order, to ``out`` and return
    its path: separate jobs (a Slurm array, any job runner) prepare the parts side by side and
    ``tsvq.data.parts.merge_stores`` joins them into the store one job would write. Every part plans the split
    over all the references, so a patient's split does not depend on which part reads it.
    """
    out = Path(out)
    _check(config)
    part = check_part(part)
    sources = sources or open_sources(config)
    check_output_path(out, [getattr(s, "root", None) for s in sources], "window store")
    refs = list_references(sources)
    where = ", ".join(s.description for s in sources)  # names the sources in messages
    config_hash = _config_hash(config, [s.fingerprint() for s in sources])
    if (out / "manifest.json").exists():
        existing = read_json(out / "manifest.json", "window store manifest")
        existing_part = existing.get("part") or {}
        same_part = (existing_part.get("index"), existing_part.get("count")) == (part or (None, None))
        if existing.get("config_hash") == config_hash and same_part:
            logger.info("reusing window store %s (same config and sources)", out)
            return out if part else WindowStore(out)
        if not overwrite:
            raise DataError(
                f"{out}: a window store made with another config already exists; pass overwrite=True / --overwrite"
            )
    claim_output_folder(out, overwrite=True, what="window store")  # a folder that is not a tsvq store: refused now
    split_of_group = plan_splits([ref for _, ref in refs], config) if part else None
    if part:
        refs = refs[part[0] * len(refs) // part[1] : (part[0] + 1) * len(refs) // part[1]]
    skipped: dict[str, str] = {}
    for source, ref in refs:
        try:
            source.check(ref)
        except DataError as error:
            if not config.skip_bad_records:
                raise
            skipped[ref.name] = str(error)
    refs = [(source, ref) for source, ref in refs if ref.name not in skipped]
    split_of_group = split_of_group or plan_splits([ref for _, ref in refs], config)
    options = ReadOptions(config.channels, config.channel_aliases, tuple(config.annotation_extensions))
    quality = QualityConfig(flat_seconds=config.flat_seconds, clip_seconds=config.clip_seconds)
    rate = config.rate_hz
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ConfigError(f"workers = {workers!r}: must be an integer of at least 1")
    plan = [(source, ref, split_of_group[ref.group], options, config, quality) for source, ref in refs]
    with atomic_directory(out, overwrite=True, what="window store") as tmp, contextlib.ExitStack() as stack:
        writer = StoreWriter(tmp, shard_mb)
        try:
            results = stack.enter_context(
                contextlib.closing(in_order(_windowed_record, plan, workers or os.cpu_count() or 1))
            )
            for (native_rate, examples), (_, ref, *_) in tqdm(
                zip(results, plan), total=len(plan), desc="prepare", unit="record", disable=not progress
            ):
                try:
                    if isinstance(examples, DataError):
                        raise examples
                    if rate is None:
                        rate = native_rate
                    elif config.rate_hz is None and native_rate != rate:
                        raise DataError(
                            f"{ref.where}: sampling rate {native_rate:g} Hz differs from "
                            f"{rate:g} Hz of earlier records; set a target rate (--rate HZ) to resample them"
                        )
                    for example in examples:
                        writer.add(*example)
                except DataError as error:
                    if not config.skip_bad_records:
                        raise
                    skipped[ref.name] = str(error)
            window, stride = _window_and_stride(config, float(rate or 0))
            writer.finish(
                {
                    "config": config.to_dict(),
                    "config_hash": config_hash,
                    "source": [s.description for s in sources] if len(sources) > 1 else sources[0].description,
                    "sampling_rate_hz": rate,
                    "window_length": window,
                    "stride": stride,
                    "skipped_records": skipped,
                    "split_note": _SPLIT_NOTES[config.split_by]
                    + (
                        f", cut within each '{config.stratify_label}' value"
                        if config.stratify_label and config.split_by == "group"
                        else ""
                    ),
                    **({"part": {"index": part[0], "count": part[1]}} if part else {}),
                },
                where,
            )
        finally:
            writer.close()
    return out if part else WindowStore(out)


def check_part(part) -> tuple[int, int] | None:
    """``(i, n)``, or ``"i/n"`` as the command line writes it: part ``i`` (0-based) of ``n``."""
    if part is None:
        return None
    try:
        index, count = (int(x) for x in (part.split("/") if isinstance(part, str) else part))
    except (TypeError, ValueError):
        raise ConfigError(f"part {part!r}: write it as i/n, e.g. 0/4 for the first of four parts") from None
    if not 0 <= index < count:
        raise ConfigError(f"part {part!r}: needs 0 <= i < n (parts are numbered from 0)")
    return index, count


def _named(record) -> str:
    """What a message names for a record: its WFDB header, or the file or array row it came from."""
    header = Path(f"{record.path}.hea")
    return str(header) if header.is_file() else str(record.path)


_SPLIT_NOTES = {
    "group": "patient-wise: every record of a group lands in one split",
    "label": "by a record label, patient-wise: every record of a group lands in one split",
    "time": "by time: each record's first part trains, its middle validates, its end tests; windows crossing a block "
    "boundary are dropped",
}


def _window_and_stride(config: PrepareConfig, rate: float) -> tuple[int, int]:
    window = int(config.window_samples or round(config.window_seconds * rate))
    if window < 8:
        raise DataError(f"window of {window} samples is too short")
    return window, int(round(config.stride_seconds * rate)) if config.stride_seconds else window


_FORKED: dict[int, tuple] = {}  # call -> (function, items), inherited by its forked workers; a task names both
_CALLS = itertools.count()


def _call_forked(call: int, index: int):
    function, items = _FORKED[call]
    return function(items[index])


def in_order(function, items: list, workers: int):
    """``function`` of each item, yielded in the items' order; with several workers computed in forked processes
    (Linux), at most a few items ahead of the one being consumed, so memory stays bounded. The workers inherit the
    items (sources, in-memory arrays too) when they fork: only an index and the result travel between processes."""
    if workers < 2 or len(items) < 2 or sys.platform != "linux":
        yield from map(function, items)
        return
    call = next(_CALLS)
    _FORKED[call] = (function, items)  # before the pool forks its workers
    try:
        with ProcessPoolExecutor(min(workers, len(items)), mp_context=multiprocessing.get_context("fork")) as pool:
            pending: collections.deque = collections.deque()
            for index in range(len(items)):
                pending.append(pool.submit(_call_forked, call, index))
                if len(pending) > 2 * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
    finally:
        _FORKED.pop(call, None)


def _windowed_record(task) -> tuple[float | None, list[tuple] | DataError]:
    """Read one record and window it (runs in a worker): its native rate and the ``StoreWriter.add`` arguments of
    each example, or the DataError that names what is wrong with it."""
    source, ref, split, options, config, quality = task
    try:
        record = source.read(ref, options)
        return record.sampling_rate_hz, _record_examples(
            record, ref, split, float(config.rate_hz or record.sampling_rate_hz), config, quality, source.description
        )
    except DataError as error:
        return None, error


def _record_examples(
    record, ref: RecordRef, split: str, rate: float, config: PrepareConfig, quality: QualityConfig, source: str
) -> list[tuple]:
    """Window every example of one record: the writer's arguments for each (all or nothing for the record)."""
    window, stride = _window_and_stride(config, rate)
    record_label = None
    if config.window_label not in ("beats", "lead"):
        if config.window_label not in ref.labels:
            raise DataError(f"{ref.where}: record has no label '{config.window_label}' (window_label)")
        record_label = str(ref.labels[config.window_label])
    examples = [
        (entry, names, units, lead, _windows_of_record(record, signal, rate, window, stride, quality, config))
        for entry, signal, names, units, lead in _examples_of_record(record, ref.name, config, split == "train")
    ]
    named_channels = bool(config.channels) and not config.leads_as_examples  # the store's channels are these names
    added = []
    for entry, names, units, lead, result in examples:
        count = len(result["starts"])
        splits = (
            result["time_split"] if config.split_by == "time" else np.full(count, SPLITS.index(split), dtype=np.int8)
        )
        if config.window_label == "lead":  # a mixture of leads is no lead: it gets no label
            labels = [lead_label(lead, config.lead_names) if lead else ""] * count
        else:
            labels = result["labels"] if record_label is None else [record_label] * count
        added.append(
            (
                {
                    "name": entry,
                    "group": ref.group,
                    "source": source,
                    "file": ref.where,
                    "split": split,
                    "labels": dict(ref.labels),
                    "native_rate_hz": record.sampling_rate_hz,
                    "channels": names,
                    "minutes": round(record.duration_s / 60, 3),
                    "windows": count,
                    "dropped_seconds": result["dropped_s"],
                },
                result["windows"],
                result["starts"],
                splits,
                labels,
                result["beats"],
                list(config.channels) if named_channels else names,
                units,
            )
        )
    return added


def _examples_of_record(
    record, name: str, config: PrepareConfig, train: bool
) -> list[tuple[str, np.ndarray, list[str], list[str], str | None]]:
    """``(entry name, signal (T, C), channel names, units, lead)`` of each example a record gives (``lead``: the
    channel name of its first lead; None for a mixture of leads).

    By default one example: the record's first channel, or the ``channels`` asked for, together. With
    ``leads_as_examples`` every lead that shares the first one's unit becomes its own single-channel example
    named ``record:lead``: a 12-lead recording then teaches a single-lead codec twelve views of one heart, and the
    examples stay in their patient's split. ``lead_projections`` adds mixtures of those leads for train records.
    """
    units = list(record.units)
    if not config.leads_as_examples:
        if config.channels:
            return [(name, record.signal, list(record.channel_names), units, record.channel_names[0])]
        return [(name, record.signal[:, :1], list(record.channel_names[:1]), units[:1], record.channel_names[0])]
    unit = (config.example_unit or units[0]).lower()
    leads = [i for i in range(len(units)) if units[i].lower() == unit]
    if not leads:
        raise DataError(
            f"{_named(record)}: no lead in '{unit}' (example_unit); its channels are "
            f"{list(zip(record.channel_names, units))}"
        )
    examples = [
        (
            f"{name}:{record.channel_names[i]}",
            record.signal[:, i : i + 1],
            [record.channel_names[i]],
            [units[i]],
            record.channel_names[i],
        )
        for i in leads
    ]
    if train and len(leads) > 1:
        for k, signal in enumerate(mix_leads(record.signal[:, leads], config.lead_projections, (config.seed, name)), 1):
            examples.append((f"{name}:mix{k}", signal, [f"mix{k}"], [units[leads[0]]], None))
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
        raise DataError(f"{_named(record)}: no usable samples ({', '.join(dropped)})")
    scale = rate / native
    label_ann = record.annotations.get(config.label_extension)
    if config.beat_centred and label_ann is None:
        raise DataError(
            f"{_named(record)}: beat-centred windows need beat annotations "
            f"('{record.path.name}.{config.label_extension}' not found)"
        )
    beat_samples = np.round(label_ann.sample * scale).astype(np.int64) if label_ann else np.zeros(0, np.int64)
    beat_symbols = np.array(label_ann.symbol if label_ann else [], dtype=object)
    total = int(round(signal.shape[0] * scale))
    bounds = time_split_bounds(total, config.val_fraction, config.test_fraction)
    out_windows, out_starts, out_split, labels, beats = [], [], [], [], []
    short = 0.0
    # The conditioning a codec trained on this store records and applies to new recordings (Pipeline.preprocess).
    conditioning = Preprocessing(
        sampling_rate_hz=rate, highpass_hz=config.highpass_hz, lowpass_hz=config.lowpass_hz, window_length=window
    )
    for seg_start, seg_end in clean_segments(mask):
        segment = conditioning.condition(signal[seg_start:seg_end], native)
        if segment.shape[0] < window:
            short += (seg_end - seg_start) / native
            continue
        offset = conditioning.output_length(seg_start, native)
        if config.beat_centred:
            local = beat_centred_starts(beat_samples, offset, segment.shape[0], window)
        else:
            local = fixed_window_starts(segment.shape[0], window, stride)
        for start in local:
            absolute = offset + int(start)
            split_code = 0
            if config.split_by == "time":
                inside = [
                    i for i, s in enumerate(SPLITS) if bounds[s][0] <= absolute and absolute + window <= bounds[s][1]
                ]
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
        raise DataError(
            f"{_named(record)}: no clean stretch as long as one window ({window} samples at {rate:g} Hz); dropped "
            f"{dropped}"
        )
    return {
        "windows": np.stack(out_windows),
        "starts": np.array(out_starts, dtype=np.int64),
        "time_split": np.array(out_split, dtype=np.int8),
        "labels": labels,
        "beats": beats,
        "dropped_s": dropped,
    }
