"""How a conditional prior is scored as it is used: drawn with labels in the training split's mix, then a
classifier trained on its samples and tested on real windows (TSTR), and each class on its own."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tsvq import plots
from tsvq.data import WindowStore
from tsvq.data.store import label_ids
from tsvq.evaluation.classify import classify_features
from tsvq.evaluation.config import EvalConfig
from tsvq.evaluation.generation import mean_welch_psd
from tsvq.evaluation.heldout import HeldOut
from tsvq.evaluation.scoring import ScoredSet, distribution_figures, summarise


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
            output = self.pipeline.sample(
                self.n, self.name, labels=ids.tolist(), seed=seed, progress=False, **self.sampling
            )
            self._kept[seed] = (output.signals, ids, output.info)
        return self._kept[seed]


def label_section(draws: LabelledDraws, heldout: HeldOut, config: EvalConfig) -> dict:
    """Train on synthetic, test on real (TSTR), beside train on real, test on real (TRTR), for a conditional prior:
    each seed's synthetic windows are the pooled figures' draw (n windows in the training split's label mix), its
    real ones n training windows, and both classifiers are tested on every labelled held-out window. Means over the
    seeds, with their spread. With ``config.positive_label`` (e.g. a seizure class), the same draws score that
    label against all others too (``one_vs_rest``), the task a detector has."""
    store, labels, sampling = heldout.store, draws.labels, draws.sampling
    test_names = store.index["label"][heldout.index]
    known = np.isin(test_names, labels)
    test_features, test_ids = heldout.scored.features[known], label_ids(test_names[known], labels)  # computed once
    train_known = np.flatnonzero(np.isin(store.labels("train"), labels))
    if len(test_ids) < 2 or len(train_known) < 2:
        return {"skipped": "too few labelled windows"}
    positive = labels.index(config.positive_label) if config.positive_label in labels else None
    tasks = {"all": (labels, lambda ids: ids)}
    if positive is not None:
        tasks["one_vs_rest"] = (["rest", config.positive_label], lambda ids: (ids == positive).astype(np.int64))
    per_seed = {(task, key): [] for task in tasks for key in ("train_synthetic_test_real", "train_real_test_real")}
    for seed in config.seed_list:
        rng = np.random.default_rng(seed)
        draws.label_ids(rng)  # the draw's labels come first from this seed's stream; the real windows follow
        synthetic, draw, _ = draws.sample(seed)
        chosen_train = np.sort(
            rng.choice(store.split_indices("train")[train_known], min(config.n, len(train_known)), replace=False)
        )
        real_ids = label_ids(store.index["label"][chosen_train], labels)
        for key, (windows, ids) in (
            ("train_synthetic_test_real", (synthetic, draw)),
            ("train_real_test_real", (np.asarray(store.windows[chosen_train]), real_ids)),
        ):
            features = heldout.features.transform(windows)
            for task, (names, relabel) in tasks.items():
                per_seed[task, key].append(
                    classify_features(features, relabel(ids), test_features, relabel(test_ids), len(names), seed)
                )
    section = {"labels": labels, "sampling": sampling, "seeds": config.seed_list}
    for (task, key), scores in per_seed.items():
        names = tasks[task][0]
        summary = _summarise_scores(scores, names)
        if task == "all":
            section[key] = summary
        else:
            section.setdefault("one_vs_rest", {"label": config.positive_label})[key] = summary
    return section


def _summarise_scores(scores: list[dict], names: list[str]) -> dict:
    figures = ("accuracy", "balanced_accuracy", "macro_f1")
    return {name: float(np.mean([s[name] for s in scores])) for name in figures} | {
        "std": {name: float(np.std([s[name] for s in scores])) for name in figures},
        "f1_per_class": {
            names[c]: float(np.mean([s["f1_per_class"][c] for s in scores])) for c in scores[0]["f1_per_class"]
        },
        "per_seed": [{name: s[name] for name in figures} for s in scores],
        "classifier": scores[0]["classifier"],
        "train_windows": scores[0]["train_windows"],
        "test_windows": scores[0]["test_windows"],
    }


def per_class_section(pipeline, prior: str, sampling: dict, heldout: HeldOut, config: EvalConfig, folder: Path) -> dict:
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
            samples = pipeline.sample(
                len(floor.windows), prior, labels=[label] * len(floor.windows), seed=seed, progress=False, **sampling
            ).signals
            examples.setdefault(label, (floor.windows, samples))
            scored = ScoredSet.of(samples, heldout.features, rate, heldout.beat_source, heldout.morphology)
            model.append(distribution_figures(reference, scored, rate, config.classifier_steps, seed))
            floor_figures.append(distribution_figures(reference, floor, rate, config.classifier_steps, seed))
            sizes.append(len(floor.windows))
        if len(model) < config.seeds:
            records = len(np.unique(store.index["record"][heldout.index[positions]]))
            section[label] = {
                "skipped": f"{len(positions)} held-out windows of this class"
                + (
                    f" from {records} record{'s' if records != 1 else ''}: too few for two halves of whole records"
                    if heldout.floor_by_record
                    else ": too few for two halves"
                )
            }
            continue
        section[label] = {"windows_per_seed": sizes, "model": summarise(model), "floor": summarise(floor_figures)}
    if config.plots and examples:
        plots.class_examples(examples, rate, folder / f"classes_{prior}.png", store.units[0])
        plots.class_spectra(
            {
                label: {"real": mean_welch_psd(real, rate), "generated": mean_welch_psd(generated, rate)}
                for label, (real, generated) in examples.items()
            },
            folder / f"class_spectra_{prior}.png",
        )
    return section
