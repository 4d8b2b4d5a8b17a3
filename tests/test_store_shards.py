"""Sharded window stores, and stores prepared in parts by separate jobs and merged."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tsvq.cli import main
from tsvq.data import PrepareConfig, WindowStore, prepare
from tsvq.data.parts import merge_stores
from tsvq.errors import ConfigError, DataError

WINDOW_BYTES = 1024 * 4  # 4.096 s at 250 Hz, one channel


def test_a_sharded_store_reads_as_the_one_file_store(small_database, tmp_path):
    config = PrepareConfig(source=str(small_database), test_groups=["p4"])
    whole = prepare(config, tmp_path / "whole", progress=False)
    sharded = prepare(config, tmp_path / "sharded", progress=False, shard_mb=12 * WINDOW_BYTES / 2**20)
    assert len(whole.shards) == 1 and len(sharded.shards) == -(-whole.num_windows // 12)
    assert [s["windows"] for s in sharded.shards[:-1]] == [12] * (len(sharded.shards) - 1)
    assert (tmp_path / "whole" / "index.npz").read_bytes() == (tmp_path / "sharded" / "index.npz").read_bytes()
    assert whole.normalization == sharded.normalization
    reference = np.asarray(whole.windows)
    np.testing.assert_array_equal(np.asarray(sharded.windows), reference)
    picks = np.array([0, 11, 12, 13, 40, -1, 5, 5])  # across shard edges, repeated, negative, unsorted
    np.testing.assert_array_equal(sharded.windows[picks], reference[picks])
    np.testing.assert_array_equal(sharded.windows[10:30:3], reference[10:30:3])
    np.testing.assert_array_equal(sharded.windows[-1], reference[-1])
    np.testing.assert_array_equal(sharded.load("test"), whole.load("test"))
    dataset = sharded.dataset("train")
    np.testing.assert_array_equal(dataset[len(dataset) - 1]["signal"].numpy(), whole.dataset("train")[-1]["signal"])
    with pytest.raises(IndexError, match="out of range"):
        sharded.windows[np.array([whole.num_windows])]


def test_lazy_shards_map_only_what_is_read(small_database, tmp_path):
    store = prepare(PrepareConfig(source=str(small_database)), tmp_path / "s", progress=False, shard_mb=0.02)
    assert len(store.shards) > 3
    store.windows[[0, 1]]
    assert list(store.windows._open) == [0]
    store.windows[-1]
    assert list(store.windows._open) == [0, len(store.shards) - 1]


def test_format_1_stores_still_open_and_damage_is_named(small_database, tmp_path):
    store = prepare(PrepareConfig(source=str(small_database)), tmp_path / "old", progress=False)
    expected = np.asarray(store.windows)
    manifest = json.loads((tmp_path / "old" / "manifest.json").read_text())
    (tmp_path / "old" / "windows-00000.f32").rename(tmp_path / "old" / "windows.f32")
    del manifest["shards"]
    manifest["format_version"] = 1
    (tmp_path / "old" / "manifest.json").write_text(json.dumps(manifest))
    np.testing.assert_array_equal(np.asarray(WindowStore(tmp_path / "old").windows), expected)
    with open(tmp_path / "old" / "windows.f32", "ab") as handle:
        handle.write(b"\0" * 4)
    with pytest.raises(DataError, match=r"windows\.f32: size .* the store is damaged"):
        WindowStore(tmp_path / "old")
    manifest.update(format_version=2, shards=[{"file": "../elsewhere.f32", "windows": manifest["num_windows"]}])
    (tmp_path / "old" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match="not a file of the store's folder"):
        WindowStore(tmp_path / "old")


def test_parts_merge_into_the_store_one_job_writes(small_database, tmp_path):
    config = PrepareConfig(source=str(small_database), test_groups=["p4"], val_fraction=0.3)
    whole = prepare(config, tmp_path / "whole", progress=False)
    parts = [prepare(config, tmp_path / f"part{i}", progress=False, part=(i, 3), shard_mb=0.05) for i in (2, 0, 1)]
    with pytest.raises(DataError, match="part 0/3 of a store prepared in parts"):
        WindowStore(tmp_path / "part0")
    with pytest.raises(DataError, match=r"each of the 3 parts once; got parts \[0, 2\] \(missing \[1\]\)"):
        merge_stores(parts[:2], tmp_path / "merged")
    merged = merge_stores(parts, tmp_path / "merged")
    assert not (tmp_path / "merged.tmp").exists() and len(merged.shards) > 3
    np.testing.assert_array_equal(np.asarray(merged.windows), np.asarray(whole.windows))
    for key in whole.index:
        np.testing.assert_array_equal(merged.index[key], whole.index[key])
    drop = {"shards"}
    assert {k: v for k, v in merged.manifest.items() if k not in drop} == {
        k: v for k, v in whole.manifest.items() if k not in drop
    }
    np.testing.assert_allclose(merged.normalization["mean"], whole.normalization["mean"], rtol=1e-12)
    np.testing.assert_allclose(merged.normalization["std"], whole.normalization["std"], rtol=1e-12)
    # a part re-run with the same settings is reused; a part of another config does not merge
    assert prepare(config, tmp_path / "part1", progress=False, part=(1, 3)) == tmp_path / "part1"
    other = PrepareConfig(source=str(small_database), test_groups=["p4"], val_fraction=0.3, window_seconds=2.0)
    prepare(other, tmp_path / "other1", progress=False, part=(1, 3))
    with pytest.raises(DataError, match="other1: its config differs"):
        merge_stores([tmp_path / "part0", tmp_path / "other1", tmp_path / "part2"], tmp_path / "mixed")
    with pytest.raises(DataError, match="whole: not a part of a store"):
        merge_stores([tmp_path / "whole"], tmp_path / "mixed")
    assert not (tmp_path / "mixed").exists()
    with pytest.raises(ConfigError, match="write it as i/n"):
        prepare(config, tmp_path / "bad", progress=False, part="first")
    with pytest.raises(ConfigError, match="0 <= i < n"):
        prepare(config, tmp_path / "bad", progress=False, part=(3, 3))


def test_the_command_line_prepares_parts_and_merges_them(small_database, tmp_path, capsys):
    for i in range(2):
        assert not main(
            ["prepare", "--source", str(small_database), "--out", str(tmp_path / f"p{i}"), "--part", f"{i}/2"]
        )
    assert "tsvq merge-stores" in capsys.readouterr().out
    assert not main(["merge-stores", str(tmp_path / "p1"), str(tmp_path / "p0"), "--out", str(tmp_path / "store")])
    assert "windows per split" in capsys.readouterr().out
    whole = prepare(PrepareConfig(source=str(small_database)), tmp_path / "whole", progress=False)
    np.testing.assert_array_equal(np.asarray(WindowStore(tmp_path / "store").windows), np.asarray(whole.windows))
