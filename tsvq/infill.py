"""Drawing a gap's codes with the priors that read both sides at once: MaskGIT and diffusion (``tsvq.repair``).

The WaveNet draws a gap left to right and weighs each draw by the codes after it (``tsvq.repair``). MaskGIT was
trained to fill hidden codes from every visible one, and a diffusion prior can be made to (inpainting), so both
see the two sides of a gap directly. Both work on windows of their fixed length (``latent_length`` codes): a gap
is cut into pieces of at most half a window, each drawn in a window with a quarter window of context on either side
where the recording has it (an earlier piece, already drawn, is context for the next); what a window holds beyond
the recording is drawn and dropped.

- **MaskGIT**: the observed codes stay, the hidden ones are decoded in the prior's passes (``MaskedCodeTransformer
  .infill``), the rhythm's log-weights (the same ``tsvq.repair`` gives the WaveNet) added to the logits.
- **Diffusion**: the observed codebook vectors are put back, noised to each step's level, after every step
  (RePaint's replacement, ``DiffusionPrior.inpaint_vectors``), and the result is snapped to the nearest codes.
  With a rhythm plan, the window starts from the plan's beats noised to ``GUIDE_STRENGTH`` of the schedule
  (SDEdit): the beats keep their planned times and the prior redraws their shape. DDIM by default: the multistep
  DPM-Solver extrapolates from its earlier steps, which the replacement contradicts (drawn from a window's own
  codes with a 50-code gap, its fill strayed 2.8 times as far from them as DDIM's did).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from tsvq.priors.diffusion import DiffusionPrior
from tsvq.priors.maskgit import MaskGITPrior

CONTEXT_SHARE = 0.25  # of a window: the observed codes each side of a piece of a gap
GUIDE_STRENGTH = 0.5  # diffusion: how much of the schedule the planned beats are noised to before denoising
INPAINT_SAMPLER = "ddim"  # diffusion: the sampler unless told otherwise (see the module docstring)


def window_pieces(a: int, b: int, n: int, width: int) -> list[tuple[int, int, int]]:
    """The run ``[a, b)`` of ``n`` code positions as ``(lo, start, end)``: the piece ``[start, end)`` drawn in the
    window ``[lo, lo + width)``, left to right; a window starting at ``lo`` may reach past ``n`` when ``n < width``."""
    context = max(1, int(width * CONTEXT_SHARE))
    piece = max(1, width - 2 * context)
    out = []
    for start in range(a, b, piece):
        lo = min(max(0, start - context), max(0, n - width))
        out.append((lo, start, min(b, start + piece)))
    return out


def draw_run(prior, codec, drawn: np.ndarray, hidden: np.ndarray, a: int, b: int, settings: dict,
             seed_for: Callable[[], int], guide_weights=None, guide_vectors=None) -> None:  # fmt: skip
    """Draw the run ``[a, b)`` of ``drawn`` ``(draws, n[, Q])`` in place with ``prior`` (MaskGIT or diffusion),
    piece by piece, from every code ``hidden`` ``(n,)`` does not mark (updated as pieces are drawn).
    ``guide_weights(lo, hi)`` -> ``(draws, hi - lo, K)`` log-weights of the first-stage codes (MaskGIT) and
    ``guide_vectors(lo, hi)`` -> ``(draws, hi - lo, D)`` codebook vectors of the planned beats (diffusion), where a
    rhythm plan was made; ``seed_for()`` gives each window's seed."""
    n = drawn.shape[1]
    width = _window_length(prior)
    for lo, start, end in window_pieces(a, b, n, width):
        hi = min(n, lo + width)
        if isinstance(prior, MaskGITPrior):
            window = _maskgit_window(prior, drawn, hidden, lo, hi, width, settings, seed_for(), guide_weights)
        else:
            window = _diffusion_window(prior, codec, drawn, hidden, lo, hi, width, settings, seed_for(),
                                       guide_vectors)  # fmt: skip
        drawn[:, start:end] = window[:, start - lo : end - lo]
        hidden[start:end] = False


def _window_length(prior) -> int:
    if isinstance(prior, MaskGITPrior):
        return int(prior.model.config.latent_length)
    if isinstance(prior, DiffusionPrior):
        return int(prior.denoiser.config.latent_length)
    raise TypeError(f"{type(prior).__name__} does not fill windows")


def _maskgit_window(prior, drawn, hidden, lo, hi, width, settings, seed, guide_weights) -> np.ndarray:
    """``(draws, width)`` codes of the window ``[lo, lo + width)``: its hidden codes (and any past the recording)
    drawn by the MaskGIT prior from the rest."""
    draws = drawn.shape[0]
    known = torch.full((draws, width), -1, dtype=torch.long)
    known[:, : hi - lo] = torch.as_tensor(drawn[:, lo:hi])
    known[:, : hi - lo][:, torch.as_tensor(hidden[lo:hi])] = -1
    guide = None
    if guide_weights is not None:
        weights = guide_weights(lo, hi)
        guide = torch.zeros(draws, width, weights.shape[-1])
        guide[:, : hi - lo] = weights
    codes = prior.model.infill(known, settings["steps"], None, settings["temperature"], settings["confidence_noise"],
                               seed=seed, guide=guide)  # fmt: skip
    return codes.cpu().numpy()


def _diffusion_window(prior, codec, drawn, hidden, lo, hi, width, settings, seed, guide_vectors) -> np.ndarray:
    """``(draws, width[, Q])`` codes of the window ``[lo, lo + width)``: its hidden vectors (and any past the
    recording) inpainted by the diffusion prior, snapped to the nearest codes."""
    draws, inside = drawn.shape[0], hi - lo
    codes = torch.as_tensor(drawn[:, lo:hi]).long()
    vectors = codec.codes_to_vectors(codes.to(codec.device)).float().cpu()
    known = torch.zeros(draws, width, vectors.shape[-1])
    known[:, :inside] = vectors
    keep = torch.zeros(draws, width, dtype=torch.bool)
    keep[:, :inside] = ~torch.as_tensor(hidden[lo:hi])
    start, strength = None, 1.0
    if guide_vectors is not None:
        start = known.clone()
        start[:, :inside] = torch.where(keep[:, :inside, None], vectors, guide_vectors(lo, hi))
        strength = GUIDE_STRENGTH
    latents = prior.inpaint_vectors(known, keep, settings["steps"], settings["sampler"], seed, start, strength)
    return codec.snap(latents)[1].cpu().numpy()
