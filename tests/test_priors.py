"""Diffusion and WaveNet priors, the pipeline object, and `tsvq sample`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import wfdb

from tests.conftest import TINY_CODEC, tiny_training
from tsvq.cli import main as cli_main
from tsvq.errors import CheckpointError, ConfigError, DataError
from tsvq.pipeline import Pipeline
from tsvq.priors import DiffusionPrior, WaveNet, sampling_scheduler, training_scheduler
from tsvq.priors.denoiser import DenoiserConfig, build_denoiser
from tsvq.priors.diffusion import terminal_snr


def test_pipeline_shapes_end_to_end(tiny_pipeline):
    pipe = Pipeline.from_pretrained(tiny_pipeline)
    assert pipe.window_length == 256 and pipe.sampling_rate_hz == 125
    out = pipe.sample(5, steps=5, progress=False)
    assert out.signals.shape == (5, 256, 1) and out.signals.dtype == np.float32
    assert out.codes.shape == (5, 64) and out.sampling_rate_hz == 125
    encoded = pipe.encode(out.signals)
    assert encoded.codes.shape == (5, 64) and encoded.vectors.shape == (5, 64, 16)
    assert pipe.decode(encoded.codes).shape == (5, 256, 1)
    # a continuous draw is never exactly on the codebook; what is decoded is the snapped draw, i.e. its codes
    assert 0 < out.info["snap_distance_relative"] < float("inf")
    np.testing.assert_allclose(pipe.decode(out.codes), out.signals, atol=1e-5)
    searched = pipe.encode(out.signals, search=4, sweeps=1)  # codes chosen by their decoding: never further away
    assert searched.codes.shape == (5, 64)
    error = lambda codes: ((pipe.decode(codes) - out.signals) ** 2).sum()  # noqa: E731
    assert error(searched.codes) <= error(encoded.codes) + 1e-6


def test_snapping_returns_only_codebook_vectors(tiny_pipeline):
    pipe = Pipeline.from_pretrained(tiny_pipeline)
    latents = torch.randn(3, 64, 16)
    snapped, codes = pipe.codec.snap(latents)
    codebook = pipe.codec.quantizer.quantizers[0].codebook
    assert torch.allclose(snapped, codebook[codes], atol=1e-6)
    brute = torch.cdist(latents.reshape(-1, 16), codebook).argmin(1).view(3, 64)
    assert torch.equal(codes, brute)


@pytest.mark.parametrize("sampler,steps", [("ddpm", 10), ("ddim", 10), ("dpm", 5), ("dpm-sde", 5)])
def test_scheduler_swap_without_retraining(tiny_pipeline, sampler, steps):
    pipe = Pipeline.from_pretrained(tiny_pipeline)
    out = pipe.sample(2, steps=steps, sampler=sampler, seed=1, progress=False)
    assert np.isfinite(out.signals).all() and out.info["sampler"] == sampler


def test_stochastic_sampler_draws_its_step_noise_from_the_seed(tiny_pipeline):
    """The SDE sampler adds noise at every step: the same seed gives the same windows, and its draws differ from the
    ODE sampler's from the same starting noise (the step noise is really added)."""
    prior = Pipeline.from_pretrained(tiny_pipeline).prior("diffusion")
    sde = [prior.sample_vectors(3, steps=8, sampler="dpm-sde", seed=seed, progress=False) for seed in (4, 4, 5)]
    assert torch.equal(sde[0], sde[1]) and not torch.equal(sde[0], sde[2])
    assert not torch.allclose(sde[0], prior.sample_vectors(3, steps=8, sampler="dpm", seed=4, progress=False))
    scheduler = sampling_scheduler("dpm-sde", training_scheduler().config)
    assert (scheduler.config.algorithm_type, scheduler.config.solver_order) == ("sde-dpmsolver++", 2)


def test_save_load_reproduces_samples(tiny_pipeline, tmp_path):
    pipe = Pipeline.from_pretrained(tiny_pipeline)
    again = Pipeline.from_pretrained(pipe.save_pretrained(tmp_path / "copy"))
    for prior, options in (("diffusion", {"steps": 5}), ("wavenet", {"temperature": 0.9})):
        a = pipe.sample(3, prior, seed=7, progress=False, **options).signals
        b = again.sample(3, prior, seed=7, progress=False, **options).signals
        assert np.array_equal(a, b)
    assert not np.array_equal(
        pipe.sample(3, steps=5, seed=7, progress=False).signals, pipe.sample(3, steps=5, seed=8, progress=False).signals
    )


def test_schedulers_keep_latents_unclipped_and_check_steps(tiny_pipeline):
    assert training_scheduler().config.clip_sample is False
    config = training_scheduler().config
    assert sampling_scheduler("ddim", config).config.clip_sample is False
    assert sampling_scheduler("dpm", config).config.algorithm_type == "dpmsolver++"
    pipe = Pipeline.from_pretrained(tiny_pipeline)
    with pytest.raises(ConfigError, match=r"steps must lie in \[1, 1000\]"):
        pipe.sample(1, steps=5000)
    with pytest.raises(ConfigError, match="sampler = 'euler': expected one of"):
        pipe.sample(1, sampler="euler")


@pytest.mark.parametrize(
    "denoiser,schedule",
    [
        ({"architecture": "unet"}, {}),
        ({"architecture": "unet", "attention_heads": 2}, {}),
        ({"architecture": "transformer"}, {}),
        ({"architecture": "unet"}, {"beta_schedule": "linear", "rescale_betas_zero_snr": True}),
    ],
)
def test_tiny_diffusion_prior_learns_a_single_mode(denoiser, schedule):
    """Trained on one latent pattern (v-prediction, the default), samples of every sampler land near it: with the
    UNet (with and without attention) and the transformer, and with a linear schedule rescaled to zero terminal SNR."""
    torch.manual_seed(0)
    mode = (
        torch.sin(torch.linspace(0, 6, 16))[None, None, :].repeat(1, 4, 1)
        * torch.tensor([1.0, -1.0, 0.5, 2.0])[None, :, None]
    )
    config = DenoiserConfig(**denoiser, block_out_channels=(16, 32), time_embedding_dim=32, width=32, depth=2, heads=2)
    model = build_denoiser(config, latent_channels=4, latent_length=16, num_classes=0)
    scheduler = training_scheduler(**schedule)
    assert scheduler.config.prediction_type == "v_prediction"
    if schedule:
        assert terminal_snr(scheduler) == 0.0
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(300):
        x0 = mode.repeat(32, 1, 1)
        noise = torch.randn_like(x0)
        t = torch.randint(0, 1000, (32,))
        loss = F.mse_loss(model(scheduler.add_noise(x0, noise, t), t), scheduler.get_velocity(x0, noise, t))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    prior = DiffusionPrior(model, dict(scheduler.config), torch.zeros(4), torch.ones(4))
    scale = mode.pow(2).mean().sqrt()
    for sampler, steps in (("dpm", 20), ("dpm-sde", 20), ("ddim", 20), ("ddpm", 100)):
        samples = prior.sample_vectors(8, steps=steps, sampler=sampler, seed=0, progress=False).transpose(1, 2)
        assert (samples - mode).pow(2).mean().sqrt() < 0.35 * scale, sampler
    noise_error = (torch.randn(8, 4, 16) - mode).pow(2).mean().sqrt()
    assert noise_error > 1.0 * scale


def test_transformer_denoiser_starts_as_identity_and_sees_the_label():
    """adaLN-zero: a fresh transformer predicts exactly zero; once its output layer moves, the class label changes
    the prediction and the "no label" token is a label of its own."""
    model = build_denoiser(DenoiserConfig(architecture="transformer", width=32, depth=2, heads=4), 4, 16, num_classes=3)
    x = torch.randn(5, 4, 16)
    assert model(x, 10, torch.tensor([0, 1, 2, 3, 0])).abs().max() == 0
    for parameter in model.parameters():
        torch.nn.init.normal_(parameter, std=0.2)
    labelled, unlabelled = model(x, 10, torch.zeros(5, dtype=torch.long)), model(x, 10, None)
    assert labelled.shape == (5, 4, 16) and (labelled - unlabelled).abs().max() > 1e-3
    with pytest.raises(ValueError, match="width 30 must be divisible by heads 4"):
        build_denoiser(DenoiserConfig(architecture="transformer", width=30, heads=4), 4, 16, 0)
    with pytest.raises(ConfigError, match="denoiser architecture must be one of"):
        DenoiserConfig(architecture="dit")


def test_transformer_prior_stage_saves_loads_and_samples(tiny_runs, tmp_path):
    """The stage trains a transformer prior with one latent scale for all dimensions; the saved prior reloads as a
    transformer and reproduces its samples; a denoiser folder naming an unknown class is refused by name."""
    from tsvq.training.diffusion import DiffusionStageConfig, train_diffusion

    folder = train_diffusion(
        DiffusionStageConfig(
            store=str(tiny_runs["store"]),
            codec=str(tiny_runs["codec"]),
            latent_normalisation="global",
            model={"architecture": "transformer", "width": 32, "depth": 1, "heads": 2},
            training=tiny_training(tmp_path / "diff", 4),
        )
    )
    prior = DiffusionPrior.from_pretrained(folder)
    assert type(prior.denoiser).__name__ == "LatentTransformer1D"
    assert torch.unique(prior.latent_std).numel() == 1 and torch.unique(prior.latent_mean).numel() == 1
    pipe = Pipeline.from_stages(tiny_runs["codec"], folder)
    first, again = (pipe.sample(3, steps=3, seed=5, progress=False).signals for _ in range(2))
    assert np.array_equal(first, again) and np.isfinite(first).all()
    with pytest.raises(ConfigError, match="latent_normalisation must be per_dim or global"):
        DiffusionStageConfig(latent_normalisation="none")
    config_file = folder / "denoiser" / "config.json"
    config_file.write_text(config_file.read_text().replace("LatentTransformer1D", "LatentMamba1D"))
    with pytest.raises(ConfigError, match=r"denoiser/config\.json: unknown denoiser class 'LatentMamba1D'"):
        DiffusionPrior.from_pretrained(folder)


def test_conditional_prior_with_guidance(small_database, tmp_path):
    import shutil

    from tsvq.data import PrepareConfig, prepare
    from tsvq.training.codec import CodecStageConfig, train_codec
    from tsvq.training.diffusion import DiffusionStageConfig, train_diffusion

    with pytest.raises(DataError, match=r"seg0\.hea: beat-centred windows need beat annotations"):
        prepare(
            PrepareConfig(source=str(small_database), beat_centred=True, test_groups=["p4"]),
            tmp_path / "bad",
            progress=False,
        )
    shutil.rmtree(small_database / "p4")  # the only records without beat annotations
    store = prepare(
        PrepareConfig(
            source=str(small_database),
            rate_hz=125,
            window_samples=128,
            beat_centred=True,
            test_groups=["p3"],
            val_groups=["p2"],
        ),
        tmp_path / "store",
        progress=False,
    )
    codec = train_codec(
        CodecStageConfig(store=str(store.path), model=TINY_CODEC, training=tiny_training(tmp_path / "codec", 10))
    )
    prior = train_diffusion(
        DiffusionStageConfig(
            store=str(store.path),
            codec=str(codec),
            conditional=True,
            model={"block_out_channels": [16, 32]},
            training=tiny_training(tmp_path / "diff", 10),
        )
    )
    pipe = Pipeline.from_stages(codec, prior)
    assert pipe.priors["diffusion"].labels == ["N", "V"]
    out = pipe.sample(4, steps=4, labels=["N", "V", "V", "N"], guidance=3.0, progress=False)
    assert out.signals.shape == (4, 128, 1) and np.isfinite(out.signals).all()
    with pytest.raises(DataError, match="unknown label 'X'"):
        pipe.sample(2, steps=2, labels="X")
    from tsvq.data import WindowStore
    from tsvq.evaluation import EvalConfig, evaluate

    calls, sample = [], pipe.sample

    def counted_sample(n, *args, **kwargs):
        calls.append((n, kwargs.get("seed"), tuple(kwargs.get("labels") or ())))
        return sample(n, *args, **kwargs)

    pipe.sample = counted_sample
    report = evaluate(
        WindowStore(store.path),
        tmp_path / "report",
        EvalConfig(n=8, sampling={"steps": 2, "guidance": 2.0}, folds=2, classifier_steps=20, seeds=3),
        pipeline=pipe,
        progress=False,
    )
    # the pooled figures and TSTR score the same draw per seed: sampled once, never twice
    assert len(calls) == len(set(calls)) and sum(n == 8 and len(labels) == 8 for n, _, labels in calls) >= 3
    tstr = report["label_classification"]["diffusion"]
    assert tstr["labels"] == ["N", "V"]
    # the pooled figures score the prior as it is used: labels in the training mix, at the chosen guidance
    drawn = report["generation"]["generators"]["diffusion"]["info"]["labels_drawn"]["counts_last_seed"]
    assert set(drawn) <= {"N", "V"} and sum(drawn.values()) == 8
    # every synthetic window is drawn with a label in the training windows' mix, and the options of the draw are kept
    assert tstr["train_synthetic_test_real"]["train_windows"] == 8 and tstr["sampling"] == {"steps": 2, "guidance": 2.0}
    assert tstr["train_real_test_real"]["test_windows"] == tstr["train_synthetic_test_real"]["test_windows"] > 0
    assert (
        tstr["seeds"] == [0, 1, 2] and len(tstr["train_synthetic_test_real"]["per_seed"]) == 3
    )  # mean +- std over seeds
    assert "ridge" in tstr["train_real_test_real"]["classifier"]
    per_class = report["per_class"]["diffusion"]
    assert set(per_class) == {"N", "V"}
    for figures in per_class.values():  # each class scored against its own held-out windows, or said why not
        assert "skipped" in figures or (
            figures["model"]["frechet_distance"]["mean"] > 0 and len(figures["windows_per_seed"]) == 3
        )
    assert (tmp_path / "report" / "classes_diffusion.png").stat().st_size > 1000
    assert (tmp_path / "report" / "class_spectra_diffusion.png").stat().st_size > 1000


def test_prior_for_another_codec_is_refused(tiny_runs, tmp_path):
    from tsvq.codec import VQVAE

    other = VQVAE(window_length=256, **(TINY_CODEC | {"num_codes": 64}))
    other.save_pretrained(tmp_path / "other")
    with pytest.raises(CheckpointError, match="num_codes = 32, but this codec has num_codes = 64"):
        Pipeline.from_stages(tmp_path / "other", tiny_runs["diffusion"])
    same_shape = VQVAE(window_length=256, **TINY_CODEC)
    same_shape.save_pretrained(tmp_path / "same")
    with pytest.raises(CheckpointError, match="another codec's codebook"):
        Pipeline.from_stages(tmp_path / "same", None, tiny_runs["wavenet"])


def test_wavenet_cached_generation_equals_naive():
    torch.manual_seed(0)
    model = WaveNet(num_codes=40, latent_length=48, residual_channels=16, skip_channels=16, num_classes=2).eval()
    labels = torch.tensor([0, 1, 1])
    for kwargs in ({}, {"temperature": 0.8, "top_k": 5}, {"top_p": 0.7}):
        cached = model.generate(3, labels=labels, seed=11, cached=True, **kwargs)
        naive = model.generate(3, labels=labels, seed=11, cached=False, **kwargs)
        assert torch.equal(cached, naive)
    # without labels a conditional prior samples from its "no label" class, cached and naive alike
    assert torch.equal(model.generate(2, seed=5, cached=True), model.generate(2, seed=5, cached=False))
    assert model.class_embedding.num_embeddings == 3


def test_wavenet_is_causal():
    model = WaveNet(num_codes=16, latent_length=32, residual_channels=8, skip_channels=8).eval()
    codes = torch.randint(0, 16, (1, 32))
    changed = codes.clone()
    changed[0, 20:] = (changed[0, 20:] + 1) % 16
    assert torch.allclose(model(codes)[..., :21], model(changed)[..., :21])
    assert not torch.allclose(model(codes)[..., 21:], model(changed)[..., 21:])


def fit_teacher_forced(model: WaveNet, codes: torch.Tensor, steps: int) -> None:
    """Full-batch Adam on the teacher-forced cross-entropy; leaves the model in eval mode."""
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    for _ in range(steps):
        loss = F.cross_entropy(model(codes), codes)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()


def test_wavenet_learns_structure_below_unigram_entropy_and_scores_atypical_worse():
    torch.manual_seed(0)
    period = torch.tensor([3, 1, 4, 1, 5, 9, 2, 6])
    sequences = torch.stack([period.roll(int(s)).repeat(4) for s in torch.randint(0, 8, (64,))])
    model = WaveNet(num_codes=10, latent_length=32, residual_channels=16, skip_channels=16, dilation_cycle=(1, 2, 4, 8))
    fit_teacher_forced(model, sequences, steps=150)
    unigram = (
        -(torch.bincount(period, minlength=10).float() / 8)
        .clamp(min=1e-12)
        .log2()
        .mul(torch.bincount(period, minlength=10).float() / 8)
        .sum()
    )
    typical = model.nll_bits(sequences[:8]).mean()
    assert typical < 0.5 * unigram
    atypical = model.nll_bits(torch.randint(0, 10, (8, 32))).mean()
    assert atypical > 2 * typical
    assert torch.equal(model.generate(4, seed=0)[:, 8:16], model.generate(4, seed=0)[:, 8:16])


def test_residual_wavenet_draws_stage_by_stage_and_each_stage_sees_only_what_came_before():
    torch.manual_seed(0)
    model = WaveNet(
        num_codes=12,
        latent_length=20,
        residual_channels=8,
        skip_channels=8,
        dilation_cycle=(1, 2, 4),
        num_classes=2,
        num_quantizers=3,
    ).eval()
    labels = torch.tensor([0, 1, 2, 1])  # 2: "no label"
    for kwargs in ({}, {"top_p": 0.7}, {"temperature": 0.8, "top_k": 4}):
        cached = model.generate(4, labels=labels, seed=3, **kwargs)
        assert cached.shape == (4, 20, 3) and torch.equal(
            cached, model.generate(4, labels=labels, seed=3, cached=False, **kwargs)
        )
    codes = torch.randint(0, 12, (2, 20, 3))
    changed = codes.clone()
    changed[:, 10, 1:] = (changed[:, 10, 1:] + 1) % 12  # stages 1 and 2 of position 10
    before, after = model(codes), model(changed)
    assert before.shape == (2, 12, 20, 3)
    assert torch.equal(before[..., :10, :], after[..., :10, :])  # earlier positions
    assert torch.equal(before[..., 10, :2], after[..., 10, :2])  # stage 0 and 1 at 10: they come before the change
    assert not torch.allclose(before[..., 10, 2], after[..., 10, 2]) and not torch.allclose(
        before[..., 11:, :], after[..., 11:, :]
    )
    with pytest.raises(DataError, match=r"codes must have shape \(B, L', 3\)"):
        model(codes[..., 0])


def test_residual_wavenet_learns_a_stage_that_follows_from_the_coarser_one_at_its_position():
    """Stage 0 is random and stage 1 a function of stage 0 at the same position: only the depth head (stage 1
    given stage 0 at t) can learn it, since earlier positions say nothing about position t."""
    torch.manual_seed(0)

    def draw(n: int) -> torch.Tensor:
        stage0 = torch.randint(0, 8, (n, 16))
        return torch.stack([stage0, (3 * stage0 + 1) % 8], dim=-1)

    codes = draw(256)
    model = WaveNet(
        num_codes=8,
        latent_length=16,
        residual_channels=16,
        skip_channels=16,
        dilation_cycle=(1, 2, 4),
        num_quantizers=2,
    )
    fit_teacher_forced(model, codes, steps=100)
    unseen = draw(32)
    with torch.no_grad():
        stage1_bits = F.cross_entropy(model(unseen)[..., 1], unseen[..., 1]) / np.log(2)
    assert stage1_bits < 0.5  # of the 3 bits a uniform guess costs
    drawn = model.generate(64, seed=0)
    assert (drawn[..., 1] == (3 * drawn[..., 0] + 1) % 8).float().mean() > 0.9


def test_wavenet_stage_on_a_residual_vq_codec_samples_scores_and_round_trips(tiny_runs, tmp_path):
    from tsvq.priors.maskgit import MaskGITPrior
    from tsvq.training.codec import CodecStageConfig, train_codec
    from tsvq.training.maskgit import MaskGITStageConfig, train_maskgit
    from tsvq.training.wavenet import WaveNetStageConfig, train_wavenet

    store = str(tiny_runs["store"])
    codec = train_codec(
        CodecStageConfig(
            store=store, model=TINY_CODEC | {"num_quantizers": 2}, training=tiny_training(tmp_path / "codec", 4)
        )
    )
    folder = train_wavenet(
        WaveNetStageConfig(
            store=store,
            codec=str(codec),
            model={"residual_channels": 8, "skip_channels": 8, "dilation_cycle": [1, 2]},
            training=tiny_training(tmp_path / "wavenet", 4),
        )
    )
    statistics = json.loads((folder / "prior.json").read_text())["statistics"]
    assert statistics["codes_per_second"] == 125 / 4 * 2 and 0 < statistics["val_bits_per_code"]
    assert statistics["val_bits_per_second"] == pytest.approx(statistics["val_bits_per_code"] * 62.5)
    pipe = Pipeline.from_stages(codec, folder)
    out = pipe.sample(3, prior="wavenet", top_p=0.9, seed=1, progress=False)
    assert out.signals.shape == (3, 256, 1) and np.isfinite(out.signals).all() and out.codes.shape == (3, 64, 2)
    np.testing.assert_allclose(pipe.decode(out.codes), out.signals, atol=1e-5)
    codes = pipe.encode(out.signals).codes
    expected = (
        pipe.priors["wavenet"].model.nll_bits(codes).detach().numpy() * 125 / 4 * 2
    )  # bits per code x codes (both stages) per second
    np.testing.assert_allclose(pipe.log_likelihood(out.signals), expected, rtol=1e-5)
    pipe.save_pretrained(tmp_path / "pipe")
    again = Pipeline.from_pretrained(tmp_path / "pipe").sample(3, prior="wavenet", top_p=0.9, seed=1, progress=False)
    assert np.array_equal(again.codes, out.codes)
    with pytest.raises(CheckpointError, match="num_quantizers"):
        Pipeline.from_stages(tiny_runs["codec"], folder)  # a single-codebook codec: not the one it was trained on
    with pytest.raises(
        ConfigError, match="MaskGIT prior models one code per position; this codec has 2 residual quantizers"
    ):
        train_maskgit(
            MaskGITStageConfig(store=store, codec=str(codec), training=tiny_training(tmp_path / "maskgit", 2))
        )
    assert MaskGITPrior.residual_codes is False


def test_pipeline_wavenet_sampling_and_log_likelihood(tiny_pipeline):
    pipe = Pipeline.from_pretrained(tiny_pipeline)
    out = pipe.sample(3, prior="wavenet", temperature=0.9, top_p=0.95, seed=2, progress=False)
    assert out.signals.shape == (3, 256, 1) and out.codes.shape == (3, 64)
    bits = pipe.log_likelihood(out.signals)
    wavenet, codes = pipe.priors["wavenet"], pipe.encode(out.signals).codes
    codes_per_second = pipe.sampling_rate_hz / pipe.codec.config.downsample_factor
    expected = wavenet.model.nll_bits(codes).detach().numpy() * codes_per_second  # bits per code x codes per second
    assert bits.shape == (3,) and (bits > 0).all()
    np.testing.assert_allclose(bits, expected, rtol=1e-5)
    with pytest.raises(DataError, match="125 Hz"):
        pipe.log_likelihood(out.signals, sampling_rate_hz=250)
    resampled = pipe.encode(np.repeat(out.signals, 2, axis=1), sampling_rate_hz=250, resample=True)
    assert resampled.codes.shape == (3, 64)


def test_sampling_defaults_saved_with_the_pipeline_apply_unless_overridden(tiny_runs, tmp_path, capsys):
    codec, wavenet, out = str(tiny_runs["codec"]), str(tiny_runs["wavenet"]), tmp_path / "pipe"
    assert (
        cli_main(
            ["assemble", "--codec", codec, "--prior", wavenet, "--sampling", "wavenet.top_p=0.5", "--out", str(out)]
        )
        == 0
    )
    assert json.loads((out / "pipeline.json").read_text())["priors"]["wavenet"]["sampling"] == {"top_p": 0.5}
    pipe = Pipeline.from_pretrained(out)
    default = pipe.sample(4, prior="wavenet", seed=3, progress=False)
    assert default.info["top_p"] == 0.5
    np.testing.assert_array_equal(
        default.codes, pipe.sample(4, prior="wavenet", seed=3, progress=False, top_p=0.5).codes
    )
    # an option given wins over the default: top_p 1.0 draws exactly what a pipeline without defaults draws
    plain = Pipeline.from_stages(codec, wavenet)
    assert plain.sampling == {}
    untruncated = pipe.sample(4, prior="wavenet", seed=3, progress=False, top_p=1.0)
    np.testing.assert_array_equal(untruncated.codes, plain.sample(4, prior="wavenet", seed=3, progress=False).codes)
    assert not np.array_equal(default.codes, untruncated.codes)
    # a typo or a prior the pipeline lacks fails at assembly, naming it
    with pytest.raises(ConfigError, match="top_q"):
        Pipeline.from_stages(codec, wavenet, sampling={"wavenet": {"top_q": 0.5}})
    with pytest.raises(ConfigError, match="'diffusion'.*not one of the pipeline's priors"):
        Pipeline.from_stages(codec, wavenet, sampling={"diffusion": {"steps": 4}})
    capsys.readouterr()
    assert (
        cli_main(
            ["assemble", "--codec", codec, "--prior", wavenet, "--sampling", "top_p=0.5", "--out", str(tmp_path / "x")]
        )
        == 2
    )
    assert "PRIOR.OPTION=VALUE" in capsys.readouterr().err and not (tmp_path / "x").exists()
    index = json.loads((out / "pipeline.json").read_text())  # a hand-edited default is refused on load, naming the file
    index["priors"]["wavenet"]["sampling"] = {"top_q": 0.9}
    (out / "pipeline.json").write_text(json.dumps(index))
    with pytest.raises(CheckpointError, match=r"pipeline\.json: sampling defaults of prior 'wavenet'.*top_q"):
        Pipeline.from_pretrained(out)


def test_two_priors_of_one_kind_are_assembled_under_names(tiny_runs, tmp_path, capsys):
    """Two WaveNets (say, two trainings) in one pipeline: ``--prior NAME=FOLDER``; by kind alone they clash."""
    codec, wavenet, out = str(tiny_runs["codec"]), str(tiny_runs["wavenet"]), tmp_path / "pipe"
    argv = ["assemble", "--codec", codec, "--prior", wavenet, f"hot={wavenet}", "--sampling", "hot.temperature=2"]
    assert cli_main([*argv, "--out", str(out)]) == 0
    pipe = Pipeline.from_pretrained(out)
    assert sorted(pipe.priors) == ["hot", "wavenet"] and pipe.prior("hot").kind == "wavenet"
    hot = pipe.sample(4, prior="hot", seed=3, progress=False)
    assert hot.info["temperature"] == 2 and hot.info["prior"] == "hot"
    np.testing.assert_array_equal(
        hot.codes, pipe.sample(4, prior="wavenet", seed=3, progress=False, temperature=2).codes
    )
    capsys.readouterr()
    assert cli_main(["assemble", "--codec", codec, "--prior", wavenet, wavenet, "--out", str(tmp_path / "x")]) == 2
    assert "two priors named ['wavenet', 'wavenet']; name each as NAME=FOLDER" in capsys.readouterr().err
    for bad in ("../codec", "a b", ".hidden"):
        with pytest.raises(ConfigError, match="a name holds only letters"):
            Pipeline.from_stages(codec, f"{bad}={wavenet}")
    with pytest.raises(ConfigError, match=r"prior name '\.\./codec': letters, digits"):  # it would name a folder
        Pipeline(pipe.codec, {"../codec": pipe.prior("hot")})
    assert not (tmp_path / "x").exists()


def test_assemble_half_stores_float16_weights_read_back_as_float32(tiny_runs, tmp_path):
    """``--half``: the named components' weights take half the bytes; loaded, the model is float32 with the same
    weights rounded to float16, and it samples as the full-precision one does, to that rounding."""
    from safetensors import safe_open

    codec, diffusion = str(tiny_runs["codec"]), str(tiny_runs["diffusion"])
    full, half = tmp_path / "full", tmp_path / "half"
    assert cli_main(["assemble", "--codec", codec, "--prior", diffusion, "--out", str(full)]) == 0
    assert (
        cli_main(["assemble", "--codec", codec, "--prior", diffusion, "--half", "diffusion", "--out", str(half)]) == 0
    )
    weights = "priors/diffusion/denoiser/diffusion_pytorch_model.safetensors"
    with safe_open(half / weights, framework="pt") as file:
        assert {file.get_tensor(k).dtype for k in file.keys()} == {torch.float16}
        assert file.metadata() == safe_open(full / weights, framework="pt").metadata()
    assert (half / weights).stat().st_size < 0.6 * (full / weights).stat().st_size
    codec_weights = sorted((full / "codec").glob("*.safetensors"))  # not named: stored as it was
    assert codec_weights and all((half / "codec" / f.name).read_bytes() == f.read_bytes() for f in codec_weights)
    loaded, original = Pipeline.from_pretrained(half).prior("diffusion"), Pipeline.from_pretrained(full).prior()
    for (name, value), reference in zip(loaded.denoiser.state_dict().items(), original.denoiser.state_dict().values()):
        assert value.dtype == torch.float32, name
        torch.testing.assert_close(value, reference.half().float(), rtol=0, atol=0)
    a = Pipeline.from_pretrained(half).sample(2, seed=0, steps=4, progress=False).signals
    b = Pipeline.from_pretrained(full).sample(2, seed=0, steps=4, progress=False).signals
    np.testing.assert_allclose(a, b, atol=0.05 * np.abs(b).max())
    with pytest.raises(ConfigError, match=r"half: this pipeline has no component \['wavenet'\]"):
        Pipeline.from_pretrained(full).save_pretrained(tmp_path / "x", half=["wavenet"])
    assert not (tmp_path / "x").exists()


def test_cli_sample_writes_numpy_wfdb_and_png(tiny_pipeline, tmp_path, capsys):
    for prior, options in (("diffusion", ["--steps", "4"]), ("wavenet", ["--temperature", "0.9"])):
        out = tmp_path / prior
        assert (
            cli_main(
                ["sample", "--pipeline", str(tiny_pipeline), "--n", "3", *options, "--prior", prior, "--out", str(out)]
            )
            == 0
        )
        signals = np.load(out / "samples.npy")
        assert signals.shape == (3, 256, 1)
        record = wfdb.rdrecord(str(out / "wfdb" / "sample_0000"))
        assert record.fs == 125 and record.units == ["mV"] and record.sig_len == 256
        assert np.abs(record.p_signal[:, 0] - signals[0, :, 0]).max() < 1e-3 * (np.ptp(signals[0]) + 1e-3)
        assert (out / "samples.png").stat().st_size > 1000
        assert json.loads((out / "samples.json").read_text())["info"]["prior"] == prior


def test_maskgit_decodes_every_position_on_the_cosine_schedule():
    from tsvq.priors.maskgit import MaskedCodeTransformer, masked_fraction

    torch.manual_seed(0)
    model = MaskedCodeTransformer(num_codes=12, latent_length=20, width=16, depth=1, heads=2, num_classes=2).eval()
    hidden_after_pass = []
    forward = model.forward

    def counting_forward(codes, labels=None):
        hidden_after_pass.append(int((codes[0] == model.mask_id).sum()))
        return forward(codes, labels)

    model.forward = counting_forward
    codes = model.generate(3, steps=6, labels=torch.tensor([0, 1, 1]), seed=3)
    assert codes.shape == (3, 20) and int(codes.min()) >= 0 and int(codes.max()) < 12  # no hidden position is left
    # each pass sees the positions the cosine schedule leaves hidden after the previous one
    expected = [20] + [int(np.floor(20 * float(masked_fraction(t / 6)))) for t in range(1, 6)]
    assert hidden_after_pass == expected
    model.forward = forward
    assert torch.equal(codes, model.generate(3, steps=6, labels=torch.tensor([0, 1, 1]), seed=3))
    assert model.generate(2, steps=1, seed=0).shape == (2, 20)  # one pass decides everything
    guided = model.generate(3, steps=6, labels=torch.tensor([0, 1, 1]), guidance=3.0, seed=3)
    assert guided.shape == (3, 20) and not torch.equal(guided, codes)
    learned = MaskedCodeTransformer(
        num_codes=12, latent_length=20, width=16, depth=1, heads=2, position_encoding="learned"
    ).eval()
    assert learned.generate(2, steps=3, seed=0).shape == (2, 20)
    with pytest.raises(ValueError, match="position_encoding must be conv or learned"):
        MaskedCodeTransformer(num_codes=12, latent_length=20, width=16, depth=1, heads=2, position_encoding="rotary")


def test_maskgit_conv_positions_make_the_model_shift_equivariant():
    """With relative (convolutional) positions, shifting the visible codes shifts the predictions: what the model
    learns about a beat does not depend on where in the window the beat falls."""
    from tsvq.priors.maskgit import MaskedCodeTransformer

    torch.manual_seed(0)
    model = MaskedCodeTransformer(
        num_codes=12, latent_length=64, width=16, depth=2, heads=2, position_kernel=9, dropout=0.0
    ).eval()
    codes = torch.full((1, 64), model.mask_id)
    codes[0, 20:30] = torch.arange(10)
    shifted = codes.roll(8, dims=1)
    with torch.no_grad():
        # away from the edges (zero padding), predictions move with the codes
        assert torch.allclose(model(codes)[0, 10:40], model(shifted)[0, 18:48], atol=1e-5)
        absolute = MaskedCodeTransformer(
            num_codes=12, latent_length=64, width=16, depth=2, heads=2, position_encoding="learned", dropout=0.0
        ).eval()
        assert not torch.allclose(absolute(codes)[0, 10:40], absolute(shifted)[0, 18:48], atol=1e-5)


def test_maskgit_learns_a_periodic_code_sequence():
    from tsvq.priors.maskgit import MaskedCodeTransformer, masked_fraction

    torch.manual_seed(0)
    period = torch.tensor([3, 1, 4, 1, 5, 9, 2, 6])
    sequences = torch.stack([period.roll(int(s)).repeat(3) for s in torch.randint(0, 8, (64,))])
    model = MaskedCodeTransformer(num_codes=10, latent_length=24, width=32, depth=2, heads=2, dropout=0.0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(600):
        loss = model.masked_loss(sequences, None, masked_fraction(torch.rand(len(sequences))))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    samples = model.generate(16, steps=8, seed=0)
    # a sample is a shifted copy of the period wherever it is right: count the positions that agree with the best shift
    agreement = [max(int((s == period.roll(k).repeat(3)).sum()) for k in range(8)) for s in samples]
    assert np.mean(agreement) > 0.85 * 24
    with torch.no_grad():  # half hidden, the rest of the period names the hidden codes
        assert float(model.masked_loss(sequences, None, torch.full((64,), 0.5))) < 0.1 * float(np.log(10))


def test_maskgit_prior_stage_in_a_pipeline_saves_loads_and_refuses_another_codec(tiny_runs, tmp_path):
    from tsvq.codec import VQVAE
    from tsvq.priors.maskgit import MaskGITPrior
    from tsvq.training.maskgit import MaskGITStageConfig, train_maskgit

    folder = train_maskgit(
        MaskGITStageConfig(
            store=str(tiny_runs["store"]),
            codec=str(tiny_runs["codec"]),
            model={"width": 32, "depth": 1, "heads": 2},
            training=tiny_training(tmp_path / "maskgit", 20),
        )
    )
    prior = MaskGITPrior.from_pretrained(folder)
    assert prior.statistics["val_bits_per_hidden_code"] > 0 and "val_bits_hidden_50pct" in prior.statistics
    pipe = Pipeline.from_stages(tiny_runs["codec"], tiny_runs["diffusion"], folder)
    assert list(pipe.priors) == ["diffusion", "maskgit"]
    first = pipe.sample(5, "maskgit", steps=4, seed=2, progress=False)
    assert first.signals.shape == (5, 256, 1) and np.isfinite(first.signals).all() and first.info["steps"] == 4
    pipe.save_pretrained(tmp_path / "pipe")
    again = Pipeline.from_pretrained(tmp_path / "pipe").sample(5, "maskgit", steps=4, seed=2, progress=False)
    assert np.array_equal(first.signals, again.signals)
    with pytest.raises(ConfigError, match="sampler"):
        pipe.sample(2, "maskgit", sampler="dpm")
    with pytest.raises(
        DataError, match="MaskGIT prior: labels given, but this prior was trained without class conditioning"
    ):
        pipe.sample(2, "maskgit", labels=[0, 0])
    same_shape = VQVAE(window_length=256, **TINY_CODEC)
    same_shape.save_pretrained(tmp_path / "same")
    with pytest.raises(CheckpointError, match="MaskGIT prior: the prior was trained on another codec's codebook"):
        Pipeline.from_stages(tmp_path / "same", None, folder)
    assert (
        cli_main(
            [
                "sample",
                "--pipeline",
                str(tmp_path / "pipe"),
                "--prior",
                "maskgit",
                "--n",
                "3",
                "--steps",
                "3",
                "--no-wfdb",
                "--out",
                str(tmp_path / "samples"),
            ]
        )
        == 0
    )
    assert np.load(tmp_path / "samples" / "samples.npy").shape == (3, 256, 1)


def test_min_snr_weights_follow_the_prediction_target():
    """Min-SNR-gamma (Hang et al. 2023): the weight turns each target's error into a clean-latent error capped at gamma.
    With gamma beyond every SNR, epsilon prediction is weighted 1 (its loss unchanged); v-prediction by SNR / (SNR + 1);
    a zero-SNR last step keeps a finite weight."""
    from tsvq.training.diffusion import DiffusionStageConfig, DiffusionTask, min_snr_weights

    timesteps = torch.tensor([0, 10, 500, 999])
    for kind in ("epsilon", "v_prediction", "sample"):
        scheduler = training_scheduler(prediction_type=kind)
        snr = scheduler.alphas_cumprod[timesteps] / (1 - scheduler.alphas_cumprod[timesteps])
        weights = min_snr_weights(scheduler, timesteps, gamma=5.0)
        expected = {
            "epsilon": snr.clamp(max=5) / snr,
            "v_prediction": snr.clamp(max=5) / (snr + 1),
            "sample": snr.clamp(max=5),
        }[kind]
        assert torch.allclose(weights, expected, rtol=1e-4), kind
    zero_terminal = training_scheduler(prediction_type="epsilon", beta_schedule="linear", rescale_betas_zero_snr=True)
    assert torch.isfinite(min_snr_weights(zero_terminal, timesteps, 5.0)).all()

    # the weighted training loss: with gamma above every SNR, epsilon prediction gives the plain loss back
    scheduler = training_scheduler(prediction_type="epsilon")
    task = DiffusionTask.__new__(DiffusionTask)
    task.noise_scheduler, task.labels = scheduler, []
    model = build_denoiser(
        DenoiserConfig(block_out_channels=(16, 32), time_embedding_dim=32),
        latent_channels=4,
        latent_length=16,
        num_classes=0,
    )
    latents, steps = torch.randn(6, 4, 16), torch.tensor([1, 50, 200, 400, 700, 900])
    plain = task._denoising_loss(model, latents, None, torch.Generator().manual_seed(0), steps)
    weighted = task._denoising_loss(model, latents, None, torch.Generator().manual_seed(0), steps, snr_gamma=1e12)
    assert torch.allclose(plain, weighted, rtol=1e-5)
    capped = task._denoising_loss(model, latents, None, torch.Generator().manual_seed(0), steps, snr_gamma=1.0)
    assert not torch.allclose(plain, capped)
    with pytest.raises(ConfigError, match="snr_gamma"):
        DiffusionStageConfig(snr_gamma=-1.0)


def test_diffusion_training_looks_codes_up_where_they_are(tiny_runs, tmp_path):
    """The prior's training latents are the codec's standardised codebook vectors, computed on the batch's device:
    the codebooks move there once (on the meta device here, standing in for a GPU), so a step never sends its codes
    back to the codec's device. Stage codebooks sum to the codec's vectors for residual codes too."""
    from tsvq.codec.quantizer import ResidualVectorQuantizer, VectorQuantizer, stage_vectors
    from tsvq.training.diffusion import DiffusionStageConfig, DiffusionTask

    task = DiffusionTask(
        DiffusionStageConfig(
            store=str(tiny_runs["store"]),
            codec=str(tiny_runs["codec"]),
            model={"block_out_channels": [16, 32]},
            training=tiny_training(tmp_path / "prior", 1),
        )
    )
    codes = task.train_dataset.codes[:4]
    vectors = task.codec.codes_to_vectors(codes).transpose(1, 2)
    assert torch.equal(task.latents(codes), (vectors - task.mean.view(-1, 1)) / task.std.view(-1, 1))
    on_meta = task.latents(codes.to("meta"))
    assert on_meta.device.type == "meta" and on_meta.shape == vectors.shape
    assert task.codec.device.type == "cpu" and task.mean.device.type == "cpu"  # what the saved prior keeps
    assert torch.equal(task.latents(codes), (vectors - task.mean.view(-1, 1)) / task.std.view(-1, 1))  # and back

    torch.manual_seed(0)
    for quantizer, shape in (
        (VectorQuantizer(num_codes=16, dim=4, kmeans_init=False), (5, 7)),
        (ResidualVectorQuantizer(num_quantizers=3, num_codes=16, dim=4, kmeans_init=False), (5, 7, 3)),
    ):
        stage_codes = torch.randint(0, 16, shape)
        tables = quantizer.stage_codebooks()
        summed = stage_vectors(tables, stage_codes.reshape(5, 7, -1))
        assert tables.shape[1:] == (16, 4) and torch.equal(summed, quantizer.lookup(stage_codes))


def test_prior_data_balances_patients_by_repeating_rows_not_codes(small_database, tmp_path):
    from tsvq.data import PrepareConfig, prepare
    from tsvq.training.codec import CodecStageConfig, train_codec
    from tsvq.training.diffusion import DiffusionStageConfig
    from tsvq.training.prior_data import CodeDataset, load_prior_data

    store = prepare(
        PrepareConfig(source=str(small_database), rate_hz=125, window_samples=128, split_by="time"),
        tmp_path / "store",
        progress=False,
    )
    codec = train_codec(
        CodecStageConfig(store=str(store.path), model=TINY_CODEC, training=tiny_training(tmp_path / "codec", 2))
    )
    plain = load_prior_data(str(store.path), str(codec), tmp_path / "cache", 64, False)
    even = load_prior_data(str(store.path), str(codec), tmp_path / "cache", 64, False, balance_groups=1.0)
    groups = store.groups_of(store.split_indices("train"))
    assert len(np.unique(groups)) > 1 and len(np.unique(np.unique(groups, return_counts=True)[1])) > 1
    assert np.array_equal(plain.train_rows, np.arange(len(plain.train_codes)))
    _, per_group = np.unique(groups[even.train_rows], return_counts=True)
    assert len(set(per_group.tolist())) == 1 and set(even.train_rows.tolist()) == set(plain.train_rows.tolist())
    dataset = CodeDataset(even.train_codes, even.train_label_ids, even.train_rows)
    assert len(dataset) == len(even.train_rows) and len(dataset.codes) == len(plain.train_codes)
    row = int(even.train_rows[-1])
    assert torch.equal(dataset[len(dataset) - 1]["codes"], torch.from_numpy(even.train_codes[row].astype(np.int64)))
    for bad in (1.5, -0.1, "yes"):
        with pytest.raises(ConfigError, match="balance_groups must be between 0"):
            DiffusionStageConfig(balance_groups=bad)


def test_diffusion_stage_fine_tunes_a_saved_prior_and_balances_labels(small_database, tmp_path):
    """``init_from`` starts a stage from a saved prior: its weights and latent statistics, its label embeddings
    matched by name, a label it did not know starting from its "no label" row. ``balance_labels`` gives every
    label (and "no label") the same share of an epoch."""
    import shutil

    from tsvq.data import PrepareConfig, prepare
    from tsvq.io import read_json, write_json
    from tsvq.training.codec import CodecStageConfig, train_codec
    from tsvq.training.diffusion import DiffusionStageConfig, DiffusionTask, train_diffusion
    from tsvq.training.prior_data import load_prior_data

    shutil.rmtree(small_database / "p4")  # the only records without beat annotations
    store = prepare(
        PrepareConfig(source=str(small_database), rate_hz=125, window_samples=128, beat_centred=True),
        tmp_path / "store",
        progress=False,
    )
    codec = train_codec(
        CodecStageConfig(store=str(store.path), model=TINY_CODEC, training=tiny_training(tmp_path / "codec", 2))
    )
    even = load_prior_data(str(store.path), str(codec), tmp_path / "cache", 64, True, balance_labels=True)
    _, per_label = np.unique(even.train_label_ids[even.train_rows], return_counts=True)
    assert len(per_label) == 2 and per_label[0] == per_label[1]  # N and V, however rare V is as stored
    assert np.unique(even.train_label_ids, return_counts=True)[1].tolist() != per_label.tolist()
    with pytest.raises(ConfigError, match="balance_labels needs conditional=True"):
        load_prior_data(str(store.path), str(codec), tmp_path / "cache", 64, False, balance_labels=True)

    def stage(folder: str, **changes) -> DiffusionStageConfig:
        settings = dict(conditional=True, model={"block_out_channels": [16, 32]}, balance_labels=True)
        return DiffusionStageConfig(
            store=str(store.path), codec=str(codec), training=tiny_training(tmp_path / folder, 2), **settings | changes
        )

    first = train_diffusion(stage("first"))
    description = read_json(first / "prior.json", "prior")
    write_json(first / "prior.json", description | {"labels": ["N", "X"]})  # as if it had never seen V
    saved = DiffusionPrior.from_pretrained(first)
    task = DiffusionTask(stage("second", init_from=str(first)))
    rows = saved.denoiser.class_embedding.weight
    assert torch.equal(task.model.class_embedding.weight, rows[[0, 2, 2]])  # N kept; V and "no label" from none
    own = dict(task.model.named_parameters())
    assert all(
        torch.equal(own[name], p) for name, p in saved.denoiser.named_parameters() if "class_embedding" not in name
    )
    assert torch.equal(task.mean, saved.latent_mean.flatten()) and torch.equal(task.std, saved.latent_std.flatten())
    with pytest.raises(ConfigError, match="its denoiser differs from the stage's model"):
        DiffusionTask(stage("third", init_from=str(first), model={"block_out_channels": [8, 16]}))
    with pytest.raises(ConfigError, match=r"init_from .*store: not a saved diffusion prior"):
        DiffusionTask(stage("fourth", init_from=str(store.path)))


def test_a_prior_stage_fine_tunes_the_shipped_pipeline_by_name(small_database, tmp_path):
    """``codec: ecg-single-lead`` and ``init_from: ecg-single-lead`` stand for the shipped pipeline's codec and
    diffusion prior, wherever the package is installed: a user fine-tunes it on their own windows and labels."""
    from tsvq.data import PrepareConfig, prepare
    from tsvq.pretrained import pipeline_part, pretrained_folder
    from tsvq.training.diffusion import DiffusionStageConfig, DiffusionTask

    shipped = pretrained_folder("ecg-single-lead")
    assert pipeline_part("ecg-single-lead", "codec") == str(shipped / "codec")
    assert pipeline_part(str(shipped), "priors/diffusion") == str(shipped / "priors" / "diffusion")
    assert pipeline_part(str(tmp_path), "codec") == str(tmp_path)  # any other folder is itself
    store = prepare(
        PrepareConfig(source=str(small_database), rate_hz=250, window_samples=1024, window_label="lead"),
        tmp_path / "store",
        progress=False,
    )
    model = {"block_out_channels": [64, 128, 256], "attention_heads": 4}
    task = DiffusionTask(
        DiffusionStageConfig(
            store=str(store.path),
            codec="ecg-single-lead",
            init_from="ecg-single-lead",
            conditional=True,
            model=model,
            training=tiny_training(tmp_path / "fine-tuned", 1),
        )
    )
    prior = DiffusionPrior.from_pretrained(shipped / "priors" / "diffusion")
    assert task.labels == ["II"]
    rows = prior.denoiser.class_embedding.weight.float()
    ii, none = prior.labels.index("II"), len(prior.labels)
    assert torch.equal(task.model.class_embedding.weight, rows[[ii, none]])
