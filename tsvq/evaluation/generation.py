"""How close generated windows are to real ones. Every function takes plain arrays ``(n, L, C)`` (or features),
so any generator can be scored, not only tsvq's."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy import linalg
from scipy import signal as sps
from scipy.stats import wasserstein_distance
from torch import nn


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (as FID does for images).

    tr sqrt(S_a S_b) is computed as the sum of square roots of the eigenvalues of the symmetric
    sqrt(S_a) S_b sqrt(S_a), which stays exact when a covariance is singular (fewer windows than
    features), where a general matrix square root warns and needs an ad-hoc offset.
    """
    mu_a, mu_b = features_a.mean(0), features_b.mean(0)
    cov_a, cov_b = np.atleast_2d(np.cov(features_a, rowvar=False)), np.atleast_2d(np.cov(features_b, rowvar=False))
    sqrt_a = _psd_sqrt(cov_a)
    cross = _drop_round_off(linalg.eigvalsh(sqrt_a @ cov_b @ sqrt_a))
    distance = ((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * np.sqrt(cross).sum()
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
    return float(np.sqrt(np.mean((mean_autocorrelation(windows_a, max_lag) - mean_autocorrelation(windows_b, max_lag)) ** 2)))


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
    """Small 1D CNN whose width does not depend on the channel count (TimeGAN's GRU sized by C breaks at C = 1)."""

    def __init__(self, channels: int, width: int = 32, classes: int = 1):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(channels, width, 7, stride=2, padding=3), nn.ReLU(),
            nn.Conv1d(width, width, 7, stride=2, padding=3), nn.ReLU(),
            nn.Conv1d(width, width, 7, stride=2, padding=3), nn.ReLU(),
        )
        self.head = nn.Linear(2 * width, classes)

    def forward(self, x):
        h = self.net(x.transpose(1, 2))
        return self.head(torch.cat([h.mean(-1), h.amax(-1)], dim=1))


def _standardize(*sets: np.ndarray, reference: np.ndarray) -> list[torch.Tensor]:
    mean, std = reference.mean(axis=(0, 1), keepdims=True), reference.std(axis=(0, 1), keepdims=True) + 1e-8
    return [torch.from_numpy(((s - mean) / std).astype(np.float32)) for s in sets]


def _fit(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn, steps: int, seed: int, batch_size: int = 32):
    """A fixed number of optimiser steps (not epochs), so scores do not depend on how many windows a set has."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    model.train()
    for _ in range(steps):
        batch = torch.randint(0, len(x), (min(batch_size, len(x)),), generator=generator)
        loss = loss_fn(model(x[batch]), y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    return model


def discriminative_score(real: np.ndarray, generated: np.ndarray, folds: int = 3, steps: int = 200, seed: int = 0) -> dict:
    """|accuracy - 0.5| of a post-hoc real-vs-generated classifier on held-out folds: 0 = indistinguishable."""
    n = min(len(real), len(generated))
    rng = np.random.default_rng(seed)
    real, generated = real[rng.permutation(len(real))[:n]], generated[rng.permutation(len(generated))[:n]]
    x_real, x_gen = _standardize(real, generated, reference=real)
    x = torch.cat([x_real, x_gen])
    y = torch.cat([torch.ones(n), torch.zeros(n)])
    fold_of = torch.from_numpy(rng.permutation(np.arange(2 * n) % folds))
    scores = []
    for fold in range(folds):
        torch.manual_seed(seed + fold)
        train, test = fold_of != fold, fold_of == fold
        model = _fit(_WindowClassifier(real.shape[2]), x[train], y[train],
                     lambda out, target: F.binary_cross_entropy_with_logits(out[:, 0], target), steps, seed + fold)
        with torch.no_grad():
            accuracy = ((model(x[test])[:, 0] > 0).float() == y[test]).float().mean().item()
        scores.append(abs(accuracy - 0.5))
    return {"mean": float(np.mean(scores)), "std": float(np.std(scores)), "folds": folds, "windows_per_class": n}


class _CausalForecaster(nn.Module):
    """Next-step forecaster from the past of all channels (valid for one channel, unlike TimeGAN's score)."""

    def __init__(self, channels: int, width: int = 32):
        super().__init__()
        self.layers = nn.ModuleList(nn.Conv1d(channels if i == 0 else width, width, 3, dilation=d) for i, d in enumerate((1, 2, 4, 8)))
        self.out = nn.Conv1d(width, channels, 1)

    def forward(self, x):
        h = x.transpose(1, 2)
        for layer in self.layers:
            h = torch.relu(layer(F.pad(h, (2 * layer.dilation[0], 0))))
        return self.out(h).transpose(1, 2)


def predictive_score(train_windows: np.ndarray, test_windows: np.ndarray, steps: int = 200, seed: int = 0,
                     reference: np.ndarray | None = None) -> float:
    """Train on ``train_windows`` (e.g. synthetic) to predict the next sample; mean absolute error on ``test_windows``
    (real), in units of the reference's standard deviation. Compare with the same trained on real windows."""
    torch.manual_seed(seed)
    x_train, x_test = _standardize(train_windows, test_windows, reference=reference if reference is not None else test_windows)
    model = _fit(_CausalForecaster(train_windows.shape[2]), x_train[:, :-1], x_train[:, 1:], F.l1_loss, steps, seed)
    with torch.no_grad():
        return float(F.l1_loss(model(x_test[:, :-1]), x_test[:, 1:]))


def nearest_neighbour_distances(queries: np.ndarray, references: np.ndarray) -> np.ndarray:
    """Euclidean distance from each query row to its nearest reference row."""
    q, r = torch.from_numpy(queries).double(), torch.from_numpy(references).double()
    return torch.cat([torch.cdist(q[i : i + 512], r).min(dim=1).values for i in range(0, len(q), 512)]).numpy()


def label_classification_score(train_windows: np.ndarray, train_labels: np.ndarray, test_windows: np.ndarray,
                               test_labels: np.ndarray, num_classes: int, steps: int = 200, seed: int = 0,
                               reference: np.ndarray | None = None) -> dict:
    """Train a window classifier on one labelled set (e.g. synthetic: TSTR) and test it on another (real).
    Returns accuracy and balanced accuracy (the mean per-class recall, fair when classes are rare)."""
    torch.manual_seed(seed)
    x_train, x_test = _standardize(train_windows, test_windows, reference=reference if reference is not None else test_windows)
    model = _fit(_WindowClassifier(train_windows.shape[2], classes=num_classes), x_train, torch.from_numpy(train_labels).long(),
                 F.cross_entropy, steps, seed)
    with torch.no_grad():
        predicted = model(x_test).argmax(dim=1).numpy()
    recalls = [float((predicted[test_labels == c] == c).mean()) for c in range(num_classes) if (test_labels == c).any()]
    return {"accuracy": float((predicted == test_labels).mean()), "balanced_accuracy": float(np.mean(recalls)),
            "train_windows": int(len(train_windows)), "test_windows": int(len(test_windows))}
