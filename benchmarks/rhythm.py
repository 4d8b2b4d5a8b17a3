"""What a prior's rhythm figures are made of: beats per window, beat-interval irregularity, doubled beats and how
alike the beats of one window are, for held-out, training and generated windows.

    .venv/bin/python -m benchmarks.rhythm --pipelines cpu=runs/mitbih/pipeline-cpu --store runs/mitbih/store \\
        --name mitbih-rhythm [--n 300] [--seeds 3] [--steps 20 --sampler dpm --guidance 2]

`tsvq eval` gives the rhythm as one number, the Wasserstein distance between the per-window RR-irregularity
distributions of generated and held-out windows. This splits it: the irregularity's quantiles and the share of
windows above 0.1 (sinus rhythm sits at 0.02-0.05), beats per window, the share of windows with an interval under
0.25 s (a beat found twice, or a T wave taken for a QRS), and beat consistency, the mean correlation of each beat of
a window with the window's median beat (about 1 where every beat looks like its neighbours; ectopic beats among
normal ones lower it). ``train-decoded`` is the training windows through the first pipeline's codec: what a perfect
prior over its codes would draw. A conditional prior is drawn as `tsvq eval` draws it (labels in the training
split's mix), seed 0, so its windows are that report's first seed; ``--seeds N`` adds the mean and spread of the
main figures over seeds 0..N-1 (``over_seeds``). Each prior takes the sampling options it has (the WaveNet prior
ignores ``--steps``); an ``--option`` none of them has is refused. Writes the results file and, beside the
pipelines' `--out`, `beats.png` and `rr_irregularity.png`."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.common import save
from tsvq import plots
from tsvq.data import WindowStore
from tsvq.evaluation.conditional import LabelledDraws
from tsvq.evaluation.physiology import MIN_RR_S, beat_source, rr_irregularity
from tsvq.pipeline import Pipeline
from tsvq.priors.base import option_names

BEAT_BEFORE_S, BEAT_AFTER_S = 0.2, 0.4  # P wave to the end of the T wave at ordinary rates
IRREGULAR = 0.1  # RR coefficient of variation above sinus rhythm's 0.02-0.05 (and below atrial fibrillation's)
CONSISTENT = 0.8  # beat-to-median-beat correlation below which a window holds beats of different shapes


def beat_consistency(lead: np.ndarray, peaks: list[np.ndarray], rate_hz: float) -> np.ndarray:
    """Per window with at least two whole beats: the mean correlation of its beats with their median beat."""
    before, after = int(BEAT_BEFORE_S * rate_hz), int(BEAT_AFTER_S * rate_hz)
    values = []
    for signal, window_peaks in zip(lead[:, :, 0], peaks):
        inside = window_peaks[(window_peaks >= before) & (window_peaks + after <= len(signal))]
        if len(inside) < 2:
            continue
        beats = np.stack([signal[p - before : p + after] for p in inside])
        median = np.median(beats, axis=0)
        values.append(np.mean([np.corrcoef(beat, median)[0, 1] for beat in beats]))
    return np.nan_to_num(np.array(values), nan=0.0)  # a flat beat correlates with nothing


def rhythm_summary(lead: np.ndarray, rhythm: dict, rate_hz: float) -> dict:
    """The figures of one set of windows (its beat lead ``(n, L, 1)`` and the rhythm found on it)."""
    irregularity = rr_irregularity(rhythm)
    consistency = beat_consistency(lead, rhythm["peaks"], rate_hz)
    doubled = [np.any(np.diff(p) / rate_hz < MIN_RR_S) for p in rhythm["peaks"]]
    quantiles = [0.1, 0.25, 0.5, 0.75, 0.9]
    return {
        "windows": len(lead),
        "beats_per_window_p10_p50_p90": np.percentile(rhythm["beats"], [10, 50, 90]).tolist(),
        "windows_without_beats": float(np.mean(rhythm["beats"] < 2)),
        "windows_with_an_interval_under_0.25s": float(np.mean(doubled)),
        "rr_irregularity_windows": len(irregularity),
        "rr_irregularity_quantiles": dict(
            zip(map(str, quantiles), np.quantile(irregularity, quantiles).round(4).tolist())
        ),
        f"rr_irregularity_share_above_{IRREGULAR}": float(np.mean(irregularity > IRREGULAR)),
        "beat_consistency_windows": len(consistency),
        "beat_consistency_median": float(np.median(consistency)),
        f"beat_consistency_share_below_{CONSISTENT}": float(np.mean(consistency < CONSISTENT)),
    }


def drawn(pipeline: Pipeline, store: WindowStore, n: int, sampling: dict, seed: int = 0) -> np.ndarray:
    """The first prior's windows of ``seed``, drawn as `tsvq eval` draws them, with the options that prior has."""
    name = next(iter(pipeline.priors))
    own = option_names(pipeline.priors[name]) | {"snap"}
    options = {k: v for k, v in sampling.items() if k in own}
    if pipeline.priors[name].labels:
        return LabelledDraws(pipeline, name, options, store, n).sample(seed)[0]
    return pipeline.sample(n, name, seed=seed, progress=False, **options).signals


def spread(summaries: list[dict]) -> dict:
    """Mean and standard deviation over seeds of the figures a lever moves."""
    figures = {
        "rr_irregularity_median": [s["rr_irregularity_quantiles"]["0.5"] for s in summaries],
        f"rr_irregularity_share_above_{IRREGULAR}": [s[f"rr_irregularity_share_above_{IRREGULAR}"] for s in summaries],
        "windows_with_an_interval_under_0.25s": [s["windows_with_an_interval_under_0.25s"] for s in summaries],
        "beat_consistency_median": [s["beat_consistency_median"] for s in summaries],
        f"beat_consistency_share_below_{CONSISTENT}": [
            s[f"beat_consistency_share_below_{CONSISTENT}"] for s in summaries
        ],
    }
    return {k: {"mean": float(np.mean(v)), "std": float(np.std(v)), "per_seed": v} for k, v in figures.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipelines", nargs="+", required=True, metavar="NAME=DIR")
    parser.add_argument("--store", required=True)
    parser.add_argument("--name", required=True, help="results file name (benchmarks/results/NAME.json)")
    parser.add_argument("--out", default="runs/benchmarks/rhythm", help="folder of the plots")
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--sampler", default="dpm")
    parser.add_argument("--guidance", type=float, default=2.0)
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="another sampling option for the priors that have it, e.g. temperature=0.9 (repeatable)",
    )
    parser.add_argument(
        "--seeds", type=int, default=1, help="draw each prior with seeds 0..N-1 (plots and 'sets' show seed 0)"
    )
    parser.add_argument(
        "--no-snap", action="store_true", help="decode the drawn vectors without snapping them to codes"
    )
    args = parser.parse_args()
    store = WindowStore(args.store)
    rate = store.sampling_rate_hz
    source = beat_source(store.channel_names, store.units)
    if source is None:
        sys.exit(f"{args.store}: no beats to find in channels {store.channel_names} ({store.units})")
    rng = np.random.default_rng(0)
    sets = {
        split: np.asarray(store.windows[np.sort(rng.choice(store.split_indices(split), 2 * args.n, replace=False))])
        for split in ("test", "train")
    }
    sampling = {"steps": args.steps, "sampler": args.sampler, "guidance": args.guidance} | (
        {"snap": False} if args.no_snap else {}
    )
    extra = dict(o.split("=", 1) for o in args.option)
    sampling |= {key: json.loads(value) for key, value in extra.items()}  # numbers as numbers
    pipelines = {
        name: Pipeline.from_pretrained(folder) for name, folder in (entry.split("=", 1) for entry in args.pipelines)
    }
    known = set().union(*(option_names(p.priors[next(iter(p.priors))]) for p in pipelines.values()))
    if set(extra) - known:
        sys.exit(
            f"--option {sorted(set(extra) - known)}: none of the pipelines' priors has it (they take {sorted(known)})"
        )
    first = next(iter(pipelines.values()))
    sets["train-decoded"] = first.decode(
        first.encode(sets["train"]).codes
    )  # a perfect prior over its codes would draw these

    def summarise(windows: np.ndarray) -> dict:
        return rhythm_summary(source.lead(windows), source.rhythm(windows, rate), rate)

    seconds, later_seeds = {}, {}
    for name, pipeline in pipelines.items():
        started = time.perf_counter()
        sets[name] = drawn(pipeline, store, args.n, sampling)
        seconds[name] = round(time.perf_counter() - started, 1)
        later_seeds[name] = [summarise(drawn(pipeline, store, args.n, sampling, seed)) for seed in range(1, args.seeds)]
    leads = {name: source.lead(windows) for name, windows in sets.items()}
    rhythms = {name: source.rhythm(windows, rate) for name, windows in sets.items()}
    summary = {name: rhythm_summary(leads[name], rhythms[name], rate) for name in sets}
    over_seeds = (
        {name: spread([summary[name]] + later) for name, later in later_seeds.items()} if args.seeds > 1 else {}
    )
    out = Path(args.out) / args.name
    plots.histograms(
        {name: rr_irregularity(rhythm) for name, rhythm in rhythms.items()},
        out / "rr_irregularity.png",
        "beat-interval irregularity per window (RR coefficient of variation)",
    )
    plots.beat_examples({name: (leads[name], rhythms[name]) for name in sets}, rate, out / "beats.png", source.unit)
    print(
        save(
            args.name,
            {
                "what": __doc__.splitlines()[0],
                "store": args.store,
                "pipelines": args.pipelines,
                "sampling": sampling,
                "real_windows": 2 * args.n,
                "beats": source.describe(),
                "sampling_seconds": seconds,
                "sets": summary,
                **({"seeds": args.seeds, "over_seeds": over_seeds} if over_seeds else {}),
            },
        )
    )
    for name, figures in summary.items():
        print(name, figures)


if __name__ == "__main__":
    main()
