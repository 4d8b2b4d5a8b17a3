"""A 1D UNet denoiser for latent sequences ``(B, D, L')``, assembled from diffusers' own 1D blocks.

Why not ``diffusers.UNet1DModel`` as is: it has no class conditioning, which classifier-free guidance needs, and
its Dance-Diffusion configuration concatenates a Fourier time embedding to the input channels instead of
feeding it to every block. Here the time embedding (plus an optional class embedding, whose last index is the
"no label" token for guidance) reaches every residual block through diffusers' ``ResidualTemporalBlock1D``s
(inside ``DownResnetBlock1D``/``UpResnetBlock1D``), and ``ModelMixin``/``ConfigMixin`` give save/load.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from diffusers.models.modeling_utils import ModelMixin
from diffusers.models.unets.unet_1d_blocks import (
    DownResnetBlock1D,
    MidResTemporalBlock1D,
    OutConv1DBlock,
    SelfAttention1d,
    UpResnetBlock1D,
)
from torch import nn

from tsvq.errors import ConfigError
from tsvq.io import read_json
from tsvq.priors.conditioning import condition_embedding
from tsvq.priors.transformer import LatentTransformer1D


@dataclass
class DenoiserConfig:
    """The denoiser, as a user chooses it (latent shape and classes come from the codec and the data).

    ``architecture`` "unet" (this module) reads ``block_out_channels``, ``layers_per_block``,
    ``time_embedding_dim`` and ``attention_heads``; "transformer" (``tsvq.priors.transformer``) reads ``width``,
    ``depth`` and ``heads``.
    """

    architecture: str = "unet"
    block_out_channels: tuple[int, ...] = (64, 128, 256)  # one UNet level each; multiples of 8
    layers_per_block: int = 1
    time_embedding_dim: int = 128
    attention_heads: int = 0  # unet: self-attention over the lowest level, where a window is fewest positions (0: none)
    width: int = 128  # transformer: channels of every token
    depth: int = 4  # transformer: adaLN-zero blocks
    heads: int = 4  # transformer: attention heads (width must divide by it)

    def __post_init__(self) -> None:
        if self.architecture not in DENOISERS:
            raise ConfigError(f"denoiser architecture must be one of {tuple(DENOISERS)}, not {self.architecture!r}")


class LatentUNet1D(ModelMixin, ConfigMixin):
    """Predicts noise, velocity or the clean latent (per the scheduler's prediction type) from a noisy latent."""

    @register_to_config
    def __init__(
        self,
        latent_channels: int = 64,
        latent_length: int = 128,
        block_out_channels: tuple[int, ...] = (64, 128, 256),
        layers_per_block: int = 1,
        time_embedding_dim: int = 128,
        num_classes: int = 0,
        attention_heads: int = 0,
    ):
        super().__init__()
        levels = len(block_out_channels)
        if latent_length % 2 ** (levels - 1):
            raise ValueError(
                f"latent_length {latent_length} must be divisible by 2^{levels - 1} for {levels} UNet levels"
            )
        if any(c % 8 for c in block_out_channels):
            raise ValueError(f"block_out_channels {block_out_channels} must be multiples of 8 (GroupNorm of 8 groups)")
        self.time_proj = Timesteps(block_out_channels[0], flip_sin_to_cos=True, downscale_freq_shift=0)
        self.time_embedding = TimestepEmbedding(block_out_channels[0], time_embedding_dim)
        self.class_embedding = nn.Embedding(num_classes + 1, time_embedding_dim) if num_classes else None
        widths = list(block_out_channels)
        self.down_blocks = nn.ModuleList(
            DownResnetBlock1D(
                latent_channels if i == 0 else widths[i - 1],
                widths[i],
                num_layers=layers_per_block,
                temb_channels=time_embedding_dim,
                add_downsample=i < levels - 1,
            )
            for i in range(levels)
        )
        self.mid_block = MidResTemporalBlock1D(widths[-1], widths[-1], time_embedding_dim, num_layers=layers_per_block)
        # Convolutions see a few neighbouring positions; attention at the lowest level relates every part of the
        # window to every other (the beats of one window should agree), as in the DDPM UNet.
        self.mid_attention = SelfAttention1d(widths[-1], attention_heads) if attention_heads else None
        self.up_blocks = nn.ModuleList(
            UpResnetBlock1D(
                widths[i],
                widths[max(i - 1, 0)],
                num_layers=layers_per_block,
                temb_channels=time_embedding_dim,
                add_upsample=i > 0,
            )
            for i in reversed(range(levels))
        )
        self.out_block = OutConv1DBlock(8, latent_channels, widths[0], "mish")

    @property
    def null_class(self) -> int:
        """Label index meaning "unconditional" (used for classifier-free guidance)."""
        return self.config.num_classes

    def forward(
        self, sample: torch.Tensor, timestep: torch.Tensor | int, class_labels: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``sample`` (B, D, L'), ``timestep`` (B,) or scalar, ``class_labels`` (B,) int (``null_class`` = none)."""
        embedding = condition_embedding(self, sample, timestep, class_labels)
        skips = []
        hidden = sample
        for block in self.down_blocks:
            hidden, states = block(hidden, embedding)
            skips.append(states[-1])
        hidden = self.mid_block(hidden, embedding)
        if self.mid_attention is not None:
            hidden = self.mid_attention(hidden)
        for block in self.up_blocks:
            hidden = block(hidden, (skips.pop(),), embedding)
        return self.out_block(hidden, embedding)


DENOISERS: dict[str, type[ModelMixin]] = {"unet": LatentUNet1D, "transformer": LatentTransformer1D}  # by architecture


def build_denoiser(config: DenoiserConfig, latent_channels: int, latent_length: int, num_classes: int) -> ModelMixin:
    """A fresh denoiser of ``config.architecture`` for latents ``(B, latent_channels, latent_length)``."""
    shape = {"latent_channels": latent_channels, "latent_length": latent_length, "num_classes": num_classes}
    if config.architecture == "transformer":
        return LatentTransformer1D(width=config.width, depth=config.depth, heads=config.heads, **shape)
    return LatentUNet1D(
        block_out_channels=tuple(config.block_out_channels),
        layers_per_block=config.layers_per_block,
        time_embedding_dim=config.time_embedding_dim,
        attention_heads=config.attention_heads,
        **shape,
    )


def saved_denoiser_class(folder) -> type[ModelMixin]:
    """The class a saved denoiser folder was written by (its config.json names it); priors saved before the
    transformer existed name LatentUNet1D."""
    name = read_json(f"{folder}/config.json", "denoiser config").get("_class_name", "LatentUNet1D")
    classes = {cls.__name__: cls for cls in DENOISERS.values()}
    if name not in classes:
        raise ConfigError(f"{folder}/config.json: unknown denoiser class {name!r}; this tsvq knows {sorted(classes)}")
    return classes[name]
