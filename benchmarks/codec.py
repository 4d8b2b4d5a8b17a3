"""Codec fidelity on an unseen patient: train on the shared recordings except record 100, test on record 100.

    .venv/bin/python -m benchmarks.codec [--steps 1500] [--configs vq rvq plain]

Targets (issue 3), on the unseen patient: PRDN <= 5% at CR >= 10 with one codebook; PRDN <= 2% at CR >= 10 with
residual VQ; held-out codebook usage >= 95% and perplexity >= 0.6 K. `plain` is the ablation without k-means
initialisation and dead-code restarts. Compression ratios count 11 bits per input sample (MIT-BIH's ADC).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.common import RESULTS, save
from tsvq.codec import VQVAE
from tsvq.codec.metrics import codebook_report, reconstruction_report
from tsvq.data import PrepareConfig, prepare
from tsvq.safe_loading import load_model
from tsvq.training.augment import AugmentConfig
from tsvq.training.codec import CodecStageConfig, train_codec
from tsvq.training.loop import TrainingConfig

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "wfdb"
BASE = {"hidden_channels": 32, "num_res_blocks": 1, "latent_dim": 64, "code_dim": 16, "reconstruction_loss_type": "mse"}
CONFIGS = {
    "vq": BASE | {"num_codes": 256, "downsample_factor": 8},  # 31.25 codes/s x 8 bits = 250 bit/s: CR 11
    "rvq": BASE
    | {"num_codes": 256, "downsample_factor": 16, "num_quantizers": 2, "quantizer_dropout": 0.3},  # 250 bit/s
    "plain": BASE | {"num_codes": 256, "downsample_factor": 8, "kmeans_init": False, "restart_dead_codes": False},
}
CONFIGS["vq-noaug"] = CONFIGS["vq"]  # the augmentation ablation
CONFIGS["vq-warp"] = CONFIGS["vq"]  # the smooth time and magnitude warps on top
# Gain, polarity and time-stretch augmentation (tsvq.training.augment): five training patients are too few to
# cover an unseen patient's beat shapes without it.
AUGMENT = {"gain": [0.5, 2.0], "flip_probability": 0.5, "stretch": [0.8, 1.25]}
AUGMENTS = {"vq": AUGMENT, "rvq": AUGMENT, "vq-warp": AUGMENT | {"time_warp": 0.3, "magnitude_warp": 0.2}}


def encode_decode(
    codec: VQVAE, windows: np.ndarray, batch_size: int = 128, **encode_options
) -> tuple[np.ndarray, np.ndarray]:
    """Codes and reconstructions of ``windows``, a batch at a time (``encode_options``: e.g. ``search``)."""
    codes = codec.encode_windows(windows, batch_size=batch_size, **encode_options)
    return codes, codec.decode_codes(codes, batch_size)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--source", default=str(SHARED))
    parser.add_argument("--out", default="runs/benchmarks/codec")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--configs", nargs="+", default=["vq", "rvq", "plain", "vq-noaug"], choices=list(CONFIGS))
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--mixed-precision", default="no", choices=["no", "bf16", "fp16"])
    parser.add_argument("--seed", type=int, default=0, help="training seed (initial weights, data order, augmentation)")
    parser.add_argument(
        "--model", type=json.loads, default={}, help="JSON overrides for every config, e.g. '{\"hidden_channels\": 64}'"
    )
    parser.add_argument(
        "--augment",
        type=json.loads,
        default={},
        help="JSON overrides of the augmented configs' augment section, e.g. '{\"time_warp\": 0.1}'",
    )
    parser.add_argument(
        "--tag",
        default="",
        help="suffix of the run names in the results, e.g. --tag=-gpu-large (with '=': it starts with a dash)",
    )
    parser.add_argument("--results", default=None, help="results file name (default codec, or codec-unbalanced)")
    parser.add_argument(
        "--same-patient",
        action="store_true",
        help="train and test on record 100 split by time: the ceiling without the unseen-patient gap",
    )
    parser.add_argument(
        "--extra-sources",
        nargs="+",
        default=[],
        choices=["mitdb208", "synthetic"],
        help="built-in sources whose patients join the training split",
    )
    parser.add_argument("--leads", action="store_true", help="every mV lead of a record is its own training example")
    parser.add_argument(
        "--projections",
        type=int,
        default=0,
        help="with --leads: this many random mixtures of each training record's leads join as examples",
    )
    parser.add_argument(
        "--search",
        type=int,
        default=0,
        help="also report record 100's PRDN with analysis-by-synthesis code search over this many candidates",
    )
    parser.add_argument("--sweeps", type=int, default=2, help="passes of the code search")
    parser.add_argument(
        "--no-balance", action="store_true", help="sample windows as they come (one long recording dominates)"
    )
    parser.add_argument(
        "--checkpoint-every",
        type=int,
        default=0,
        help="save a resumable checkpoint every N steps (default: only at the end)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run of the same command from its newest checkpoint",
    )
    parser.add_argument(
        "--evaluate-only",
        action="store_true",
        help="evaluate the runs already trained under --out (e.g. with another --search) instead of training",
    )
    args = parser.parse_args()
    if not Path(args.source).exists():
        sys.exit(f"{args.source} not found: this benchmark needs the shared recordings")
    out = Path(args.out)
    if args.same_patient:  # the ceiling: record 100's first 70% trains, its last 20% tests (no unseen patient)
        data = PrepareConfig(source=str(Path(args.source) / "100"), rate_hz=250, window_seconds=4.096, split_by="time")
    else:
        data = PrepareConfig(
            source=[args.source, *args.extra_sources] if args.extra_sources else args.source,
            rate_hz=250,
            window_seconds=4.096,
            test_groups=["100"],
            val_groups=["a103l"],
            leads_as_examples=args.leads,
            lead_projections=args.projections,
        )
    store_name = (
        "store-same-patient"
        if args.same_patient
        else "-".join(
            ["store"]
            + ["leads"] * args.leads
            + [f"mix{args.projections}"] * bool(args.projections)
            + args.extra_sources
        )
    )
    # the store is this benchmark's own cache: rebuilt (the same windows) when the sources' modification times moved
    store = prepare(data, out / store_name, overwrite=True)
    print(store)
    test = store.load("test")
    # the headline figure is always record 100's first lead (MLII), so runs with and without --leads compare
    headline = store.record_of("test") == "100:MLII" if args.leads else np.ones(len(test), dtype=bool)
    # one file per sampling, so no run is mislabelled; parallel invocations name their own files
    result_name = args.results or (
        "codec-unbalanced"
        if args.no_balance
        else "codec-leads"
        if args.leads
        else "codec-same-patient"
        if args.same_patient
        else "codec"
    )
    previous = RESULTS / f"{result_name}.json"
    earlier = json.loads(previous.read_text()) if previous.exists() else {}
    results = {
        "data": {
            "source": args.source,
            "rate_hz": 250,
            "window_samples": store.window_length,
            "windows": store.manifest["windows_per_split"],
            "test_patient": (
                "100, its last 20% (its first 70% trains)"
                if args.same_patient
                else "100 (MIT-BIH, never seen in training)"
            ),
            "leads_as_examples": args.leads,
            "lead_projections": args.projections,
            "extra_sources": args.extra_sources,
            "test_prdn_on": "record 100, lead MLII",
        },
        "balance_groups": not args.no_balance,
        "runs": dict(earlier.get("runs", {})),
    }  # runs of other configs from an earlier invocation are kept
    if "note" in earlier:  # the hand-written account of how the runs were made
        results = {"note": earlier["note"]} | results
    for name in args.configs:
        augment = AUGMENTS[name] | args.augment if name in AUGMENTS else None
        model = CONFIGS[name] | args.model
        run = out / (name + args.tag)
        if args.evaluate_only:
            if not (run / "training_summary.json").exists():
                sys.exit(f"{run} holds no finished training run to evaluate (train it first, without --evaluate-only)")
            folder = run / "model"
        else:
            training = TrainingConfig(
                output_dir=str(run),
                max_steps=args.steps,
                batch_size=args.batch_size,
                learning_rate=args.learning_rate,
                mixed_precision=args.mixed_precision,
                warmup_steps=100,
                eval_every=max(args.steps // 6, 1),
                resume=args.resume,
                seed=args.seed,
                checkpoint_every=args.checkpoint_every or args.steps,
            )
            folder = train_codec(
                CodecStageConfig(
                    store=str(store.path),
                    model=model,
                    training=training,
                    balance_groups=not args.no_balance,
                    augment=AugmentConfig(**(augment or {})),
                )
            )
        summary = json.loads((run / "training_summary.json").read_text())
        trained = summary["config"]  # what the run was trained with, also under --evaluate-only
        if args.evaluate_only:  # runs trained before summaries held the stage config: as recorded in the results then
            augment = (
                summary["stage_config"]["augment"]
                if "stage_config" in summary
                else results["runs"].get(name + args.tag, {}).get("augment", augment)
            )
        codec = load_model(VQVAE, folder)
        model = {key: codec.config[key] for key in model}
        codes, recon = encode_decode(codec, test)
        report = reconstruction_report(
            test[headline],
            recon[headline],
            bits_per_second=codec.bits_per_second(),
            input_bits_per_second=codec.compression_ratio() * codec.bits_per_second(),
        )
        health = codebook_report(codes[headline], codec.config.num_codes)
        per_lead = reconstruction_report(test, recon, record_names=store.record_of("test"))["per_record"]  # V5 too
        searched = {}
        if args.search:  # same codec, same bit rate: only the encoder's choice of codes changes
            started = time.time()
            target = test[headline]
            found, decoded = encode_decode(codec, target, batch_size=64, search=args.search, sweeps=args.sweeps)
            found_health = codebook_report(found, codec.config.num_codes)
            searched = {
                "search": {
                    "candidates": args.search,
                    "sweeps": args.sweeps,
                    "seconds": round(time.time() - started, 1),
                    "windows": int(len(target)),
                },
                "test_prdn_search": reconstruction_report(target, decoded, bits_per_second=codec.bits_per_second())[
                    "prdn"
                ],
                "test_usage_percent_search": found_health["usage_percent"],
                "test_perplexity_fraction_search": found_health["perplexity_fraction"],
            }
        results["runs"][name + args.tag] = (
            {
                "model": model,
                "steps": trained["max_steps"],
                "batch_size": trained["batch_size"],
                "learning_rate": trained["learning_rate"],
                "mixed_precision": trained["mixed_precision"],
                "seed": trained["seed"],
                "device": summary["device"],
                "augment": augment,
                "test_prdn": report["prdn"],
                "test_prd": report["prd"],
                "test_snr_db": report["snr_db"],
                "compression_ratio": report["compression_ratio"],
                "bits_per_second": report["bits_per_second"],
                "test_usage_percent": health["usage_percent"],
                "test_perplexity": health["perplexity"],
                "test_perplexity_fraction": health["perplexity_fraction"],
                "train_seconds": summary["seconds"],
                "train_windows_per_s": summary["windows_per_s"],
            }
            | ({"test_prdn_per_lead": {k: v["prdn"] for k, v in per_lead.items()}} if args.leads else {})
            | searched
        )
        print(name + args.tag, json.dumps(results["runs"][name + args.tag]), flush=True)
        save(result_name, results)
    print("saved", save(result_name, results))


if __name__ == "__main__":
    main()
