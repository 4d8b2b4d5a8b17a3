"""Sources: where records come from. A source lists record references and reads one record at a time.

Every dataset layout is a source: a folder of WFDB records (patients by record, by folder, by an explicit
mapping or by a column of a metadata table), a challenge folder whose labels sit in a CSV, a built-in
recording, or arrays already in memory. ``prepare`` sees only :class:`RecordRef` and :class:`Record`, so a
new layout is a new source (or, usually, a few lines of YAML for :class:`SourceConfig`), never a change there.
"""

from __future__ import annotations

import ast
import csv
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

import numpy as np

from tsvq.data import builtin
from tsvq.data.preprocess import real_array
from tsvq.data.records import Record, find_records, read_header, read_record, select_channels
from tsvq.errors import ConfigError, DataError


@dataclass(frozen=True)
class RecordRef:
    """One record a source can read: a name unique within the store, its patient group and record-level labels
    (e.g. ``{"rhythm": "A"}``, ``{"strat_fold": "9", "superclass": "MI"}``)."""

    name: str
    group: str
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)
    where: str = ""  # what to name in messages (a header file, a row of an array)


@dataclass
class ReadOptions:
    """What ``prepare`` asks of every record: which channels, matched how, and which annotations."""

    channels: list[str] | None = None
    use_aliases: bool = False
    annotation_extensions: tuple[str, ...] = ("atr",)


class Source(Protocol):
    """The protocol every source follows."""

    description: str  # named in messages and in the store manifest

    def references(self) -> list[RecordRef]: ...

    def check(self, ref: RecordRef) -> None:
        """Raise DataError if the record cannot be read (cheaply: a header), before any split is planned."""
        ...

    def read(self, ref: RecordRef, options: ReadOptions) -> Record: ...

    def fingerprint(self) -> list:
        """Something that changes when the data changes, so a store made from old data is not reused."""
        ...


@dataclass
class TableConfig:
    """A metadata table (CSV) beside the records: which column names the record, the patient and the labels.

    PTB-XL: ``{file: ptbxl_database.csv, record_column: filename_lr, group_column: patient_id, label_columns:
    [strat_fold], superclass_column: scp_codes}``; CinC 2017: ``{file: REFERENCE.csv, columns: [record, rhythm],
    record_column: record, label_columns: [rhythm]}``.
    """

    file: str
    record_column: str
    group_column: str | None = None  # None: each record is its own patient
    label_columns: list[str] = field(default_factory=list)
    columns: list[str] | None = None  # names of a CSV without a header row
    superclass_column: str | None = None  # SCP-ECG statements {code: likelihood} -> label 'superclass' (PTB-XL)
    statements_file: str = "scp_statements.csv"  # maps SCP codes to diagnostic superclasses


@dataclass
class TextConfig:
    """Text or CSV signal files: one column per channel, one row per sample, what the files do not say given here.
    Bonn EEG: ``{sampling_rate_hz: 173.61, unit: uV, channel_names: [EEG], folder_label: set}``. A first row of
    names (``time,ECG``) names the columns, and ``channel_names`` then picks among them (``[ECG]``)."""

    sampling_rate_hz: float
    unit: str = "mV"
    channel_names: list[str] | None = None  # default: the header's names, else ch0, ch1, ...
    extensions: list[str] = field(default_factory=lambda: [".txt", ".csv"])  # matched in any case (.TXT)
    folder_label: str | None = None  # a record label whose value is the file's folder name (e.g. set: setE)

    def __post_init__(self) -> None:
        if not (isinstance(self.sampling_rate_hz, (int, float)) and self.sampling_rate_hz > 0):
            raise ConfigError(f"text.sampling_rate_hz = {self.sampling_rate_hz!r}: must be greater than 0")


@dataclass
class SourceConfig:
    """A folder (or record) of WFDB records and how its records map to patients and labels.

    ``group_by``: ``record`` (each record a patient), ``parent`` (a folder per patient), ``auto`` (folder for
    records in subfolders), or ``table`` (the table's ``group_column``). ``groups`` names patients that span
    several records, e.g. MIT-BIH ``{"201+202": ["201", "202"]}``. ``records``/``exclude`` pick records by name;
    ``label_values`` keeps the records whose table labels take one of the given values, e.g. PTB-XL's training
    folds ``{strat_fold: [1, 2, 3, 4, 5, 6, 7, 8]}``.
    """

    path: str
    group_by: str = "auto"
    groups: dict[str, list[str]] = field(default_factory=dict)
    records: list[str] | None = None
    exclude: list[str] = field(default_factory=list)
    table: TableConfig | None = None
    label_values: dict[str, list] = field(default_factory=dict)
    text: TextConfig | None = None  # text/CSV files (a header row optional) instead of WFDB records


def _names(values) -> list[str]:
    """YAML reads record 101 as an int; names are strings."""
    return [str(v) for v in values]


def _group_of(relative: Path, group_by: str) -> str:
    in_subfolder = len(relative.parts) > 1
    if group_by == "record" or (group_by == "auto" and not in_subfolder):
        return relative.as_posix()
    if group_by in ("parent", "auto"):
        return relative.parent.as_posix()
    raise ConfigError(f"unknown group_by '{group_by}'; choose 'record', 'parent', 'auto' or 'table'")


class _Selection:
    """The records a source config picks, one piece for every folder source: by name (``records``, ``exclude``), by
    label (``label_values``), and the patients named across records (``groups``). A record a config names that the
    folder lacks is an error, once the folder has been listed (``check_found``)."""

    def __init__(self, config: SourceConfig, root: Path, what: str):
        self.config, self.root, self.what = config, root, what
        self.group_of_record = {str(r): group for group, records in config.groups.items() for r in _names(records)}
        self.wanted = set(_names(config.records)) if config.records is not None else None
        self.excluded = set(_names(config.exclude))
        self.left_out_by_label: set[str] = set()

    def named_out(self, name: str) -> bool:
        return (self.wanted is not None and name not in self.wanted) or name in self.excluded

    def keeps_labels(self, name: str, labels: dict) -> bool:
        """Whether the record's labels take values ``label_values`` keeps (a label it names must exist)."""
        for label, values in self.config.label_values.items():
            if label not in labels:
                raise DataError(
                    f"source {self.root}: label_values names '{label}', but {self.what} {name} has no such "
                    f"label (labels: {sorted(labels)}); labels come from the source's table or folders"
                )
            if labels[label] not in _names(values):
                self.left_out_by_label.add(name)
                return False
        return True

    def check_found(self, found: set[str]) -> None:
        for name in sorted((self.wanted or set()) | set(self.group_of_record)):
            if name not in found and name not in self.excluded and name not in self.left_out_by_label:
                raise DataError(f"source {self.root}: {self.what} '{name}' named in the source config was not found")


class WFDBSource:
    """A folder of WFDB records (``.hea`` + ``.dat``/``.mat``), read through ``wfdb``."""

    def __init__(self, config: SourceConfig):
        self.config = config
        self.root = Path(config.path)
        self.description = str(self.root)
        if config.group_by == "table" and (config.table is None or config.table.group_column is None):
            raise ConfigError(f"source {self.root}: group_by 'table' needs a table with a group_column")
        self._paths: dict[str, Path] = {}  # record name -> path, filled by references()
        self._refs: list[RecordRef] | None = None

    def references(self) -> list[RecordRef]:
        """The source's records, listed (folder walk, table read) once and remembered."""
        if self._refs is None:
            self._paths = {}
            self._refs = self._list_references()
        return self._refs

    def _list_references(self) -> list[RecordRef]:
        paths = find_records(self.root)
        record_root = self.root if self.root.is_dir() else self.root.parent
        rows = self._table_rows(record_root) if self.config.table else None
        selection = _Selection(self.config, self.root, "record")
        refs = []
        for path in paths:
            relative = path.relative_to(record_root)
            name = relative.as_posix()
            if selection.named_out(name):
                continue
            row = rows.get(name) if rows is not None else None
            if rows is not None and row is None:
                continue  # a table lists the records that belong to the dataset; others are left out
            labels = dict(row["labels"]) if row else {}
            if not selection.keeps_labels(name, labels):
                continue
            if name in selection.group_of_record:
                group = selection.group_of_record[name]
            elif self.config.group_by == "table":
                group = row["group"]
            else:
                group = _group_of(relative, self.config.group_by)
            self._paths[name] = path
            refs.append(RecordRef(name, group, labels, where=f"{path}.hea"))
        selection.check_found({ref.name for ref in refs})
        if not refs:
            raise DataError(f"source {self.root}: no record left after the source's selection")
        return refs

    def _table_rows(self, record_root: Path) -> dict[str, dict]:
        table = self.config.table
        path = record_root / table.file
        try:
            with open(path, newline="") as handle:
                reader = csv.DictReader(handle, fieldnames=table.columns)
                rows = list(reader)
        except OSError as error:
            raise DataError(f"{path}: cannot read the source's metadata table ({error})") from error
        needed = [
            table.record_column,
            *([table.group_column] if table.group_column else []),
            *table.label_columns,
            *([table.superclass_column] if table.superclass_column else []),
        ]
        columns = rows[0].keys() if rows else []
        missing = [c for c in needed if c not in columns]
        if missing:
            raise DataError(f"{path}: column(s) {missing} not found; columns: {list(columns)}")
        superclass_of = _scp_superclasses(record_root / table.statements_file) if table.superclass_column else {}
        result = {}
        for row in rows:
            labels = {c: _label_text(row[c]) for c in table.label_columns}
            if table.superclass_column:
                labels["superclass"] = _superclass(row[table.superclass_column], superclass_of, path)
            group = _label_text(row[table.group_column]) if table.group_column else row[table.record_column]
            result[row[table.record_column].strip()] = {"group": group, "labels": labels}
        return result

    def read(self, ref: RecordRef, options: ReadOptions) -> Record:
        return read_record(
            self._paths[ref.name], options.channels, options.use_aliases, options.annotation_extensions, ref.group
        )

    def check(self, ref: RecordRef) -> None:
        read_header(self._paths[ref.name])

    def fingerprint(self) -> list:
        """Names, sizes and modification times of the source's files (an edited record invalidates the store)."""
        self.references()
        items = []
        for path in self._paths.values():
            for file in sorted(path.parent.glob(path.name + ".*")):
                stat = file.stat()
                items.append([file.name, stat.st_size, int(stat.st_mtime)])
        if self.config.table:
            table = (self.root if self.root.is_dir() else self.root.parent) / self.config.table.file
            items.append([table.name, table.stat().st_size, int(table.stat().st_mtime)])
        return items


def _label_text(value: str) -> str:
    """Table cells as labels: '9.0' and '9' are the same fold; text is kept as written."""
    value = value.strip()
    try:
        number = float(value)
    except ValueError:
        return value
    return str(int(number)) if number.is_integer() else value


def _scp_superclasses(path: Path) -> dict[str, str]:
    """SCP-ECG code -> diagnostic superclass (NORM, MI, STTC, CD, HYP) from PTB-XL's ``scp_statements.csv``."""
    try:
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as error:
        raise DataError(f"{path}: cannot read the SCP statements table ({error})") from error
    if not rows or "diagnostic_class" not in rows[0]:
        raise DataError(f"{path}: expected PTB-XL's scp_statements.csv with a 'diagnostic_class' column")
    code_column = next(iter(rows[0]))  # the unnamed first column holds the code
    return {row[code_column]: row["diagnostic_class"] for row in rows if row.get("diagnostic_class")}


SUPERCLASS_ORDER = ("MI", "STTC", "CD", "HYP", "NORM")  # a record with several takes the first (most severe first)


def _superclass(cell: str, superclass_of: dict[str, str], where: Path) -> str:
    """One diagnostic superclass per record from its ``{code: likelihood}`` statements; '' when none is diagnostic."""
    try:
        statements = ast.literal_eval(cell)
    except (ValueError, SyntaxError) as error:
        raise DataError(f"{where}: cannot parse SCP statements {cell!r}") from error
    classes = {
        superclass_of[code] for code, likelihood in statements.items() if code in superclass_of and likelihood > 0
    }
    return next((c for c in SUPERCLASS_ORDER if c in classes), "")


class ArraySource:
    """Windows or recordings already in memory: ``signals (N, L, C)`` in physical units, one record per row.

    For data that is not WFDB. ``groups`` (one patient id per row) keep a patient's rows in one split;
    ``labels`` (one per row) become the windows' labels.
    """

    def __init__(
        self,
        signals: np.ndarray,
        sampling_rate_hz: float,
        groups=None,
        labels=None,
        channel_names: list[str] | None = None,
        units: list[str] | None = None,
        names=None,
        description: str = "arrays",
    ):
        signals = real_array(signals, description)
        if signals.ndim != 3 or not signals.shape[2]:
            raise DataError(
                f"{description}: expected numeric signals of shape (N, L, C), got {signals.shape} {signals.dtype}"
            )
        count, _, channels = signals.shape
        self.signals = signals
        self.sampling_rate_hz = float(sampling_rate_hz)
        if not self.sampling_rate_hz > 0:
            raise DataError(f"{description}: sampling_rate_hz must be > 0, got {sampling_rate_hz}")
        self.names = _names(names) if names is not None else [f"row{i}" for i in range(count)]
        self.groups = _names(groups) if groups is not None else list(self.names)
        self.labels = _names(labels) if labels is not None else None
        self.channel_names = list(channel_names or [f"ch{i}" for i in range(channels)])
        self.units = list(units or ["mV"] * channels)
        for what, values, size in (
            ("names", self.names, count),
            ("groups", self.groups, count),
            ("labels", self.labels, count),
            ("channel_names", self.channel_names, channels),
            ("units", self.units, channels),
        ):
            if values is not None and len(values) != size:
                raise DataError(
                    f"{description}: {len(values)} {what} for {size} {'rows' if size == count else 'channels'}"
                )
        self._row_of = {name: row for row, name in enumerate(self.names)}
        if len(self._row_of) != count:
            raise DataError(f"{description}: row names must be unique")
        self.description = description

    def references(self) -> list[RecordRef]:
        return [
            RecordRef(
                name,
                group,
                {"label": self.labels[i]} if self.labels is not None else {},
                where=f"{self.description}[{i}]",
            )
            for i, (name, group) in enumerate(zip(self.names, self.groups))
        ]

    def read(self, ref: RecordRef, options: ReadOptions) -> Record:
        row = self._row_of[ref.name]
        picked = select_channels(self.channel_names, options.channels, options.use_aliases, where=ref.where)
        return Record(
            name=ref.name,
            path=Path(ref.where),
            group=ref.group,
            sampling_rate_hz=self.sampling_rate_hz,
            signal=np.asarray(self.signals[row][:, picked], dtype=np.float64),
            channel_names=[self.channel_names[i] for i in picked],
            units=[self.units[i] for i in picked],
            annotations={},
            comments=[],
        )

    def check(self, ref: RecordRef) -> None:
        pass

    def fingerprint(self) -> list:
        digest = hashlib.sha256(np.ascontiguousarray(self.signals).tobytes())
        digest.update(repr((self.sampling_rate_hz, self.names, self.groups, self.labels, self.channel_names)).encode())
        return [self.description, digest.hexdigest()]


class TextSource:
    """A folder of text or CSV signal files (``TextConfig``): one record per file, a patient per file or
    per folder as ``group_by`` says, the folder name as a label where ``folder_label`` asks."""

    def __init__(self, config: SourceConfig):
        self.config = config
        self.text = config.text
        self.root = Path(config.path)
        self.description = str(self.root)
        if config.group_by == "table" or config.table is not None:
            raise ConfigError(f"source {self.root}: text files take no table; group_by record, parent or auto")
        self._paths: dict[str, Path] = {}
        self._refs: list[RecordRef] | None = None

    def references(self) -> list[RecordRef]:
        if self._refs is None:
            self._refs = self._list_references()
        return self._refs

    def _list_references(self) -> list[RecordRef]:
        if not self.root.exists():
            raise DataError(f"source {self.root}: no such file or folder")
        extensions = {e.lower() for e in self.text.extensions}
        files = [self.root] if self.root.is_file() else sorted(self.root.rglob("*"))
        files = [f for f in files if f.is_file() and f.suffix.lower() in extensions]
        base = self.root.parent if self.root.is_file() else self.root
        selection = _Selection(self.config, self.root, "file")
        refs = []
        for path in files:
            relative = path.relative_to(base).with_suffix("")
            name = relative.as_posix()
            if selection.named_out(name):
                continue
            labels = {self.text.folder_label: path.parent.name} if self.text.folder_label else {}
            if not selection.keeps_labels(name, labels):
                continue
            group = selection.group_of_record.get(name) or _group_of(relative, self.config.group_by)
            self._paths[name] = path
            refs.append(RecordRef(name, group, labels, where=str(path)))
        selection.check_found(set(self._paths))
        if not refs:
            raise DataError(
                f"source {self.root}: no {'/'.join(sorted(extensions))} file left after the source's selection"
            )
        return refs

    def read(self, ref: RecordRef, options: ReadOptions) -> Record:
        path = self._paths[ref.name]
        delimiter = "," if path.suffix.lower() == ".csv" else None
        try:
            header = _header_row(path, delimiter)
            signal = np.loadtxt(
                path, delimiter=delimiter, ndmin=2, skiprows=int(header is not None), encoding="utf-8-sig"
            )
        except (ValueError, OSError) as error:
            raise DataError(f"{path}: not a table of numbers, one column per channel ({error})") from error
        if not signal.size:
            raise DataError(f"{path}: holds no sample")
        if header is not None:  # the header names the columns; the source's channel_names pick among them
            if len(header) != signal.shape[1]:
                raise DataError(f"{path}: a header of {len(header)} name(s) over {signal.shape[1]} column(s)")
            chosen = select_channels(header, self.text.channel_names, where=str(path))
            names, signal = [header[i] for i in chosen], signal[:, chosen]
        else:
            names = list(self.text.channel_names or [f"ch{c}" for c in range(signal.shape[1])])
        if len(names) != signal.shape[1]:
            raise DataError(
                f"{path}: {signal.shape[1]} column(s), but the source names {len(names)} channel(s) {names}"
            )
        picked = select_channels(names, options.channels, options.use_aliases, where=str(path))
        return Record(
            name=ref.name,
            path=path,
            group=ref.group,
            sampling_rate_hz=float(self.text.sampling_rate_hz),
            signal=np.asarray(signal[:, picked], dtype=np.float64),
            channel_names=[names[i] for i in picked],
            units=[self.text.unit] * len(picked),
            annotations={},
            comments=[],
        )

    def check(self, ref: RecordRef) -> None:
        if not self._paths[ref.name].stat().st_size:
            raise DataError(f"{self._paths[ref.name]}: empty file")

    def fingerprint(self) -> list:
        self.references()
        return [[name, p.stat().st_size, int(p.stat().st_mtime)] for name, p in sorted(self._paths.items())]


def _header_row(path: Path, delimiter: str | None) -> list[str] | None:
    """The column names of a text table whose first row is names rather than numbers (``time,ECG``), else None."""
    with open(path, encoding="utf-8-sig") as handle:
        first = handle.readline()
    fields = [f.strip().strip('"') for f in first.split(delimiter)]
    try:
        [float(f) for f in fields]
    except ValueError:
        return fields
    return None


def open_source(spec: str | dict | SourceConfig, default_group_by: str = "auto") -> WFDBSource | TextSource:
    """A source from its config: a path or built-in name (``mitdb208``, ``synthetic``), or a :class:`SourceConfig`."""
    from tsvq.config import from_dict

    if isinstance(spec, dict):
        spec = from_dict(SourceConfig, spec, "data.source")
    if not isinstance(spec, SourceConfig):
        spec = SourceConfig(path=str(spec), group_by=default_group_by)
    if spec.path in builtin.BUILTIN_SOURCES and not Path(spec.path).exists():
        spec = replace(spec, path=str(builtin.materialize(spec.path)))
    return TextSource(spec) if spec.text is not None else WFDBSource(spec)
