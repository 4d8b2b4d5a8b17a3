"""A JSON-lines tracker for accelerate: every logged figure lands in ``metrics.jsonl``, readable without TensorBoard."""

from __future__ import annotations

import json
import os
from pathlib import Path

from accelerate.tracking import GeneralTracker, on_main_process


class JSONLinesTracker(GeneralTracker):
    name = "jsonl"
    requires_logging_directory = True

    @on_main_process
    def __init__(self, run_name: str, logging_dir: str | os.PathLike):
        super().__init__()
        self.path = Path(logging_dir) / "metrics.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = open(self.path, "a")

    @property
    def tracker(self):
        return self._handle

    @on_main_process
    def store_init_configuration(self, values: dict):
        self._handle.write(json.dumps({"config": values}, default=str) + "\n")
        self._handle.flush()

    @on_main_process
    def log(self, values: dict, step: int | None = None, **kwargs):
        self._handle.write(json.dumps({"step": step, **values}, default=float) + "\n")
        self._handle.flush()

    @on_main_process
    def finish(self):
        self._handle.close()


def read_metrics(logging_dir: str | os.PathLike) -> list[dict]:
    """Logged rows (config row skipped) of a run's ``metrics.jsonl``."""
    path = Path(logging_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    return [row for row in map(json.loads, path.read_text().splitlines()) if "config" not in row]
