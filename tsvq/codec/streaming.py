"""Coding a signal of any length (hours) with a codec trained on short windows, without window seams.

The codec is convolutional with no normalisation across time, so a code depends only on the input samples within
its receptive field, and a decoded sample only on the codes within the decoder's reach. Coding a long signal in
chunks that overlap by that much context, and keeping each chunk's centre, therefore gives exactly what one pass
over the whole signal would: one code per ``downsample_factor`` samples (no extra bits for overlap, unlike
cross-faded windows) and no error bump where windows would have met. Memory stays one chunk at a time.
"""

from __future__ import annotations

import numpy as np
import torch

from tsvq.codec.search import decoder_reach, encoder_reach


def _chunks(length: int, core: int, margin: int):
    """(start, end) of each chunk's kept core and (lo, hi) of the context it is computed with, in code positions."""
    for start in range(0, length, core):
        end = min(start + core, length)
        yield start, end, max(0, start - margin), min(length, end + margin)


def encode_margin(codec, search: int = 0) -> int:
    """Context (code positions) each chunk needs so that its kept codes equal a whole-signal pass: the encoder's
    reach plus one code of slack, and with code search the decoder's too. Measure once per signal set."""
    return encoder_reach(codec) + 1 + (decode_margin(codec) if search else 0)


def decode_margin(codec) -> int:
    return decoder_reach(codec, 64) + 1


def map_long(signal: np.ndarray, f: int, margin: int, compute, chunk_codes: int = 2048) -> np.ndarray:
    """``compute(chunk (1, l * f, C)) -> (l, ...)`` array, one row per code position, over a long ``signal`` in
    chunks with ``margin`` code positions of context: what one pass over the whole signal would give."""
    parts = []
    for start, end, lo, hi in _chunks(len(signal) // f, chunk_codes, margin):
        parts.append(compute(signal[None, lo * f : hi * f])[start - lo : end - lo])
    return np.concatenate(parts)


def encode_long(
    codec,
    signal: np.ndarray,
    chunk_codes: int = 2048,
    search: int = 0,
    sweeps: int = 2,
    quantizers: int | None = None,
    margin: int | None = None,
) -> np.ndarray:
    """Codes of one long signal ``(L, C)`` in physical units, ``L`` a multiple of the downsample factor:
    ``(L / f,)`` int64, or ``(L / f, q)`` for residual VQ (its first ``quantizers`` stages). ``margin``:
    ``encode_margin(codec, search)``, measured here when not given."""
    margin = encode_margin(codec, search) if margin is None else margin

    def compute(chunk: np.ndarray) -> np.ndarray:
        return codec.encode(chunk, search=search, sweeps=sweeps).codes[0].cpu().numpy()

    codes = map_long(signal, codec.config.downsample_factor, margin, compute, chunk_codes).astype(np.int64)
    if codes.ndim == 2:
        codes = codes[:, : quantizers or codes.shape[1]]
    return codes


def decode_long(codec, codes: np.ndarray, chunk_codes: int = 2048, margin: int | None = None) -> np.ndarray:
    """Signal ``(len(codes) * f, C)`` float32 in physical units of one long code sequence (``(n,)`` or ``(n, q)``);
    ``margin``: ``decode_margin(codec)``, measured here when not given."""
    f = codec.config.downsample_factor
    margin = decode_margin(codec) if margin is None else margin
    parts = []
    for start, end, lo, hi in _chunks(len(codes), chunk_codes, margin):
        decoded = codec.decode(torch.as_tensor(codes[None, lo:hi])).cpu().numpy()[0]
        parts.append(decoded[(start - lo) * f : (end - lo) * f])
    return np.concatenate(parts)
