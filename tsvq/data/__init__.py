"""Data layer: sources of records -> clean, resampled, filtered windows -> a sharded window store."""

from tsvq.data.prepare import PrepareConfig, prepare
from tsvq.data.records import Annotation, Record, find_records, read_header, read_record
from tsvq.data.sources import (
    ArraySource,
    ReadOptions,
    RecordRef,
    Source,
    SourceConfig,
    TableConfig,
    TextConfig,
    TextSource,
    WFDBSource,
    open_source,
)
from tsvq.data.store import WindowDataset, WindowStore

__all__ = [
    "Annotation",
    "ArraySource",
    "PrepareConfig",
    "ReadOptions",
    "Record",
    "RecordRef",
    "Source",
    "SourceConfig",
    "TableConfig",
    "TextConfig",
    "TextSource",
    "WFDBSource",
    "WindowDataset",
    "WindowStore",
    "find_records",
    "open_source",
    "prepare",
    "read_header",
    "read_record",
]
