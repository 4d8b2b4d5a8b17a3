"""The baselines a specialist tries first for a gap or a continuation of an ECG, and how filled beats are scored.

Every filler takes the whole stretch ``segment`` (the truth inside ``[a, b)`` is never read) and returns the
``b - a`` samples it puts there:

- ``linear``: a straight line between the samples on either side;
- ``autoregressive``: an AR(64) model (at 250 Hz; 0.256 s at any rate) fitted by least squares on what comes
  before, run forward across the gap (``tsvq.linear_prediction``);
- ``autoregressive_both_sides``: the same run forward from the signal before the gap and backward from the signal
  after it (a model fitted on it reversed), weighed linearly from one to the other across the gap;
- ``template_copy``: the last beat-to-beat cycle before the gap repeated from the last R peak;
- ``template_both_sides``: the median beat before the gap placed at beat times spaced evenly between the last R
  peak before and the first after it (found reading backwards and aligned to the template at the gap's edges:
  ``tsvq.rhythm.gap_plan_sides``), the beats at those two peaks reaching into the gap too, on a line between the
  two sides' levels.

R peaks are found by wfdb's XQRS (``tsvq.rhythm``); ``beat_matches`` pairs found with reference beats within a
tolerance.
"""

from __future__ import annotations

import numpy as np

from tsvq.linear_prediction import ar_bridge, ar_continue, ar_order
from tsvq.rhythm import beat_fill, gap_plan_sides, planned_beats, r_peaks


def linear(segment: np.ndarray, a: int, b: int, rate: float) -> np.ndarray:
    return np.interp(np.arange(a, b), [a - 1, b], [segment[a - 1], segment[b]])


def autoregressive(segment: np.ndarray, a: int, b: int, rate: float) -> np.ndarray:
    return ar_continue(segment[:a], b - a, ar_order(rate))


def autoregressive_both_sides(segment: np.ndarray, a: int, b: int, rate: float) -> np.ndarray:
    return ar_bridge(segment[:a], segment[b:], b - a, ar_order(rate))


def template_copy(segment: np.ndarray, a: int, b: int, rate: float) -> np.ndarray:
    peaks = r_peaks(segment[:a], rate)
    if len(peaks) < 2:
        return linear(segment, a, b, rate)
    cycle = segment[peaks[-2] : peaks[-1]]
    tiled = np.tile(cycle, (b - peaks[-1]) // len(cycle) + 2)
    return tiled[a - peaks[-1] : b - peaks[-1]]


def template_both_sides(segment: np.ndarray, a: int, b: int, rate: float) -> np.ndarray:
    sides = gap_plan_sides(segment, a, b, rate, before_s=None, after_s=None)
    if sides is None or not len(sides.after):
        return template_copy(segment, a, b, rate)
    before, after, template = sides
    times = [before[-1], *planned_beats(before, after, b, pattern=False), after[0]]
    return beat_fill(segment[a - 1], segment[b], a, b, times, template, rate)


BASELINES = {
    "linear": linear,
    "autoregressive": autoregressive,
    "autoregressive_both_sides": autoregressive_both_sides,
    "template_copy": template_copy,
    "template_both_sides": template_both_sides,
}
FORECAST_BASELINES = {"autoregressive": autoregressive, "template_copy": template_copy}


def beat_matches(found: np.ndarray, reference: np.ndarray, tolerance: float) -> list[tuple[int, int]]:
    """(reference, found) pairs: each reference beat takes the nearest unused found beat within ``tolerance``."""
    matched, used = [], set()
    for t in reference:
        near = [i for i in range(len(found)) if abs(found[i] - t) <= tolerance and i not in used]
        if near:
            best = min(near, key=lambda i: abs(found[i] - t))
            used.add(best)
            matched.append((int(t), int(found[best])))
    return matched
