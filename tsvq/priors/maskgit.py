"""Bidirectional masked-token prior over code indices ``(B, L')`` (MaskGIT, Chang et al. 2022; TimeVQVAE's stage 2).

Why beside the WaveNet: an autoregressive prior commits to codes left to right and never revisits one; a window
of heartbeats is nearly periodic, and a model that sees both neighbours of a beat, and that fills the sequence in a
few parallel passes instead of L' sequential ones, is the other family the field uses.

Training hides a random fraction of the positions (the fraction drawn from the cosine schedule, so most batches
hide most of the sequence, as sampling starts) and predicts the hidden codes from every visible one. Sampling
starts fully hidden; each of ``steps`` passes predicts every hidden position, draws a code for each, and keeps the
most confident ones so that ``cos(pi/2 * t/T)`` of the sequence stays hidden after pass t; the rest are hidden
again. Confidence gets Gumbel noise that fades to zero over the passes (the paper's "choice temperature"), so early
passes explore. A conditional model is trained with the label sometimes dropped, for classifier-free guidance.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.attention import BasicTransformerBlock
from diffusers.models.modeling_utils import ModelMixin
from torch import nn
from tqdm.auto import tqdm

from tsvq.config import check_ranges
from tsvq.errors import DataError
from tsvq.priors.base import PriorSample, register_prior, sampling_options
from tsvq.priors.code_prior import CodePrior


def masked_fraction(progress: torch.Tensor | float) -> torch.Tensor:
    """The cosine schedule: the fraction of positions hidden at ``progress`` in [0, 1] (1 at 0, 0 at 1)."""
    return torch.cos(torch.as_tensor(progress, dtype=torch.float32) * math.pi / 2)


def gumbel_noise(shape, generator: torch.Generator) -> torch.Tensor:
    """Standard Gumbel samples, ``-log(-log(u))``, with ``u`` kept inside (0, 1)."""
    uniform = torch.rand(shape, generator=generator).clamp(1e-10, 1 - 1e-7)
    return -torch.log(-torch.log(uniform))


def hide_codes(
    codes: torch.Tensor, fraction: torch.Tensor, mask_id: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Hide ``ceil(fraction * L')`` (at least one) random positions of each row: (inputs, hidden mask)."""
    batch, length = codes.shape
    count = torch.ceil(fraction * length).clamp(1, length).long().to(codes.device)
    ranks = torch.rand((batch, length), generator=generator).to(codes.device).argsort(dim=1).argsort(dim=1)
    hidden = ranks < count[:, None]
    return torch.where(hidden, torch.full_like(codes, mask_id), codes), hidden


def masked_cross_entropy(
    model: nn.Module,
    codes: torch.Tensor,
    labels: torch.Tensor | None,
    fraction: torch.Tensor,
    mask_id: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The training loss: hide positions, predict them. ``model`` is called, not unwrapped, so a
    DistributedDataParallel wrapper synchronises its gradients."""
    inputs, hidden = hide_codes(codes, fraction, mask_id, generator)
    logits = model(inputs, labels)
    return F.cross_entropy(logits[hidden].float(), codes[hidden])


@dataclass
class MaskGITConfig:
    """The transformer's size, as a user chooses it (vocabulary, length and classes come from the codec and data)."""

    width: int = 128
    depth: int = 4
    heads: int = 4
    dropout: float = 0.1
    position_encoding: str = "conv"  # "conv" (relative, shift-equivariant) or "learned" (one vector per position)
    position_kernel: int = 65  # the convolution's width in code positions (65: about a second each way at 31 codes/s)


class MaskedCodeTransformer(ModelMixin, ConfigMixin):
    """Logits ``(B, L', K)`` of every position's code from codes where index ``num_codes`` means "hidden".
    A conditional model reads its label as one extra token in front (index ``num_classes``: no label)."""

    @register_to_config
    def __init__(
        self,
        num_codes: int = 512,
        latent_length: int = 128,
        width: int = 128,
        depth: int = 4,
        heads: int = 4,
        dropout: float = 0.1,
        num_classes: int = 0,
        position_encoding: str = "conv",
        position_kernel: int = 65,
    ):
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} must be divisible by heads {heads}")
        self.embedding = nn.Embedding(num_codes + 1, width)
        if position_encoding not in ("conv", "learned"):
            raise ValueError(f"position_encoding must be conv or learned, not {position_encoding!r}")
        # "conv": where a code sits is told by a convolution over its neighbours (wav2vec 2.0's relative positional
        # embedding), so the model is the same at every shift of a window, like the WaveNet; "learned": one vector
        # per absolute position (MaskGIT's), which on few, overlapping windows learns the windows by heart
        self.position_conv = (
            nn.Conv1d(width, width, position_kernel, padding=position_kernel // 2, groups=math.gcd(16, width))
            if position_encoding == "conv"
            else None
        )
        self.positions = (
            nn.Parameter(torch.randn(1, latent_length, width) * 0.02) if position_encoding == "learned" else None
        )
        self.class_embedding = nn.Embedding(num_classes + 1, width) if num_classes else None
        self.input_dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            BasicTransformerBlock(
                width, heads, width // heads, dropout=dropout, activation_fn="gelu", attention_bias=True
            )
            for _ in range(depth)
        )
        self.norm_out = nn.LayerNorm(width)
        self.head = nn.Linear(width, num_codes)
        # token and label embeddings on the positions' scale: at torch's default N(0, 1) they drown the positions,
        # and attention, blind to where a code sits, learns little beyond the codes' frequencies
        for embedding in (self.embedding, self.class_embedding):
            if embedding is not None:
                nn.init.normal_(embedding.weight, std=0.02)

    @property
    def mask_id(self) -> int:
        return self.config.num_codes

    @property
    def null_class(self) -> int:
        return self.config.num_classes

    def forward(self, codes: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """``codes`` (B, L') with ``mask_id`` at hidden positions; ``labels`` (B,) (``null_class``: none)."""
        if codes.ndim != 2 or codes.shape[1] != self.config.latent_length:
            raise DataError(
                f"MaskGIT prior: codes must have shape (B, {self.config.latent_length}), got {tuple(codes.shape)}"
            )
        tokens = self.embedding(codes)
        if self.position_conv is not None:
            tokens = tokens + F.gelu(self.position_conv(tokens.transpose(1, 2))).transpose(1, 2)
        else:
            tokens = tokens + self.positions
        if self.class_embedding is not None:
            if labels is None:
                labels = torch.full((len(codes),), self.null_class, dtype=torch.long, device=codes.device)
            tokens = torch.cat([self.class_embedding(labels)[:, None], tokens], dim=1)
        tokens = self.input_dropout(tokens)
        for block in self.blocks:
            tokens = block(tokens)
        if self.class_embedding is not None:
            tokens = tokens[:, 1:]
        return self.head(self.norm_out(tokens))

    def masked_loss(
        self,
        codes: torch.Tensor,
        labels: torch.Tensor | None,
        fraction: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Cross-entropy (nats) of the hidden positions' codes, over every hidden position of the batch."""
        return masked_cross_entropy(self, codes, labels, fraction, self.mask_id, generator)

    def _guided_logits(self, codes: torch.Tensor, labels: torch.Tensor | None, guidance: float) -> torch.Tensor:
        if labels is None or guidance == 1.0:
            return self.forward(codes, labels).float()
        both = self.forward(
            torch.cat([codes, codes]), torch.cat([labels, torch.full_like(labels, self.null_class)])
        ).float()
        conditional, unconditional = both.chunk(2)
        return unconditional + guidance * (conditional - unconditional)

    @torch.no_grad()
    def generate(
        self,
        n: int,
        steps: int = 12,
        labels: torch.Tensor | None = None,
        temperature: float = 1.0,
        confidence_noise: float = 4.5,
        guidance: float = 1.0,
        seed: int | None = 0,
        progress: bool = False,
    ) -> torch.Tensor:
        """``(n, L')`` codes by iterative parallel decoding (module docstring). Noise is drawn on the CPU from
        ``seed``, so a draw is the same on every device."""
        hidden = torch.full((n, self.config.latent_length), -1, dtype=torch.long)
        return self.infill(hidden, steps, labels, temperature, confidence_noise, guidance, seed, progress)

    @torch.no_grad()
    def infill(
        self,
        known: torch.Tensor,
        steps: int = 12,
        labels: torch.Tensor | None = None,
        temperature: float = 1.0,
        confidence_noise: float = 4.5,
        guidance: float = 1.0,
        seed: int | None = 0,
        progress: bool = False,
        guide: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``known`` ``(n, L')`` with a code (>= 0), which is kept, or -1 where one is drawn -> ``(n, L')`` codes:
        the decoding of ``generate`` over the hidden positions only, each pass reading every known code on both
        sides (the task the model trained on). ``guide`` ``(n, L', K)``: log-weights added to the logits (a
        likelihood from outside, as the rhythm's planned beats in ``tsvq.repair``)."""
        device = self.device
        n, length = known.shape
        generator = torch.Generator().manual_seed(seed if seed is not None else torch.seed())
        labels = labels.to(device) if labels is not None else None
        known = known.to(device)
        codes = torch.where(known >= 0, known, torch.full_like(known, self.mask_id))
        unknown = (known < 0).sum(1)  # positions to decide per row
        for step in tqdm(range(steps), desc="sample maskgit", leave=False, disable=not progress):
            hidden = codes == self.mask_id
            if not hidden.any():
                break
            logits = self._guided_logits(codes, labels, guidance) / max(temperature, 1e-6)
            if guide is not None:
                logits = logits + guide.to(device=device, dtype=logits.dtype)
            # one categorical draw per position (Gumbel-max)
            drawn = (logits + gumbel_noise(logits.shape, generator).to(device)).argmax(-1)
            drawn = torch.where(hidden, drawn, codes)
            confidence = torch.log_softmax(logits, -1).gather(-1, drawn[..., None])[..., 0]
            noise = gumbel_noise((n, length), generator).to(device)
            confidence = confidence + confidence_noise * (1 - (step + 1) / steps) * noise
            confidence = confidence.masked_fill(~hidden, float("inf"))  # decided codes stay
            # per row, how many of its hidden positions stay hidden after this pass: at least one is decided per
            # pass, and until the last pass one stays for the next
            still = torch.floor(unknown * masked_fraction((step + 1) / steps)).long()
            count = hidden.sum(1)
            if step < steps - 1:
                still = torch.where(count > 0, torch.minimum(still, count - 1).clamp(min=1), 0)
            order = confidence.sort(dim=1).values
            threshold = order.gather(1, (still - 1).clamp(min=0)[:, None])
            rehide = (confidence <= threshold) & (still > 0)[:, None]
            codes = torch.where(rehide, torch.full_like(drawn, self.mask_id), drawn)
        return codes


@dataclass
class MaskGITSamplingOptions:
    steps: int = field(default=12, metadata={"help": "maskgit: decoding passes"})
    temperature: float = field(default=1.0, metadata={"help": "maskgit: divide the logits by this (< 1: safer codes)"})
    confidence_noise: float = field(
        default=4.5,
        metadata={
            "help": "maskgit: Gumbel noise on the confidence at the first "
            "pass, fading to 0 (the paper's choice temperature)"
        },
    )
    guidance: float = field(
        default=1.0, metadata={"help": "maskgit: classifier-free guidance scale (conditional priors)"}
    )

    def __post_init__(self) -> None:
        check_ranges(self, positive=("steps", "temperature"), non_negative=("confidence_noise", "guidance"))


@register_prior
class MaskGITPrior(CodePrior):
    """A trained masked-code transformer with its labels, codec signature and validation figures."""

    kind = "maskgit"
    title = "MaskGIT prior"
    model_class = MaskedCodeTransformer
    SamplingOptions = MaskGITSamplingOptions

    def sample(
        self, n: int, *, labels=None, seed: int | None = 0, batch_size: int = 256, progress: bool = True, **options
    ) -> PriorSample:
        """``n`` code sequences ``(n, L')`` int64 in ``steps`` parallel passes per batch."""
        settings = sampling_options(MaskGITPrior, options, "MaskGIT prior sampling options")
        if settings.steps < 1:
            raise DataError(f"MaskGIT prior: steps must be at least 1, got {settings.steps}")
        codes = self._in_batches(
            n,
            self.label_ids(labels, n),
            seed,
            batch_size,
            lambda count, batch_labels, batch_seed: self.model.generate(
                count,
                settings.steps,
                batch_labels,
                settings.temperature,
                settings.confidence_noise,
                settings.guidance,
                batch_seed,
                progress,
            ),
        )
        return PriorSample(codes=codes, info=asdict(settings))
