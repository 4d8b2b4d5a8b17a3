"""Reconstruction fidelity, as the ECG-compression literature reports it.

PRD compares the error energy with the signal energy; on raw ADC data a DC baseline inflates the denominator
and flatters the codec, so PRDN (mean removed from the reference) is the honest figure and the one tsvq ranks
checkpoints by. Arrays are ``(B, L, C)``; each figure is computed per window, then averaged.
"""

from __future__ import annotations

import math

import numpy as np


def _as_windows(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x[None] if x.ndim == 2 else x


def mse(reference, reconstruction) -> np.ndarray:
    """Mean squared error per window."""
    r, y = _as_windows(reference), _as_windows(reconstruction)
    return ((r - y) ** 2).mean(axis=(1, 2))


def prd(reference, reconstruction) -> np.ndarray:
    """Percentage root-mean-square difference per window, in %."""
    r, y = _as_windows(reference), _as_windows(reconstruction)
    return 100 * np.sqrt(((r - y) ** 2).sum(axis=(1, 2)) / np.maximum((r**2).sum(axis=(1, 2)), 1e-20))


def prdn(reference, reconstruction) -> np.ndarray:
    """PRD with the reference's mean removed (per window and channel), in %."""
    r, y = _as_windows(reference), _as_windows(reconstruction)
    centred = r - r.mean(axis=1, keepdims=True)
    return 100 * np.sqrt(((r - y) ** 2).sum(axis=(1, 2)) / np.maximum((centred**2).sum(axis=(1, 2)), 1e-20))


def snr_db(reference, reconstruction) -> np.ndarray:
    """Signal-to-noise ratio in dB (mean-removed signal power over error power): -20 log10(PRDN / 100)."""
    return -20 * np.log10(np.maximum(prdn(reference, reconstruction), 1e-12) / 100)


def reconstruction_report(
    reference,
    reconstruction,
    record_names=None,
    bits_per_second: float | None = None,
    input_bits_per_second: float | None = None,
) -> dict:
    """Overall and per-record MSE, PRD, PRDN and SNR, plus the compression ratio when rates are given."""
    figures = {
        "mse": mse(reference, reconstruction),
        "prd": prd(reference, reconstruction),
        "prdn": prdn(reference, reconstruction),
        "snr_db": snr_db(reference, reconstruction),
    }
    report: dict = {name: float(np.mean(values)) for name, values in figures.items()}
    report["windows"] = int(len(figures["mse"]))
    if bits_per_second:
        report["bits_per_second"] = float(bits_per_second)
        if input_bits_per_second:
            report["compression_ratio"] = float(input_bits_per_second / bits_per_second)
    if record_names is not None:
        names = np.asarray(record_names)
        report["per_record"] = {
            str(name): {k: float(np.mean(v[names == name])) for k, v in figures.items()}
            | {"windows": int((names == name).sum())}
            for name in sorted(set(names.tolist()))
        }
    return report


def codebook_report(codes, num_codes: int) -> dict:
    """Usage (% of codes used), perplexity (exp of the code entropy) and dead codes, for codes of any shape."""
    codes = np.asarray(codes)
    if codes.ndim == 3:  # residual VQ: one report per stage
        stages = [codebook_report(codes[..., q], num_codes) for q in range(codes.shape[-1])]
        return stages[0] | {"stages": stages}
    counts = np.bincount(codes.ravel(), minlength=num_codes)
    probs = counts / max(counts.sum(), 1)
    entropy = -np.sum(probs[probs > 0] * np.log(probs[probs > 0]))
    return {
        "num_codes": num_codes,
        "usage_percent": float(100 * (counts > 0).mean()),
        "perplexity": float(math.exp(entropy)),
        "perplexity_fraction": float(math.exp(entropy) / num_codes),
        "dead_codes": int((counts == 0).sum()),
        "entropy_bits": float(entropy / math.log(2)),
        "counts": counts.tolist(),
    }
