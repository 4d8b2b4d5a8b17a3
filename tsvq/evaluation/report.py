"""`tsvq eval`: reconstruction, codebook health and generation quality as ``report.json`` plus plots.

Each generation figure comes with a **floor** and a **ceiling**. The held-out real windows are split into two
disjoint halves A and B; the model is scored as (A vs generated), the floor as (A vs B), what a perfect generator
would get, and the ceiling as (A vs phase-randomised B), windows with the right power spectrum and no ECG
morphology. A reader sees where the model sits between "as good as real data" and "just coloured noise".
"""

from __future__ import annotations

import dataclasses
import json
import platform
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np

from tsvq import __version__, plots
from tsvq.codec.metrics import codebook_report, prdn, reconstruction_report
from tsvq.data import WindowStore
from tsvq.data.store import label_ids
from tsvq.errors import DataError
from tsvq.evaluation.features import RandomKernelFeatures
from tsvq.evaluation.generation import (
    amplitude_distance, autocorrelation_distance, discriminative_score, frechet_distance, label_classification_score,
    mean_welch_psd, mmd_rbf,
    nearest_neighbour_distances, phase_randomized, predictive_score, psd_distance_db,
)
from tsvq.evaluation.physiology import heart_rhythm, rhythm_distance
from tsvq.io import atomic_directory, read_json, write_json

REPORT_FORMAT_VERSION = 1
# Figures where smaller is better; the table shows each with its floor and ceiling.
GENERATION_FIGURES = ("frechet_distance", "mmd", "discriminative_score", "predictive_score", "psd_distance_db",
                      "autocorrelation_distance", "amplitude_wasserstein", "heart_rate_wasserstein_bpm", "rr_wasserstein_ms")


@dataclass
class EvalConfig:
    split: str = "test"
    n: int = 1000  # generated windows; real windows are capped at 2n (two halves)
    prior: str | None = None  # which of the pipeline's priors draws the samples (None: its first)
    sampling: dict = field(default_factory=dict)  # that prior's sampling options, e.g. {"steps": 20, "sampler": "dpm"}
    seed: int = 0
    num_kernels: int = 256
    folds: int = 3
    classifier_steps: int = 200  # optimiser steps of the post-hoc classifier and forecaster
    physiology: bool = True  # ECG beat detection; turn off for non-ECG signals
    plots: bool = True
    search: int = 0  # reconstruction: analysis-by-synthesis code search over this many candidates (0: nearest codes)


def package_versions() -> dict[str, str]:
    versions = {"tsvq": __version__, "python": platform.python_version()}
    for name in ("torch", "diffusers", "accelerate", "numpy", "scipy", "wfdb"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def generation_figures(reference: np.ndarray, candidate: np.ndarray, rate_hz: float, features: RandomKernelFeatures,
                       config: EvalConfig, reference_features: np.ndarray | None = None,
                       reference_rhythm: dict | None = None) -> dict[str, float]:
    """Every generation figure of ``candidate`` windows against ``reference`` real windows."""
    ref_features = reference_features if reference_features is not None else features.transform(reference)
    cand_features = features.transform(candidate)
    max_lag = min(reference.shape[1] - 1, int(2 * rate_hz))
    figures = {
        "frechet_distance": frechet_distance(ref_features, cand_features),
        "mmd": mmd_rbf(ref_features, cand_features),
        "discriminative_score": discriminative_score(reference, candidate, config.folds, config.classifier_steps, config.seed),
        "predictive_score": predictive_score(candidate, reference, config.classifier_steps, config.seed, reference=reference),
        "psd_distance_db": psd_distance_db(reference, candidate, rate_hz),
        "autocorrelation_distance": autocorrelation_distance(reference, candidate, max_lag),
        "amplitude_wasserstein": amplitude_distance(reference, candidate, seed=config.seed),
    }
    if config.physiology:
        figures |= rhythm_distance(reference_rhythm or heart_rhythm(reference, rate_hz), heart_rhythm(candidate, rate_hz))
    return figures


def check_store_matches(pipeline, store: WindowStore) -> None:
    """A pipeline scored on windows of another rate, length or channel count would give meaningless figures."""
    mismatches = [f"{what} {ours} vs the pipeline's {theirs}" for what, ours, theirs in (
        ("sampling rate (Hz)", store.sampling_rate_hz, pipeline.sampling_rate_hz),
        ("window length", store.window_length, pipeline.window_length),
        ("channels", store.num_channels, len(pipeline.channel_names))) if not np.isclose(ours, theirs)]
    if mismatches:
        raise DataError(f"{store.path}: the store does not match the pipeline: {'; '.join(mismatches)}; "
                        "prepare the data with the pipeline's settings")


def evaluate(store: WindowStore, out_dir: str | Path, config: EvalConfig | None = None, pipeline=None,
             samples: np.ndarray | None = None, progress: bool = True) -> dict:
    """Score a pipeline (reconstruction, codebook, its samples) or externally made ``samples`` (n, L, C) mV."""
    started = time.time()
    config = config or EvalConfig()
    if pipeline is not None:
        check_store_matches(pipeline, store)
    if pipeline is None and samples is None:
        raise DataError("evaluate needs a pipeline, samples, or both")
    rate = store.sampling_rate_hz
    real_index = store.subset_indices(config.split, max_windows=2 * config.n, seed=config.seed)
    real = np.asarray(store.windows[real_index])  # read once: both halves, reconstruction and labels use these
    if len(real) < 4:
        raise DataError(f"{store.path}: the '{config.split}' split has {len(real)} windows; at least 4 are needed")
    order = np.random.default_rng(config.seed).permutation(len(real))
    half_a, half_b = real[order[: len(real) // 2]], real[order[len(real) // 2 :]]
    report: dict = {"format_version": REPORT_FORMAT_VERSION, "config": dataclasses.asdict(config), "versions": package_versions(),
                    "store": str(store.path), "sampling_rate_hz": rate, "window_length": store.window_length,
                    "channel_names": store.channel_names, "units": store.units, "split_note": store.manifest.get("split_note")}
    out_dir = Path(out_dir)
    with atomic_directory(out_dir) as tmp:
        if pipeline is not None:
            report |= _codec_section(pipeline, store, real, real_index, config, tmp)
        if samples is None:
            output = pipeline.sample(config.n, config.prior, seed=config.seed, progress=progress, **config.sampling)
            samples, report["sampling"] = output.signals, output.info
        else:
            samples = np.asarray(samples, dtype=np.float32)
            if samples.ndim != 3 or samples.shape[1:] != real.shape[1:]:
                raise DataError(f"samples: expected shape (n, {real.shape[1]}, {real.shape[2]}) to match the store, got {samples.shape}")
            if not np.isfinite(samples).all():
                raise DataError("samples: contain NaN or Inf")
            report["sampling"] = {"source": "external samples"}
        report |= _generation_section(samples, half_a, half_b, store, rate, config, tmp)
        if pipeline is not None and pipeline.priors and pipeline.prior(config.prior).labels:
            report["label_classification"] = _label_section(pipeline, store, real, real_index, config)
        report["seconds"] = round(time.time() - started, 1)
        write_json(tmp / "report.json", report)
    return report


def _codec_section(pipeline, store: WindowStore, windows: np.ndarray, indices: np.ndarray, config: EvalConfig,
                   folder: Path) -> dict:
    names = store.record_names_at(indices)
    codec = pipeline.codec
    codes = codec.encode_windows(windows, search=config.search)
    reconstructions = codec.decode_codes(codes)
    recon = reconstruction_report(windows, reconstructions, names, codec.bits_per_second(),
                                  codec.compression_ratio() * codec.bits_per_second())
    health = codebook_report(codes, codec.config.num_codes)
    if config.plots:
        per_window = prdn(windows, reconstructions)
        worst, median = int(np.argmax(per_window)), int(np.argsort(per_window)[len(per_window) // 2])
        plots.overlay(windows[[worst, median]], reconstructions[[worst, median]], store.sampling_rate_hz, folder / "reconstruction.png",
                      [f"worst window: PRDN {per_window[worst]:.1f}% ({names[worst]})",
                       f"median window: PRDN {per_window[median]:.1f}% ({names[median]})"], store.units[0])
        plots.codebook_usage(np.array(health["counts"]), folder / "codebook_usage.png")
    health_summary = {k: v for k, v in health.items() if k not in ("counts", "stages")}
    recon["code_search_candidates"] = config.search
    return {"reconstruction": recon, "codebook": health_summary}


def _label_section(pipeline, store: WindowStore, test_windows: np.ndarray, indices: np.ndarray, config: EvalConfig) -> dict:
    """Train on synthetic, test on real (TSTR), beside train on real, test on real (TRTR), for a conditional prior."""
    labels = pipeline.prior(config.prior).labels
    test_names = store.index["label"][indices]
    known = np.isin(test_names, labels)
    test_windows, test_ids = test_windows[known], label_ids(test_names[known], labels)
    train_names = store.labels("train")
    train_known = np.flatnonzero(np.isin(train_names, labels))
    if len(test_ids) < 2 or len(train_known) < 2:
        return {"skipped": "too few labelled windows"}
    rng = np.random.default_rng(config.seed)
    # synthetic windows with the label mix of the training windows
    draw = label_ids(train_names[rng.choice(train_known, config.n)], labels).tolist()
    synthetic = pipeline.sample(config.n, config.prior, labels=draw, seed=config.seed, progress=False,
                                **config.sampling).signals
    chosen_train = np.sort(rng.choice(store.split_indices("train")[train_known], min(config.n, len(train_known)), replace=False))
    real_train = np.asarray(store.windows[chosen_train])
    real_ids = label_ids(store.index["label"][chosen_train], labels)
    return {
        "labels": labels, "sampling": config.sampling,
        "train_synthetic_test_real": label_classification_score(synthetic, np.array(draw), test_windows, test_ids, len(labels),
                                                                config.classifier_steps, config.seed, reference=real_train),
        "train_real_test_real": label_classification_score(real_train, real_ids, test_windows, test_ids, len(labels),
                                                           config.classifier_steps, config.seed, reference=real_train),
    }


def _generation_section(samples, half_a, half_b, store, rate, config: EvalConfig, folder: Path) -> dict:
    features = RandomKernelFeatures(store.window_length, store.num_channels, config.num_kernels, config.seed).fit_scale(half_a)
    features_a = features.transform(half_a)
    rhythm_a = heart_rhythm(half_a, rate) if config.physiology else None
    surrogate = phase_randomized(half_b, config.seed)
    # Every set is compared at the floor's size: the Frechet distance and the learned scores depend on n.
    compared = samples[np.random.default_rng(config.seed).permutation(len(samples))[: len(half_b)]]
    sets = {"model": compared, "floor": half_b, "ceiling": surrogate}
    figures = {name: generation_figures(half_a, windows, rate, features, config, features_a, rhythm_a) for name, windows in sets.items()}
    train = store.load("train", max_windows=config.n, seed=config.seed)
    train_features = features.transform(train)
    generated_nn = nearest_neighbour_distances(features.transform(samples), train_features)
    heldout_nn = nearest_neighbour_distances(features_a, train_features)
    memorisation = {
        "generated_to_train_median": float(np.median(generated_nn)), "heldout_to_train_median": float(np.median(heldout_nn)),
        "ratio": float(np.median(generated_nn) / max(np.median(heldout_nn), 1e-12)),
        "note": "ratio well below 1: generated windows sit closer to training windows than unseen real ones do (memorisation)",
    }
    section = {"generation": {"windows": {"generated": len(samples), "compared_per_set": len(half_b), "real_a": len(half_a),
                                          "real_b": len(half_b)},
                              "model": figures["model"], "floor": figures["floor"], "ceiling": figures["ceiling"]},
               "memorisation": memorisation}
    if config.plots:
        plots.signal_grid(samples, rate, folder / "examples.png", reference=half_a, units=store.units[0],
                          title="held-out real vs generated")
        frequencies, power_a = mean_welch_psd(half_a, rate)
        plots.spectra(frequencies, {"real": power_a, "generated": mean_welch_psd(samples, rate)[1],
                                    "ceiling (phase-randomised)": mean_welch_psd(surrogate, rate)[1]}, folder / "spectra.png")
        if config.physiology:
            plots.histograms({"real": rhythm_a["heart_rate_bpm"], "generated": heart_rhythm(samples, rate)["heart_rate_bpm"]},
                             folder / "heart_rate.png", "heart rate (bpm)")
        pooled = np.concatenate([features_a, features.transform(samples)])
        centred = pooled - pooled.mean(0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        projected = centred @ vt[:2].T
        plots.scatter_2d({"real": projected[: len(features_a)], "generated": projected[len(features_a) :]},
                         folder / "features_pca.png", "random-kernel features, first two principal components")
    return section


def format_table(report: dict) -> str:
    """A compact text table of the headline figures."""
    lines = []
    if "reconstruction" in report:
        r, c = report["reconstruction"], report["codebook"]
        lines.append(f"reconstruction ({r['windows']} windows): PRDN {r['prdn']:.2f}%  PRD {r['prd']:.2f}%  SNR {r['snr_db']:.1f} dB  "
                     f"CR {r.get('compression_ratio', float('nan')):.1f}  ({r.get('bits_per_second', float('nan')):.0f} bit/s)"
                     + (f"  code search: {r['code_search_candidates']} candidates" if r.get("code_search_candidates") else ""))
        lines.append(f"codebook: usage {c['usage_percent']:.1f}%  perplexity {c['perplexity']:.1f} / {c['num_codes']}  dead {c['dead_codes']}")
    gen = report.get("generation")
    if gen:
        lines.append(f"{'generation (lower is better)':<32}{'model':>12}{'floor':>12}{'ceiling':>12}")
        for name in GENERATION_FIGURES:
            if name in gen["model"]:
                values = [gen[k][name]["mean"] if isinstance(gen[k][name], dict) else gen[k][name] for k in ("model", "floor", "ceiling")]
                lines.append(f"  {name:<30}" + "".join(f"{v:>12.4g}" for v in values))
        if "beats_detected_fraction" in gen["model"]:
            lines.append(f"  {'beats_detected_fraction (higher)':<30}" + "".join(f"{gen[k]['beats_detected_fraction']:>12.3g}" for k in ("model", "floor", "ceiling")))
        m = report["memorisation"]
        lines.append(f"memorisation: generated/held-out nearest-train distance ratio {m['ratio']:.3f} (1 = like unseen real data)")
    return "\n".join(lines)


def compare_reports(path_a: str | Path, path_b: str | Path) -> str:
    """Two reports side by side."""
    load = lambda p: read_json(Path(p) / "report.json" if Path(p).is_dir() else p, "evaluation report")
    a, b = load(path_a), load(path_b)
    rows = [f"{'figure':<34}{'A':>14}{'B':>14}"]

    def value(report, *keys):
        for key in keys:
            if not isinstance(report, dict) or key not in report:
                return float("nan")
            report = report[key]
        return report["mean"] if isinstance(report, dict) else report

    for keys in (("reconstruction", "prdn"), ("reconstruction", "snr_db"), ("reconstruction", "compression_ratio"),
                 ("codebook", "usage_percent"), ("codebook", "perplexity"), *(("generation", "model", f) for f in GENERATION_FIGURES),
                 ("memorisation", "ratio")):
        rows.append(f"{'.'.join(keys[-2:]):<34}{value(a, *keys):>14.4g}{value(b, *keys):>14.4g}")
    return "\n".join(rows)


def report_json(report: dict) -> str:
    return json.dumps(report, indent=2, default=float)
