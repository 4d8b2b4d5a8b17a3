"""Bonn EEG (recipes/bonn): the codec on the held-out segments of each set beside the wavelet coder at the same
rate, and the set-conditional priors' EEG figures and seizure detection (train on synthetic, test on real).

    tsvq prepare --config recipes/bonn/prepare.yaml --source ../shared/data/bonn --out runs/bonn/store
    tsvq train codec --config recipes/bonn/codec.yaml        # then diffusion.yaml and wavenet.yaml
    tsvq assemble --codec runs/bonn/codec/model --prior runs/bonn/diffusion/model runs/bonn/wavenet/model \\
        --out runs/bonn/pipeline
    tsvq eval --pipeline runs/bonn/pipeline --data runs/bonn/store --compare diffusion wavenet --n 250 \\
        --steps 20 --sampler dpm --guidance 2 --positive-label setE --floor-halves records --out runs/bonn/eval
    .venv/bin/python -m benchmarks.bonn --report runs/bonn/eval

Each held-out segment (23.6 s) is compressed whole with `Pipeline.compress` (its file, header included) and scored
against the segment conditioned as the pipeline conditions it (128 Hz, 0.5-40 Hz); the wavelet coder codes that
same conditioned segment at the same number of bytes. The compression ratio is against the database's 12-bit
samples at 173.61 Hz. Generation: each prior's EEG figures as ratios to the floor (held-out segments against other
held-out segments: the halves hold whole segments), beside the training windows' own (as they are, and through the
codec), and seizure (set E) against the rest, TSTR against TRTR.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from benchmarks.common import save
from benchmarks.rate_distortion import measure, summarise
from tsvq.config import load_yaml
from tsvq.data import WindowStore
from tsvq.data.sources import ReadOptions, open_source
from tsvq.evaluation.eeg import EEG_FIGURES
from tsvq.io import read_json
from tsvq.pipeline import Pipeline

STORED_BITS_PER_SECOND = 12 * 173.61


def held_out_segments(store: WindowStore, source_folder: str) -> list:
    """The test split's segments, read as the recipe reads them (the recipe's text source on ``source_folder``)."""
    spec = dict(load_yaml("recipes/bonn/prepare.yaml")["data"]["source"]) | {"path": source_folder}
    source = open_source(spec)
    test = {r["name"] for r in store.manifest["records"] if r["split"] == "test"}
    return [(ref, source.read(ref, ReadOptions(channels=["EEG"]))) for ref in source.references() if ref.name in test]


def codec_figures(pipe: Pipeline, segments: list) -> dict:
    rows = {}
    for ref, record in segments:
        options = {"channel_names": ["EEG"], "units": ["uV"], "input_bits": 12}
        rows[ref.name] = measure(pipe, STORED_BITS_PER_SECOND, record.signal, record.sampling_rate_hz, **options) | {
            "set": ref.labels["set"]
        }
        row = rows[ref.name]
        print(
            f"{ref.name}: tsvq {row['tsvq']['bits_per_second']:.0f} bit/s PRDN {row['tsvq']['prdn']:.1f}% | "
            f"wavelet {row['wavelet_at_tsvq_rate']['prdn']:.1f}%",
            flush=True,
        )
    by_set = {}
    for name in sorted({row["set"] for row in rows.values()}):
        subset = {k: v for k, v in rows.items() if v["set"] == name}
        summary = summarise(subset)
        by_set[name] = {
            "segments": len(subset),
            "tsvq": summary["tsvq"],
            "wavelet_at_tsvq_rate": summary["wavelet_at_tsvq_rate"],
            "tsvq_wins": sum(r["tsvq"]["prdn"] < r["wavelet_at_tsvq_rate"]["prdn"] for r in subset.values()),
        }
    return {"summary": summarise(rows), "by_set": by_set, "segments": rows}


def generation_figures(report: dict) -> dict:
    """Each compared prior's EEG figures over the floor's, and its TSTR / TRTR (five sets, and seizure vs rest)."""
    generation = report["generation"]
    floor = generation["generators"]["floor"]["figures"]
    result = {"floor_halves": generation["real"].get("halves", "blocks")}
    for name in generation["compared"] + generation.get("references", []):
        figures = generation["generators"][name]["figures"]
        ratios = {
            figure: figures[figure]["mean"] / max(floor[figure]["mean"], 1e-12)
            for figure in (*EEG_FIGURES, "frechet_distance")
        }
        result[name] = {
            "ratio_to_floor": ratios,
            "discriminative_score": figures["discriminative_score"]["mean"],
            "floor_discriminative_score": floor["discriminative_score"]["mean"],
            "memorisation_ratio": generation["generators"][name]["memorisation_ratio"]["mean"],
        }
        labelled = report.get("label_classification", {}).get(name)
        if labelled and "skipped" not in labelled:
            for task, section in (("five_sets", labelled), ("seizure_vs_rest", labelled.get("one_vs_rest"))):
                if section:
                    synthetic = section["train_synthetic_test_real"]["macro_f1"]
                    real = section["train_real_test_real"]["macro_f1"]
                    result[name][task] = {"tstr": synthetic, "trtr": real, "ratio": synthetic / max(real, 1e-12)}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pipeline", default="runs/bonn/pipeline")
    parser.add_argument("--store", default="runs/bonn/store")
    parser.add_argument("--source", default="../shared/data/bonn")
    parser.add_argument("--report", default="runs/bonn/eval", help="the `tsvq eval` report folder of the pipeline")
    args = parser.parse_args()
    torch.set_num_threads(1)
    pipe = Pipeline.from_pretrained(args.pipeline)
    store = WindowStore(args.store)
    codec = codec_figures(pipe, held_out_segments(store, args.source))
    report = read_json(Path(args.report) / "report.json", "evaluation report")
    payload = {
        "pipeline": args.pipeline,
        "split": "by segment, stratified by set (the subjects of the segments are not published)",
        "codec": codec,
        "generation": generation_figures(report),
        "eval_seconds": report.get("seconds"),
    }
    print({name: part["tsvq"]["prdn"] for name, part in codec["by_set"].items()})
    print(f"-> {save('bonn', payload)}")


if __name__ == "__main__":
    main()
