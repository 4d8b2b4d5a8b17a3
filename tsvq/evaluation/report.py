"""`tsvq eval`: reconstruction, codebook health and generation quality as ``report.json`` plus plots.

Every generator (a pipeline's priors, external ``.npy`` samples) is scored beside the **floor** (held-out real
windows against other held-out real windows, what a perfect generator would get), two **references** that split a
prior's gap to the floor into its parts (``train_windows``: training windows as they are, the gap between the
training and held-out records that no model of the training split can close; ``train_decoded``: the same windows
through the pipeline's codec, what a perfect prior over its codes would get) and named **baselines** that
are plainly not ECG (``tsvq.evaluation.baselines``). A figure on which no baseline separates from the floor is
marked uninformative for the dataset, and a generator's figure whose gap to the floor is within the seed-to-seed
spread is marked as noise. ``tsvq.evaluation.scoring`` holds the protocol (seeds, disjoint halves, equal n).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import platform
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm.auto import tqdm

from tsvq import __version__, plots
from tsvq.codec.metrics import codebook_report, prdn, reconstruction_report
from tsvq.data import WindowStore
from tsvq.data.store import label_ids
from tsvq.errors import ConfigError, DataError
from tsvq.evaluation.baselines import baseline_names, fit_baselines
from tsvq.evaluation.features import RandomKernelFeatures
from tsvq.evaluation.classify import classify_features
from tsvq.evaluation.generation import fit_all, mean_welch_psd, nearest_shifted_distances
from tsvq.evaluation.morphology import available as morphology_available
from tsvq.evaluation.physiology import BEAT_KINDS, BeatSource, beat_source, rr_irregularity
from tsvq.evaluation.scoring import (
    ScoredSet, below_floor, disjoint_halves, distribution_figures, finish_set, informative_figures, memorisation, overlap_groups,
    plan_set, summarise, within_noise,
)
from tsvq.io import atomic_directory, write_json
from tsvq.priors.base import option_names

REPORT_FORMAT_VERSION = 2


@dataclass
class EvalConfig:
    split: str = "test"
    n: int = 1000  # windows drawn from each generator per seed; real windows are capped at 2n (two halves)
    prior: str | None = None  # the pipeline's prior to score (None: its first, unless only external samples are scored)
    priors: list[str] = field(default_factory=list)  # more of the pipeline's priors, side by side (`--compare`)
    sampling: dict = field(default_factory=dict)  # the priors' sampling options, e.g. {"steps": 20, "sampler": "dpm"}
    seed: int = 0
    seeds: int = 3  # figures are mean +- std over this many seeds (real split, samples and classifiers reseeded)
    baselines: list[str] | None = None  # named baselines to score beside the generators (None: all of them)
    train_windows: int = 2000  # training windows the baselines are fitted to and memorisation is measured against
    num_kernels: int = 256
    folds: int = 3
    classifier_steps: int = 200  # optimiser steps of the post-hoc classifier and forecaster
    physiology: str = "auto"  # beats: "ecg" (QRS), "ppg" (pulse peaks), "none", or "auto" (from the channels)
    morphology: bool = True  # ECG beat delineation (P/QRS/T), when neurokit2 is installed (tsvq[morphology])
    plots: bool = True
    search: int = 0  # reconstruction: analysis-by-synthesis code search over this many candidates (0: nearest codes)
    references: bool = True  # score the train_windows and train_decoded references (the parts of a prior's gap)

    def __post_init__(self) -> None:
        if isinstance(self.physiology, bool):  # the flag of report format 1
            self.physiology = "auto" if self.physiology else "none"
        if self.physiology not in ("auto", "none", *BEAT_KINDS):
            raise ConfigError(f"physiology must be auto, none, ecg or ppg, not {self.physiology!r}")

    @property
    def seed_list(self) -> list[int]:
        """The seeds every figure is averaged over."""
        return [self.seed + i for i in range(self.seeds)]


@dataclass
class Generator:
    """Something that draws windows: ``draw(seed index, seed, floor size) -> (n, L, C)`` in physical units.
    Generators under test draw the requested n; baselines draw the floor's n (one chunk: they calibrate the
    figures, and more of them would only cost time)."""

    name: str
    kind: str  # "prior", "samples" or "baseline"
    draw: Callable[[int, int, int], np.ndarray]
    info: dict = field(default_factory=dict)


@dataclass
class RealSplit:
    """One seed's reference and floor halves (with the groups of their overlapping windows), their positions among
    the held-out windows, and how many windows were dropped to keep the halves apart."""

    reference: ScoredSet
    floor: ScoredSet
    reference_positions: np.ndarray
    floor_positions: np.ndarray
    dropped: int


@dataclass
class HeldOut:
    """The held-out real windows with everything scoring needs computed once, and the training windows."""

    store: WindowStore
    index: np.ndarray  # store positions of the held-out windows
    scored: ScoredSet
    train: np.ndarray
    features: RandomKernelFeatures
    beat_source: BeatSource | None
    morphology: bool

    @property
    def windows(self) -> np.ndarray:
        return self.scored.windows

    @functools.cached_property
    def train_distances(self) -> np.ndarray:
        """Each held-out window's distance to its nearest training window (best circular shift): measured once,
        since every seed's reference and floor halves are subsets of these windows."""
        return nearest_shifted_distances(self.windows, self.train)

    def halves(self, positions: np.ndarray, seed: int) -> RealSplit:
        """Reference and floor halves of the held-out windows at ``positions`` that share no sample."""
        records, starts = self.store.index["record"][self.index[positions]], self.store.index["start"][self.index[positions]]
        halves = disjoint_halves(records, starts, self.store.window_length, seed)
        reference, floor = (self.scored.subset(positions[part], overlap_groups(records[part], starts[part], self.store.window_length))
                            for part in (halves.reference, halves.floor))
        return RealSplit(reference, floor, positions[halves.reference], positions[halves.floor], halves.dropped)


def held_out(store: WindowStore, real: np.ndarray, real_index: np.ndarray, config: EvalConfig) -> HeldOut:
    train = store.load("train", max_windows=config.train_windows, seed=config.seed)
    if len(train) < 2:
        raise DataError(f"{store.path}: the 'train' split has {len(train)} windows; the baselines need at least 2")
    features = RandomKernelFeatures(store.window_length, store.num_channels, config.num_kernels, config.seed).fit_scale(train)
    beats = beat_source(store.channel_names, store.units, config.physiology)
    morphology = bool(beats) and beats.kind == "ecg" and config.morphology and morphology_available()
    return HeldOut(store, real_index, ScoredSet.of(real, features, store.sampling_rate_hz, beats, morphology),
                   train, features, beats, morphology)


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
    mismatches = [f"{what} {ours} vs the pipeline's {theirs}" for what, ours, theirs in (
        ("sampling rate (Hz)", store.sampling_rate_hz, pipeline.sampling_rate_hz),
        ("window length", store.window_length, pipeline.window_length),
        ("channels", store.num_channels, len(pipeline.channel_names))) if not np.isclose(ours, theirs)]
    if mismatches:
        raise DataError(f"{store.path}: the store does not match the pipeline: {'; '.join(mismatches)}; "
                        "prepare the data with the pipeline's settings")


def evaluate(store: WindowStore, out_dir: str | Path, config: EvalConfig | None = None, pipeline=None,
             samples: np.ndarray | dict[str, np.ndarray] | None = None, progress: bool = True) -> dict:
    """Score a pipeline (its codec, and its priors' samples) and/or external ``samples`` (n, L, C) in physical units
    (one array, or several by name), each beside the floor and the baselines; writes ``report.json`` and plots."""
    started = time.time()
    config = config or EvalConfig()
    if pipeline is not None:
        check_store_matches(pipeline, store)
    external = _named_samples(samples, store)
    if pipeline is None and not external:
        raise DataError("evaluate needs a pipeline, samples, or both")
    if config.seeds < 1:
        raise DataError(f"seeds must be at least 1, got {config.seeds}")
    baseline_names(config.baselines)  # an unknown name is refused before any work
    real_index = store.subset_indices(config.split, max_windows=2 * config.n, seed=config.seed)
    real = np.asarray(store.windows[real_index])  # read once: both halves, reconstruction and labels use these
    if len(real) < 4:
        raise DataError(f"{store.path}: the '{config.split}' split has {len(real)} windows; at least 4 are needed")
    report: dict = {"format_version": REPORT_FORMAT_VERSION, "config": dataclasses.asdict(config), "versions": package_versions(),
                    "store": str(store.path), "sampling_rate_hz": store.sampling_rate_hz, "window_length": store.window_length,
                    "channel_names": store.channel_names, "units": store.units, "split_note": store.manifest.get("split_note")}
    priors = _priors_to_score(pipeline, config, bool(external))
    # what each prior is drawn with (the pipeline's defaults, then the user's), so the report records it
    options = {name: pipeline.sampling_for(name, _options_for(pipeline, name, priors, config.sampling)) for name in priors}
    draws = {name: LabelledDraws(pipeline, name, options[name], store, config.n) for name in priors if pipeline.priors[name].labels}
    generators = [_prior_generator(pipeline, name, options[name], config, draws.get(name)) for name in priors]
    generators += [_samples_generator(name, windows, config) for name, windows in external.items()]
    out_dir = Path(out_dir)
    with atomic_directory(out_dir) as tmp:
        if pipeline is not None:
            report |= _codec_section(pipeline, store, real, real_index, config, tmp)
        heldout = held_out(store, real, real_index, config)
        if config.references:
            generators += _reference_generators(pipeline, heldout)
        report |= _generation_section(generators, heldout, config, tmp, progress)
        if draws:
            report["label_classification"] = {name: _label_section(draws[name], heldout, config) for name in draws}
            report["per_class"] = {name: _per_class_section(pipeline, name, options[name], heldout, config, tmp)
                                   for name in draws}
        report["seconds"] = round(time.time() - started, 1)
        write_json(tmp / "report.json", report)
    return report


def _named_samples(samples, store: WindowStore) -> dict[str, np.ndarray]:
    """External samples by name, each checked against the store's window shape."""
    if samples is None:
        return {}
    named = samples if isinstance(samples, dict) else {"samples": samples}
    checked = {}
    for name, windows in named.items():
        windows = np.asarray(windows, dtype=np.float32)
        expected = (store.window_length, store.num_channels)
        if windows.ndim != 3 or windows.shape[1:] != expected or len(windows) < 2:
            raise DataError(f"{name}: expected samples of shape (n >= 2, {expected[0]}, {expected[1]}) to match the store, "
                            f"got {windows.shape}")
        if not np.isfinite(windows).all():
            raise DataError(f"{name}: the samples contain NaN or Inf")
        checked[name] = windows
    return checked


def _priors_to_score(pipeline, config: EvalConfig, has_samples: bool) -> list[str]:
    if pipeline is None:
        return []
    names = ([config.prior] if config.prior else []) + [p for p in config.priors if p != config.prior]
    for name in names:
        pipeline.prior(name)  # refuses an unknown name, naming the ones there are
    if not names and not has_samples and pipeline.priors:
        names = [next(iter(pipeline.priors))]
    return names


def _options_for(pipeline, name: str, priors: list[str], sampling: dict) -> dict:
    """One prior scored: all options, so one it lacks is refused by name. Several side by side: each takes the
    options it has, and an option none of them has is refused."""
    if len(priors) <= 1:
        return sampling
    fields = {p: option_names(pipeline.priors[p]) for p in priors}
    unknown = [k for k in sampling if not any(k in names for names in fields.values())]
    if unknown:
        raise ConfigError(f"sampling options {unknown}: none of the compared priors {priors} has them")
    return {k: v for k, v in sampling.items() if k in fields[name]}


class LabelledDraws:
    """A conditional prior scored as it is used: each seed draws labels with the training split's label mix and
    samples with them at the chosen options. Sampled without labels it would show only the "no label" mode that
    label dropout trains, which guidance never touches. The pooled figures and the TSTR section score the same
    draw (same seed, labels and options give the same samples), so each seed's is sampled once and kept."""

    def __init__(self, pipeline, name: str, sampling: dict, store: WindowStore, n: int):
        self.pipeline, self.name, self.sampling, self.n = pipeline, name, sampling, n
        self.labels = pipeline.priors[name].labels
        train_names = store.labels("train")
        self.mix = train_names[np.isin(train_names, self.labels)]  # the training windows' labels this prior knows
        self._kept: dict[int, tuple[np.ndarray, np.ndarray, dict]] = {}

    def label_ids(self, rng: np.random.Generator) -> np.ndarray:
        """n labels in the training mix, drawn with ``rng`` (which the caller may go on using)."""
        return label_ids(self.mix[rng.choice(len(self.mix), self.n)], self.labels)

    def sample(self, seed: int) -> tuple[np.ndarray, np.ndarray, dict]:
        """The seed's (signals, label ids, sampling info), sampled on first use."""
        if seed not in self._kept:
            ids = self.label_ids(np.random.default_rng(seed))
            output = self.pipeline.sample(self.n, self.name, labels=ids.tolist(), seed=seed, progress=False, **self.sampling)
            self._kept[seed] = (output.signals, ids, output.info)
        return self._kept[seed]


def _prior_generator(pipeline, name: str, sampling: dict, config: EvalConfig, draws: LabelledDraws | None) -> Generator:
    """A prior's generator; a conditional one's (``draws``) samples with labels in the training mix."""
    info: dict = {}

    def draw(index: int, seed: int, floor_size: int) -> np.ndarray:
        if draws is None or not len(draws.mix):
            output = pipeline.sample(config.n, name, seed=seed, progress=False, **sampling)  # the seeds' bar shows progress
            info.update(output.info)
            return output.signals
        signals, ids, sample_info = draws.sample(seed)
        names, counts = np.unique(np.asarray(draws.labels)[ids], return_counts=True)
        info.update(sample_info)
        info["labels_drawn"] = {"mix": "the training split's label frequencies",
                                "counts_last_seed": {str(k): int(v) for k, v in zip(names, counts)}}
        return signals

    return Generator(name, "prior", draw, info)


def _samples_generator(name: str, windows: np.ndarray, config: EvalConfig) -> Generator:
    """External samples cannot be redrawn: with enough of them, each seed scores its own disjoint share."""
    parts = np.array_split(np.random.default_rng(config.seed).permutation(len(windows)), config.seeds)
    shared = min(len(part) for part in parts) < 2
    note = (f"{len(windows)} windows, too few to share among {config.seeds} seeds: all of them at every seed" if shared
            else f"{len(windows)} windows in {config.seeds} disjoint shares, one per seed")
    return Generator(name, "samples", lambda index, seed, _: windows if shared else windows[parts[index]], {"source": "external samples",
                                                                                                          "note": note})


def _reference_generators(pipeline, heldout: HeldOut) -> list[Generator]:
    """``train_windows``: the floor's n training windows as they are (seeded); ``train_decoded``: the same windows
    encoded and decoded by the pipeline's codec. A prior's gap to the floor is then the split's gap (floor ->
    train_windows), the codec's (-> train_decoded) and the prior's own (-> the prior): a target below a reference
    cannot be reached by improving what comes after it."""
    train = heldout.train

    def pick(seed: int, size: int) -> np.ndarray:
        rng = np.random.default_rng([seed, 7])  # its own stream: the baselines' draws stay as they were
        return train[np.sort(rng.choice(len(train), min(size, len(train)), replace=False))]

    note = "training windows: their memorisation ratio is ~0 by construction"
    generators = [Generator("train_windows", "reference", lambda index, seed, size: pick(seed, size),
                            {"what": "training windows as they are: the gap between the training and held-out records", "note": note})]
    if pipeline is not None:
        codec = pipeline.codec
        generators.append(Generator("train_decoded", "reference",
                                    lambda index, seed, size: codec.decode_codes(codec.encode_windows(pick(seed, size))),
                                    {"what": "the same training windows encoded and decoded by the codec: a perfect prior "
                                             "over its codes", "note": note}))
    return generators


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
    # the codec's figures are the pipeline's, never an external generator's: the report says whose they are
    return {"codec_of": pipeline.name, "reconstruction": recon, "codebook": health_summary}


def _label_section(draws: LabelledDraws, heldout: HeldOut, config: EvalConfig) -> dict:
    """Train on synthetic, test on real (TSTR), beside train on real, test on real (TRTR), for a conditional prior:
    each seed's synthetic windows are the pooled figures' draw (n windows in the training split's label mix), its
    real ones n training windows, and both classifiers are tested on every labelled held-out window. Means over the
    seeds, with their spread."""
    store, labels, sampling = heldout.store, draws.labels, draws.sampling
    test_names = store.index["label"][heldout.index]
    known = np.isin(test_names, labels)
    test_features, test_ids = heldout.scored.features[known], label_ids(test_names[known], labels)  # computed once
    train_known = np.flatnonzero(np.isin(store.labels("train"), labels))
    if len(test_ids) < 2 or len(train_known) < 2:
        return {"skipped": "too few labelled windows"}
    per_seed: dict[str, list[dict]] = {"train_synthetic_test_real": [], "train_real_test_real": []}
    for seed in config.seed_list:
        rng = np.random.default_rng(seed)
        draws.label_ids(rng)  # the draw's labels come first from this seed's stream; the real windows follow
        synthetic, draw, _ = draws.sample(seed)
        chosen_train = np.sort(rng.choice(store.split_indices("train")[train_known], min(config.n, len(train_known)), replace=False))
        real_ids = label_ids(store.index["label"][chosen_train], labels)
        for key, (windows, ids) in (("train_synthetic_test_real", (synthetic, draw)),
                                    ("train_real_test_real", (np.asarray(store.windows[chosen_train]), real_ids))):
            per_seed[key].append(classify_features(heldout.features.transform(windows), ids, test_features, test_ids, len(labels), seed))
    section = {"labels": labels, "sampling": sampling, "seeds": config.seed_list}
    for key, scores in per_seed.items():
        figures = ("accuracy", "balanced_accuracy", "macro_f1")
        section[key] = {name: float(np.mean([s[name] for s in scores])) for name in figures} | {
            "std": {name: float(np.std([s[name] for s in scores])) for name in figures},
            "f1_per_class": {labels[c]: float(np.mean([s["f1_per_class"][c] for s in scores])) for c in scores[0]["f1_per_class"]},
            "per_seed": [{name: s[name] for name in figures} for s in scores],
            "classifier": scores[0]["classifier"],
            "train_windows": scores[0]["train_windows"], "test_windows": scores[0]["test_windows"]}
    return section


def _per_class_section(pipeline, prior: str, sampling: dict, heldout: HeldOut, config: EvalConfig, folder: Path) -> dict:
    """Each class of a conditional prior on its own: samples drawn with the label against the held-out windows of
    that label, beside the floor of the class's own two halves, mean +- std over the seeds. Each seed draws as many
    samples per class as the class's floor half holds (one chunk), and the learned discriminative score is left
    out, so a class costs seconds; the whole-report figures above score every generator in full."""
    store, rate = heldout.store, heldout.store.sampling_rate_hz
    labels = pipeline.prior(prior).labels
    names = store.index["label"][heldout.index]
    section, examples = {}, {}
    for label in labels:
        positions = np.flatnonzero(names == label)
        model, floor_figures, sizes = [], [], []
        for seed in config.seed_list:
            split = heldout.halves(positions, seed)
            reference, floor = split.reference, split.floor
            if min(len(reference.windows), len(floor.windows)) < 2:
                break
            samples = pipeline.sample(len(floor.windows), prior, labels=[label] * len(floor.windows), seed=seed, progress=False,
                                      **sampling).signals
            examples.setdefault(label, (floor.windows, samples))
            scored = ScoredSet.of(samples, heldout.features, rate, heldout.beat_source, heldout.morphology)
            model.append(distribution_figures(reference, scored, rate, config.classifier_steps, seed))
            floor_figures.append(distribution_figures(reference, floor, rate, config.classifier_steps, seed))
            sizes.append(len(floor.windows))
        if len(model) < config.seeds:
            section[label] = {"skipped": f"{len(positions)} held-out windows of this class: too few for two halves"}
            continue
        section[label] = {"windows_per_seed": sizes, "model": summarise(model), "floor": summarise(floor_figures)}
    if config.plots and examples:
        plots.class_examples(examples, rate, folder / f"classes_{prior}.png", store.units[0])
    return section


def _generation_section(generators: list[Generator], heldout: HeldOut, config: EvalConfig, folder: Path, progress: bool) -> dict:
    store, real, train = heldout.store, heldout.windows, heldout.train
    rate = store.sampling_rate_hz
    baselines = fit_baselines(train, config.baselines)
    generators = generators + [Generator(name, "baseline", lambda index, seed, size, b=b: b.sample(size, seed), b.info)
                               for name, b in baselines.items()]
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
            raise DataError(f"{store.path}: the '{config.split}' split's {len(real)} windows leave too few for two "
                            "non-overlapping halves; hold out more windows")
        for key, value in (("reference", len(reference.windows)), ("floor", len(floor.windows)), ("dropped_overlapping", split.dropped)):
            real_sizes[key].append(value)
        heldout_distance = float(np.median(heldout.train_distances[split.reference_positions]))
        copying["floor"].append({"ratio": memorisation(heldout.train_distances[split.floor_positions], heldout_distance)})
        # every set of the seed is drawn and its learned models built first, so all their fits train side by side
        planned = {"floor": plan_set(reference, floor, config.folds, config.classifier_steps, seed, len(floor.windows))}
        for generator in generators:
            windows = generator.draw(index, seed, len(floor.windows))
            scored = ScoredSet.of(windows, heldout.features, rate, heldout.beat_source, heldout.morphology)
            first_draw.setdefault(generator.name, scored)
            planned[generator.name] = plan_set(reference, scored, config.folds, config.classifier_steps, seed, len(floor.windows))
            copying[generator.name].append({"ratio": memorisation(nearest_shifted_distances(windows, train), heldout_distance)})
        learned = fit_all([pending.learned for pending in planned.values()])
        for (name, pending), scores in zip(planned.items(), learned, strict=True):
            figures[name].append(finish_set(pending, scores, rate))
    summaries = {name: summarise(figures[name]) for name in names}
    kinds = {"floor": ("floor", {})} | {g.name: (g.kind, g.info) for g in generators}
    scored = {name: {"kind": kinds[name][0], "windows_per_seed": real_sizes["floor"] if name == "floor" else len(first_draw[name].windows),
                     "info": kinds[name][1], "figures": summaries[name], "memorisation_ratio": summarise(copying[name])["ratio"]}
              for name in names}
    informative = informative_figures(summaries["floor"], {name: summaries[name] for name in baselines})
    compared = [g.name for g in generators if g.kind not in ("baseline", "reference")]
    references = [g.name for g in generators if g.kind == "reference"]
    smallest_floor = min(real_sizes["floor"])
    section = {"generation": {
        "seeds": seeds, "windows_requested": config.n, "real": {"held_out": len(real), **real_sizes},
        "note": (f"every generator under test is scored against the reference half in chunks of the floor half's size "
                 f"({smallest_floor}-{max(real_sizes['floor'])} windows), mean over chunks, so every sample counts and all "
                 "are compared at the floor's n; baselines draw the floor's n" +
                 (f"; the real side is smaller than the {config.n} requested" if smallest_floor < config.n else "")),
        "generators": scored, "compared": compared, "references": references, "baselines": list(baselines),
        "informative": informative, "within_noise": {name: within_noise(summaries[name], summaries["floor"]) for name in compared},
        "below_floor": {name: below_floor(summaries[name], summaries["floor"]) for name in compared},
        "beats": heldout.beat_source.describe() if heldout.beat_source else "off",
        "morphology": ("P/QRS/T delineation by neurokit2 (DWT)" if heldout.morphology else
                       "skipped: install neurokit2 (pip install 'tsvq[morphology]')"
                       if heldout.beat_source and heldout.beat_source.kind == "ecg" and config.morphology else "off"),
        "memorisation_note": "median nearest-training-window distance over that of held-out real windows: well below 1 "
                             "means copying; it says nothing about quality (noise far from everything scores above 1)",
    }}
    if config.plots:
        _generation_plots(first_draw, heldout.scored, heldout.beat_source, section["generation"], rate, store.units[0], store.channel_names, folder)
    return section


def _generation_plots(draws: dict[str, ScoredSet], real: ScoredSet, beat_source: BeatSource | None, generation: dict,
                      rate: float, units: str, channel_names: list[str], folder: Path) -> None:
    """The plots of the first seed's draws, from the features and beats already computed for scoring; which
    generators are compared, references or baselines is the generation section's."""
    compared, references, baselines = generation["compared"], generation["references"], generation["baselines"]
    if compared:
        plots.signal_grid(draws[compared[0]].windows, rate, folder / "examples.png", reference=real.windows, units=units,
                          title=f"held-out real vs generated ({compared[0]})")
    if plots.has_twelve_leads(channel_names):
        plots.twelve_lead_sheet(real.windows[0], rate, channel_names, folder / "twelve_lead_real.png", "held-out real ECG")
        for name in compared:
            plots.twelve_lead_sheet(draws[name].windows[0], rate, channel_names, folder / f"twelve_lead_{name}.png",
                                    f"generated ECG ({name})")
    frequencies, power_real = mean_welch_psd(real.windows, rate)
    plots.spectra(frequencies, {"real (held out)": power_real} | {name: mean_welch_psd(draws[name].windows, rate)[1]
                                                                  for name in compared + baselines}, folder / "spectra.png")
    if real.rhythm is not None:
        plots.histograms({"real": real.rhythm["heart_rate_bpm"]} | {name: draws[name].rhythm["heart_rate_bpm"] for name in compared},
                         folder / "heart_rate.png", "pulse rate (per minute)" if real.rhythm["kind"] == "ppg" else "heart rate (bpm)")
        rhythms = {"real": real.rhythm} | {name: draws[name].rhythm for name in compared + references}
        plots.histograms({name: rr_irregularity(rhythm) for name, rhythm in rhythms.items()}, folder / "rr_irregularity.png",
                         "beat-interval irregularity per window (RR coefficient of variation)")
        shown = {"real": real.windows} | {name: draws[name].windows for name in compared}
        plots.beat_examples({name: (beat_source.lead(windows), rhythms[name]) for name, windows in shown.items()}, rate,
                            folder / "beats.png", beat_source.unit)
    sets = {"real": real.features} | {name: draws[name].features for name in compared}
    pooled = np.concatenate(list(sets.values()))
    centred = pooled - pooled.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    projected, at = {}, 0
    for name, values in sets.items():
        projected[name] = centred[at : at + len(values)] @ vt[:2].T
        at += len(values)
    plots.scatter_2d(projected, folder / "features_pca.png", "random-kernel features, first two principal components")
    plots.generator_comparison({name: generation["generators"][name]["figures"] for name in ["floor"] + compared + references + baselines},
                               generation["informative"], folder / "comparison.png")


def report_json(report: dict) -> str:
    return json.dumps(report, indent=2, default=float)
