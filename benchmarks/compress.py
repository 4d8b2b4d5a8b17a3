"""Whole-record compression (`tsvq compress`) of MIT-BIH DS2 records: speed, size and error, and window seams.

    .venv/bin/python -m benchmarks.compress --pipeline ecg-single-lead --source ../shared/data/mitdb

For each DS2 record (MLII, 30 minutes at 360 Hz): the real-time factor of compress and decompress (seconds of ECG
per second of compute, reading and writing excluded), the file's size, bit rate and compression ratio (11-bit
samples at 360 Hz against the whole file), and PRDN against the input band-limited like the codec's training data.

Window seams: the same band-limited record is also coded the naive way, cut into the codec's windows and each
window coded on its own. The error is then measured by position inside the window grid: the first and last 10% of
each window ("edges") against its middle 80%. Whole-record coding (the codec's receptive field as context) should
show no edge effect; independent windows show how large it would be.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import save
from benchmarks.mitbih import BEAT_AFTER_S, BEAT_BEFORE_S, DS2
from tsvq.codec.metrics import codebook_report, prdn
from tsvq.compressed_file import CompressedRecord
from tsvq.data import read_record
from tsvq.data.windows import AAMI_CLASSES
from tsvq.pipeline import Pipeline

EDGE_FRACTION = 0.1


def beat_segment_prdn(
    reference: np.ndarray,
    reconstruction: np.ndarray,
    rate: float,
    annotation,
    native_rate: float,
    found: dict[str, list[float]],
) -> None:
    """Append the PRDN of every annotated beat's segment to ``found[AAMI class]``."""
    before, after = int(BEAT_BEFORE_S * rate), int(BEAT_AFTER_S * rate)
    beats = np.round(np.asarray(annotation.sample) * rate / native_rate).astype(int)
    for beat, symbol in zip(beats, annotation.symbol):
        if symbol not in AAMI_CLASSES or beat - before < 0 or beat + after > len(reference):
            continue
        x, y = reference[beat - before : beat + after], reconstruction[beat - before : beat + after]
        if np.isfinite(x).all() and np.isfinite(y).all():
            found.setdefault(AAMI_CLASSES[symbol], []).append(float(prdn(x, y)[0]))


def codebook_health(codes: list[np.ndarray], num_codes: int) -> dict:
    report = codebook_report(np.concatenate(codes), num_codes)
    return {
        "usage": report["usage_percent"] / 100,
        "perplexity": report["perplexity"],
        "codes": int(sum(map(len, codes))),
    }


def error_by_window_position(reference: np.ndarray, reconstruction: np.ndarray, window: int) -> dict:
    """Relative RMS error (% of the reference's standard deviation) at the edges and in the middle of a window grid."""
    usable = (len(reference) // window) * window
    x, y = reference[:usable, 0], reconstruction[:usable, 0]
    finite = np.isfinite(x) & np.isfinite(y)
    position = np.arange(usable) % window
    edge = int(EDGE_FRACTION * window)
    at_edge = (position < edge) | (position >= window - edge)
    scale = np.std(x[finite])

    def relative(mask):
        return float(100 * np.sqrt(np.mean((x[mask & finite] - y[mask & finite]) ** 2)) / scale)

    return {"edge_percent": relative(at_edge), "middle_percent": relative(~at_edge)}


def independent_windows(pipe: Pipeline, conditioned: np.ndarray) -> np.ndarray:
    """The naive alternative: the band-limited record cut into windows, each encoded and decoded on its own."""
    window = pipe.window_length
    usable = (len(conditioned) // window) * window
    windows = conditioned[:usable].reshape(-1, window, conditioned.shape[1])
    windows = windows[np.isfinite(windows).all(axis=(1, 2))] if np.isnan(windows).any() else windows
    codes = pipe.codec.encode_windows(windows)
    return pipe.codec.decode_codes(codes).reshape(-1, conditioned.shape[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pipeline", required=True, help="pipeline folder (a codec trained on MIT-BIH DS1)")
    parser.add_argument("--source", default="../shared/data/mitdb", help="folder of the MIT-BIH records")
    parser.add_argument("--records", nargs="+", default=DS2, help="records to compress (default: the 22 DS2 records)")
    parser.add_argument("--search", type=int, default=0, help="code search candidates (0: nearest codes)")
    parser.add_argument("--results", default="compress", help="name of the results file")
    args = parser.parse_args()

    pipe = Pipeline.from_pretrained(args.pipeline)
    rows, beats, all_codes = {}, {}, []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.records:
            record = read_record(Path(args.source) / name, channels=["MLII"])
            start = time.perf_counter()
            compressed = pipe.compress(record, search=args.search)
            compress_s = time.perf_counter() - start
            path = compressed.save(Path(tmp) / f"{name}.tsvqz")
            start = time.perf_counter()
            pipe.decompress(CompressedRecord.load(path))
            decompress_s = time.perf_counter() - start
            conditioned = pipe.preprocess(record.signal, record.sampling_rate_hz)
            whole = pipe.decompress(compressed, rate="pipeline").signal
            naive = independent_windows(pipe, conditioned)
            if "atr" in record.annotations:
                beat_segment_prdn(
                    conditioned, whole, pipe.sampling_rate_hz, record.annotations["atr"], record.sampling_rate_hz, beats
                )
            all_codes += [c.reshape(-1) if c.ndim == 1 else c[:, 0] for c in compressed.codes[0]]
            rows[name] = {
                "seconds": compressed.duration_s,
                "bytes": path.stat().st_size,
                "bits_per_second": compressed.bits_per_second(),
                "compression_ratio": compressed.compression_ratio(),
                "prdn": pipe.compression_prdn(compressed, record)["MLII"],
                "compress_real_time_factor": compressed.duration_s / compress_s,
                "decompress_real_time_factor": compressed.duration_s / decompress_s,
                "whole_record_by_position": error_by_window_position(conditioned, whole, pipe.window_length),
                "independent_windows_by_position": error_by_window_position(
                    conditioned[: len(naive)], naive, pipe.window_length
                ),
            }
            r = rows[name]
            print(
                f"{name}: PRDN {r['prdn']:.2f}%  CR {r['compression_ratio']:.2f}  {r['bits_per_second']:.1f} bit/s  "
                f"RTF compress {r['compress_real_time_factor']:.0f}x decompress "
                f"{r['decompress_real_time_factor']:.0f}x  "
                f"edge/middle whole {r['whole_record_by_position']['edge_percent']:.2f}/"
                f"{r['whole_record_by_position']['middle_percent']:.2f}  windows "
                f"{r['independent_windows_by_position']['edge_percent']:.2f}/"
                f"{r['independent_windows_by_position']['middle_percent']:.2f}",
                flush=True,
            )

    def mean(key, sub=None):
        return float(np.mean([r[key][sub] if sub else r[key] for r in rows.values()]))

    seconds = sum(r["seconds"] for r in rows.values())
    summary = {
        "records": len(rows),
        "hours": seconds / 3600,
        "mean_prdn": mean("prdn"),
        "compression_ratio_whole": sum(11 * 360 * r["seconds"] for r in rows.values())
        / sum(8 * r["bytes"] for r in rows.values()),
        "mean_bits_per_second": mean("bits_per_second"),
        "compress_real_time_factor": seconds
        / sum(r["seconds"] / r["compress_real_time_factor"] for r in rows.values()),
        "decompress_real_time_factor": seconds
        / sum(r["seconds"] / r["decompress_real_time_factor"] for r in rows.values()),
        "whole_record_edge_percent": mean("whole_record_by_position", "edge_percent"),
        "whole_record_middle_percent": mean("whole_record_by_position", "middle_percent"),
        "independent_windows_edge_percent": mean("independent_windows_by_position", "edge_percent"),
        "independent_windows_middle_percent": mean("independent_windows_by_position", "middle_percent"),
        "beat_class_prdn": {c: {"prdn": float(np.mean(v)), "beats": len(v)} for c, v in sorted(beats.items())},
        "codebook": codebook_health(all_codes, pipe.codec.config.num_codes),
        "parameters": sum(p.numel() for p in pipe.codec.parameters()),
    }
    print(summary)
    out = save(
        args.results,
        {
            "pipeline": args.pipeline,
            "search": args.search,
            "torch_threads": torch.get_num_threads(),
            "summary": summary,
            "records": rows,
        },
    )
    print(f"-> {out}")


if __name__ == "__main__":
    main()
