"""Rate and distortion of `tsvq compress` beside a wavelet transform coder, on recordings the shipped codec never
saw, every byte of each file counted. One scenario per database:

    .venv/bin/python -m benchmarks.rate_distortion                         # results/rate-distortion-ds2.{json,png}
    .venv/bin/python -m benchmarks.rate_distortion --scenario ptbxl-fold10  # results/rate-distortion-ptbxl-fold10.*

Both coders see the same input: each record's lead conditioned as the pipeline's training data (250 Hz,
0.5-40 Hz zero-phase band-pass). PRDN is tsvq's (`tsvq.compression.prdn_per_channel`: the whole record, mean
removed); PRD keeps the mean, as most papers report it; CR counts the record's own stored samples (MIT-BIH: 11
bits at 360 Hz) against the whole file. tsvq is measured as it writes files (entropy-coded where that makes the smaller
file) and with fixed-width codes, and as `tsvq compress --bitrate B` writes them for the rates of ``DETAIL_GRID``
(the codes plus a detail layer, `tsvq.detail`, filling the rate, or the layer alone where that is the lower
PRDN: ``stages`` 0, with beat templates subtracted first where they pay: ``beats``); the wavelet coder
(`benchmarks.wavelet_coder`) at tsvq's own bit rate on each record and on a grid of rates. Where a record's codes
alone take more than a rate (a 10-s ECG's header), tsvq has no point there: null.
Speed: seconds of ECG per second of compute on one torch thread, reading the record excluded (plain `compress`, and
`compress --bitrate` with its search over operating points).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks import wavelet_coder
from benchmarks.common import RESULTS, save
from benchmarks.mitbih import DS2
from tsvq.compressed_file import CompressedRecord
from tsvq.compression import prdn_per_channel
from tsvq.data import read_record
from tsvq.errors import DataError
from tsvq.pipeline import Pipeline

GRID = (100.0, 150.0, 200.0, 312.5, 625.0, 937.5)  # bit/s of the wavelet coder's curve
DETAIL_GRID = (150.0, 312.5, 625.0, 937.5)  # bit/s asked of `tsvq compress --bitrate` (codes + detail layer)


def ptbxl_fold(source: Path, fold: int = 10) -> list[str]:
    import csv

    with open(source / "ptbxl_database.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [
        row["filename_lr"]
        for row in rows
        if int(float(row["strat_fold"])) == fold and (source / f"{row['filename_lr']}.hea").is_file()
    ]


SCENARIOS = {  # results name, where the records are, which, the lead, the plot's title
    "mitbih-ds2": {
        "name": "rate-distortion-ds2",
        "source": "../shared/data/mitdb",
        "records": lambda source: DS2,
        "lead": "MLII",
        "title": "MIT-BIH DS2, MLII, 22 records (unseen patients)",
    },
    "ptbxl-fold10": {
        "name": "rate-distortion-ptbxl-fold10",
        "source": "../shared/data/ptbxl",
        "records": ptbxl_fold,
        "lead": "II",
        "title": "PTB-XL fold 10, lead II, 10-s ECGs (unseen patients)",
    },
}


def prd(reference: np.ndarray, reconstruction: np.ndarray) -> float:
    """PRD (%) with the mean kept, over the samples finite in both."""
    both = np.isfinite(reference) & np.isfinite(reconstruction)
    x, y = reference[both], reconstruction[both]
    return float(100 * np.sqrt(np.sum((x - y) ** 2) / np.sum(x**2)))


def point(
    reference: np.ndarray, reconstruction: np.ndarray, file_bytes: int, seconds: float, stored_bits_per_s: float
) -> dict:
    return {
        "bits_per_second": 8 * file_bytes / seconds,
        "prdn": prdn_per_channel(reference[:, None], reconstruction[:, None])[0],
        "prd": prd(reference, reconstruction),
        "compression_ratio": stored_bits_per_s * seconds / (8 * file_bytes),
    }


def measure_record(pipe: Pipeline, path: Path, lead: str) -> dict:
    record = read_record(path, channels=[lead], annotation_extensions=())
    stored = (record.adc_bits[0] if record.adc_bits else 16) * record.sampling_rate_hz  # the record's own bits/s
    return measure(pipe, stored, record)


def measure(pipe: Pipeline, stored: float, *recording, **options) -> dict:
    """tsvq's file and the wavelet coder (at tsvq's rate and on the grid) on one recording, given as to
    ``Pipeline.compress``: a ``Record``, or an ``(L, 1)`` signal and its rate, with ``options`` (its channel name,
    unit, input bits). Both code the input conditioned as the pipeline conditions it; every byte of either file
    counts. ``stored``: the recording's own bits per second, for the compression ratio."""
    signal, rate_hz = (recording[0].signal, recording[0].sampling_rate_hz) if len(recording) == 1 else recording
    reference = pipe.preprocess(signal, rate_hz)[:, 0].astype(np.float64)
    seconds = len(signal) / rate_hz
    start = time.perf_counter()
    compressed = pipe.compress(*recording, **options)
    data = compressed.to_bytes()
    compress_s = time.perf_counter() - start
    start = time.perf_counter()
    decoded = pipe.decompress(CompressedRecord.from_bytes(data))
    decompress_s = time.perf_counter() - start
    at_pipeline_rate = pipe.decompress(compressed, rate="pipeline").signal[: len(reference), 0]
    fixed = pipe.compress(*recording, entropy_coding=False, **options)
    tsvq = point(reference, at_pipeline_rate, len(data), seconds, stored) | {
        "entropy_coded": compressed.entropy is not None,
        "bits_per_code": compressed.bits_per_code(),
        "model_bits_per_code": None if compressed.model_bits is None else compressed.model_bits / compressed.num_codes,
        "compress_real_time_factor": seconds / compress_s,
        "decompress_real_time_factor": seconds / decompress_s,
        "decoded_samples": int(len(decoded.signal)),
    }
    at_rates = {}
    for rate in DETAIL_GRID:
        start = time.perf_counter()
        try:
            chosen, chosen_point = pipe.compress_at(*recording, bitrate=rate, **options)
        except DataError:  # the codes alone are over this rate
            at_rates[str(rate)] = None
            continue
        written = chosen.to_bytes()
        chosen_s = time.perf_counter() - start
        restored = pipe.decompress(CompressedRecord.from_bytes(written), rate="pipeline").signal[: len(reference), 0]
        at_rates[str(rate)] = point(reference, restored, len(written), seconds, stored) | {
            "stages": chosen_point["stages"],  # 0: the detail layer alone (the codes did not pay for themselves)
            "detail_step": chosen_point["detail_step"],
            "beats": chosen_point["beats"],  # the layer subtracted beat templates (tsvq.beats)
            "compress_real_time_factor": seconds / chosen_s,
        }
    wavelet_bytes, wavelet = wavelet_coder.at_rate(reference, 8 * len(data))
    grid = {}
    for rate in GRID:
        grid_bytes, grid_signal = wavelet_coder.at_rate(reference, rate * seconds)
        grid[str(rate)] = point(reference, grid_signal, len(grid_bytes), seconds, stored)
    return {
        "seconds": seconds,
        "tsvq": tsvq,
        "tsvq_fixed_width": point(reference, at_pipeline_rate, fixed.size_bytes(), seconds, stored),
        "tsvq_at_rate": at_rates,
        "wavelet_at_tsvq_rate": point(reference, wavelet, len(wavelet_bytes), seconds, stored),
        "wavelet": grid,
    }


def summarise(rows: dict) -> dict:
    def mean(*keys):
        values = []
        for row in rows.values():
            for key in keys:
                row = row[key]
            values.append(row)
        return float(np.mean(values))

    seconds = sum(r["seconds"] for r in rows.values())
    summary = {
        name: {k: mean(name, k) for k in ("bits_per_second", "prdn", "prd", "compression_ratio")}
        for name in ("tsvq", "tsvq_fixed_width", "wavelet_at_tsvq_rate")
    }
    summary["tsvq"]["bits_per_code"] = mean("tsvq", "bits_per_code")
    coded = [r["tsvq"]["model_bits_per_code"] for r in rows.values() if r["tsvq"]["entropy_coded"]]
    summary["tsvq"] |= {
        "entropy_coded_records": len(coded),
        "records": len(rows),
        "model_bits_per_code_of_entropy_coded": float(np.mean(coded)) if coded else None,
    }
    for key in ("compress_real_time_factor", "decompress_real_time_factor"):  # whole hours over whole compute
        summary["tsvq"][key] = seconds / sum(r["seconds"] / r["tsvq"][key] for r in rows.values())
    summary["wavelet"] = {
        rate: {k: mean("wavelet", rate, k) for k in ("bits_per_second", "prdn", "prd")} for rate in map(str, GRID)
    }
    summary["prdn_tsvq_over_wavelet"] = summary["tsvq"]["prdn"] / summary["wavelet_at_tsvq_rate"]["prdn"]
    summary["tsvq_at_rate"] = {}
    for rate in map(str, DETAIL_GRID):  # over the records where tsvq has a point at this rate
        coded = [r for r in rows.values() if r["tsvq_at_rate"][rate] is not None]
        if not coded:
            summary["tsvq_at_rate"][rate] = None
            continue
        figures = {
            k: float(np.mean([r["tsvq_at_rate"][rate][k] for r in coded])) for k in ("bits_per_second", "prdn", "prd")
        }
        wavelet_prdn = float(np.mean([r["wavelet"][rate]["prdn"] for r in coded]))
        summary["tsvq_at_rate"][rate] = figures | {
            "records": len(coded),
            "records_without_codes": sum(r["tsvq_at_rate"][rate]["stages"] == 0 for r in coded),
            "records_with_beat_templates": sum(r["tsvq_at_rate"][rate]["beats"] for r in coded),
            "compress_real_time_factor": sum(r["seconds"] for r in coded)
            / sum(r["seconds"] / r["tsvq_at_rate"][rate]["compress_real_time_factor"] for r in coded),
            "wavelet_prdn": wavelet_prdn,
            "prdn_over_wavelet": figures["prdn"] / wavelet_prdn,
        }
    return summary


def plot(summary: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    rates = [summary["wavelet"][r]["bits_per_second"] for r in map(str, GRID)]
    ax.plot(
        rates,
        [summary["wavelet"][r]["prdn"] for r in map(str, GRID)],
        "o-",
        color="0.4",
        label=f"wavelet coder ({wavelet_coder.WAVELET}, entropy-coded)",
    )
    points = [summary["tsvq_at_rate"][r] for r in map(str, DETAIL_GRID) if summary["tsvq_at_rate"][r] is not None]
    ax.plot(
        [p["bits_per_second"] for p in points],
        [p["prdn"] for p in points],
        "D-",
        color="tab:red",
        label="tsvq compress --bitrate (codes + detail layer, or the layer alone with beat templates)",
    )
    for name, marker, label in (
        ("tsvq", "*", "tsvq compress (entropy-coded)"),
        ("tsvq_fixed_width", "s", "tsvq, fixed-width codes"),
        ("wavelet_at_tsvq_rate", "x", "wavelet coder at tsvq's rate"),
    ):
        ax.plot(
            summary[name]["bits_per_second"],
            summary[name]["prdn"],
            marker,
            markersize=11 if marker == "*" else 7,
            label=label,
        )
    ax.set(xscale="log", yscale="log", xlabel="bit/s (whole file)", ylabel="mean PRDN (%)", title=title)
    ax.set_xticks(GRID, [f"{rate:g}" for rate in GRID])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # log-axis minor labels overlap
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.17), ncol=2)  # below: clear of the curves
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="mitbih-ds2", help="which database")
    parser.add_argument("--pipeline", default="ecg-single-lead", help="pipeline folder or shipped name")
    parser.add_argument("--source", help="folder of the database (default: the scenario's, in ../shared/data)")
    args = parser.parse_args()
    scenario = SCENARIOS[args.scenario]
    source = Path(args.source or scenario["source"])
    torch.set_num_threads(1)
    pipe = Pipeline.from_pretrained(args.pipeline)
    rows = {}
    for name in scenario["records"](source):
        rows[name] = row = measure_record(pipe, source / name, scenario["lead"])
        print(
            f"{name}: tsvq {row['tsvq']['bits_per_second']:.1f} bit/s PRDN {row['tsvq']['prdn']:.2f}% | wavelet at "
            f"that rate {row['wavelet_at_tsvq_rate']['prdn']:.2f}% | fixed-width "
            f"{row['tsvq_fixed_width']['bits_per_second']:.1f} bit/s | --bitrate: "
            + ", ".join(
                f"{rate}: {p['prdn']:.2f}% (wavelet {row['wavelet'][rate]['prdn']:.2f}%)"
                for rate, p in row["tsvq_at_rate"].items()
                if p is not None
            ),
            flush=True,
        )
    summary = summarise(rows)
    save(
        scenario["name"],
        {
            "pipeline": args.pipeline,
            "summary": summary,
            "records": rows,
        },
    )
    plot(summary, RESULTS / f"{scenario['name']}.png", scenario["title"])
    print({k: summary[k] for k in ("tsvq", "wavelet_at_tsvq_rate", "prdn_tsvq_over_wavelet", "tsvq_at_rate")})


if __name__ == "__main__":
    main()
