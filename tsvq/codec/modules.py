"""Encoder and decoder of the codec: 1D convolutions, dilated residual blocks, strided down/up-sampling."""

from __future__ import annotations

import math

from torch import nn


class ResidualBlock(nn.Module):
    """x + conv1x1(act(conv3_dilated(act(x)))): dilation widens the receptive field to whole beats cheaply."""

    def __init__(self, channels: int, dilation: int):
        super().__init__()
        self.block = nn.Sequential(
            nn.SiLU(),
            nn.Conv1d(channels, channels, 3, padding=dilation, dilation=dilation),
            nn.SiLU(),
            nn.Conv1d(channels, channels, 1),
        )

    def forward(self, x):
        return x + self.block(x)


def residual_stack(channels: int, depth: int) -> nn.Sequential:
    return nn.Sequential(*(ResidualBlock(channels, 3**i) for i in range(depth)))


def stage_channels(hidden_channels: int, num_stages: int, max_multiplier: int = 4) -> list[int]:
    """Channels after each downsampling stage: doubling, capped at ``max_multiplier`` x hidden."""
    return [hidden_channels * min(2 ** (i + 1), max_multiplier) for i in range(num_stages)]


class Encoder(nn.Module):
    """(B, C, L) -> (B, latent_dim, L / downsample_factor)."""

    def __init__(
        self, in_channels: int, hidden_channels: int, latent_dim: int, downsample_factor: int, num_res_blocks: int
    ):
        super().__init__()
        stages = int(math.log2(downsample_factor))
        widths = [hidden_channels, *stage_channels(hidden_channels, stages)]
        layers: list[nn.Module] = [nn.Conv1d(in_channels, hidden_channels, 7, padding=3)]
        for i in range(stages):
            layers += [
                residual_stack(widths[i], num_res_blocks),
                nn.Conv1d(widths[i], widths[i + 1], 4, stride=2, padding=1),
            ]
        layers += [
            residual_stack(widths[-1], num_res_blocks),
            nn.SiLU(),
            nn.Conv1d(widths[-1], latent_dim, 3, padding=1),
        ]
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


class Decoder(nn.Module):
    """(B, latent_dim, L') -> (B, C, L' * downsample_factor); mirrors the encoder."""

    def __init__(
        self, out_channels: int, hidden_channels: int, latent_dim: int, downsample_factor: int, num_res_blocks: int
    ):
        super().__init__()
        stages = int(math.log2(downsample_factor))
        widths = [hidden_channels, *stage_channels(hidden_channels, stages)]
        layers: list[nn.Module] = [
            nn.Conv1d(latent_dim, widths[-1], 3, padding=1),
            residual_stack(widths[-1], num_res_blocks),
        ]
        for i in reversed(range(stages)):
            layers += [
                nn.ConvTranspose1d(widths[i + 1], widths[i], 4, stride=2, padding=1),
                residual_stack(widths[i], num_res_blocks),
            ]
        layers += [nn.SiLU(), nn.Conv1d(hidden_channels, out_channels, 7, padding=3)]
        self.net = nn.Sequential(*layers)

    def forward(self, z):
        return self.net(z)
