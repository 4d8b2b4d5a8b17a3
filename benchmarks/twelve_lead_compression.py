"""Twelve-lead compression on ECGs the codec never saw: a codec of the eight independent leads (I, II, V1-V6; the
other four derived from the decoded I and II) against the wavelet coder given the same eight leads and the same
derivation, on PTB-XL fold 10, every byte of each file counted.

    tsvq prepare --config recipes/ptbxl/prepare-8lead.yaml --source ../shared/data/ptbxl --out runs/ptbxl-8lead/store
    accelerate launch --config_file recipes/accelerate/cpu.yaml -m tsvq.cli train codec \\
        --config recipes/ptbxl/codec-8lead.yaml
    tsvq assemble --codec runs/ptbxl-8lead/codec/model --out runs/ptbxl-8lead/pipeline
    .venv/bin/python -m benchmarks.twelve_lead_compression   # results/rate-distortion-ptbxl-12lead.{json,png}

Both coders see the twelve leads conditioned as the codec's training data (100 Hz, 0.5-40 Hz zero-phase band-pass).
tsvq: `Pipeline.compress(record, quantizers=Q)` for every residual stage count Q (one model, one curve), the file's
bytes, then `decompress`, which adds III, aVR, aVL and aVF. Wavelet coder (`benchmarks.wavelet_coder`): the eight
leads in one file (one quantiser step for all, each subband's histogram shared by the leads), the four derived the
same way. PRDN per lead (mean
removed, whole 10-s ECG), averaged over the twelve leads and then over ECGs; bit/s of the whole file(s) per second
of ECG. At every tsvq operating point the wavelet coder is also given each ECG's tsvq file size
(``wavelet_at_tsvq_rate``); each curve is read at 500, 1000 and 2500 bit/s by interpolating log PRDN against log
rate (None outside the rates it covers). tsvq is also measured as `tsvq compress --bitrate` writes files at those
rates (``tsvq_at_rate``: the stage count and detail layer, `tsvq.detail`, with or without beat templates, that
``Pipeline.compress_at`` chooses).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks import wavelet_coder
from benchmarks.common import RESULTS, save
from benchmarks.rate_distortion import ptbxl_fold
from tsvq.compressed_file import CompressedRecord
from tsvq.compression import prdn_per_channel
from tsvq.data import read_record
from tsvq.data.leads import INDEPENDENT_LEADS, STANDARD_LEADS, lead_label, with_derived_limb_leads
from tsvq.pipeline import Pipeline

GRID = (250.0, 500.0, 1000.0, 1500.0, 2500.0, 4000.0)  # total bit/s of the wavelet coder's curve
READ_AT = (500.0, 1000.0, 2500.0)  # where the two curves are compared


def in_standard_order(signal: np.ndarray, names: list[str]) -> np.ndarray:
    """``signal``'s columns reordered as I, II, III, aVR, aVL, aVF, V1-V6."""
    labels = [lead_label(name) for name in names]
    return signal[:, [labels.index(lead) for lead in STANDARD_LEADS]]


def measure_record(pipe: Pipeline, path: Path, stages: list[int]) -> dict:
    record = read_record(path, annotation_extensions=())
    rate, seconds = record.sampling_rate_hz, len(record.signal) / record.sampling_rate_hz
    reference = in_standard_order(pipe.preprocessing.condition(record.signal, rate), record.channel_names)
    independent = [STANDARD_LEADS.index(lead) for lead in INDEPENDENT_LEADS]

    def wavelet(bits: float) -> dict:
        """The wavelet coder given ``bits`` for the eight leads, the four derived: its file and PRDN."""
        data, coded = wavelet_coder.at_rate(reference[:, independent], bits)
        twelve, names = with_derived_limb_leads(coded, list(INDEPENDENT_LEADS))
        per_lead = prdn_per_channel(reference, in_standard_order(twelve, names))
        return {"bits_per_second": 8 * len(data) / seconds, "prdn": float(np.mean(per_lead)),
                "prdn_by_lead": [float(v) for v in per_lead]}  # fmt: skip

    def twelve_leads(data: bytes) -> list[float]:
        decoded = pipe.decompress(CompressedRecord.from_bytes(data), rate="pipeline")
        ours = in_standard_order(decoded.signal[: len(reference)].astype(np.float64), decoded.channel_names)
        return prdn_per_channel(reference, ours)

    row: dict = {"seconds": seconds, "tsvq": {}, "wavelet_at_tsvq_rate": {}, "wavelet": {}, "tsvq_at_rate": {}}
    for q in stages:
        started = time.perf_counter()
        data = pipe.compress(record, quantizers=q).to_bytes()
        per_lead = twelve_leads(data)
        elapsed = time.perf_counter() - started
        row["tsvq"][str(q)] = {
            "bits_per_second": 8 * len(data) / seconds,
            "prdn": float(np.mean(per_lead)),
            "prdn_by_lead": [float(v) for v in per_lead],
            "real_time_factor": seconds / elapsed,
        }
        row["wavelet_at_tsvq_rate"][str(q)] = wavelet(8 * len(data))
    for total in GRID:
        row["wavelet"][str(total)] = wavelet(total * seconds)
    for total in READ_AT:
        chosen, point = pipe.compress_at(record, bitrate=total / len(INDEPENDENT_LEADS))
        data = chosen.to_bytes()
        per_lead = twelve_leads(data)
        row["tsvq_at_rate"][str(total)] = {
            "bits_per_second": 8 * len(data) / seconds,
            "prdn": float(np.mean(per_lead)),
            "prdn_by_lead": [float(v) for v in per_lead],
            "stages": point["stages"],
            "detail_step": point["detail_step"],
            "beats": point["beats"],  # the layer subtracted beat templates (tsvq.beats)
        }
    return row


def curve(rows: dict, coder: str) -> dict:
    """Mean bit/s, PRDN and PRDN per lead over ECGs at each of ``coder``'s operating points."""
    points = next(iter(rows.values()))[coder]
    return {
        key: {
            "bits_per_second": float(np.mean([r[coder][key]["bits_per_second"] for r in rows.values()])),
            "prdn": float(np.mean([r[coder][key]["prdn"] for r in rows.values()])),
            "prdn_by_lead": dict(
                zip(
                    STANDARD_LEADS,
                    np.mean([r[coder][key]["prdn_by_lead"] for r in rows.values()], axis=0).round(3).tolist(),
                )
            ),  # fmt: skip
        }
        for key in points
    }


def read_at(points: dict, rate: float) -> float | None:
    """PRDN of a curve at ``rate`` bit/s (log-log interpolation); None outside the rates it covers."""
    rates = np.array([p["bits_per_second"] for p in points.values()])
    prdns = np.array([p["prdn"] for p in points.values()])
    order = np.argsort(rates)
    rates, prdns = rates[order], prdns[order]
    if not rates[0] <= rate <= rates[-1]:
        return None
    return float(np.exp(np.interp(np.log(rate), np.log(rates), np.log(prdns))))


def plot(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for coder, style, color, label in (
        ("wavelet", "o-", "0.4", "wavelet coder, 8 leads + 4 derived"),
        ("tsvq", "*-", "tab:blue", "tsvq 8-lead codec + 4 derived (Q stages)"),
        ("tsvq_at_rate", "D-", "tab:red", "tsvq compress --bitrate (stages + detail layer)"),
    ):
        points = summary[coder]
        ax.plot([p["bits_per_second"] for p in points.values()], [p["prdn"] for p in points.values()], style,
                color=color, label=label)  # fmt: skip
    ax.set(xscale="log", yscale="log", xlabel="bit/s (whole file, 12 leads)", ylabel="mean PRDN over 12 leads (%)",
           title="PTB-XL fold 10, 12-lead ECGs (unseen patients)")  # fmt: skip
    ax.set_xticks([250, 500, 1000, 2500, 4000], ["250", "500", "1000", "2500", "4000"])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # log-axis minor labels overlap
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pipeline", default="runs/ptbxl-8lead/pipeline", help="a pipeline coding I, II, V1-V6")
    parser.add_argument("--source", default="../shared/data/ptbxl")
    args = parser.parse_args()
    torch.set_num_threads(1)
    pipe = Pipeline.from_pretrained(args.pipeline)
    if sorted(lead_label(n) for n in pipe.channel_names) != sorted(INDEPENDENT_LEADS):
        raise SystemExit(f"{args.pipeline} codes {pipe.channel_names}; this benchmark needs I, II, V1-V6")
    source = Path(args.source)
    stages = list(range(1, pipe.codec.config.num_quantizers + 1))
    rows = {}
    for name in ptbxl_fold(source):
        rows[name] = row = measure_record(pipe, source / name, stages)
        print(f"{name}: tsvq " + ", ".join(f"{p['bits_per_second']:.0f} bit/s {p['prdn']:.1f}%"
                                           for p in list(row["tsvq"].values())[::3]), flush=True)  # fmt: skip
    summary = {coder: curve(rows, coder) for coder in ("tsvq", "wavelet_at_tsvq_rate", "wavelet", "tsvq_at_rate")}
    summary["prdn_tsvq_over_wavelet"] = {
        q: point["prdn"] / summary["wavelet_at_tsvq_rate"][q]["prdn"] for q, point in summary["tsvq"].items()
    }
    summary["at_rate"] = {
        str(rate): {coder: read_at(summary[coder], rate) for coder in ("tsvq", "wavelet")}
        | {"tsvq_compress_bitrate": summary["tsvq_at_rate"][str(rate)]["prdn"]}
        for rate in READ_AT
    }
    for rate in map(str, READ_AT):  # how many ECGs compress_at coded with 0 (the detail layer alone), 1, ... stages
        summary["tsvq_at_rate"][rate]["stages_chosen"] = np.bincount(
            [r["tsvq_at_rate"][rate]["stages"] for r in rows.values()], minlength=len(stages) + 1
        ).tolist()
        summary["tsvq_at_rate"][rate]["ecgs_with_beat_templates"] = sum(
            r["tsvq_at_rate"][rate]["beats"] for r in rows.values()
        )
    saved = save("rate-distortion-ptbxl-12lead", {"pipeline": args.pipeline, "ecgs": len(rows), "summary": summary,
                                                   "records": rows})  # fmt: skip
    plot(summary, RESULTS / "rate-distortion-ptbxl-12lead.png")
    print(summary["at_rate"], f"-> {saved}")


if __name__ == "__main__":
    main()
