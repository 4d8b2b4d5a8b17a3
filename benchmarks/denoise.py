"""Removing real recorded noise from ECGs of patients the models never saw: the shipped pipeline's denoiser against
the filters a specialist tries first, on MIT-BIH DS2 (MLII) with nstdb noise.

    .venv/bin/python -m benchmarks.denoise         # rewrites results/denoise.{json,png}

For each DS2 record, ``--per-record`` stretches of ``--seconds``, drawn where the annotators did not mark MLII noisy
or unreadable (MIT-BIH's ``~`` signal-quality annotations: a reference that carries its own noise scores a method by
how much of that noise it keeps), get noise the way nstdb's ``nst`` adds it (SNR on
the stretch's annotated QRS amplitudes, ``tsvq.data.noise``) at 0, 6, 12 and 24 dB: baseline wander (``bw``),
muscle artefact (``ma``) and electrode motion (``em``: ``118e00 - 118``), drawn from the part of each noise record
the denoiser did not train on (its ``noise_span``'s complement). Methods, on the noisy recording at 360 Hz:

- ``input``: the noisy recording itself (the clean reference plus the noise as added, unfiltered);
- ``bandpass``: the pipeline's conditioning alone (250 Hz, zero-phase 0.5-40 Hz Butterworth);
- ``wavelet``: band-pass, then soft thresholding (PyWavelets ``sym8``, 6 levels, the universal threshold with the
  noise level from the finest detail, VisuShrink);
- ``neurokit2``: ``nk.ecg_clean`` (its default method), resampled to 250 Hz;
- ``codec``: the band-passed signal through the codec's own encoder and decoder (no denoiser: what the codec alone
  does to noise);
- ``tsvq``: ``Pipeline.denoise`` (the denoising encoder's codes decoded, plus the share of the input it keeps);
- ``tsvq_codes_only``: ``Pipeline.denoise(pass_through=False)`` (the decoded codes alone: the pure projection).

Scores against the clean stretch conditioned the same way (250 Hz, 0.5-40 Hz), the first and last 2 s left out:
output SNR (dB, clean mean-removed power over error power; mean and median over stretches), PRDN (%), and R peaks
found by wfdb's XQRS on the output against the annotated beats (F1 within +-75 ms), per noise type and input SNR, and
again by the beats in the stretch (normal only; with a V beat; with an S beat; other); the clean stretch's own scores
(no noise) say how much each method costs a clean signal.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import wfdb

from benchmarks.common import RESULTS, save
from benchmarks.gaps import AAMI, beats_label
from benchmarks.mitbih import DS2, noisy_episodes, overlaps
from tsvq.codec.streaming import decode_long, encode_long
from tsvq.data.noise import NoiseBank, qrs_power, scaled_to_snr
from tsvq.data.records import read_record
from tsvq.evaluation.tasks import repair_scores, summarise_scores, wavelet_threshold
from tsvq.pipeline import Pipeline

EDGE_S = 2.0
PER_RECORD = ("bandpass", "wavelet", "tsvq")  # methods whose output SNR is kept per stretch, record by record
MAX_DRAWS = 1000  # candidate starts tried per record before giving up on finding clean stretches
NOISES = {"bw": "nstdb/bw", "ma": "nstdb/ma", "em": "nstdb/118e00 - mitdb/118"}


def methods(pipe: Pipeline, clean: np.ndarray, noisy: np.ndarray, rate: float) -> dict[str, np.ndarray]:
    """Every method's output at the pipeline's rate, same length as the band-passed input; ``input`` is the clean
    reference plus the noise as added (its score is the input's SNR in the scores' own terms)."""
    import neurokit2 as nk

    from tsvq.data.preprocess import resample

    bandpassed = pipe.preprocessing.condition(noisy[:, None], rate)[:, 0]
    reference = pipe.preprocessing.condition(clean[:, None], rate)[:, 0]
    added = resample((noisy - clean)[:, None], rate, pipe.sampling_rate_hz)[: len(bandpassed), 0]
    n, f = len(bandpassed), pipe.codec.config.downsample_factor
    padded = np.pad(bandpassed, (0, (-n) % f), mode="edge")[:, None].astype(np.float32)
    cleaned = nk.ecg_clean(noisy, sampling_rate=int(rate))

    def at_pipeline_rate(y: np.ndarray) -> np.ndarray:  # Pipeline.denoise answers at the input's rate
        return resample(y[:, None].astype(np.float64), rate, pipe.sampling_rate_hz)[:n, 0]

    return {
        "input": reference + added,
        "bandpass": bandpassed,
        "wavelet": wavelet_threshold(bandpassed),
        "neurokit2": resample(cleaned[:, None], rate, pipe.sampling_rate_hz)[:n, 0],
        "codec": decode_long(pipe.codec, encode_long(pipe.codec, padded))[:n, 0],
        "tsvq": at_pipeline_rate(pipe.denoise(noisy, rate)),
        "tsvq_codes_only": at_pipeline_rate(pipe.denoise(noisy, rate, pass_through=False)),
    }


def clean_starts(rng: np.random.Generator, low: int, high: int, count: int, length: int, noisy: np.ndarray) -> list:
    """``count`` starts in ``[low, high)`` of stretches of ``length`` that meet none of the ``noisy`` episodes."""
    starts = []
    for start in rng.integers(low, high, MAX_DRAWS):
        if not overlaps(noisy, int(start), int(start) + length):
            starts.append(int(start))
        if len(starts) == count:
            return starts
    raise SystemExit(f"found {len(starts)} of {count} stretches clear of annotated noise in {MAX_DRAWS} draws")


def plot(by_noise: dict, example: dict, path: Path) -> None:
    """Output SNR against input SNR per noise type, and one stretch with electrode motion at 6 dB."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = [k for k in by_noise if k != "clean"]
    fig, axes = plt.subplots(1, len(kinds) + 1, figsize=(4 * len(kinds) + 6, 3.6),
                             gridspec_kw={"width_ratios": [1] * len(kinds) + [1.6]})  # fmt: skip
    shown = ["input", "bandpass", "wavelet", "neurokit2", "codec", "tsvq"]
    for ax, kind in zip(axes, kinds):
        snrs = list(by_noise[kind])
        for method in shown:
            ax.plot([float(s) for s in snrs], [by_noise[kind][s][method]["snr_db"] for s in snrs], "o-",
                    label=method, lw=2.5 if method == "tsvq" else 1.2)  # fmt: skip
        ax.set(title=kind, xlabel="input SNR (dB, nst)", ylabel="output SNR (dB)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    ax = axes[-1]
    t = np.arange(len(example["clean"])) / example["rate"]
    for name, color in (("noisy", "0.75"), ("bandpass", "tab:orange"), ("tsvq", "tab:blue"), ("clean", "k")):
        ax.plot(t, example[name], color=color, lw=1.0 if name != "noisy" else 0.8, label=name)
    ax.set(title=f"{example['record']}, electrode motion at 6 dB", xlabel="s", ylabel="mV")
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pipeline", default="ecg-single-lead")
    parser.add_argument("--source", default="../shared/data", help="folder holding mitdb/ and nstdb/")
    parser.add_argument("--records", nargs="+", default=DS2)
    parser.add_argument("--snr", type=float, nargs="+", default=[0.0, 6.0, 12.0, 24.0], help="input SNRs (dB)")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each stretch")
    parser.add_argument("--per-record", type=int, default=2, help="stretches per record")
    args = parser.parse_args()
    torch.set_num_threads(2)
    pipe = Pipeline.from_pretrained(args.pipeline)
    if pipe.denoiser is None:
        raise SystemExit(f"{args.pipeline} has no denoiser")
    trained = tuple(pipe.denoiser.config.noise_span)
    held_out = (trained[1], 1.0) if trained[0] == 0 else (0.0, trained[0])
    source = Path(args.source)
    banks = {
        kind: NoiseBank([" - ".join(str(source / p) for p in spec.split(" - "))], None, held_out)
        for kind, spec in NOISES.items()
    }
    rows: dict = {}
    by_record: dict = {}  # record -> noise -> SNR -> method -> output SNR of each stretch (dB)
    by_rhythm: dict = {}  # noise -> SNR -> the stretch's beats (N only; with V; with S; other) -> method -> scores
    example: dict = {}
    started = time.perf_counter()
    for name in args.records:
        record = read_record(source / "mitdb" / name)
        lead = record.channel_names.index("MLII") if "MLII" in record.channel_names else 0
        rate = record.sampling_rate_hz
        annotation = wfdb.rdann(str(source / "mitdb" / name), "atr")
        keep = np.isin(annotation.symbol, list(AAMI))
        rng = np.random.default_rng([int(name), 59])
        length = int(args.seconds * rate)
        noisy_lead = noisy_episodes(annotation, lead)
        low, high = int(10 * rate), len(record.signal) - int(10 * rate) - length
        for start in clean_starts(rng, low, high, args.per_record, length, noisy_lead):
            clean = record.signal[start : start + length, lead].astype(np.float64)
            inside = keep & (annotation.sample >= start) & (annotation.sample < start + length)
            beats = annotation.sample[inside] - start
            label = beats_label(AAMI[symbol] for symbol in np.asarray(annotation.symbol)[inside])
            reference = pipe.preprocessing.condition(clean[:, None], rate)[:, 0]
            beats_out = np.round(beats * pipe.sampling_rate_hz / rate).astype(int)
            power = qrs_power(clean, beats, rate)
            conditions = {("clean", "none"): clean}
            for kind, bank in banks.items():
                noise = bank.draw(rng, length).astype(np.float64)
                for snr in args.snr:
                    conditions[(kind, f"{snr:g}")] = clean + scaled_to_snr(noise, power, snr, rate)
            for (kind, snr), noisy in conditions.items():
                by_method = rows.setdefault(kind, {}).setdefault(snr, {})
                outputs = methods(pipe, clean, noisy, rate)
                if (kind, snr) == ("em", "6") and not example:
                    window = slice(int(10 * pipe.sampling_rate_hz), int(16 * pipe.sampling_rate_hz))
                    example.update(record=name, rate=pipe.sampling_rate_hz, clean=reference[window],
                                   noisy=outputs["input"][window], bandpass=outputs["bandpass"][window],
                                   tsvq=outputs["tsvq"][window])  # fmt: skip
                edge, end = int(EDGE_S * pipe.sampling_rate_hz), len(reference) - int(EDGE_S * pipe.sampling_rate_hz)
                by_class = by_rhythm.setdefault(kind, {}).setdefault(snr, {}).setdefault(label, {})
                for method, output in outputs.items():
                    score = repair_scores(reference, output, edge, end, pipe.sampling_rate_hz, beats_out)
                    by_method.setdefault(method, []).append(score)
                    if method in PER_RECORD:
                        per = by_record.setdefault(name, {}).setdefault(kind, {}).setdefault(snr, {})
                        per.setdefault(method, []).append(round(score["snr_db"], 2))
                    by_class.setdefault(method, []).append(score)
        summary = {k: {m: round(summarise_scores(r)["snr_db"], 1) for m, r in rows[k]["6"].items()} for k in banks}
        print(f"{name} ({time.perf_counter() - started:.0f} s): SNR out at 6 dB {summary}", flush=True)
    payload = {
        "pipeline": args.pipeline,
        "records": args.records,
        "stretch_s": args.seconds,
        "stretches_from": "parts of MLII the annotators did not mark noisy or unreadable (`~` annotations)",
        "per_record": args.per_record,
        "noise": {kind: {"spec": spec, "span": list(held_out)} for kind, spec in NOISES.items()},
        "denoiser_trained_on": {"noise": list(pipe.denoiser.config.noise), "span": list(trained)},
        "by_noise": {
            kind: {snr: {m: summarise_scores(r) for m, r in by.items()} for snr, by in per.items()}
            for kind, per in rows.items()
        },
        "by_beats_in_stretch": {
            kind: {
                snr: {c: {m: summarise_scores(r) for m, r in by.items()} for c, by in per.items()}
                for snr, per in snrs.items()
            }
            for kind, snrs in by_rhythm.items()
        },  # fmt: skip
        "snr_db_by_record": by_record,
        "seconds": time.perf_counter() - started,
    }
    saved = save("denoise", payload)  # before the plot, so the commit it records is not marked dirty by it
    plot(payload["by_noise"], example, RESULTS / "denoise.png")
    print(f"-> {saved}")


if __name__ == "__main__":
    main()
