"""The shipped pipeline's generation, lead by lead, on ECGs it never saw: what a user gets from
`Pipeline.from_pretrained("ecg-single-lead").sample(8, labels="II")`.

    .venv/bin/python -m benchmarks.pretrained_generation      # rewrites results/pretrained-generation.{json,png}

Held-out data, each lead its own store made by `tsvq prepare` at the pipeline's rate, band and window, every window
labelled by its standard lead name (`tsvq.data.leads`):

- PTB-XL fold 10 (12 leads; folds 1-8 are the training split the references and label mix come from),
- MIT-BIH DS2 (the 22 inter-patient test records' MLII; DS1 without the paced records and without 201, the patient
  of DS2's 202, trains). A pipeline that knows the label ``MLII`` (Holter lead II, the limb electrodes on the torso)
  draws DS2 with it; DS2 drawn with ``II`` (the resting 12-lead's) is reported beside it.

For each of PTB-XL's 12 leads (``--leads`` picks fewer; a few minutes each) and DS2's MLII, `tsvq eval` draws ``--n``
windows of that lead from the pipeline's first prior (a lead-conditional prior with the lead's label, an
unconditional one as it can) over ``--seeds`` seeds, beside the real-vs-real floor (two halves of the held-out
records), the training windows as they are and through the codec, and phase-randomised and Gaussian surrogates.
Then one eval on PTB-XL fold 10 with all 12 leads together scores the labels: a lead classifier trained on samples
and tested on real windows (TSTR) against one trained on real windows (TRTR), and each lead's samples against its
own floor (the grid of real beside generated windows per lead: results/pretrained-generation.png).

The targets of each lead (issue 59): discriminative score <= 0.20, Frechet distance <= 3x the floor, heart rate,
QTc and average beat within 2x the floor, memorisation ratio >= 0.9 (of the windows' shapes: a set drawn quieter than
the real one sits nearer the training windows without copying any; the Euclidean ratio is reported beside it);
TSTR >= 0.8x TRTR.
"""

from __future__ import annotations

import argparse
import shutil
import time
from dataclasses import asdict
from pathlib import Path

from benchmarks.common import save
from benchmarks.heldout import generation_figures
from benchmarks.mitbih import DS2
from tsvq.cli import main as cli_main
from tsvq.data import PrepareConfig, prepare
from tsvq.data.leads import STANDARD_LEADS
from tsvq.pipeline import Pipeline
from tsvq.priors.base import option_names, sampling_options

# left out of DS1 as the pretrained recipe leaves them: the paced records, and 201 (the patient of DS2's 202)
NOT_DS1 = ["102", "104", "107", "217", "201"]
PTBXL_TABLE = {
    "file": "ptbxl_database.csv",
    "record_column": "filename_lr",
    "group_column": "patient_id",
    "label_columns": ["strat_fold"],
}
# figure: (how the model's value may stand against the floor's, limit); None: an absolute limit
TARGETS = {
    "discriminative_score": (None, 0.20),
    "frechet_distance": ("x floor", 3.0),
    "heart_rate_wasserstein_bpm": ("x floor", 2.0),
    "qtc_wasserstein_ms": ("x floor", 2.0),
    "average_beat_rms": ("x floor", 2.0),
}


def store_config(database: str, source: Path, pipe: Pipeline, lead: str | None) -> PrepareConfig:
    """The held-out store of one lead (``lead`` None: every lead, each its own example); ``MLII`` keeps MIT-BIH's
    name as the windows' label, ``II`` labels it as the standard lead."""
    conditioning = pipe.preprocessing
    common = dict(
        rate_hz=pipe.sampling_rate_hz,
        window_samples=pipe.window_length,
        highpass_hz=conditioning.highpass_hz,
        lowpass_hz=conditioning.lowpass_hz,
        window_label="lead",
        annotation_extensions=[],
        skip_bad_records=True,
        channels=None if lead is None else [lead],
        channel_aliases=lead is not None,
        leads_as_examples=lead is None,
        example_unit="mV",
        lead_names={"MLII": "MLII"} if lead == "MLII" else {},
    )
    if database == "ptbxl":  # else MIT-BIH
        return PrepareConfig(
            source=[{"path": str(source / "ptbxl"), "group_by": "table", "table": PTBXL_TABLE}],
            split_by="label",
            split_label="strat_fold",
            split_values={"train": list(range(1, 9)), "val": [9], "test": [10]},
            **common,
        )
    return PrepareConfig(
        source=[{"path": str(source / "mitdb"), "group_by": "record", "exclude": NOT_DS1}],
        test_groups=list(DS2),
        val_fraction=0.0,
        test_fraction=0.0,
        **common,
    )


def targets_met(figures: dict, floor: dict) -> dict:
    """Each target figure: the model's mean, the floor's, their ratio, and whether the target holds."""
    out = {}
    for name, (relation, limit) in TARGETS.items():
        if name not in figures:
            continue
        value, reference = figures[name]["mean"], floor.get(name, {}).get("mean")
        ratio = value / reference if relation and reference else None
        met = value <= limit if relation is None else (ratio is not None and ratio <= limit)
        target = f"<= {limit} {relation}" if relation else f"<= {limit}"
        out[name] = {"model": value, "floor": reference, "ratio": ratio, "target": target, "met": bool(met)}
    return out


def memorisation_target(model: dict) -> dict:
    """No copying: the samples' shapes (``tsvq.evaluation.generation.shapes``) no nearer the training windows than
    held-out real windows are. Judged on shapes because the Euclidean ratio also falls when a set is drawn quieter
    than the real one (amplitude, which the average beat and Frechet figures already judge), copying nothing."""
    shape, euclidean = model["shape_memorisation_ratio"]["mean"], model["memorisation_ratio"]["mean"]
    return {"model": shape, "euclidean": euclidean, "target": ">= 0.9 (shapes)", "met": bool(shape >= 0.9)}


def sampling_settings(pipe: Pipeline, prior: str, args) -> dict:
    """What the prior draws with: the pipeline's saved defaults (``pipeline.json``), unless the command line says."""
    model = pipe.prior(prior)
    asked = {name: getattr(args, name) for name in ("steps", "sampler", "guidance") if name in option_names(model)}
    return asdict(sampling_options(type(model), pipe.sampling_for(prior, asked), f"{args.pipeline} sampling"))


def evaluate(pipe_name: str, store: Path, out: Path, args, extra: list[str]) -> dict:
    flags = [item for name, value in args.sampling.items() for item in (f"--{name}", str(value))]
    command = [
        *("eval", "--pipeline", pipe_name, "--data", str(store), "--split", "test", "--n", str(args.n)),
        *("--seeds", str(args.seeds), *flags),
        *("--floor-halves", "records", "--out", str(out), "--overwrite", *extra),
        *("--baselines", "phase_randomised", "gaussian"),
    ]
    if cli_main(command) != 0:
        raise SystemExit(f"tsvq {' '.join(command)} failed")
    return generation_figures(str(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pipeline", default="ecg-single-lead")
    parser.add_argument("--source", default="../shared/data", help="folder holding ptbxl/ and mitdb/")
    parser.add_argument("--work", default="runs/bench/pretrained-generation", help="stores and eval reports")
    parser.add_argument(
        "--leads",
        nargs="+",
        default=list(STANDARD_LEADS),
        choices=STANDARD_LEADS,
        help="PTB-XL leads scored one by one",
    )
    parser.add_argument("--n", type=int, default=100, help="generated windows per seed")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, help="denoising steps (default: the pipeline's saved default)")
    parser.add_argument("--sampler", help="diffusion sampler (default: the pipeline's)")
    parser.add_argument("--guidance", type=float, help="classifier-free guidance (default: the pipeline's)")
    parser.add_argument("--results", default="pretrained-generation")
    args = parser.parse_args()
    started = time.perf_counter()
    pipe = Pipeline.from_pretrained(args.pipeline)
    prior = next(iter(pipe.priors))
    args.sampling = sampling_settings(pipe, prior, args)
    source, work = Path(args.source), Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    holter = ["MLII", "II"] if "MLII" in pipe.prior(prior).labels else ["II"]
    jobs = [("ptbxl", lead) for lead in args.leads] + [("mitdb-ds2", lead) for lead in holter]
    per_lead = {}
    for database, lead in jobs:
        store = work / f"{database}-{lead}"
        prepare(store_config(database, source, pipe, lead), store, progress=False)
        figures = evaluate(args.pipeline, store, work / f"eval-{database}-{lead}", args, [])
        model = figures["generators"][prior]
        per_lead.setdefault(database, {})[lead] = {
            "targets": targets_met(model["figures"], figures["generators"]["floor"]["figures"])
            | {"memorisation_ratio": memorisation_target(model)},
            "figures": figures,
        }
        shown = {k: round(v["model"], 3) for k, v in per_lead[database][lead]["targets"].items()}
        print(f"{database} {lead} ({time.perf_counter() - started:.0f} s): {shown}", flush=True)
    store = work / "ptbxl-leads"
    prepare(store_config("ptbxl", source, pipe, None), store, progress=False)
    labels = evaluate(args.pipeline, store, work / "eval-ptbxl-leads", args, ["--no-morphology"])
    for plot in (work / "eval-ptbxl-leads").glob(f"classes_{prior}.png"):
        shutil.copyfile(plot, Path(__file__).resolve().parent / "results" / f"{args.results}.png")
    payload = {
        "pipeline": args.pipeline,
        "prior": prior,
        "conditional": bool(pipe.prior(prior).labels),
        "sampling": args.sampling,
        "n": args.n,
        "seeds": args.seeds,
        "per_lead": per_lead,
        "leads_together": {
            "label_classification": labels["label_classification"],
            "per_class": labels["per_class"],
        },
        "seconds": time.perf_counter() - started,
    }
    print(f"-> {save(args.results, payload)}")


if __name__ == "__main__":
    main()
