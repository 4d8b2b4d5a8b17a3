"""Figures people would rather look at than read. Headless (Agg); every function writes one PNG atomically."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402

from tsvq.data.records import clean_channel_name  # noqa: E402
from tsvq.io import atomic_file  # noqa: E402


def _save(fig, path: str | Path, top: float = 1.0) -> Path:
    """``top``: the share of the height the panels may take, leaving room for a figure title above them."""
    path = Path(path)
    fig.tight_layout(rect=(0, 0, 1, top))
    with atomic_file(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=110)
    plt.close(fig)
    return path


def signal_grid(
    signals: np.ndarray,
    rate_hz: float,
    path: str | Path,
    title: str = "",
    units: str = "mV",
    columns: int = 2,
    max_rows: int = 6,
    reference: np.ndarray | None = None,
    labels=("real", "generated"),
) -> Path:
    """Grid of windows ``(n, L, C)`` (first channel). With ``reference``, real windows are drawn in a first column."""
    if reference is not None:
        count = min(max_rows, len(signals), len(reference))
        fig, axes = plt.subplots(count, 2, figsize=(12, 1.6 * count + 0.6), squeeze=False, sharey=True)
        for row in range(count):
            for col, (data, name) in enumerate(((reference, labels[0]), (signals, labels[1]))):
                t = np.arange(data.shape[1]) / rate_hz
                axes[row, col].plot(t, data[row, :, 0], lw=0.8, color="C0" if col == 0 else "C3")
                if row == 0:
                    axes[row, col].set_title(name)
    else:
        count = min(len(signals), columns * max_rows)
        rows = int(np.ceil(count / columns))
        fig, axes = plt.subplots(rows, columns, figsize=(6 * columns, 1.6 * rows + 0.6), squeeze=False, sharey=True)
        for i in range(rows * columns):
            ax = axes[i // columns, i % columns]
            if i >= count:
                ax.axis("off")
                continue
            t = np.arange(signals.shape[1]) / rate_hz
            ax.plot(t, signals[i, :, 0], lw=0.8)
    for ax in axes[-1]:
        ax.set_xlabel("time (s)")
    for ax in axes[:, 0]:
        ax.set_ylabel(units)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def overlay(
    reference: np.ndarray,
    reconstruction: np.ndarray,
    rate_hz: float,
    path: str | Path,
    titles: list[str],
    units: str = "mV",
) -> Path:
    """Original vs reconstruction, one row per window (first channel)."""
    fig, axes = plt.subplots(len(reference), 1, figsize=(12, 2.0 * len(reference) + 0.5), squeeze=False)
    t = np.arange(reference.shape[1]) / rate_hz
    for i, ax in enumerate(axes[:, 0]):
        ax.plot(t, reference[i, :, 0], lw=0.9, label="original")
        ax.plot(t, reconstruction[i, :, 0], lw=0.9, label="reconstruction", alpha=0.8)
        ax.set_title(titles[i], fontsize=9)
        ax.set_ylabel(units)
    axes[0, 0].legend(loc="upper right", fontsize=8)
    axes[-1, 0].set_xlabel("time (s)")
    return _save(fig, path)


def spectra(frequencies: np.ndarray, curves: dict[str, np.ndarray], path: str | Path) -> Path:
    """Mean Welch power spectra (log scale), one curve per set."""
    fig, ax = plt.subplots(figsize=(8, 4))
    for name, power in curves.items():
        ax.semilogy(frequencies, power, label=name, lw=1.2)
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel("power spectral density")
    ax.legend()
    return _save(fig, path)


def _overlaid_histograms(ax, values: dict[str, np.ndarray], bins: int, counts: bool = True) -> None:
    """Each set's finite values as a normalised histogram on shared bins (nothing where no set has one)."""
    finite = {name: v[np.isfinite(v)] for name, v in values.items()}
    pooled = [v for v in finite.values() if len(v)]
    if not pooled:
        return
    edges = np.histogram_bin_edges(np.concatenate(pooled), bins=bins)
    for name, v in finite.items():
        if len(v):
            ax.hist(v, bins=edges, density=True, alpha=0.45, label=f"{name} (n={len(v)})" if counts else name)


def _panels(count: int, columns: int, panel_size: tuple[float, float]):
    """A figure of ``count`` panels, ``columns`` to a row at most; the axes of the panels in order (spares hidden)."""
    columns = min(count, columns)
    rows = -(-count // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(panel_size[0] * columns, panel_size[1] * rows), squeeze=False)
    for ax in axes.ravel()[count:]:
        ax.axis("off")
    return fig, axes.ravel()[:count]


def training_curves(rows: list[dict], path: str | Path, title: str = "") -> Path | None:
    """A run's logged figures against the step (``metrics.jsonl`` rows): the training loss (each logged value and
    a running median of 21) and every validation figure, one panel each, so a run that stopped improving shows it.
    None where nothing was logged."""
    losses = [(r["step"], r["loss"]) for r in rows if "loss" in r]
    figures = sorted({k for r in rows for k in r if k.startswith("val")})
    if not losses and not figures:
        return None
    fig, axes = _panels(1 + len(figures), 3, (4.2, 3.0))
    if losses:
        steps, values = np.array(losses).T
        half = 10
        smooth = [np.median(values[max(0, i - half) : i + half + 1]) for i in range(len(values))]
        axes[0].plot(steps, values, lw=0.5, alpha=0.4, label="logged")
        axes[0].plot(steps, smooth, lw=1.5, label="running median")
        axes[0].set_yscale("log" if values.min() > 0 else "linear")
        axes[0].legend(fontsize=8)
    axes[0].set_title("training loss", fontsize=9)
    for ax, name in zip(axes[1:], figures):
        points = np.array([(r["step"], r[name]) for r in rows if name in r])
        ax.plot(points[:, 0], points[:, 1], marker="o", ms=3)
        ax.set_title(name, fontsize=9)
    for ax in axes:
        ax.set_xlabel("step", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path, top=0.93 if title else 1.0)


def histograms(values: dict[str, np.ndarray], path: str | Path, xlabel: str, bins: int = 30) -> Path:
    """Overlaid normalised histograms."""
    fig, ax = plt.subplots(figsize=(7, 4))
    _overlaid_histograms(ax, values, bins)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    if ax.get_legend_handles_labels()[0]:  # nothing to show where no set had a finite value
        ax.legend()
    return _save(fig, path)


def histogram_grid(values: dict[str, dict[str, np.ndarray]], path: str | Path, bins: int = 30) -> Path:
    """One panel per figure (``{figure: {set: values}}``), each set's normalised histogram overlaid: where a
    generator's per-window figures (EEG band powers, line length, ...) part from real windows'."""
    fig, axes = _panels(len(values), 4, (3.6, 2.6))
    for ax, (name, sets) in zip(axes, values.items()):
        _overlaid_histograms(ax, sets, bins, counts=False)
        ax.set_title(name.replace("_", " "), fontsize=9)
        ax.set_yticks([])
    axes[0].legend(fontsize=7)
    return _save(fig, path)


def beat_examples(
    sets: dict[str, tuple[np.ndarray, dict]], rate_hz: float, path: str | Path, units: str = "mV", rows: int = 4
) -> Path:
    """Windows of each set (a column each: ``(lead windows (n, L, 1), rhythm)``) with the beats found on them
    marked and each window's beat-interval irregularity (``rr_variation_per_window``, the RR coefficient of
    variation of ``tsvq.evaluation.physiology.heart_rhythm``) in its corner: where a
    rhythm figure is off, this shows whether beats are missed, doubled, misplaced or unlike their neighbours."""
    count = min(rows, *(len(windows) for windows, _ in sets.values()))
    fig, axes = plt.subplots(count, len(sets), figsize=(5 * len(sets), 1.6 * count + 0.6), squeeze=False, sharey=True)
    for col, (name, (windows, rhythm)) in enumerate(sets.items()):
        for row in range(count):
            ax, signal, peaks = axes[row, col], windows[row, :, 0], rhythm["peaks"][row]
            variation = rhythm["rr_variation_per_window"][row]
            ax.plot(np.arange(len(signal)) / rate_hz, signal, lw=0.8, color="C0" if col == 0 else "C3")
            ax.plot(peaks / rate_hz, signal[peaks], "kx", ms=5)
            corner = f"RR CV {variation:.2f}" if np.isfinite(variation) else f"{len(peaks)} beats"
            ax.text(0.99, 0.95, corner, transform=ax.transAxes, ha="right", va="top", fontsize=8)
        axes[0, col].set_title(name)
        axes[-1, col].set_xlabel("time (s)")
    for ax in axes[:, 0]:
        ax.set_ylabel(units)
    return _save(fig, path)


def codebook_usage(counts: np.ndarray, path: str | Path, title: str = "") -> Path:
    """Code counts sorted by frequency: a healthy codebook has a long, flat curve and few zeros."""
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ordered = np.sort(np.asarray(counts))[::-1]
    ax.bar(np.arange(len(ordered)), ordered, width=1.0)
    ax.set_xlabel("code (sorted by use)")
    ax.set_ylabel("count")
    ax.set_title(title or f"codebook usage: {(ordered > 0).sum()} of {len(ordered)} codes used")
    return _save(fig, path)


def scatter_2d(points: dict[str, np.ndarray], path: str | Path, title: str = "") -> Path:
    """2D projections of feature sets."""
    fig, ax = plt.subplots(figsize=(6, 5))
    for name, p in points.items():
        ax.scatter(p[:, 0], p[:, 1], s=8, alpha=0.5, label=name)
    ax.set_title(title)
    ax.legend()
    return _save(fig, path)


def generator_comparison(figures: dict[str, dict[str, dict]], informative: dict[str, bool], path: str | Path) -> Path:
    """One panel per figure: each generator's mean +- std over seeds as a bar, the floor as a dashed line.

    ``figures`` maps generator name -> {figure: {"mean", "std"}} and must include "floor". Panels of figures no
    baseline separates from the floor are titled "uninformative". A log axis where every mean is positive, since
    baselines sit orders of magnitude from the floor.
    """
    names = [n for n in figures["floor"] if np.isfinite(figures["floor"][n]["mean"])]
    columns = 3
    rows = int(np.ceil(len(names) / columns))
    generators = list(figures)
    palette = [f"C{i}" for i in range(10) if i != 7]  # C7 is grey, the floor's colour
    colors = ["0.5" if g == "floor" else palette[i % len(palette)] for i, g in enumerate(generators)]
    fig, axes = plt.subplots(
        rows, columns, figsize=(4.6 * columns, 0.35 * len(generators) * rows + 1.2 * rows), squeeze=False
    )
    for ax, name in zip(axes.ravel(), names):
        means = np.array([figures[g][name]["mean"] for g in generators])
        stds = np.array([figures[g][name]["std"] for g in generators])
        ax.barh(np.arange(len(generators)), means, xerr=stds, color=colors, alpha=0.8)
        ax.axvline(figures["floor"][name]["mean"], color="k", ls="--", lw=1)
        if np.all(means[np.isfinite(means)] > 0):
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # minor labels overlap on short decades
        ax.set_yticks(np.arange(len(generators)), generators, fontsize=8)
        ax.invert_yaxis()
        ax.set_title(name + ("" if informative.get(name, True) else " (uninformative)"), fontsize=9)
    for ax in axes.ravel()[len(names) :]:
        ax.axis("off")
    fig.suptitle("lower is better; dashed: real vs real floor; bars: mean ± std over seeds", fontsize=10)
    return _save(fig, path, top=0.97)


def class_examples(
    examples: dict[str, tuple[np.ndarray, np.ndarray]],
    rate_hz: float,
    path: str | Path,
    units: str = "mV",
    per_class: int = 3,
) -> Path:
    """One row per class, on its own scale: held-out real windows of the class (blue) beside windows generated with
    its label (red)."""
    labels = list(examples)
    fig, axes = plt.subplots(
        len(labels), 2 * per_class, figsize=(3 * 2 * per_class, 1.7 * len(labels) + 0.6), squeeze=False, sharey="row"
    )
    for row, label in enumerate(labels):
        real, generated = examples[label]
        for col in range(2 * per_class):
            ax = axes[row, col]
            data, index, color = (real, col, "C0") if col < per_class else (generated, col - per_class, "C3")
            if index < len(data):
                ax.plot(np.arange(data.shape[1]) / rate_hz, data[index, :, 0], lw=0.8, color=color)
            ax.set_xticks([])
            if row == 0:
                ax.set_title("real" if col < per_class else "generated", fontsize=9)
        axes[row, 0].set_ylabel(f"{label} ({units})")
    return _save(fig, path)


def class_spectra(spectra: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]], path: str | Path) -> Path:
    """One panel per class: the mean power spectrum of its held-out real windows beside that of the windows
    generated with its label (``{class: {"real": (frequencies, power), "generated": ...}}``), log scale."""
    fig, axes = _panels(len(spectra), 3, (4.2, 3))
    for ax, (label, curves) in zip(axes, spectra.items()):
        for (name, (frequencies, power)), color in zip(curves.items(), ("C0", "C3")):
            ax.semilogy(frequencies, power, lw=1.2, color=color, label=name)
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("frequency (Hz)")
    axes[0].set_ylabel("power spectral density")
    axes[0].legend(fontsize=8)
    return _save(fig, path)


TWELVE_LEAD_LAYOUT = (("I", "AVR", "V1", "V4"), ("II", "AVL", "V2", "V5"), ("III", "AVF", "V3", "V6"))


def has_twelve_leads(channel_names: list[str]) -> bool:
    """Whether the channels include the 12 standard leads (any order, aVR or AVR), so a standard sheet can be drawn."""
    names = {clean_channel_name(n).upper() for n in channel_names}
    return all(lead in names for row in TWELVE_LEAD_LAYOUT for lead in row)


def twelve_lead_sheet(
    signal: np.ndarray, rate_hz: float, channel_names: list[str], path: str | Path, title: str = ""
) -> Path:
    """One ``(L, 12)`` ECG (mV) as a cardiologist reads it: three rows of four leads, each column a quarter of the
    time (I, aVR, V1, V4 / II, aVL, V2, V5 / III, aVF, V3, V6), a lead II rhythm strip under them, on ECG paper
    (1 mm = 0.04 s or 0.1 mV; 25 mm/s, 10 mm/mV)."""
    names = [clean_channel_name(n).upper() for n in channel_names]
    if not has_twelve_leads(channel_names):
        raise ValueError(
            f"a 12-lead sheet needs the leads {[lead for row in TWELVE_LEAD_LAYOUT for lead in row]}, got "
            f"{channel_names}"
        )
    length = signal.shape[0]
    seconds, quarter = length / rate_hz, length // 4
    row_height = 3.0  # mV between baselines
    rows = [[(lead, c * quarter, (c + 1) * quarter) for c, lead in enumerate(row)] for row in TWELVE_LEAD_LAYOUT]
    rows.append([("II", 0, length)])
    fig, ax = plt.subplots(figsize=(seconds * 1.2 + 0.4, row_height * len(rows) * 0.6 + 0.6))
    for r, row in enumerate(rows):
        baseline = -r * row_height
        for lead, start, end in row:
            trace = signal[start:end, names.index(lead)]
            t = np.arange(start, end) / rate_hz
            ax.plot(t, baseline + trace - np.median(trace), color="black", lw=0.7)
            ax.text(start / rate_hz + 0.05, baseline + 0.9, lead.replace("AV", "aV"), fontsize=9)
            if start:
                ax.plot([start / rate_hz] * 2, [baseline - 0.3, baseline + 0.3], color="black", lw=0.7)
    ax.set_xlim(0, seconds)
    ax.set_ylim(-row_height * (len(rows) - 0.5), row_height * 0.5)
    for step, width, alpha in ((0.04, 0.3, 0.25), (0.2, 0.7, 0.5)):  # minor and major ECG paper lines
        for x in np.arange(0, seconds + 1e-9, step):
            ax.axvline(x, color="tab:red", lw=width, alpha=alpha, zorder=0)
        for y in np.arange(-row_height * len(rows), row_height, step * 2.5):
            ax.axhline(y, color="tab:red", lw=width, alpha=alpha, zorder=0)
    ax.set_xticks(np.arange(0, seconds + 1e-9, 1.0))
    ax.set_yticks([])
    ax.set_xlabel("time (s); 0.2 s and 0.5 mV per large square")
    ax.set_aspect(0.4)  # 0.2 s wide per 0.5 mV high: square large boxes
    if title:
        ax.set_title(title)
    return _save(fig, path)
