"""Diffusion sampling: speed and distribution distance for DDPM 1000, DDIM 50/20 and DPM-Solver++ 20/10 steps.

    make demo    # the codec and window store this benchmark reuses
    .venv/bin/python -m benchmarks.sampling [--prior-steps 3000] [--seeds 0 1 2] [--n 200]

By default it trains its own diffusion prior on the demo's codec and store for ``--prior-steps`` (the demo's prior
stops at 1200 steps to keep ``make demo`` short; with 407 training windows the validation loss is lowest near
2000-3000 steps); ``--prior-steps 0`` measures the pipeline's own prior instead.

Distance: MMD and Frechet distance on random-kernel features between generated and held-out real (test) windows,
with the floor of the two real halves; each figure is the mean over ``--seeds`` (with the spread), because one
seed of 200 samples moves the Frechet distance by ~7%. Goal (issue 4): DPM-Solver++ at <= 20 steps within 10% of
1000-step DDPM.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from benchmarks.common import MEASURED_DENOISER, save
from tsvq.data import WindowStore
from tsvq.evaluation import RandomKernelFeatures, frechet_distance, mmd_rbf
from tsvq.pipeline import Pipeline
from tsvq.training.diffusion import DiffusionStageConfig, train_diffusion
from tsvq.training.loop import TrainingConfig

SETTINGS = [("ddpm", 1000), ("ddim", 50), ("ddim", 20), ("dpm", 20), ("dpm", 10)]


def trained_pipeline(pipeline: Path, store: Path, steps: int, out: Path) -> Path:
    """The pipeline's codec with a diffusion prior trained for ``steps`` (resumed if already there)."""
    training = TrainingConfig(
        output_dir=str(out / "diffusion"),
        max_steps=steps,
        batch_size=32,
        learning_rate=1e-3,
        warmup_steps=100,
        eval_every=max(steps // 6, 1),
        checkpoint_every=max(steps // 3, 1),
    )
    prior = train_diffusion(
        DiffusionStageConfig(
            store=str(store), codec=str(pipeline / "codec"), model=MEASURED_DENOISER, training=training
        )
    )
    Pipeline.from_stages(pipeline / "codec", prior, None).save_pretrained(out / "pipeline")
    return out / "pipeline"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pipeline", default="runs/demo/pipeline")
    parser.add_argument("--store", default="runs/demo/store")
    parser.add_argument(
        "--prior-steps", type=int, default=3000, help="train a prior this long first; 0: use the pipeline's"
    )
    parser.add_argument("--out", default="runs/benchmarks/sampling")
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    pipeline = Path(args.pipeline)
    if args.prior_steps:
        pipeline = trained_pipeline(pipeline, Path(args.store), args.prior_steps, Path(args.out))
    pipe = Pipeline.from_pretrained(pipeline, device=args.device)
    store = WindowStore(args.store)
    real = store.load("test")
    features = RandomKernelFeatures(store.window_length, store.num_channels, 256, seed=0).fit_scale(real)
    real_features = features.transform(real)
    half = len(real) // 2
    results = {
        "pipeline": str(pipeline),
        "store": args.store,
        "prior_steps": args.prior_steps or "the pipeline's own",
        "n": args.n,
        "seeds": args.seeds,
        "real_test_windows": len(real),
        "floor": {
            "mmd": mmd_rbf(real_features[:half], real_features[half:]),
            "frechet_distance": frechet_distance(real_features[:half], real_features[half:]),
        },
        "runs": [],
    }
    for sampler, steps in SETTINGS:
        pipe.sample(2, steps=min(steps, 5), sampler=sampler, seed=123, progress=False)  # warm-up
        seconds, fd, mmd, snap = [], [], [], []
        for seed in args.seeds:
            started = time.perf_counter()
            out = pipe.sample(args.n, steps=steps, sampler=sampler, seed=seed, progress=False)
            seconds.append(time.perf_counter() - started)
            generated = features.transform(out.signals)
            fd.append(frechet_distance(real_features, generated))
            mmd.append(mmd_rbf(real_features, generated))
            snap.append(out.info["snap_distance_relative"])
        row = {
            "sampler": sampler,
            "steps": steps,
            "samples_per_s": args.n * len(seconds) / sum(seconds),
            "frechet_distance": float(np.mean(fd)),
            "frechet_distance_std": float(np.std(fd)),
            "mmd": float(np.mean(mmd)),
            "mmd_std": float(np.std(mmd)),
            "snap_distance_relative": float(np.mean(snap)),
            "per_seed": {"frechet_distance": fd, "mmd": mmd},
        }
        print({k: v for k, v in row.items() if k != "per_seed"}, flush=True)
        results["runs"].append(row)
    reference = results["runs"][0]
    for row in results["runs"]:
        row["mmd_vs_ddpm1000"] = row["mmd"] / reference["mmd"] if reference["mmd"] > 0 else float("nan")
        row["frechet_vs_ddpm1000"] = row["frechet_distance"] / reference["frechet_distance"]
    print("saved", save("sampling", results))


if __name__ == "__main__":
    main()
