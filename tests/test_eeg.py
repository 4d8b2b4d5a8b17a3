"""EEG as a modality: headerless text files as a source, a split stratified by class, and the EEG figures of the
evaluation (band powers, spectral entropy, line length, Hjorth parameters) in place of beats."""

from __future__ import annotations

import numpy as np
import pytest

from tsvq.data.sources import ReadOptions, SourceConfig, TextConfig, open_source
from tsvq.data.splits import assign_group_splits
from tsvq.errors import ConfigError, DataError
from tsvq.evaluation.eeg import EEG_FEATURES, eeg_distance, eeg_features
from tsvq.evaluation.physiology import beat_source

RATE = 128.0


def _text_folder(tmp_path):
    (tmp_path / "setA").mkdir()
    (tmp_path / "setE").mkdir()
    rng = np.random.default_rng(0)
    np.savetxt(tmp_path / "setA" / "Z001.txt", rng.integers(-100, 100, 600), fmt="%d")
    np.savetxt(tmp_path / "setE" / "S001.TXT", rng.integers(-900, 900, 600), fmt="%d")
    (tmp_path / "notes.md").write_text("not a signal")
    return tmp_path


def test_text_files_read_as_records_with_the_rate_unit_and_folder_label_the_source_gives(tmp_path):
    folder = _text_folder(tmp_path)
    text = TextConfig(sampling_rate_hz=173.61, unit="uV", channel_names=["EEG"], folder_label="set")
    source = open_source(SourceConfig(path=str(folder), group_by="record", text=text))
    refs = source.references()
    assert [(r.name, r.group, dict(r.labels)) for r in refs] == [
        ("setA/Z001", "setA/Z001", {"set": "setA"}),
        ("setE/S001", "setE/S001", {"set": "setE"}),  # .TXT in any case
    ]
    record = source.read(refs[1], ReadOptions(channels=["EEG"]))
    assert record.signal.shape == (600, 1) and record.units == ["uV"] and record.sampling_rate_hz == 173.61
    assert np.abs(record.signal).max() > 100


def test_bad_text_files_are_named_with_what_is_wrong(tmp_path):
    folder = _text_folder(tmp_path)
    (folder / "setA" / "Z002.txt").write_text("12\n13\nfourteen\n")
    (folder / "setA" / "Z003.txt").write_text("1 2\n3 4\n")
    text = TextConfig(sampling_rate_hz=100, channel_names=["EEG"])
    source = open_source(SourceConfig(path=str(folder), group_by="record", text=text))
    refs = {r.name: r for r in source.references()}
    with pytest.raises(DataError, match=r"Z002.txt: not a table of numbers"):
        source.read(refs["setA/Z002"], ReadOptions())
    with pytest.raises(DataError, match=r"Z003.txt: 2 column\(s\), but the source names 1 channel"):
        source.read(refs["setA/Z003"], ReadOptions())
    with pytest.raises(ConfigError, match="sampling_rate_hz"):
        TextConfig(sampling_rate_hz=0)
    with pytest.raises(DataError, match="no .csv/.txt file"):
        open_source(SourceConfig(path=str(folder / "setA"), exclude=["Z001", "Z002", "Z003"], text=text)).references()


def test_a_header_row_names_the_columns_and_channel_names_pick_among_them(tmp_path):
    """Tables exported from a recorder or a spreadsheet start with a row of names, often with a time column."""
    rows = "\n".join(f"{t / 250:.3f},{np.sin(t / 20):.4f},{0.1 * np.cos(t / 7):.4f}" for t in range(1000))
    (tmp_path / "p1.csv").write_text('\ufefftime,ECG,"EMG"\n' + rows + "\n")  # a BOM and a quoted name, as Excel writes
    (tmp_path / "p2.csv").write_text("time,ECG\n" + rows + "\n")  # two names over three columns
    picked = open_source(
        SourceConfig(
            path=str(tmp_path), group_by="record", text=TextConfig(sampling_rate_hz=250, channel_names=["ECG"])
        )
    )
    refs = {r.name: r for r in picked.references()}
    record = picked.read(refs["p1"], ReadOptions())
    assert record.channel_names == ["ECG"] and record.signal.shape == (1000, 1)
    np.testing.assert_allclose(record.signal[:3, 0], np.round(np.sin(np.arange(3) / 20), 4))
    with pytest.raises(DataError, match=r"p2.csv: a header of 2 name\(s\) over 3 column\(s\)"):
        picked.read(refs["p2"], ReadOptions())
    every = open_source(SourceConfig(path=str(tmp_path / "p1.csv"), text=TextConfig(sampling_rate_hz=250)))
    assert every.read(every.references()[0], ReadOptions()).channel_names == ["time", "ECG", "EMG"]
    wrong = open_source(
        SourceConfig(path=str(tmp_path / "p1.csv"), text=TextConfig(sampling_rate_hz=250, channel_names=["EEG"]))
    )
    with pytest.raises(
        DataError, match=r"p1.csv: no channel named 'EEG'; available channels: \['time', 'ECG', 'EMG'\]"
    ):
        wrong.read(wrong.references()[0], ReadOptions())


def test_a_stratified_split_cuts_every_class_by_the_fractions():
    groups = [f"{c}{i}" for c in "ABCDE" for i in range(10)]
    strata = {g: g[0] for g in groups}
    split = assign_group_splits(groups, 0.1, 0.2, seed=0, strata=strata)
    for c in "ABCDE":
        counts = {s: sum(1 for g, v in split.items() if g[0] == c and v == s) for s in ("train", "val", "test")}
        assert counts == {"train": 7, "val": 1, "test": 2}, (c, counts)
    plain = assign_group_splits(groups, 0.1, 0.2, seed=0)
    assert sorted(plain.values()).count("test") == 10 and plain != split  # without strata: one cut over all


def _sine(frequency: float, amplitude: float = 50.0, n: int = 8) -> np.ndarray:
    t = np.arange(512) / RATE
    rng = np.random.default_rng(1)
    return np.stack([amplitude * np.sin(2 * np.pi * frequency * t + p) for p in rng.uniform(0, 6, n)])[..., None]


def test_eeg_figures_find_the_band_the_rhythm_and_the_amplitude():
    alpha, delta = eeg_features(_sine(10.0), RATE), eeg_features(_sine(2.0), RATE)
    noise = eeg_features(np.random.default_rng(0).normal(0, 50, (8, 512, 1)), RATE)
    assert set(alpha) == set(EEG_FEATURES)
    assert alpha["alpha_power"].min() > 0.9 and delta["delta_power"].min() > 0.9
    assert noise["spectral_entropy"].min() > 0.9 > 0.5 > alpha["spectral_entropy"].max()  # white vs one rhythm
    assert np.allclose(alpha["hjorth_complexity"], 1.0, atol=0.05)  # a pure sine
    assert alpha["hjorth_mobility"].mean() > 4 * delta["hjorth_mobility"].mean()  # a mean frequency
    louder = eeg_features(_sine(10.0, amplitude=500.0), RATE)
    assert np.allclose(louder["log_line_length"] - alpha["log_line_length"], 1.0, atol=1e-6)
    same, other = eeg_distance(alpha, alpha), eeg_distance(alpha, delta)
    assert max(same.values()) == 0 and other["alpha_power_wasserstein"] > 0.8


def test_the_physiology_of_a_dataset_follows_its_channels():
    assert beat_source(["EEG"], ["uV"]).kind == "eeg"
    assert beat_source(["Fp1", "C3"], [""]).kind == "eeg"
    assert beat_source(["signal"], ["µV"]).kind == "eeg"
    assert beat_source(["MLII"], ["mV"]).kind == "ecg" and beat_source(["PLETH"], ["NU"]).kind == "ppg"
    assert beat_source(["x"], ["NU"]) is None
    eeg = beat_source(["EEG"], ["uV"], "eeg")
    assert eeg.rhythm(_sine(10.0), RATE) is None and set(eeg.eeg(_sine(10.0), RATE)) == set(EEG_FEATURES)
    assert "no beats" in eeg.describe()


def test_a_stratified_split_needs_the_label_on_every_record(tmp_path):
    from tsvq.data import ArraySource, PrepareConfig, prepare

    signals = np.random.default_rng(0).normal(0, 30, (12, 1024, 1))
    source = ArraySource(signals, RATE, labels=["A", "B"] * 6, units=["uV"], description="segments")
    config = PrepareConfig(rate_hz=RATE, window_samples=512, stratify_label="set", highpass_hz=None, lowpass_hz=None)
    with pytest.raises(DataError, match=r"segments\[0\]: record has no label 'set' to stratify by"):
        prepare(config, tmp_path / "store", sources=[source])
    assert not (tmp_path / "store").exists()
    config = PrepareConfig(rate_hz=RATE, window_samples=512, stratify_label="label", highpass_hz=None, lowpass_hz=None,
                           val_fraction=0.2, test_fraction=0.2, window_label="label")  # fmt: skip
    store = prepare(config, tmp_path / "store", sources=[source])
    assert all(set(store.labels(split).tolist()) == {"A", "B"} for split in ("train", "val", "test"))


def test_a_text_file_named_in_the_source_must_exist_and_a_short_one_is_named_as_it_is(tmp_path):
    from tsvq.data import PrepareConfig, prepare

    (tmp_path / "eeg").mkdir()
    folder = _text_folder(tmp_path / "eeg")
    text = TextConfig(sampling_rate_hz=RATE, unit="uV", channel_names=["EEG"], folder_label="set")
    with pytest.raises(DataError, match="file 'setA/Z999' named in the source config was not found"):
        open_source(SourceConfig(path=str(folder), records=["setA/Z001", "setA/Z999"], text=text)).references()
    source = {"path": str(folder), "group_by": "record", "text": {"sampling_rate_hz": RATE, "channel_names": ["EEG"]}}
    config = PrepareConfig(source=source, rate_hz=RATE, window_seconds=8.0, test_fraction=0, val_fraction=0)
    with pytest.raises(DataError, match=r"Z001\.txt: no clean stretch as long as one window"):  # the file, no .hea
        prepare(config, tmp_path / "store")
