"""How well can the beats inside a gap be timed from the signal on either side at all? The ceiling under the R-peak
F1 of `benchmarks/gaps.py`, on the same MIT-BIH DS2 gaps (MLII, 0.5, 2 and 5 s, 23 per record and length).

    .venv/bin/python -m benchmarks.gap_timing      # rewrites results/gap-timing.json (about a minute, no model)

A filled gap's R peaks are where its plan put them (on MIT-BIH DS1 a draw's F1 is the plan's: 0.925 against 0.930
where the beats around a 2-s gap are normal), so the plan's own F1 against the annotated beats says how well a
fill can place beats. Plans, each a list of R-peak times scored against the annotated beats inside the gap (F1
within +-75 ms, as the gaps benchmark scores the fills):

- ``tsvq_plan``: `Pipeline.impute`'s best-guess plan (`tsvq.rhythm`: R peaks found by XQRS in the 8 s before and 4 s
  after the gap, a repeating pattern of RR intervals fitted to both sides); a gap with fewer than three R peaks
  found before it gets no plan (the prior alone times it) and scores as placing none;
- ``plan_from_annotated_sides``: the same planner given the annotated beats on either side (a perfect detector);
- ``even_from_annotated_sides``: the annotated sides, beats spaced evenly, their number from the median RR interval;
- ``knowing_the_count``: an oracle told how many beats lie between the last annotated beat before the gap and the
  first after it, spacing them evenly: what timing from the sides reaches if it never miscounts.

Per gap length, by the AAMI classes of the beats within 2 s of the gap and by the rhythm annotated at it.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks.common import save
from benchmarks.gaps import AFTER_S, BEFORE_S, TOLERANCE_S, annotated_lead, beats_label, gap_starts
from benchmarks.mitbih import DS2
from tsvq.evaluation.repair_baselines import beat_matches
from tsvq.pipeline import Pipeline
from tsvq.repair import RHYTHM_AFTER_S, RHYTHM_BEFORE_S
from tsvq.rhythm import gap_plan_sides, planned_beats

PLANS = ("tsvq_plan", "plan_from_annotated_sides", "even_from_annotated_sides", "knowing_the_count")


def plans(x: np.ndarray, beats: np.ndarray, a: int, b: int, rate: float) -> dict[str, np.ndarray]:
    """Each plan's R-peak times for a gap ``[a, b)`` of ``x`` (samples of ``x``), given its annotated ``beats``."""
    sides = gap_plan_sides(x, a, b, rate, RHYTHM_BEFORE_S, RHYTHM_AFTER_S)
    out = {"tsvq_plan": np.array([]) if sides is None else planned_beats(sides.before, sides.after, b)}
    before = beats[(beats < a) & (beats >= a - RHYTHM_BEFORE_S * rate)]
    after = beats[(beats >= b) & (beats < b + RHYTHM_AFTER_S * rate)]
    out["plan_from_annotated_sides"] = planned_beats(before, after, b)
    out["even_from_annotated_sides"] = planned_beats(before, after, b, pattern=False)
    count = int(((beats > before[-1]) & (beats < after[0])).sum())
    out["knowing_the_count"] = before[-1] + (after[0] - before[-1]) * np.arange(1, count + 1) / (count + 1)
    return out


def summarise(tally: dict[str, list[int]]) -> dict:
    """``{plan: [hits, placed, annotated, gaps]}`` -> F1 and counts per plan."""
    return {
        plan: {"gaps": gaps, "annotated_beats": annotated, "r_peak_f1": 2 * hits / max(placed + annotated, 1)}
        for plan, (hits, placed, annotated, gaps) in tally.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pipeline", default="ecg-single-lead", help="whose conditioning (rate, band) to use")
    parser.add_argument("--source", default="../shared/data/mitdb")
    parser.add_argument("--records", nargs="+", default=DS2)
    parser.add_argument("--gaps", type=float, nargs="+", default=[0.5, 2.0, 5.0], help="gap lengths in seconds")
    parser.add_argument("--per-record", type=int, default=23, help="gaps per record and length (as benchmarks.gaps)")
    args = parser.parse_args()
    pipe = Pipeline.from_pretrained(args.pipeline)
    rate = pipe.sampling_rate_hz
    tallies: dict = {}  # (grouping, length, group) -> plan -> [hits, placed, annotated, gaps]
    skipped: dict = {str(g): 0 for g in args.gaps}
    started = time.perf_counter()
    for name in args.records:
        lead = annotated_lead(pipe, args.source, name)
        for gap_s, starts in gap_starts(name, len(lead.signal), rate, args.gaps, args.per_record).items():
            gap, before, after = int(gap_s * rate), int(BEFORE_S * rate), int(AFTER_S * rate)
            for start in starts:
                lo, hi = start - before, start + gap + after
                a, b = before, before + gap
                beats = lead.beat_at[(lead.beat_at >= lo) & (lead.beat_at < hi)] - lo
                if (beats < a).sum() < 3 or not (beats >= b).any():
                    skipped[str(gap_s)] += 1  # too few annotated beats around it to plan from (a long pause)
                    continue
                near = lead.beat_class[(lead.beat_at >= start - 2 * rate) & (lead.beat_at < start + gap + 2 * rate)]
                groups = [("by_gap", "all"), ("by_rhythm_around_gap", beats_label(near)),
                          ("by_annotated_rhythm", lead.rhythm_at(start + gap // 2))]  # fmt: skip
                truth = beats[(beats >= a) & (beats < b)]
                for plan, times in plans(lead.signal[lo:hi], beats, a, b, rate).items():
                    placed = times[(times >= a) & (times < b)]
                    hits = len(beat_matches(placed, truth, TOLERANCE_S * rate))
                    for grouping, group in groups:
                        tally = tallies.setdefault((grouping, str(gap_s), group), {})
                        counts = tally.setdefault(plan, [0, 0, 0, 0])
                        counts[0] += hits
                        counts[1] += len(placed)
                        counts[2] += len(truth)
                        counts[3] += 1
        print(f"{name} ({time.perf_counter() - started:.0f} s)", flush=True)
    payload: dict = {
        "pipeline": args.pipeline,
        "records": args.records,
        "per_record": args.per_record,
        "tolerance_s": TOLERANCE_S,
        "skipped_gaps": skipped,
    }
    for (grouping, length, group), tally in sorted(tallies.items()):
        by_length = payload.setdefault(grouping, {}).setdefault(length, {})
        if grouping == "by_gap":
            by_length.update(summarise(tally))
        else:
            by_length[group] = summarise(tally)
    payload["seconds"] = time.perf_counter() - started
    print(f"-> {save('gap-timing', payload)}")


if __name__ == "__main__":
    main()
