"""MIT-BIH inter-patient codec figures: a codec trained on DS1, measured on the 22 DS2 patients (MLII).

    tsvq prepare --config recipes/mitbih/prepare.yaml --source ../shared/data/mitdb --out runs/mitbih/store
    accelerate launch -m tsvq.cli train codec --config recipes/mitbih/codec.yaml          # and codec-rvq.yaml
    .venv/bin/python -m benchmarks.mitbih --store runs/mitbih/store --codec runs/mitbih/codec/model
    .venv/bin/python -m benchmarks.mitbih --store runs/mitbih/store --codec runs/mitbih/codec-rvq/model --rd

Reports per DS2 patient and on average: PRDN at the codec's bit rate, with the compression ratio in the
database's own terms (11-bit samples at 360 Hz: 3960 bit/s per channel); PRDN of beat-centred segments per AAMI
class (N, S, V, F: ventricular beats are where codecs fail); held-out codebook usage and perplexity. With ``--rd``
a residual-VQ codec is decoded with its first 1..Q stages: one model, a whole rate-distortion curve.
Targets (issue 21): mean DS2 PRDN <= 5% with one codebook at CR >= 10; <= 2% at CR >= 4 on the RD curve.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import wfdb

from benchmarks.common import save
from tsvq.codec import VQVAE
from tsvq.codec.metrics import codebook_report, prdn
from tsvq.data import WindowStore
from tsvq.data.windows import AAMI_CLASSES
from tsvq.safe_loading import load_model

DS2 = ("100 103 105 111 113 117 121 123 200 202 210 212 213 214 219 221 222 228 231 232 233 234").split()
STORED_BITS_PER_SECOND = 11 * 360  # one MIT-BIH channel as the database stores it
BEAT_BEFORE_S, BEAT_AFTER_S = 0.25, 0.45  # a beat-centred segment: P wave to the end of T


def ds2_mlii(store: WindowStore) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, tuple[str, float]]]:
    """Test windows of the DS2 records' MLII lead: windows, record names, start samples, and each record's path
    (without extension) and native rate."""
    records = store.manifest["records"]
    rows = store.split_indices("test")
    entry = np.array([r["name"] for r in records])[store.index["record"][rows]]
    keep = np.array([e.endswith(":MLII") and e.split(":")[0] in DS2 for e in entry])
    if not keep.any():
        raise SystemExit(f"{store.path}: no DS2 MLII test windows; prepare with recipes/mitbih/prepare.yaml")
    files = {r["name"].split(":")[0]: (r["file"][: -len(".hea")], r["native_rate_hz"]) for r in records}
    rows = rows[keep]
    return np.asarray(store.windows[rows]), entry[keep], store.index["start"][rows], files


def encode_decode(codec: VQVAE, windows: np.ndarray, search: int, stages: list[int], batch_size: int = 256):
    """Codes of every window, and for each stage count ``q`` the reconstruction from the first ``q`` stages."""
    codes = codec.encode_windows(windows, batch_size=batch_size, search=search)
    if codec.config.num_quantizers == 1:
        codes = codes[..., None]
    return codes, {q: codec.decode_codes(codes[..., :q], batch_size) for q in stages}


def beat_class_prdn(windows, reconstruction, entries, starts, files, rate: float) -> dict:
    """Mean PRDN of beat-centred segments per AAMI class, over every annotated beat that fits inside a window."""
    before, after = int(BEAT_BEFORE_S * rate), int(BEAT_AFTER_S * rate)
    found: dict[str, list[float]] = {}
    record_of_window = np.array([e.split(":")[0] for e in entries])
    for record in sorted(set(record_of_window)):
        path, native = files[record]
        annotation = wfdb.rdann(path, "atr")
        beats = np.round(np.asarray(annotation.sample) * rate / native).astype(int)
        symbols = np.array(annotation.symbol)
        for w in np.flatnonzero(record_of_window == record):
            inside = (beats - before >= starts[w]) & (beats + after <= starts[w] + windows.shape[1])
            for beat, symbol in zip(beats[inside] - starts[w], symbols[inside]):
                if symbol in AAMI_CLASSES:
                    segment = slice(beat - before, beat + after)
                    value = prdn(windows[w, segment][None], reconstruction[w, segment][None])[0]
                    found.setdefault(AAMI_CLASSES[symbol], []).append(float(value))
    return {c: {"prdn": float(np.mean(v)), "beats": len(v)} for c, v in sorted(found.items())}


def measure(codec: VQVAE, windows, entries, starts, files, search: int, stages: list[int]) -> list[dict]:
    started = time.time()
    codes, reconstructions = encode_decode(codec, windows, search, stages)
    seconds = time.time() - started
    rate = codec.config.sampling_rate_hz
    results = []
    for q, reconstruction in reconstructions.items():
        per_window = prdn(windows, reconstruction)
        per_patient = {e.split(":")[0]: float(per_window[entries == e].mean()) for e in sorted(set(entries))}
        bits = codec.bits_per_second() * q / codec.config.num_quantizers
        health = codebook_report(codes[..., :q], codec.config.num_codes)
        results.append(
            {
                "stages": q,
                "search": search,
                "bits_per_second": bits,
                "compression_ratio_11bit_360hz": STORED_BITS_PER_SECOND / bits,
                "mean_prdn_over_patients": float(np.mean(list(per_patient.values()))),
                "median_prdn_over_patients": float(np.median(list(per_patient.values()))),
                "worst_patient": max(per_patient, key=per_patient.get),
                "per_patient_prdn": per_patient,
                "beat_class_prdn": beat_class_prdn(windows, reconstruction, entries, starts, files, rate),
                "held_out_usage_percent": health["usage_percent"],
                "held_out_perplexity": health["perplexity"],
                "windows": int(len(windows)),
                "encode_decode_seconds": round(seconds, 1),
                "seconds_of_ecg_per_second": round(len(windows) * windows.shape[1] / rate / seconds, 1),
            }
        )
        print(
            f"  {q} stage(s), search {search}: {bits:.1f} bit/s (CR {STORED_BITS_PER_SECOND / bits:.1f}), mean DS2 "
            "PRDN "
            f"{results[-1]['mean_prdn_over_patients']:.2f}%, usage {health['usage_percent']:.1f}%, "
            f"perplexity {health['perplexity']:.0f}, beats "
            f"{ ({c: round(v['prdn'], 2) for c, v in results[-1]['beat_class_prdn'].items()}) }",
            flush=True,
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", default="runs/mitbih/store", help="window store of recipes/mitbih/prepare.yaml")
    parser.add_argument("--codec", nargs="+", default=["runs/mitbih/codec/model"], help="trained codec folder(s)")
    parser.add_argument(
        "--rd", action="store_true", help="residual VQ: decode with 1..Q stages (a rate-distortion curve)"
    )
    parser.add_argument("--search", type=int, nargs="+", default=[0], help="code search candidates (0: nearest codes)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--results", default="mitbih", help="results file name under benchmarks/results/")
    parser.add_argument("--note", default="", help="what was trained, where and how long (kept in the results)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    store = WindowStore(args.store)
    windows, entries, starts, files = ds2_mlii(store)
    print(f"{len(windows)} DS2 MLII test windows of {len(set(entries))} patients")
    runs = {}
    for folder in args.codec:
        codec = load_model(VQVAE, folder).eval()
        summary = Path(folder).parent / "training_summary.json"
        stages = list(range(1, codec.config.num_quantizers + 1)) if args.rd else [codec.config.num_quantizers]
        print(f"{folder}: {sum(p.numel() for p in codec.parameters()) / 1e6:.2f} M parameters")
        runs[folder] = {
            "model": {
                k: v for k, v in codec.config.items() if not k.startswith("_") and k not in ("norm_mean", "norm_std")
            },
            "parameters": sum(p.numel() for p in codec.parameters()),
            "training_summary": summary.read_text() if summary.exists() else None,
            "results": [
                r for search in args.search for r in measure(codec, windows, entries, starts, files, search, stages)
            ],
        }
    print(f"results: {save(args.results, {'note': args.note, 'store': str(store.path), 'runs': runs})}")


if __name__ == "__main__":
    main()


def noisy_episodes(annotation: wfdb.Annotation, channel: int) -> np.ndarray:
    """``(K, 2)`` sample ranges where the annotators marked ``channel`` noisy or unreadable: MIT-BIH's signal
    quality annotations (``~``) carry a bit mask per signal in their subtype (bit ``c`` noisy, bit ``c + 4``
    unreadable), each holding until the next ``~``."""
    episodes, start = [], None
    for sample, symbol, subtype in zip(annotation.sample, annotation.symbol, annotation.subtype):
        if symbol != "~":
            continue
        noisy = subtype == -1 or bool(subtype & (1 << channel | 1 << (channel + 4)))
        if noisy and start is None:
            start = int(sample)
        elif not noisy and start is not None:
            episodes.append((start, int(sample)))
            start = None
    if start is not None:
        episodes.append((start, np.iinfo(np.int64).max))
    return np.asarray(episodes, dtype=np.int64).reshape(-1, 2)


def overlaps(episodes: np.ndarray, start: int, end: int) -> bool:
    """Whether ``[start, end)`` meets any of ``episodes`` (``noisy_episodes``)."""
    return bool(np.any((episodes[:, 0] < end) & (episodes[:, 1] > start)))
