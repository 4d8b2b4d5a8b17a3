"""What a report scores: a pipeline's priors, external samples and the two training-split references, each as a
``Generator`` that draws windows for a seed, with the options each prior is drawn with."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from tsvq.data import WindowStore
from tsvq.data.preprocess import real_array
from tsvq.errors import ConfigError, DataError
from tsvq.evaluation.conditional import LabelledDraws
from tsvq.evaluation.config import EvalConfig
from tsvq.evaluation.heldout import HeldOut
from tsvq.priors.base import option_names


@dataclass
class Generator:
    """Something that draws windows: ``draw(seed index, seed, floor size) -> (n, L, C)`` in physical units.
    Generators under test draw the requested n; baselines draw the floor's n (one chunk: they calibrate the
    figures, and more of them would only cost time)."""

    name: str
    kind: str  # "prior", "samples" or "baseline"
    draw: Callable[[int, int, int], np.ndarray]
    info: dict = field(default_factory=dict)


def named_samples(samples, store: WindowStore) -> dict[str, np.ndarray]:
    """External samples by name, each checked against the store's window shape."""
    if samples is None:
        return {}
    named = samples if isinstance(samples, dict) else {"samples": samples}
    checked = {}
    for name, windows in named.items():
        windows = real_array(windows, name).astype(np.float32)
        expected = (store.window_length, store.num_channels)
        if windows.ndim != 3 or windows.shape[1:] != expected or len(windows) < 2:
            raise DataError(
                f"{name}: expected samples of shape (n >= 2, {expected[0]}, {expected[1]}) to match the store, "
                f"got {windows.shape}"
            )
        if not np.isfinite(windows).all():
            raise DataError(f"{name}: the samples contain NaN or Inf")
        checked[name] = windows
    return checked


def priors_to_score(pipeline, config: EvalConfig, has_samples: bool) -> list[str]:
    if pipeline is None:
        return []
    names = ([config.prior] if config.prior else []) + [p for p in config.priors if p != config.prior]
    for name in names:
        pipeline.prior(name)  # refuses an unknown name, naming the ones there are
    if not names and not has_samples and pipeline.priors:
        names = [next(iter(pipeline.priors))]
    return names


def sampling_options(pipeline, name: str, priors: list[str], sampling: dict) -> dict:
    """One prior scored: all options, so one it lacks is refused by name. Several side by side: each takes the
    options it has, and an option none of them has is refused."""
    if len(priors) <= 1:
        return sampling
    fields = {p: option_names(pipeline.priors[p]) for p in priors}
    unknown = [k for k in sampling if not any(k in names for names in fields.values())]
    if unknown:
        raise ConfigError(f"sampling options {unknown}: none of the compared priors {priors} has them")
    return {k: v for k, v in sampling.items() if k in fields[name]}


def prior_generator(pipeline, name: str, sampling: dict, config: EvalConfig, draws: LabelledDraws | None) -> Generator:
    """A prior's generator; a conditional one's (``draws``) samples with labels in the training mix."""
    info: dict = {}

    def draw(index: int, seed: int, floor_size: int) -> np.ndarray:
        if draws is None or not len(draws.mix):
            output = pipeline.sample(
                config.n, name, seed=seed, progress=False, **sampling
            )  # the seeds' bar shows progress
            info.update(output.info)
            return output.signals
        signals, ids, sample_info = draws.sample(seed)
        names, counts = np.unique(np.asarray(draws.labels)[ids], return_counts=True)
        info.update(sample_info)
        info["labels_drawn"] = {
            "mix": "the training split's label frequencies",
            "counts_last_seed": {str(k): int(v) for k, v in zip(names, counts)},
        }
        return signals

    return Generator(name, "prior", draw, info)


def samples_generator(name: str, windows: np.ndarray, config: EvalConfig) -> Generator:
    """External samples cannot be redrawn: with enough of them, each seed scores its own disjoint share."""
    parts = np.array_split(np.random.default_rng(config.seed).permutation(len(windows)), config.seeds)
    shared = min(len(part) for part in parts) < 2
    note = (
        f"{len(windows)} windows, too few to share among {config.seeds} seeds: all of them at every seed"
        if shared
        else f"{len(windows)} windows in {config.seeds} disjoint shares, one per seed"
    )
    return Generator(
        name,
        "samples",
        lambda index, seed, _: windows if shared else windows[parts[index]],
        {"source": "external samples", "note": note},
    )


def reference_generators(pipeline, heldout: HeldOut) -> list[Generator]:
    """``train_windows``: the floor's n training windows as they are (seeded); ``train_decoded``: the same windows
    encoded and decoded by the pipeline's codec. A prior's gap to the floor is then the split's gap (floor ->
    train_windows), the codec's (-> train_decoded) and the prior's own (-> the prior): a target below a reference
    cannot be reached by improving what comes after it."""
    train = heldout.train

    def pick(seed: int, size: int) -> np.ndarray:
        rng = np.random.default_rng([seed, 7])  # its own stream: the baselines' draws stay as they were
        return train[np.sort(rng.choice(len(train), min(size, len(train)), replace=False))]

    note = "training windows: their memorisation ratio is ~0 by construction"
    generators = [
        Generator(
            "train_windows",
            "reference",
            lambda index, seed, size: pick(seed, size),
            {"what": "training windows as they are: the gap between the training and held-out records", "note": note},
        )
    ]
    if pipeline is not None:
        codec = pipeline.codec
        generators.append(
            Generator(
                "train_decoded",
                "reference",
                lambda index, seed, size: codec.decode_codes(codec.encode_windows(pick(seed, size))),
                {
                    "what": "the same training windows encoded and decoded by the codec: a perfect prior "
                    "over its codes",
                    "note": note,
                },
            )
        )
    return generators
