"""The pretrained pipeline on PTB-XL ECGs it never saw (fold 10, lead II), and its speed on the 2-core CPU.

    .venv/bin/python -m benchmarks.compress --pipeline ecg-single-lead --results compress-pretrained-ds2
    .venv/bin/python -m benchmarks.compress --pipeline ecg-single-lead --search 8 \
        --results compress-pretrained-ds2-search8
    .venv/bin/python -m benchmarks.pretrained --source ../shared/data/ptbxl
    .venv/bin/python -m benchmarks.pretrained --source ../shared/data/ptbxl --search 8 --no-speed \
        --results pretrained-search8

Each fold-10 ECG (10 s, 100 Hz) is compressed whole and decompressed; PRDN against the input band-limited like
the training data, per ECG and on average, with the compression ratio against PTB-XL's 16-bit samples at 100 Hz.
Speed: encode and decode real-time factors (seconds of ECG per second of compute) of one hour of ECG, batch of
one record, and the parameter count. ``--search K`` compresses with code search over K candidates (same bit rate
and decoder; its speed on whole records is in compress.py's results). The MIT-BIH DS2 figures come from
benchmarks/compress.py.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import save
from tsvq.codec.streaming import decode_long, encode_long
from tsvq.data import read_record
from tsvq.pipeline import Pipeline


def fold_records(source: Path, fold: int) -> list[str]:
    with open(source / "ptbxl_database.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [
        row["filename_lr"]
        for row in rows
        if int(float(row["strat_fold"])) == fold and (source / f"{row['filename_lr']}.hea").is_file()
    ]


def real_time_factors(pipe: Pipeline, seconds: float = 3600.0) -> dict:
    """Encode and decode one long stretch (band-limited noise shaped like ECG amplitude) and time each."""
    rate = pipe.sampling_rate_hz
    length = int(seconds * rate) // pipe.codec.config.downsample_factor * pipe.codec.config.downsample_factor
    x = (np.random.default_rng(0).standard_normal((length, 1)) * 0.3).astype(np.float32)
    start = time.perf_counter()
    codes = encode_long(pipe.codec, x)
    encode_s = time.perf_counter() - start
    start = time.perf_counter()
    decode_long(pipe.codec, codes)
    decode_s = time.perf_counter() - start
    return {
        "seconds_of_signal": seconds,
        "encode_real_time_factor": seconds / encode_s,
        "decode_real_time_factor": seconds / decode_s,
    }


def module_parameters(obj) -> int:
    """Parameters of every torch module an object holds (a prior's network, whatever its attribute is called)."""
    return sum(p.numel() for m in vars(obj).values() if isinstance(m, torch.nn.Module) for p in m.parameters())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pipeline", default="ecg-single-lead")
    parser.add_argument("--source", default="../shared/data/ptbxl")
    parser.add_argument("--fold", type=int, default=10)
    parser.add_argument("--lead", default="II")
    parser.add_argument("--search", type=int, default=0, help="code search candidates (0: nearest codes)")
    parser.add_argument("--no-speed", action="store_true", help="skip the timing (when the machine is shared)")
    parser.add_argument("--results", default="pretrained")
    args = parser.parse_args()

    pipe = Pipeline.from_pretrained(args.pipeline)
    source = Path(args.source)
    rows = {}
    for name in fold_records(source, args.fold):
        record = read_record(source / name, channels=[args.lead], annotation_extensions=())
        compressed = pipe.compress(record, input_bits=16, search=args.search)
        rows[name] = {
            "prdn": pipe.compression_prdn(compressed, record)[args.lead],
            "compression_ratio": compressed.compression_ratio(),
            "bytes": compressed.size_bytes(),
        }
    prdn = np.array([r["prdn"] for r in rows.values()])
    summary = {
        "ptbxl_fold": args.fold,
        "lead": args.lead,
        "ecgs": len(rows),
        "mean_prdn": float(prdn.mean()),
        "median_prdn": float(np.median(prdn)),
        "worst_prdn": float(prdn.max()),
        "mean_compression_ratio_16bit_100hz": float(np.mean([r["compression_ratio"] for r in rows.values()])),
        "parameters": {"codec": sum(p.numel() for p in pipe.codec.parameters())}
        | {name: module_parameters(prior) for name, prior in pipe.priors.items()},
    }
    if not args.no_speed:
        summary["speed"] = real_time_factors(pipe)
    print(summary)
    payload = {"pipeline": args.pipeline, "search": args.search, "torch_threads": torch.get_num_threads()}
    print(f"-> {save(args.results, payload | {'summary': summary, 'ecgs': rows})}")


if __name__ == "__main__":
    main()
