"""What code search buys and costs: PRDN and encoding speed for candidates x sweeps, on excerpts of unseen ECG.

    .venv/bin/python -m benchmarks.search --pipeline ecg-single-lead --source ../shared/data/mitdb

Each record's MLII lead is band-limited like the pipeline's training data, a stretch of ``--minutes`` from
``--start-minute`` is encoded whole (``tsvq.codec.streaming.encode_long``, as ``tsvq compress`` does) with every
setting, decoded, and scored (PRDN against the band-limited input). The defaults are two MIT-BIH DS2 records the
pretrained codec never saw. Speed is seconds of ECG per second of compute with torch's threads; run it alone.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import save
from tsvq.codec.metrics import prdn as prdn_percent
from tsvq.codec.streaming import decode_long, encode_long
from tsvq.data import read_record
from tsvq.pipeline import Pipeline

SETTINGS = ((0, 1), (2, 2), (4, 1), (4, 2), (8, 1), (8, 2), (16, 1), (16, 2))  # (candidates, sweeps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pipeline", default="ecg-single-lead")
    parser.add_argument("--source", default="../shared/data/mitdb")
    parser.add_argument("--records", nargs="+", default=["213", "232"])
    parser.add_argument("--channel", default="MLII")
    parser.add_argument("--start-minute", type=float, default=10.0)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--results", default="search")
    args = parser.parse_args()

    pipe = Pipeline.from_pretrained(args.pipeline)
    rate, f = pipe.sampling_rate_hz, pipe.codec.config.downsample_factor
    rows: dict[str, dict] = {}
    for name in args.records:
        record = read_record(Path(args.source) / name, channels=[args.channel])
        conditioned = pipe.preprocess(record.signal, record.sampling_rate_hz)
        start = int(args.start_minute * 60 * rate)
        x = conditioned[start : start + int(args.minutes * 60 * rate)]
        x = x[: len(x) // f * f].astype(np.float32)
        seconds = len(x) / rate
        for candidates, sweeps in SETTINGS:
            tic = time.perf_counter()
            codes = encode_long(pipe.codec, x, search=candidates, sweeps=sweeps)
            elapsed = time.perf_counter() - tic
            y = decode_long(pipe.codec, codes)
            prdn = float(prdn_percent(x[None], y[None])[0])  # the whole stretch as one window
            rows.setdefault(f"{candidates}x{sweeps}", {})[name] = {
                "prdn": prdn,
                "encode_real_time_factor": seconds / elapsed,
            }
            print(
                f"{name}: {candidates} candidates x {sweeps} sweeps: PRDN {prdn:.2f}%  encode "
                f"{seconds / elapsed:.1f}x real time",
                flush=True,
            )
    summary = {
        setting: {
            "mean_prdn": float(np.mean([r["prdn"] for r in per.values()])),
            "encode_real_time_factor": float(np.mean([r["encode_real_time_factor"] for r in per.values()])),
        }
        for setting, per in rows.items()
    }
    print(summary)
    payload = {key: getattr(args, key) for key in ("pipeline", "records", "channel", "start_minute", "minutes")}
    payload |= {"torch_threads": torch.get_num_threads(), "summary": summary, "per_record": rows}
    print(f"-> {save(args.results, payload)}")


if __name__ == "__main__":
    main()
