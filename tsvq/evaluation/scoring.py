"""The protocol that scores generated windows against real ones, built so that its figures cannot flatter.

- **Seeds.** Every figure is a mean +- std over seeds. Each seed splits the held-out real windows afresh into a
  reference half A and a floor half B, draws fresh samples from every generator and reseeds every classifier, so
  the spread counts every source of chance a reader would otherwise mistake for a difference.
- **Disjoint halves.** Windows that overlap in time (a store cut with a stride shorter than the window) would make
  B a near-copy of A and the floor too good; A and B take whole time blocks, and a window overlapping a window of
  the other half is dropped.
- **Same n.** Frechet distances, the forecaster's score and the rhythm distributions depend on how many windows are
  compared. A generator under test is scored against A in chunks of the floor's size, and its figure is the mean
  over chunks, so every requested sample counts and every generator is compared at the floor's n. The
  discriminative classifier sees all windows at once, class-balanced (more windows only sharpen it), with
  overlapping real windows kept in one fold so it cannot recognise a window by its twin.
- **Threads.** Learned scores are fitted on one thread each, so a report does not change with the machine's core
  count; every set of a seed is planned first and all their fits then run side by side (``plan_set``, ``fit_all``),
  and with much signal the sets' beats are delineated side by side in worker processes (``score_sets``).
"""

from __future__ import annotations

import itertools
import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from tsvq.evaluation.eeg import EEG_FIGURES, eeg_distance, eeg_subset
from tsvq.evaluation.features import RandomKernelFeatures
from tsvq.evaluation.generation import (
    PendingFits,
    amplitude_distance,
    autocorrelation_distance,
    discriminative_fits,
    fit_all,
    frechet_distance,
    mmd_rbf,
    predictive_fits,
    predictive_score,
    psd_distance_db,
)
from tsvq.evaluation.morphology import MORPHOLOGY_FIGURES, Beats, delineate, morphology_distance
from tsvq.evaluation.physiology import BeatSource, rhythm_distance, rhythm_subset

# Figures where smaller is better, in table order. The rhythm ones exist only where beats do (ECG, PPG), the
# morphology ones only for ECG, the EEG ones only for EEG.
GENERATION_FIGURES = (
    "frechet_distance",
    "mmd",
    "discriminative_score",
    "predictive_score",
    "psd_distance_db",
    "autocorrelation_distance",
    "amplitude_wasserstein",
    "heart_rate_wasserstein_bpm",
    "rr_wasserstein_ms",
    "rr_irregularity_wasserstein",
    "windows_without_beats",
    *MORPHOLOGY_FIGURES,
    *EEG_FIGURES,
)
SEPARATION = 2.0  # a baseline separates from the floor when its gap exceeds this many combined standard deviations


@dataclass
class Halves:
    """One seed's split of the held-out windows (positions into them): reference A, floor B, and how many
    windows were dropped because they overlapped a window of the other half."""

    reference: np.ndarray
    floor: np.ndarray
    dropped: int


def disjoint_halves(
    records: np.ndarray, starts: np.ndarray, window_length: int, seed: int, by_record: bool = False
) -> Halves:
    """Whole blocks of two window lengths per record go to one half each; overlapping windows across halves are
    dropped from the earlier block. Blocks span two windows, so only neighbouring blocks can overlap.

    ``by_record``: whole records go to one half each instead. Where every held-out record is short (a few windows,
    as in segment databases), blocks put windows of one recording on both sides and the floor measures how a
    recording resembles itself, which no model of other recordings can reach; record halves measure how one set
    of recordings resembles another, the gap a generator of new recordings is asked to close."""
    rng = np.random.default_rng(seed)
    if by_record:
        names = np.unique(records)
        in_reference = np.isin(records, names[rng.permutation(len(names))[: (len(names) + 1) // 2]])
        return Halves(np.flatnonzero(in_reference), np.flatnonzero(~in_reference), 0)
    span = 2 * window_length
    first = {r: starts[records == r].min() for r in np.unique(records)}
    block_of = np.array([(r, (s - first[r]) // span) for r, s in zip(records, starts)], dtype=np.int64).reshape(-1, 2)
    blocks, block_index = np.unique(block_of, axis=0, return_inverse=True)
    block_index = block_index.ravel()
    in_reference = np.zeros(len(blocks), dtype=bool)
    in_reference[rng.permutation(len(blocks))[: (len(blocks) + 1) // 2]] = True
    keep = np.ones(len(records), dtype=bool)
    for b in range(len(blocks) - 1):
        same_record, neighbours = blocks[b, 0] == blocks[b + 1, 0], blocks[b + 1, 1] == blocks[b, 1] + 1
        if same_record and neighbours and in_reference[b] != in_reference[b + 1]:
            next_start = starts[block_index == b + 1].min()
            keep &= ~((block_index == b) & (starts + window_length > next_start))
    side = in_reference[block_index]
    return Halves(np.flatnonzero(keep & side), np.flatnonzero(keep & ~side), int((~keep).sum()))


def chunks(count: int, size: int, seed: int) -> list[np.ndarray]:
    """``count`` positions in random chunks of about ``size`` (never fewer than one chunk); together they cover all."""
    order = np.random.default_rng(seed).permutation(count)
    return np.array_split(order, max(1, int(round(count / size))))


def overlap_groups(records: np.ndarray, starts: np.ndarray, window_length: int) -> np.ndarray:
    """A group id per window: runs of windows of one record that overlap in time, one after another, share one.
    Windows cut without overlap are each their own group."""
    order = np.lexsort((starts, records))
    groups = np.empty(len(starts), dtype=np.int64)
    group, previous_record, previous_end = -1, None, None
    for i in order:
        if records[i] != previous_record or starts[i] >= previous_end:
            group += 1
            previous_end = starts[i] + window_length
        previous_record, previous_end = records[i], max(previous_end, starts[i] + window_length)
        groups[i] = group
    return groups


@dataclass
class ScoredSet:
    """Windows with what every chunk needs computed once: their features, (for ECG) their rhythm and delineated
    beats, (for EEG) its figures, and for real windows the groups of windows that overlap in time."""

    windows: np.ndarray
    features: np.ndarray
    rhythm: dict | None
    beats: Beats | None = None
    groups: np.ndarray | None = None
    eeg: dict | None = None

    @classmethod
    def of(
        cls,
        windows: np.ndarray,
        features: RandomKernelFeatures,
        rate_hz: float,
        beat_source: BeatSource | None,
        morphology: bool = False,
    ) -> ScoredSet:
        """``morphology``: delineate the beats too (ECG only)."""
        rhythm = beat_source.rhythm(windows, rate_hz) if beat_source else None
        beats = None
        if beat_source and beat_source.kind == "ecg" and morphology:
            beats = delineate(beat_source.lead(windows), rhythm["peaks"], rate_hz)
        eeg = beat_source.eeg(windows, rate_hz) if beat_source else None
        return cls(windows, features.transform(windows), rhythm, beats, eeg=eeg)

    def subset(self, positions: np.ndarray, groups: np.ndarray | None = None) -> ScoredSet:
        return ScoredSet(
            self.windows[positions],
            self.features[positions],
            rhythm_subset(self.rhythm, positions) if self.rhythm is not None else None,
            self.beats.subset(positions) if self.beats is not None else None,
            groups,
            eeg_subset(self.eeg, positions) if self.eeg is not None else None,
        )


PARALLEL_MIN_SAMPLES = 100_000  # less signal (under 7 min at 250 Hz) is scored in turn: forking would save little


def score_sets(
    sets: list[np.ndarray],
    features: RandomKernelFeatures,
    rate_hz: float,
    beat_source: BeatSource | None,
    morphology: bool = False,
) -> list[ScoredSet]:
    """``ScoredSet.of`` of several sets, with the results of one call per set. Beat detection and delineation (wfdb's
    XQRS, neurokit2) are pure Python that holds the GIL, so with much signal to delineate the sets are scored side by
    side in forked worker processes, one per core (Linux; elsewhere in turn). Forked workers start at once and import
    nothing, and a user's script needs no ``if __name__ == "__main__"`` guard; as in a DataLoader's workers, torch
    runs on one thread there. Every step of ``ScoredSet.of`` is deterministic and single-threaded: the workers' sets
    are the same to the bit."""
    workers = min(len(sets), torch.get_num_threads())
    large = morphology and sum(windows.size for windows in sets) >= PARALLEL_MIN_SAMPLES
    if workers > 1 and large and sys.platform == "linux":
        shared = (itertools.repeat(value) for value in (features, rate_hz, beat_source, morphology))
        with ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("fork"), initializer=torch.set_num_threads, initargs=(1,)
        ) as pool:
            return list(pool.map(ScoredSet.of, sets, *shared))
    return [ScoredSet.of(windows, features, rate_hz, beat_source, morphology) for windows in sets]


def set_figures(
    reference: ScoredSet,
    candidate: ScoredSet,
    rate_hz: float,
    folds: int,
    steps: int,
    seed: int,
    chunk_size: int | None = None,
) -> dict[str, float]:
    """Every generation figure of a candidate set against the reference set.

    The discriminative classifier sees all candidate windows at once (class-balanced, so a larger set only
    sharpens it). Every other figure depends on n, so it is the mean over chunks of the candidate of
    ``chunk_size`` windows (the floor's n): every window counts and all are compared at the floor's n."""
    pending = plan_set(reference, candidate, folds, steps, seed, chunk_size)
    return finish_set(pending, fit_all([pending.learned])[0], rate_hz)


@dataclass
class PendingSet:
    """A candidate set's learned scores waiting for their fits, which ``fit_all`` pools with other sets' fits, and the
    chunks its other figures are computed on, with the seed and steps it was planned with."""

    reference: ScoredSet
    chunks: list[ScoredSet]
    learned: PendingFits
    seed: int
    steps: int


def plan_set(
    reference: ScoredSet, candidate: ScoredSet, folds: int, steps: int, seed: int, chunk_size: int | None = None
) -> PendingSet:
    """``set_figures``' learned models, built (in order, so seeded alike) but not yet fitted: the fold classifiers on
    the whole candidate, then one forecaster per chunk."""
    discriminative = discriminative_fits(
        reference.windows, candidate.windows, folds, steps, seed, reference.groups, candidate.groups
    )
    parts = chunks(len(candidate.windows), chunk_size or len(candidate.windows), seed)
    subsets = [candidate.subset(part) for part in parts]
    predictive = predictive_fits(
        [subset.windows for subset in subsets],
        reference.windows,
        steps,
        [seed + i for i in range(len(subsets))],
        reference=reference.windows,
    )
    split = len(discriminative.fits)
    learned = PendingFits(
        discriminative.fits + predictive.fits,
        lambda models: (discriminative.finish(models[:split]), predictive.finish(models[split:])),
    )
    return PendingSet(reference, subsets, learned, seed, steps)


def finish_set(pending: PendingSet, learned: tuple[dict, list[float]], rate_hz: float) -> dict[str, float]:
    """``set_figures`` from a planned set and its learned scores (``fit_all``'s result for ``pending.learned``)."""
    discriminative, predictive = learned
    per_chunk = [
        distribution_figures(pending.reference, subset, rate_hz, pending.steps, pending.seed + i, predictive[i])
        for i, subset in enumerate(pending.chunks)
    ]
    return {"discriminative_score": discriminative["mean"]} | {
        name: _finite_mean([c[name] for c in per_chunk]) for name in per_chunk[0]
    }


def _finite_mean(values: list[float]) -> float:
    """Mean of the finite values; NaN when none is (e.g. heart rate where no chunk has beats)."""
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    return float(finite.mean()) if len(finite) else float("nan")


def distribution_figures(
    reference: ScoredSet, candidate: ScoredSet, rate_hz: float, steps: int, seed: int, predictive: float | None = None
) -> dict[str, float]:
    """Every figure but the discriminative score, of one candidate chunk against the reference (``predictive``: its
    predictive score when already computed)."""
    max_lag = min(reference.windows.shape[1] - 1, int(2 * rate_hz))
    if predictive is None:
        predictive = predictive_score(candidate.windows, reference.windows, steps, seed, reference=reference.windows)
    figures = {
        "frechet_distance": frechet_distance(reference.features, candidate.features),
        "mmd": mmd_rbf(reference.features, candidate.features),
        "predictive_score": predictive,
        "psd_distance_db": psd_distance_db(reference.windows, candidate.windows, rate_hz),
        "autocorrelation_distance": autocorrelation_distance(reference.windows, candidate.windows, max_lag),
        "amplitude_wasserstein": amplitude_distance(reference.windows, candidate.windows, seed=seed),
    }
    if reference.rhythm is not None:
        figures |= rhythm_distance(reference.rhythm, candidate.rhythm)
    if reference.beats is not None:
        figures |= morphology_distance(reference.beats, candidate.beats)
    if reference.eeg is not None:
        figures |= eeg_distance(reference.eeg, candidate.eeg)
    return figures


def memorisation(distances: np.ndarray, heldout_distance: float) -> float:
    """Median distance of a set's windows to their nearest training window (``nearest_shifted_distances``, best
    circular shift) over that of unseen real windows: well below 1 means copies of training data, even replayed at
    another phase. It says nothing about quality: noise far from everything scores above 1."""
    return float(np.median(distances)) / max(heldout_distance, 1e-12)


def summarise(per_seed: list[dict[str, float]]) -> dict[str, dict]:
    """``{figure: {"mean", "std", "per_seed"}}`` from one figures dict per seed (NaN seeds ignored in the mean)."""
    summary = {}
    for name in per_seed[0]:
        values = np.array([seed[name] for seed in per_seed], dtype=float)
        finite = values[np.isfinite(values)]
        summary[name] = {
            "mean": _finite_mean(values),
            "std": float(finite.std()) if len(finite) else float("nan"),
            "per_seed": values.tolist(),
        }
    return summary


def gap_in_deviations(candidate: dict, floor: dict) -> float:
    """(candidate mean - floor mean) over their combined seed-to-seed standard deviation (inf when both are exact)."""
    gap = candidate["mean"] - floor["mean"]
    spread = float(np.hypot(candidate["std"], floor["std"]))
    if not np.isfinite(gap):
        return float("nan")
    return gap / spread if spread > 0 else (np.inf if gap > 0 else (0.0 if gap == 0 else -np.inf))


def informative_figures(floor: dict[str, dict], baselines: dict[str, dict[str, dict]]) -> dict[str, bool]:
    """A figure informs on this dataset only if some baseline scores worse than the floor by more than
    ``SEPARATION`` combined standard deviations; otherwise no score on it can tell a model from noise. With no
    baseline scored (``--baselines`` empty) nothing is known either way: no figure is marked."""
    if not baselines:
        return {}
    return {
        name: any(
            gap_in_deviations(figures[name], floor[name]) > SEPARATION
            for figures in baselines.values()
            if name in figures
        )
        for name in floor
    }


def within_noise(candidate: dict[str, dict], floor: dict[str, dict]) -> list[str]:
    """Figures where the candidate's gap to the floor is smaller than their seed-to-seed spread."""
    return [name for name in floor if name in candidate and abs(gap_in_deviations(candidate[name], floor[name])) < 1.0]


def below_floor(candidate: dict[str, dict], floor: dict[str, dict]) -> list[str]:
    """Figures where the candidate beats real data by more than the spread: not a better-than-real generator, but
    a floor made from few independent stretches of held-out signal, or a figure that rewards something else."""
    return [name for name in floor if name in candidate and gap_in_deviations(candidate[name], floor[name]) < -1.0]
