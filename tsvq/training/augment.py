"""Signal augmentation for codec training: the same heart seen through other electrodes, gains and rates.

A codec trained on a handful of patients learns their beat shapes and fails on the next patient. Cheap,
physiologically plausible changes widen what it sees: gain (electrode contact, body size), polarity (lead
placement: the same beat looks inverted in aVR or MCL1), time-stretch (heart rate and conduction speed change
how wide the waves are), and the smooth warps of Um et al. (2017): a time warp changes the intervals within a
beat (PR, QRS, QT differ between patients) and a magnitude warp the relative heights of P, QRS and T. The
autoencoder target is the augmented window itself, so nothing about the labels has to be right. Randomness comes
from torch's global generator, which accelerate's checkpoints save, so a resumed run draws the same
augmentations. Under several processes every rank draws for the whole global batch and keeps its own rows, so
the draws are those of one process training on the same global batches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F

from tsvq.codec.quantizer import distributed
from tsvq.errors import ConfigError


@dataclass
class AugmentConfig:
    """All off by default; ranges are (low, high) drawn per window."""

    gain: tuple[float, float] = (1.0, 1.0)  # log-uniform amplitude factor around the window mean
    flip_probability: float = 0.0  # chance of inverting the window around its mean
    stretch: tuple[float, float] = (1.0, 1.0)  # log-uniform time-stretch factor (> 1: slower, wider waves)
    time_warp: float = 0.0  # std of the log local speed at each knot (0.3: stretches of about +-35% within a window)
    magnitude_warp: float = 0.0  # std of the log local gain at each knot
    warp_knots: int = 16  # knots per window of both warps (16 in 4 s: one every 0.26 s, finer than a beat)

    def __post_init__(self) -> None:
        self.gain, self.stretch = tuple(self.gain), tuple(self.stretch)
        for name in ("gain", "stretch"):
            low, high = getattr(self, name)
            if not 0 < low <= high:
                raise ConfigError(f"augment.{name}: expected 0 < low <= high, got {getattr(self, name)}")
        if not 0.0 <= self.flip_probability <= 1.0:
            raise ConfigError(f"augment.flip_probability must lie in [0, 1], got {self.flip_probability}")
        for name in ("time_warp", "magnitude_warp"):
            if getattr(self, name) < 0:
                raise ConfigError(f"augment.{name} is a standard deviation and must be >= 0, got {getattr(self, name)}")
        if self.warp_knots < 2:
            raise ConfigError(f"augment.warp_knots must be at least 2, got {self.warp_knots}")

    @property
    def active(self) -> bool:
        return (
            self.gain != (1.0, 1.0)
            or self.stretch != (1.0, 1.0)
            or self.flip_probability > 0
            or self.time_warp > 0
            or self.magnitude_warp > 0
        )


def _this_rank(draw):
    """``draw(n)`` of the global batch (every rank's ``n`` rows, as one process would draw them), this rank's rows."""

    def drawn(n: int, *args, **kwargs) -> torch.Tensor:
        if not distributed():
            return draw(n, *args, **kwargs)
        rank, world = dist.get_rank(), dist.get_world_size()
        return draw(n * world, *args, **kwargs)[rank * n : (rank + 1) * n]

    return drawn


@_this_rank
def _log_uniform(n: int, low: float, high: float, device) -> torch.Tensor:
    return torch.exp(torch.empty(n, device=device).uniform_(math.log(low), math.log(high)))


@_this_rank
def _uniform(n: int, device) -> torch.Tensor:
    return torch.rand(n, device=device)


def time_stretch(x: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """Stretch each ``(L, C)`` window of ``x`` (B, L, C) about its centre by its factor, linear interpolation.

    Positions that fall outside the window (factor < 1) are mirrored back inside, which keeps the signal
    continuous at the edges.
    """
    length = x.shape[1]
    centre = (length - 1) / 2
    positions = centre + (torch.arange(length, device=x.device, dtype=x.dtype)[None] - centre) / factors[:, None].to(
        x.dtype
    )
    period = 2 * (length - 1)
    positions = torch.remainder(positions, period)
    return _read_at(x, torch.where(positions > length - 1, period - positions, positions))  # mirror


@_this_rank
def _smooth_curve(batch: int, knots: int, length: int, std: float, device) -> torch.Tensor:
    """``(B, L)`` positive curves: log-normal values at ``knots`` evenly spaced points, linearly joined."""
    values = torch.exp(std * torch.randn(batch, 1, knots, device=device))
    return F.interpolate(values, size=length, mode="linear", align_corners=True)[:, 0]


def time_warp(x: torch.Tensor, std: float, knots: int) -> torch.Tensor:
    """Play each window at a smoothly varying speed; its first and last samples stay where they are."""
    length = x.shape[1]
    elapsed = torch.cumsum(_smooth_curve(x.shape[0], knots, length, std, x.device), dim=1)
    elapsed = elapsed - elapsed[:, :1]
    return _read_at(x, (elapsed / elapsed[:, -1:] * (length - 1)).to(x.dtype))


def magnitude_warp(x: torch.Tensor, std: float, knots: int) -> torch.Tensor:
    """Scale each window about its mean by a smoothly varying gain."""
    mean = x.mean(dim=1, keepdim=True)
    return mean + (x - mean) * _smooth_curve(x.shape[0], knots, x.shape[1], std, x.device).unsqueeze(-1).to(x.dtype)


def _read_at(x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """``x`` (B, L, C) read at fractional ``positions`` (B, L) in [0, L - 1], linear interpolation."""
    length = x.shape[1]
    left = positions.floor().long().clamp(0, length - 2)
    fraction = (positions - left).unsqueeze(-1)
    gather = lambda index: torch.gather(x, 1, index.unsqueeze(-1).expand(-1, -1, x.shape[2]))  # noqa: E731
    return gather(left) * (1 - fraction) + gather(left + 1) * fraction


def augment(x: torch.Tensor, config: AugmentConfig) -> torch.Tensor:
    """Apply ``config`` to a batch ``(B, L, C)`` in physical units; returns a new tensor."""
    if not config.active:
        return x
    b = x.shape[0]
    if config.stretch != (1.0, 1.0):
        x = time_stretch(x, _log_uniform(b, *config.stretch, x.device))
    if config.time_warp > 0:
        x = time_warp(x, config.time_warp, config.warp_knots)
    if config.magnitude_warp > 0:
        x = magnitude_warp(x, config.magnitude_warp, config.warp_knots)
    mean = x.mean(dim=1, keepdim=True)
    scale = _log_uniform(b, *config.gain, x.device)
    if config.flip_probability > 0:
        flips = _uniform(b, x.device) < config.flip_probability
        scale = torch.where(flips, -scale, scale)
    return mean + (x - mean) * scale.view(b, 1, 1).to(x.dtype)
