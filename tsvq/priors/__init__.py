"""Priors over the codec's latents, found by kind in a registry: a diffusion prior over codebook vectors and a
WaveNet prior over code indices. A new prior is one module here with ``@register_prior`` (see ``base.py``)."""

from tsvq.priors.base import PRIORS, Prior, PriorSample, load_prior, register_prior
from tsvq.priors.denoiser import LatentUNet1D
from tsvq.priors.diffusion import DiffusionPrior, sampling_scheduler, training_scheduler
from tsvq.priors.wavenet import WaveNet, WaveNetPrior

__all__ = ["PRIORS", "DiffusionPrior", "LatentUNet1D", "Prior", "PriorSample", "WaveNet", "WaveNetPrior", "load_prior",
           "register_prior", "sampling_scheduler", "training_scheduler"]
