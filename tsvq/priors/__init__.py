"""Priors over the codec's latents: a diffusion prior over codebook vectors and a WaveNet prior over code indices."""

from tsvq.priors.denoiser import LatentUNet1D
from tsvq.priors.diffusion import DiffusionPrior, sampling_scheduler, training_scheduler
from tsvq.priors.wavenet import WaveNetCodePrior, WaveNetPrior

__all__ = ["DiffusionPrior", "LatentUNet1D", "WaveNetCodePrior", "WaveNetPrior", "sampling_scheduler", "training_scheduler"]
