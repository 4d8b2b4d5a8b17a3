"""Read PhysioNet WFDB records through ``wfdb``: physical signals, rate, channel names, units, annotations."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import wfdb

from tsvq.errors import DataError

# Lead names that mean the same electrode placement in different databases; used only when asked for.
DEFAULT_CHANNEL_ALIASES: dict[str, tuple[str, ...]] = {
    "MLII": ("MLII", "II", "ML2", "ECG II", "ECG2", "LEAD II"),
    "V5": ("V5", "V"),
    "V1": ("V1", "MCL1"),
    "I": ("I", "ECG I", "MLI"),
    "III": ("III", "MLIII"),
    "PLETH": ("PLETH", "PPG"),
    "RESP": ("RESP", "RESPIRATION"),
}
# Bits per sample of WFDB storage formats, where a header gives no ADC resolution.
FORMAT_BITS = {"8": 8, "16": 16, "24": 24, "32": 32, "61": 16, "80": 8, "160": 16, "212": 12, "310": 10, "311": 10}


@dataclass
class Annotation:
    """Annotation of one extension: sample indices at the record's native rate and their symbols."""

    extension: str
    sample: np.ndarray
    symbol: list[str]
    aux_note: list[str] = field(default_factory=list)


@dataclass
class Record:
    """One WFDB record in physical units. ``signal`` is ``(L, C)`` float64 at ``sampling_rate_hz``."""

    name: str
    path: Path
    group: str
    sampling_rate_hz: float
    signal: np.ndarray
    channel_names: list[str]
    units: list[str]
    annotations: dict[str, Annotation]
    comments: list[str]
    adc_bits: list[int] | None = None  # bits per stored sample per channel (ADC resolution), when the header says
    base_date: str = ""  # when the recording started, ISO format, when the header says (kept by compress/decompress)
    base_time: str = ""

    @property
    def duration_s(self) -> float:
        return self.signal.shape[0] / self.sampling_rate_hz


def find_records(source: str | os.PathLike) -> list[Path]:
    """Record paths (without extension) under ``source``: one record, or a folder searched recursively.

    A ``RECORDS`` file in a folder, as PhysioNet databases ship, lists that folder's records and is honoured.
    """
    source = Path(source)
    if source.suffix == ".hea":
        source = source.with_suffix("")
    if source.with_name(source.name + ".hea").is_file():
        return [source]
    if not source.exists():
        raise DataError(f"{source}: no such record or folder")
    if not source.is_dir():
        raise DataError(f"{source}: not a WFDB record (.hea) or a folder of records")
    found: list[Path] = []
    for folder, subfolders, files in os.walk(source):
        subfolders.sort()
        folder_path = Path(folder)
        if "RECORDS" in files:
            names = [line.strip() for line in (folder_path / "RECORDS").read_text().splitlines() if line.strip()]
            for name in names:
                if not (folder_path / f"{name}.hea").is_file():
                    raise DataError(f"{folder_path / 'RECORDS'}: lists '{name}' but {name}.hea does not exist")
            found.extend(folder_path / name for name in names)
            subfolders[:] = [d for d in subfolders if not any(n.startswith(d + "/") for n in names)]
            continue
        found.extend(folder_path / f[: -len(".hea")] for f in sorted(files) if f.endswith(".hea"))
    # A multi-segment record is read through its master header; its layout and segments are not records.
    segments = {seg for p in found for seg in _segment_paths(p)}
    found = [p for p in found if p not in segments]
    if not found:
        raise DataError(f"{source}: no WFDB records (.hea files) found")
    return sorted(set(found))


def _segment_paths(path: Path) -> list[Path]:
    """Segment paths named by a multi-segment master header (first line 'name/n_segments ...')."""
    try:
        lines = [
            ln
            for ln in path.with_name(path.name + ".hea").read_text(errors="replace").splitlines()
            if ln.strip() and not ln.startswith("#")
        ]
    except OSError:
        return []
    if not lines or "/" not in lines[0].split()[0]:
        return []
    n_segments = int(lines[0].split()[0].split("/")[1])
    names = [ln.split()[0] for ln in lines[1 : 1 + n_segments]]
    return [path.parent / name for name in names if name != "~"]


def record_path(path: str | os.PathLike) -> Path:
    """A record as a user may name it, with or without ``.hea``: the path without the extension."""
    path = Path(path)
    return path.with_name(path.name[: -len(".hea")]) if path.name.endswith(".hea") else path


def read_header(path: str | os.PathLike) -> wfdb.Record:
    """Read a header and check the signal files it names exist, so a missing ``.dat`` is named clearly."""
    path = record_path(path)
    header_file = path.with_name(path.name + ".hea")
    if not header_file.is_file():
        raise DataError(f"{header_file}: header file not found")
    try:
        header = wfdb.rdheader(str(path))
    except Exception as error:  # wfdb raises many types for a malformed header
        raise DataError(
            f"{header_file}: corrupt or unreadable WFDB header ({type(error).__name__}: {error})"
        ) from error
    if getattr(header, "fs", None) in (None, 0):
        raise DataError(f"{header_file}: header has no sampling frequency")
    if not isinstance(header, wfdb.MultiRecord):
        _check_gains(header_file, int(header.n_sig or 0))
    for file_name in sorted(set(getattr(header, "file_name", None) or [])):
        if not (path.parent / file_name).is_file():
            raise DataError(f"{header_file}: signal file '{file_name}' it refers to is missing")
    return header


_GAIN = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?(\(-?\d+\))?(/.*)?$")


def _check_gains(header_file: Path, signals: int) -> None:
    """Each signal line's gain field is a number: wfdb reads ``abc/mV`` as its default gain of 200, silently
    scaling the whole record by the wrong factor."""
    lines = [
        ln
        for ln in header_file.read_text(errors="replace").splitlines()
        if ln.strip() and not ln.lstrip().startswith("#")
    ]
    for number, line in enumerate(lines[1 : 1 + signals], start=1):
        fields = line.split()
        if len(fields) > 2 and not _GAIN.match(fields[2]):
            raise DataError(
                f"{header_file}: signal {number} has gain '{fields[2]}', which is not a number "
                "(expected e.g. 200 or 200(0)/mV)"
            )


def record_files(path: str | os.PathLike) -> list[Path]:
    """The files a record is read from: its header and the signal files the header names (as far as readable)."""
    path = record_path(path)
    files = [path.with_name(path.name + ".hea")]
    try:
        files += [path.parent / name for name in sorted(set(wfdb.rdheader(str(path)).file_name or []))]
    except Exception:  # an unreadable header is reported when the record is read
        pass
    return files


def clean_channel_name(name: str) -> str:
    """A channel name as meant: BIDMC's published headers write ``PLETH,`` and ``II,``."""
    return name.strip().rstrip(",").strip()


def select_channels(
    available: list[str], wanted: list[str] | None, use_aliases: bool = False, where: str = ""
) -> list[int]:
    """Indices of the wanted channels, matched by name (case-insensitive), then by alias if asked."""
    if not wanted:
        return list(range(len(available)))
    lowered = [clean_channel_name(name).lower() for name in available]
    indices = []
    for name in wanted:
        candidates = [name]
        if use_aliases:
            for canonical, aliases in DEFAULT_CHANNEL_ALIASES.items():
                if name.upper() == canonical or name.upper() in aliases:
                    candidates += [canonical, *aliases]
        match = next((lowered.index(c.lower()) for c in candidates if c.lower() in lowered), None)
        if match is None:
            hint = (
                "" if use_aliases else " (aliases such as MLII/II are tried with use_aliases=True / --channel-aliases)"
            )
            raise DataError(f"{where}: no channel named '{name}'; available channels: {available}{hint}")
        indices.append(match)
    return indices


def read_record(
    path: str | os.PathLike,
    channels: list[str] | None = None,
    use_aliases: bool = False,
    annotation_extensions: tuple[str, ...] = ("atr",),
    group: str | None = None,
) -> Record:
    """Read one record in physical units (``path`` with or without ``.hea``). Missing annotation files are skipped;
    unreadable ones are errors."""
    path = record_path(path)
    header_file = path.with_name(path.name + ".hea")
    header = read_header(path)
    multi_segment = isinstance(header, wfdb.MultiRecord)
    try:
        if multi_segment:  # gaps between segments come back as NaN and split the record later
            record = wfdb.rdrecord(str(path), physical=True, m2s=True)
        else:
            picked = select_channels(list(header.sig_name or []), channels, use_aliases, where=str(header_file))
            record = wfdb.rdrecord(str(path), channels=picked, physical=True)
    except DataError:
        raise
    except Exception as error:
        raise DataError(f"{header_file}: cannot read signal data ({type(error).__name__}: {error})") from error
    signal = np.asarray(record.p_signal, dtype=np.float64)
    if multi_segment:
        picked = select_channels(list(record.sig_name), channels, use_aliases, where=str(header_file))
        signal = signal[:, picked]
        record.sig_name = [record.sig_name[i] for i in picked]
        record.units = [record.units[i] for i in picked] if record.units else None
    if signal.ndim != 2 or signal.shape[0] == 0:
        raise DataError(f"{header_file}: record holds no samples")
    annotations = {}
    for extension in annotation_extensions:
        annotation_file = path.with_name(f"{path.name}.{extension}")
        if not annotation_file.is_file():
            continue
        try:
            ann = wfdb.rdann(str(path), extension)
        except Exception as error:
            raise DataError(
                f"{annotation_file}: unreadable annotation file ({type(error).__name__}: {error})"
            ) from error
        annotations[extension] = Annotation(
            extension=extension,
            sample=np.asarray(ann.sample, dtype=np.int64),
            symbol=list(ann.symbol or []),
            aux_note=list(ann.aux_note or []),
        )
    return Record(
        name=path.name,
        path=path,
        group=group or path.name,
        sampling_rate_hz=float(record.fs),
        signal=signal,
        channel_names=[clean_channel_name(name) for name in record.sig_name],
        units=list(record.units or ["mV"] * signal.shape[1]),
        annotations=annotations,
        comments=list(record.comments or []),
        adc_bits=_adc_bits(record, signal.shape[1]),
        base_date=record.base_date.isoformat() if getattr(record, "base_date", None) else "",
        base_time=record.base_time.isoformat() if getattr(record, "base_time", None) else "",
    )


def _adc_bits(record: wfdb.Record, channels: int) -> list[int] | None:
    """Bits per stored sample of each channel: the header's ADC resolution, else its storage format's width."""
    resolutions = list(getattr(record, "adc_res", None) or [0] * channels)
    formats = list(getattr(record, "fmt", None) or [None] * channels)
    bits = [int(r) if r else FORMAT_BITS.get(str(f), 0) for r, f in zip(resolutions, formats)]
    return bits if len(bits) == channels and all(bits) else None
