"""The diffusion-prior stage: learn the distribution of the codec's codebook vectors of the training windows."""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers.training_utils import EMAModel, compute_snr

from tsvq.codec.quantizer import stage_vectors
from tsvq.config import as_config
from tsvq.errors import ConfigError
from tsvq.pretrained import pipeline_part
from tsvq.priors.denoiser import DenoiserConfig, build_denoiser
from tsvq.priors.diffusion import DiffusionPrior, NoiseScheduleConfig, training_scheduler
from tsvq.priors.signature import codec_signature
from tsvq.training.loop import TrainingConfig, train_stage
from tsvq.training.prior_data import check_balance_groups, drop_labels, load_stage_data
from tsvq.training.stages import Stage


@dataclass
class DiffusionStageConfig:
    store: str = "runs/store"
    codec: str = "runs/codec/model"
    model: DenoiserConfig = field(default_factory=DenoiserConfig)
    scheduler: NoiseScheduleConfig = field(default_factory=NoiseScheduleConfig)
    conditional: bool = False  # condition on window labels (classifier-free guidance at sampling)
    # how much each patient weighs per epoch: 0 as stored, 1 every patient the same (``balanced_indices``)
    balance_groups: float = 0.0
    balance_labels: bool = False  # conditional: every label weighs the same (patients balanced within each)
    # "per_dim": each codebook dimension standardised on its own; "global": one mean and spread for all of them
    # (keeps the dimensions' relative scales, as the codebook has them)
    latent_normalisation: str = "per_dim"
    label_dropout: float = 0.1
    ema_decay: float = 0.999
    # > 0: Min-SNR-gamma loss weights (Hang et al. 2023); 0: the plain mean squared error of the prediction target
    snr_gamma: float = 0.0
    val_max_windows: int = 512
    # a saved diffusion prior (of this codec, with this ``model``) to fine-tune instead of starting from noise:
    # its weights and latent statistics; labels it knows keep their embeddings, new ones start from its "no label"
    init_from: str | None = None
    training: TrainingConfig = field(
        default_factory=lambda: TrainingConfig(output_dir="runs/diffusion", learning_rate=2e-4)
    )

    def __post_init__(self):
        check_balance_groups(self.balance_groups, "diffusion stage")
        self.model = as_config(DenoiserConfig, self.model, "diffusion stage: model")
        self.scheduler = as_config(NoiseScheduleConfig, self.scheduler, "diffusion stage: scheduler")
        if self.latent_normalisation not in ("per_dim", "global"):
            raise ConfigError(
                f"diffusion stage: latent_normalisation must be per_dim or global, not {self.latent_normalisation!r}"
            )
        if self.snr_gamma < 0:
            raise ConfigError(f"diffusion stage: snr_gamma must be >= 0 (0: no weighting), not {self.snr_gamma}")


def min_snr_weights(scheduler, timesteps: torch.Tensor, gamma: float) -> torch.Tensor:
    """Min-SNR-gamma weights (Hang et al. 2023) per timestep, for the scheduler's prediction target: each step's loss
    then counts as a clean-latent error weighted by min(SNR, gamma). The nearly clean steps (huge SNR), easy to
    denoise, stop pulling the gradient their way; the noisy steps that decide a sample's shape weigh more."""
    snr = compute_snr(scheduler, timesteps)
    clipped = snr.clamp(max=gamma)
    kind = scheduler.config.prediction_type
    if kind == "epsilon":  # epsilon error = clean error x SNR; zero SNR (a zero-terminal schedule) keeps weight 1
        return torch.where(snr > 0, clipped / snr.clamp(min=1e-12), torch.ones_like(snr))
    if kind == "v_prediction":  # velocity error = clean error x (SNR + 1)
        return clipped / (snr + 1)
    return clipped


class DiffusionTask:
    best_metric = "val_loss"

    def __init__(self, config: DiffusionStageConfig):
        self.config = config
        data = load_stage_data(config)
        self.store, self.codec, self.labels = data.store, data.codec, data.labels
        self.model = build_denoiser(config.model, self.codec.code_dim, self.codec.latent_length, len(self.labels))
        if config.init_from:  # the statistics its weights were trained under
            self.mean, self.std = warm_start(self.model, self.labels, config.init_from, self.codec, config.scheduler)
        else:
            self.mean, self.std = latent_statistics(self.codec, data.train_codes, config.latent_normalisation)
        # codes, not vectors: a batch is looked up in one call (``latents``), and memory stays at the codes' size.
        # The codebooks stay fixed while the prior trains: the lookup needs only them, wherever the batches are.
        with torch.no_grad():
            codebooks = self.codec.quantizer.stage_codebooks().detach()
        self._lookup = {codebooks.device: (codebooks, self.mean, self.std)}  # per device: copied there on first use
        self.train_dataset, self.val_dataset = data.datasets()
        self.noise_scheduler = training_scheduler(**asdict(config.scheduler))
        self.ema = EMAModel(
            self.model.parameters(), decay=config.ema_decay, model_cls=type(self.model), model_config=self.model.config
        )

    @torch.no_grad()
    def latents(self, codes: torch.Tensor) -> torch.Tensor:
        """Standardised codebook vectors ``(B, D, L')`` of a batch of codes ``(B, L')`` or ``(B, L', Q)``, computed
        where the codes are. The codebooks move there with the first batch, so a GPU step neither copies its
        batch to the codec's device and back nor waits for it; one lookup per batch, not per window."""
        if codes.device not in self._lookup:
            self._lookup[codes.device] = tuple(t.to(codes.device) for t in next(iter(self._lookup.values())))
        codebooks, mean, std = self._lookup[codes.device]
        vectors = stage_vectors(codebooks, codes.long().reshape(codes.shape[0], codes.shape[1], -1)).transpose(1, 2)
        return (vectors - mean.view(-1, 1)) / std.view(-1, 1)

    def _target(self, latents, noise, timesteps):
        kind = self.noise_scheduler.config.prediction_type
        if kind == "epsilon":
            return noise
        if kind == "v_prediction":
            return self.noise_scheduler.get_velocity(latents, noise, timesteps)
        return latents

    def _denoising_loss(self, model, latents, labels, generator=None, timesteps=None, snr_gamma: float = 0.0):
        """Mean squared error of the prediction target; ``snr_gamma`` > 0 weights each window by its timestep's
        Min-SNR weight (training only: validation stays unweighted, comparable across settings)."""
        # seeded validation noise comes from its generator's device (a CPU one: the same on every device);
        # training noise is drawn where the latents are
        noise = torch.randn(
            latents.shape, generator=generator, device=latents.device if generator is None else generator.device
        )
        noise = noise.to(latents.device)
        if timesteps is None:
            timesteps = torch.randint(
                0, self.noise_scheduler.config.num_train_timesteps, (latents.shape[0],), device=latents.device
            )
        noisy = self.noise_scheduler.add_noise(latents, noise, timesteps)
        prediction = model(noisy, timesteps, labels if self.labels else None)
        target = self._target(latents, noise, timesteps)
        if not snr_gamma:
            return F.mse_loss(prediction.float(), target.float())
        per_window = F.mse_loss(prediction.float(), target.float(), reduction="none").mean(dim=(1, 2))
        return (per_window * min_snr_weights(self.noise_scheduler, timesteps, snr_gamma)).mean()

    def loss(self, model, batch):
        labels = batch["label"]
        if self.labels:
            labels = drop_labels(labels, len(self.labels), self.config.label_dropout)
        loss = self._denoising_loss(model, self.latents(batch["codes"]), labels, snr_gamma=self.config.snr_gamma)
        return loss, {}

    def after_step(self, model) -> None:
        self.ema.step(model.parameters())

    def checkpoint_objects(self) -> list:
        return [self.ema]

    @torch.no_grad()
    def evaluate(self, model) -> dict[str, float]:
        """Denoising loss on validation latents with the EMA weights, fixed noise and timesteps (comparable across
        steps)."""
        self.ema.store(model.parameters())
        self.ema.copy_to(model.parameters())
        generator = torch.Generator().manual_seed(1234)
        latents = self.latents(self.val_dataset.codes.to(model.device))
        labels = self.val_dataset.labels.to(model.device)
        steps = self.noise_scheduler.config.num_train_timesteps
        timesteps = torch.linspace(0, steps - 1, len(latents)).long().to(model.device)
        loss = float(self._denoising_loss(model, latents, labels, generator, timesteps))
        self.ema.restore(model.parameters())
        return {"val_loss": loss}

    def prior(self, model) -> DiffusionPrior:
        """The prior with EMA weights, ready to sample or save."""
        ema_model = copy.deepcopy(model)
        self.ema.copy_to(ema_model.parameters())
        return DiffusionPrior(
            ema_model, dict(self.noise_scheduler.config), self.mean, self.std, self.labels, codec_signature(self.codec)
        )

    def save(self, model, folder: Path) -> None:
        self.prior(model).save_pretrained(folder)


@torch.no_grad()
def latent_statistics(codec, codes: np.ndarray, normalisation: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and spread of the codebook vectors of the training codes, per dimension (``per_dim``) or one for all
    (``global``)."""
    vectors = codec.codes_to_vectors(torch.from_numpy(codes)).reshape(-1, codec.code_dim)
    if normalisation == "global":
        return vectors.mean().expand(vectors.shape[1]), vectors.std().clamp(min=1e-6).expand(vectors.shape[1])
    return vectors.mean(0), vectors.std(0).clamp(min=1e-6)


def warm_start(
    model, labels: list[str], folder: str, codec, schedule: NoiseScheduleConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """Load the saved prior at ``folder`` into ``model`` (labels matched by name; a label it lacks starts from its
    "no label" embedding, so a new class begins as the unconditional model) and return its latent statistics, which
    its weights were trained under."""
    where = f"diffusion stage: init_from {folder}"
    try:
        prior = DiffusionPrior.from_pretrained(pipeline_part(folder, "priors/diffusion"))
    except (OSError, ValueError) as error:
        raise ConfigError(f"{where}: not a saved diffusion prior ({error})") from error
    prior.check_codec(codec)
    for key, value in asdict(schedule).items():
        if prior.scheduler_config.get(key, value) != value:
            raise ConfigError(
                f"{where}: it was trained with scheduler {key}={prior.scheduler_config[key]!r}, not {value!r}"
            )
    state = {name: tensor.float() for name, tensor in prior.denoiser.state_dict().items()}
    own = model.state_dict()
    embedding = "class_embedding.weight"
    if embedding in own:
        if embedding not in state:
            raise ConfigError(f"{where}: that prior is unconditional; it cannot start a conditional one")
        saved = state[embedding]
        known = {label: i for i, label in enumerate(prior.labels)}
        rows = [known.get(label, len(prior.labels)) for label in labels] + [len(prior.labels)]
        state[embedding] = saved[rows]
    elif embedding in state:
        del state[embedding]
    mismatched = sorted(k for k in own if k not in state or state[k].shape != own[k].shape)
    if mismatched or len(state) != len(own):
        raise ConfigError(f"{where}: its denoiser differs from the stage's model ({', '.join(mismatched[:3])} ...)")
    model.load_state_dict(state)
    return prior.latent_mean.flatten(), prior.latent_std.flatten()


def train_diffusion(config: DiffusionStageConfig) -> Path:
    """Train the diffusion prior stage; returns the folder of the best prior (EMA weights)."""
    return train_stage(DiffusionTask, config)


STAGE = Stage(DiffusionStageConfig, train_diffusion)
