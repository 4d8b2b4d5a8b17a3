"""The text a report prints: the generation table (generators, floor and baselines side by side, mean±std over
seeds, with the report's marks), the codec lines, and several reports side by side."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tsvq.errors import DataError
from tsvq.evaluation.report import REPORT_FORMAT_VERSION
from tsvq.evaluation.scoring import GENERATION_FIGURES
from tsvq.io import read_json

DISPLAY_NAMES = {
    "phase_randomised": "phase-rand",
    "autoregressive": "AR",
    "gaussian": "gaussian",
    "train_copies": "train-copy",
    "train_windows": "train",
    "train_decoded": "train-decoded",
}


def _cell(summary: dict) -> str:
    """``mean±std`` in a few significant digits."""
    return f"{_short(summary['mean'])}±{_short(summary['std'])}"


def _short(value: float) -> str:
    if not np.isfinite(value):
        return "nan"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    return f"{value:.2g}" if magnitude < 0.01 and value != 0 else f"{value:.3g}" if magnitude < 1 else f"{value:.2f}"


def generation_table(generation: dict) -> list[str]:
    """Rows: figures; columns: compared generators, the floor, the references, the baselines (mean±std over seeds)."""
    columns = generation["compared"] + ["floor"] + generation.get("references", []) + generation["baselines"]
    width, label = 17, 38
    lines = [
        f"{'generation (lower is better)':<{label}}"
        + "".join(f"{DISPLAY_NAMES.get(c, c)[: width - 1]:>{width}}" for c in columns)
    ]
    for name in GENERATION_FIGURES:
        if name not in generation["generators"]["floor"]["figures"]:
            continue
        mark = "" if generation["informative"].get(name, True) else " (uninf.)"
        cells = []
        for column in columns:
            cell = _cell(generation["generators"][column]["figures"][name])
            cells.append(
                cell
                + (
                    "~"
                    if name in generation["within_noise"].get(column, [])
                    else "<"
                    if name in generation["below_floor"].get(column, [])
                    else ""
                )
            )
        lines.append(f"  {name[: label - 2 - len(mark)] + mark:<{label - 2}}" + "".join(f"{c:>{width}}" for c in cells))
    lines.append(
        f"  {'memorisation ratio (~1)':<{label - 2}}"
        + "".join(f"{_cell(generation['generators'][c]['memorisation_ratio']):>{width}}" for c in columns)
    )
    real = generation["real"]
    lines.append(
        f"mean±std over {len(generation['seeds'])} seeds; {generation['windows_requested']} windows per generator and "
        "seed, "
        f"scored in chunks of {min(real['floor'])}-{max(real['floor'])} (the floor's n; {real['held_out']} held-out "
        "windows" + ("; the halves hold whole records" if real.get("halves") == "records" else "") + ")"
    )
    if generation.get("beats", "off") != "off":  # rates are pulse rates when the beats are PPG pulses
        lines.append(f"beats: {generation['beats']}")
    if generation.get("references"):
        lines.append(
            "train: training windows as they are (the split's gap: no model of the training split gets closer); "
            "train-decoded: the same through the codec (a perfect prior over its codes)"
        )
    lines.append(
        "~: gap to the floor within the seed-to-seed spread; <: below the floor by more than the spread (the floor "
        "rests "
        "on few independent stretches, or the figure rewards something else)"
        + ("; (uninf.): no baseline leaves the floor" if generation["baselines"] else "")
    )
    return lines


def format_table(report: dict) -> str:
    """A compact text table of the headline figures."""
    lines = []
    if "reconstruction" in report:
        r, c = report["reconstruction"], report["codebook"]
        lines.append(f"codec of {report.get('codec_of', 'the pipeline')}:")
        lines.append(
            f"  reconstruction ({r['windows']} windows): PRDN {r['prdn']:.2f}%  PRD {r['prd']:.2f}%  SNR "
            f"{r['snr_db']:.1f} dB  "
            f"CR {r.get('compression_ratio', float('nan')):.1f}  ({r.get('bits_per_second', float('nan')):.0f} bit/s)"
            + (f"  code search: {r['code_search_candidates']} candidates" if r.get("code_search_candidates") else "")
        )
        lines.append(
            f"  codebook: usage {c['usage_percent']:.1f}%  perplexity {c['perplexity']:.1f} / {c['num_codes']}  dead "
            f"{c['dead_codes']}"
        )
    if "generation" in report:
        lines += generation_table(report["generation"])
    for prior, section in report.get("label_classification", {}).items():
        if "skipped" not in section:
            synthetic, real = section["train_synthetic_test_real"], section["train_real_test_real"]
            lines.append(
                f"labels ({prior}): train on synthetic / train on real, test on real: {_tstr(synthetic, real)}"
            )
            if "one_vs_rest" in section:
                task = section["one_vs_rest"]
                lines.append(
                    f"  {task['label']} against the rest: "
                    f"{_tstr(task['train_synthetic_test_real'], task['train_real_test_real'])}"
                )
            if "f1_per_class" in real:  # reports before per-class F1 lack it
                lines.append(
                    "  F1 of each class against the rest (synthetic / real): "
                    + ", ".join(
                        f"{label} {synthetic['f1_per_class'].get(label, float('nan')):.3f} / {value:.3f}"
                        for label, value in real["f1_per_class"].items()
                    )
                )
    for prior, classes in report.get("per_class", {}).items():
        for label, figures in classes.items():
            if "skipped" in figures:
                lines.append(f"  class {label} ({prior}): {figures['skipped']}")
                continue
            shown = [
                f
                for f in (
                    "frechet_distance",
                    "heart_rate_wasserstein_bpm",
                    "rr_irregularity_wasserstein",
                    "average_beat_rms",
                )
                if f in figures["model"]
            ]
            lines.append(
                f"  class {label} ({prior}), model vs floor: "
                + "; ".join(f"{f} {_cell(figures['model'][f])} vs {_cell(figures['floor'][f])}" for f in shown)
            )
    return "\n".join(lines)


def _tstr(synthetic: dict, real: dict) -> str:
    """Macro-F1 of the classifier trained on synthetic windows and of the one trained on real ones, their ratio and
    balanced accuracies (with the seeds' spread where the report has it)."""
    spread = {
        key: f"±{part['std']['macro_f1']:.3f}" if "std" in part else "" for key, part in (("s", synthetic), ("r", real))
    }
    return (
        f"macro-F1 {synthetic['macro_f1']:.3f}{spread['s']} / {real['macro_f1']:.3f}{spread['r']} "
        f"({synthetic['macro_f1'] / max(real['macro_f1'], 1e-12):.2f}x), "
        f"balanced accuracy {synthetic['balanced_accuracy']:.3f} / {real['balanced_accuracy']:.3f}"
    )


def compare_reports(*paths: str | Path) -> str:
    """Several reports side by side: the codec figures, and every compared generator's figures (mean over seeds)."""
    reports = [
        (Path(p), read_json(Path(p) / "report.json" if Path(p).is_dir() else p, "evaluation report")) for p in paths
    ]
    for path, report in reports:
        if report.get("format_version", 1) != REPORT_FORMAT_VERSION:
            raise DataError(
                f"{path}: report format {report.get('format_version', 1)}; this tsvq compares format "
                f"{REPORT_FORMAT_VERSION} (evaluate again with this version)"
            )
    columns = []
    for path, report in reports:
        generation = report.get("generation", {})
        for name in generation.get("compared", []) or [None]:
            columns.append((f"{path.name}:{name}" if name else path.name, report, name))
    rows = [f"{'figure':<30}" + "".join(f"{title[-16:]:>18}" for title, _, _ in columns)]

    def value(report, name, *keys):
        node = report["generation"]["generators"].get(name, {}) if name else report
        for key in keys:
            if not isinstance(node, dict) or key not in node:
                return float("nan")
            node = node[key]
        return node["mean"] if isinstance(node, dict) else node

    for keys in (
        ("reconstruction", "prdn"),
        ("reconstruction", "snr_db"),
        ("reconstruction", "compression_ratio"),
        ("codebook", "usage_percent"),
        ("codebook", "perplexity"),
    ):
        rows.append(
            f"{'.'.join(keys):<30}" + "".join(f"{value(report, None, *keys):>18.4g}" for _, report, _ in columns)
        )
    for figure in (*GENERATION_FIGURES, "memorisation_ratio"):
        keys = ("memorisation_ratio",) if figure == "memorisation_ratio" else ("figures", figure)
        rows.append(f"{figure:<30}" + "".join(f"{value(report, name, *keys):>18.4g}" for _, report, name in columns))
    return "\n".join(rows)
