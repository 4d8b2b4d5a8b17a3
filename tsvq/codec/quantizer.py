"""Vector quantization with a visible, healthy codebook.

The quantizer maps encoder outputs ``z`` (N, d) to their nearest codebook entries (squared Euclidean distance,
computed as one matrix product) and passes gradients straight through (van den Oord et al., 2017). The codebook
learns either from the codebook loss (``mode="loss"``, with commitment weight beta = 0.25 as in the paper) or
from exponential moving averages of the assigned vectors (``mode="ema"``, decay 0.99 with Laplace smoothing,
as in Sonnet's VectorQuantizerEMA). All codebook arithmetic runs in float32, even under autocast.

Health is measured every step: the fraction of codes used, the perplexity of the assignments, and the number
of dead codes (usage EMA below a threshold), which are restarted from current encoder outputs (Jukebox).
Under multi-process training counts and sums are all-reduced, and k-means and restarts run on the encoder
outputs of the whole global batch (gathered in rank order), so every rank holds the same codebook, and the one a
single process training on the same global batches would hold.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn


def distributed() -> bool:
    """Whether this process is one of several training together (an initialised group of more than one)."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    if distributed():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def _broadcast(tensor: torch.Tensor) -> torch.Tensor:
    if distributed():
        dist.broadcast(tensor, src=0)
    return tensor


def _all_gather_rows(tensor: torch.Tensor) -> torch.Tensor:
    """The rows of every rank's ``tensor`` (N_r, d), in rank order: the global batch's, as one process sees it."""
    if not distributed():
        return tensor
    sizes = [torch.zeros(1, dtype=torch.long, device=tensor.device) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, torch.tensor([tensor.shape[0]], device=tensor.device))
    largest = int(max(size.item() for size in sizes))
    padded = F.pad(tensor, (0, 0, 0, largest - tensor.shape[0])).contiguous()
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded)
    return torch.cat([part[: int(size.item())] for part, size in zip(parts, sizes, strict=True)])


def nearest_codes(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """Index of the nearest codebook row for each row of ``z``: ||z||^2 - 2 z.e + ||e||^2, one matmul."""
    distances = z.pow(2).sum(1, keepdim=True) - 2 * z @ codebook.t() + codebook.pow(2).sum(1)[None, :]
    return distances.argmin(dim=1)


def stage_vectors(codebooks: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """``(..., q)`` codes of the first q stages -> ``(..., dim)``: the sum of each stage's row of ``codebooks``
    (``stage_codebooks()``, on any device). No range check, which would wait on the device: for codes a codec made."""
    return sum(F.embedding(codes[..., i], codebooks[i]) for i in range(codes.shape[-1]))


def kmeans(
    samples: torch.Tensor, k: int, iterations: int = 10, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's k-means on ``samples`` (N, d) with k-means++ seeding; returns centroids (k, d) and cluster sizes (k,)."""
    n = samples.shape[0]
    device = samples.device
    # k-means++: each new seed is drawn with probability proportional to its squared distance to the seeds so far.
    first = int(torch.randint(0, n, (1,), generator=generator))
    centroids = [samples[first]]
    closest = (samples - samples[first]).pow(2).sum(1)
    for _ in range(1, k):
        weights = closest.cpu().double()
        if weights.sum() <= 0:  # fewer distinct points than codes: reuse points
            index = int(torch.randint(0, n, (1,), generator=generator))
        else:
            index = int(torch.multinomial(weights, 1, generator=generator))
        centroids.append(samples[index])
        closest = torch.minimum(closest, (samples - samples[index]).pow(2).sum(1))
    centroids = torch.stack(centroids).clone().to(device)
    counts = torch.zeros(k, device=device)
    for _ in range(iterations):
        assign = nearest_codes(samples, centroids)
        counts = torch.bincount(assign, minlength=k).float()
        sums = torch.zeros_like(centroids).index_add_(0, assign, samples)
        filled = counts > 0
        centroids[filled] = sums[filled] / counts[filled, None]  # empty clusters keep their seed
    return centroids, counts


@dataclass
class QuantizerOutput:
    """``quantized`` has the straight-through gradient; ``codes`` are int64; stats are detached scalars."""

    quantized: torch.Tensor
    codes: torch.Tensor
    loss: torch.Tensor
    perplexity: torch.Tensor
    usage: torch.Tensor
    dead_codes: torch.Tensor


class VectorQuantizer(nn.Module):
    """One codebook of ``num_codes`` vectors of size ``dim``, acting on flattened vectors (N, dim)."""

    def __init__(
        self,
        num_codes: int = 512,
        dim: int = 64,
        mode: str = "ema",
        beta: float = 0.25,
        decay: float = 0.99,
        epsilon: float = 1e-5,
        kmeans_init: bool = True,
        kmeans_iterations: int = 10,
        restart_dead_codes: bool = True,
        dead_code_threshold: float = 0.1,
        cosine: bool = False,
        usage_decay: float = 0.95,
    ):
        super().__init__()
        if mode not in ("ema", "loss"):
            raise ValueError(f"codebook mode must be 'ema' or 'loss', got '{mode}'")
        self.num_codes, self.dim, self.mode = num_codes, dim, mode
        self.beta, self.decay, self.epsilon = beta, decay, epsilon
        self.kmeans_init, self.kmeans_iterations = kmeans_init, kmeans_iterations
        self.restart_dead_codes, self.dead_code_threshold = restart_dead_codes, dead_code_threshold
        # Usage is averaged over ~20 batches: long enough to be a fair count, short enough that codes stranded by a
        # moving encoder early in training are restarted within tens of steps, not hundreds.
        self.usage_decay = usage_decay
        self.cosine = cosine
        initial = torch.randn(num_codes, dim) / dim**0.5
        if mode == "loss":
            self.codebook = nn.Parameter(initial)
        else:
            self.register_buffer("codebook", initial)
            self.register_buffer("ema_cluster_size", torch.ones(num_codes))
            self.register_buffer("ema_embed_sum", initial.clone())
        # Usage EMA in units of "share of an even split": 1.0 means the code is used as often as average.
        self.register_buffer("usage_ema", torch.ones(num_codes))
        self.register_buffer("initialized", torch.tensor(not kmeans_init))

    def normalized_codebook(self) -> torch.Tensor:
        codebook = self.codebook.float()
        return F.normalize(codebook, dim=1) if self.cosine else codebook

    def stage_codebooks(self) -> torch.Tensor:
        """The codebook as ``(1, K, dim)``: one stage, in the form a residual quantizer gives its stages."""
        return self.normalized_codebook()[None]

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """Codebook vectors of integer codes (any shape) -> (..., dim)."""
        if codes.numel() and (codes.min() < 0 or codes.max() >= self.num_codes):
            raise IndexError(
                f"code indices must lie in [0, {self.num_codes}); got range [{int(codes.min())}, {int(codes.max())}]"
            )
        return F.embedding(codes, self.normalized_codebook())

    @torch.no_grad()
    def _initialize(self, z: torch.Tensor) -> None:
        centroids, counts = kmeans(_all_gather_rows(z), self.num_codes, self.kmeans_iterations)
        centroids = _broadcast(centroids.contiguous())
        counts = _broadcast(counts.contiguous())
        self.codebook.data.copy_(centroids)
        if self.mode == "ema":
            self.ema_cluster_size.copy_(counts.clamp(min=1.0))
            self.ema_embed_sum.copy_(centroids * self.ema_cluster_size[:, None])
        self.initialized.fill_(True)

    @torch.no_grad()
    def _update_statistics(self, z: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """EMA codebook update and usage tracking; returns the (all-reduced) code counts of this batch."""
        one_hot_counts = torch.bincount(codes, minlength=self.num_codes).float()
        counts = _all_reduce_sum(one_hot_counts)
        total = counts.sum().clamp(min=1.0)
        self.usage_ema.mul_(self.usage_decay).add_(counts / total * self.num_codes, alpha=1 - self.usage_decay)
        if self.mode == "ema":
            embed_sum = _all_reduce_sum(torch.zeros_like(self.ema_embed_sum).index_add_(0, codes, z))
            self.ema_cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
            self.ema_embed_sum.mul_(self.decay).add_(embed_sum, alpha=1 - self.decay)
            # Laplace smoothing keeps rarely used codes from dividing by ~0.
            n = self.ema_cluster_size.sum()
            smoothed = (self.ema_cluster_size + self.epsilon) / (n + self.num_codes * self.epsilon) * n
            self.codebook.data.copy_(self.ema_embed_sum / smoothed[:, None])
        return counts

    @torch.no_grad()
    def _restart(self, z: torch.Tensor) -> int:
        """Move dead codes onto random encoder outputs of the global batch (chosen on rank 0) and reset their
        statistics."""
        dead = self.usage_ema < self.dead_code_threshold
        n_dead = int(dead.sum())
        if n_dead == 0:
            return 0
        z = _all_gather_rows(z)
        pick = torch.randint(0, z.shape[0], (n_dead,), device=z.device)
        noise = 0.01 * z.std() * torch.randn(n_dead, z.shape[1], device=z.device)
        replacement = _broadcast((z[pick] + noise).contiguous())
        self.codebook.data[dead] = replacement
        self.usage_ema[dead] = 1.0  # a fresh code gets the grace of average usage
        if self.mode == "ema":
            self.ema_cluster_size[dead] = 1.0
            self.ema_embed_sum[dead] = replacement
        return n_dead

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        """Quantize ``z`` (N, dim). Updates the codebook only in training mode."""
        device_type = z.device.type
        with torch.autocast(device_type=device_type, enabled=False):
            z = z.float()
            if self.cosine:
                z = F.normalize(z, dim=1)
            if self.training and not bool(self.initialized):
                self._initialize(z.detach())
            codebook = self.normalized_codebook()
            codes = nearest_codes(z.detach(), codebook.detach())
            if self.training:
                counts = self._update_statistics(z.detach(), codes)
                codebook = self.normalized_codebook()
            else:
                counts = torch.bincount(codes, minlength=self.num_codes).float()
            quantized = F.embedding(codes, codebook)
            commitment = F.mse_loss(z, quantized.detach())
            loss = self.beta * commitment
            if self.mode == "loss":
                loss = loss + F.mse_loss(quantized, z.detach())
            dead_codes = torch.tensor(0)
            if self.training and self.restart_dead_codes:
                dead_codes = torch.tensor(self._restart(z.detach()))
            quantized_st = z + (quantized - z).detach()
            probs = counts / counts.sum().clamp(min=1.0)
            perplexity = torch.exp(-(probs * torch.log(probs.clamp(min=1e-12))).sum())
            usage = (counts > 0).float().mean()
        return QuantizerOutput(quantized_st, codes, loss, perplexity.detach(), usage.detach(), dead_codes)


class ResidualVectorQuantizer(nn.Module):
    """Several quantizers in sequence, each coding what the previous ones left (SoundStream, Encodec).

    With ``quantizer_dropout`` > 0, training sometimes stops after a random number of stages, so the first
    stages alone already give a usable (coarser) reconstruction.
    """

    def __init__(self, num_quantizers: int = 1, quantizer_dropout: float = 0.0, **quantizer_kwargs):
        super().__init__()
        self.quantizers = nn.ModuleList(VectorQuantizer(**quantizer_kwargs) for _ in range(num_quantizers))
        self.quantizer_dropout = quantizer_dropout

    @property
    def num_quantizers(self) -> int:
        return len(self.quantizers)

    def forward(self, z: torch.Tensor) -> tuple[QuantizerOutput, list[QuantizerOutput]]:
        """Quantize (N, dim); codes come back as (N, Q)."""
        active = self.num_quantizers
        if self.training and self.quantizer_dropout > 0 and active > 1:
            # Every rank draws, then rank 0's draw wins, so all ranks run the same stages.
            if torch.rand(1).item() < self.quantizer_dropout:
                active = int(torch.randint(1, active + 1, (1,)).item())
            active = int(_broadcast(torch.tensor(active, device=z.device)).item())
        residual = z.float()
        total = torch.zeros_like(residual)
        stages = []
        for quantizer in self.quantizers[:active]:
            out = quantizer(residual)
            total = total + out.quantized
            residual = residual - out.quantized.detach()
            stages.append(out)
        codes = torch.stack([s.codes for s in stages], dim=-1)
        if active < self.num_quantizers:  # dropped stages contribute nothing; mark their codes as 0
            codes = F.pad(codes, (0, self.num_quantizers - active))
        loss = sum(s.loss for s in stages)
        summary = QuantizerOutput(
            total, codes, loss, stages[0].perplexity, stages[0].usage, sum(s.dead_codes for s in stages)
        )
        return summary, stages

    def stage_codebooks(self) -> torch.Tensor:
        """Every stage's codebook, ``(Q, K, dim)``: a code tuple's vector is the sum of its stages' rows."""
        return torch.stack([quantizer.normalized_codebook() for quantizer in self.quantizers])

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """(..., q) codes of the first q <= Q stages -> (..., dim) summed vectors.

        Fewer stages than the codec has decode at a lower bit rate: with quantizer dropout in training, every
        prefix of the stages is a codec of its own (one model serves a whole rate-distortion curve).
        """
        if not 1 <= codes.shape[-1] <= self.num_quantizers:
            raise IndexError(f"expected 1 to {self.num_quantizers} code(s) per position, got {codes.shape[-1]}")
        return sum(self.quantizers[i].lookup(codes[..., i]) for i in range(codes.shape[-1]))

    @torch.no_grad()
    def snap(self, vectors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Nearest representable vectors and their codes for arbitrary vectors (N, dim), stage by stage."""
        residual = vectors.float()
        total = torch.zeros_like(residual)
        codes = []
        for quantizer in self.quantizers:
            code = nearest_codes(
                F.normalize(residual, dim=1) if quantizer.cosine else residual, quantizer.normalized_codebook()
            )
            chosen = quantizer.lookup(code)
            codes.append(code)
            total = total + chosen
            residual = residual - chosen
        return total, torch.stack(codes, dim=-1)
