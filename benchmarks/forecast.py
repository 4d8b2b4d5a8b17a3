"""Continuing ECGs of patients the models never saw: the shipped pipeline's WaveNet prior against the baselines a
specialist tries first, on MIT-BIH DS2 (MLII).

    .venv/bin/python -m benchmarks.forecast        # rewrites results/forecast.json

As in `benchmarks/gaps.py` (same records, conditioning and scores), but the stretch to fill is the 2 or 5 s after
8 s of signal, with nothing after it: ``tsvq`` is `Pipeline.forecast` (the median RR interval before continued
as planned beats that guide the WaveNet prior, drawn with top_p 0.9; the likeliest of 8 candidates; its first
draw) and ``tsvq_mean`` (the mean of its 16 draws, the others at drawn timings, `Repaired.mean`), beside the
AR(64) model and the last cycle repeated (template copy). PRDN and R peaks (F1 within +-75 ms, RR error) are scored
inside the forecast stretch, per horizon and by the rhythm the annotators marked where the forecast starts.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from benchmarks.common import save
from benchmarks.gaps import annotated_lead, scores, summarise, summarise_groups
from benchmarks.mitbih import DS2
from tsvq.evaluation.repair_baselines import FORECAST_BASELINES as BASELINES
from tsvq.pipeline import Pipeline

BEFORE_S = 8.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pipeline", default="ecg-single-lead")
    parser.add_argument("--source", default="../shared/data/mitdb")
    parser.add_argument("--records", nargs="+", default=DS2)
    parser.add_argument("--horizons", type=float, nargs="+", default=[2.0, 5.0], help="seconds to forecast")
    parser.add_argument("--per-record", type=int, default=23, help="forecasts per record and horizon (23 x 22 = 506)")
    parser.add_argument("--draws", type=int, default=16, help="draws per forecast (tsvq_mean is their mean)")
    parser.add_argument("--candidates", type=int, default=8)
    parser.add_argument("--top-p", type=float, default=0.9, help="the WaveNet's nucleus")
    args = parser.parse_args()
    torch.set_num_threads(2)
    pipe = Pipeline.from_pretrained(args.pipeline)
    rate = pipe.sampling_rate_hz
    options = {"draws": args.draws, "candidates": args.candidates, "choose": "likeliest", "top_p": args.top_p}
    methods = ["tsvq", "tsvq_mean", *BASELINES]
    rows: dict = {str(h): {m: [] for m in methods} for h in args.horizons}
    rhythms: dict = {str(h): {} for h in args.horizons}  # horizon -> annotated rhythm at its start -> method -> rows
    started = time.perf_counter()
    for name in args.records:
        lead = annotated_lead(pipe, args.source, name)
        signal, beat_at = lead.signal, lead.beat_at
        rng = np.random.default_rng([int(name), 56])
        for horizon_s in args.horizons:
            horizon, before = int(horizon_s * rate), int(BEFORE_S * rate)
            starts = rng.integers(int(10 * rate) + before, len(signal) - int(10 * rate) - horizon, args.per_record)
            for k, start in enumerate(starts):
                truth = signal[start - before : start + horizon]
                beats = beat_at[(beat_at >= start - before) & (beat_at < start + horizon)] - (start - before)
                a, b = before, before + horizon
                forecast = pipe.forecast(truth[:a], rate, horizon_s, seed=k, **options)
                filled = {"tsvq": forecast.signals[0, : len(truth), 0].astype(float),
                          "tsvq_mean": forecast.mean[: len(truth), 0].astype(float)}  # fmt: skip
                for method, fill in BASELINES.items():
                    filled[method] = truth.copy()
                    filled[method][a:b] = fill(truth, a, b, rate)
                by_method = rhythms[str(horizon_s)].setdefault(lead.rhythm_at(start), {m: [] for m in methods})
                for method in methods:
                    row = scores(truth, filled[method], a, b, beats, rate)
                    rows[str(horizon_s)][method].append(row)
                    by_method[method].append(row)
        line = {h: {m: round(summarise(r)["r_peak_f1"], 2) for m, r in by.items()} for h, by in rows.items()}
        print(f"{name} ({time.perf_counter() - started:.0f} s): R-peak F1 {line}", flush=True)
    payload = {
        "pipeline": args.pipeline,
        "records": args.records,
        "per_record": args.per_record,
        "forecast_options": options,
        "context_s": BEFORE_S,
        "by_horizon": {h: {m: summarise(r) for m, r in by.items()} for h, by in rows.items()},
        "by_annotated_rhythm": summarise_groups(rhythms),
        "seconds": time.perf_counter() - started,
    }
    print(f"-> {save('forecast', payload)}")


if __name__ == "__main__":
    main()
