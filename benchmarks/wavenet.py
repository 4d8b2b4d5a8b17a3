"""Cached vs naive WaveNet generation speed, and the prior's bits per code against the unigram entropy.

    .venv/bin/python -m benchmarks.wavenet [--pipeline runs/demo/pipeline] [--lengths 256 512 1024] [--batches 1 64]

Goal (issue 5): cached >= 10x faster at L' = 512 and >= 15x at L' = 1024 for batch 1.
"""

from __future__ import annotations

import argparse
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import save
from tsvq.priors.wavenet import WaveNet


def seconds(fn, repeats: int = 1) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pipeline", default="runs/demo/pipeline")
    parser.add_argument("--lengths", type=int, nargs="+", default=[256, 512, 1024])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 64])
    args = parser.parse_args()
    torch.manual_seed(0)
    results: dict = {"speed": []}
    config = dict(
        num_codes=256,
        residual_channels=64,
        skip_channels=128,
        dilation_cycle=(1, 2, 4, 8, 16, 32, 64, 128),
        num_cycles=2,
    )
    for length in args.lengths:
        model = WaveNet(latent_length=length, **config).eval()
        for batch in args.batches:
            cached = seconds(partial(model.generate, batch, length=length, seed=0, cached=True))
            # Naive cost of step t is one forward over t codes: time a full forward at several prefix lengths and
            # integrate, rather than waiting many minutes for L^2 work at batch 64 (a lower bound: it leaves out the
            # per-step sampling work that the measured batch-1 runs include).
            prefixes = torch.linspace(1, length, 8).long().tolist()
            per_prefix = []
            for t in prefixes:
                codes = torch.randint(0, 256, (batch, t))
                with torch.no_grad():
                    per_prefix.append(seconds(partial(model, codes), repeats=2))
            naive = float(np.interp(np.arange(1, length + 1), prefixes, per_prefix).sum())
            row = {
                "latent_length": length,
                "batch": batch,
                "cached_s": cached,
                "naive_s_estimated": naive,
                "speedup": naive / cached,
                "cached_codes_per_s": batch * length / cached,
            }
            if batch == 1:  # a real naive run where it is affordable; the speedup then uses it
                row["naive_s_measured"] = seconds(partial(model.generate, batch, length=length, seed=0, cached=False))
                row["speedup"] = row["naive_s_measured"] / cached
            print(row, flush=True)
            results["speed"].append(row)
    pipeline = Path(args.pipeline)
    if (pipeline / "wavenet" / "prior.json").exists():
        import json

        statistics = json.loads((pipeline / "wavenet" / "prior.json").read_text())["statistics"]
        results["prior"] = {"pipeline": str(pipeline)} | statistics
        print(results["prior"])
    print("saved", save("wavenet", results))


if __name__ == "__main__":
    main()
