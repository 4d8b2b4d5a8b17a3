"""Removing noise from a recording with a pipeline's denoising encoder (``Pipeline.denoise``).

The recording is conditioned as the codec's training windows were (the pipeline's rate and band: baseline wander
below the band goes here, as with any band-pass), the denoising encoder gives the codes of the clean signal under
what noise is left, and the codec decodes them: the output is a signal the codec can draw, so what the codec has
never seen in clean ECG (muscle bursts, electrode-motion swings inside the band) has no codes to come back as.
Where the denoiser finds the input clean it keeps a share of it (learnt per code position), so a clean stretch is
not reduced to what the codes can draw; a denoiser with a refiner then corrects that blend with a learnt filter.
Whole recordings are coded in overlapping chunks (``tsvq.codec.streaming``) and brought back to the input's rate;
NaN gaps stay NaN, each finite stretch is denoised on its own.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from tsvq.codec.denoising import keep_input
from tsvq.codec.search import encoder_reach
from tsvq.codec.streaming import decode_long, map_long
from tsvq.data.preprocess import (
    CLIPPED,
    at_length,
    finite_stretches,
    flat_channel,
    one_recording,
    quality_mask,
    resample,
)
from tsvq.errors import ConfigError, DataError
from tsvq.recording import check_amplitude

logger = logging.getLogger(__name__)


def _estimate(pipeline, signal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The denoiser's codebook vectors ``(L', D)`` and share to keep ``(L', C)`` of one long conditioned signal
    ``(L, C)``, in chunks that give what one pass would."""
    codec, denoiser = pipeline.codec, pipeline.denoiser

    def compute(chunk: np.ndarray) -> np.ndarray:
        encoded, keep = denoiser.estimate(codec, chunk)
        return torch.cat([encoded.vectors, keep], dim=-1)[0].cpu().numpy()

    both = map_long(signal, codec.config.downsample_factor, encoder_reach(denoiser) + 1, compute)
    return both[:, : codec.code_dim], both[:, codec.code_dim :]


def denoise(pipeline, signal, sampling_rate_hz: float, pass_through: bool = True, where: str = "signal") -> np.ndarray:
    """``signal`` ``(L,)`` or ``(L, C)`` at ``sampling_rate_hz`` -> the same shape, float32, denoised and
    band-limited to the pipeline's band (``Pipeline.denoise``). ``pass_through=False`` leaves out the share of the
    input the denoiser keeps where it finds the input clean (the output is then the decoded codes alone)."""
    if pipeline.denoiser is None:
        raise ConfigError(
            f"{pipeline.name}: this pipeline has no denoiser; train one (tsvq train denoiser) and add it "
            "(tsvq assemble --denoiser FOLDER)"
        )
    x = one_recording(signal, where)
    shape = x.shape if np.ndim(signal) == 2 else (len(x),)
    codec = pipeline.codec
    if codec.config.in_channels not in (1, x.shape[1]):
        raise DataError(f"{where}: the codec codes {codec.config.in_channels} channels together, got {x.shape[1]}")
    pipeline.preprocessing.check_rate(sampling_rate_hz, where)
    if not np.isfinite(x).any():
        raise DataError(f"{where}: every sample is NaN; there is nothing to denoise")
    pipeline.preprocessing.check_length(len(x), sampling_rate_hz, where, "denoise")
    flat = flat_channel(x)
    if flat is not None:
        raise DataError(f"{where}: channel {flat[0]} is flat (every sample {flat[1]:g}): a disconnected lead has "
                        "nothing to denoise")  # fmt: skip
    clipped = (quality_mask(x, sampling_rate_hz) == CLIPPED).sum() / sampling_rate_hz
    if clipped:
        logger.warning(
            "%s: %.1f s pinned at a channel's extreme (saturated); denoised as recorded, clipped peaks not restored",
            where,
            clipped,
        )
    rate, f = pipeline.sampling_rate_hz, codec.config.downsample_factor
    streams = [[c] for c in range(x.shape[1])] if codec.config.in_channels == 1 else [list(range(x.shape[1]))]
    out = np.full(x.shape, np.nan, dtype=np.float32)
    for stream in streams:
        part = x[:, stream]
        stretches = [
            (start, end, pipeline.preprocessing.condition(part[start:end], sampling_rate_hz))
            for start, end in finite_stretches(part)
        ]
        names = [str(c) for c in stream]
        check_amplitude(codec, stream, names, [""] * len(stream), np.concatenate([s[2] for s in stretches]), where)
        for start, end, conditioned in stretches:
            length = len(conditioned)
            padded = np.pad(conditioned, ((0, (-length) % f), (0, 0)), mode="edge").astype(np.float32)
            latent, keep = _estimate(pipeline, padded)
            clean = decode_long(codec, latent)[:length].astype(np.float64)
            if pass_through:
                share = pipeline.denoiser.config.clean_error_share
                blended = keep_input(clean, keep, conditioned, f, share, rate)
                clean = pipeline.denoiser.refine(codec, conditioned, clean, blended)
            out[start:end, stream] = at_length(resample(clean, rate, sampling_rate_hz), end - start)
    return out.reshape(shape)
