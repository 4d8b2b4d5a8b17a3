"""Task figures for any pipeline and store (``tsvq eval --task impute|forecast|denoise``).

The held-out windows of a store are the truth. Consecutive windows of one recording are joined into stretches
(``stretch_s`` long), and each stretch is spoilt in one seeded way: a gap cut inside (impute), its end hidden
(forecast) or recorded noise added (denoise, nst-calibrated, ``tsvq.data.noise``). The pipeline repairs it beside
the baselines a specialist tries first (``tsvq.evaluation.repair_baselines``; band-pass and wavelet thresholding
for noise), and every method is scored against the truth: PRDN of the repaired part, R peaks found by XQRS on
the output against those XQRS finds on the truth (F1 within +-75 ms; a store keeps no beat positions), and for
noise the output SNR, over all stretches and by the store's window label where the repair happened (the AAMI class
of the beats, a record's class: ``by_label``). ``report.json`` and ``task.png`` (observed, truth, the pipeline's
draws shaded) are written.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pywt

from tsvq.data import WindowStore
from tsvq.data.noise import NoiseBank, check_snr_db, qrs_power, scaled_to_snr
from tsvq.errors import ConfigError, DataError, check_count
from tsvq.evaluation.repair_baselines import BASELINES, FORECAST_BASELINES, beat_matches, r_peaks
from tsvq.io import atomic_directory, check_output_path, claim_output_folder, write_json

TASKS = ("impute", "forecast", "denoise")
TOLERANCE_S = 0.075


@dataclass
class TaskConfig:
    task: str = "impute"
    split: str = "test"
    n: int = 100  # stretches scored
    stretch_s: float = 12.0  # consecutive windows joined into one stretch of about this long
    seconds: float = 0.5  # impute: the gap; forecast: the horizon
    draws: int = 3  # impute/forecast: the pipeline's draws (the first scored as tsvq, their mean as tsvq_mean)
    candidates: int = 16
    noise: list[str] = field(default_factory=list)  # denoise: noise records ("RECORD" or "NOISY - CLEAN")
    snr_db: list[float] = field(default_factory=lambda: [0.0, 6.0, 12.0, 24.0])
    seed: int = 0
    prior: str | None = None  # impute/forecast: the pipeline's prior that fills (default: its first WaveNet)
    sampling: dict = field(default_factory=dict)  # impute/forecast: that prior's sampling options

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ConfigError(f"task must be one of {list(TASKS)}, got {self.task!r}")
        self.n = check_count("n", self.n, 1)
        if not self.seconds > 0 or not self.stretch_s > 0:
            raise ConfigError("seconds and stretch_s must be positive")
        self.snr_db = check_snr_db(self.snr_db, "--snr")
        if self.task == "denoise" and not self.noise:
            raise ConfigError("--task denoise needs --noise RECORD... (e.g. nstdb's ma, bw, '118e00 - 118')")


class Stretch(NamedTuple):
    """Consecutive held-out windows of one recording, joined."""

    signal: np.ndarray  # (L,) first channel
    labels: np.ndarray  # the store's label of each of its windows (e.g. the AAMI class of its beats)
    window_length: int

    def label_at(self, sample: int) -> str:
        """The label of the window that holds ``sample``."""
        return str(self.labels[min(sample // self.window_length, len(self.labels) - 1)])


def stretches(store: WindowStore, split: str, seconds: float, n: int, seed: int) -> list[Stretch]:
    """Up to ``n`` stretches (first channel) of consecutive windows of one recording, chosen seeded."""
    indices = store.split_indices(split)
    if not len(indices):
        raise DataError(f"{store.path}: the '{split}' split holds no windows")
    length = store.window_length
    per = max(1, int(np.ceil(seconds * store.sampling_rate_hz / length)))
    records, starts = store.index["record"][indices], store.index["start"][indices]
    order = np.lexsort((starts, records))
    runs, current = [], [indices[order[0]]]
    for previous, this in zip(order[:-1], order[1:]):
        joined = records[this] == records[previous] and starts[this] - starts[previous] == length
        if joined and len(current) < per:
            current.append(indices[this])
            continue
        if len(current) == per:
            runs.append(current)
        current = [indices[this]]
    if len(current) == per:
        runs.append(current)
    if not runs:
        raise DataError(
            f"{store.path}: no {per} consecutive '{split}' windows of one recording make a {seconds:g}-s stretch; "
            "ask for a shorter --stretch-seconds"
        )
    picked = np.random.default_rng(seed).permutation(len(runs))[:n]
    labels = store.index["label"]
    return [
        Stretch(
            np.asarray(store.windows[np.asarray(runs[i])])[:, :, 0].reshape(-1).astype(np.float64),
            labels[np.asarray(runs[i])],
            length,
        )
        for i in picked
    ]


def repair_scores(truth: np.ndarray, output: np.ndarray, a: int, b: int, rate: float, beats=None) -> dict:
    """PRDN and SNR of ``output`` against ``truth`` inside ``[a, b)``, and the R peaks XQRS finds there on the output
    against ``beats`` (default: those it finds on the truth), matched within 75 ms."""
    part, filled = truth[a:b], output[a:b]
    centred = part - part.mean()
    error = float(np.sum((part - filled) ** 2))
    reference = r_peaks(truth, rate) if beats is None else np.asarray(beats)
    found = r_peaks(output, rate)
    reference, found = reference[(reference >= a) & (reference < b)], found[(found >= a) & (found < b)]
    return {
        "prdn": float(100 * np.sqrt(error / max(float(np.sum(centred**2)), 1e-20))),
        "snr_db": float(10 * np.log10(max(float(np.sum(centred**2)), 1e-20) / max(error, 1e-20))),
        "hits": len(beat_matches(found, reference, TOLERANCE_S * rate)),
        "found": len(found),
        "reference": len(reference),
    }


def summarise_scores(rows: list[dict]) -> dict:
    """Mean and median PRDN and SNR, and the R-peak F1 of all beats together, over ``repair_scores`` rows."""
    hits, found, reference = (sum(r[k] for r in rows) for k in ("hits", "found", "reference"))
    return {
        "stretches": len(rows),
        "prdn_mean": float(np.mean([r["prdn"] for r in rows])),
        "prdn_median": float(np.median([r["prdn"] for r in rows])),
        "snr_db": float(np.mean([r["snr_db"] for r in rows])),
        "snr_db_median": float(np.median([r["snr_db"] for r in rows])),
        "r_peak_f1": 2 * hits / max(found + reference, 1),
    }


def wavelet_threshold(x: np.ndarray) -> np.ndarray:
    """VisuShrink: ``sym8``, 6 levels (fewer if short), soft thresholds at the universal level, the noise measured
    on the finest detail."""
    coefficients = pywt.wavedec(x, "sym8", level=min(6, pywt.dwt_max_level(len(x), "sym8")))
    sigma = np.median(np.abs(coefficients[-1])) / 0.6745
    threshold = sigma * np.sqrt(2 * np.log(len(x)))
    kept = [coefficients[0], *(pywt.threshold(d, threshold, "soft") for d in coefficients[1:])]
    return pywt.waverec(kept, "sym8")[: len(x)]


def _repair_cases(pipeline, truths: list[Stretch], config: TaskConfig, rate: float, rng) -> tuple[dict, dict, list]:
    """impute / forecast: every method's scores inside the hidden part, over all stretches and by the label of the
    window that holds the hidden part's middle, and a few examples for the plot."""
    hidden = int(round(config.seconds * rate))
    margin = int(round(1.0 * rate))
    window = pipeline.preprocessing.window_length / pipeline.preprocessing.sampling_rate_hz
    least = config.seconds + max(2.0 if config.task == "impute" else 1.0, window)  # what impute needs observed
    rows: dict = {}
    by_label: dict = {}
    examples = []
    baselines = BASELINES if config.task == "impute" else FORECAST_BASELINES
    for k, stretch in enumerate(truths):
        truth = stretch.signal
        if len(truth) < least * rate:
            what = "gap" if config.task == "impute" else "forecast"
            raise DataError(f"a {config.seconds:g}-s {what} needs stretches of at least {least:g} s")
        if config.task == "impute":
            a = int(rng.integers(margin, len(truth) - hidden - margin + 1))
        else:
            a = len(truth) - hidden
        b = a + hidden
        holed = truth.copy()
        holed[a:b] = np.nan
        options = {"draws": config.draws, "candidates": config.candidates, "seed": k, "max_gap_s": None}  # as asked
        options |= {"prior": config.prior, **config.sampling}
        if config.task == "impute":
            repaired = pipeline.impute(holed, rate, **options)
        else:
            repaired = pipeline.forecast(holed[:a], rate, config.seconds, **options)
        draws = repaired.signals[:, : len(truth), 0].astype(np.float64)
        outputs = {"tsvq": draws[0]}
        if config.draws > 1:  # the draws' mean: PRDN's own point estimate (a draw is the one to look at)
            outputs["tsvq_mean"] = draws.mean(axis=0)
        for name, fill in baselines.items():
            outputs[name] = truth.copy()
            outputs[name][a:b] = fill(truth, a, b, rate)
        label = stretch.label_at((a + b) // 2)
        for name, output in outputs.items():
            score = repair_scores(truth, output, a, b, rate)
            rows.setdefault(name, []).append(score)
            by_label.setdefault(label, {}).setdefault(name, []).append(score)
        if len(examples) < 4:
            examples.append({"truth": truth, "a": a, "b": b, "draws": draws, "baseline": outputs[next(iter(baselines))],
                             "baseline_name": next(iter(baselines))})  # fmt: skip
    return {name: summarise_scores(r) for name, r in rows.items()}, _summarised(by_label), examples


def _summarised(by_label: dict) -> dict:
    """``{label: {method: rows}}`` -> ``{label: {method: summary}}``, labels in order (none: ``""``, last)."""
    return {
        label: {name: summarise_scores(r) for name, r in methods.items()}
        for label, methods in sorted(by_label.items(), key=lambda item: (item[0] == "", item[0]))
    }


def _denoise_cases(pipeline, truths: list[Stretch], config: TaskConfig, rate: float, rng) -> tuple[dict, dict, list]:
    """denoise: per input SNR, every method's scores on the whole stretch, over all stretches and by the label most
    of its windows carry, and examples at the second SNR."""
    bank = NoiseBank(config.noise, pipeline.preprocessing)
    by_snr: dict = {}
    by_label: dict = {}
    examples = []
    for stretch in truths:
        truth = stretch.signal
        label = Counter(map(str, stretch.labels)).most_common(1)[0][0]
        noise = bank.draw(rng, len(truth)).astype(np.float64)
        try:
            power = qrs_power(truth, r_peaks(truth, rate), rate)
        except DataError:  # no beat found: the stretch's own peak-to-peak stands for the QRS amplitude
            power = np.ptp(truth) ** 2 / 8
        for snr in config.snr_db:
            noisy = truth + scaled_to_snr(noise, power, snr, rate)
            outputs = {"noisy": noisy, "wavelet": wavelet_threshold(noisy), "tsvq": pipeline.denoise(noisy, rate)}
            for name, output in outputs.items():
                score = repair_scores(truth, np.asarray(output, dtype=np.float64), 0, len(truth), rate)
                by_snr.setdefault(f"{snr:g}", {}).setdefault(name, []).append(score)
                by_label.setdefault(f"{snr:g}", {}).setdefault(label, {}).setdefault(name, []).append(score)
            if snr == config.snr_db[min(1, len(config.snr_db) - 1)] and len(examples) < 4:
                examples.append({"truth": truth, "noisy": noisy, "tsvq": outputs["tsvq"], "snr": snr})
    figures = {snr: {name: summarise_scores(r) for name, r in by.items()} for snr, by in by_snr.items()}
    return figures, {snr: _summarised(labels) for snr, labels in by_label.items()}, examples


def _plot(task: str, examples: list[dict], rate: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(examples), 1, figsize=(10, 2.2 * len(examples)), squeeze=False)
    for ax, example in zip(axes[:, 0], examples):
        t = np.arange(len(example["truth"])) / rate
        if task == "denoise":
            ax.plot(t, example["noisy"], color="0.75", lw=0.8, label=f"noisy ({example['snr']:g} dB)")
            ax.plot(t, example["truth"], color="k", lw=1.0, label="clean")
            ax.plot(t, example["tsvq"], color="tab:blue", lw=1.0, label="tsvq denoise")
        else:
            a, b = example["a"], example["b"]
            lo, hi = max(0, a - int(2 * rate)), min(len(t), b + int(2 * rate))
            observed = example["truth"].copy()
            observed[a:b] = np.nan
            ax.plot(t[lo:hi], observed[lo:hi], color="k", lw=1.0, label="observed")
            ax.plot(t[a:b], example["truth"][a:b], color="k", ls="--", lw=0.8, label="truth")
            ax.plot(t[a:b], example["baseline"][a:b], color="tab:orange", lw=0.8, label=example["baseline_name"])
            for d, draw in enumerate(example["draws"]):
                ax.plot(t[a:b], draw[a:b], color="tab:blue", lw=1.0, alpha=1.0 if d == 0 else 0.35,
                        label="tsvq draws" if d == 0 else None)  # fmt: skip
            ax.axvspan(t[a], t[b - 1], color="tab:blue", alpha=0.06)
        ax.set_ylabel("signal")
    axes[0, 0].legend(fontsize=8, ncol=4, loc="upper right")
    axes[-1, 0].set_xlabel("s")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def evaluate_task(
    store: WindowStore, out_dir: str | Path, config: TaskConfig, pipeline, overwrite: bool = True
) -> dict:
    """Score ``pipeline`` on ``config.task`` over the store's held-out stretches; writes report.json and task.png."""
    from tsvq.evaluation.report import check_store_matches

    started = time.time()
    check_output_path(out_dir, [store.path, getattr(pipeline, "folder", None)], "report folder")
    claim_output_folder(out_dir, overwrite, "report folder")
    check_store_matches(pipeline, store)
    rate = store.sampling_rate_hz
    truths = stretches(store, config.split, config.stretch_s, config.n, config.seed)
    rng = np.random.default_rng(config.seed)
    cases = _denoise_cases if config.task == "denoise" else _repair_cases
    figures, by_label, examples = cases(pipeline, truths, config, rate, rng)
    report = {
        "task": config.task,
        "config": asdict(config),
        "store": str(store.path),
        "pipeline": getattr(pipeline, "name", ""),
        "stretches": len(truths),
        "stretch_seconds": len(truths[0].signal) / rate,
        ("by_snr_db" if config.task == "denoise" else "methods"): figures,
        # by the store's window label (the AAMI class of the beats, a record's class, a lead): where it fails
        ("by_snr_db_and_label" if config.task == "denoise" else "by_label"): by_label,
        "seconds": time.time() - started,
    }
    with atomic_directory(Path(out_dir), overwrite, "report folder") as tmp:
        write_json(tmp / "report.json", report)
        _plot(config.task, examples, rate, tmp / "task.png")
    return report


def format_task(report: dict) -> str:
    """The report as a plain table: one row per method (per input SNR for denoise)."""
    lines = [f"{report['task']} on {report['stretches']} stretches of {report['stretch_seconds']:.1f} s"]
    header = f"{'':>14} {'method':>22} {'PRDN mean':>10} {'median':>8} {'SNR dB':>7} {'R-peak F1':>9}"
    lines.append(header)
    groups = report.get("by_snr_db") or {"": report["methods"]}
    for group, methods in groups.items():
        for name, s in methods.items():
            label = f"{group} dB in" if group else ""
            lines.append(f"{label:>14} {name:>22} {s['prdn_mean']:>10.1f} {s['prdn_median']:>8.1f} "
                         f"{s['snr_db']:>7.2f} {s['r_peak_f1']:>9.2f}")  # fmt: skip
    return "\n".join(lines + _label_table(report))


def _label_table(report: dict) -> list[str]:
    """PRDN mean by the store's window label, one column per label (none when the store has one label)."""
    groups = report.get("by_snr_db_and_label") or {"": report.get("by_label", {})}
    if all(len(labels) < 2 for labels in groups.values()):
        return []
    where = "stretch's windows" if "by_snr_db_and_label" in report else "window the hidden part lies in"
    lines = [f"PRDN mean by the label of the {where} (stretches):"]
    for group, labels in groups.items():
        heads = [f"{label or 'none'} ({next(iter(by.values()))['stretches']})" for label, by in labels.items()]
        lines.append(f"{'':>14} {'method':>22} " + " ".join(f"{head:>12}" for head in heads))
        for name in next(iter(labels.values())):
            cells = " ".join(f"{labels[k][name]['prdn_mean']:>12.1f}" for k in labels)
            lines.append(f"{f'{group} dB in' if group else '':>14} {name:>22} {cells}")
    return lines
