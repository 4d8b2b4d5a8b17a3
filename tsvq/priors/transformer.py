"""A transformer denoiser for latent sequences ``(B, D, L')``: DiT's adaLN-zero blocks over the L' latent positions.

Why a second denoiser: a UNet sees a window through its receptive field and downsampling; attention relates every
latent position to every other one in one layer, which is what a window of several heartbeats asks for (each beat
should look like its neighbours). Built from diffusers' parts: ``Attention`` and ``FeedForward``, adaptive layer
norms (``AdaLayerNormZero`` in each block, ``AdaLayerNormContinuous`` at the output) driven by one shared
time (+ class) embedding, and fixed sine-cosine positions. Zero-initialised gates and output make every block start
as the identity and the model start by predicting zero (Peebles & Xie 2023). Whether it beats the UNet on the same
budget is measured in ``benchmarks/levers.py``.
"""

from __future__ import annotations

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.attention import FeedForward
from diffusers.models.attention_processor import Attention
from diffusers.models.embeddings import TimestepEmbedding, Timesteps, get_1d_sincos_pos_embed_from_grid
from diffusers.models.modeling_utils import ModelMixin
from diffusers.models.normalization import AdaLayerNormContinuous, AdaLayerNormZero
from torch import nn

from tsvq.priors.conditioning import condition_embedding


class AdaLNZeroBlock(nn.Module):
    """Self-attention and an MLP, each scaled, shifted and gated by the conditioning embedding."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.norm_attention = AdaLayerNormZero(width)  # shift/scale/gate for both halves from the embedding
        self.attention = Attention(query_dim=width, heads=heads, dim_head=width // heads, bias=True, out_bias=True)
        self.norm_mlp = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.mlp = FeedForward(width, mult=4, activation_fn="gelu-approximate")

    def forward(self, tokens: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        normed, gate_attention, shift_mlp, scale_mlp, gate_mlp = self.norm_attention(tokens, emb=embedding)
        tokens = tokens + gate_attention[:, None] * self.attention(normed)
        normed = self.norm_mlp(tokens) * (1 + scale_mlp[:, None]) + shift_mlp[:, None]
        return tokens + gate_mlp[:, None] * self.mlp(normed)


class LatentTransformer1D(ModelMixin, ConfigMixin):
    """Predicts noise, velocity or the clean latent (per the scheduler) with ``depth`` adaLN-zero blocks of
    ``width``."""

    @register_to_config
    def __init__(
        self,
        latent_channels: int = 64,
        latent_length: int = 128,
        width: int = 128,
        depth: int = 4,
        heads: int = 4,
        num_classes: int = 0,
    ):
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} must be divisible by heads {heads}")
        self.time_proj = Timesteps(width, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.time_embedding = TimestepEmbedding(width, width)
        self.class_embedding = nn.Embedding(num_classes + 1, width) if num_classes else None
        self.proj_in = nn.Linear(latent_channels, width)
        positions = get_1d_sincos_pos_embed_from_grid(width, torch.arange(latent_length), output_type="pt")
        self.register_buffer("positions", positions.float()[None], persistent=False)
        self.blocks = nn.ModuleList(AdaLNZeroBlock(width, heads) for _ in range(depth))
        self.norm_out = AdaLayerNormContinuous(width, width, elementwise_affine=False, eps=1e-6)
        self.proj_out = nn.Linear(width, latent_channels)
        for block in self.blocks:
            nn.init.zeros_(block.norm_attention.linear.weight)
            nn.init.zeros_(block.norm_attention.linear.bias)
        nn.init.zeros_(self.proj_out.weight)
        nn.init.zeros_(self.proj_out.bias)

    @property
    def null_class(self) -> int:
        """Label index meaning "unconditional" (used for classifier-free guidance)."""
        return self.config.num_classes

    def forward(
        self, sample: torch.Tensor, timestep: torch.Tensor | int, class_labels: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``sample`` (B, D, L'), ``timestep`` (B,) or scalar, ``class_labels`` (B,) int (``null_class`` = none)."""
        embedding = condition_embedding(self, sample, timestep, class_labels)
        tokens = self.proj_in(sample.transpose(1, 2)) + self.positions.to(sample.dtype)
        for block in self.blocks:
            tokens = block(tokens, embedding)
        return self.proj_out(self.norm_out(tokens, embedding)).transpose(1, 2)
