"""A store too large to hold in memory: does memory stay flat, and does the loader keep up with the codec?

    .venv/bin/python -m benchmarks.scale_store      # rewrites results/scale-store.json (about 10 minutes, 2 GB disk)

A generated source (no download) of 200 subjects' 68-minute single-lead recordings at 250 Hz becomes a store of
200,000 windows of 4.096 s (0.8 GB of float32, in 128-MiB shards). Each step runs in a fresh process, so its peak
resident memory is its own (`ru_maxrss`, beside the same process's resident memory after its imports):

- prepare with 1 and 2 workers, and as two parts (`--part 0/2`, `--part 1/2`, one after the other here, side by
  side on a cluster) then `merge-stores`, checked to hold the same windows as one job;
- one epoch of the training split through the loader the training loop uses (batch 128, shuffled): windows/s;
- 20 training steps of the MIT-BIH recipe's codec on the same store: the windows/s it consumes on this machine.

It ends with what these rates say for MIMIC-IV-ECG (about 800,000 ten-second 12-lead ECGs), assumptions named.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import save

RECORDS, RATE, WINDOW = 200, 250.0, 1024
WINDOWS_PER_RECORD = 1000
SHARD_MB = 128
BATCH = 128
MIMIC = {"ecgs": 800_000, "seconds": 10.0, "leads": 12, "rate_hz": 100.0}  # as the PTB-XL recipe keeps them


class GeneratedSource:
    """``records`` subjects' recordings made on demand from their index (a pulse train through a QRS-like kernel,
    with wander and noise): as many windows as wanted, none of them held longer than its record."""

    description = "generated"

    def __init__(self, records: int = RECORDS, seconds: float = WINDOWS_PER_RECORD * WINDOW / RATE):
        self.records, self.seconds = records, seconds

    def references(self):
        from tsvq.data import RecordRef

        return [RecordRef(f"gen{i:04d}", f"subject{i:04d}", {}, where=f"generated[{i}]") for i in range(self.records)]

    def check(self, ref) -> None:
        pass

    def read(self, ref, options):
        from tsvq.data import Record

        i = int(ref.name[3:])
        rng = np.random.default_rng(i)
        n = int(self.seconds * RATE)
        beat_at = np.cumsum(rng.normal(RATE * 60 / rng.uniform(55, 95), 10, size=n // 60).astype(int).clip(60))
        beats = np.zeros(n)
        beats[beat_at[beat_at < n]] = 1.0
        t = np.arange(-25, 26) / RATE
        kernel = np.exp(-(t**2) / 2e-4) - 0.3 * np.exp(-((t - 0.04) ** 2) / 4e-4)
        signal = np.convolve(beats, kernel, mode="same") + 0.1 * np.sin(2 * np.pi * 0.25 * np.arange(n) / RATE)
        signal += rng.normal(0, 0.02, n)
        return Record(
            name=ref.name,
            path=Path(ref.where),
            group=ref.group,
            sampling_rate_hz=RATE,
            signal=signal[:, None],
            channel_names=["ECG"],
            units=["mV"],
            annotations={},
            comments=[],
        )

    def fingerprint(self) -> list:
        return [self.description, self.records, self.seconds]


def _config():
    from tsvq.data import PrepareConfig

    return PrepareConfig(source="generated", val_fraction=0.1, test_fraction=0.1)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _resident_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def run_step(step: str, folder: Path, workers: int) -> dict:
    """One step in this process; what it measured."""
    import torch

    from tsvq.data import WindowStore, prepare
    from tsvq.data.parts import merge_stores

    torch.set_num_threads(1)
    before, started = _resident_mb(), time.perf_counter()
    result: dict = {}
    sources = [GeneratedSource()]
    if step == "prepare":
        store = prepare(
            _config(), folder / f"store-{workers}", sources=sources, workers=workers, shard_mb=SHARD_MB, progress=False
        )
        result = {"windows": store.num_windows, "shards": len(store.shards)}
    elif step == "parts":
        timings = []
        for i in range(2):
            start = time.perf_counter()
            prepare(
                _config(),
                folder / f"part{i}",
                sources=sources,
                workers=workers,
                part=(i, 2),
                shard_mb=SHARD_MB,
                progress=False,
            )
            timings.append(time.perf_counter() - start)
        start = time.perf_counter()
        merged = merge_stores([folder / "part0", folder / "part1"], folder / "merged")
        result = {"part_seconds": timings, "merge_seconds": time.perf_counter() - start}
        whole = WindowStore(folder / "store-1")
        same = all(
            np.array_equal(merged.windows[chunk], whole.windows[chunk])
            for chunk in np.array_split(np.arange(whole.num_windows), 100)
        )
        result["same_windows_as_one_job"] = bool(same and merged.num_windows == whole.num_windows)
    elif step == "epoch":
        from torch.utils.data import DataLoader

        dataset = WindowStore(folder / "store-1").dataset("train")
        loader = DataLoader(dataset, batch_size=BATCH, shuffle=True, generator=torch.Generator().manual_seed(0))
        count = sum(len(batch["signal"]) for batch in loader)
        result = {"windows": count, "windows_per_s": count / (time.perf_counter() - started)}
    workers_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the largest worker process
    return result | {
        "seconds": time.perf_counter() - started,
        "resident_after_imports_mb": before,
        "peak_resident_mb": _peak_mb(),
        **({"peak_worker_resident_mb": workers_peak} if workers_peak else {}),
    }


def _in_fresh_process(step: str, folder: Path, workers: int = 1) -> dict:
    command = [sys.executable, "-m", "benchmarks.scale_store", "--step", step, "--folder", str(folder)]
    done = subprocess.run([*command, "--workers", str(workers)], capture_output=True, text=True, check=True)
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"{step} ({workers} worker(s)): {measured}", flush=True)
    return measured


def _codec_windows_per_s(folder: Path) -> dict:
    """The MIT-BIH recipe's codec (batch 128) trained for 20 steps on the generated store, on this machine."""
    out = folder / "codec"
    subprocess.run(
        [sys.executable, "-m", "tsvq.cli", "train", "codec", "--config", "recipes/mitbih/codec.yaml", "--store",
         str(folder / "store-1"), "--output-dir", str(out), "--set", "training.max_steps=20",
         "training.eval_every=1000", "training.checkpoint_every=1000", "training.warmup_steps=0"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    summary = json.loads((out / "training_summary.json").read_text())
    return {"recipe": "recipes/mitbih/codec.yaml", "steps": summary["steps"], "windows_per_s": summary["windows_per_s"]}


def mimic_extrapolation(loader_windows_per_s: float, epoch_peak_mb: float) -> dict:
    """MIMIC-IV-ECG from the rates measured here and on PTB-XL (results/scale-prepare.json)."""
    ptbxl = json.loads(Path("benchmarks/results/scale-prepare.json").read_text())["scenarios"]["ptbxl"]["runs"]
    ecgs_per_s = {workers: run["records_per_s"] for workers, run in ptbxl.items()}
    store_bytes = MIMIC["ecgs"] * MIMIC["seconds"] * MIMIC["leads"] * MIMIC["rate_hz"] * 4
    loader_bytes_per_s = loader_windows_per_s * WINDOW * 4
    return {
        "assumptions": (
            "MIMIC-IV-ECG prepared as the PTB-XL recipe prepares PTB-XL (12 leads as channels at 100 Hz, one 10-s "
            "window per ECG, float32), at the PTB-XL recipe's measured ECGs/s per worker (it reads the 100-Hz "
            "files; MIMIC-IV-ECG ships 500 Hz only, which costs more to read and resample: the hours are a lower "
            "bound); parts scale with machines as workers do with cores (records are independent); the loader "
            "moves bytes at the rate measured here on 4-KB windows; memory as measured on the 200k-window store"
        ),
        "store_gb": store_bytes / 1e9,
        "prepare_hours_one_job": {w: MIMIC["ecgs"] / r / 3600 for w, r in ecgs_per_s.items()},
        "prepare_hours_on_16_jobs_of_2_workers": MIMIC["ecgs"] / ecgs_per_s[max(ecgs_per_s)] / 16 / 3600,
        "loader_mb_per_s_one_process": loader_bytes_per_s / 1e6,
        "loader_epoch_minutes_one_process": store_bytes / loader_bytes_per_s / 60,
        "peak_resident_mb_of_an_epoch": epoch_peak_mb,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--step", choices=["prepare", "parts", "epoch"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        print(json.dumps(run_step(args.step, Path(args.folder), args.workers)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        prepared = {str(w): _in_fresh_process("prepare", folder, w) for w in (1, 2)}
        parts = _in_fresh_process("parts", folder, 2)
        epoch = _in_fresh_process("epoch", folder)
        codec = _codec_windows_per_s(folder)
        store_bytes = sum(f.stat().st_size for f in (folder / "store-1").glob("windows-*.f32"))
    total = RECORDS * WINDOWS_PER_RECORD
    payload = {
        "store": {"windows": total, "window_samples": WINDOW, "gb": store_bytes / 1e9, "shard_mb": SHARD_MB},
        "prepare": {
            w: m | {"windows_per_s": total / m["seconds"], "records_per_s": RECORDS / m["seconds"]}
            for w, m in prepared.items()
        },
        "parts": parts,
        "epoch": epoch,
        "codec": codec,
        "loader_over_codec": epoch["windows_per_s"] / codec["windows_per_s"],
        "mimic_iv_ecg": mimic_extrapolation(epoch["windows_per_s"], epoch["peak_resident_mb"]),
    }
    print(f"-> {save('scale-store', payload)}")


if __name__ == "__main__":
    main()
