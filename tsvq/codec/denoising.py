"""A denoising encoder: noisy signals in, the codes of their clean selves out.

The codec's own encoder codes what it sees, noise included: measured on MIT-BIH DS2 with nstdb noise, a round
trip through the shipped codec leaves muscle and electrode-motion noise where a band-pass leaves it (the codes
are good enough to draw the noise). A denoising encoder is trained on clean windows with real recorded noise
added, to land on the latent the codec's encoder gives the clean window and on codes that decode to it. The
codebook and decoder stay the codec's: its output is a code sequence like any other, decoded as usual, so a
denoised recording is the recording projected onto what the codec has learnt ECG to be (DeScoD-ECG and
denoising autoencoders do the same with a model of clean signals; here the model is the codec's).

It may be larger than the codec's encoder (denoising needs more context than coding a clean signal), and it is
tied to one codebook: its folder records the codec's signature and a pipeline refuses another codec's.

An optional *refiner* (``refiner_channels`` > 0) corrects the output last. Why: the decoded codes and the share of the
input kept with them (``keep_input``) are one gain per stretch and band (two bands) between two signals, while noise
and the codes' own error differ finely by time and frequency (the codes miss QRS detail; electrode motion is slow,
muscle noise broad); a small dilated convolution over the input, the decoded codes and their blend learns that
filter (trained last, on the frozen encoder: ``tsvq train denoiser`` with ``refiner_channels`` and ``freeze_encoder``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from tsvq.codec.model import Encoded, as_signal_tensor
from tsvq.codec.modules import Encoder
from tsvq.priors.signature import check_signature, codec_signature


class DenoiserOutput(NamedTuple):
    """What one call of a ``DenoisingEncoder`` gives (all ``(B, channels, length)``, normalised scale)."""

    latent: torch.Tensor  # before quantization, (B, code_dim, L')
    keep: torch.Tensor  # share of the input to keep, (B, C, L')
    decoded: torch.Tensor | None = None  # the latent's codes decoded (when asked to decode)
    refined: torch.Tensor | None = None  # the refiner's output (when it has one and was given a blend)


class DenoisingEncoder(ModelMixin, ConfigMixin):
    """``(B, L, C)`` noisy signals in physical units -> a codec's codes ``(B, L')`` for the clean signal."""

    config_name = "config.json"

    @register_to_config
    def __init__(
        self,
        in_channels: int = 1,
        hidden_channels: int = 64,
        num_res_blocks: int = 2,
        latent_dim: int = 64,
        code_dim: int = 16,
        downsample_factor: int = 8,
        codebook_signature: dict | None = None,
        noise: tuple[str, ...] = (),
        noise_span: tuple[float, float] = (0.0, 1.0),
        snr_db: tuple[float, float] = (-6.0, 24.0),
        clean_error_share: float | list[float] | None = None,
        refiner_channels: int = 0,
    ):
        """``codebook_signature``: the codec whose codes it gives; ``noise``, ``noise_span``, ``snr_db``: what it was
        trained on (which part of each noise record, at which signal-to-noise ratios), so a benchmark can measure
        on the rest. ``clean_error_share``: the power its decoded codes miss on clean validation windows, as a share
        of their own power, one per band of ``frequency_bands`` (measured when it is saved; one number for the whole
        band in denoisers saved before): what ``keep_input`` expects the codes' own error to be.
        ``refiner_channels``: width of the refiner (0: none, the output is ``keep_input``'s)."""
        super().__init__()
        self.encoder = Encoder(in_channels, hidden_channels, latent_dim, downsample_factor, num_res_blocks)
        self.project_in = nn.Conv1d(latent_dim, code_dim, 1) if code_dim != latent_dim else nn.Identity()
        # How much of the input to keep at each code position: near 1 where it is clean (no codec beats the
        # input itself there), near 0 where it is noisy. Starts near 0: the projection first.
        self.pass_through = nn.Conv1d(latent_dim, in_channels, 3, padding=1)
        nn.init.zeros_(self.pass_through.weight)
        nn.init.constant_(self.pass_through.bias, -3.0)
        self.refiner = Refiner(in_channels, refiner_channels) if refiner_channels else None

    @classmethod
    def for_codec(cls, codec, hidden_channels: int | None = None, num_res_blocks: int | None = None, **settings):
        """A denoising encoder for ``codec``'s codes; of the codec's own size it starts from the codec's weights."""
        c = codec.config
        model = cls(
            in_channels=c.in_channels,
            hidden_channels=hidden_channels or c.hidden_channels,
            num_res_blocks=num_res_blocks or c.num_res_blocks,
            latent_dim=c.latent_dim,
            code_dim=codec.code_dim,
            downsample_factor=c.downsample_factor,
            codebook_signature=codec_signature(codec),
            **settings,
        )
        if (model.config.hidden_channels, model.config.num_res_blocks) == (c.hidden_channels, c.num_res_blocks):
            model.encoder.load_state_dict(codec.encoder.state_dict())
            model.project_in.load_state_dict(codec.project_in.state_dict())
        return model

    def check_codec(self, codec, where: str = "denoiser") -> None:
        check_signature(self.config.codebook_signature or {}, codec, where, "denoiser")

    def forward(self, normalized: torch.Tensor, decode: Callable | None = None, blend: Callable | None = None):
        """``(B, C, L)`` on the codec's normalised scale -> ``DenoiserOutput``: the latent before quantization
        ``(B, code_dim, L')`` and the share of the input to keep ``(B, C, L')`` in [0, 1]. Training a refiner also
        passes ``decode`` (latent -> decoded codes, through the codebook) and ``blend`` ((decoded, keep) -> their
        blend, ``keep_input``) and gets the decoded codes and the refiner's output from the same call: a model
        wrapped for data-parallel training keeps its ranks in step only over what one forward call used. An encoder
        frozen for the refiner's training runs without gradients."""
        frozen = not any(parameter.requires_grad for parameter in self.encoder.parameters())
        with torch.no_grad() if frozen else contextlib.nullcontext():
            features = self.encoder(normalized)
            out = DenoiserOutput(self.project_in(features), torch.sigmoid(self.pass_through(features)))
        if decode is None:
            return out
        decoded = decode(out.latent)
        refined = None
        if self.refiner is not None and blend is not None:
            refined = self.refiner(normalized, decoded.detach(), blend(decoded.detach(), out.keep.detach()))
        return out._replace(decoded=decoded, refined=refined)

    @torch.no_grad()
    def estimate(self, codec, signals) -> tuple[Encoded, torch.Tensor]:
        """Like ``VQVAE.encode`` (same ``Encoded``), for the clean signal under the noise, and the share of the
        input to keep ``(B, L', C)``. Code search is not offered: it would pick the codes that decode closest to
        the noisy input, noise and all."""
        x = as_signal_tensor(signals, self.config.in_channels).to(codec.device)
        out = self(codec.normalize(x.transpose(1, 2)))
        z, keep = out.latent.transpose(1, 2), out.keep
        b, length, d = z.shape
        summary, _ = codec.quantizer(z.reshape(-1, d))
        codes = summary.codes.view(b, length, -1)
        vectors = summary.quantized.view(b, length, d).float()
        encoded = Encoded(vectors, codes[..., 0] if codes.shape[-1] == 1 else codes)
        return encoded, keep.transpose(1, 2).float()

    @torch.no_grad()
    def refine(self, codec, noisy: np.ndarray, decoded: np.ndarray, blended: np.ndarray) -> np.ndarray:
        """The refiner's output for one recording ``(L, C)`` in physical units, given its noisy input, decoded codes
        and their blend (``keep_input``); in chunks of ``REFINE_CHUNK`` samples overlapping by the refiner's reach,
        which give what one pass would (a day-long Holter recording does not fit one pass)."""
        if self.refiner is None:
            return blended
        out = np.empty(blended.shape, dtype=np.float64)
        reach, length = self.refiner.reach, len(blended)
        for start in range(0, length, REFINE_CHUNK):
            end = min(length, start + REFINE_CHUNK)
            lo, hi = max(0, start - reach), min(length, end + reach)
            part = self.refiner(*(codec.normalized_tensor(x[None, lo:hi]) for x in (noisy, decoded, blended)))
            out[start:end] = codec.physical_array(part)[0, start - lo : end - lo]
        return out

    @torch.no_grad()
    def refine_windows(self, codec, noisy: np.ndarray, decoded: np.ndarray, blended: np.ndarray) -> np.ndarray:
        """``refine`` for a batch of windows ``(B, L, C)`` of at most ``REFINE_CHUNK`` samples, in one pass (what
        ``refine`` gives each of them: one chunk each)."""
        if self.refiner is None:
            return blended
        if noisy.shape[1] > REFINE_CHUNK:
            raise ValueError(f"windows of {noisy.shape[1]} samples: refine_windows takes at most {REFINE_CHUNK}")
        return codec.physical_array(self.refiner(*(codec.normalized_tensor(x) for x in (noisy, decoded, blended))))


class Refiner(nn.Module):
    """``(noisy, decoded, blended)``, each ``(B, C, L)`` on the codec's normalised scale -> ``blended`` plus a learnt
    correction. Residual blocks of dilated convolutions (reach ``reach`` samples each side); the last layer starts at
    zero, so an untrained refiner changes nothing."""

    dilations = (1, 2, 4, 8, 16, 32, 1)
    kernel_size = 7

    def __init__(self, channels: int, width: int):
        super().__init__()
        k = self.kernel_size
        self.project_in = nn.Conv1d(4 * channels, width, k, padding=k // 2)
        self.blocks = nn.ModuleList(
            nn.Conv1d(width, width, k, padding=(k // 2) * d, dilation=d) for d in self.dilations
        )
        self.project_out = nn.Conv1d(width, channels, 1)
        nn.init.zeros_(self.project_out.weight)
        nn.init.zeros_(self.project_out.bias)
        self.reach = (k // 2) * (1 + sum(self.dilations))

    def forward(self, noisy: torch.Tensor, decoded: torch.Tensor, blended: torch.Tensor) -> torch.Tensor:
        h = self.project_in(torch.cat([noisy, decoded, noisy - decoded, blended], dim=1))
        for block in self.blocks:
            h = h + block(F.gelu(h))
        return blended + self.project_out(F.gelu(h))


REFINE_CHUNK = 2**16  # samples per pass of the refiner over a long recording
BLEND_WINDOW_S = 5.0  # the stretch over which keep_input compares what the codes leave out with their own error
BLEND_BANDS_HZ = (16.0,)  # where keep_input splits the spectrum to weigh each band on its own


def band_edges(rate: float) -> tuple[float, ...]:
    """The edges of ``BLEND_BANDS_HZ`` a signal at ``rate`` Hz has room for (below its Nyquist frequency)."""
    return tuple(edge for edge in BLEND_BANDS_HZ if edge < rate / 2)


def frequency_bands(x: np.ndarray, rate: float) -> list[np.ndarray]:
    """``x`` ``(..., L, C)`` split at ``band_edges(rate)`` into bands, lowest first, that add up to ``x`` exactly
    (differences of zero-phase Butterworth low-passes)."""
    from scipy.signal import butter, sosfiltfilt

    bands, below = [], np.zeros_like(x)
    for edge in band_edges(rate):
        sos = butter(4, edge, fs=rate, output="sos")
        low = sosfiltfilt(sos, x, axis=-2, padlen=min(3 * (2 * len(sos) + 1), x.shape[-2] - 1))
        bands.append(low - below)
        below = low
    bands.append(x - below)
    return bands


def keep_input(decoded: np.ndarray, keep: np.ndarray, noisy: np.ndarray, downsample_factor: int,
               clean_error_share: float | list[float] | None = None, rate: float = 250.0) -> np.ndarray:  # fmt: skip
    """The denoised output: the decoded codes ``(..., L, C)`` plus a share of what they leave out of the input,
    the learnt ``keep`` ``(..., L', C)`` per code position (repeated over its samples) or, if larger, a Wiener
    gain. Why the gain: what the codes leave out is their own error plus the noise, and on a clean input it is
    all their own error, which the input does not have. Over ``BLEND_WINDOW_S``, with the codes' error expected at
    ``clean_error_share`` of their power, the gain error / (error + noise) keeps nearly all of a clean input and
    little of a noisy one. A list of shares, one per band of ``frequency_bands``, weighs each band on its own: the
    codes miss mostly QRS detail, which lies high, while noise is often elsewhere too (muscle noise is broad, wander
    low), so one stretch can keep the input's detail and drop the rest of its noise (one gain for all must choose)."""
    per_sample = np.repeat(keep, downsample_factor, axis=-2)[..., : decoded.shape[-2], :]
    left_out = noisy - decoded
    if clean_error_share is None:
        return decoded + per_sample * left_out
    from scipy.ndimage import uniform_filter1d

    shares = np.atleast_1d(np.asarray(clean_error_share, dtype=np.float64))
    if len(shares) == 1:
        pairs = [(decoded, left_out)]
    elif len(shares) == len(band_edges(rate)) + 1:
        pairs = zip(frequency_bands(decoded, rate), frequency_bands(left_out, rate))
    else:
        raise ValueError(f"clean_error_share: {len(shares)} shares, expected {len(band_edges(rate)) + 1} (bands) or 1")
    width = max(1, min(int(BLEND_WINDOW_S * rate), decoded.shape[-2]))
    out = decoded.astype(np.float64, copy=True)
    for share, (codes_band, left_band) in zip(shares, pairs):
        error = share * uniform_filter1d(codes_band**2, width, axis=-2, mode="nearest")
        left_power = np.maximum(uniform_filter1d(left_band**2, width, axis=-2, mode="nearest"), 1e-12)
        out += np.maximum(per_sample, np.clip(error / left_power, 0, 1)) * left_band
    return out
