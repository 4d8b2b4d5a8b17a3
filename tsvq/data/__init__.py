"""Data layer: WFDB records -> clean, resampled, filtered windows -> a memory-mapped window store."""

from tsvq.data.prepare import PrepareConfig, prepare, resolve_source
from tsvq.data.records import Annotation, Record, find_records, read_header, read_record
from tsvq.data.store import WindowDataset, WindowStore

__all__ = [
    "Annotation", "PrepareConfig", "Record", "WindowDataset", "WindowStore",
    "find_records", "prepare", "read_header", "read_record", "resolve_source",
]
