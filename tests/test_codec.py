"""Codec: quantizer math, codebook health mechanisms, shapes, training signal, save/load, multi-process sync."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from tests.conftest import TINY_CODEC, free_port
from tsvq.codec import VQVAE, VectorQuantizer, kmeans, nearest_codes
from tsvq.codec.metrics import codebook_report, prd, prdn, snr_db
from tsvq.codec.quantizer import ResidualVectorQuantizer
from tsvq.errors import ConfigError, DataError


def test_nearest_codes_equals_brute_force():
    z, codebook = torch.randn(500, 16), torch.randn(64, 16)
    brute = torch.cdist(z, codebook).argmin(dim=1)
    assert torch.equal(nearest_codes(z, codebook), brute)


@pytest.mark.parametrize("mode", ["ema", "loss"])
def test_straight_through_gradient_reaches_the_encoder(mode):
    model = VQVAE(window_length=64, hidden_channels=8, num_res_blocks=1, latent_dim=8, num_codes=16, codebook_mode=mode)
    out = model(torch.randn(4, 64, 1))
    out.loss.backward()
    assert model.encoder.net[0].weight.grad is not None and model.encoder.net[0].weight.grad.abs().sum() > 0
    if mode == "loss":
        assert model.quantizer.quantizers[0].codebook.grad.abs().sum() > 0


def test_ema_update_matches_hand_computation():
    q = VectorQuantizer(
        num_codes=3, dim=2, mode="ema", decay=0.9, epsilon=0.0, kmeans_init=False, restart_dead_codes=False
    )
    q.codebook.copy_(torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]]))
    q.ema_embed_sum.copy_(q.codebook.clone())
    q.ema_cluster_size.fill_(1.0)
    z = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [9.0, 1.0]])
    q.train()
    out = q(z)
    assert out.codes.tolist() == [0, 0, 1]
    size = 0.9 * torch.ones(3) + 0.1 * torch.tensor([2.0, 1.0, 0.0])
    embed_sum = 0.9 * torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]]) + 0.1 * torch.tensor(
        [[0.0, 0.0], [9.0, 1.0], [0.0, 0.0]]
    )
    expected = embed_sum / size[:, None]  # epsilon = 0: Laplace smoothing leaves sizes as they are
    assert torch.allclose(q.codebook, expected, atol=1e-6)
    assert torch.allclose(q.ema_cluster_size, size)


def test_dead_codes_are_revived_from_encoder_outputs():
    q = VectorQuantizer(num_codes=8, dim=2, mode="ema", kmeans_init=False, dead_code_threshold=0.5)
    q.codebook.copy_(torch.tensor([[0.0, 0.0]] + [[100.0 + i, 100.0] for i in range(7)]))
    q.ema_embed_sum.copy_(q.codebook.clone())
    q.usage_ema[1:] = 0.0  # seven codes never used
    q.train()
    z = torch.randn(256, 2)
    out = q(z)
    assert int(out.dead_codes) == 7
    assert q.codebook[1:].abs().max() < 10  # moved onto the data
    assert (q.usage_ema[1:] == 1.0).all() and (q.ema_cluster_size[1:] == 1.0).all()


def test_kmeans_init_places_codes_on_the_data():
    centres = torch.tensor([[5.0, 5.0], [-5.0, 5.0], [0.0, -5.0]])
    data = torch.cat([c + 0.1 * torch.randn(100, 2) for c in centres])
    centroids, counts = kmeans(data, 3, iterations=10, generator=torch.Generator().manual_seed(0))
    assert counts.sum() == 300
    assert torch.cdist(centres, centroids).min(dim=1).values.max() < 0.5
    q = VectorQuantizer(num_codes=3, dim=2, kmeans_init=True)
    q.train()
    q(data)
    assert bool(q.initialized) and torch.cdist(centres, q.codebook).min(dim=1).values.max() < 1.0


@pytest.mark.parametrize("channels,quantizers", [(1, 1), (3, 1), (1, 3)])
def test_shapes_at_the_public_api(channels, quantizers):
    model = VQVAE(
        in_channels=channels,
        channel_names=tuple(f"c{i}" for i in range(channels)),
        units=("mV",) * channels,
        norm_mean=(0.0,) * channels,
        norm_std=(1.0,) * channels,
        window_length=128,
        hidden_channels=8,
        num_res_blocks=1,
        latent_dim=16,
        code_dim=4,
        num_codes=32,
        num_quantizers=quantizers,
        downsample_factor=4,
    )
    x = np.random.default_rng(0).normal(size=(5, 128, channels)).astype(np.float32)
    encoded = model.encode(x)
    assert encoded.vectors.shape == (5, 32, 4)
    assert (
        encoded.codes.shape == ((5, 32) if quantizers == 1 else (5, 32, quantizers))
        and encoded.codes.dtype == torch.int64
    )
    assert model.decode(encoded.codes).shape == (5, 128, channels)
    assert torch.allclose(model.decode(encoded.codes), model.decode(encoded.vectors), atol=1e-5)
    assert torch.allclose(model.codes_to_vectors(encoded.codes), encoded.vectors, atol=1e-5)


def test_bad_input_to_encode_and_decode_is_named():
    model = VQVAE(window_length=64, hidden_channels=8, num_res_blocks=1, latent_dim=8, num_codes=16)
    with pytest.raises(DataError, match=r"shape \(B, L, C\)"):
        model.encode(np.zeros((2, 64)))
    with pytest.raises(DataError, match="C = 1"):
        model.encode(np.zeros((2, 64, 3)))
    with pytest.raises(DataError, match="NaN"):
        model.encode(np.full((1, 64, 1), np.nan))
    with pytest.raises(DataError, match="multiple of the codec's downsample factor"):
        model.encode(np.zeros((1, 60, 1)))
    with pytest.raises(DataError, match=r"code indices must lie in \[0, 16\)"):
        model.decode(torch.tensor([[0, 16]]))
    with pytest.raises(DataError, match=r"vectors must have shape \(B, L', 16\), got \(1, 2\); codes must be integers"):
        model.decode(np.array([[1.0, 2.0]]))  # codes given as floats
    with pytest.raises(DataError, match="expected a NumPy array"):
        model.encode([[0.0]])
    for empty in ((0, 64, 1), (2, 0, 1)):  # torch's own errors: a reshape, a kernel larger than the input
        with pytest.raises(
            DataError, match=rf"at least one window of at least one sample, got \({empty[0]}, {empty[1]}, 1\)"
        ):
            model.encode(np.zeros(empty, dtype=np.float32))


def _fit_sines(steps: int, num_quantizers: int = 1) -> tuple[VQVAE, list[float]]:
    """A small codec trained on one batch of eight sines; returns it and its reconstruction loss per step."""
    torch.manual_seed(0)
    model = VQVAE(
        window_length=128,
        hidden_channels=16,
        num_res_blocks=1,
        latent_dim=16,
        num_codes=32,
        downsample_factor=4,
        num_quantizers=num_quantizers,
        code_dim=None,
        reconstruction_loss_type="mse",
    )
    t = torch.linspace(0, 8 * np.pi, 128)
    x = torch.stack([torch.sin(t * (1 + 0.1 * i))[:, None] for i in range(8)])
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(steps):
        out = model(x)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        losses.append(float(out.reconstruction_loss))
    return model, losses


def test_overfitting_one_batch_drives_the_loss_down():
    losses = _fit_sines(150)[1]
    assert np.mean(losses[-10:]) < 0.1 * np.mean(losses[:5])


def test_save_load_round_trip_is_exact(tmp_path):
    model = VQVAE(
        window_length=64,
        hidden_channels=8,
        num_res_blocks=1,
        latent_dim=8,
        num_codes=16,
        norm_mean=(0.3,),
        norm_std=(2.0,),
    )
    model.train()
    model(torch.randn(4, 64, 1))  # k-means init and EMA buffers change
    model.save_pretrained(tmp_path / "codec")
    loaded = VQVAE.from_pretrained(tmp_path / "codec")
    assert loaded.config.norm_mean == [0.3] or tuple(loaded.config.norm_mean) == (0.3,)
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    x = torch.randn(3, 64, 1)
    assert torch.equal(model.reconstruct(x), loaded.reconstruct(x))


def test_metrics_known_values():
    x = np.sin(np.linspace(0, 20, 400))[None, :, None] + 5.0
    noisy = x + 0.01 * np.sign(np.random.default_rng(0).normal(size=x.shape))
    assert prd(x, x)[0] == 0 and prdn(x, x)[0] == 0
    assert prdn(x, noisy)[0] > prd(x, noisy)[0]  # the DC offset flatters PRD, not PRDN
    assert snr_db(x, noisy)[0] == pytest.approx(-20 * np.log10(prdn(x, noisy)[0] / 100))
    report = codebook_report(np.array([[0, 0, 1, 1]]), 4)
    assert report["usage_percent"] == 50 and report["perplexity"] == pytest.approx(2.0) and report["dead_codes"] == 2


def test_reconstruction_losses_weigh_windows_as_documented():
    from tsvq.codec.model import reconstruction_error

    torch.manual_seed(0)
    target = torch.randn(3, 2, 50) * torch.tensor([0.5, 1.0, 4.0]).view(3, 1, 1) + 2.0  # quiet, unit, loud windows
    reconstruction = target + 0.1 * torch.randn_like(target) * target.std(dim=(1, 2), keepdim=True)
    assert reconstruction_error(reconstruction, target) == pytest.approx(float(((reconstruction - target) ** 2).mean()))
    relative = reconstruction_error(reconstruction, target, "relative")
    # PRDN per window from the metrics module, on (B, L, C): the relative loss is its mean square
    per_window = prdn(target.transpose(1, 2).numpy(), reconstruction.transpose(1, 2).numpy()) / 100
    assert float(relative) == pytest.approx(float(np.mean(per_window**2)), rel=1e-5)
    # scaling a window and its reconstruction changes the MSE by the square of the scale, the relative loss not at all
    scale = torch.tensor([10.0, 1.0, 0.1]).view(3, 1, 1)
    assert float(reconstruction_error(reconstruction * scale, target * scale, "relative")) == pytest.approx(
        float(relative), rel=1e-5
    )
    assert float(reconstruction_error(reconstruction * scale, target * scale)) != pytest.approx(
        float(reconstruction_error(reconstruction, target)), rel=0.1
    )
    # a flat window is floored, not divided by zero
    flat = torch.zeros(1, 1, 50)
    assert torch.isfinite(reconstruction_error(flat + 0.01, flat, "relative"))
    with pytest.raises(ValueError, match="reconstruction_loss_type"):
        VQVAE(
            window_length=64,
            hidden_channels=8,
            num_res_blocks=1,
            latent_dim=8,
            num_codes=16,
            reconstruction_loss_type="l1",
        )


def test_spectral_loss_sees_out_of_band_noise_that_the_squared_error_barely_does():
    """The multi-resolution STFT loss is zero for a perfect reconstruction and, unlike the squared error, costs more
    for faint noise where the target has no power (above its band) than for a larger error inside its band."""
    from tsvq.codec.model import multi_resolution_stft_loss, reconstruction_error

    torch.manual_seed(0)
    t = torch.arange(512) / 250.0
    target = (torch.sin(2 * torch.pi * 5 * t) + 0.5 * torch.sin(2 * torch.pi * 12 * t)).repeat(
        4, 1, 1
    )  # (B, C, L), < 20 Hz
    assert float(multi_resolution_stft_loss(target, target)) == pytest.approx(0.0, abs=1e-6)
    in_band = target * 1.1  # a 10% gain error: all of it where the target has power
    high = torch.sin(2 * torch.pi * 100 * t + torch.rand(4, 1, 1) * 6.28)
    out_of_band = target + 0.01 * high  # faint 100 Hz hum
    assert float(reconstruction_error(out_of_band, target)) < float(reconstruction_error(in_band, target)) / 100
    assert float(multi_resolution_stft_loss(out_of_band, target)) > float(multi_resolution_stft_loss(in_band, target))
    with pytest.raises(ValueError, match="shorter than every STFT size"):
        multi_resolution_stft_loss(target[..., :16], target[..., :16])


def test_spectral_loss_weight_adds_the_spectral_loss_to_the_codec_loss():
    kwargs = dict(window_length=64, hidden_channels=8, num_res_blocks=1, latent_dim=8, num_codes=16)
    torch.manual_seed(0)
    plain = VQVAE(**kwargs)
    torch.manual_seed(0)
    weighted = VQVAE(**kwargs, spectral_loss_weight=0.5)
    x = torch.randn(4, 64, 1)
    out_plain, out_weighted = plain(x), weighted(x)
    assert out_plain.spectral_loss is None and out_weighted.spectral_loss is not None
    expected = out_plain.loss + 0.5 * out_weighted.spectral_loss
    assert out_weighted.loss.item() == pytest.approx(expected.item(), rel=1e-5)
    out_weighted.loss.backward()
    assert weighted.decoder.net[-1].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="spectral_loss_weight"):
        VQVAE(**kwargs, spectral_loss_weight=-1.0)


def test_residual_vq_refines_and_dropout_trains_prefixes():
    torch.manual_seed(0)
    z = torch.randn(2000, 4)
    rvq = ResidualVectorQuantizer(num_quantizers=3, num_codes=16, dim=4, kmeans_init=True)
    rvq.train()
    for _ in range(20):
        rvq(z)
    rvq.eval()
    errors = []
    codes = rvq(z)[0].codes
    for stages in (1, 2, 3):
        partial = rvq.lookup(codes[:, :stages])  # the first q stages' codes decode on their own: a lower bit rate
        assert torch.allclose(partial, sum(rvq.quantizers[i].lookup(codes[:, i]) for i in range(stages)), atol=1e-6)
        errors.append(float((partial - z).pow(2).mean()))
    assert errors[0] > errors[1] > errors[2]
    snapped, codes = rvq.snap(z)
    assert torch.allclose(snapped, rvq.lookup(codes), atol=1e-5)
    with pytest.raises(IndexError, match="expected 1 to 3 code"):
        rvq.lookup(torch.zeros(5, 4, dtype=torch.long))


def _sync_worker(rank: int, world: int, port: int, folder: str, mode: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(rank)  # different data and different random draws on each rank
    q = VectorQuantizer(num_codes=16, dim=4, mode=mode, kmeans_init=True, dead_code_threshold=0.5)
    q.train()
    optimizer = torch.optim.SGD(q.parameters(), lr=0.1) if mode == "loss" else None
    for _ in range(30):
        out = q(torch.randn(64, 4) + rank)
        if optimizer:
            optimizer.zero_grad()
            out.loss.backward()
            for p in q.parameters():  # what DDP does to gradients
                torch.distributed.all_reduce(p.grad)
                p.grad /= world
            optimizer.step()
    torch.save(q.codebook.detach().clone(), os.path.join(folder, f"codebook_{rank}.pt"))
    torch.distributed.destroy_process_group()


@pytest.mark.parametrize("mode", ["ema", "loss"])
def test_two_process_gloo_training_keeps_identical_codebooks(tmp_path, mode):
    mp.spawn(_sync_worker, args=(2, free_port(), str(tmp_path), mode), nprocs=2, join=True)
    a = torch.load(tmp_path / "codebook_0.pt", weights_only=True)
    b = torch.load(tmp_path / "codebook_1.pt", weights_only=True)
    assert torch.equal(a, b)


def test_codebook_health_is_logged_every_logging_step_and_on_validation(tiny_runs):
    from tsvq.training.trackers import read_metrics

    rows = read_metrics(tiny_runs["codec"].parent / "logs")
    steps = [r for r in rows if "perplexity" in r]
    assert steps and all(
        {"usage", "dead_codes_restarted", "reconstruction_loss", "lr", "windows_per_s"} <= set(r) for r in steps
    )
    validation = [r for r in rows if "val/prdn" in r]
    assert validation and {"val/usage_percent", "val/perplexity"} <= set(validation[-1])
    summary = json.loads((tiny_runs["codec"].parent / "training_summary.json").read_text())
    assert summary["steps"] == 40 and summary["best_prdn"] == min(r["val/prdn"] for r in validation)
    curves = tiny_runs["codec"].parent / "training_curves.png"  # the same rows drawn, for a person to look at
    assert curves.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and curves.stat().st_size > 10_000
    # the whole stage config travels with the run: augmentation, store and model, not only the loop's settings
    assert TINY_CODEC.items() <= summary["stage_config"]["model"].items() and summary["stage_config"]["store"] == str(
        tiny_runs["store"]
    )
    assert set(summary["stage_config"]["augment"]) >= {"gain", "stretch", "time_warp"}


def test_augmentation_stretches_scales_and_flips_as_configured():
    from tsvq.errors import ConfigError
    from tsvq.training.augment import AugmentConfig, augment, time_stretch

    length = 101
    ramp = torch.arange(length, dtype=torch.float32).view(1, length, 1).repeat(2, 1, 3)
    assert torch.allclose(time_stretch(ramp, torch.ones(2)), ramp)
    stretched = time_stretch(ramp, torch.tensor([2.0, 0.5]))
    centre = (length - 1) / 2
    assert torch.allclose(stretched[0, 30:70, 0], centre + (ramp[0, 30:70, 0] - centre) / 2)  # slope halved
    assert stretched[1].min() >= 0 and stretched[1].max() <= length - 1  # mirrored back inside, never past the ends
    assert torch.allclose(stretched[1, 40:60, 0], centre + (ramp[1, 40:60, 0] - centre) * 2)

    x = torch.randn(64, 256, 1) + 3.0
    torch.manual_seed(0)
    flipped = augment(x, AugmentConfig(flip_probability=1.0))
    assert torch.allclose(flipped.mean(dim=1), x.mean(dim=1), atol=1e-5)
    assert torch.allclose(flipped - flipped.mean(dim=1, keepdim=True), -(x - x.mean(dim=1, keepdim=True)), atol=1e-5)
    config = AugmentConfig(gain=(0.5, 2.0), flip_probability=0.5, stretch=(0.8, 1.25))
    torch.manual_seed(1)
    first = augment(x, config)
    torch.manual_seed(1)
    assert torch.equal(first, augment(x, config))  # torch's generator (saved in checkpoints) drives it
    ratio = augment(x, AugmentConfig(gain=(0.5, 2.0))).std(dim=1) / x.std(dim=1)
    assert 0.5 - 1e-5 < ratio.min() and ratio.max() < 2.0 + 1e-5 and ratio.std() > 0.1  # gains vary within the range
    assert augment(x, AugmentConfig()) is x
    with pytest.raises(ConfigError, match="augment.gain"):
        AugmentConfig(gain=(2.0, 1.0))
    with pytest.raises(ConfigError, match="flip_probability"):
        AugmentConfig(flip_probability=1.5)


def test_time_and_magnitude_warps_vary_smoothly_within_a_window():
    from tsvq.errors import ConfigError
    from tsvq.training.augment import AugmentConfig, augment, magnitude_warp, time_warp

    length = 512
    ramp = torch.arange(length, dtype=torch.float32).view(1, length, 1).repeat(32, 1, 2)
    torch.manual_seed(0)
    warped = time_warp(ramp, 0.3, knots=16)
    # a ramp read at the warped positions is the positions: they start and end in place and never go back
    assert torch.allclose(warped[:, 0], ramp[:, 0]) and torch.allclose(warped[:, -1], ramp[:, -1], atol=1e-3)
    speed = warped[..., 0].diff(dim=1)
    assert (speed > 0).all() and torch.equal(warped[..., 0], warped[..., 1])  # every channel alike
    assert speed.max() / speed.min() > 1.5  # the local speed really varies (std 0.3 at 16 knots)
    # and smoothly: a knot every 34 samples, so the speed changes by a few hundredths a sample, never jumps
    assert (speed.diff(dim=1).abs() < 0.06).all()
    assert torch.allclose(time_warp(ramp, 0.0, knots=16), ramp, atol=1e-3)

    x = torch.randn(64, length, 1) + 3.0
    gains = (magnitude_warp(x, 0.2, knots=16) - x.mean(dim=1, keepdim=True)) / (x - x.mean(dim=1, keepdim=True))
    assert (gains > 0).all() and gains.std(dim=1).min() > 0.02  # positive gains that change along the window
    assert (gains[:, 1:] - gains[:, :-1]).abs().max() < 0.05
    config = AugmentConfig(time_warp=0.3, magnitude_warp=0.2)
    assert config.active
    torch.manual_seed(3)
    first = augment(x, config)
    torch.manual_seed(3)
    assert torch.equal(first, augment(x, config))
    with pytest.raises(ConfigError, match="augment.time_warp"):
        AugmentConfig(time_warp=-0.1)
    with pytest.raises(ConfigError, match="warp_knots"):
        AugmentConfig(magnitude_warp=0.1, warp_knots=1)


def _squared_error(model: VQVAE, x: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    return ((model.decode(codes) - x) ** 2).sum(dim=(1, 2))  # per window; norm_std is 1 here


def test_code_search_reaches_a_point_no_single_code_change_improves():
    from tsvq.codec.search import decoder_reach

    model = _fit_sines(60)[0].eval()
    t = torch.linspace(0, 8 * np.pi, 128)
    x = torch.stack([0.8 * torch.sin(1.37 * t) + 0.3 * torch.cos(3.1 * t), torch.sign(torch.sin(0.9 * t))])[
        ..., None
    ]  # unseen
    plain = model.encode(x).codes
    searched = model.encode(x, search=32, sweeps=6).codes
    assert searched.shape == plain.shape and searched.dtype == torch.int64
    before, after = _squared_error(model, x, plain), _squared_error(model, x, searched)
    assert (after <= before + 1e-6).all() and after.sum() < 0.9 * before.sum()  # never worse; here clearly better
    # brute force: every single (position, code) change of the searched codes; none may lower a window's error
    length = searched.shape[1]
    trials = searched[:, None, None, :].repeat(1, length, 32, 1)
    trials[:, torch.arange(length), :, torch.arange(length)] = torch.arange(32)  # trials[b, p, k]: code k at position p
    for w in range(len(x)):
        errors = _squared_error(model, x[w : w + 1].expand(length * 32, -1, -1), trials[w].reshape(-1, length))
        assert errors.min() >= after[w] - 1e-5 * after[w]
    # the measured reach bounds how far a code's effect spreads
    reach, f = decoder_reach(model, length), model.config.downsample_factor
    moved = plain[:1].clone()
    moved[0, length // 2] = (moved[0, length // 2] + 1) % 32
    changed = torch.nonzero((model.decode(moved) != model.decode(plain[:1]))[0, :, 0])[:, 0] // f
    assert len(changed) and (changed - length // 2).abs().max() <= reach < length // 2


def test_reaches_are_measured_once_per_codec_and_never_cut_short_by_the_probe_length():
    from tsvq.codec.search import _measured, decoder_reach

    calls = []

    def wide(length: int) -> int:  # a receptive field of 100 positions, seen only as far as the probe's ends
        calls.append(length)
        return min(100, length // 2 - 1)

    owner = torch.nn.Linear(1, 1)
    assert _measured(owner, "test", 64, 3, 0, wide) == 100 and calls == [64, 128, 256]
    assert _measured(owner, "test", 64, 3, 0, wide) == 100 and calls == [64, 128, 256]  # cached, not measured again
    model = _fit_sines(5)[0].eval()
    assert decoder_reach(model) == decoder_reach(model, 256) < 32  # a short receptive field: the length is moot


def test_code_search_gives_the_same_codes_however_the_candidates_are_batched():
    from tsvq.codec.search import search_codes

    model = _fit_sines(60)[0].eval()
    x = torch.sin(torch.linspace(0, 13 * np.pi, 256))[None, :, None] * torch.tensor([1.0, -0.7, 0.4])[:, None, None]
    with torch.no_grad():
        normalized = model.normalize(x.transpose(1, 2))
        z = model.project_in(model.encoder(normalized)).transpose(1, 2)
        codes = model.quantizer(z.reshape(-1, z.shape[-1]))[0].codes.view(3, -1, 1)
    one_per_call = search_codes(model, normalized, codes, z, candidates=8, positions_per_pass=1)
    all_in_one = search_codes(model, normalized, codes, z, candidates=8, positions_per_pass=10**6)
    assert torch.equal(one_per_call, all_in_one) and not torch.equal(one_per_call, codes)


def test_code_search_works_for_residual_codes_and_refuses_bad_settings():
    model = _fit_sines(60, num_quantizers=2)[0].eval()
    x = torch.sin(torch.linspace(0, 11 * np.pi, 128))[None, :, None] * torch.tensor([1.0, -0.6])[:, None, None]
    plain, searched = model.encode(x).codes, model.encode(x, search=8).codes
    assert searched.shape == plain.shape == (2, 32, 2)
    assert (_squared_error(model, x, searched) <= _squared_error(model, x, plain) + 1e-6).all()
    with pytest.raises(ConfigError, match="search must be >= 0"):
        model.encode(x, search=-1)


def test_codec_defaults_live_in_one_place_and_earlier_configs_keep_their_meaning(tmp_path):
    """``VQVAE()`` builds what ``CodecModelConfig()`` describes; a config saved before a setting existed loads with
    the value it meant then (an earlier codec trained with the squared error, today's default is relative)."""
    import dataclasses
    import json

    from tsvq.codec import CodecModelConfig
    from tsvq.safe_loading import load_model

    built = VQVAE(window_length=64)
    for name, value in dataclasses.asdict(CodecModelConfig()).items():
        assert built.config[name] == value, name
    model = VQVAE(window_length=64, hidden_channels=8, num_res_blocks=1, latent_dim=8, num_codes=16)
    model.save_pretrained(tmp_path / "codec")
    config_file = tmp_path / "codec" / "config.json"
    config = json.loads(config_file.read_text())
    assert config.pop("reconstruction_loss_type") == "relative"
    config_file.write_text(json.dumps(config))
    assert load_model(VQVAE, tmp_path / "codec").config.reconstruction_loss_type == "mse"
