"""How close generated windows are to real ones. Every function takes plain arrays ``(n, L, C)`` (or features),
so any generator can be scored, not only tsvq's."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy import linalg
from scipy import signal as sps
from scipy.stats import wasserstein_distance
from torch import nn


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (as FID does for images).

    tr sqrt(S_a S_b) is the sum of the square roots of the eigenvalues of S_a S_b. With fewer windows than
    features (the usual case: a few hundred windows, 512 features) those are the singular values of the small
    cross-product of the centred sets, (n_a x n_b), which is exact for singular covariances and costs a fraction
    of two (d x d) eigendecompositions. Otherwise the symmetric sqrt(S_a) S_b sqrt(S_a) is decomposed. Neither
    route needs the ad-hoc offset a general matrix square root wants when a covariance is singular.
    """
    # one feature per window may come as a vector; every route below wants (n, d)
    a = np.asarray(features_a, dtype=np.float64).reshape(len(features_a), -1)
    b = np.asarray(features_b, dtype=np.float64).reshape(len(features_b), -1)
    mu_a, mu_b = a.mean(0), b.mean(0)
    centred_a, centred_b = a - mu_a, b - mu_b
    trace_a, trace_b = (centred_a**2).sum() / (len(a) - 1), (centred_b**2).sum() / (len(b) - 1)
    if min(len(a), len(b)) < a.shape[1]:
        # eig(S_a S_b) = eig(A'A B'B) / norm^2 = eig(K K') / norm^2 with K = A B' (nonzero ones), so the square roots
        # are K's singular values over norm
        cross = linalg.svdvals(centred_a @ centred_b.T).sum() / np.sqrt((len(a) - 1) * (len(b) - 1))
    else:
        cov_a, cov_b = centred_a.T @ centred_a / (len(a) - 1), centred_b.T @ centred_b / (len(b) - 1)
        sqrt_a = _psd_sqrt(cov_a)
        cross = np.sqrt(_drop_round_off(linalg.eigvalsh(sqrt_a @ cov_b @ sqrt_a))).sum()
    distance = ((mu_a - mu_b) ** 2).sum() + trace_a + trace_b - 2 * cross
    return float(max(distance, 0.0))


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a covariance."""
    values, vectors = linalg.eigh(matrix)
    return (vectors * np.sqrt(_drop_round_off(values))) @ vectors.T


def _drop_round_off(eigenvalues: np.ndarray) -> np.ndarray:
    """Eigenvalues of a singular PSD matrix that are round-off (as numpy's matrix_rank decides) become zero,
    so their square roots (~1e-8 each, not ~1e-16) do not bias the trace."""
    tolerance = np.abs(eigenvalues).max(initial=0.0) * len(eigenvalues) * np.finfo(eigenvalues.dtype).eps
    return np.where(eigenvalues > tolerance, eigenvalues, 0.0)


def mmd_rbf(features_a: np.ndarray, features_b: np.ndarray, bandwidth: float | None = None) -> float:
    """Unbiased squared maximum mean discrepancy with a Gaussian kernel (median-distance bandwidth by default)."""
    a, b = torch.from_numpy(features_a).double(), torch.from_numpy(features_b).double()
    pooled = torch.cat([a, b])
    distances = torch.cdist(pooled, pooled).pow(2)
    if bandwidth is None:
        bandwidth = float(distances[distances > 0].median()) if (distances > 0).any() else 1.0
    kernel = torch.exp(-distances / bandwidth)
    n, m = len(a), len(b)
    k_aa, k_bb, k_ab = kernel[:n, :n], kernel[n:, n:], kernel[:n, n:]
    term_a = (k_aa.sum() - k_aa.diagonal().sum()) / (n * (n - 1))
    term_b = (k_bb.sum() - k_bb.diagonal().sum()) / (m * (m - 1))
    return float(term_a + term_b - 2 * k_ab.mean())


def mean_welch_psd(windows: np.ndarray, rate_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean Welch power spectrum of the first channel over windows."""
    nperseg = min(256, windows.shape[1])
    frequencies, power = sps.welch(windows[:, :, 0], fs=rate_hz, nperseg=nperseg, axis=1)
    return frequencies, power.mean(axis=0)


def psd_distance_db(windows_a: np.ndarray, windows_b: np.ndarray, rate_hz: float, max_hz: float = 50.0) -> float:
    """Mean absolute difference of the mean power spectra in dB, up to ``max_hz``."""
    f, pa = mean_welch_psd(windows_a, rate_hz)
    _, pb = mean_welch_psd(windows_b, rate_hz)
    band = (f > 0) & (f <= max_hz)
    return float(np.mean(np.abs(10 * np.log10((pa[band] + 1e-20) / (pb[band] + 1e-20)))))


def mean_autocorrelation(windows: np.ndarray, max_lag: int) -> np.ndarray:
    x = windows[:, :, 0] - windows[:, :, 0].mean(axis=1, keepdims=True)
    spectrum = np.fft.rfft(x, n=2 * x.shape[1], axis=1)
    acf = np.fft.irfft(np.abs(spectrum) ** 2, axis=1)[:, : max_lag + 1]
    return (acf / np.maximum(acf[:, :1], 1e-20)).mean(axis=0)


def autocorrelation_distance(windows_a: np.ndarray, windows_b: np.ndarray, max_lag: int) -> float:
    """RMS difference of the mean autocorrelation functions up to ``max_lag`` samples."""
    return float(
        np.sqrt(np.mean((mean_autocorrelation(windows_a, max_lag) - mean_autocorrelation(windows_b, max_lag)) ** 2))
    )


def amplitude_distance(windows_a: np.ndarray, windows_b: np.ndarray, max_values: int = 200_000, seed: int = 0) -> float:
    """Wasserstein-1 distance between the amplitude distributions (physical units)."""
    rng = np.random.default_rng(seed)
    a, b = windows_a.ravel(), windows_b.ravel()
    a = rng.choice(a, max_values, replace=False) if len(a) > max_values else a
    b = rng.choice(b, max_values, replace=False) if len(b) > max_values else b
    return float(wasserstein_distance(a, b))


def phase_randomized(windows: np.ndarray, seed: int = 0) -> np.ndarray:
    """Surrogates with each window's power spectrum and random phases: right spectrum, no morphology."""
    rng = np.random.default_rng(seed)
    spectrum = np.fft.rfft(windows, axis=1)
    phases = np.exp(2j * np.pi * rng.uniform(size=spectrum.shape))
    phases[:, 0] = 1.0  # the mean stays
    if windows.shape[1] % 2 == 0:
        phases[:, -1] = 1.0  # the Nyquist bin of an even length must stay real, or its power changes
    return np.fft.irfft(spectrum * phases, n=windows.shape[1], axis=1).astype(np.float32)


class _WindowClassifier(nn.Module):
    """Small 1D CNN real-vs-generated logit whose width does not depend on the channel count (TimeGAN's GRU sized by
    C breaks at C = 1)."""

    def __init__(self, channels: int, width: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(channels, width, 7, stride=2, padding=3),
            nn.ReLU(),
            nn.Conv1d(width, width, 7, stride=2, padding=3),
            nn.ReLU(),
            nn.Conv1d(width, width, 7, stride=2, padding=3),
            nn.ReLU(),
        )
        self.head = nn.Linear(2 * width, 1)

    def forward(self, x):
        h = self.net(x.transpose(1, 2))
        return self.head(torch.cat([h.mean(-1), h.amax(-1)], dim=1))


@contextmanager
def single_thread() -> Iterator[int]:
    """Torch on one thread inside the block (or the decorated function): float sums then run in one order, so
    learned scores are the same on a laptop and a 64-core server (measured before: 0.031 vs 0.041 by thread count).
    Yields the thread count it replaced: how many single-threaded fits may run side by side (``fit_side_by_side``)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield previous
    finally:
        torch.set_num_threads(previous)


def fit_side_by_side(fits: list[Callable[[], nn.Module]], workers: int) -> list[nn.Module]:
    """Run independent single-threaded fits on up to ``workers`` threads; returns their models in order.

    Torch releases the GIL inside its kernels, so the fits overlap on a multi-core machine. Each fit's model is built
    before and its batches come from its own generator, so the models are the same as when fitted one after another."""
    if workers <= 1 or len(fits) <= 1:
        return [fit() for fit in fits]
    with ThreadPoolExecutor(min(workers, len(fits))) as pool:
        return list(pool.map(lambda fit: fit(), fits))


@dataclass
class PendingFits:
    """A learned score waiting for its models: the fits to run and what to compute from the fitted models. Scores
    of many sets pool their fits in one ``fit_all``, so no core idles while a set with one fit trains it alone."""

    fits: list[Callable[[], nn.Module]]
    finish: Callable[[list[nn.Module]], Any]


def fit_all(pending: list[PendingFits]) -> list:
    """Every pending score's fits side by side (one thread each), then each score from its own models, in order."""
    with single_thread() as cores:
        models = fit_side_by_side([fit for score in pending for fit in score.fits], cores)
        results, at = [], 0
        with torch.no_grad():
            for score in pending:
                results.append(score.finish(models[at : at + len(score.fits)]))
                at += len(score.fits)
    return results


def _standardize(*sets: np.ndarray, reference: np.ndarray) -> list[torch.Tensor]:
    mean, std = reference.mean(axis=(0, 1), keepdims=True), reference.std(axis=(0, 1), keepdims=True) + 1e-8
    return [torch.from_numpy(((s - mean) / std).astype(np.float32)) for s in sets]


def _random_batches(x: torch.Tensor, y: torch.Tensor, seed: int, batch_size: int = 32):
    generator = torch.Generator().manual_seed(seed)

    def batch():
        pick = torch.randint(0, len(x), (min(batch_size, len(x)),), generator=generator)
        return x[pick], y[pick]

    return batch


def _fit(model: nn.Module, next_batch, loss_fn, steps: int):
    """A fixed number of optimiser steps (not epochs), so scores do not depend on how many windows a set has.
    Gradients are switched on here: a worker thread does not inherit its caller's grad mode, and callers may be
    under ``no_grad``."""
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    model.train()
    with torch.enable_grad():
        for _ in range(steps):
            inputs, targets = next_batch()
            loss = loss_fn(model(inputs), targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    return model


def fold_assignment(count: int, folds: int, rng: np.random.Generator, groups: np.ndarray | None = None) -> np.ndarray:
    """A fold per window; windows of one group (e.g. windows that overlap in time) always share a fold, or a
    classifier could recognise a test window by its overlapping twin in the training folds."""
    groups = np.arange(count) if groups is None else np.asarray(groups)
    names, group_of = np.unique(groups, return_inverse=True)
    return (rng.permutation(len(names)) % folds)[group_of.ravel()]


def _balanced_batches(real: torch.Tensor, generated: torch.Tensor, seed: int, half: int = 16):
    """Endless batches of ``half`` real (label 1) and ``half`` generated (label 0) windows."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.cat([torch.ones(half), torch.zeros(half)])

    def batch():
        pick_real = torch.randint(0, len(real), (half,), generator=generator)
        pick_gen = torch.randint(0, len(generated), (half,), generator=generator)
        return torch.cat([real[pick_real], generated[pick_gen]]), labels

    return batch


def _real_logit_loss(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(out[:, 0], target)


def discriminative_score(
    real: np.ndarray,
    generated: np.ndarray,
    folds: int = 3,
    steps: int = 200,
    seed: int = 0,
    real_groups: np.ndarray | None = None,
    generated_groups: np.ndarray | None = None,
) -> dict:
    """|balanced accuracy - 0.5| of a post-hoc real-vs-generated classifier on held-out folds: 0 = indistinguishable.

    Every window is used, whatever the two set sizes: each training batch is half real, half generated, and the
    test accuracy is the mean of the two classes' accuracies, so more generated windows only make the classifier
    a sharper judge, never a kinder one. ``*_groups`` keep windows of one group in one fold. The folds' classifiers
    train side by side (one thread each).
    """
    return fit_all([discriminative_fits(real, generated, folds, steps, seed, real_groups, generated_groups)])[0]


def discriminative_fits(
    real: np.ndarray,
    generated: np.ndarray,
    folds: int = 3,
    steps: int = 200,
    seed: int = 0,
    real_groups: np.ndarray | None = None,
    generated_groups: np.ndarray | None = None,
) -> PendingFits:
    """``discriminative_score`` as fits still to run (``fit_all``): the fold models are built here, in order."""
    rng = np.random.default_rng(seed)
    x_real, x_gen = _standardize(real, generated, reference=real)
    fold_real, fold_gen = (
        fold_assignment(len(real), folds, rng, real_groups),
        fold_assignment(len(generated), folds, rng, generated_groups),
    )
    fits, tests = [], []
    for fold in range(folds):
        train_real, train_gen = x_real[fold_real != fold], x_gen[fold_gen != fold]
        test_real, test_gen = x_real[fold_real == fold], x_gen[fold_gen == fold]
        if min(len(train_real), len(train_gen), len(test_real), len(test_gen)) == 0:
            continue  # fewer groups than folds: this fold has nothing to test or train on
        torch.manual_seed(seed + fold)
        model = _WindowClassifier(real.shape[2])
        fits.append(
            partial(_fit, model, _balanced_batches(train_real, train_gen, seed + fold), _real_logit_loss, steps)
        )
        tests.append((test_real, test_gen))
    if not fits:
        raise ValueError("discriminative_score: no fold has both real and generated windows to train and test on")

    def finish(models: list[nn.Module]) -> dict:
        scores = []
        for model, (test_real, test_gen) in zip(models, tests, strict=True):
            real_right = (model(test_real)[:, 0] > 0).float().mean().item()
            gen_right = (model(test_gen)[:, 0] <= 0).float().mean().item()
            scores.append(abs((real_right + gen_right) / 2 - 0.5))
        return {
            "mean": float(np.mean(scores)),
            "std": float(np.std(scores)),
            "folds": len(scores),
            "windows": {"real": len(real), "generated": len(generated)},
        }

    return PendingFits(fits, finish)


class _CausalForecaster(nn.Module):
    """Next-step forecaster from the past of all channels (valid for one channel, unlike TimeGAN's score)."""

    def __init__(self, channels: int, width: int = 32):
        super().__init__()
        self.layers = nn.ModuleList(
            nn.Conv1d(channels if i == 0 else width, width, 3, dilation=d) for i, d in enumerate((1, 2, 4, 8))
        )
        self.out = nn.Conv1d(width, channels, 1)

    def forward(self, x):
        h = x.transpose(1, 2)
        for layer in self.layers:
            h = torch.relu(layer(F.pad(h, (2 * layer.dilation[0], 0))))
        return self.out(h).transpose(1, 2)


def predictive_score(
    train_windows: np.ndarray,
    test_windows: np.ndarray,
    steps: int = 200,
    seed: int = 0,
    reference: np.ndarray | None = None,
    crop: int = 128,
) -> float:
    """Train on ``train_windows`` (e.g. synthetic) to predict the next sample; mean absolute error on ``test_windows``
    (real), in units of the reference's standard deviation. Compare with the same trained on real windows.

    The forecaster sees 31 past samples, so it trains on ``crop``-sample pieces of the windows (a quarter of the
    cost of whole windows at 512 samples) and is tested on whole windows."""
    return predictive_scores([train_windows], test_windows, steps, [seed], reference, crop)[0]


def predictive_scores(
    train_sets: list[np.ndarray],
    test_windows: np.ndarray,
    steps: int = 200,
    seeds: list[int] | None = None,
    reference: np.ndarray | None = None,
    crop: int = 128,
) -> list[float]:
    """``predictive_score`` of several training sets against one test set (seed ``seeds[i]`` for set i), their
    forecasters trained side by side (one thread each): the same scores as one call per set."""
    return fit_all([predictive_fits(train_sets, test_windows, steps, seeds, reference, crop)])[0]


def predictive_fits(
    train_sets: list[np.ndarray],
    test_windows: np.ndarray,
    steps: int = 200,
    seeds: list[int] | None = None,
    reference: np.ndarray | None = None,
    crop: int = 128,
) -> PendingFits:
    """``predictive_scores`` as fits still to run (``fit_all``): the forecasters are built here, in order."""
    seeds = list(range(len(train_sets))) if seeds is None else seeds
    *x_trains, x_test = _standardize(
        *train_sets, test_windows, reference=reference if reference is not None else test_windows
    )
    fits = []
    for train_windows, x_train, seed in zip(train_sets, x_trains, seeds, strict=True):
        torch.manual_seed(seed)
        pieces = x_train.shape[1] // (crop + 1)
        if pieces >= 1:
            x_train = x_train[:, : pieces * (crop + 1)].reshape(-1, crop + 1, x_train.shape[2])
        model = _CausalForecaster(train_windows.shape[2])
        fits.append(partial(_fit, model, _random_batches(x_train[:, :-1], x_train[:, 1:], seed), F.l1_loss, steps))
    return PendingFits(
        fits, lambda models: [float(F.l1_loss(model(x_test[:, :-1]), x_test[:, 1:])) for model in models]
    )


def shapes(windows: np.ndarray) -> np.ndarray:
    """Each window ``(n, L, C)`` less its channels' means, over its norm: what is left is its shape, so the
    distance of two shapes (``nearest_shifted_distances``) is sqrt(2 - 2 x their correlation), whatever their
    amplitudes. A copy of a training window stays a copy at any gain; a set drawn quieter than the real one is not
    closer to copying, as its Euclidean distances alone would say."""
    centred = windows - windows.mean(axis=1, keepdims=True)
    return centred / np.maximum(np.linalg.norm(centred, axis=(1, 2), keepdims=True), 1e-12)


@single_thread()
@torch.no_grad()
def nearest_shifted_distances(queries: np.ndarray, references: np.ndarray, block: int = 8) -> np.ndarray:
    """Euclidean distance from each query window ``(n, L, C)`` to its nearest reference window under the best
    circular time shift: a training window replayed at another phase is still a copy. The cross-correlation at
    every shift comes from one FFT product per pair."""
    length = queries.shape[1]
    q, r = (
        torch.from_numpy(np.ascontiguousarray(queries, np.float32)),
        torch.from_numpy(np.ascontiguousarray(references, np.float32)),
    )
    q_spectrum, r_spectrum = torch.fft.rfft(q, dim=1), torch.fft.rfft(r, dim=1).conj()
    q_energy, r_energy = q.pow(2).sum((1, 2)), r.pow(2).sum((1, 2))
    nearest = []
    for start in range(0, len(q), block):
        cross = torch.einsum("afc,bfc->abf", q_spectrum[start : start + block], r_spectrum)
        best = torch.fft.irfft(cross, n=length, dim=2).amax(dim=2)
        squared = q_energy[start : start + block, None] + r_energy[None] - 2 * best
        nearest.append(squared.clamp_min(0).min(dim=1).values.sqrt())
    return torch.cat(nearest).numpy().astype(np.float64)
