"""Priors over the codec's latents, found by kind in a registry: a diffusion prior over codebook vectors, and a
WaveNet (autoregressive) and a MaskGIT (bidirectional masked-token) prior over code indices. A new prior is one
module here with ``@register_prior`` (see ``base.py``)."""

from tsvq.priors.base import PRIORS, Prior, PriorSample, load_prior, register_prior
from tsvq.priors.denoiser import DenoiserConfig, LatentUNet1D, build_denoiser
from tsvq.priors.diffusion import DiffusionPrior, sampling_scheduler, training_scheduler
from tsvq.priors.maskgit import MaskedCodeTransformer, MaskGITPrior
from tsvq.priors.transformer import LatentTransformer1D
from tsvq.priors.wavenet import WaveNet, WaveNetPrior

__all__ = [
    "PRIORS",
    "DenoiserConfig",
    "DiffusionPrior",
    "LatentTransformer1D",
    "LatentUNet1D",
    "MaskGITPrior",
    "MaskedCodeTransformer",
    "Prior",
    "PriorSample",
    "WaveNet",
    "WaveNetPrior",
    "build_denoiser",
    "load_prior",
    "register_prior",
    "sampling_scheduler",
    "training_scheduler",
]
