"""What tsvq writes, replaces and reads back: outputs it owns, compressed files that decode anywhere and refuse
forgery, one run per output folder."""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import re
import shutil
import socket
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
import wfdb
from conftest import ecg_like

from tsvq.cli import main
from tsvq.compressed_file import MAGIC, CompressedRecord, deflate_header, inflate_header
from tsvq.errors import ConfigError, DataError
from tsvq.io import OWNER_MARKER, atomic_directory, claim_workspace, is_tsvq_output, output_lock
from tsvq.pipeline import Pipeline


@pytest.fixture(scope="module")
def compressed(shipped) -> CompressedRecord:
    signal = ecg_like(90, 360.0, seed=1)[:, None]
    signal[1000:1400] = np.nan  # a gap: two segments
    compressed = shipped.compress(signal, 360.0, channel_names=["MLII"], units=["mV"])
    assert compressed.entropy is not None  # long enough for entropy coding to make the smaller file (format 2)
    return compressed


def pack(header: dict, payload: bytes, version: int | None = None) -> bytes:
    """A file laid out as tsvq writes it, with a valid checksum: what a forger can make."""
    version = version or header.get("format_version", 2)
    version = version if isinstance(version, int) and 0 <= version < 256 else 2
    packed = deflate_header(header, version)
    body = (
        MAGIC + bytes([version]) + struct.pack("<I", len(packed)) + packed + struct.pack("<I", len(payload)) + payload
    )
    return body + struct.pack("<I", zlib.crc32(body))


def parts(data: bytes) -> tuple[dict, bytes]:
    at = len(MAGIC) + 1
    (length,) = struct.unpack_from("<I", data, at)
    header = inflate_header(data[at + 4 : at + 4 + length], data[len(MAGIC)], "file")
    at += 4 + length
    (payload_length,) = struct.unpack_from("<I", data, at)
    return header, data[at + 4 : at + 4 + payload_length]


def test_a_compressed_file_decodes_with_the_pipeline_loaded_any_way(shipped, compressed, tmp_path, monkeypatch):
    path = compressed.save(tmp_path / "x.tsvqz")
    folder = shipped.folder
    copy = shutil.copytree(folder, tmp_path / "elsewhere" / "my-pipeline")
    monkeypatch.chdir(folder.parent)
    for way in (folder.name if False else str(folder), "./" + folder.name, str(copy), "ecg-single-lead"):
        decoded = Pipeline.from_pretrained(way).decompress(path)
        assert decoded.signal.shape == (compressed.length, 1)
    # files made before the id was content-addressed also hashed the load path: still accepted from that load
    legacy = shipped._fingerprint(dict(shipped.codec.config))
    old = CompressedRecord.from_bytes(compressed.to_bytes())
    old.codec_id = legacy
    assert shipped.decompress(old).signal.shape == (compressed.length, 1)
    old.codec_id = "0123456789abcdef"
    with pytest.raises(DataError, match="Decompress it with the pipeline that compressed it"):
        shipped.decompress(old)


@pytest.mark.parametrize(
    "field, value, says",
    [
        ("length", 50, "lies outside the recording"),
        ("length", 10**10, "header field 'length'"),
        ("native_rate_hz", 0, "native_rate_hz"),
        ("unit_scales", [0.0], "unit_scales"),
        ("start_sample", -1, "start_sample"),
        ("code_bits", "10", "code_bits"),
        ("channel_names", [], "channel_names"),
        ("streams", [[1]], "streams"),
        ("entropy", {"model": "wavenet", "num_codes": 1024, "gain": 16, "backoff": 1024}, "header field 'entropy'"),
        ("entropy", {"model": "adaptive-context", "num_codes": 1024, "gain": 0, "backoff": 1024}, "setting 'gain'"),
        (
            "entropy",
            {"model": "adaptive-context", "num_codes": 4096, "gain": 16, "backoff": 1024},
            "more than 10-bit codes",
        ),
        ("model_bits", -1, "model_bits"),
    ],
)
def test_forged_header_fields_are_named(compressed, field, value, says):
    header, payload = parts(compressed.to_bytes())
    header[field] = value
    with pytest.raises(DataError, match=says):
        CompressedRecord.from_bytes(pack(header, payload), "forged.tsvqz")


def test_fuzzed_compressed_files_never_raise_anything_but_a_data_error(shipped, compressed):
    """A few hundred seeded mutations of a real file (header fields, bytes, lengths), each given a valid checksum:
    every one is refused with a DataError or decodes to a recording of the length its header states."""
    rng = np.random.default_rng(0)
    original = compressed.to_bytes()
    header, payload = parts(original)
    values = [None, -1, 0, 1, 50, 2**40, 1e300, float("nan"), "x", "", [], [[]], {}, True, [0.5], [-1], [[0, 1]]]
    cases = []
    for key in header:
        cases.append(pack({k: v for k, v in header.items() if k != key}, payload))  # a field missing
        cases += [pack({**header, key: value}, payload) for value in values]
    cases.append(pack({**header, "extra": 1}, payload))
    for _ in range(120):  # bytes flipped anywhere, checksum made valid again
        data = bytearray(original[:-4])
        for at in rng.integers(0, len(data), size=rng.integers(1, 4)):
            data[at] = int(rng.integers(0, 256))
        cases.append(bytes(data) + struct.pack("<I", zlib.crc32(bytes(data))))
    for cut in rng.integers(0, len(original) - 4, size=40):  # truncated, checksum made valid again
        data = original[:cut]
        cases.append(data + struct.pack("<I", zlib.crc32(data)))
    at = len(MAGIC) + 1
    cases.append(MAGIC + b"\x01" + struct.pack("<I", 5) + b"notzl" + struct.pack("<I", 0))
    cases[-1] += struct.pack("<I", zlib.crc32(cases[-1]))
    not_json = zlib.compress(b"{not json")
    body = original[:at] + struct.pack("<I", len(not_json)) + not_json + struct.pack("<I", len(payload)) + payload
    cases.append(body + struct.pack("<I", zlib.crc32(body)))
    assert len(cases) > 300
    refused = 0
    for data in cases:
        try:
            decoded = shipped.decompress(CompressedRecord.from_bytes(data, "fuzzed.tsvqz"))
        except DataError:
            refused += 1
            continue
        assert decoded.signal.ndim == 2 and len(decoded.signal) >= 1
    # a byte changed inside the range-coded payload decodes to other codes (a coder has no redundancy; the CRC
    # guards against accidents): every header mutation and most others are refused
    assert refused > 0.7 * len(cases)


def test_forged_or_damaged_detail_layers_are_refused_with_the_file_named(shipped):
    """Format 4 adds a detail layer after the codes: its settings are checked like every header field, its length
    against the file's, and mutations of a real file (checksum made valid) end in a DataError or a recording."""
    signal = ecg_like(30, 360.0, seed=2)[:, None]
    detailed = shipped.compress(signal, 360.0, detail_step=0.01)
    original = detailed.to_bytes()
    header, payload = parts(original)
    at = len(original) - 8 - len(detailed.detail_bytes)  # the layer: its length (u32) and its bytes
    layer = original[at : len(original) - 4]

    def pack4(header: dict, payload: bytes, layer: bytes) -> bytes:
        body = pack(header, payload, 4)[:-4] + layer
        return body + struct.pack("<I", zlib.crc32(body))

    assert pack4(header, payload, layer) == original
    forged = [{"model": "x", "step": 0.01}, {"model": "wavelet-detail", "step": -1}, None, True]
    forged += [{"model": "wavelet-detail", "step": 0.01, "levels": 9}, {"model": "wavelet-detail", "step": "1"}]
    for value in forged:
        with pytest.raises(DataError, match="forged.tsvqz: header field 'detail'"):
            CompressedRecord.from_bytes(pack4(header | {"detail": value}, payload, layer), "forged.tsvqz")
    with pytest.raises(DataError, match=r"forged.tsvqz: header fields missing \[\], unknown \['detail'\]"):
        CompressedRecord.from_bytes(pack(header | {"format_version": 3}, payload, 3), "forged.tsvqz")
    with pytest.raises(DataError, match="forged.tsvqz: header fields missing \\['detail'\\]"):
        CompressedRecord.from_bytes(pack4({k: v for k, v in header.items() if k != "detail"}, payload, layer),
                                    "forged.tsvqz")  # fmt: skip
    for cut in (0, 4, len(layer) // 2, len(layer) - 1):
        with pytest.raises(DataError, match="forged.tsvqz: (payload length|detail layer)"):
            CompressedRecord.from_bytes(pack4(header, payload, layer[:cut]), "forged.tsvqz")
    rng, refused, cases = np.random.default_rng(1), 0, 0
    for _ in range(60):  # bytes of the layer changed, checksum made valid again
        data = bytearray(layer)
        for where in rng.integers(4, len(data), size=rng.integers(1, 4)):
            data[where] = int(rng.integers(0, 256))
        cases += 1
        try:
            decoded = shipped.decompress(CompressedRecord.from_bytes(pack4(header, payload, bytes(data)), "f.tsvqz"))
            assert decoded.signal.shape == (len(signal), 1)
        except DataError as error:
            assert str(error).startswith("f.tsvqz: ")
            refused += 1
    assert cases == 60


def test_forged_or_damaged_beat_templates_are_refused_with_the_file_named(shipped):
    """Format 5: a detail layer that subtracts beat templates says so in its header (and only format 5 may); its
    positions, template choices and templates come ahead of the residual: cut or changed, a DataError or a
    recording, never a crash."""
    signal = ecg_like(30, 360.0, seed=2)[:, None]
    templated = shipped.compress(signal, 360.0, quantizers=0, detail_step=0.02, beats=True)
    original = templated.to_bytes()
    assert original[len(MAGIC)] == 5 and templated.detail == {"model": "wavelet-detail", "step": 0.02, "beats": True}
    header, payload = parts(original)
    layer = original[len(original) - 8 - len(templated.detail_bytes) : len(original) - 4]

    def packed(header: dict, layer: bytes, version: int) -> bytes:
        body = pack(header | {"format_version": version}, payload, version)[:-4] + layer
        return body + struct.pack("<I", zlib.crc32(body))

    assert packed(header, layer, 5) == original
    plain = {"model": "wavelet-detail", "step": 0.02}
    for version, value in (
        (5, plain),
        (5, plain | {"beats": False}),
        (5, plain | {"beats": 1}),
        (4, plain | {"beats": True}),
    ):
        with pytest.raises(DataError, match="forged.tsvqz: header field 'detail'"):
            CompressedRecord.from_bytes(packed(header | {"detail": value}, layer, version), "forged.tsvqz")
    for cut in (0, 1, 3, len(layer) // 3, len(layer) - 1):
        with pytest.raises(DataError, match="forged.tsvqz: (payload length|detail layer)"):
            CompressedRecord.from_bytes(packed(header, layer[:cut], 5), "forged.tsvqz")
    rng, refused = np.random.default_rng(2), 0
    for _ in range(60):  # bytes of the side information and templates changed, checksum made valid again
        data = bytearray(layer)
        for where in rng.integers(4, min(len(data), 200), size=rng.integers(1, 4)):
            data[where] = int(rng.integers(0, 256))
        try:
            decoded = shipped.decompress(CompressedRecord.from_bytes(packed(header, bytes(data), 5), "f.tsvqz"))
            assert decoded.signal.shape == (len(signal), 1)
        except DataError as error:
            assert str(error).startswith("f.tsvqz: ")
            refused += 1
    assert refused > 0


def test_a_wrong_array_to_compress_is_named(shipped):
    x = ecg_like(12, 250.0)[:, None]
    with pytest.raises(DataError, match="real-valued"):
        shipped.compress(x.astype(np.complex64), 250.0)
    with pytest.raises(DataError, match="C >= 1"):
        shipped.compress(np.zeros((3000, 0)), 250.0, channel_names=[])
    with pytest.raises(DataError, match="all Inf"):
        shipped.compress(np.full((3000, 1), np.inf), 250.0)
    with pytest.raises(DataError, match="expected numbers"):
        shipped.compress(np.array([["a"]] * 3000), 250.0)


def test_decompress_keeps_the_start_date_and_time(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    x = ecg_like(12, 360.0)[:, None]
    wfdb.wrsamp(
        "rec",
        fs=360,
        units=["mV"],
        sig_name=["MLII"],
        p_signal=x,
        fmt=["16"],
        base_time=datetime.time(10, 30, 5),
        base_date=datetime.date(2020, 1, 2),
    )
    assert main(["compress", "rec", "--pipeline", "ecg-single-lead", "--out", "rec.tsvqz", "--no-prdn"]) == 0
    assert main(["decompress", "rec.tsvqz", "--pipeline", "ecg-single-lead", "--out", "back"]) == 0
    header = wfdb.rdheader("back")
    assert (header.base_time, header.base_date) == (datetime.time(10, 30, 5), datetime.date(2020, 1, 2))
    assert main(["compress", "rec", "--pipeline", "ecg-single-lead", "--out", "q.tsvqz", "--max-prdn", "50"]) == 0
    printed = capsys.readouterr().out
    chosen = re.search(r"operating point: (1 of 1 stage\(s\)|no codes).*PRDN MLII (\d+\.\d\d)%", printed)
    assert chosen and float(chosen.group(2)) <= 50
    # a second decompress to the same name is refused; with --overwrite it replaces what tsvq wrote
    assert main(["decompress", "rec.tsvqz", "--pipeline", "ecg-single-lead", "--out", "back"]) == 2
    assert main(["decompress", "rec.tsvqz", "--pipeline", "ecg-single-lead", "--out", "back", "--overwrite"]) == 0


def test_files_tsvq_did_not_write_are_never_replaced_even_with_overwrite(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    x = ecg_like(12, 360.0)[:, None]
    wfdb.wrsamp("rec", fs=360, units=["mV"], sig_name=["MLII"], p_signal=x, fmt=["16"])
    wfdb.wrsamp("mine", fs=360, units=["mV"], sig_name=["MLII"], p_signal=x / 2, fmt=["16"])  # the user's record
    (tmp_path / "notes.tsvqz").write_text("the user's notes")
    (tmp_path / "lone.dat").write_bytes(b"a data file without a header: nothing says tsvq wrote it")
    users = {name: (tmp_path / name).read_bytes() for name in ("mine.hea", "mine.dat", "notes.tsvqz", "lone.dat")}
    shipped = ["--pipeline", "ecg-single-lead"]
    assert main(["compress", "rec", *shipped, "--out", "notes.tsvqz", "--no-prdn", "--overwrite"]) == 2
    assert "notes.tsvqz: exists and is not a file tsvq wrote" in capsys.readouterr().err
    assert main(["compress", "rec", *shipped, "--out", "rec.tsvqz", "--no-prdn"]) == 0
    for command in (["decompress", "rec.tsvqz"], ["denoise", "rec"], ["forecast", "rec", "--seconds", "1"]):
        assert main([*command, *shipped, "--out", "mine", "--overwrite"]) == 2
        assert "mine.hea: exists and is not a file tsvq wrote; choose another output" in capsys.readouterr().err
    assert main(["decompress", "rec.tsvqz", *shipped, "--out", "lone", "--overwrite"]) == 2
    with pytest.raises(DataError, match="not a file tsvq wrote"):
        CompressedRecord.load("rec.tsvqz").save(tmp_path / "notes.tsvqz", overwrite=True)
    assert {name: (tmp_path / name).read_bytes() for name in users} == users
    # what tsvq wrote is replaced with --overwrite (a record by its header's comment, a compressed file by its magic)
    assert main(["decompress", "rec.tsvqz", *shipped, "--out", "back"]) == 0
    assert main(["decompress", "rec.tsvqz", *shipped, "--out", "back", "--overwrite"]) == 0
    assert main(["compress", "rec", *shipped, "--out", "rec.tsvqz", "--no-prdn", "--overwrite"]) == 0


def test_outputs_tsvq_made_are_replaced_only_with_overwrite(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = ["sample", "--pipeline", "ecg-single-lead", "--n", "2", "--steps", "2", "--no-wfdb", "--out", "s"]
    assert main(args) == 0 and is_tsvq_output(tmp_path / "s")
    first = (tmp_path / "s" / "samples.npy").read_bytes()
    assert main(args) == 2 and "pass --overwrite" in capsys.readouterr().err
    assert main([*args, "--seed", "1", "--overwrite"]) == 0
    assert (tmp_path / "s" / "samples.npy").read_bytes() != first
    (tmp_path / "empty").mkdir()  # an empty folder holds nothing to lose
    assert main([*args[:-1], "empty"]) == 0


def test_a_killed_writer_leaves_nothing_behind_for_long(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    leftover = tmp_path / f".out.tmp-{socket.gethostname()}-{dead.pid}-abc"
    leftover.mkdir()
    (leftover / OWNER_MARKER).write_text("{}")
    foreign = tmp_path / f".out.tmp-{socket.gethostname()}-{dead.pid}-user"
    foreign.mkdir()  # no marker: not tsvq's, kept
    with atomic_directory(tmp_path / "out") as tmp:
        (tmp / "x").write_text("1")
    assert not leftover.exists() and foreign.exists() and (tmp_path / "out" / "x").exists()


def test_two_trainings_never_write_one_output_folder(tiny_runs, tmp_path):
    from conftest import TINY_CODEC, tiny_training

    from tsvq.training.codec import CodecStageConfig, train_codec

    config = CodecStageConfig(
        store=str(tiny_runs["store"]), model=TINY_CODEC, training=tiny_training(tmp_path / "run", 2)
    )
    claim_workspace(tmp_path / "run")  # as the first run does, before it takes the lock
    with output_lock(tmp_path / "run"):
        with pytest.raises(ConfigError, match="is writing to this folder"):
            train_codec(config)
    assert train_codec(config).is_dir()  # the lock went with its holder


def test_a_shipped_name_is_not_shadowed_by_a_local_folder(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ecg-single-lead").mkdir()
    (tmp_path / "ecg-single-lead" / "notes.txt").write_text("mine")
    assert Pipeline.from_pretrained("ecg-single-lead").priors
    assert "local folder of that name" in caplog.text
    with pytest.raises(Exception, match="pipeline.json"):
        Pipeline.from_pretrained("./ecg-single-lead")


def test_skip_bad_records_skips_the_record_with_a_bad_gain_and_only_it(tmp_path):
    from conftest import spoil_gain, write_record

    from tsvq.data import PrepareConfig, prepare

    for i in range(4):
        write_record(tmp_path / "db", f"r{i}", ecg_like(30, 250.0, seed=i), 250.0, ["II"])
    spoil_gain(tmp_path / "db" / "r2.hea")
    store = prepare(
        PrepareConfig(source=str(tmp_path / "db"), skip_bad_records=True, test_fraction=0.25, val_fraction=0.25),
        tmp_path / "store",
        progress=False,
    )
    assert list(store.manifest["skipped_records"]) == ["r2"]
    assert "gain 'abc/mV'" in store.manifest["skipped_records"]["r2"]
    assert sorted({r["name"] for r in store.manifest["records"]}) == ["r0", "r1", "r3"]


def test_a_read_only_output_folder_is_one_line(tmp_path, monkeypatch, capsys):
    """As root a chmod does not stop writes, so the refusal the system gives is simulated where tsvq meets it."""
    import tempfile

    def refuse(*args, dir=None, **kwargs):
        raise PermissionError(13, "Permission denied", str(dir))

    monkeypatch.setattr(tempfile, "mkdtemp", refuse)
    out = tmp_path / "locked" / "s"
    status = main(["sample", "--pipeline", "ecg-single-lead", "--n", "2", "--steps", "2", "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and err[-1] == f"tsvq sample: error: {out.parent}: Permission denied"
    assert not out.exists()


def test_folders_an_earlier_tsvq_wrote_stay_tsvq_s(tmp_path):
    """Written before the marker existed, they are recognised by their index file and contents; a folder that
    holds anything else is the user's."""
    from tsvq.io import claim_output_folder

    store = tmp_path / "store"
    store.mkdir()
    (store / "manifest.json").write_text(json.dumps({"config_hash": "abc", "records": []}))
    (store / "windows.f32").write_bytes(b"\0" * 8)
    assert is_tsvq_output(store)
    claim_output_folder(store, overwrite=True)  # replaceable with --overwrite, like a marked one
    run = tmp_path / "run"
    (run / "checkpoints" / "checkpoint-0000010").mkdir(parents=True)
    assert is_tsvq_output(run) and claim_workspace(run) == run and (run / OWNER_MARKER).is_file()
    (store / "thesis.txt").write_text("mine")
    assert not is_tsvq_output(store)
    with pytest.raises(DataError, match="was not made by tsvq"):
        claim_output_folder(store, overwrite=True)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "manifest.json").write_text(json.dumps({"my": "data"}))  # the name alone is not enough
    assert not is_tsvq_output(mine)


def _claim(folder) -> bool:
    try:
        claim_workspace(folder)
        return True
    except DataError:
        return False


def test_processes_claiming_one_folder_at_once_all_succeed(tmp_path):
    """The ranks of one training claim its folder at the same moment: none may take the other's half-written
    marker for a user's file (the marker was once written through a temporary file beside it)."""
    import multiprocessing

    folders = [tmp_path / f"run{i}" for i in range(200) for _ in range(2)]
    with multiprocessing.get_context("fork").Pool(2) as pool:
        assert all(pool.map(_claim, folders, chunksize=1))


def test_files_of_formats_1_and_2_still_decode_and_format_3_headers_are_small(shipped, compressed):
    """Format 3 only deflates the header against a preset dictionary; files written as formats 1 (fixed-width
    codes, plain zlib header) and 2 (entropy-coded) by earlier versions decode to the same signal."""
    from tsvq.compressed_file import HEADER_DICTIONARY

    current = compressed.to_bytes()
    header, payload = parts(current)
    assert current[len(MAGIC)] == 3 and header["format_version"] == 3
    expected = shipped.decompress(compressed).signal
    as_format_2 = pack(header | {"format_version": 2}, payload)
    np.testing.assert_array_equal(shipped.decompress(CompressedRecord.from_bytes(as_format_2)).signal, expected)
    fixed = dataclasses.replace(compressed, entropy=None, model_bits=None)
    fixed_header, fixed_payload = parts(fixed.to_bytes())
    old = {k: v for k, v in fixed_header.items() if k not in ("entropy", "model_bits")} | {"format_version": 1}
    np.testing.assert_array_equal(shipped.decompress(CompressedRecord.from_bytes(pack(old, fixed_payload))).signal,
                                  expected)  # fmt: skip
    plain = len(zlib.compress(json.dumps(header, separators=(",", ":")).encode(), 9))
    assert len(deflate_header(header)) < 0.6 * plain  # the dictionary pays on every file
    # format 3 files inflate with exactly these bytes: a changed dictionary would break every file written
    assert hashlib.sha256(HEADER_DICTIONARY).hexdigest()[:12] == "abd4b560f1c3"


def test_write_wfdb_never_writes_into_a_users_folder_and_checks_what_it_writes(tmp_path):
    """`write_wfdb` wrote its records and a RECORDS file into any folder it was given: a user's database folder lost
    its RECORDS list, and a bad call left an empty folder after wfdb's own error."""
    from tsvq.sample_writer import write_wfdb

    windows = np.stack([ecg_like(1, 250.0, seed=i)[:, None] for i in range(2)])
    database = tmp_path / "db"
    database.mkdir()
    (database / "RECORDS").write_text("100\n")
    with pytest.raises(DataError, match="db: exists and was not made by tsvq"):
        write_wfdb(windows, 250, database, ["ECG"], ["mV"])
    assert sorted(p.name for p in database.iterdir()) == ["RECORDS"] and (database / "RECORDS").read_text() == "100\n"
    paths = write_wfdb(windows, 250, tmp_path / "generated", ["ECG"], ["mV"])
    np.testing.assert_allclose(wfdb.rdrecord(str(paths[1])).p_signal, windows[1], atol=1e-3)
    with pytest.raises(DataError, match="already there; pass --overwrite"):
        write_wfdb(windows, 250, tmp_path / "generated", ["ECG"], ["mV"])
    write_wfdb(windows[:1], 250, tmp_path / "generated", ["ECG"], ["mV"], overwrite=True)  # replaced whole
    assert (tmp_path / "generated" / "RECORDS").read_text() == "sample_0000\n"
    assert not (tmp_path / "generated" / "sample_0001.hea").exists()
    holed = windows.copy()
    holed[1] = np.nan
    for bad, says in (
        ((holed, 250, ["ECG"], ["mV"]), "window 1 holds no finite sample"),
        ((windows, 250, ["I", "II"], ["mV"]), r"1 channel\(s\), but 2 name\(s\) and 1 unit\(s\)"),
        ((windows[0], 250, ["ECG"], ["mV"]), r"expected windows of shape \(n, L, C\), got \(250, 1\)"),
        ((windows, 0, ["ECG"], ["mV"]), "sampling rate must be a positive number of Hz, got 0"),
    ):
        with pytest.raises(DataError, match=says):
            write_wfdb(bad[0], bad[1], tmp_path / "refused", bad[2], bad[3])
        assert not (tmp_path / "refused").exists()
