"""Diffusion prior over the codec's codebook vectors ``(B, L', D)`` (channels-first inside: ``(B, D, L')``).

The denoiser trains with diffusers' ``DDPMScheduler``; sampling swaps in DDPM, DDIM or DPM-Solver++ (ODE or SDE
form) from the same scheduler config, without retraining. Latents are standardised with statistics of the training
latents, saved with the prior. Samples are continuous; the pipeline snaps them to the nearest codebook entries.

A saved prior is a folder: ``denoiser/`` (config.json + safetensors), ``scheduler/scheduler_config.json`` and
``prior.json`` (latent statistics, label vocabulary, and the signature of the codec it belongs to).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler
from tqdm.auto import tqdm

from tsvq.config import check_ranges
from tsvq.errors import ConfigError, DataError
from tsvq.io import atomic_directory, read_json, write_json
from tsvq.priors.base import PRIOR_FORMAT_VERSION, PriorSample, read_prior_description, register_prior, sampling_options
from tsvq.priors.denoiser import saved_denoiser_class
from tsvq.priors.signature import as_long, check_signature
from tsvq.safe_loading import load_model

logger = logging.getLogger(__name__)

# Each sampler: its diffusers class and what it changes in the training scheduler's config. Trailing timestep spacing
# starts DDIM at the last training step, where the cosine schedule has (almost) no signal left (Lin et al. 2024).
# DPM-Solver++ takes steps uniform in log-SNR (use_lu_lambdas, as in Lu et al.'s DPM-Solver++) with a third-order
# multistep update; lambda_min_clipped is what diffusers advises for cosine schedules, whose last steps would make the
# solver divide by a vanishing signal. Its SDE form adds fresh noise at every step, as DDPM does, so part of an early
# step's error is forgotten instead of carried to the end; it runs at second order (the "2M SDE" of common use).
# What each choice gained is measured in benchmarks/results/sampling.json and levers.json.
_DPM_STEPS = {"use_lu_lambdas": True, "lambda_min_clipped": -5.1}
SAMPLERS = {
    "ddpm": (DDPMScheduler, {}),
    "ddim": (DDIMScheduler, {"clip_sample": False, "timestep_spacing": "trailing"}),
    "dpm": (DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver++", "solver_order": 3, **_DPM_STEPS}),
    "dpm-sde": (DPMSolverMultistepScheduler, {"algorithm_type": "sde-dpmsolver++", "solver_order": 2, **_DPM_STEPS}),
}
STOCHASTIC_SAMPLERS = ("ddpm", "dpm-sde")  # they draw fresh noise at every step, from the sampling seed's generator


@dataclass
class NoiseScheduleConfig:
    """The training noise schedule (diffusers' DDPMScheduler): a cosine schedule that ends at almost zero signal,
    and v-prediction, which stays well-conditioned at both ends of it."""

    num_train_timesteps: int = 1000
    beta_schedule: str = "squaredcos_cap_v2"
    prediction_type: str = "v_prediction"  # epsilon | v_prediction | sample
    rescale_betas_zero_snr: bool = False  # rescale any schedule to end at exactly zero signal (Lin et al. 2024)


def training_scheduler(
    num_train_timesteps: int = 1000,
    beta_schedule: str = "squaredcos_cap_v2",
    prediction_type: str = "v_prediction",
    rescale_betas_zero_snr: bool = False,
) -> DDPMScheduler:
    """The training noise schedule. ``clip_sample`` is off: latents are standardised, not bounded to [-1, 1]."""
    if prediction_type not in ("epsilon", "v_prediction", "sample"):
        raise ConfigError(f"prediction_type must be epsilon, v_prediction or sample, got '{prediction_type}'")
    return DDPMScheduler(
        num_train_timesteps=num_train_timesteps,
        beta_schedule=beta_schedule,
        prediction_type=prediction_type,
        clip_sample=False,
        rescale_betas_zero_snr=rescale_betas_zero_snr,
    )


def terminal_snr(scheduler) -> float:
    """Signal-to-noise ratio at the last training step; far above 0, sampling from pure noise is biased."""
    alpha_bar = float(scheduler.alphas_cumprod[-1])
    return alpha_bar / max(1 - alpha_bar, 1e-12)


def sampling_scheduler(name: str, config) -> object:
    """A sampler built from the training scheduler's config: 'ddpm', 'ddim', 'dpm' (DPM-Solver++ 3M) or 'dpm-sde'
    (DPM-Solver++ 2M SDE)."""
    if name not in SAMPLERS:
        raise ConfigError(f"unknown sampler '{name}'; choose one of {sorted(SAMPLERS)}")
    scheduler_class, settings = SAMPLERS[name]
    return scheduler_class.from_config(config, **settings)


@dataclass
class DiffusionSamplingOptions:
    steps: int = field(default=20, metadata={"help": "diffusion: sampling steps"})
    sampler: str = field(
        default="dpm", metadata={"help": "diffusion: ddpm, ddim, dpm (DPM-Solver++ 3M) or dpm-sde (2M SDE)"}
    )
    guidance: float = field(
        default=1.0, metadata={"help": "diffusion: classifier-free guidance scale (conditional priors)"}
    )

    def __post_init__(self) -> None:
        check_ranges(self, positive=("steps",), non_negative=("guidance",), choices={"sampler": tuple(SAMPLERS)})


@register_prior
class DiffusionPrior:
    """Denoiser + scheduler config + latent statistics; samples are codebook vectors, not yet snapped."""

    kind = "diffusion"
    models = "vectors"
    SamplingOptions = DiffusionSamplingOptions

    def __init__(
        self,
        denoiser: torch.nn.Module,
        scheduler_config: dict,
        latent_mean: torch.Tensor,
        latent_std: torch.Tensor,
        labels: list[str] | None = None,
        codec_signature: dict | None = None,
    ):
        self.denoiser = denoiser
        self.scheduler_config = dict(scheduler_config)
        self.latent_mean = latent_mean.float().view(1, -1, 1)
        self.latent_std = latent_std.float().view(1, -1, 1)
        self.labels = list(labels or [])
        self.codec_signature = dict(codec_signature or {})
        snr = terminal_snr(DDPMScheduler.from_config(self.scheduler_config))
        if snr > 1e-3:
            logger.warning(
                "the noise schedule ends at SNR %.3g > 1e-3: samples start from noise the model never "
                "saw pure; prefer beta_schedule='squaredcos_cap_v2' or rescale_betas_zero_snr",
                snr,
            )

    @property
    def device(self) -> torch.device:
        return self.denoiser.device

    @property
    def max_steps(self) -> int:
        return int(self.scheduler_config["num_train_timesteps"])

    def unstandardize(self, latents: torch.Tensor) -> torch.Tensor:
        """(B, D, L') -> (B, L', D)."""
        return (latents * self.latent_std.to(latents.device) + self.latent_mean.to(latents.device)).transpose(1, 2)

    def check_codec(self, codec) -> None:
        check_signature(self.codec_signature, codec, "diffusion prior")

    def sample(
        self, n: int, *, labels=None, seed: int | None = 0, batch_size: int = 256, progress: bool = True, **options
    ) -> PriorSample:
        """``n`` codebook-vector sequences ``(n, L', D)``; options: ``steps``, ``sampler``, ``guidance``."""
        settings = sampling_options(DiffusionPrior, options, "diffusion prior sampling options")
        vectors = self.sample_vectors(
            n, settings.steps, settings.sampler, labels, settings.guidance, seed, batch_size, progress
        )
        return PriorSample(vectors=vectors, info=asdict(settings))

    @torch.no_grad()
    def sample_vectors(
        self,
        n: int,
        steps: int = 20,
        sampler: str = "dpm",
        labels=None,
        guidance: float = 1.0,
        seed: int | None = 0,
        batch_size: int = 256,
        progress: bool = True,
    ) -> torch.Tensor:
        """``n`` latents ``(n, L', D)`` (unsnapped). ``guidance`` > 1 applies classifier-free guidance to ``labels``."""
        self._check_steps(steps)
        label_ids = as_long(labels, n, self.labels, "diffusion prior")
        if label_ids is not None and self.denoiser.class_embedding is None:
            raise DataError("diffusion prior: labels given, but this prior was trained without class conditioning")
        generator = torch.Generator(device="cpu").manual_seed(seed if seed is not None else torch.seed())
        self.denoiser.eval()
        config = self.denoiser.config
        out = []
        for start in range(0, n, batch_size):
            count = min(batch_size, n - start)
            scheduler = sampling_scheduler(sampler, self.scheduler_config)
            scheduler.set_timesteps(steps, device=self.device)
            shape = (count, config.latent_channels, config.latent_length)
            x = torch.randn(shape, generator=generator).to(self.device) * scheduler.init_noise_sigma
            cond = label_ids[start : start + count].to(self.device) if label_ids is not None else None
            x = self._denoise(x, scheduler, scheduler.timesteps, sampler, generator, cond, guidance, progress)
            out.append(self.unstandardize(x))
        return torch.cat(out)

    def _check_steps(self, steps: int) -> None:
        if not 1 <= steps <= self.max_steps:
            raise ConfigError(
                f"steps must lie in [1, {self.max_steps}] (the schedule has {self.max_steps} training steps), got "
                f"{steps}"
            )

    def _denoise(self, x, scheduler, timesteps, sampler, generator, cond=None, guidance=1.0, progress=False,
                 after_step=None) -> torch.Tensor:  # fmt: skip
        """Run the sampler over ``timesteps`` from ``x`` (standardised, channels-first); ``after_step(x, i)``, if
        given, may change ``x`` after step ``i`` (inpainting puts the observed latents back)."""
        for i, t in enumerate(tqdm(timesteps, desc=f"sample {sampler}", leave=False, disable=not progress)):
            model_input = scheduler.scale_model_input(x, t)
            if cond is not None and guidance != 1.0:
                null = torch.full_like(cond, self.denoiser.null_class)
                both = self.denoiser(torch.cat([model_input, model_input]), t, torch.cat([cond, null]))
                conditional, unconditional = both.chunk(2)
                prediction = unconditional + guidance * (conditional - unconditional)
            else:
                prediction = self.denoiser(model_input, t, cond)
            if sampler in STOCHASTIC_SAMPLERS:  # the step's noise comes from the CPU generator, on any device
                x = scheduler.step(prediction.cpu(), t, x.cpu(), generator=generator).prev_sample.to(self.device)
            else:
                x = scheduler.step(prediction, t, x).prev_sample
            if after_step is not None:
                x = after_step(x, i)
        return x

    def standardize(self, vectors: torch.Tensor) -> torch.Tensor:
        """(B, L', D) -> (B, D, L'), the denoiser's standardised latents (``unstandardize`` undoes it)."""
        vectors = vectors.transpose(1, 2).float()
        return (vectors - self.latent_mean.to(vectors.device)) / self.latent_std.to(vectors.device)

    @torch.no_grad()
    def inpaint_vectors(
        self,
        known: torch.Tensor,
        keep: torch.Tensor,
        steps: int = 20,
        sampler: str = "dpm",
        seed: int | None = 0,
        start: torch.Tensor | None = None,
        strength: float = 1.0,
        progress: bool = False,
    ) -> torch.Tensor:
        """Latents ``(n, L', D)`` (unsnapped) that keep ``known`` ``(n, L', D)`` where ``keep`` ``(n, L')`` is True
        and draw the rest given them: after every step the kept positions are set to their vectors noised to the
        next step's level (the replacement of RePaint, Lugmayr et al. 2022, without its resampling), so each step
        of the model sees the observed latents at the noise level it expects. ``start`` ``(n, L', D)``: a guess at
        the whole sequence (the rhythm's planned beats in ``tsvq.repair``), noised to ``strength`` of the schedule
        and denoised from there (SDEdit, Meng et al. 2022): the draw keeps its coarse shape and the prior redraws
        the detail. ``L'`` is the denoiser's ``latent_length``."""
        config = self.denoiser.config
        if known.ndim != 3 or known.shape[1:] != (config.latent_length, config.latent_channels):
            raise DataError(
                f"diffusion prior: known vectors must have shape (n, {config.latent_length}, {config.latent_channels})"
                f", got {tuple(known.shape)}"
            )
        if not 0.0 < strength <= 1.0:
            raise ConfigError(f"strength must lie in (0, 1], got {strength}")
        self._check_steps(steps)
        generator = torch.Generator(device="cpu").manual_seed(seed if seed is not None else torch.seed())
        self.denoiser.eval()
        scheduler = sampling_scheduler(sampler, self.scheduler_config)
        scheduler.set_timesteps(steps, device=self.device)
        observed = self.standardize(known.to(self.device))
        keep = keep.to(self.device)[:, None, :]
        skip = 0 if start is None else min(steps - 1, int(round(steps * (1.0 - strength))))
        timesteps = scheduler.timesteps[skip:]
        if hasattr(scheduler, "set_begin_index"):
            scheduler.set_begin_index(skip * scheduler.order)
        noise = torch.randn(observed.shape, generator=generator).to(self.device)
        if start is None:
            x = noise * scheduler.init_noise_sigma
        else:
            x = scheduler.add_noise(self.standardize(start.to(self.device)), noise, timesteps[:1].repeat(len(noise)))

        def put_back(x: torch.Tensor, i: int) -> torch.Tensor:
            if i + 1 == len(timesteps):
                return torch.where(keep, observed, x)
            fresh = torch.randn(observed.shape, generator=generator).to(self.device)
            level = timesteps[i + 1 : i + 2].repeat(len(x))
            return torch.where(keep, scheduler.add_noise(observed, fresh, level), x)

        x = self._denoise(x, scheduler, timesteps, sampler, generator, after_step=put_back, progress=progress)
        return self.unstandardize(x)

    def save_pretrained(self, folder: str | Path) -> None:
        with atomic_directory(folder) as tmp:
            self.denoiser.save_pretrained(tmp / "denoiser")
            DDPMScheduler.from_config(self.scheduler_config).save_pretrained(tmp / "scheduler")
            write_json(
                tmp / "prior.json",
                {
                    "kind": self.kind,
                    "format_version": PRIOR_FORMAT_VERSION,
                    "models": "codebook vectors (B, L', D)",
                    "latent_mean": self.latent_mean.flatten().tolist(),
                    "latent_std": self.latent_std.flatten().tolist(),
                    "labels": self.labels,
                    "codec_signature": self.codec_signature,
                },
            )

    @classmethod
    def from_pretrained(cls, folder: str | Path, device: str | torch.device = "cpu") -> DiffusionPrior:
        folder = Path(folder)
        info = read_prior_description(folder, cls.kind)
        denoiser = load_model(saved_denoiser_class(folder / "denoiser"), folder / "denoiser").to(device)
        scheduler_config = read_json(folder / "scheduler" / "scheduler_config.json", "scheduler config")
        return cls(
            denoiser,
            scheduler_config,
            torch.tensor(info["latent_mean"]),
            torch.tensor(info["latent_std"]),
            info.get("labels"),
            info.get("codec_signature"),
        )
