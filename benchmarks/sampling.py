"""Diffusion sampling: speed and distribution distance for DDPM 1000, DDIM 50/20 and DPM-Solver++ 20/10 steps.

    .venv/bin/python benchmarks/sampling.py [--pipeline runs/demo/pipeline] [--store runs/demo/store] [--n 200]

Distance: MMD and Frechet distance on random-kernel features between generated and held-out real (test) windows,
with the floor of the two real halves. Goal (issue 4): DPM-Solver++ at <= 20 steps within 10% of 1000-step DDPM.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import save  # noqa: E402
from tsvq.data import WindowStore  # noqa: E402
from tsvq.evaluation import RandomKernelFeatures, frechet_distance, mmd_rbf  # noqa: E402
from tsvq.pipeline import Pipeline  # noqa: E402

SETTINGS = [("ddpm", 1000), ("ddim", 50), ("ddim", 20), ("dpm", 20), ("dpm", 10)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pipeline", default="runs/demo/pipeline")
    parser.add_argument("--store", default="runs/demo/store")
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    pipe = Pipeline.from_pretrained(args.pipeline, device=args.device)
    store = WindowStore(args.store)
    real = store.load("test")
    features = RandomKernelFeatures(store.window_length, store.num_channels, 256, seed=0).fit_scale(real)
    real_features = features.transform(real)
    half = len(real) // 2
    results = {"pipeline": args.pipeline, "store": args.store, "n": args.n, "real_test_windows": len(real),
               "floor": {"mmd": mmd_rbf(real_features[:half], real_features[half:]),
                         "frechet_distance": frechet_distance(real_features[:half], real_features[half:])},
               "runs": []}
    for sampler, steps in SETTINGS:
        pipe.sample(2, steps=min(steps, 5), sampler=sampler, seed=123, progress=False)  # warm-up
        started = time.perf_counter()
        out = pipe.sample(args.n, steps=steps, sampler=sampler, seed=0, progress=False)
        seconds = time.perf_counter() - started
        generated = features.transform(out.signals)
        row = {"sampler": sampler, "steps": steps, "seconds": seconds, "samples_per_s": args.n / seconds,
               "mmd": mmd_rbf(real_features, generated), "frechet_distance": frechet_distance(real_features, generated),
               "snap_distance_relative": out.info["snap_distance_relative"]}
        print(row, flush=True)
        results["runs"].append(row)
    reference = results["runs"][0]
    for row in results["runs"]:
        row["mmd_vs_ddpm1000"] = row["mmd"] / reference["mmd"] if reference["mmd"] > 0 else float("nan")
        row["frechet_vs_ddpm1000"] = row["frechet_distance"] / reference["frechet_distance"]
    print("saved", save("sampling", results))


if __name__ == "__main__":
    main()
