"""Denoising: nst-calibrated noise, the denoiser stage, Pipeline.denoise and `tsvq denoise`."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from tests.conftest import ecg_like, shared_data, tiny_training, write_record
from tsvq.cli import main
from tsvq.codec import VQVAE
from tsvq.codec.denoising import BLEND_BANDS_HZ, DenoisingEncoder, frequency_bands, keep_input
from tsvq.data.noise import NoiseBank, noise_power, noise_source, qrs_power, scaled_to_snr
from tsvq.data.preprocess import Preprocessing
from tsvq.errors import CheckpointError, ConfigError, DataError
from tsvq.pipeline import Pipeline
from tsvq.safe_loading import load_model


def _noise_records(folder, rate=125.0, seconds=120):
    """A noise record, and a noisy/clean pair whose difference is noise in alternate 20-s stretches."""
    rng = np.random.default_rng(0)
    n = int(seconds * rate)
    write_record(folder, "noise", np.stack([rng.normal(0, 0.2, n), rng.normal(0, 0.1, n)], axis=1), rate)
    clean = ecg_like(seconds, rate, seed=3)
    on = (np.arange(n) // int(20 * rate)) % 2 == 1
    write_record(folder, "clean", clean, rate)
    write_record(folder, "noisy", clean + on * rng.normal(0, 0.3, n), rate)
    return folder / "noise", f"{folder / 'noisy'} - {folder / 'clean'}", on


def test_noise_is_scaled_as_nst_does():
    rate = 360.0
    beats = np.arange(180, 36000, 300)
    signal = np.zeros(36000)
    signal[beats] = 2.0  # QRS peak-to-peak 2 mV: S = 2^2 / 8
    assert qrs_power(signal, beats, rate) == pytest.approx(0.5)
    noise = np.random.default_rng(1).normal(0, 1, 36000)
    for snr in (0, 6, 24):
        scaled = scaled_to_snr(noise, 0.5, snr, rate)
        assert 10 * np.log10(0.5 / noise_power(scaled, rate)) == pytest.approx(snr, abs=1e-9)
    with pytest.raises(DataError, match="no beat"):
        qrs_power(signal, np.array([1]), rate)


def test_noise_bank_reads_differences_keeps_noisy_stretches_and_its_span(tmp_path):
    plain, difference, on = _noise_records(tmp_path)
    noise, rate = noise_source(difference)
    assert rate == 125.0 and np.abs(noise[~on]).max() < 1e-2 and noise[on].std() > 0.2
    prep = Preprocessing(sampling_rate_hz=125.0, highpass_hz=0.5, lowpass_hz=40.0)
    whole = NoiseBank([difference], prep)
    assert sum(len(s) for s in whole.stretches) == pytest.approx(on.sum(), rel=0.05)  # only where noise was added
    first = NoiseBank([plain], None, (0.0, 0.5))
    assert sum(len(s) for s in first.stretches) == 2 * 60 * 125  # two channels, the first half of each
    assert sorted(set(first.names)) == ["noise:0", "noise:1"]
    drawn = first.draw(np.random.default_rng(0), 500)
    assert drawn.shape == (500,) and abs(drawn.mean()) < 1e-6
    with pytest.raises(DataError, match="expected 'RECORD' or 'NOISY - CLEAN'"):
        noise_source("a - b - c")
    with pytest.raises(DataError, match="span"):
        NoiseBank([plain], None, (0.6, 0.5))


@pytest.fixture(scope="module")
def denoiser(tiny_runs, tmp_path_factory):
    from tsvq.training.denoiser import DenoiserStageConfig, train_denoiser

    folder = tmp_path_factory.mktemp("noise")
    plain, difference, _ = _noise_records(folder)
    config = DenoiserStageConfig(
        store=str(tiny_runs["store"]),
        codec=str(tiny_runs["codec"]),
        noise=[str(plain), difference],
        hidden_channels=16,
        num_res_blocks=1,
        training=tiny_training(folder / "run", 40, eval_every=20),
    )
    return train_denoiser(config)


def test_denoiser_stage_trains_and_records_what_it_saw(denoiser, tiny_runs):
    from tsvq.training.trackers import read_metrics

    model = load_model(DenoisingEncoder, denoiser)
    assert model.config.noise_span == [0.0, 0.7] and len(model.config.noise) == 2
    model.check_codec(load_model(VQVAE, tiny_runs["codec"]))
    losses = [m["reconstruction_loss"] for m in read_metrics(denoiser.parent / "logs") if "reconstruction_loss" in m]
    assert np.mean(losses[-2:]) < losses[0]  # it learns
    evaluations = [m for m in read_metrics(denoiser.parent / "logs") if "val/prdn" in m]
    assert len(evaluations) == 2 and all(m["val/prdn_noisy_input"] > 0 for m in evaluations)
    shares = model.config.clean_error_share  # measured on the clean validation windows when saved, per band
    assert len(shares) == len(BLEND_BANDS_HZ) + 1 and all(0 < share < 5 for share in shares)


def test_keep_input_keeps_a_clean_input_and_not_the_noise():
    rng = np.random.default_rng(0)
    t = np.arange(2496) / 250.0
    clean = (np.exp(-(((t % 0.8) - 0.4) ** 2) / 0.0005) + 0.2 * np.sin(2 * np.pi * 1.3 * t))[:, None]
    decoded = clean + 0.2 * clean.std() * rng.standard_normal(clean.shape)  # the codes' own error: 4% of the power
    keep = np.zeros((len(t) // 8, 1))
    error = np.linalg.norm(decoded - clean)
    np.testing.assert_array_equal(keep_input(decoded, keep, clean, 8), decoded)  # no share: the learnt keep alone
    assert np.linalg.norm(keep_input(decoded, keep, clean, 8, 0.04) - clean) < 0.3 * error  # clean: kept
    noisy = clean + 1.0 * clean.std() * rng.standard_normal(clean.shape)  # noise 25x the codes' error
    out = keep_input(decoded, keep, noisy, 8, 0.04)
    assert np.linalg.norm(out - clean) < 1.1 * error < 0.3 * np.linalg.norm(noisy - clean)  # noisy: dropped


def test_keep_input_weighs_each_band_so_wander_goes_and_qrs_detail_stays():
    """Codes that miss the QRS detail (high frequencies) under baseline wander (low): one gain for the whole band
    keeps both or neither; a gain per band keeps the input's detail and drops its wander."""
    t = np.arange(5000) / 250.0
    clean = np.exp(-(((t % 0.8) - 0.4) ** 2) / 0.0002)[:, None]  # narrow beats: mostly high frequencies
    bands = frequency_bands(clean, 250.0)
    decoded = bands[0] + 0.6 * sum(bands[1:])  # the codes keep the lowest band, 60% of what lies above it
    wander = 0.4 * np.sin(2 * np.pi * 0.6 * t)[:, None]
    shares = [
        float((missed**2).sum() / max((codes**2).sum(), 1e-20))
        for missed, codes in zip(frequency_bands(clean - decoded, 250.0), frequency_bands(decoded, 250.0))
    ]
    keep = np.zeros((len(t) // 8, 1))
    whole = np.linalg.norm(clean - decoded) ** 2 / np.linalg.norm(decoded) ** 2
    per_band = np.linalg.norm(keep_input(decoded, keep, clean + wander, 8, shares) - clean)
    one_band = np.linalg.norm(keep_input(decoded, keep, clean + wander, 8, whole) - clean)
    assert per_band < 0.3 * one_band and per_band < 0.3 * np.linalg.norm(clean - decoded)
    np.testing.assert_allclose(keep_input(decoded, keep, clean, 8, shares), clean, atol=0.01)  # clean: kept
    with pytest.raises(ValueError, match=f"{len(BLEND_BANDS_HZ) + 2} shares"):
        keep_input(decoded, keep, clean, 8, [0.1] * (len(BLEND_BANDS_HZ) + 2))
    slow = frequency_bands(clean, 2 * min(BLEND_BANDS_HZ))  # a rate with no room for a split: one band, the signal
    assert len(slow) == 1 and np.array_equal(slow[0], clean)


def test_a_denoiser_fine_tunes_from_a_trained_one(denoiser, tiny_runs, tmp_path):
    from tsvq.training.denoiser import DenoiserStageConfig, DenoiserTask

    plain, _, _ = _noise_records(tmp_path / "noise")
    config = DenoiserStageConfig(
        store=str(tiny_runs["store"]),
        codec=str(tiny_runs["codec"]),
        noise=[str(plain)],
        noise_span=(0.0, 0.5),
        init_from=str(denoiser),
        output_loss="relative",
        training=tiny_training(tmp_path / "run", 2),
    )
    task = DenoiserTask(config)
    batch = {"signal": torch.from_numpy(task.val_clean[:4])}
    loss, logs = task.loss(task.model, batch)
    assert torch.isfinite(loss) and 0 < logs["output_loss"] and 0 <= logs["kept"] <= 1
    with pytest.raises(ConfigError, match="output_loss must be 'mse' or 'relative'"):
        DenoiserStageConfig(noise=["x"], output_loss="l1")
    for snr_db in ((float("nan"), 24.0), (-6.0, 1e9), (24.0, -6.0), (0.0,)):  # NaN noise, an overflow, reversed
        with pytest.raises(ConfigError, match="denoiser stage: (snr_db: SNR|snr_db .* must be \\(low, high\\))"):
            DenoiserStageConfig(noise=["x"], snr_db=snr_db)
    trained = load_model(DenoisingEncoder, denoiser)
    for name, value in trained.state_dict().items():
        torch.testing.assert_close(task.model.state_dict()[name], value)  # starts where the other stopped
    assert list(task.model.config.noise) == ["noise/noise"] and list(task.model.config.noise_span) == [0.0, 0.5]


def test_a_refiner_trains_on_the_frozen_encoder_and_corrects_the_output(denoiser, tiny_runs, tmp_path):
    from tsvq.training.denoiser import DenoiserStageConfig, train_denoiser, with_refiner

    plain, _, _ = _noise_records(tmp_path / "noise")
    settings = dict(store=str(tiny_runs["store"]), codec=str(tiny_runs["codec"]), noise=[str(plain)])
    config = DenoiserStageConfig(**settings, init_from=str(denoiser), refiner_channels=8, freeze_encoder=True,
                                 training=tiny_training(tmp_path / "run", 6, eval_every=3))  # fmt: skip
    folder = train_denoiser(config)
    before, after = load_model(DenoisingEncoder, denoiser), load_model(DenoisingEncoder, folder)
    assert before.refiner is None and after.config.refiner_channels == 8
    for name, value in before.state_dict().items():
        torch.testing.assert_close(after.state_dict()[name], value)  # the encoder, its codes and its keep: frozen
    assert after.refiner.project_out.weight.abs().sum() > 0  # the refiner learnt (it starts at zero)
    pipe, refined = (Pipeline.from_stages(tiny_runs["codec"], denoiser=d) for d in (denoiser, folder))
    rate = 125.0
    x = ecg_like(20, rate, seed=4) + np.random.default_rng(1).normal(0, 0.2, int(20 * rate))
    out = refined.denoise(x, rate)
    assert out.shape == x.shape and np.isfinite(out).all() and not np.allclose(out, pipe.denoise(x, rate))
    np.testing.assert_array_equal(
        refined.denoise(x, rate, pass_through=False), pipe.denoise(x, rate, pass_through=False)
    )
    with pytest.raises(ConfigError, match="freeze_encoder trains the refiner alone"):
        DenoiserStageConfig(**settings, refiner_channels=8, freeze_encoder=True)
    with pytest.raises(ConfigError, match="has a refiner of 8 channels; refiner_channels asks for 4"):
        with_refiner(after, 4, "denoiser")


def test_the_refiner_over_a_long_recording_gives_what_one_pass_would(monkeypatch, tiny_runs):
    import tsvq.codec.denoising as denoising

    codec = load_model(VQVAE, tiny_runs["codec"])
    model = DenoisingEncoder.for_codec(codec, refiner_channels=4).eval()
    torch.nn.init.normal_(model.refiner.project_out.weight)  # a correction that is not zero
    rng = np.random.default_rng(0)
    noisy, decoded, blended = (rng.normal(0, 1, (5000, 1)) for _ in range(3))
    whole = model.refine(codec, noisy, decoded, blended)
    assert not np.allclose(whole, blended)
    monkeypatch.setattr(denoising, "REFINE_CHUNK", 777)  # chunks far shorter than the refiner's reach
    np.testing.assert_allclose(model.refine(codec, noisy, decoded, blended), whole, atol=1e-5)
    # windows in one batch (training's validation) give what each would alone
    windows = [rng.normal(0, 1, (3, 700, 1)) for _ in range(3)]
    alone = np.stack([model.refine(codec, *window) for window in zip(*windows)])
    np.testing.assert_allclose(model.refine_windows(codec, *windows), alone, atol=1e-5)


def test_pipeline_denoises_any_rate_keeps_gaps_and_saves_the_denoiser(denoiser, tiny_runs, tmp_path):
    pipe = Pipeline.from_stages(tiny_runs["codec"], tiny_runs["wavenet"], denoiser=denoiser)
    rate = 360.0
    x = ecg_like(30, rate, seed=5) + np.random.default_rng(2).normal(0, 0.2, int(30 * rate))
    x[3000:3400] = np.nan
    out = pipe.denoise(x, rate)
    assert out.shape == x.shape and out.dtype == np.float32
    assert np.isnan(out[3000:3400]).all() and np.isfinite(np.delete(out, np.s_[3000:3400])).all()
    # the share of the input kept where it looks clean lies in [0, 1]; without it, the decoded codes alone
    _, keep = pipe.denoiser.estimate(pipe.codec, pipe.preprocess(x[:2999, None], rate)[None, :1024])
    assert keep.shape == (1, 1024 // 4, 1) and 0 <= float(keep.min()) <= float(keep.max()) <= 1
    assert not np.allclose(pipe.denoise(x, rate, pass_through=False), out, equal_nan=True)
    two = pipe.denoise(np.stack([x, x], axis=1), rate)  # a single-lead codec takes each channel on its own
    np.testing.assert_allclose(two[:, 0], out, atol=1e-5)
    np.testing.assert_allclose(two[:, 1], out, atol=1e-5)
    folder = pipe.save_pretrained(tmp_path / "pipe")
    assert json.loads((folder / "pipeline.json").read_text())["components"]["denoiser"] == "denoiser"
    again = Pipeline.from_pretrained(folder)
    np.testing.assert_array_equal(again.denoise(x, rate), out)
    with pytest.raises(DataError, match="every sample is NaN"):
        pipe.denoise(np.full(1000, np.nan), rate)
    with pytest.raises(DataError, match="expected one recording"):
        pipe.denoise(np.zeros((2, 3, 4)), rate)
    with pytest.raises(DataError, match=r"^signal: 1 s long, shorter than one window of the pipeline \(2.048 s\)"):
        pipe.denoise(x[:360], rate)
    with pytest.raises(DataError, match=r"^signal: channel '0' has a band-passed spread of .* check its unit$"):
        pipe.denoise(1000 * x, rate)  # microvolts given to a pipeline in mV
    with pytest.raises(DataError, match=r"^signal: channel 1 is flat \(every sample 0\): a disconnected lead"):
        pipe.denoise(np.stack([x, np.where(np.isnan(x), np.nan, 0.0)], axis=1), rate)
    with pytest.raises(ConfigError, match="no denoiser"):
        Pipeline.from_stages(tiny_runs["codec"]).denoise(x, rate)


def test_a_denoiser_of_another_codec_is_refused(denoiser, tiny_runs, tmp_path):
    pipe = Pipeline.from_stages(tiny_runs["codec"], denoiser=denoiser)
    folder = pipe.save_pretrained(tmp_path / "pipe")
    other = load_model(VQVAE, tiny_runs["codec"])
    with torch.no_grad():
        other.quantizer.quantizers[0].codebook.add_(1.0)
    other.save_pretrained(folder / "codec")
    with pytest.raises(CheckpointError, match="pipeline.json: denoiser: the denoiser was trained on another codec's"):
        Pipeline.from_pretrained(folder)


def test_saturation_is_reported(denoiser, tiny_runs, caplog):
    pipe = Pipeline.from_stages(tiny_runs["codec"], denoiser=denoiser)
    rate = 125.0
    x = ecg_like(20, rate, seed=2)
    clipped = np.minimum(x, 0.3)  # every R peak pinned at the amplifier's top
    with caplog.at_level("WARNING"):
        out = pipe.denoise(clipped, rate)
    assert np.isfinite(out).all() and "pinned at a channel's extreme (saturated)" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        pipe.denoise(x, rate)
    assert "saturated" not in caplog.text


def test_denoise_command_writes_a_record_and_never_the_input(denoiser, tiny_runs, tmp_path, capsys):
    folder = Pipeline.from_stages(tiny_runs["codec"], denoiser=denoiser).save_pretrained(tmp_path / "pipe")
    rate = 125.0
    x = ecg_like(20, rate, seed=1) + np.random.default_rng(0).normal(0, 0.1, int(20 * rate))
    record = write_record(tmp_path, "noisy", x, rate, ["ECG"])
    assert main(["denoise", str(record), "--pipeline", str(folder), "--out", str(tmp_path / "clean")]) == 0
    said = re.search(r"pipe\): ECG\); removed \(RMS\) ECG (\S+) mV; beyond what a (.+) band-pass removes: ECG (\S+) mV",
                     capsys.readouterr().out)  # fmt: skip
    import wfdb

    written = wfdb.rdrecord(str(tmp_path / "clean"))
    assert written.p_signal.shape == (len(x), 1) and written.sig_name == ["ECG"]
    pipe = Pipeline.from_pretrained(folder)
    assert said and said[2] == pipe.preprocessing.describe_band()
    recorded = wfdb.rdrecord(str(record)).p_signal
    band_only = pipe.preprocessing.band_limited(recorded, rate)  # the share a band-pass alone removes is told apart
    np.testing.assert_allclose(float(said[3]), np.sqrt(np.mean((band_only - written.p_signal) ** 2)), rtol=0.01)
    np.testing.assert_allclose(float(said[1]), np.sqrt(np.mean((recorded - written.p_signal) ** 2)), rtol=0.01)
    before = (tmp_path / "noisy.dat").read_bytes()
    assert main(["denoise", str(record), "--pipeline", str(folder), "--out", str(record)]) == 2
    assert (tmp_path / "noisy.dat").read_bytes() == before
    assert main(["denoise", str(record), "--pipeline", str(folder), "--out", str(tmp_path / "clean")]) == 2
    assert "exists" in capsys.readouterr().err
    # the same in microvolts: denoised as millivolts, written back in microvolts; labelled mV, refused
    as_read = wfdb.rdrecord(str(record)).p_signal
    for name, unit in (("in_uv", "uV"), ("mislabelled", "mV")):
        wfdb.wrsamp(name, fs=rate, units=[unit], sig_name=["ECG"], p_signal=1000 * as_read, fmt=["32"],
                    adc_gain=[1000.0], baseline=[0], write_dir=str(tmp_path))  # fmt: skip
    assert main(["denoise", str(tmp_path / "in_uv"), "--pipeline", str(folder), "--out", str(tmp_path / "uv")]) == 0
    in_uv = wfdb.rdrecord(str(tmp_path / "uv"))
    assert in_uv.units == ["uV"] and np.allclose(in_uv.p_signal / 1000, written.p_signal, atol=1e-4)
    capsys.readouterr()
    mislabelled = ["denoise", str(tmp_path / "mislabelled"), "--pipeline", str(folder)]
    assert main([*mislabelled, "--out", str(tmp_path / "no")]) == 2
    assert "mislabelled: channel '0' has a band-passed spread of" in capsys.readouterr().err
    assert not (tmp_path / "no.hea").exists()


def test_shipped_denoiser_beats_the_band_pass_on_electrode_motion_of_an_unseen_patient():
    """MIT-BIH 100 (DS2, not trained on) with nstdb electrode motion from the part the denoiser never saw."""
    from benchmarks.denoise import NOISES

    data = shared_data().parent  # ../shared/data
    from tsvq.data.records import read_record

    pipe = Pipeline.from_pretrained("ecg-single-lead")
    record = read_record(data / "mitdb" / "100")
    rate = record.sampling_rate_hz
    clean = record.signal[int(600 * rate) : int(630 * rate), 0]
    import wfdb

    annotation = wfdb.rdann(str(data / "mitdb" / "100"), "atr", sampfrom=int(600 * rate), sampto=int(630 * rate))
    beats = annotation.sample - int(600 * rate)
    spec = " - ".join(str(data / p) for p in NOISES["em"].split(" - "))
    bank = NoiseBank([spec], None, (pipe.denoiser.config.noise_span[1], 1.0))
    noise = bank.draw(np.random.default_rng(0), len(clean)).astype(np.float64)
    noisy = clean + scaled_to_snr(noise, qrs_power(clean, beats, rate), 6.0, rate)
    reference = pipe.preprocessing.condition(clean[:, None], rate)[:, 0]
    bandpassed = pipe.preprocessing.condition(noisy[:, None], rate)[:, 0]
    denoised = pipe.preprocessing.condition(pipe.denoise(noisy, rate)[:, None], rate)[:, 0]

    def snr(y):
        return 10 * np.log10(np.sum(reference**2) / np.sum((reference - y) ** 2))

    assert snr(denoised) > snr(bandpassed) + 3.0
    as_it_was = pipe.preprocessing.condition(pipe.denoise(clean, rate)[:, None], rate)[:, 0]
    assert snr(as_it_was) > 25  # a clean input comes back nearer as it was (28 dB; 19.6 without the Wiener gain)
