"""Codec figures on a store's held-out split, shared by the per-database benchmarks (ptbxl.py, cinc2017.py,
bidmc.py): PRDN per unit (patient or recording), per channel and per label at the codec's bit rate, with the
compression ratio against what the database stores, and held-out codebook health. With a finished `tsvq eval`
report folder, its generation and label figures are kept beside them, so one results file says everything."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from tsvq.codec import VQVAE
from tsvq.codec.metrics import codebook_report, prdn
from tsvq.data import WindowStore


def codec_figures(
    store: WindowStore,
    codec: VQVAE,
    stored_bits_per_second: float,
    split: str = "test",
    rd: bool = False,
    batch_size: int = 128,
) -> tuple[list[dict], np.ndarray, np.ndarray]:
    """One entry per number of residual stages decoded (all of them, or 1..Q with ``rd``), the held-out windows,
    and their reconstruction from every stage (for database-specific figures)."""
    rows = store.split_indices(split)
    if not len(rows):
        raise SystemExit(f"{store.path}: no '{split}' windows")
    windows = np.asarray(store.windows[rows])
    units, labels = store.groups_of(rows), store.index["label"][rows]
    started = time.time()
    codes = codec.encode_windows(windows, batch_size=batch_size)
    if codec.config.num_quantizers == 1:
        codes = codes[..., None]
    stages = range(1, codec.config.num_quantizers + 1) if rd else [codec.config.num_quantizers]
    results = []
    for q in stages:
        reconstruction = codec.decode_codes(codes[..., :q], batch_size)
        per_window = prdn(windows, reconstruction)
        per_unit = {u: float(per_window[units == u].mean()) for u in sorted(set(units))}
        bits = codec.bits_per_second() * q / codec.config.num_quantizers
        health = codebook_report(codes[..., :q], codec.config.num_codes)
        entry = {
            "stages": q,
            "bits_per_second": bits,
            "compression_ratio_vs_stored": stored_bits_per_second / bits,
            "mean_prdn_over_units": float(np.mean(list(per_unit.values()))),
            "median_prdn_over_units": float(np.median(list(per_unit.values()))),
            "worst_unit": max(per_unit, key=per_unit.get),
            "units": len(per_unit),
            "per_channel_prdn": {
                name: float(prdn(windows[..., c : c + 1], reconstruction[..., c : c + 1]).mean())
                for c, name in enumerate(store.channel_names)
            },
            "per_label_prdn": {
                str(label): float(per_window[labels == label].mean()) for label in sorted(set(labels)) if label
            },
            "held_out_usage_percent": health["usage_percent"],
            "held_out_perplexity": health["perplexity"],
            "windows": int(len(windows)),
            "seconds": round(time.time() - started, 1),
        }
        results.append(entry)
        print(
            f"  {q} stage(s): {bits:.1f} bit/s (CR {entry['compression_ratio_vs_stored']:.1f} vs stored), mean PRDN "
            "over "
            f"{len(per_unit)} units {entry['mean_prdn_over_units']:.2f}%, usage {health['usage_percent']:.1f}%, "
            f"per label { ({k: round(v, 2) for k, v in entry['per_label_prdn'].items()}) }",
            flush=True,
        )
    return results, windows, reconstruction


def generation_figures(report_folder: str | None) -> dict | None:
    """The parts of a `tsvq eval` report a benchmark keeps: each generator's figures (mean +- std), the floor's,
    which figures are informative, the label classification and the per-class figures."""
    if not report_folder:
        return None
    report = json.loads((Path(report_folder) / "report.json").read_text())
    generation = report["generation"]
    return {
        "config": report.get("config"),
        "real": generation["real"],
        "seeds": generation["seeds"],
        "beats": generation.get("beats"),
        "informative": generation["informative"],
        "within_noise": generation["within_noise"],
        "below_floor": generation["below_floor"],
        "generators": {
            name: {
                "kind": g["kind"],
                "figures": {f: {"mean": v["mean"], "std": v["std"]} for f, v in g["figures"].items()},
                "memorisation_ratio": g["memorisation_ratio"],
                "shape_memorisation_ratio": g.get("shape_memorisation_ratio"),
            }
            for name, g in generation["generators"].items()
        },
        "label_classification": report.get("label_classification"),
        "per_class": report.get("per_class"),
        "eval_seconds": report.get("seconds"),
    }


def describe(codec: VQVAE, folder: str) -> dict:
    summary = Path(folder).parent / "training_summary.json"
    return {
        "folder": folder,
        "model": {
            k: v for k, v in codec.config.items() if not k.startswith("_") and k not in ("norm_mean", "norm_std")
        },
        "parameters": sum(p.numel() for p in codec.parameters()),
        "training_summary": json.loads(summary.read_text()) if summary.exists() else None,
    }


def main(database: str, stored_bits_per_second: float, description: str, extra=None) -> None:
    """The command line every per-database benchmark shares; ``extra(store, windows, reconstruction)`` adds
    database-specific figures of the held-out windows and their full reconstruction."""
    import argparse

    import torch

    from benchmarks.common import save
    from tsvq.safe_loading import load_model

    parser = argparse.ArgumentParser(description=description.split("\n\n")[0])
    parser.add_argument(
        "--store", default=f"runs/{database}/store", help=f"window store of recipes/{database}/prepare.yaml"
    )
    parser.add_argument("--codec", default=f"runs/{database}/codec/model", help="trained codec folder")
    parser.add_argument("--report", help="a finished `tsvq eval` report folder whose generation figures to keep")
    parser.add_argument("--split", default="test", help="held-out split of the store")
    parser.add_argument(
        "--rd", action="store_true", help="residual VQ: decode with 1..Q stages (a rate-distortion curve)"
    )
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--results", default=database, help="results file name under benchmarks/results/")
    parser.add_argument("--note", default="", help="what was trained, where and how long (kept in the results)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    store = WindowStore(args.store)
    codec = load_model(VQVAE, args.codec).eval()
    print(
        f"{store.path}: {len(store.split_indices(args.split))} '{args.split}' windows; {args.codec}: "
        f"{sum(p.numel() for p in codec.parameters()) / 1e6:.2f} M parameters"
    )
    with torch.no_grad():
        results, windows, reconstruction = codec_figures(store, codec, stored_bits_per_second, args.split, args.rd)
    extras = extra(store, windows, reconstruction) if extra else {}
    payload = {
        "note": args.note,
        "database": database,
        "store": str(store.path),
        "split": args.split,
        "stored_bits_per_second": stored_bits_per_second,
        "codec": describe(codec, args.codec),
        "codec_results": results,
        **extras,
        "generation": generation_figures(args.report),
    }
    print(f"results: {save(args.results, payload)}")
