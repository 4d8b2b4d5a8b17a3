"""Atomic writes: all or nothing, with the permissions a plain write would have."""

from __future__ import annotations

import os

import pytest

from tsvq.io import atomic_directory, atomic_file, write_json


def test_atomic_file_and_directory_respect_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write_json(tmp_path / "a.json", {"x": 1})
        with atomic_directory(tmp_path / "folder") as tmp:
            (tmp / "inside.txt").write_text("ok")
    finally:
        os.umask(old)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "folder").stat().st_mode & 0o777 == 0o755


def test_failed_writes_leave_the_previous_version(tmp_path):
    write_json(tmp_path / "a.json", {"version": 1})
    with pytest.raises(RuntimeError):
        with atomic_file(tmp_path / "a.json") as handle:
            handle.write('{"version": 2')
            raise RuntimeError("crash mid-write")
    assert (tmp_path / "a.json").read_text().strip().startswith('{\n  "version": 1')
    with atomic_directory(tmp_path / "folder") as tmp:
        (tmp / "v").write_text("1")
    with pytest.raises(RuntimeError):
        with atomic_directory(tmp_path / "folder") as tmp:
            (tmp / "v").write_text("2")
            raise RuntimeError("crash")
    assert (tmp_path / "folder" / "v").read_text() == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "folder"]
