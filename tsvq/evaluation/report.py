"""`tsvq eval`: reconstruction, codebook health and generation quality as ``report.json`` plus plots.

Every generator (a pipeline's priors, external ``.npy`` samples) is scored beside the **floor** (held-out real
windows against other held-out real windows, what a perfect generator would get), two **references** that split a
prior's gap to the floor into its parts (``train_windows``: training windows as they are, the gap between the
training and held-out records that no model of the training split can close; ``train_decoded``: the same windows
through the pipeline's codec, what a perfect prior over its codes would get) and named **baselines** that
are plainly not ECG (``tsvq.evaluation.baselines``). A figure on which no baseline separates from the floor is
marked uninformative for the dataset, and a generator's figure whose gap to the floor is within the seed-to-seed
spread is marked as noise. ``tsvq.evaluation.scoring`` holds the protocol (seeds, disjoint halves, equal n); what
is scored is built in ``generators`` (priors, samples, references), ``heldout`` (the real side) and
``conditional`` (labelled priors).
"""

from __future__ import annotations

import dataclasses
import json
import platform
import time
from importlib import metadata
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from tsvq import __version__, plots
from tsvq.codec.metrics import codebook_report, prdn, reconstruction_report
from tsvq.data import WindowStore
from tsvq.errors import DataError
from tsvq.evaluation.baselines import baseline_names, fit_baselines
from tsvq.evaluation.conditional import LabelledDraws, label_section, per_class_section
from tsvq.evaluation.config import EvalConfig
from tsvq.evaluation.generation import fit_all, mean_welch_psd, nearest_shifted_distances, shapes
from tsvq.evaluation.generators import (
    Generator,
    named_samples,
    prior_generator,
    priors_to_score,
    reference_generators,
    samples_generator,
    sampling_options,
)
from tsvq.evaluation.heldout import HeldOut, held_out
from tsvq.evaluation.physiology import BeatSource, rr_irregularity
from tsvq.evaluation.scoring import (
    ScoredSet,
    below_floor,
    finish_set,
    informative_figures,
    memorisation,
    plan_set,
    score_sets,
    summarise,
    within_noise,
)
from tsvq.io import atomic_directory, check_output_path, claim_output_folder, write_json

__all__ = [
    "REPORT_FORMAT_VERSION",
    "EvalConfig",
    "evaluate",
    "report_json",
]  # EvalConfig lives in config.py; here for callers

REPORT_FORMAT_VERSION = 2


def package_versions() -> dict[str, str]:
    versions = {"tsvq": __version__, "python": platform.python_version()}
    for name in ("torch", "diffusers", "accelerate", "numpy", "scipy", "wfdb"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def check_store_matches(pipeline, store: WindowStore) -> None:
    """A pipeline scored on windows of another rate, length or channel count would give meaningless figures."""
    mismatches = [
        f"{what} {ours} vs the pipeline's {theirs}"
        for what, ours, theirs in (
            ("sampling rate (Hz)", store.sampling_rate_hz, pipeline.sampling_rate_hz),
            ("window length", store.window_length, pipeline.window_length),
            ("channels", store.num_channels, len(pipeline.channel_names)),
        )
        if not np.isclose(ours, theirs)
    ]
    if mismatches:
        raise DataError(
            f"{store.path}: the store does not match the pipeline: {'; '.join(mismatches)}; "
            "prepare the data with the pipeline's settings"
        )


def evaluate(
    store: WindowStore,
    out_dir: str | Path,
    config: EvalConfig | None = None,
    pipeline=None,
    samples: np.ndarray | dict[str, np.ndarray] | None = None,
    progress: bool = True,
    overwrite: bool = True,
) -> dict:
    """Score a pipeline (its codec, and its priors' samples) and/or external ``samples`` (n, L, C) in physical units
    (one array, or several by name), each beside the floor and the baselines; writes ``report.json`` and plots."""
    started = time.time()
    config = config or EvalConfig()
    check_output_path(out_dir, [store.path, getattr(pipeline, "folder", None)], "report folder")
    claim_output_folder(out_dir, overwrite, "report folder")  # refused before minutes of scoring, not after
    if pipeline is not None:
        check_store_matches(pipeline, store)
    external = named_samples(samples, store)
    if pipeline is None and not external:
        raise DataError("evaluate needs a pipeline, samples, or both")
    if config.seeds < 1:
        raise DataError(f"seeds must be at least 1, got {config.seeds}")
    baseline_names(config.baselines)  # an unknown name is refused before any work
    real_index = store.subset_indices(config.split, max_windows=2 * config.n, seed=config.seed)
    real = np.asarray(store.windows[real_index])  # read once: both halves, reconstruction and labels use these
    if len(real) < 4:
        raise DataError(f"{store.path}: the '{config.split}' split has {len(real)} windows; at least 4 are needed")
    report: dict = {
        "format_version": REPORT_FORMAT_VERSION,
        "config": dataclasses.asdict(config),
        "versions": package_versions(),
        "store": str(store.path),
        "sampling_rate_hz": store.sampling_rate_hz,
        "window_length": store.window_length,
        "channel_names": store.channel_names,
        "units": store.units,
        "split_note": store.manifest.get("split_note"),
    }
    priors = priors_to_score(pipeline, config, bool(external))
    # what each prior is drawn with (the pipeline's defaults, then the user's), so the report records it
    options = {
        name: pipeline.sampling_for(name, sampling_options(pipeline, name, priors, config.sampling)) for name in priors
    }
    draws = {
        name: LabelledDraws(pipeline, name, options[name], store, config.n)
        for name in priors
        if pipeline.priors[name].labels
    }
    generators = [prior_generator(pipeline, name, options[name], config, draws.get(name)) for name in priors]
    generators += [samples_generator(name, windows, config) for name, windows in external.items()]
    out_dir = Path(out_dir)
    with atomic_directory(out_dir, overwrite, "report folder") as tmp:
        if pipeline is not None:
            report |= _codec_section(pipeline, store, real, real_index, config, tmp)
        heldout = held_out(store, real, real_index, config)
        if config.references:
            generators += reference_generators(pipeline, heldout)
        report |= _generation_section(generators, heldout, config, tmp, progress)
        if draws:
            report["label_classification"] = {name: label_section(draws[name], heldout, config) for name in draws}
            report["per_class"] = {
                name: per_class_section(pipeline, name, options[name], heldout, config, tmp) for name in draws
            }
        report["seconds"] = round(time.time() - started, 1)
        write_json(tmp / "report.json", report)
    return report


def _codec_section(
    pipeline, store: WindowStore, windows: np.ndarray, indices: np.ndarray, config: EvalConfig, folder: Path
) -> dict:
    names = store.record_names_at(indices)
    codec = pipeline.codec
    codes = codec.encode_windows(windows, search=config.search)
    reconstructions = codec.decode_codes(codes)
    recon = reconstruction_report(
        windows, reconstructions, names, codec.bits_per_second(), codec.compression_ratio() * codec.bits_per_second()
    )
    health = codebook_report(codes, codec.config.num_codes)
    if config.plots:
        per_window = prdn(windows, reconstructions)
        worst, median = int(np.argmax(per_window)), int(np.argsort(per_window)[len(per_window) // 2])
        plots.overlay(
            windows[[worst, median]],
            reconstructions[[worst, median]],
            store.sampling_rate_hz,
            folder / "reconstruction.png",
            [
                f"worst window: PRDN {per_window[worst]:.1f}% ({names[worst]})",
                f"median window: PRDN {per_window[median]:.1f}% ({names[median]})",
            ],
            store.units[0],
        )
        plots.codebook_usage(np.array(health["counts"]), folder / "codebook_usage.png")
    health_summary = {k: v for k, v in health.items() if k not in ("counts", "stages")}
    recon["code_search_candidates"] = config.search
    # the codec's figures are the pipeline's, never an external generator's: the report says whose they are
    return {"codec_of": pipeline.name, "reconstruction": recon, "codebook": health_summary}


def _generation_section(
    generators: list[Generator], heldout: HeldOut, config: EvalConfig, folder: Path, progress: bool
) -> dict:
    store, real, train = heldout.store, heldout.windows, heldout.train
    rate = store.sampling_rate_hz
    baselines = fit_baselines(train, config.baselines)
    generators = generators + [
        Generator(name, "baseline", lambda index, seed, size, b=b: b.sample(size, seed), b.info)
        for name, b in baselines.items()
    ]
    names = ["floor"] + [g.name for g in generators]
    figures: dict[str, list] = {name: [] for name in names}
    copying: dict[str, list] = {name: [] for name in names}
    real_sizes: dict[str, list] = {"reference": [], "floor": [], "dropped_overlapping": []}
    first_draw: dict[str, ScoredSet] = {}  # each generator's first seed, for the plots
    seeds = config.seed_list
    for index, seed in enumerate(tqdm(seeds, desc="scoring seeds", disable=not progress)):
        split = heldout.halves(np.arange(len(real)), seed)
        reference, floor = split.reference, split.floor
        if min(len(reference.windows), len(floor.windows)) < 2:
            raise DataError(
                f"{store.path}: the '{config.split}' split's {len(real)} windows leave too few for two "
                "non-overlapping halves; hold out more windows"
            )
        for key, value in (
            ("reference", len(reference.windows)),
            ("floor", len(floor.windows)),
            ("dropped_overlapping", split.dropped),
        ):
            real_sizes[key].append(value)
        heldout_distance = float(np.median(heldout.train_distances[split.reference_positions]))
        heldout_shape_distance = float(np.median(heldout.train_shape_distances[split.reference_positions]))
        copying["floor"].append(
            {
                "ratio": memorisation(heldout.train_distances[split.floor_positions], heldout_distance),
                "shape_ratio": memorisation(
                    heldout.train_shape_distances[split.floor_positions], heldout_shape_distance
                ),
            }
        )
        # every set of the seed is drawn and its learned models built first, so all their fits train side by side
        planned = {"floor": plan_set(reference, floor, config.folds, config.classifier_steps, seed, len(floor.windows))}
        drawn = [generator.draw(index, seed, len(floor.windows)) for generator in generators]
        scored_sets = score_sets(drawn, heldout.features, rate, heldout.beat_source, heldout.morphology)
        for generator, windows, scored in zip(generators, drawn, scored_sets, strict=True):
            first_draw.setdefault(generator.name, scored)
            planned[generator.name] = plan_set(
                reference, scored, config.folds, config.classifier_steps, seed, len(floor.windows)
            )
            copying[generator.name].append(
                {
                    "ratio": memorisation(nearest_shifted_distances(windows, train), heldout_distance),
                    "shape_ratio": memorisation(
                        nearest_shifted_distances(shapes(windows), heldout.train_shapes), heldout_shape_distance
                    ),
                }
            )
        learned = fit_all([pending.learned for pending in planned.values()])
        for (name, pending), scores in zip(planned.items(), learned, strict=True):
            figures[name].append(finish_set(pending, scores, rate))
    summaries = {name: summarise(figures[name]) for name in names}
    kinds = {"floor": ("floor", {})} | {g.name: (g.kind, g.info) for g in generators}
    copied = {name: summarise(copying[name]) for name in names}
    scored = {
        name: {
            "kind": kinds[name][0],
            "windows_per_seed": real_sizes["floor"] if name == "floor" else len(first_draw[name].windows),
            "info": kinds[name][1],
            "figures": summaries[name],
            "memorisation_ratio": copied[name]["ratio"],
            "shape_memorisation_ratio": copied[name]["shape_ratio"],
        }
        for name in names
    }
    informative = informative_figures(summaries["floor"], {name: summaries[name] for name in baselines})
    compared = [g.name for g in generators if g.kind not in ("baseline", "reference")]
    references = [g.name for g in generators if g.kind == "reference"]
    smallest_floor = min(real_sizes["floor"])
    section = {
        "generation": {
            "seeds": seeds,
            "windows_requested": config.n,
            "real": {"held_out": len(real), "halves": config.floor_halves, **real_sizes},
            "note": (
                f"every generator under test is scored against the reference half in chunks of the floor half's size "
                f"({smallest_floor}-{max(real_sizes['floor'])} windows), mean over chunks, so every sample counts and "
                "all "
                "are compared at the floor's n; baselines draw the floor's n"
                + (f"; the real side is smaller than the {config.n} requested" if smallest_floor < config.n else "")
            ),
            "generators": scored,
            "compared": compared,
            "references": references,
            "baselines": list(baselines),
            "informative": informative,
            "within_noise": {name: within_noise(summaries[name], summaries["floor"]) for name in compared},
            "below_floor": {name: below_floor(summaries[name], summaries["floor"]) for name in compared},
            "beats": heldout.beat_source.describe() if heldout.beat_source else "off",
            "morphology": (
                "P/QRS/T delineation by neurokit2 (DWT)"
                if heldout.morphology
                else "skipped: install neurokit2 (pip install 'tsvq[morphology]')"
                if heldout.beat_source and heldout.beat_source.kind == "ecg" and config.morphology
                else "off"
            ),
            "memorisation_note": "median nearest-training-window distance over that of held-out real windows: well "
            "below 1 "
            "means copying; it says nothing about quality (noise far from everything scores above 1). "
            "shape_memorisation_ratio: the same of the windows' shapes (mean removed, unit norm), which a set "
            "drawn quieter or louder than the real one does not move",
        }
    }
    if config.plots:
        _generation_plots(
            first_draw,
            heldout.scored,
            heldout.beat_source,
            section["generation"],
            rate,
            store.units[0],
            store.channel_names,
            folder,
        )
    return section


def _generation_plots(
    draws: dict[str, ScoredSet],
    real: ScoredSet,
    beat_source: BeatSource | None,
    generation: dict,
    rate: float,
    units: str,
    channel_names: list[str],
    folder: Path,
) -> None:
    """The plots of the first seed's draws, from the features and beats already computed for scoring; which
    generators are compared, references or baselines is the generation section's."""
    compared, references, baselines = generation["compared"], generation["references"], generation["baselines"]
    if compared:
        plots.signal_grid(
            draws[compared[0]].windows,
            rate,
            folder / "examples.png",
            reference=real.windows,
            units=units,
            title=f"held-out real vs generated ({compared[0]})",
        )
    if plots.has_twelve_leads(channel_names):
        plots.twelve_lead_sheet(
            real.windows[0], rate, channel_names, folder / "twelve_lead_real.png", "held-out real ECG"
        )
        for name in compared:
            plots.twelve_lead_sheet(
                draws[name].windows[0],
                rate,
                channel_names,
                folder / f"twelve_lead_{name}.png",
                f"generated ECG ({name})",
            )
    frequencies, power_real = mean_welch_psd(real.windows, rate)
    plots.spectra(
        frequencies,
        {"real (held out)": power_real}
        | {name: mean_welch_psd(draws[name].windows, rate)[1] for name in compared + baselines},
        folder / "spectra.png",
    )
    if real.rhythm is not None:
        plots.histograms(
            {"real": real.rhythm["heart_rate_bpm"]} | {name: draws[name].rhythm["heart_rate_bpm"] for name in compared},
            folder / "heart_rate.png",
            "pulse rate (per minute)" if real.rhythm["kind"] == "ppg" else "heart rate (bpm)",
        )
        rhythms = {"real": real.rhythm} | {name: draws[name].rhythm for name in compared + references}
        plots.histograms(
            {name: rr_irregularity(rhythm) for name, rhythm in rhythms.items()},
            folder / "rr_irregularity.png",
            "beat-interval irregularity per window (RR coefficient of variation)",
        )
        shown = {"real": real.windows} | {name: draws[name].windows for name in compared}
        plots.beat_examples(
            {name: (beat_source.lead(windows), rhythms[name]) for name, windows in shown.items()},
            rate,
            folder / "beats.png",
            beat_source.unit,
        )
    if real.eeg is not None:
        plots.histogram_grid(
            {
                feature: {"real": real.eeg[feature]} | {name: draws[name].eeg[feature] for name in compared}
                for feature in real.eeg
            },
            folder / "eeg_figures.png",
        )
    sets = {"real": real.features} | {name: draws[name].features for name in compared}
    pooled = np.concatenate(list(sets.values()))
    centred = pooled - pooled.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    projected, at = {}, 0
    for name, values in sets.items():
        projected[name] = centred[at : at + len(values)] @ vt[:2].T
        at += len(values)
    plots.scatter_2d(projected, folder / "features_pca.png", "random-kernel features, first two principal components")
    plots.generator_comparison(
        {name: generation["generators"][name]["figures"] for name in ["floor"] + compared + references + baselines},
        generation["informative"],
        folder / "comparison.png",
    )


def report_json(report: dict) -> str:
    return json.dumps(report, indent=2, default=float)
