"""Filling gaps in ECGs of patients the models never saw: the shipped pipeline's WaveNet prior against the
baselines a specialist tries first, on MIT-BIH DS2 (MLII).

    .venv/bin/python -m benchmarks.gaps                     # rewrites results/gaps.json
    .venv/bin/python -m benchmarks.gaps --prior diffusion   # the diffusion prior fills: results/gaps-diffusion.json

Each record is conditioned as the pipeline conditions it (250 Hz, 0.5-40 Hz), and gaps of 0.5, 2 and 5 s are cut
at seeded random places (at least 10 s from the ends). Every method sees the same stretch, 8 s before the gap and
4 s after it, and fills the gap (the baselines: `tsvq.evaluation.repair_baselines`):

- ``tsvq``: `Pipeline.impute`'s first draw (beats planned from the R peaks on either side guide the WaveNet
  prior, drawn with top_p 0.9; the likeliest of 8 candidates given the codes after the gap);
- ``tsvq_mean``: the mean of its 16 draws (`Repaired.mean`; the first at the best-guess timing, the others at drawn
  timings; pulled toward the two-sided AR prediction where they disagree, and that prediction alone where the plan
  fails to time the beats before the gap): the fill with the least expected squared
  error, the one to read PRDN from (a draw's PRDN pays twice for every beat a few tens of ms off; the mean's R peaks
  blur where the draws disagree);
- ``linear``: a straight line between the samples on either side;
- ``autoregressive``: an AR(64) model fitted by least squares on the 8 s before, run forward across the gap;
- ``autoregressive_both_sides``: the same, and one fitted on the 4 s after run backward, weighed linearly from one
  to the other across the gap;
- ``template_copy``: the last beat-to-beat cycle before the gap repeated from the last R peak;
- ``template_both_sides``: the median beat before the gap placed at beat times spaced evenly between the last
  R peak before and the first after the gap (found reading backwards), on a line between the two sides' levels.

Scores inside each gap: PRDN against the true signal (mean removed), and R peaks found by wfdb's XQRS on the filled
stretch against the annotated beats (`.atr`) inside the gap: F1 within +-75 ms and the mean absolute error of the
RR intervals that have both ends matched. Per gap length, by the AAMI class of the beats around the gap, and by
the rhythm the annotators marked at the gap (sinus, AF/flutter, bigeminy/trigeminy, other: ``RHYTHM_GROUPS``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import wfdb

from benchmarks.common import save
from benchmarks.mitbih import DS2
from tsvq.data.records import read_record
from tsvq.evaluation.repair_baselines import BASELINES, beat_matches, r_peaks
from tsvq.pipeline import Pipeline
from tsvq.repair import RHYTHMS

BEFORE_S, AFTER_S = 8.0, 4.0
TOLERANCE_S = 0.075
AAMI = {"N": "N", "L": "N", "R": "N", "e": "N", "j": "N", "A": "S", "a": "S", "J": "S", "S": "S", "V": "V", "E": "V",
        "F": "F", "/": "Q", "f": "Q", "Q": "Q"}  # fmt: skip


# The rhythm annotations (aux notes of "+") a gap is reported under; every other rhythm counts as "other".
RHYTHM_GROUPS = {"(N": "sinus", "(SBR": "sinus", "(AFIB": "AF/flutter", "(AFL": "AF/flutter",
                 "(B": "bigeminy/trigeminy", "(T": "bigeminy/trigeminy"}  # fmt: skip


def beats_label(classes) -> str:
    """What a stretch's AAMI beat classes say about it: normal only (N), with a V beat, with an S beat, or other."""
    classes = set(classes)
    return "N" if classes <= {"N"} else ("V" if "V" in classes else ("S" if "S" in classes else "other"))


def gap_starts(name: str, length: int, rate: float, gaps: list[float], per_record: int) -> dict[float, np.ndarray]:
    """Where record ``name``'s gaps of each length in ``gaps`` start (seeded by the record: every benchmark of gaps
    cuts the same ones), ``per_record`` of each, at least 10 s from the ends with the context around them inside."""
    rng = np.random.default_rng([int(name), 55])
    starts = {}
    for gap_s in gaps:
        gap, before, after = int(gap_s * rate), int(BEFORE_S * rate), int(AFTER_S * rate)
        starts[gap_s] = rng.integers(int(10 * rate) + before, length - int(10 * rate) - gap - after, per_record)
    return starts


def scores(truth_segment: np.ndarray, filled: np.ndarray, a: int, b: int, beats: np.ndarray, rate: float) -> dict:
    """PRDN inside the gap, and R peaks of the filled stretch inside the gap against the annotated ones."""
    truth = truth_segment[a:b]
    prdn = 100 * np.linalg.norm(truth - filled[a:b]) / max(np.linalg.norm(truth - truth.mean()), 1e-12)
    found = r_peaks(filled, rate)
    found, annotated = found[(found >= a) & (found < b)], beats[(beats >= a) & (beats < b)]
    matched = beat_matches(found, annotated, TOLERANCE_S * rate)
    hits = len(matched)
    rr_errors = [
        abs((matched[i + 1][1] - matched[i][1]) - (matched[i + 1][0] - matched[i][0])) / rate * 1000
        for i in range(hits - 1)
    ]
    return {
        "prdn": float(prdn),
        "hits": hits,
        "found": len(found),
        "annotated": len(annotated),
        "rr_error_ms": rr_errors,
    }


class AnnotatedLead(NamedTuple):
    """A record's MLII conditioned as the pipeline conditions it, with its annotations at the pipeline's rate."""

    signal: np.ndarray
    beat_at: np.ndarray  # annotated beats (samples)
    beat_class: np.ndarray  # their AAMI classes
    rhythm_from: np.ndarray  # where each annotated rhythm starts (samples)
    rhythm: np.ndarray  # its group (RHYTHM_GROUPS)

    def rhythm_at(self, sample: int) -> str:
        """The rhythm group in force at ``sample`` ("other" before the first rhythm annotation)."""
        k = int(np.searchsorted(self.rhythm_from, sample, side="right")) - 1
        return str(self.rhythm[k]) if k >= 0 else "other"


def annotated_lead(pipe: Pipeline, source: str, name: str) -> AnnotatedLead:
    """Record ``name``'s MLII as the pipeline conditions it, its annotated beats and rhythms (``AnnotatedLead``)."""
    record = read_record(Path(source) / name)
    lead = record.channel_names.index("MLII") if "MLII" in record.channel_names else 0
    signal = pipe.preprocessing.condition(record.signal[:, [lead]], record.sampling_rate_hz)[:, 0]
    annotation = wfdb.rdann(str(Path(source) / name), "atr")
    keep = np.isin(annotation.symbol, list(AAMI))
    at_rate = np.round(annotation.sample * pipe.sampling_rate_hz / record.sampling_rate_hz).astype(int)
    rhythms = np.asarray(annotation.symbol) == "+"
    groups = [RHYTHM_GROUPS.get(note.strip("\x00"), "other") for note in np.asarray(annotation.aux_note)[rhythms]]
    return AnnotatedLead(signal, at_rate[keep], np.array([AAMI[s] for s in np.asarray(annotation.symbol)[keep]]),
                         at_rate[rhythms], np.array(groups, dtype=str))  # fmt: skip


def summarise(rows: list[dict]) -> dict:
    hits, found, annotated = (sum(r[k] for r in rows) for k in ("hits", "found", "annotated"))
    rr = [e for r in rows for e in r["rr_error_ms"]]
    return {
        "gaps": len(rows),
        "prdn_mean": float(np.mean([r["prdn"] for r in rows])),
        "prdn_median": float(np.median([r["prdn"] for r in rows])),
        "r_peak_f1": 2 * hits / max(found + annotated, 1),
        "rr_error_ms": float(np.mean(rr)) if rr else None,
    }


def summarise_groups(groups: dict) -> dict:
    """``{length: {group: {method: rows}}}`` -> the same with each method's rows summarised."""
    return {
        g: {label: {m: summarise(r) for m, r in by.items()} for label, by in per.items()} for g, per in groups.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pipeline", default="ecg-single-lead")
    parser.add_argument("--source", default="../shared/data/mitdb")
    parser.add_argument("--records", nargs="+", default=DS2)
    parser.add_argument("--gaps", type=float, nargs="+", default=[0.5, 2.0, 5.0], help="gap lengths in seconds")
    parser.add_argument("--per-record", type=int, default=23, help="gaps per record and length (23 x 22 = 506)")
    parser.add_argument("--draws", type=int, default=16, help="draws per gap (tsvq_mean is their mean)")
    parser.add_argument("--candidates", type=int, default=8)
    parser.add_argument("--choose", choices=["sample", "likeliest"], default="likeliest")
    parser.add_argument("--top-p", type=float, default=0.9, help="the WaveNet's nucleus")
    parser.add_argument("--temperature", type=float, help="the WaveNet's temperature (default: the pipeline's)")
    parser.add_argument("--rhythm", choices=RHYTHMS, default="auto", help="Pipeline.impute's rhythm")
    parser.add_argument(
        "--prior", help="the prior that fills (default: the pipeline's WaveNet); results go to gaps-PRIOR.json"
    )
    args = parser.parse_args()
    torch.set_num_threads(2)
    pipe = Pipeline.from_pretrained(args.pipeline)
    rate = pipe.sampling_rate_hz
    methods = ["tsvq", "tsvq_mean", *BASELINES]
    options = {
        "draws": args.draws,
        "candidates": args.candidates,
        "choose": args.choose,
        "top_p": args.top_p if args.prior is None or pipe.prior(args.prior).kind == "wavenet" else None,
        "temperature": args.temperature,
        "rhythm": args.rhythm,
        "prior": args.prior,
    }
    rows: dict = {str(g): {m: [] for m in methods} for g in args.gaps}
    classes: dict = {str(g): {} for g in args.gaps}
    rhythms: dict = {str(g): {} for g in args.gaps}
    started = time.perf_counter()
    for name in args.records:
        lead = annotated_lead(pipe, args.source, name)
        signal, beat_at, beat_class = lead.signal, lead.beat_at, lead.beat_class
        for gap_s, starts in gap_starts(name, len(signal), rate, args.gaps, args.per_record).items():
            gap, before, after = int(gap_s * rate), int(BEFORE_S * rate), int(AFTER_S * rate)
            for k, start in enumerate(starts):
                lo, hi = start - before, start + gap + after
                truth = signal[lo:hi]
                beats = beat_at[(beat_at >= lo) & (beat_at < hi)] - lo
                near = beat_class[(beat_at >= start - int(2 * rate)) & (beat_at < start + gap + int(2 * rate))]
                label, rhythm = beats_label(near), lead.rhythm_at(start + gap // 2)
                a, b = before, before + gap
                holed = truth.copy()
                holed[a:b] = np.nan
                repaired = pipe.impute(holed, rate, seed=k, **options)
                filled = {
                    "tsvq": repaired.signals[0, :, 0].astype(float),
                    "tsvq_mean": repaired.mean[:, 0].astype(float),
                }
                for method, fill in BASELINES.items():
                    filled[method] = truth.copy()
                    filled[method][a:b] = fill(truth, a, b, rate)
                for method in methods:
                    row = scores(truth, filled[method], a, b, beats, rate)
                    rows[str(gap_s)][method].append(row)
                    classes[str(gap_s)].setdefault(label, {m: [] for m in methods})[method].append(row)
                    rhythms[str(gap_s)].setdefault(rhythm, {m: [] for m in methods})[method].append(row)
        line = {g: {m: round(summarise(r)["prdn_mean"], 1) for m, r in by.items()} for g, by in rows.items()}
        print(f"{name} ({time.perf_counter() - started:.0f} s): PRDN {line}", flush=True)
    payload = {
        "pipeline": args.pipeline,
        "records": args.records,
        "per_record": args.per_record,
        "impute_options": options,
        "context_s": {"before": BEFORE_S, "after": AFTER_S},
        "by_gap": {g: {m: summarise(r) for m, r in by.items()} for g, by in rows.items()},
        "by_rhythm_around_gap": summarise_groups(classes),
        "by_annotated_rhythm": summarise_groups(rhythms),
        "seconds": time.perf_counter() - started,
    }
    print(f"-> {save('gaps' if args.prior is None else f'gaps-{args.prior}', payload)}")


if __name__ == "__main__":
    main()
