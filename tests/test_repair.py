"""Filling gaps and forecasting: the WaveNet's infill, Pipeline.impute / forecast and the commands."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tests.conftest import ecg_like, write_record
from tsvq.cli import main
from tsvq.errors import ConfigError, DataError
from tsvq.pipeline import Pipeline
from tsvq.priors.wavenet import WaveNet
from tsvq.repair import Repaired

RATE = 250.0


def test_infill_keeps_what_is_known_and_weighs_draws_by_what_follows():
    torch.manual_seed(0)
    model = WaveNet(num_codes=12, latent_length=24, residual_channels=8, skip_channels=8).eval()
    known = torch.randint(0, 12, (5, 24))
    known[:, 8:14] = -1
    codes, agreement, own = model.infill(known, seed=3)
    assert torch.equal(codes[:, :8], known[:, :8]) and torch.equal(codes[:, 14:], known[:, 14:])
    # the weights are the teacher-forced log-probabilities of the known codes after the drawn ones, and of the drawn
    log_p = torch.log_softmax(model(codes).float(), dim=1).gather(1, codes[:, None])[:, 0]
    torch.testing.assert_close(agreement, log_p[:, 14:].sum(dim=1), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(own, log_p[:, 8:14].sum(dim=1), rtol=1e-5, atol=1e-5)
    nothing_known = torch.full((3, 24), -1)
    drawn, zero, _ = model.infill(nothing_known, seed=4)
    assert torch.equal(drawn, model.generate(3, seed=4)) and not zero.any()  # generation is infill of nothing known
    naive, naive_weight, _ = model.infill(known, seed=3, cached=False)
    assert torch.equal(naive, codes) and torch.allclose(naive_weight, agreement, atol=1e-4)


def test_infill_guide_steers_the_drawn_codes_row_group_by_row_group():
    torch.manual_seed(0)
    model = WaveNet(num_codes=12, latent_length=24, residual_channels=8, skip_channels=8).eval()
    known = torch.full((4, 24), -1)
    known[:, :4] = 1
    guide = torch.zeros(2, 24, 12)
    guide[0, :, 5], guide[1, :, 7] = 1e4, 1e4  # rows 0-1 follow guide 0, rows 2-3 guide 1
    codes, _, own = model.infill(known, seed=0, guide=guide)
    assert (codes[:, :4] == 1).all() and (codes[:2, 4:] == 5).all() and (codes[2:, 4:] == 7).all()
    unguided, _, _ = model.infill(known, seed=0)
    assert not (unguided[:, 4:] == 5).all()  # the prior alone would not draw them
    log_p = torch.log_softmax(model(codes).float(), dim=1).gather(1, codes[:, None])[:, 0]
    torch.testing.assert_close(own, log_p[:, 4:].sum(dim=1), rtol=1e-5, atol=1e-5)  # weighed by the prior alone


def test_impute_fills_gaps_and_leaves_observed_samples_unchanged(shipped):
    x = ecg_like(30, RATE, seed=1)
    holed = x.copy()
    holed[2500:3000] = np.nan  # 2 s inside
    holed[:40] = np.nan  # at the start
    holed[-100:] = np.nan  # at the end
    out = shipped.impute(holed, RATE, draws=3, seed=0)
    assert out.signals.shape == (3, len(x), 1) and np.isfinite(out.signals).all()
    observed = np.isfinite(holed)
    for draw in out.signals[:, :, 0]:
        np.testing.assert_array_equal(draw[observed], holed[observed].astype(np.float32))
    assert out.filled[:, 0].sum() == (~observed).sum() and (out.spread[out.filled] > 0).any()
    inside = out.signals[0, 2500:3000, 0]
    assert inside.std() > 0.1 * x[2500:3000].std()  # beats, not a flat line
    typical = np.median(np.abs(np.diff(x)))  # the recording's own sample-to-sample change
    for draw in out.signals[:, :, 0].astype(np.float64):  # no step onto the recording at the gaps' edges
        steps = [abs(draw[i] - draw[j]) for i, j in ((2500, 2499), (2999, 3000), (39, 40))]
        assert max(steps) < typical, steps  # (a QRS detector reads a step as a beat; they were 2-3 times typical)
    again = shipped.impute(holed, RATE, draws=3, seed=0)
    np.testing.assert_array_equal(again.signals, out.signals)  # seeded
    # a recording at another rate comes back at its own rate
    at_360 = shipped.impute(np.interp(np.arange(0, len(x), RATE / 360), np.arange(len(x)), holed), 360.0)
    assert at_360.sampling_rate_hz == 360.0 and np.isfinite(at_360.signals).all()


def test_a_fill_is_put_at_the_isoelectric_level_around_its_gap():
    from tsvq.repair import _joined

    x = ecg_like(12, RATE, seed=4)
    missing = np.zeros(len(x), dtype=bool)
    missing[1000:1500] = True
    raised = x + 0.4  # a fill with the right beats decoded 0.4 mV too high
    joined = _joined(np.where(missing, np.nan, x), raised, missing, np.zeros(len(x)), RATE)
    assert np.abs(joined[missing] - x[missing]).max() < 0.1  # back where the recording sits, beats kept
    assert np.isnan(joined).sum() == 0 and np.array_equal(joined[~missing], x[~missing])
    short = np.zeros(len(x), dtype=bool)
    short[1000:1030] = True  # 0.12 s: its median is wherever in the beat it falls; its ends meet the recording
    tilted = raised + np.linspace(0.0, 0.2, len(x))  # decoded too high, and more so to the right
    joined = _joined(np.where(short, np.nan, x), tilted, short, np.zeros(len(x)), RATE)
    np.testing.assert_allclose(joined[1012:1018], x[1012:1018], atol=0.01)  # the edges follow the recording's course
    np.testing.assert_allclose(joined[short], x[short], atol=0.08)  # (here, noise a band-limited signal lacks)


def test_the_mean_of_the_draws_is_pulled_to_the_level_where_they_disagree():
    rng = np.random.default_rng(0)
    filled = np.zeros((2000, 1), dtype=bool)
    filled[800:1200] = True
    observed = np.full((2000, 1), 0.3)  # the level around the gap
    agree = np.repeat(observed[None], 16, axis=0)
    agree[:, 800:1200, 0] = 1.0 + 0.01 * rng.standard_normal((16, 400))  # sure of a 1 mV plateau
    mean = Repaired(agree, filled, RATE).mean
    np.testing.assert_allclose(mean[800:1200, 0], agree[:, 800:1200, 0].mean(axis=0), atol=1e-3)
    disagree = agree.copy()
    disagree[:, 800:1200, 0] = 0.3 + rng.standard_normal((16, 400))  # noise about the level: the mean of 16 is too
    mean = Repaired(disagree, filled, RATE).mean
    raw = disagree.mean(axis=0)
    assert np.abs(mean[800:1200, 0] - 0.3).mean() < 0.2 * np.abs(raw[800:1200, 0] - 0.3).mean()
    np.testing.assert_array_equal(mean[~filled[:, 0]], raw[~filled[:, 0]])  # observed samples as they are
    assert np.array_equal(Repaired(disagree[:1], filled, RATE).mean, disagree[0])  # one draw is its own mean


def test_linear_prediction_continues_a_wave_and_meets_both_sides():
    from tsvq.linear_prediction import ar_bridge, ar_continue

    t = np.arange(3000) / RATE
    wave = 1.5 + np.sin(2 * np.pi * 1.3 * t) + 0.3 * np.sin(2 * np.pi * 7 * t)  # on a 1.5 mV offset
    np.testing.assert_allclose(ar_continue(wave[:2000], 250, 16), wave[2000:2250], atol=1e-3)
    noise = 2.0 + np.random.default_rng(0).standard_normal(2000)  # nothing to predict: its level
    assert abs(ar_continue(noise, 500, 16)[-100:].mean() - 2.0) < 0.2
    left, right = np.full(1000, -1.0), np.full(1000, 3.0)
    bridge = ar_bridge(left, right, 400, 16)  # each side's level at its own edge
    assert abs(bridge[0] + 1.0) < 0.05 and abs(bridge[-1] - 3.0) < 0.05 and np.all(np.diff(bridge) > 0)
    np.testing.assert_allclose(ar_bridge(left, None, 50, 16), -1.0)  # a continuation: the left side alone


def test_the_mean_is_the_linear_prediction_where_the_timing_is_unsure():
    from tsvq.linear_prediction import ar_bridge, ar_order

    rng = np.random.default_rng(1)
    x = ecg_like(12, RATE, seed=3)
    filled = np.zeros((len(x), 1), dtype=bool)
    filled[1500:2000] = True
    draws = np.repeat(x[None, :, None], 8, axis=0).astype(np.float32)
    draws[:, 1500:2000, 0] = 1.0 + 0.01 * rng.standard_normal((8, 500))  # draws that agree on a wrong plateau
    unsure = filled.copy()
    mean = Repaired(draws, filled, RATE, unsure).mean[:, 0]
    after = x[2000:3000]
    expected = ar_bridge(x[:1500].astype(np.float32)[-2000:], after.astype(np.float32), 500, ar_order(RATE))
    np.testing.assert_allclose(mean[1500:2000], expected, atol=1e-4)
    sure = Repaired(draws, filled, RATE, np.zeros_like(filled)).mean[:, 0]
    np.testing.assert_allclose(sure[1500:2000], draws[:, 1500:2000, 0].mean(axis=0), atol=1e-3)  # trusted draws
    np.testing.assert_array_equal(mean[~filled[:, 0]], draws[0, ~filled[:, 0], 0])


def test_forecast_continues_the_recording(shipped):
    x = ecg_like(12, RATE, seed=2)
    out = shipped.forecast(x, RATE, 2.0, draws=2)
    assert out.signals.shape == (2, len(x) + 500, 1) and np.isfinite(out.signals).all()
    np.testing.assert_array_equal(out.signals[0, : len(x), 0], x.astype(np.float32))
    assert not np.array_equal(out.signals[0, len(x) :], out.signals[1, len(x) :])
    for seconds in (0, float("inf"), float("nan")):
        with pytest.raises(ConfigError, match="seconds must be a positive, finite number"):
            shipped.forecast(x, RATE, seconds)


def test_the_api_names_wrong_types_and_a_transposed_recording_in_one_line(shipped):
    """What a Python user gets wrong first: a recording passed as (C, L), a rate or seed of the wrong type, a
    forecast shorter than a sample; one named error each, not a TypeError from deep inside (or, transposed, thousands
    of one-sample leads that each fail for another reason)."""
    x = ecg_like(12, RATE, seed=4)
    gappy = x.copy()
    gappy[1000:1100] = np.nan
    transposed = r"signal: shape \(1, 3000\) has more channels \(3000\) than samples \(1\); .* transpose it"
    for call in (shipped.impute, shipped.denoise, shipped.forecast, shipped.compress):
        args = (gappy[None], RATE, 1.0) if call == shipped.forecast else (gappy[None], RATE)
        with pytest.raises(
            DataError, match=transposed.replace("signal", "compress" if call == shipped.compress else "signal")
        ):
            call(*args)
    with pytest.raises(DataError, match=transposed.replace("signal", "preprocess")):
        shipped.preprocess(gappy[None], RATE)
    assert shipped.preprocess(x, RATE).shape == (3000, 1)  # one lead as (L,), as impute and compress take it
    rate = r"sampling rate must be a positive number of Hz, got '250'"
    for call in (shipped.impute, shipped.denoise, shipped.compress):
        with pytest.raises(DataError, match=rate):
            call(gappy, "250")
    with pytest.raises(DataError, match=rate):
        shipped.encode(x[None, :2048, None].astype(np.float32), sampling_rate_hz="250")
    for seed in ("a", -1, 1.5):
        with pytest.raises(ConfigError, match=f"seed must be an integer of at least 0, got {seed!r}"):
            shipped.impute(gappy, RATE, seed=seed)
        with pytest.raises(ConfigError, match=f"seed must be an integer of at least 0, got {seed!r}"):
            shipped.sample(1, seed=seed)
    with pytest.raises(ConfigError, match="signal: a forecast of 0.0001 s is shorter than one sample at 250 Hz"):
        shipped.forecast(x, RATE, 1e-4)
    with pytest.raises(ConfigError, match="seconds must be a positive, finite number, got '2'"):
        shipped.forecast(x, RATE, "2")
    counted = shipped.impute(gappy, RATE, draws=np.int64(2), seed=np.int64(1))  # counts read out of arrays
    assert counted.signals.shape == (2, 3000, 1) and np.isfinite(counted.signals).all()


def test_impute_refuses_what_it_cannot_do(shipped):
    with pytest.raises(DataError, match="fewer than two observed samples"):
        shipped.impute(np.full(3000, np.nan), RATE)
    with pytest.raises(ConfigError, match="draws must be an integer of at least 1"):
        shipped.impute(ecg_like(10, RATE), RATE, draws=0)
    with pytest.raises(ConfigError, match="top_p = 2.0: a probability, at most 1"):
        shipped.impute(np.where(np.arange(3000) < 100, np.nan, ecg_like(12, RATE)), RATE, top_p=2.0)
    with pytest.raises(ConfigError, match="choose must be 'sample' or 'likeliest'"):
        shipped.impute(ecg_like(10, RATE), RATE, choose="best")
    with pytest.raises(DataError, match="expected one recording"):
        shipped.impute(np.zeros((2, 3, 4)), RATE)
    gappy = np.where(np.arange(3000) < 100, np.nan, ecg_like(12, RATE))
    with pytest.raises(ConfigError, match="filling gaps needs a WaveNet, MaskGIT or diffusion prior in the pipeline"):
        Pipeline(shipped.codec, {}).impute(gappy, RATE)
    with pytest.raises(ConfigError, match="impute: diffusion options: unknown key"):
        shipped.impute(gappy, RATE, prior="diffusion", top_p=0.9)  # a WaveNet option
    clean = ecg_like(10, RATE)
    assert np.array_equal(shipped.impute(clean, RATE).signals[0, :, 0], clean.astype(np.float32))
    long_gap = ecg_like(20, RATE)
    long_gap[1000:2000] = np.nan  # 4 s
    with pytest.raises(DataError, match=r"signal: channel 0 has a gap of 4.0 s at 4.0 s, longer than max_gap_s=3"):
        shipped.impute(long_gap, RATE, max_gap_s=3)
    with pytest.raises(DataError, match="longer than max_gap_s=1"):
        shipped.forecast(clean, RATE, 2.0, max_gap_s=1)
    with pytest.raises(DataError, match=r"^signal: a forecast of 1e\+09 s is longer than max_gap_s=60"):
        shipped.forecast(clean, RATE, 1e9)  # refused before 2 TB of NaN are allocated
    assert np.isfinite(shipped.impute(long_gap, RATE, max_gap_s=None, candidates=2).signals).all()
    # a disconnected lead, or too little observed signal to continue from: named, before any drawing
    flat = np.where(np.arange(3000) < 100, np.nan, 0.25)
    with pytest.raises(DataError, match=r"^100: channel 0 is flat \(every observed sample 0.25\): a disconnected lead"):
        shipped.impute(flat, RATE, where="100")
    with pytest.raises(DataError, match=r"^100: channel 0 is flat"):
        shipped.forecast(flat[100:], RATE, 1.0, where="100")
    with pytest.raises(DataError, match=r"^signal: 3 s observed, shorter than one window of the pipeline \(4.096 s\)"):
        shipped.forecast(clean[:750], RATE, 1.0)
    with pytest.raises(DataError, match=r"^100: channel '0' has a band-passed spread of .* check its unit$"):
        shipped.impute(1000 * gappy, RATE, where="100")  # microvolts given to a pipeline in mV
    with pytest.raises(DataError, match="too short to continue from"):
        shipped.impute(np.where(np.arange(2500) < 1600, np.nan, clean), RATE)  # 10 s, of which 3.6 s observed


def test_the_commands_write_the_repaired_record(tmp_path, capsys):
    x = ecg_like(20, 360.0, seed=3)
    x[3000:3500] = np.nan
    other = 0.5 * ecg_like(20, 360.0, seed=4)
    other[:100] = np.nan  # a lead the pipeline does not repair: carried as recorded, gaps and all
    write_record(tmp_path, "gappy", np.stack([x, other], axis=1), 360.0, ["MLII", "V1"])
    assert not main(["impute", str(tmp_path / "gappy"), "--out", str(tmp_path / "filled"), "--draws", "2"])
    said = capsys.readouterr().out
    assert "(imputed by tsvq (ecg-single-lead): MLII; V1 as recorded): 1.39 s filled in 1 stretch(es)" in said
    assert "2 draw(s); spread" in said
    import wfdb

    filled = wfdb.rdrecord(str(tmp_path / "filled"))
    gappy = wfdb.rdrecord(str(tmp_path / "gappy"))
    assert filled.sig_name == ["MLII", "V1", "MLII_draw2", "MLII_mean"]
    assert filled.comments[0] == "imputed by tsvq (ecg-single-lead): MLII; V1 as recorded"
    assert np.allclose(filled.p_signal[:, 1], gappy.p_signal[:, 1], atol=1e-4, equal_nan=True)
    assert not np.isnan(np.delete(filled.p_signal, 1, axis=1)).any()
    draws, mean = filled.p_signal[:, [0, 2]].T[..., None], filled.p_signal[:, 3]
    expected = Repaired(draws, np.isnan(x)[:, None], 360.0).mean[:, 0]  # the draws' (shrunk) mean
    assert np.allclose(mean, expected, atol=5e-3) and not np.allclose(draws[0], draws[1], atol=2e-3)
    # the same record in microvolts: filled as millivolts, written back in microvolts
    wfdb.wrsamp("gappy_uv", fs=360.0, units=["uV", "mV"], sig_name=["MLII", "V1"], fmt=["32", "16"],
                p_signal=gappy.p_signal * [1000, 1], adc_gain=[1000.0, 1000.0], baseline=[0, 0],
                write_dir=str(tmp_path))  # fmt: skip
    assert not main(["impute", str(tmp_path / "gappy_uv"), "--out", str(tmp_path / "filled_uv"), "--draws", "2"])
    in_uv = wfdb.rdrecord(str(tmp_path / "filled_uv"))
    assert in_uv.units == ["uV", "mV", "uV", "uV"] and "draws in the filled stretches" in capsys.readouterr().out
    assert np.allclose(in_uv.p_signal[:, [0, 2, 3]] / 1000, filled.p_signal[:, [0, 2, 3]], atol=1e-4)
    before = (tmp_path / "filled.dat").read_bytes()
    assert main(["impute", str(tmp_path / "gappy"), "--out", str(tmp_path / "filled")]) == 2
    assert "filled.hea: already exists; pass --overwrite" in capsys.readouterr().err
    assert main(["impute", str(tmp_path / "gappy"), "--out", str(tmp_path / "short"), "--max-gap", "1"]) == 2
    said = capsys.readouterr().err  # the record named, not "signal"
    assert f"{tmp_path / 'gappy'}: channel 0 has a gap of 1.4 s at 8.3 s, longer than max_gap_s=1" in said
    assert not (tmp_path / "short.hea").exists()
    assert (tmp_path / "filled.dat").read_bytes() == before  # nothing overwritten without --overwrite
    forecast = ["forecast", str(tmp_path / "filled"), "--seconds", "1.5", "--choose", "likeliest", "--top-p", "0.9"]
    assert not main([*forecast, "--out", str(tmp_path / "longer")])
    longer = wfdb.rdrecord(str(tmp_path / "longer"))
    assert longer.sig_len == filled.sig_len + 540 and math.isclose(longer.fs, 360.0)
    assert longer.sig_name == filled.sig_name and np.isnan(longer.p_signal[-540:, 1:]).all()
    assert main([*forecast, "--draws", "2", "--out", str(tmp_path / "twice")]) == 2
    assert "filled: the record already has channel(s) MLII_draw2, MLII_mean" in capsys.readouterr().err
    assert not (tmp_path / "twice.hea").exists()


def test_a_bedside_record_is_repaired_on_its_first_ecg_lead_not_its_respiration(tmp_path, capsys):
    """BIDMC-style headers list respiration (pm) and PPG (NU) before the ECG leads; a pipeline whose lead has no
    name in the record (the shipped one codes any lead, 'signal') takes the first channel in its unit, not the
    first channel (which it then refused: "in 'pm', but the pipeline codes 'mV'")."""
    import wfdb

    from tsvq.data import read_record

    rate = 125.0
    ecg = ecg_like(12, rate, seed=5)
    holed = ecg.copy()
    holed[700:760] = np.nan
    rng = np.random.default_rng(0)
    others = np.stack([np.sin(np.arange(len(ecg)) / 60), 0.5 + 0.1 * rng.standard_normal(len(ecg))], axis=1)
    wfdb.wrsamp("bedside", fs=rate, units=["pm", "NU", "mV"], sig_name=["RESP", "PLETH", "II"], fmt=["16"] * 3,
                p_signal=np.column_stack([others, holed]), adc_gain=[1000.0] * 3, baseline=[0] * 3,
                write_dir=str(tmp_path))  # fmt: skip
    assert not main(["impute", str(tmp_path / "bedside"), "--out", str(tmp_path / "filled")])
    assert "imputed by tsvq (ecg-single-lead): II; RESP, PLETH as recorded" in capsys.readouterr().out
    filled = wfdb.rdrecord(str(tmp_path / "filled"))
    assert np.isfinite(filled.p_signal).all() and filled.units == ["pm", "NU", "mV"]
    np.testing.assert_allclose(filled.p_signal[:, :2], others, atol=1e-3)  # the other channels as recorded
    from tsvq.pipeline import Pipeline

    compressed = Pipeline.from_pretrained("ecg-single-lead").compress(read_record(tmp_path / "filled"))
    assert compressed.channel_names == ["II"]
