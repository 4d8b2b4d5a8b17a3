"""Linear prediction across a gap: an autoregressive (AR) model fitted by least squares on the observed signal and
run into the gap, from the left and (given the signal after the gap) from the right, the two crossfaded.

Why in the library and not only among the benchmarks' baselines: where the draws of a gap's fill cannot be trusted
(a rhythm whose observed beats its plan fails to time), the fill with the least expected squared error is not their
mean but a prediction that makes no claim about beats it cannot time: an AR model continues the waveform for a
fraction of a beat and then settles on the signal's level (``tsvq.repair.Repaired.mean``). Predicting from both
sides (as gap interpolation in audio does) also meets the signal after the gap.
"""

from __future__ import annotations

import numpy as np

AR_ORDER_S = 0.256  # the model's memory: 64 samples at 250 Hz, a QRS complex and some


def ar_order(rate: float) -> int:
    """The AR order for a signal at ``rate`` Hz (``AR_ORDER_S`` of it, at least 4 samples)."""
    return max(4, int(round(AR_ORDER_S * rate)))


def ar_continue(past: np.ndarray, steps: int, order: int) -> np.ndarray:
    """``steps`` samples continuing ``past`` (1-D) by an AR(``order``) model fitted on it by least squares, around
    its mean (a model without one would decay to zero, not to the signal's level); ``past``'s mean held when it is
    too short to fit (under ``2 * order + 1`` samples)."""
    past = np.asarray(past, dtype=np.float64)
    level = float(past.mean()) if len(past) else 0.0
    if len(past) < 2 * order + 1:
        return np.full(steps, level)
    centred = past - level
    rows = np.lib.stride_tricks.sliding_window_view(centred, order + 1)
    coefficients, *_ = np.linalg.lstsq(rows[:, :-1], rows[:, -1], rcond=None)
    history = list(centred[-order:])
    for _ in range(steps):
        history.append(float(np.dot(coefficients, history[-order:])))
    return np.asarray(history[order:]) + level


def ar_bridge(before: np.ndarray, after: np.ndarray | None, steps: int, order: int) -> np.ndarray:
    """``steps`` samples between ``before`` and ``after`` (1-D, the observed signal on either side; ``after`` None
    or empty: a continuation): the forward prediction from ``before`` and the backward one from ``after`` (the
    model fitted on ``after`` reversed), weighed linearly from one to the other across the gap."""
    forward = ar_continue(before, steps, order)
    if after is None or not len(after):
        return forward
    backward = ar_continue(np.asarray(after, dtype=np.float64)[::-1], steps, order)[::-1]
    if not len(before):
        return backward
    weight = np.linspace(1.0, 0.0, steps + 2)[1:-1]
    return weight * forward + (1 - weight) * backward
