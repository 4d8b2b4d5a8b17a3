"""Pipeline preprocessing, whole-record compression (no window seams), the compressed file and its errors."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import wfdb
from conftest import ecg_like, write_record

from tsvq.cli import main
from tsvq.codec import VQVAE
from tsvq.codec.streaming import decode_long, encode_long
from tsvq.compressed_file import CompressedRecord, pack_bits, unpack_bits
from tsvq.compression import prdn_per_channel
from tsvq.data import WindowStore, read_record
from tsvq.data.preprocess import Preprocessing
from tsvq.errors import CheckpointError, ConfigError, DataError
from tsvq.pipeline import Pipeline


@pytest.fixture(scope="module")
def pipe(tiny_pipeline) -> Pipeline:
    return Pipeline.from_pretrained(tiny_pipeline)


def two_lead_record(folder, name="rec", seconds=60.0, rate=360.0, fmt="212"):
    x = np.stack([ecg_like(seconds, rate, seed=1), 0.5 * ecg_like(seconds, rate, seed=2)], axis=1)
    return write_record(folder, name, x, rate, ["MLII", "V5"], fmt=fmt)


def test_pipeline_records_the_preprocessing_of_its_store_and_reproduces_its_windows(pipe, tiny_runs):
    store = WindowStore(tiny_runs["store"])
    prep = pipe.preprocessing
    config = store.manifest["config"]
    assert (prep.sampling_rate_hz, prep.window_length) == (store.sampling_rate_hz, store.window_length)
    assert (prep.highpass_hz, prep.lowpass_hz) == (config["highpass_hz"], config["lowpass_hz"])
    # A training record conditioned by the pipeline gives exactly the windows the store holds for it.
    entry = store.manifest["records"][0]
    record = read_record(entry["file"])
    conditioned = pipe.preprocess(record.signal[:, :1], record.sampling_rate_hz)
    rows = np.flatnonzero(store.index["record"] == 0)[:3]
    for row in rows:
        start = int(store.index["start"][row])
        np.testing.assert_allclose(conditioned[start : start + store.window_length], store.windows[row], atol=1e-5)


def test_codec_without_recorded_preprocessing_says_how_to_set_it(pipe):
    old = VQVAE(**{k: v for k, v in dict(pipe.codec.config).items() if not k.startswith("_") and k != "preprocessing"})
    with pytest.raises(CheckpointError, match="does not record its preprocessing"):
        Pipeline(old).preprocess(np.zeros((1000, 1)), 125)


def test_streaming_coding_equals_one_pass_over_the_whole_signal(pipe):
    codec = pipe.codec
    f = codec.config.downsample_factor
    x = pipe.preprocess(ecg_like(40, 125, seed=3)[:, None], 125)[: 1200 * f // f * f]
    x = x[: len(x) // f * f]
    whole = codec.encode(x[None]).codes[0].numpy()
    chunked = encode_long(codec, x, chunk_codes=64)
    np.testing.assert_array_equal(chunked, whole)
    np.testing.assert_allclose(
        decode_long(codec, chunked, chunk_codes=64), codec.decode(torch.as_tensor(whole[None]))[0].numpy(), atol=1e-5
    )


def test_compress_round_trip_keeps_gaps_length_rate_and_units(pipe, tmp_path):
    record = read_record(two_lead_record(tmp_path))
    record.signal[5000:6000, 0] = np.nan  # a lead-off stretch of 2.8 s in MLII only
    compressed = pipe.compress(record, channels=["all"])
    path = compressed.save(tmp_path / "rec.tsvqz")
    loaded = CompressedRecord.load(path)
    assert loaded.channel_names == ["MLII", "V5"] and loaded.input_bits == [12, 12]  # format 212, no ADC resolution
    for a, b in zip(compressed.codes, loaded.codes):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
    restored = pipe.decompress(path)
    assert restored.signal.shape == record.signal.shape and restored.sampling_rate_hz == 360.0
    np.testing.assert_array_equal(np.isnan(restored.signal), np.isnan(record.signal))
    # No seams: the pipeline-rate output is one decoder pass over the codes of one encoder pass.
    x = pipe.preprocess(record.signal[:, 1:], 360.0)
    f = pipe.codec.config.downsample_factor
    usable = len(x) // f * f
    one_pass = pipe.decode(pipe.encode(x[None, :usable]).codes)[0]
    at_pipeline_rate = pipe.decompress(loaded, rate="pipeline").signal[:usable, 1:]
    np.testing.assert_allclose(at_pipeline_rate[: usable - 64], one_pass[: usable - 64], atol=1e-4)
    prdn = pipe.compression_prdn(compressed, record)
    assert prdn["V5"] == pytest.approx(
        prdn_per_channel(pipe.preprocess(record.signal[:, 1:], 360.0), at_pipeline_rate.reshape(-1, 1)[: len(x)])[0],
        rel=0.05,
    )
    # Bits: the entropy-coded payload is within 64 bits of the context model's own code length, plus a header of a few
    # hundred bytes; fixed-width codes (format 1) take ceil(log2 K) bits each
    written = compressed.bits_per_code() * compressed.num_codes
    assert abs(written - compressed.model_bits) < 64 + 1e-3 * compressed.model_bits
    assert written / 8 < compressed.size_bytes() < written / 8 + 600
    assert compressed.compression_ratio() == pytest.approx(2 * 12 * len(record.signal) / (8 * compressed.size_bytes()))
    fixed = pipe.compress(record, channels=["all"], entropy_coding=False)
    codes_bits = fixed.num_codes * 5  # 32 codes: 5 bits
    assert codes_bits / 8 < fixed.size_bytes() < codes_bits / 8 + 600 and fixed.bits_per_code() == pytest.approx(
        5, abs=0.01
    )
    np.testing.assert_array_equal(
        pipe.decompress(CompressedRecord.from_bytes(fixed.to_bytes())).signal, pipe.decompress(loaded).signal
    )


def test_microvolt_recording_is_converted_and_returned_in_microvolts(pipe):
    x = ecg_like(30, 250, seed=4)[:, None]
    in_mv = pipe.compress(x, 250, units=["mV"])
    in_uv = pipe.compress(x * 1000, 250, units=["uV"])
    np.testing.assert_array_equal(in_uv.codes[0][0], in_mv.codes[0][0])
    np.testing.assert_allclose(
        pipe.decompress(in_uv).signal, 1000 * pipe.decompress(in_mv).signal, rtol=1e-4, atol=1e-3
    )
    with pytest.raises(DataError, match="in 'NU', but the pipeline codes 'mV'"):
        pipe.compress(x, 250, units=["NU"])


def untrained_rvq_pipeline() -> Pipeline:
    """A residual-VQ codec of three stages at 125 Hz, untrained: enough for what does not depend on its quality."""
    prep = Preprocessing(sampling_rate_hz=125, window_length=256)
    return Pipeline(
        VQVAE(
            hidden_channels=8,
            num_res_blocks=1,
            latent_dim=8,
            num_codes=16,
            num_quantizers=3,
            downsample_factor=4,
            window_length=256,
            sampling_rate_hz=125,
            preprocessing=prep.to_dict(),
        )
    )


def test_residual_vq_keeps_a_prefix_of_stages_at_a_lower_rate():
    rvq = untrained_rvq_pipeline()
    x = ecg_like(60, 125)[:, None]
    full, one = rvq.compress(x, 125), rvq.compress(x, 125, quantizers=1)
    assert full.codes[0][0].shape[1] == 3 and one.codes[0][0].shape[1] == 1
    assert one.bits_per_code() * one.num_codes < 0.5 * full.bits_per_code() * full.num_codes  # the payloads
    assert CompressedRecord.from_bytes(one.to_bytes()).codes[0][0].shape == one.codes[0][0].shape
    assert rvq.decompress(one).signal.shape == x.shape


def test_bit_packing_round_trips():
    values = np.random.default_rng(0).integers(0, 1024, size=1001)
    assert np.array_equal(unpack_bits(np.frombuffer(pack_bits(values, 10), np.uint8), 10, len(values)), values)
    assert len(pack_bits(values, 10)) == (1001 * 10 + 7) // 8


def test_cli_compress_and_decompress_write_a_wfdb_record(pipe, tiny_pipeline, tmp_path, capsys):
    source = two_lead_record(tmp_path / "in", name="100", fmt="16")
    assert (
        main(["compress", str(source) + ".hea", "--pipeline", str(tiny_pipeline), "--out", str(tmp_path / "100.tsvqz")])
        == 0
    )
    printed = capsys.readouterr().out
    assert "bit/s per channel" in printed and "compression ratio" in printed and "PRDN" in printed
    assert "MLII" in printed and "V5" not in printed.split("\n")[0]  # the pipeline's lead only (by alias), by default
    for fmt in ("16", "212"):
        out = tmp_path / "out" / f"r{fmt}"
        assert (
            main(
                [
                    "decompress",
                    str(tmp_path / "100.tsvqz"),
                    "--pipeline",
                    str(tiny_pipeline),
                    "--out",
                    str(out),
                    "--format",
                    fmt,
                ]
            )
            == 0
        )
        record = wfdb.rdrecord(str(out))
        assert record.fs == 360 and record.sig_name == ["MLII"] and record.units == ["mV"] and record.fmt == [fmt]
        assert record.p_signal.shape == (60 * 360, 1)
    reduced = tmp_path / "out" / "r16"
    restored = read_record(reduced).signal[:, 0]
    assert np.isfinite(restored).all()
    # --bitrate above the codes' own rate: a detail layer fills it, said in the report; the file decompresses
    rate = 2 * CompressedRecord.load(tmp_path / "100.tsvqz").bits_per_second()
    args = ["--pipeline", str(tiny_pipeline)]
    assert main(["compress", str(source), *args, "--out", str(tmp_path / "d.tsvqz"), "--bitrate", f"{rate:g}"]) == 0
    printed = capsys.readouterr().out
    assert re.search(r"\+ detail layer( with beat templates)? \(step", printed)
    assert re.search(r"  detail layer( with beat templates)? \(step", printed)
    assert main(["decompress", str(tmp_path / "d.tsvqz"), *args, "--out", str(tmp_path / "out" / "d")]) == 0
    assert np.isfinite(read_record(tmp_path / "out" / "d").signal).all()
    # compress without --pipeline: the shipped one, as impute and denoise; decompress reads it from the file
    assert main(["compress", str(source), "--out", str(tmp_path / "shipped.tsvqz")]) == 0
    assert CompressedRecord.load(tmp_path / "shipped.tsvqz").pipeline == "ecg-single-lead"
    assert main(["decompress", str(tmp_path / "shipped.tsvqz"), "--out", str(tmp_path / "out" / "shipped")]) == 0
    assert read_record(tmp_path / "out" / "shipped").channel_names == ["MLII"]
    # without --pipeline: the pipeline the file names, when it is here; else the user is told to name it
    assert main(["decompress", str(tmp_path / "d.tsvqz"), "--out", str(tmp_path / "out" / "named")]) == 0
    np.testing.assert_array_equal(
        read_record(tmp_path / "out" / "named").signal, read_record(tmp_path / "out" / "d").signal
    )
    moved = CompressedRecord.load(tmp_path / "d.tsvqz")
    moved.pipeline = str(tmp_path / "gone")
    moved.save(tmp_path / "moved.tsvqz")
    assert main(["decompress", str(tmp_path / "moved.tsvqz"), "--out", str(tmp_path / "out" / "moved")]) == 2
    said = capsys.readouterr().err
    assert f"moved.tsvqz: made by the pipeline '{tmp_path / 'gone'}', which is not here; name its folder" in said
    assert not (tmp_path / "out" / "moved.hea").exists()


def corrupt_copies(path, tmp_path):
    data = path.read_bytes()
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF
    return {
        "checksum mismatch": bytes(flipped),
        "checksum mismatch|truncated": data[: len(data) - 9],
        "not a tsvq compressed record": b"PK\x03\x04" + data[4:],
    }


def test_bad_inputs_get_clear_errors_and_nothing_half_written(pipe, tiny_pipeline, tmp_path):
    good = pipe.compress(ecg_like(20, 250)[:, None], 250).save(tmp_path / "good.tsvqz")
    before = good.read_bytes()
    # Shorter than one window (2.048 s).
    with pytest.raises(DataError, match="shorter than one window"):
        pipe.compress(ecg_like(1.5, 250)[:, None], 250)
    # A flat lead.
    with pytest.raises(DataError, match="channel 'ch1' is flat"):
        pipe.compress(np.stack([ecg_like(20, 250), np.full(5000, 0.2)], axis=1), 250)
    # A channel the record lacks.
    record = read_record(two_lead_record(tmp_path))
    with pytest.raises(DataError, match="no channel named 'V1'"):
        pipe.compress(record, channels=["V1"])
    # A rate far below the pipeline's band.
    with pytest.raises(DataError, match="recorded at 50 Hz, which holds nothing above 25 Hz"):
        pipe.compress(ecg_like(30, 50)[:, None], 50)
    # Damaged, truncated or foreign files.
    for message, data in corrupt_copies(good, tmp_path).items():
        bad = tmp_path / "bad.tsvqz"
        bad.write_bytes(data)
        with pytest.raises(DataError, match=message):
            pipe.decompress(bad)
        assert main(["decompress", str(bad), "--pipeline", str(tiny_pipeline), "--out", str(tmp_path / "never")]) == 2
        assert not (tmp_path / "never.hea").exists() and not (tmp_path / "never.dat").exists()
    # A file made by another pipeline.
    other = Pipeline.from_pretrained(tiny_pipeline)
    with torch.no_grad():
        next(other.codec.parameters()).add_(0.01)
    other._codec_id = None
    with pytest.raises(DataError, match="made by pipeline .* Decompress it with the pipeline that compressed it"):
        other.decompress(good)
    # A failed compress leaves the earlier file as it was.
    assert main(["compress", str(tmp_path / "missing"), "--pipeline", str(tiny_pipeline), "--out", str(good)]) == 2
    assert good.read_bytes() == before


def test_nan_only_channel_and_wrong_shape_are_named(pipe):
    x = np.stack([ecg_like(20, 250), np.full(5000, np.nan)], axis=1)
    with pytest.raises(DataError, match="channel 'ch1' holds no finite sample"):
        pipe.compress(x, 250)
    with pytest.raises(DataError, match=r"shape \(L,\) or \(L, C\)"):
        pipe.compress(np.zeros((2, 100, 1)), 250)
    one = ecg_like(20, 250)  # one lead as (L,): coded as (L, 1)
    assert pipe.compress(one, 250).to_bytes() == pipe.compress(one[:, None], 250).to_bytes()
    with pytest.raises(DataError, match="needs its sampling_rate_hz"):
        pipe.compress(np.zeros((100, 1)))


def test_readme_python_api_example_runs(tmp_path, monkeypatch):
    """The README's API block, run as written with the shipped pipeline on a written record (its path swapped)."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("## Python quick start") :]
    block = section[
        section.index("```python") + len("```python") : section.index("```", section.index("```python") + 9)
    ]
    record = two_lead_record(tmp_path, name="100", seconds=30)
    code = block.replace('"path/to/100"', repr(str(record)))
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert scope["restored"].signal.shape == (30 * 360, 1) and scope["recon"].shape == scope["windows"].shape
    assert scope["clean"].shape == scope["record"].signal.shape and np.isfinite(scope["clean"]).all()
    assert (tmp_path / "100.tsvqz").is_file() and (tmp_path / "generated").is_dir()


ENCODE_WITH_ONE_THREAD = """
import sys, numpy as np, torch
torch.set_num_threads(1)
sys.path.insert(0, sys.argv[3])
from conftest import ecg_like
from tsvq.pipeline import Pipeline
x = ecg_like(60, 360.0, seed=3)[:, None]
c = Pipeline.from_pretrained("ecg-single-lead").compress(x, 360.0, channel_names=["MLII"], units=["mV"])
c.save(sys.argv[1])
np.save(sys.argv[2], np.concatenate(c.codes[0]))
"""

DECODE_WITH_TWO_THREADS = """
import sys, numpy as np, torch
torch.set_num_threads(2)
from tsvq.compressed_file import CompressedRecord
codes = np.concatenate(CompressedRecord.load(sys.argv[1]).codes[0])
assert np.array_equal(codes, np.load(sys.argv[2])), "decoded codes differ"
print("identical", len(codes))
"""


def test_entropy_coded_codes_decode_exactly_in_another_process_with_other_threads(tmp_path):
    import subprocess
    import sys

    file, codes = tmp_path / "x.tsvqz", tmp_path / "codes.npy"
    tests = str(Path(__file__).parent)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-c", ENCODE_WITH_ONE_THREAD, str(file), str(codes), tests], check=True, env=env)
    env["OMP_NUM_THREADS"] = "2"
    out = subprocess.run(
        [sys.executable, "-c", DECODE_WITH_TWO_THREADS, str(file), str(codes)],
        check=True,
        env=env,
        capture_output=True,
        text=True,
    ).stdout
    assert out.startswith("identical")


def test_entropy_model_settings_that_do_not_fit_are_refused(pipe):
    x = ecg_like(20, 250.0, seed=5)[:, None]
    compressed = pipe.compress(x, 250.0)
    assert compressed.entropy["model"] == "adaptive-context" and CompressedRecord.from_bytes(compressed.to_bytes())
    other = CompressedRecord.from_bytes(compressed.to_bytes())
    other.entropy = {**other.entropy, "num_codes": 2 * other.entropy["num_codes"]}
    with pytest.raises(DataError, match="entropy model codes 64 symbols; this codec has 32"):
        pipe.decompress(other)


def test_the_wavelet_baseline_decodes_its_own_bytes_at_the_rate_asked():
    from benchmarks import wavelet_coder

    x = ecg_like(120, 250.0, seed=6)
    seconds = len(x) / 250.0
    errors = []
    for rate in (150.0, 600.0):
        data, y = wavelet_coder.at_rate(x, rate * seconds)
        assert 0.9 * rate <= 8 * len(data) / seconds <= rate  # every byte counted, the rate met from below
        np.testing.assert_array_equal(wavelet_coder.decode(data), y)
        errors.append(prdn_per_channel(x[:, None], y[:, None])[0])
    assert errors[1] < 0.5 * errors[0] < 50  # more bits, less error
    leads = np.column_stack([ecg_like(10, 100.0, seed=s) for s in range(3)])  # a short multi-lead ECG
    data = wavelet_coder.encode(leads, 0.01)
    alone = [wavelet_coder.encode(leads[:, c], 0.01) for c in range(3)]
    # each lead decodes as if coded alone, in fewer bytes: the leads share the tables
    np.testing.assert_array_equal(wavelet_coder.decode(data), np.column_stack([wavelet_coder.decode(a) for a in alone]))
    assert len(data) < sum(map(len, alone)) and max(prdn_per_channel(leads, wavelet_coder.decode(data))) < 5


def test_compress_chooses_the_operating_point_for_a_bit_rate_or_a_quality():
    rvq = untrained_rvq_pipeline()
    x = ecg_like(60, 125)[:, None]
    points = [rvq.compress(x, 125, quantizers=q) for q in (1, 2, 3)]
    rates = [p.bits_per_second() for p in points]
    prdns = [max(rvq.compression_prdn(p, x, 125).values()) for p in points]
    assert rates[0] < rates[1] < rates[2]
    chosen, point = rvq.compress_at(x, 125, bitrate=(rates[1] + rates[2]) / 2)
    # two stages or one, each with a detail layer filling the rate: the lower PRDN
    assert point["stages"] in (1, 2) and point["met"] and chosen.quantizers == point["stages"]
    assert chosen.bits_per_second() <= (rates[1] + rates[2]) / 2 and max(point["prdn"].values()) < prdns[1]
    with pytest.raises(DataError, match="lowest operating point"):
        rvq.compress_at(x, 125, bitrate=1.0)  # not even a header fits
    chosen, point = rvq.compress_at(x, 125, max_prdn=max(prdns) + 1)
    assert point["stages"] == 1 and point["met"] and point["detail_step"] is None  # the smallest file that meets it
    # beyond what the stages give a detail layer codes what the codes missed: to the PRDN asked for, or the bits given
    chosen, point = rvq.compress_at(x, 125, max_prdn=min(prdns) / 2)
    assert point["met"] and point["detail_step"] is not None and chosen.quantizers == point["stages"]
    # a residual-VQ file without codes (the layer alone) reads back and decodes too
    alone = CompressedRecord.from_bytes(rvq.compress(x, 125, quantizers=0, detail_step=0.05).to_bytes())
    assert alone.quantizers == 0 and rvq.decompress(alone).signal.shape == x.shape
    assert max(rvq.compression_prdn(chosen, x, 125).values()) == pytest.approx(max(point["prdn"].values()), rel=1e-3)
    assert max(point["prdn"].values()) <= min(prdns) / 2
    chosen, point = rvq.compress_at(x, 125, bitrate=2 * rates[2])
    assert point["met"] and point["detail_step"] is not None and rates[2] < chosen.bits_per_second() <= 2 * rates[2]
    assert max(point["prdn"].values()) < min(prdns)
    _, point = rvq.compress_at(x, 125, max_prdn=1e-9)
    assert not point["met"]  # the most it does, said as not met
    with pytest.raises(ConfigError, match="one target"):
        rvq.compress_at(x, 125, bitrate=100, max_prdn=5)
    with pytest.raises(ConfigError, match="chooses the stages"):
        rvq.compress_at(x, 125, bitrate=100, quantizers=1)


def test_the_detail_layer_decodes_exactly_what_it_promised():
    """Any number of stretches of any length (a few samples to minutes): decode gives exactly ``reconstruct``'s
    signal; a finer step spends more bits for less error; the estimated size is the layer's within a percent and a
    few words; a damaged layer is a DataError."""
    from tsvq.detail import DetailLayer

    rng = np.random.default_rng(0)
    residuals = [ecg_like(60, 250.0, seed=3) * 0.05 + 0.01 * rng.standard_normal(15000), rng.standard_normal(1),
                 0.02 * rng.standard_normal(7), 0.02 * rng.standard_normal(2500)]  # fmt: skip
    lengths, sizes, errors = [len(r) for r in residuals], [], []
    for step in (0.02, 0.005):
        layer = DetailLayer.rounded(step)
        data = layer.encode(residuals)
        decoded = layer.decode(data, lengths, "x.tsvqz")
        for a, b, r in zip(decoded, layer.reconstruct(residuals), residuals):
            np.testing.assert_array_equal(a, b)
            assert a.shape == r.shape
        assert abs(layer.estimated_bits(residuals) - 8 * len(data)) <= 64 + 0.01 * 8 * len(data)
        sizes.append(len(data))
        errors.append(np.sqrt(np.mean((np.concatenate(decoded) - np.concatenate(residuals)) ** 2)))
    assert sizes[1] > sizes[0] and errors[1] < 0.5 * errors[0] and errors[1] < 0.005
    with pytest.raises(DataError, match="x.tsvqz: detail layer"):
        layer.decode(data[:3], lengths, "x.tsvqz")
    damaged = bytearray(data)
    damaged[len(damaged) // 2 :] = bytes(len(damaged) - len(damaged) // 2)
    try:  # zeroed words may decode to other symbols (no checksum inside the layer: the file's CRC guards it)
        assert layer.decode(bytes(damaged), lengths, "x.tsvqz")[0].shape == residuals[0].shape
    except DataError as error:
        assert "x.tsvqz: detail layer" in str(error)


def test_a_detail_layer_rides_in_a_format_4_file_and_lowers_the_error(tmp_path):
    pipe = Pipeline.from_pretrained("ecg-single-lead")
    x = ecg_like(40, 360.0, seed=5)[:, None]
    x[3000:3400] = np.nan  # two stretches
    base = pipe.compress(x, 360.0)
    detailed = pipe.compress(x, 360.0, detail_step=0.01)
    assert base.to_bytes()[5] == 3 and detailed.to_bytes()[5] == 4
    assert detailed.size_bytes() > base.size_bytes()
    loaded = CompressedRecord.load(detailed.save(tmp_path / "x.tsvqz"))
    assert loaded.detail == {"model": "wavelet-detail", "step": 0.01}
    np.testing.assert_array_equal(pipe.decompress(loaded).signal, pipe.decompress(detailed).signal)
    out = pipe.decompress(loaded).signal
    assert np.isnan(out[3000:3400]).all() and np.isfinite(out[:3000]).all()
    [with_layer] = pipe.compression_prdn(loaded, x, 360.0).values()
    [without] = pipe.compression_prdn(base, x, 360.0).values()
    assert with_layer < 0.5 * without
    # no codes at all: the layer codes the signal itself (what compress_at picks where codes do not pay)
    alone = CompressedRecord.from_bytes(pipe.compress(x, 360.0, quantizers=0, detail_step=0.01).to_bytes())
    assert alone.quantizers == 0 and alone.num_codes == 0 and alone.entropy is None
    out = pipe.decompress(alone).signal
    assert np.isnan(out[3000:3400]).all() and 0 < max(pipe.compression_prdn(alone, x, 360.0).values()) < 10
    with pytest.raises(DataError, match="give a detail_step"):
        pipe.compress(x, 360.0, quantizers=0)


def test_beat_templates_code_an_ecg_in_fewer_bits_and_decode_exactly():
    """Templates subtracted at the beats before the wavelet coding: decode gives exactly ``reconstruct``'s signal,
    with fewer bytes than the wavelet coding alone at the same step; two leads of one stream share their positions;
    a stretch without beats, and positions far beyond a few bytes, code too; damaged side information is refused."""
    from tsvq import beats
    from tsvq.adaptive_coding import varint
    from tsvq.detail import DetailLayer
    from tsvq.rhythm import r_peaks

    x = ecg_like(60, 250.0, seed=1)
    peaks = r_peaks(x, 250.0)
    quiet = 0.01 * np.random.default_rng(0).standard_normal(100)
    residuals = [quiet, x, 0.5 * ecg_like(60, 250.0, seed=2), quiet, x[:3000]]
    fit = beats.fit(residuals, [None, peaks, peaks, None, r_peaks(x[:3000], 250.0)], 250.0)
    assert [s is None or s.shared for s in fit.stretches] == [True, False, True, True, False]
    assert len(fit.stretches[1].positions) == len(peaks) > 60
    with_beats, plain = DetailLayer(0.02, beats=True), DetailLayer(0.02)
    data, lengths = with_beats.encode(residuals, fit), [len(r) for r in residuals]
    decoded = with_beats.decode(data, lengths, "x.tsvqz")
    for a, b, r in zip(decoded, with_beats.reconstruct(residuals, fit), residuals):
        np.testing.assert_array_equal(a, b)
        assert a.shape == r.shape and np.sqrt(np.mean((a - r) ** 2)) < 0.012
    assert len(data) < 0.95 * len(plain.encode(residuals))
    assert abs(with_beats.estimated_bits(residuals, fit) - 8 * len(data)) <= 64 + 0.02 * 8 * len(data)
    with pytest.raises(ConfigError, match="beat templates"):
        plain.encode(residuals, fit)
    far = np.zeros(3_000_000)  # a day-long stretch: positions beyond the coder's uniform symbols
    positions = np.array([10, 500, 1000, 1500, 2_900_000])
    far[positions] = 1.0
    far_fit = beats.fit([far], [positions], 250.0)
    np.testing.assert_array_equal(
        with_beats.decode(with_beats.encode([far], far_fit), [len(far)], "far")[0],
        with_beats.reconstruct([far], far_fit)[0],
    )
    damaged = bytearray(data)
    mode_byte = sum(len(varint(v)) for v in (len(fit.side_bytes()), fit.before, fit.length))
    assert data[mode_byte] == beats.NONE and data[mode_byte + 1] == beats.OWN * 8 + len(fit.stretches[1].templates)
    damaged[mode_byte] = 7 * 8  # no such mode
    with pytest.raises(DataError, match="x.tsvqz: detail layer's beat templates are damaged"):
        with_beats.decode(bytes(damaged), lengths, "x.tsvqz")
    with pytest.raises(DataError, match="x.tsvqz: detail layer"):
        with_beats.decode(data[:40], lengths, "x.tsvqz")


def test_compress_at_a_low_rate_subtracts_beat_templates_in_a_format_5_file(tmp_path):
    pipe = Pipeline.from_pretrained("ecg-single-lead")
    x = ecg_like(60, 360.0, seed=4)[:, None]
    chosen, point = pipe.compress_at(x, 360.0, bitrate=150)
    assert point["beats"] and point["stages"] == 0 and point["met"] and chosen.to_bytes()[5] == 5
    loaded = CompressedRecord.load(chosen.save(tmp_path / "x.tsvqz"))
    assert loaded.detail["beats"] is True
    np.testing.assert_array_equal(pipe.decompress(loaded).signal, pipe.decompress(chosen).signal)
    assert max(pipe.compression_prdn(loaded, x, 360.0).values()) == pytest.approx(max(point["prdn"].values()), rel=1e-3)
    templated = pipe.compress(x, 360.0, quantizers=0, detail_step=0.02, beats=True)
    alone = pipe.compress(x, 360.0, quantizers=0, detail_step=0.02)
    assert templated.size_bytes() < alone.size_bytes()
    with pytest.raises(DataError, match="give a detail_step"):
        pipe.compress(x, 360.0, beats=True)
    slow_wave = np.sin(2 * np.pi * 0.6 * np.arange(len(x)) / 360.0)[:, None]  # no QRS complex anywhere
    with pytest.raises(DataError, match="signal: no beats to make templates of"):
        pipe.compress(slow_wave, 360.0, quantizers=0, detail_step=0.02, beats=True)


def test_a_short_record_keeps_fixed_width_codes_when_that_is_the_smaller_file():
    pipe = Pipeline.from_pretrained("ecg-single-lead")
    short, long = ecg_like(5, 250.0, seed=7)[:, None], ecg_like(300, 250.0, seed=7)[:, None]
    for x in (short, long):
        written = pipe.compress(x, 250.0)
        fixed = pipe.compress(x, 250.0, entropy_coding=False)
        assert written.size_bytes() <= fixed.size_bytes()
    assert pipe.compress(long, 250.0).entropy is not None  # a long repetitive record: entropy-coded, smaller
    assert CompressedRecord.from_bytes(pipe.compress(short, 250.0).to_bytes()).codes[0][0].shape[0] > 0


def test_a_12_lead_ecg_coded_as_its_eight_independent_leads_decompresses_to_twelve(tmp_path, capsys):
    """III, aVR, aVL and aVF follow from I and II: a codec of I, II, V1-V6 gives all twelve, the four derived
    exactly from the decoded I and II (on a real PTB-XL ECG the identities hold to its ADC step)."""
    from tsvq.cli import main
    from tsvq.data.leads import INDEPENDENT_LEADS, codes_independent_leads, with_derived_limb_leads

    eight = list(INDEPENDENT_LEADS)
    prep = Preprocessing(sampling_rate_hz=100, window_length=240)
    pipe = Pipeline(VQVAE(in_channels=8, hidden_channels=8, num_res_blocks=1, latent_dim=8, num_codes=16,
                          num_quantizers=2, downsample_factor=4, window_length=240, sampling_rate_hz=100,
                          channel_names=tuple(eight), units=("mV",) * 8, norm_mean=(0.0,) * 8, norm_std=(1.0,) * 8,
                          preprocessing=prep.to_dict()))  # fmt: skip
    names = ["I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"]  # PTB-XL's spelling
    lead_i, lead_ii = ecg_like(10, 100.0, seed=1), 1.5 * ecg_like(10, 100.0, seed=2)
    limbs = [lead_ii - lead_i, -(lead_i + lead_ii) / 2, lead_i - lead_ii / 2, lead_ii - lead_i / 2]
    signal = np.column_stack([lead_i, lead_ii, *limbs, *(ecg_like(10, 100.0, seed=s) for s in range(3, 9))])
    record = tmp_path / "ecg"
    write_record(tmp_path, "ecg", signal, 100.0, sig_names=names)
    pipe.save_pretrained(tmp_path / "pipe")
    assert main(["compress", str(record), "--pipeline", str(tmp_path / "pipe"), "--out", f"{record}.tsvqz"]) == 0
    decoded = pipe.decompress(f"{record}.tsvqz")
    assert decoded.channel_names == [*eight, "III", "aVR", "aVL", "aVF"] and decoded.signal.shape == (1000, 12)
    i, ii = decoded.signal[:, 0].astype(np.float64), decoded.signal[:, 1].astype(np.float64)
    np.testing.assert_allclose(decoded.signal[:, 8:], np.column_stack([ii - i, -(i + ii) / 2, i - ii / 2, ii - i / 2]),
                               atol=1e-5)  # fmt: skip
    assert pipe.decompress(f"{record}.tsvqz", derive_leads=False).signal.shape == (1000, 8)
    back = ["decompress", f"{record}.tsvqz", "--pipeline", str(tmp_path / "pipe"), "--out", str(tmp_path / "back")]
    assert main(back) == 0 and "aVF" in capsys.readouterr().out
    assert wfdb.rdheader(str(tmp_path / "back")).sig_name[8:] == ["III", "aVR", "aVL", "aVF"]
    assert codes_independent_leads(eight) and not codes_independent_leads([*eight, "III"])
    single = untrained_rvq_pipeline()
    with pytest.raises(DataError, match="deriving limb leads needs leads I and II; the recording holds ECG"):
        single.decompress(single.compress(ecg_like(10, 125)[:, None], 125), derive_leads=True)
    with pytest.raises(ValueError, match="needs leads I and II"):
        with_derived_limb_leads(signal[:, 6:], names[6:])
    if (real := Path(__file__).resolve().parents[2] / "shared" / "data" / "ptbxl").is_dir():
        ecg = read_record(real / "records100" / "00000" / "00001_lr")
        twelve, _ = with_derived_limb_leads(ecg.signal[:, [0, 1, *range(6, 12)]], eight)
        assert np.abs(twelve[:, 8:] - ecg.signal[:, 2:6]).max() <= 0.0015 + 1e-9  # the stored leads, to the ADC step
