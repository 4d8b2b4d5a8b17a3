"""WaveNet autoregressive prior over code indices ``(B, L')``, as categorical variables (van den Oord et al. 2016).

Codes are predicted one at a time from all earlier ones: an embedding, residual blocks of dilated causal
convolutions (kernel 2, dilations doubling and repeating in cycles) with gated tanh x sigmoid units, residual and
skip 1x1 convolutions, and a K-way softmax. It gives an exact likelihood, so bits per code (and, with the codec's
rate, bits per second) are measured, not bounded.

A residual-VQ codec gives Q codes per position, ``(B, L', Q)``. The convolutions then run over positions as
before (each position's input is the sum of its Q codes' embeddings), and the Q codes of one position are drawn
in stage order, each given the position's features and the stages already drawn there (the depth half of
Lee et al. 2022's RQ-Transformer, here a shared head with a per-stage output layer): the sequence stays L' long,
not L' x Q, and stage q is predicted from the coarse stages it refines.

Fast generation keeps, for each layer, a circular buffer of its last ``dilation`` inputs, so each new code costs
one pass through the layers (r9y9/wavenet_vocoder's incremental inference) instead of a forward over the prefix.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn
from tqdm.auto import tqdm

from tsvq.config import check_ranges
from tsvq.errors import ConfigError, DataError
from tsvq.priors.base import PriorSample, register_prior, sampling_options
from tsvq.priors.code_prior import CodePrior


class GatedResidualLayer(nn.Module):
    """Dilated causal conv -> tanh * sigmoid gate (+ global condition) -> residual and skip 1x1 convs."""

    def __init__(
        self, residual_channels: int, skip_channels: int, dilation: int, condition_dim: int, last: bool = False
    ):
        super().__init__()
        self.dilation = dilation
        self.conv = nn.Conv1d(residual_channels, 2 * residual_channels, kernel_size=2, dilation=dilation)
        self.condition = nn.Linear(condition_dim, 2 * residual_channels, bias=False) if condition_dim else None
        # The last layer's residual output would feed nothing (only skips reach the head): it has no residual conv,
        # so every parameter gets a gradient (DistributedDataParallel requires it).
        self.residual = None if last else nn.Conv1d(residual_channels, residual_channels, 1)
        self.skip = nn.Conv1d(residual_channels, skip_channels, 1)

    def _gate(self, h: torch.Tensor, condition: torch.Tensor | None) -> torch.Tensor:
        if condition is not None and self.condition is not None:
            h = h + self.condition(condition).unsqueeze(-1)
        a, b = h.chunk(2, dim=1)
        return torch.tanh(a) * torch.sigmoid(b)

    def forward(self, x: torch.Tensor, condition: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` (B, R, T) -> (residual output (B, R, T), skip (B, S, T)); causal by left padding."""
        gated = self._gate(self.conv(F.pad(x, (self.dilation, 0))), condition)
        return self._residual(x, gated), self.skip(gated)

    def _residual(self, x: torch.Tensor, gated: torch.Tensor) -> torch.Tensor:
        return x if self.residual is None else (x + self.residual(gated)) * math.sqrt(0.5)

    def fused_weights(self) -> dict[str, torch.Tensor]:
        """Weights of one generation step as two matrices: the kernel-2 conv over [past; present] inputs, and the
        residual and skip 1x1 convs stacked, so a step is two matrix products instead of a dozen small ops."""
        conv = torch.cat([self.conv.weight[:, :, 0], self.conv.weight[:, :, 1]], dim=1)  # (2R, 2R)
        out_weight = (
            self.skip.weight[:, :, 0]
            if self.residual is None
            else torch.cat([self.residual.weight[:, :, 0], self.skip.weight[:, :, 0]])
        )
        out_bias = self.skip.bias if self.residual is None else torch.cat([self.residual.bias, self.skip.bias])
        return {"conv": conv, "conv_bias": self.conv.bias, "out": out_weight, "out_bias": out_bias}

    def step(
        self,
        x: torch.Tensor,
        buffer: torch.Tensor,
        t: int,
        weights: dict[str, torch.Tensor],
        condition_bias: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One time step: ``x`` (B, R); ``buffer`` (B, dilation, R) holds the inputs of the last ``dilation`` steps."""
        slot = t % self.dilation
        past = buffer[:, slot]  # the input of step t - dilation (zeros before the start, like the padding)
        h = torch.addmm(weights["conv_bias"], torch.cat([past, x], dim=1), weights["conv"].t())
        buffer[:, slot] = x  # after the read: cat copied ``past``
        if condition_bias is not None:
            h = h + condition_bias
        a, b = h.chunk(2, dim=1)
        gated = torch.tanh(a) * torch.sigmoid(b)
        out = torch.addmm(weights["out_bias"], gated, weights["out"].t())
        if self.residual is None:
            return x, out
        residual_channels = x.shape[1]
        return (x + out[:, :residual_channels]) * math.sqrt(0.5), out[:, residual_channels:]


@dataclass
class WaveNetConfig:
    """The WaveNet's size, as a user chooses it (vocabulary, length and classes come from the codec and the data)."""

    residual_channels: int = 64
    skip_channels: int = 128
    dilation_cycle: tuple[int, ...] = (1, 2, 4, 8, 16, 32)  # receptive field grows to the sum over all cycles
    num_cycles: int = 2
    condition_dim: int = 32


class WaveNet(ModelMixin, ConfigMixin):
    """Categorical prior over ``(B, L')`` codes, or ``(B, L', Q)`` with ``num_quantizers`` Q > 1. Embedding row
    ``q * num_codes + k`` is code k of stage q; the last row is the start token."""

    former_class_names = ("WaveNetPrior",)  # how folders written before tsvq 0.2 name it

    @register_to_config
    def __init__(
        self,
        num_codes: int = 512,
        latent_length: int = 128,
        residual_channels: int = 64,
        skip_channels: int = 128,
        dilation_cycle: tuple[int, ...] = (1, 2, 4, 8, 16, 32),
        num_cycles: int = 2,
        num_classes: int = 0,
        condition_dim: int = 32,
        num_quantizers: int = 1,
    ):
        super().__init__()
        if num_quantizers < 1:
            raise ValueError(f"num_quantizers must be at least 1, got {num_quantizers}")
        self.embedding = nn.Embedding(num_quantizers * num_codes + 1, residual_channels)
        # index num_classes means "no label" (unlabelled windows, or sampling without a label)
        self.class_embedding = nn.Embedding(num_classes + 1, condition_dim) if num_classes else None
        dilations = [d for _ in range(num_cycles) for d in dilation_cycle]
        self.layers = nn.ModuleList(
            GatedResidualLayer(
                residual_channels, skip_channels, d, condition_dim if num_classes else 0, last=i == len(dilations) - 1
            )
            for i, d in enumerate(dilations)
        )
        # the last conv holds every stage's output layer: rows q*K..(q+1)*K-1 give stage q's logits
        self.head = nn.Sequential(
            nn.ReLU(),
            nn.Conv1d(skip_channels, skip_channels, 1),
            nn.ReLU(),
            nn.Conv1d(skip_channels, num_quantizers * num_codes, 1),
        )
        if num_quantizers > 1:  # what stage q's head sees beside the position's features: q itself, the codes drawn
            self.stage_embedding = nn.Embedding(num_quantizers, skip_channels)
            self.depth_embedding = nn.Embedding((num_quantizers - 1) * num_codes, skip_channels)

    def _condition(self, labels: torch.Tensor | None, batch: int = 1) -> torch.Tensor | None:
        if self.class_embedding is None:
            return None
        if labels is None:
            labels = torch.full((batch,), self.config.num_classes, dtype=torch.long, device=self.device)
        return self.class_embedding(labels)

    def _check_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes as ``(B, L', Q)`` (Q = 1 for a single codebook), checked against the model's shape and vocabulary."""
        q = self.config.num_quantizers
        if q == 1 and codes.ndim == 2:
            codes = codes[..., None]
        if codes.ndim != 3 or codes.shape[-1] != q:
            expected = "(B, L')" if q == 1 else f"(B, L', {q})"
            raise DataError(
                f"WaveNet prior: codes must have shape {expected} (this prior models {q} code(s) per "
                f"position), got {tuple(codes.shape)}"
            )
        if codes.numel() and (codes.min() < 0 or codes.max() >= self.config.num_codes):
            raise DataError(f"WaveNet prior: code indices must lie in [0, {self.config.num_codes})")
        return codes

    def _stage_offsets(self, device) -> torch.Tensor:
        return torch.arange(self.config.num_quantizers, device=device) * self.config.num_codes

    def _features(self, codes: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """The trunk's skip features ``(B, S, L')`` of ``(B, L', Q)`` codes: position t sees positions < t."""
        inputs = self.embedding(codes + self._stage_offsets(codes.device)).sum(
            dim=2
        )  # (B, L', R): a position's codes, summed
        start = self.embedding.weight[-1].expand(len(codes), 1, -1)
        x = torch.cat([start, inputs[:, :-1]], dim=1).transpose(1, 2)
        condition = self._condition(labels, len(codes))
        skips = 0
        for layer in self.layers:
            x, skip = layer(x, condition)
            skips = skips + skip
        return skips * math.sqrt(1.0 / len(self.layers))

    def _depth_input(self, drawn: torch.Tensor, stage: int) -> torch.Tensor:
        """What stage ``stage``'s head adds to the position's features: its stage embedding and the embeddings of
        the codes ``drawn`` (``(..., stage)``) at that position; ``(..., S)``."""
        offsets = self._stage_offsets(drawn.device)[:stage]
        return self.stage_embedding.weight[stage] + self.depth_embedding(drawn + offsets).sum(dim=-2)

    def _stage_logits(self, features: torch.Tensor, stage: int) -> torch.Tensor:
        """Stage ``stage``'s logits ``(B, K, T)`` from head inputs ``(B, S, T)``. With several stages the head's 1x1
        convolutions run as matrix products on a slice of the output layer: on a CPU, the backward of a 1x1 conv
        with thousands of outputs (mkldnn) took 3x as long as the same matmul."""
        if self.config.num_quantizers == 1:
            return self.head(features)
        hidden, out, k = self.head[1], self.head[3], self.config.num_codes
        h = F.relu(torch.matmul(hidden.weight[:, :, 0], F.relu(features)) + hidden.bias[:, None])
        return (
            torch.matmul(out.weight[stage * k : (stage + 1) * k, :, 0], h) + out.bias[stage * k : (stage + 1) * k, None]
        )

    def forward(self, codes: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher-forced logits ``(B, K, L')`` (``(B, K, L', Q)`` for Q > 1): position t sees codes < t, and
        stage q at t also the stages < q at t."""
        single = codes.ndim == 2
        codes = self._check_codes(codes)
        features = self._features(codes, labels)
        if self.config.num_quantizers == 1:
            logits = self._stage_logits(features, 0)
            return logits if single else logits[..., None]
        stages = [
            self._stage_logits(features + self._depth_input(codes[..., :q], q).transpose(1, 2), q)
            for q in range(self.config.num_quantizers)
        ]
        return torch.stack(stages, dim=-1)

    def nll_bits(self, codes: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Negative log-likelihood of each sequence, in bits per code (over all its L' x Q codes), ``(B,)``."""
        logits = self.forward(codes, labels)
        nats = F.cross_entropy(logits.float(), codes, reduction="none")
        return nats.flatten(1).mean(dim=1) / math.log(2)

    @staticmethod
    def _pick(
        logits: torch.Tensor, uniform: torch.Tensor, temperature: float, top_k: int | None, top_p: float | None
    ) -> torch.Tensor:
        """Sample one code per row by inverse CDF of one uniform draw, after temperature, top-k and top-p."""
        logits = logits.float() / max(temperature, 1e-6)
        if top_k:
            kth = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1).values[:, -1:]
            logits = logits.masked_fill(logits < kth, -float("inf"))
        probs = torch.softmax(logits, dim=-1)
        if top_p is not None and top_p < 1.0:
            sorted_probs, order = probs.sort(dim=-1, descending=True)
            keep = sorted_probs.cumsum(-1) - sorted_probs < top_p  # always keeps the most likely code
            sorted_probs = sorted_probs * keep
            probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
        cdf = probs.cumsum(-1)
        cdf = cdf / cdf[:, -1:]
        return torch.searchsorted(cdf, uniform[:, None].to(cdf.dtype)).clamp(max=probs.shape[-1] - 1).squeeze(-1)

    @torch.no_grad()
    def generate(
        self,
        n: int,
        length: int | None = None,
        labels: torch.Tensor | None = None,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = 0,
        cached: bool = True,
        progress: bool = False,
    ) -> torch.Tensor:
        """Ancestral sampling of ``(n, length)`` codes (``(n, length, Q)`` for Q > 1, stage by stage within a
        position); ``cached=False`` recomputes the whole prefix each step."""
        length = length or self.config.latent_length
        known = torch.full((n, length, self.config.num_quantizers), -1, dtype=torch.long)
        return self.infill(known, labels, temperature, top_k, top_p, seed, cached, progress)[0]

    @torch.no_grad()
    def infill(
        self,
        known: torch.Tensor,
        labels: torch.Tensor | None = None,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = 0,
        cached: bool = True,
        progress: bool = False,
        guide: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Ancestral sampling where ``known`` ``(n, L[, Q])`` holds a code (>= 0), which is kept, and -1 where one is
        drawn. Returns the codes and, per row, two log-probabilities (nats, under the untempered model): of the known
        codes that come after the first drawn one (how well the drawn codes agree with what is observed after them,
        the weight that turns left-to-right draws into draws given both sides: sampling-importance-resampling), and
        of the drawn codes themselves (with the first: how likely the whole completion is).

        ``guide`` ``(g, L, K)``, ``n`` a multiple of ``g``: log-weights added to the first stage's logits where a
        code is drawn (rows ``i * n / g`` to ``(i + 1) * n / g - 1`` take guide ``i``), so the draws come from the
        prior times a likelihood of what is known of the hidden stretch (``tsvq.repair``: a planned beat)."""
        n, length = known.shape[:2]
        per_guide = 1 if guide is None else n // guide.shape[0]
        stages = self.config.num_quantizers
        known = known.reshape(n, length, stages).to(self.device)
        generator = torch.Generator().manual_seed(seed if seed is not None else torch.seed())
        uniforms = torch.rand((length, stages, n), generator=generator)
        device = self.device
        labels = labels.to(device) if labels is not None else None
        guide = guide.to(device=device, dtype=torch.float32) if guide is not None else None
        condition = self._condition(labels, n)
        codes = torch.zeros((n, length, stages), dtype=torch.long, device=device)
        agreement, own = torch.zeros(n, device=device), torch.zeros(n, device=device)
        drawn_before = torch.zeros(n, dtype=torch.bool, device=device)
        buffers = [
            torch.zeros(n, layer.dilation, self.config.residual_channels, device=device) for layer in self.layers
        ]
        weights = [layer.fused_weights() for layer in self.layers]
        condition_biases = [
            None if condition is None or layer.condition is None else layer.condition(condition)
            for layer in self.layers
        ]

        def choose(t: int, q: int, logits: torch.Tensor) -> torch.Tensor:
            nonlocal agreement, own, drawn_before
            given = known[:, t, q]
            observed = given >= 0
            steered = logits if guide is None or q else logits + guide[:, t].repeat_interleave(per_guide, 0)
            chosen = torch.where(
                observed, given, self._pick(steered, uniforms[t, q].to(device), temperature, top_k, top_p)
            )
            log_p = torch.log_softmax(logits.float(), dim=-1).gather(1, chosen[:, None])[:, 0]
            agreement = agreement + torch.where(observed & drawn_before, log_p, 0.0)
            own = own + torch.where(observed, 0.0, log_p)
            drawn_before = drawn_before | ~observed
            return chosen

        x = self.embedding.weight[-1].expand(n, -1)  # the start token
        scale = math.sqrt(1.0 / len(self.layers))
        for t in tqdm(range(length), desc="sample wavenet", leave=False, disable=not progress):
            if cached:
                skips = 0
                for layer, buffer, fused, bias in zip(self.layers, buffers, weights, condition_biases):
                    x, skip = layer.step(x, buffer, t, fused, bias)
                    skips = skips + skip
                features = skips * scale
                for q in range(stages):
                    head_input = features if stages == 1 else features + self._depth_input(codes[:, t, :q], q)
                    codes[:, t, q] = choose(t, q, self._stage_logits(head_input.unsqueeze(-1), q)[:, :, 0])
                x = self.embedding(codes[:, t] + self._stage_offsets(device)).sum(dim=1)
            else:
                for q in range(stages):
                    prefix = codes[
                        :, : t + 1
                    ]  # position t's stages >= q are still zeros: nothing before them reads them
                    codes[:, t, q] = choose(t, q, self.forward(prefix, labels)[..., t, q])
        return (codes[..., 0] if stages == 1 else codes), agreement, own


@dataclass
class WaveNetSamplingOptions:
    temperature: float = field(default=1.0, metadata={"help": "WaveNet: divide the logits by this (< 1: safer codes)"})
    top_k: int | None = field(default=None, metadata={"help": "WaveNet: draw only from the k most likely codes"})
    top_p: float | None = field(
        default=None, metadata={"help": "WaveNet: nucleus sampling, the smallest set of codes holding this probability"}
    )

    def __post_init__(self) -> None:
        check_ranges(self, positive=("temperature", "top_k", "top_p"))
        if self.top_p is not None and self.top_p > 1:
            raise ConfigError(f"top_p = {self.top_p!r}: a probability, at most 1")


@register_prior
class WaveNetPrior(CodePrior):
    """A trained WaveNet over code indices with what it needs beside its weights: labels, codec signature, code rate."""

    kind = "wavenet"
    title = "WaveNet prior"
    model_class = WaveNet
    residual_codes = True
    SamplingOptions = WaveNetSamplingOptions

    def sample(
        self, n: int, *, labels=None, seed: int | None = 0, batch_size: int = 256, progress: bool = True, **options
    ) -> PriorSample:
        """``n`` code sequences ``(n, L')`` int64 (``(n, L', Q)`` for a residual-VQ codec), drawn with cached
        (O(layers) per position) generation."""
        settings = sampling_options(WaveNetPrior, options, "WaveNet prior sampling options")
        codes = self._in_batches(
            n,
            self.label_ids(labels, n),
            seed,
            batch_size,
            lambda count, batch_labels, batch_seed: self.model.generate(
                count,
                labels=batch_labels,
                temperature=settings.temperature,
                top_k=settings.top_k,
                top_p=settings.top_p,
                seed=batch_seed,
                progress=progress,
            ),
        )
        return PriorSample(codes=codes, info=asdict(settings))
