"""The VQ-VAE codec: ``(B, L, C)`` signals in physical units <-> ``(B, L', D)`` codebook vectors and codes.

Normalisation statistics and the sampling rate live in the config, so ``decode`` returns physical units at the
right rate, and a saved folder (``config.json`` + safetensors, through diffusers' ``ModelMixin``) is all a later
stage needs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from tsvq.codec.modules import Decoder, Encoder
from tsvq.codec.quantizer import QuantizerOutput, ResidualVectorQuantizer
from tsvq.codec.search import search_codes
from tsvq.data.preprocess import real_array
from tsvq.errors import ConfigError, DataError


@dataclass
class CodecOutput:
    """What a training forward pass returns; tensors are channels-first, in normalised units."""

    reconstruction: torch.Tensor
    loss: torch.Tensor
    reconstruction_loss: torch.Tensor
    quantizer_loss: torch.Tensor
    quantizer: QuantizerOutput
    stages: list[QuantizerOutput]
    spectral_loss: torch.Tensor | None = None  # the multi-resolution STFT loss, when the config weighs it in


@dataclass
class Encoded:
    """``vectors`` (B, L', D) float32 codebook vectors; ``codes`` (B, L') int64, or (B, L', Q) with residual VQ."""

    vectors: torch.Tensor
    codes: torch.Tensor


def as_signal_tensor(signals, channels: int, what: str = "signals") -> torch.Tensor:
    """Check and convert user input to a float32 ``(B, L, C)`` tensor, with errors that say what is wrong."""
    if isinstance(signals, np.ndarray):
        signals = torch.from_numpy(np.ascontiguousarray(real_array(signals, what), dtype=np.float32))
    if not isinstance(signals, torch.Tensor):
        raise DataError(
            f"{what}: expected a NumPy array or torch tensor of shape (B, L, C), got {type(signals).__name__}"
        )
    if signals.is_complex() or signals.dtype == torch.bool:
        raise DataError(f"{what}: expected real-valued samples, got dtype {signals.dtype}")
    if signals.ndim == 2 and channels == 1:
        raise DataError(
            f"{what}: expected shape (B, L, C); got {tuple(signals.shape)}. Add the channel axis: x[..., None]"
        )
    if signals.ndim != 3:
        raise DataError(f"{what}: expected shape (B, L, C), got {tuple(signals.shape)}")
    if not signals.shape[0] or not signals.shape[1]:
        raise DataError(f"{what}: expected at least one window of at least one sample, got {tuple(signals.shape)}")
    if signals.shape[-1] != channels:
        raise DataError(
            f"{what}: the codec expects C = {channels} channel(s) in the last axis, got shape {tuple(signals.shape)}"
        )
    signals = signals.float()
    if not torch.isfinite(signals).all():
        raise DataError(f"{what}: contains NaN or Inf samples; clean or split the signal first (tsvq.data.preprocess)")
    return signals


def reconstruction_error(reconstruction: torch.Tensor, target: torch.Tensor, kind: str = "mse") -> torch.Tensor:
    """Training loss on ``(B, C, L)`` normalised windows.

    ``mse`` weighs every sample alike, so a window twice as tall counts four times as much; ``relative`` divides
    each window's squared error by its mean-removed energy (the square of its PRDN), so quiet windows, leads
    and patients count as much as loud ones (on the shared recordings: a healthier codebook on an unseen patient).
    """
    if kind == "mse":
        return F.mse_loss(reconstruction, target)
    error = (reconstruction - target).pow(2).sum(dim=(1, 2))
    centred = target - target.mean(dim=2, keepdim=True)
    # Floor: a near-flat window (1% of unit variance) must not dominate the batch with a tiny denominator.
    energy = centred.pow(2).sum(dim=(1, 2)).clamp_min(1e-2 * target.shape[1] * target.shape[2])
    return (error / energy).mean()


SPECTRAL_FFT_SIZES = (32, 64, 128)  # 128 ms to 512 ms at 250 Hz: QRS-scale detail to a beat's P-QRS-T


def multi_resolution_stft_loss(
    reconstruction: torch.Tensor, target: torch.Tensor, fft_sizes: tuple[int, ...] = SPECTRAL_FFT_SIZES
) -> torch.Tensor:
    """Spectral convergence plus log-magnitude L1 of ``(B, C, L)`` windows, averaged over STFT sizes (Hann windows,
    hop a quarter; Yamamoto et al. 2020, the loss of neural audio codecs).

    A squared error in time barely sees broadband noise a few percent of the signal's power; the log-magnitude
    term weighs every frequency bin alike, so noise where the target has none (above its band edge) costs as much
    as a missing wave. Sizes longer than the window are skipped."""
    x, y = reconstruction.reshape(-1, reconstruction.shape[-1]), target.reshape(-1, target.shape[-1])
    losses = []
    for size in (n for n in fft_sizes if n <= x.shape[-1]):
        window = torch.hann_window(size, device=x.device, dtype=x.dtype)
        spectra = [
            torch.stft(v, size, hop_length=size // 4, window=window, return_complex=True).abs().clamp_min(1e-5)
            for v in (x, y)
        ]
        convergence = torch.linalg.norm(spectra[1] - spectra[0]) / torch.linalg.norm(spectra[1])
        log_magnitude = (spectra[1].log() - spectra[0].log()).abs().mean()
        losses.append(convergence + log_magnitude)
    if not losses:
        raise ValueError(f"window of {x.shape[-1]} samples is shorter than every STFT size {fft_sizes}")
    return torch.stack(losses).mean()


@dataclass
class CodecModelConfig:
    """The codec's architecture and quantizer, as a user chooses them (shape, rate and statistics come from the
    window store). The defaults are the codec measured on MIT-BIH's unseen DS2 patients (recipes/mitbih)."""

    hidden_channels: int = 64
    num_res_blocks: int = 3
    downsample_factor: int = 8  # samples per code position
    latent_dim: int = 64
    code_dim: int | None = 16  # codebook vectors are projected down to this (None: latent_dim)
    num_codes: int = 1024
    num_quantizers: int = 1  # > 1: residual VQ
    quantizer_dropout: float = 0.0  # residual VQ: chance of training with fewer stages (one model, many rates)
    codebook_mode: str = "ema"  # ema | loss (codebook + commitment loss)
    beta: float = 0.25  # commitment weight
    decay: float = 0.99  # EMA decay of the codebook
    kmeans_init: bool = True
    restart_dead_codes: bool = True
    dead_code_threshold: float = 0.1
    cosine_codes: bool = False
    input_bits: int = 11  # bits per stored input sample, for the compression ratio (MIT-BIH's ADC)
    reconstruction_loss_type: str = "relative"  # relative: each window's error over its energy; or mse
    spectral_loss_weight: float = 0.0  # > 0: adds a multi-resolution STFT loss (multi_resolution_stft_loss) this much


_DEFAULTS = CodecModelConfig  # the architecture's defaults live in one place: the config a user edits
# Settings a config written by an earlier tsvq lacks, with the value that config meant (not today's default).
_ABSENT_FROM_EARLIER_CONFIGS = {"reconstruction_loss_type": "mse"}


class VQVAE(ModelMixin, ConfigMixin):
    """1D convolutional VQ-VAE. Public methods take and return ``(B, L, C)``; the networks run channels-first.
    Its architecture's defaults are ``CodecModelConfig``'s."""

    config_name = "config.json"

    @classmethod
    def extract_init_dict(cls, config_dict, **kwargs):
        """Read a saved config as it was meant when written (diffusers calls this for every load)."""
        if "num_codes" in config_dict:  # a saved config, not keyword arguments
            config_dict = {**_ABSENT_FROM_EARLIER_CONFIGS, **config_dict}
        return super().extract_init_dict(config_dict, **kwargs)

    @register_to_config
    def __init__(
        self,
        in_channels: int = 1,
        channel_names: tuple[str, ...] = ("ECG",),
        units: tuple[str, ...] = ("mV",),
        sampling_rate_hz: float = 250.0,
        window_length: int = 1024,
        norm_mean: tuple[float, ...] = (0.0,),
        norm_std: tuple[float, ...] = (1.0,),
        hidden_channels: int = _DEFAULTS.hidden_channels,
        num_res_blocks: int = _DEFAULTS.num_res_blocks,
        downsample_factor: int = _DEFAULTS.downsample_factor,
        latent_dim: int = _DEFAULTS.latent_dim,
        code_dim: int | None = _DEFAULTS.code_dim,
        num_codes: int = _DEFAULTS.num_codes,
        num_quantizers: int = _DEFAULTS.num_quantizers,
        quantizer_dropout: float = _DEFAULTS.quantizer_dropout,
        codebook_mode: str = _DEFAULTS.codebook_mode,
        beta: float = _DEFAULTS.beta,
        decay: float = _DEFAULTS.decay,
        kmeans_init: bool = _DEFAULTS.kmeans_init,
        restart_dead_codes: bool = _DEFAULTS.restart_dead_codes,
        dead_code_threshold: float = _DEFAULTS.dead_code_threshold,
        cosine_codes: bool = _DEFAULTS.cosine_codes,
        input_bits: int = _DEFAULTS.input_bits,
        reconstruction_loss_type: str = _DEFAULTS.reconstruction_loss_type,
        spectral_loss_weight: float = _DEFAULTS.spectral_loss_weight,
        preprocessing: dict | None = None,
    ):
        """``preprocessing`` (tsvq.data.preprocess.Preprocessing as a dict) records how the training windows were
        conditioned, so a pipeline applies the same to new recordings; None for codecs saved before it was recorded."""
        super().__init__()
        if reconstruction_loss_type not in ("mse", "relative"):
            raise ValueError(f"reconstruction_loss_type must be 'mse' or 'relative', got {reconstruction_loss_type!r}")
        if not spectral_loss_weight >= 0:
            raise ValueError(f"spectral_loss_weight must be >= 0, got {spectral_loss_weight}")
        if downsample_factor < 1 or 2 ** int(math.log2(downsample_factor)) != downsample_factor:
            raise ValueError(f"downsample_factor must be a power of two, got {downsample_factor}")
        if window_length % downsample_factor:
            raise ValueError(
                f"window_length {window_length} must be divisible by downsample_factor {downsample_factor}"
            )
        if len(norm_mean) != in_channels or len(norm_std) != in_channels:
            raise ValueError(f"norm_mean/norm_std need {in_channels} value(s)")
        code_dim = code_dim or latent_dim
        self.encoder = Encoder(in_channels, hidden_channels, latent_dim, downsample_factor, num_res_blocks)
        self.decoder = Decoder(in_channels, hidden_channels, latent_dim, downsample_factor, num_res_blocks)
        # Low-dimensional codes (ViT-VQGAN's factorised codes): look up in a small space, project back out.
        self.project_in = nn.Conv1d(latent_dim, code_dim, 1) if code_dim != latent_dim else nn.Identity()
        self.project_out = nn.Conv1d(code_dim, latent_dim, 1) if code_dim != latent_dim else nn.Identity()
        self.quantizer = ResidualVectorQuantizer(
            num_quantizers=num_quantizers,
            quantizer_dropout=quantizer_dropout,
            num_codes=num_codes,
            dim=code_dim,
            mode=codebook_mode,
            beta=beta,
            decay=decay,
            kmeans_init=kmeans_init,
            restart_dead_codes=restart_dead_codes,
            dead_code_threshold=dead_code_threshold,
            cosine=cosine_codes,
        )
        self.register_buffer("_mean", torch.tensor(norm_mean, dtype=torch.float32).view(1, -1, 1), persistent=False)
        self.register_buffer("_std", torch.tensor(norm_std, dtype=torch.float32).view(1, -1, 1), persistent=False)

    # ----- sizes and rates -------------------------------------------------------------------------------
    @property
    def code_dim(self) -> int:
        return self.config.code_dim or self.config.latent_dim

    @property
    def latent_length(self) -> int:
        return self.config.window_length // self.config.downsample_factor

    def codes_per_second(self) -> float:
        """Codes per second of signal: positions per second x quantizers (each stage's code counts)."""
        c = self.config
        return c.sampling_rate_hz / c.downsample_factor * c.num_quantizers

    def bits_per_second(self) -> float:
        """Bit rate of the codes: codes per second x log2(K)."""
        return self.codes_per_second() * math.log2(self.config.num_codes)

    def compression_ratio(self) -> float:
        """Input bit rate (``input_bits`` per sample per channel; 11 for MIT-BIH) over the code bit rate."""
        c = self.config
        return c.sampling_rate_hz * c.in_channels * c.input_bits / self.bits_per_second()

    # ----- normalisation ---------------------------------------------------------------------------------
    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, L) physical units -> unit scale."""
        return (x - self._mean) / self._std

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        return x * self._std + self._mean

    def normalized_tensor(self, windows: np.ndarray) -> torch.Tensor:
        """``(B, L, C)`` physical-unit NumPy windows -> ``(B, C, L)`` float32 on the codec's device and unit scale:
        how the denoiser hands NumPy signals to its networks."""
        x = torch.as_tensor(np.asarray(windows, np.float32), device=self._mean.device)
        return self.normalize(x.transpose(1, 2))

    def physical_array(self, x: torch.Tensor) -> np.ndarray:
        """The inverse of ``normalized_tensor``: ``(B, C, L)`` on unit scale -> ``(B, L, C)`` float64 NumPy."""
        return self.denormalize(x.detach().float()).transpose(1, 2).cpu().numpy().astype(np.float64)

    # ----- training --------------------------------------------------------------------------------------
    def forward(self, signals: torch.Tensor) -> CodecOutput:
        """Training pass on ``(B, L, C)`` physical-unit windows; the loss is on the normalised scale."""
        x = self.normalize(signals.transpose(1, 2))
        z = self.project_in(self.encoder(x))
        b, d, length = z.shape
        summary, stages = self.quantizer(z.transpose(1, 2).reshape(-1, d))
        quantized = summary.quantized.view(b, length, d).transpose(1, 2).to(z.dtype)
        reconstruction = self.decoder(self.project_out(quantized))
        reconstruction_loss = reconstruction_error(
            reconstruction.float(), x.float(), self.config.reconstruction_loss_type
        )
        loss = reconstruction_loss + summary.loss
        spectral_loss = None
        if self.config.spectral_loss_weight:
            spectral_loss = multi_resolution_stft_loss(reconstruction.float(), x.float())
            loss = loss + self.config.spectral_loss_weight * spectral_loss
            spectral_loss = spectral_loss.detach()
        return CodecOutput(
            reconstruction, loss, reconstruction_loss.detach(), summary.loss.detach(), summary, stages, spectral_loss
        )

    # ----- public API ------------------------------------------------------------------------------------
    def _check_length(self, length: int) -> None:
        if length % self.config.downsample_factor:
            raise DataError(
                f"signal length {length} must be a multiple of the codec's downsample factor "
                f"{self.config.downsample_factor}"
            )

    def _encoder_output(self, signals) -> tuple[torch.Tensor, torch.Tensor]:
        """The normalised input ``(B, C, L)`` and the encoder's output before quantisation ``(B, D, L')``: where
        ``encode`` quantises and ``latents`` stops."""
        x = as_signal_tensor(signals, self.config.in_channels).to(self.device)
        self._check_length(x.shape[1])
        normalized = self.normalize(x.transpose(1, 2))
        return normalized, self.project_in(self.encoder(normalized))

    @torch.no_grad()
    def encode(self, signals, search: int = 0, sweeps: int = 2) -> Encoded:
        """``(B, L, C)`` physical units -> vectors ``(B, L', D)`` and codes ``(B, L')`` (``(B, L', Q)`` for
        residual VQ).

        ``search`` > 0 tries that many nearest codes per position through the decoder and keeps those that decode
        closer to the input (analysis-by-synthesis, ``sweeps`` passes; tsvq.codec.search): same bit rate and
        decoder, lower error on signals unlike the training data, at about ``search x sweeps x (2 x reach + 1)``
        decoder passes per batch (reach: how many codes either side a code's samples depend on; 5 for the
        default codec).
        """
        if search < 0 or sweeps < 1:
            raise ConfigError(f"search must be >= 0 and sweeps >= 1, got search={search}, sweeps={sweeps}")
        was_training = self.training
        self.eval()
        normalized, z = self._encoder_output(signals)
        b, d, length = z.shape
        summary, _ = self.quantizer(z.transpose(1, 2).reshape(-1, d))
        codes = summary.codes.view(b, length, -1)
        vectors = summary.quantized.view(b, length, d)
        if search:
            codes = search_codes(self, normalized.float(), codes, z.float().transpose(1, 2), search, sweeps)
            vectors = self.quantizer.lookup(codes)
        self.train(was_training)
        return Encoded(vectors.float(), codes[..., 0] if self.config.num_quantizers == 1 else codes)

    @torch.no_grad()
    def latents(self, signals) -> torch.Tensor:
        """``(B, L, C)`` physical units -> the encoder's vectors before quantisation ``(B, L', D)``, on the sphere
        when codes are cosine: what each codebook vector is measured against (a guide for a prior's draws)."""
        was_training = self.training
        self.eval()
        z = self._encoder_output(signals)[1].transpose(1, 2).float()
        self.train(was_training)
        return torch.nn.functional.normalize(z, dim=-1) if self.config.cosine_codes else z

    def codes_to_vectors(self, codes: torch.Tensor) -> torch.Tensor:
        """Integer codes ``(B, L')`` or ``(B, L', Q)`` -> codebook vectors ``(B, L', D)``."""
        codes = torch.as_tensor(codes, device=self.device)
        if codes.is_floating_point():
            raise DataError(f"codes must be integers, got dtype {codes.dtype}")
        if codes.ndim == 2:
            codes = codes[..., None]
        if codes.ndim != 3:
            raise DataError(f"codes must have shape (B, L') or (B, L', Q), got {tuple(codes.shape)}")
        try:
            return self.quantizer.lookup(codes.long())
        except IndexError as error:
            raise DataError(f"codes: {error}") from error

    @torch.no_grad()
    def snap(self, vectors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Nearest codebook vectors and codes for arbitrary ``(B, L', D)`` vectors (e.g. a diffusion sample)."""
        b, length, d = vectors.shape
        snapped, codes = self.quantizer.snap(vectors.reshape(-1, d).to(self.device))
        codes = codes.view(b, length, -1)
        return snapped.view(b, length, d), codes[..., 0] if self.config.num_quantizers == 1 else codes

    @torch.no_grad()
    def decode(self, codes_or_vectors) -> torch.Tensor:
        """Integer codes or float codebook vectors ``(B, L', D)`` -> signals ``(B, L, C)`` float32 in physical units."""
        latent = torch.as_tensor(codes_or_vectors, device=self.device)
        if not latent.is_floating_point():
            latent = self.codes_to_vectors(latent)
        elif latent.ndim != 3 or latent.shape[-1] != self.code_dim:
            raise DataError(
                f"vectors must have shape (B, L', {self.code_dim}), got {tuple(latent.shape)}; codes must be "
                f"integers, got {latent.dtype}"
            )
        was_training = self.training
        self.eval()
        out = self.decoder(self.project_out(latent.float().transpose(1, 2)))
        self.train(was_training)
        return self.denormalize(out).transpose(1, 2).float()

    def encode_windows(
        self,
        windows,
        indices: np.ndarray | None = None,
        batch_size: int = 256,
        progress: bool = False,
        **encode_options,
    ) -> np.ndarray:
        """Codes of many windows ``(N, L, C)``, a batch at a time: ``(N, L')`` (``(N, L', Q)`` for residual VQ) int64.

        ``windows`` may be a window store's (``WindowStore.windows``): with ``indices`` only those rows are read, a
        batch at a time, so a store larger than memory is encoded without loading it.
        """
        from tqdm.auto import tqdm

        rows = np.arange(len(windows)) if indices is None else np.asarray(indices)
        codes = [
            self.encode(np.asarray(windows[rows[start : start + batch_size]]), **encode_options).codes.cpu().numpy()
            for start in tqdm(
                range(0, len(rows), batch_size), desc="encode", unit="batch", disable=not progress, leave=False
            )
        ]
        shape = (0, self.latent_length) + ((self.config.num_quantizers,) if self.config.num_quantizers > 1 else ())
        return np.concatenate(codes) if codes else np.zeros(shape, dtype=np.int64)

    def decode_codes(self, codes, batch_size: int = 256) -> np.ndarray:
        """Signals ``(N, L, C)`` float32 in physical units of many code sequences (or vectors), a batch at a time."""
        return np.concatenate(
            [self.decode(codes[start : start + batch_size]).cpu().numpy() for start in range(0, len(codes), batch_size)]
        )

    @torch.no_grad()
    def reconstruct(self, signals) -> torch.Tensor:
        """Encode then decode; ``(B, L, C)`` in, ``(B, L, C)`` out, physical units."""
        return self.decode(self.encode(signals).vectors)
