"""The denoiser stage: train an encoder to give noisy windows the codes of their clean selves.

Each training window (clean, from the store) gets recorded noise (``tsvq.data.noise``, nst-calibrated, a random
source at a random signal-to-noise ratio; some windows stay clean, so clean input stays clean). The loss asks the
denoising encoder for the latent the codec's own encoder gives the clean window, for codes that decode to the clean
window through the codec's frozen decoder, and for the share of the input to keep at each code position (the output
is the decoded codes plus that share of what they leave out) that brings the output closest to the clean window.
The codec does not change: the pipeline's codes, priors and compressed files stay valid. A refiner
(``refiner_channels``) trains on the mean output SNR in dB of its windows, with the rest or alone (``freeze_encoder``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from tsvq.codec import VQVAE
from tsvq.codec.denoising import DenoisingEncoder, frequency_bands, keep_input
from tsvq.codec.metrics import prdn
from tsvq.codec.model import reconstruction_error
from tsvq.config import as_config
from tsvq.data import WindowStore
from tsvq.data.noise import NoiseBank, check_snr_db, portable_name, scaled_to_snr
from tsvq.data.preprocess import Preprocessing
from tsvq.errors import ConfigError
from tsvq.safe_loading import load_model
from tsvq.training.augment import AugmentConfig, augment
from tsvq.training.loop import ModelFolderTask, TrainingConfig, state_hash, train_stage
from tsvq.training.stages import Stage


@dataclass
class DenoiserStageConfig:
    """``noise``: records of noise ("RECORD", or "NOISY - CLEAN" for noise recovered as a difference);
    ``noise_span``: the part of each (fractions of its length) trained on, so the rest can measure it."""

    store: str = "runs/store"
    codec: str = "runs/codec/model"
    noise: list[str] = field(default_factory=list)
    noise_span: tuple[float, float] = (0.0, 0.7)
    snr_db: tuple[float, float] = (-6.0, 24.0)  # nst SNR drawn uniformly per window
    clean_fraction: float = 0.1  # windows trained without noise
    second_source: float = 0.3  # chance of a second noise source on top of the first
    hidden_channels: int = 64
    num_res_blocks: int = 2
    latent_weight: float = 1.0  # weight of the latent-matching term beside the decoded error
    init_from: str | None = None  # a trained denoiser folder to start from (fine-tuning, e.g. on other noise)
    refiner_channels: int = 0  # > 0: add (or keep training) a refiner of this width (tsvq.codec.denoising.Refiner)
    freeze_encoder: bool = False  # train the refiner alone, on the codes and blend of init_from's encoder
    output_loss: str = "mse"  # relative: each window's output error over its clean energy (clean windows weigh more)
    val_max_windows: int = 256
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    training: TrainingConfig = field(default_factory=lambda: TrainingConfig(output_dir="runs/denoiser"))

    def __post_init__(self):
        self.augment = as_config(AugmentConfig, self.augment, "denoiser stage: augment")
        self.noise_span, self.snr_db = tuple(self.noise_span), tuple(self.snr_db)
        if not self.noise:
            raise ConfigError("denoiser stage: 'noise' lists no noise record")
        check_snr_db(self.snr_db, "denoiser stage: snr_db")
        if len(self.snr_db) != 2 or self.snr_db[0] > self.snr_db[1]:
            raise ConfigError(f"denoiser stage: snr_db {list(self.snr_db)} must be (low, high)")
        if self.output_loss not in ("mse", "relative"):
            raise ConfigError(f"denoiser stage: output_loss must be 'mse' or 'relative', got {self.output_loss!r}")
        if self.refiner_channels < 0:
            raise ConfigError(f"denoiser stage: refiner_channels must be >= 0, got {self.refiner_channels}")
        if self.freeze_encoder and not (self.init_from and self.refiner_channels):
            raise ConfigError(
                "denoiser stage: freeze_encoder trains the refiner alone: give init_from and refiner_channels"
            )
        for name in ("clean_fraction", "second_source"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"denoiser stage: {name} must lie in [0, 1], got {getattr(self, name)}")


def add_noise(clean: np.ndarray, bank: NoiseBank, rng: np.random.Generator, snr_db: tuple[float, float],
              clean_fraction: float, second_source: float, rate_hz: float) -> np.ndarray:  # fmt: skip
    """``clean`` windows ``(B, L, C)`` with noise from ``bank`` at nst SNRs drawn in ``snr_db`` (the window's
    peak-to-peak amplitude standing for its QRS amplitude)."""
    noisy = clean.copy()
    b, length, channels = clean.shape
    for i in range(b):
        if rng.random() < clean_fraction:
            continue
        for c in range(channels):
            power = np.ptp(clean[i, :, c]) ** 2 / 8
            noise = bank.draw(rng, length)
            if rng.random() < second_source:
                noise = noise + bank.draw(rng, length) * rng.uniform(0.3, 1.0)
            noisy[i, :, c] += scaled_to_snr(noise, power, rng.uniform(*snr_db), rate_hz)
    return noisy


class DenoiserTask(ModelFolderTask):
    best_metric = "prdn"

    def __init__(self, config: DenoiserStageConfig):
        self.config = config
        self.store = WindowStore(config.store)
        self.codec = load_model(VQVAE, config.codec).eval().requires_grad_(False)
        if self.codec.config.window_length != self.store.window_length:
            raise ConfigError(f"{config.codec}: codec windows differ in length from the store's")
        self.rate = float(self.codec.config.sampling_rate_hz)
        self.bank = NoiseBank(config.noise, Preprocessing.from_dict(self.codec.config.preprocessing), config.noise_span)
        noise = tuple(portable_name(spec) for spec in config.noise)
        seen = {"noise": noise, "noise_span": config.noise_span, "snr_db": config.snr_db}
        if config.init_from:
            self.model = with_refiner(load_model(DenoisingEncoder, config.init_from), config.refiner_channels,
                                      config.init_from)  # fmt: skip
            self.model.check_codec(self.codec, config.init_from)
            self.model.register_to_config(**seen)  # what it was trained on last
        else:
            self.model = DenoisingEncoder.for_codec(self.codec, config.hidden_channels, config.num_res_blocks,
                                                    refiner_channels=config.refiner_channels, **seen)  # fmt: skip
        if config.freeze_encoder:
            for name, parameter in self.model.named_parameters():
                parameter.requires_grad_(name.startswith("refiner."))
        if self.model.refiner is not None:  # kept by the figure it trains on, not by PRDN (which the noisiest sway)
            self.best_metric = "error_db"
        self.train_dataset = self.store.dataset("train", balance_groups=True, balance_sources=True)
        clean = self.store.load(self.store.validation_split(), config.val_max_windows, config.training.seed)
        rng = np.random.default_rng(config.training.seed)
        self.val_clean = clean
        self._share: tuple[str, list[float]] | None = None  # (weights' hash, their clean_error_share)
        self.val_noisy = add_noise(clean, self.bank, rng, config.snr_db, 0.0, 0.0, self.rate)
        if config.freeze_encoder:  # its codes stay: the refiner learns to correct the blend of their measured shares
            self.model.register_to_config(clean_error_share=self.measured_share(self.model))

    def loss(self, model, batch):
        clean = augment(batch["signal"], self.config.augment)
        codec = self.codec.to(clean.device)
        seed = int(torch.randint(0, 2**31 - 1, (1,)))  # from torch's RNG, which a resumed run restores
        rng = np.random.default_rng(seed)
        c = self.config
        noisy = add_noise(clean.cpu().numpy(), self.bank, rng, c.snr_db, c.clean_fraction, c.second_source, self.rate)
        x_clean = codec.normalize(clean.transpose(1, 2))
        x_noisy = codec.normalize(torch.from_numpy(noisy).to(clean.device).transpose(1, 2)).float()

        def decode(z: torch.Tensor) -> torch.Tensor:
            b, d, length = z.shape
            summary, _ = codec.quantizer(z.transpose(1, 2).reshape(-1, d))
            quantized = summary.quantized.view(b, length, d).transpose(1, 2)  # straight-through: gradients reach z
            return codec.decoder(codec.project_out(quantized)).float()

        share = getattr(model, "module", model).config.clean_error_share  # the model may come wrapped for DDP
        z, keep, decoded, refined = model(x_noisy, decode, partial(self._blend, share, x_noisy))
        kept = keep.float().repeat_interleave(codec.config.downsample_factor, dim=-1)
        output = reconstruction_error(decoded + kept * (x_noisy - decoded), x_clean.float(), c.output_loss)
        reconstruction = F.mse_loss(decoded, x_clean.float())
        logs = {"reconstruction_loss": reconstruction, "output_loss": output, "kept": keep}
        loss = 0.0
        if not c.freeze_encoder:  # a frozen encoder's latent error is a constant: not worth an encoder pass a step
            with torch.no_grad():
                target = codec.project_in(codec.encoder(x_clean)).float()
            logs["latent_loss"] = latent = F.mse_loss(z.float(), target) / target.var().clamp(min=1e-8)
            loss = reconstruction + c.latent_weight * latent + output
        if refined is not None:
            logs["refiner_loss"] = refiner = log_error_ratio(refined, x_clean)
            loss = loss + refiner
        return loss, {name: float(value.detach().mean()) for name, value in logs.items()}

    def _blend(self, share: float | list[float] | None, x_noisy: torch.Tensor, decoded: torch.Tensor,
               keep: torch.Tensor):  # fmt: skip
        """What the refiner corrects when denoising: ``keep_input``'s blend of the input and the decoded codes
        (normalised, as data: no gradient), with the Wiener gain of ``share``, the ``clean_error_share`` the
        denoiser was last saved with (None until then: the learnt share alone)."""
        codec = self.codec
        keep = keep.detach().transpose(1, 2).cpu().numpy()
        blended = keep_input(codec.physical_array(decoded), keep, codec.physical_array(x_noisy),
                             codec.config.downsample_factor, share, self.rate)  # fmt: skip
        return codec.normalized_tensor(blended).to(x_noisy.device)

    @torch.no_grad()
    def save(self, model, folder) -> None:
        """Saved with ``clean_error_share`` measured on the clean validation windows (``keep_input``'s gain)."""
        model.register_to_config(clean_error_share=self.measured_share(model))
        super().save(model, folder)

    def measured_share(self, model) -> list[float]:
        """``clean_error_share`` of these weights, measured once: saving the best model right after evaluating it
        reuses the evaluation's, and a refiner training on a frozen encoder reuses the first (the shares come from
        the encoder's codes alone, so the refiner's weights are left out of the key)."""
        weights = state_hash(model, leave_out="refiner.")
        if self._share is None or self._share[0] != weights:
            self._share = (weights, clean_error_share(model, self.codec, self.val_clean, self.rate))
        return self._share[1]

    @torch.no_grad()
    def evaluate(self, model) -> dict[str, float]:
        codec = self.codec.to(next(model.parameters()).device)
        projected, denoised = [], []
        share = self.measured_share(model)
        for i in range(0, len(self.val_noisy), 64):
            noisy = self.val_noisy[i : i + 64]
            encoded, keep = model.estimate(codec, noisy)
            decoded = codec.decode(encoded.codes).cpu().numpy()
            projected.append(decoded)
            blended = keep_input(decoded, keep.cpu().numpy(), noisy, codec.config.downsample_factor, share, self.rate)
            denoised.append(model.refine_windows(codec, noisy, decoded, blended))
        denoised = np.concatenate(denoised)
        error_db = 10 * float(log_error_ratio(torch.from_numpy(denoised), torch.from_numpy(self.val_clean)))
        return {
            "prdn": float(prdn(self.val_clean, denoised).mean()),
            "error_db": error_db,  # minus the mean output SNR
            "prdn_projected": float(prdn(self.val_clean, np.concatenate(projected)).mean()),
            "prdn_noisy_input": float(prdn(self.val_clean, self.val_noisy).mean()),
        }


@torch.no_grad()
def clean_error_share(
    model: DenoisingEncoder, codec, clean: np.ndarray, rate: float, batch_size: int = 64
) -> list[float]:
    """The power ``model``'s decoded codes miss on a typical clean window of ``clean`` ``(N, L, C)`` at ``rate`` Hz,
    as a share of their own power, in each band of ``frequency_bands`` (``keep_input``'s gains): the median over
    windows, since some windows a store calls clean carry noise of their own."""
    codec = codec.to(next(model.parameters()).device)
    shares = []
    for i in range(0, len(clean), batch_size):
        windows = clean[i : i + batch_size].astype(np.float64)
        encoded, _ = model.estimate(codec, windows)
        decoded = codec.decode(encoded.codes).cpu().numpy().astype(np.float64)
        bands = zip(frequency_bands(windows - decoded, rate), frequency_bands(decoded, rate))
        shares.append([(m**2).sum(axis=(1, 2)) / np.maximum((d**2).sum(axis=(1, 2)), 1e-20) for m, d in bands])
    return [float(s) for s in np.median(np.concatenate(shares, axis=1), axis=1)]


def log_error_ratio(output: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    """Mean over windows of log10(error energy / clean energy + 1e-4): minus the output SNR in bels (tens of dB),
    capped at 40 dB. Why not the MSE: it weighs the noisiest windows most, and a refiner so trained gives up the
    near-clean ones, where the input itself is the answer; in dB every window counts alike, as the figures do."""
    error = ((output.float() - clean.float()) ** 2).mean(dim=(1, 2))
    energy = (clean.float() ** 2).mean(dim=(1, 2)).clamp(min=1e-8)
    return torch.log10(error / energy + 1e-4).mean()


def with_refiner(model: DenoisingEncoder, width: int, where: str) -> DenoisingEncoder:
    """``model`` with a refiner of ``width`` channels added (its weights kept), or as it is if it has one or none
    is asked for."""
    have = model.config.refiner_channels
    if not width or have == width:
        return model
    if have:
        raise ConfigError(f"{where}: has a refiner of {have} channels; refiner_channels asks for {width}")
    settings = {k: v for k, v in model.config.items() if not k.startswith("_")}  # not diffusers' own bookkeeping
    grown = DenoisingEncoder(**(settings | {"refiner_channels": width}))
    missing, unexpected = grown.load_state_dict(model.state_dict(), strict=False)
    assert not unexpected and all(name.startswith("refiner.") for name in missing)
    return grown


def train_denoiser(config: DenoiserStageConfig) -> Path:
    """Train the denoiser stage; returns the folder of the best denoising encoder."""
    return train_stage(DenoiserTask, config)


STAGE = Stage(DenoiserStageConfig, train_denoiser)
