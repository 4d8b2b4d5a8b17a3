"""A JSON-lines tracker for accelerate: every logged figure lands in ``metrics.jsonl``, readable without TensorBoard."""

from __future__ import annotations

import json
import os
from pathlib import Path

from accelerate.tracking import GeneralTracker, on_main_process


class JSONLinesTracker(GeneralTracker):
    name = "jsonl"
    requires_logging_directory = True

    def __init__(self, run_name: str, logging_dir: str | os.PathLike):
        # No @on_main_process here: that would create accelerate's process state before the Accelerator does
        # (and without its settings); the file is opened on first use, on the main process only.
        super().__init__()
        self.path = Path(logging_dir) / "metrics.jsonl"
        self._handle = None

    @property
    def tracker(self):
        return self._handle

    def _write(self, row: dict) -> None:
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = open(self.path, "a")
        self._handle.write(json.dumps(row, default=float) + "\n")
        self._handle.flush()

    @on_main_process
    def store_init_configuration(self, values: dict):
        self._write({"config": {k: str(v) for k, v in values.items()}})

    @on_main_process
    def log(self, values: dict, step: int | None = None, **kwargs):
        self._write({"step": step, **values})

    @on_main_process
    def finish(self):
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def read_metrics(logging_dir: str | os.PathLike) -> list[dict]:
    """Logged rows (config row skipped) of a run's ``metrics.jsonl``."""
    path = Path(logging_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    return [row for row in map(json.loads, path.read_text().splitlines()) if "config" not in row]
