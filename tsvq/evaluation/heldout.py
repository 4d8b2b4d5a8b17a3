"""The held-out real windows a report scores against: featurised, beat-detected and delineated once, then split per
seed into a reference half and a floor half that share no sample."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from tsvq.data import WindowStore
from tsvq.errors import DataError
from tsvq.evaluation.config import EvalConfig
from tsvq.evaluation.features import RandomKernelFeatures
from tsvq.evaluation.generation import nearest_shifted_distances, shapes
from tsvq.evaluation.morphology import available as morphology_available
from tsvq.evaluation.physiology import BeatSource, beat_source
from tsvq.evaluation.scoring import ScoredSet, disjoint_halves, overlap_groups


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
    floor_by_record: bool = False  # halves of whole records rather than time blocks (EvalConfig.floor_halves)

    @property
    def windows(self) -> np.ndarray:
        return self.scored.windows

    @functools.cached_property
    def train_distances(self) -> np.ndarray:
        """Each held-out window's distance to its nearest training window (best circular shift): measured once,
        since every seed's reference and floor halves are subsets of these windows."""
        return nearest_shifted_distances(self.windows, self.train)

    @functools.cached_property
    def train_shapes(self) -> np.ndarray:
        return shapes(self.train)

    @functools.cached_property
    def train_shape_distances(self) -> np.ndarray:
        """``train_distances`` of the windows' shapes (``shapes``: amplitude left out)."""
        return nearest_shifted_distances(shapes(self.windows), self.train_shapes)

    def halves(self, positions: np.ndarray, seed: int) -> RealSplit:
        """Reference and floor halves of the held-out windows at ``positions`` that share no sample."""
        records, starts = (
            self.store.index["record"][self.index[positions]],
            self.store.index["start"][self.index[positions]],
        )
        halves = disjoint_halves(records, starts, self.store.window_length, seed, self.floor_by_record)
        reference, floor = (
            self.scored.subset(positions[part], overlap_groups(records[part], starts[part], self.store.window_length))
            for part in (halves.reference, halves.floor)
        )
        return RealSplit(reference, floor, positions[halves.reference], positions[halves.floor], halves.dropped)


def held_out(store: WindowStore, real: np.ndarray, real_index: np.ndarray, config: EvalConfig) -> HeldOut:
    train = store.load("train", max_windows=config.train_windows, seed=config.seed)
    if len(train) < 2:
        raise DataError(f"{store.path}: the 'train' split has {len(train)} windows; the baselines need at least 2")
    features = RandomKernelFeatures(store.window_length, store.num_channels, config.num_kernels, config.seed).fit_scale(
        train
    )
    beats = beat_source(store.channel_names, store.units, config.physiology)
    morphology = bool(beats) and beats.kind == "ecg" and config.morphology and morphology_available()
    return HeldOut(
        store,
        real_index,
        ScoredSet.of(real, features, store.sampling_rate_hz, beats, morphology),
        train,
        features,
        beats,
        morphology,
        config.floor_halves == "records",
    )
