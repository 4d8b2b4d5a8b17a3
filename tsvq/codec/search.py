"""Analysis-by-synthesis code search: pick the codes whose *decoded* signal is closest to the input.

The encoder proposes a latent and nearest-neighbour quantization turns it into codes; on a patient unlike the
training ones the proposal is off, and the nearest code is not the one that decodes best. Speech codecs (CELP)
answer this by trying candidate codes through the decoder and keeping the best. Here: for every code position
try the ``candidates`` codes nearest to the encoder's latent there, keep one only if it lowers the decoded
error, and sweep a few times. The bitstream and the decoder do not change; only encoding costs more.

The decoder's receptive field is local (convolutions, no global normalisation), so a code changes only the
samples within ``reach`` code positions of it. Positions ``2 * reach + 1`` apart never influence the same sample,
so they are searched together, each judged on its own stretch of signal: one decoder pass per candidate and
phase, not per position.
"""

from __future__ import annotations

import weakref

import torch
import torch.nn.functional as F


@torch.no_grad()
def _reach(
    net, shape: tuple[int, int, int], nudge_at: int, centre: int, step: int, device, trials: int, seed: int
) -> int:
    """Nudge ``net``'s input ``(1, C, L)`` at position ``nudge_at``; how far from ``centre`` (in output positions
    grouped by ``step``) does the output change? Measured on random inputs, so no layer arithmetic can go stale."""
    generator = torch.Generator().manual_seed(seed)
    reach = 0
    for _ in range(trials):
        x = torch.randn(*shape, generator=generator).to(device)
        moved = x.clone()
        moved[..., nudge_at] += torch.randn(shape[1], generator=generator).to(device)
        changed = (net(moved) != net(x)).any(dim=1)[0]
        positions = torch.nonzero(changed)[:, 0] // step
        if len(positions):
            reach = max(reach, int((positions - centre).abs().max()))
    return reach


_MEASURED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # codec -> {(kind, length, trials, seed): reach}


def _measured(codec, kind: str, latent_length: int, trials: int, seed: int, measure) -> int:
    """``measure(length)`` at ``latent_length`` code positions, doubled while the change reaches the ends (the
    reach would be cut short), once per codec object: a reach belongs to the architecture, and measuring it
    again for every record made compressing a folder of 10-s ECGs spend more time measuring than coding."""
    known = _MEASURED.setdefault(codec, {})
    key = (kind, latent_length, trials, seed)
    if key not in known:
        length = latent_length
        reach = measure(length)
        while reach >= length // 2 - 1 and length < 2**14:
            length *= 2
            reach = measure(length)
        known[key] = reach
    return known[key]


def decoder_reach(codec, latent_length: int = 64, trials: int = 3, seed: int = 0) -> int:
    """How many code positions either side of a code its decoded samples can depend on (measured, not assumed)."""

    def decode(latent):
        return codec.decoder(codec.project_out(latent))

    def measure(length: int) -> int:
        mid = length // 2
        return _reach(
            decode, (1, codec.code_dim, length), mid, mid, codec.config.downsample_factor, codec.device, trials, seed
        )

    return _measured(codec, "decoder", latent_length, trials, seed, measure)


def encoder_reach(codec, latent_length: int = 64, trials: int = 3, seed: int = 0) -> int:
    """How many code positions either side of an input sample can change (measured, not assumed)."""
    f = codec.config.downsample_factor

    def measure(length: int) -> int:
        mid = length // 2
        return _reach(
            codec.encoder, (1, codec.config.in_channels, length * f), mid * f, mid, 1, codec.device, trials, seed
        )

    return _measured(codec, "encoder", latent_length, trials, seed, measure)


@torch.no_grad()
def search_codes(
    codec,
    x: torch.Tensor,
    codes: torch.Tensor,
    latent: torch.Tensor,
    candidates: int = 16,
    sweeps: int = 2,
    positions_per_pass: int | None = None,
) -> torch.Tensor:
    """Codes ``(B, L', Q)`` whose decoding of ``x`` (``(B, C, L)``, normalised) has no larger squared error.

    ``latent`` is the encoder's output ``(B, L', D)`` before quantization; candidates at a position (and
    residual stage) are the codes nearest to what that stage has to code there. Candidates are decoded together,
    at most ``positions_per_pass`` code positions per decoder call, counted over all windows of the call (default:
    8192 on CPU, where larger calls leave the cache and run slower per position, 2**19 on a GPU). Counting
    positions, not windows, keeps a call the same size for 4-s windows and for the minute-long chunks of a whole
    record (``tsvq.codec.streaming``): counted in windows, a chunk's calls were 16x larger and searching ran at
    half the speed on the 2-core CPU.
    """
    b, length, _ = codes.shape
    f, device = codec.config.downsample_factor, codes.device
    reach = min(decoder_reach(codec), length)
    stride = min(2 * reach + 1, length)
    budget = positions_per_pass or (2**19 if device.type == "cuda" else 8192)
    per_pass = max(1, budget // (b * length))  # candidates per decoder call
    codes = codes.clone()

    def error_per_position(c: torch.Tensor) -> torch.Tensor:  # (n * B, L', Q) -> squared error per code position
        decoded = codec.decoder(codec.project_out(codec.quantizer.lookup(c).transpose(1, 2))).float()
        error = ((decoded - x.repeat(len(c) // b, 1, 1)) ** 2).sum(dim=1)
        return error.view(len(c), length, f).sum(dim=-1)

    for _ in range(sweeps):
        for stage, quantizer in enumerate(codec.quantizer.quantizers):
            book, k = quantizer.normalized_codebook(), min(candidates, quantizer.num_codes)
            for phase in range(stride):
                positions = torch.arange(phase, length, stride, device=device)
                # each code position's error belongs to the one searched position within reach of it, if any
                belongs = ((torch.arange(length, device=device)[:, None] - positions).abs() <= reach).float()
                others = codec.quantizer.lookup(codes) - quantizer.lookup(codes[..., stage])  # the other stages' part
                target = (latent - others)[:, positions]
                if quantizer.cosine:
                    target = F.normalize(target, dim=-1)
                distances = torch.cdist(target.reshape(-1, target.shape[-1]), book)
                options = distances.topk(k, dim=-1, largest=False).indices.view(b, len(positions), k)
                trials = codes.repeat(k, 1, 1, 1)  # (k, B, L', Q): option j at every searched position
                trials[:, :, positions, stage] = options.permute(2, 0, 1)
                errors = torch.cat([error_per_position(chunk.flatten(0, 1)) for chunk in trials.split(per_pass)])
                best_error, best_option = (errors.view(k, b, length) @ belongs).min(dim=0)
                better = best_error < error_per_position(codes) @ belongs
                chosen = options.gather(2, best_option[..., None])[..., 0]
                codes[:, positions, stage] = torch.where(better, chosen, codes[:, positions, stage])
    return codes
