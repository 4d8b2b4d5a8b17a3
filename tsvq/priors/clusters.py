"""Window clusters: a discrete summary of each training window that a diffusion prior conditions on.

Why: a prior that must choose, position by position, between the beat shapes of many patients mixes them inside
one window (an upright narrow beat beside an inverted wide one; benchmarks/README.md, "What the MIT-BIH prior's
rhythm error is made of"). Splitting generation in two stages removes that choice from the denoiser: first draw
a cluster (a group of training windows with similar latent statistics, by counting how often each cluster occurs,
per label), then denoise conditioned on it, so the whole window commits to one kind of window. This is
self-guidance with cluster labels (Hu et al. 2023, "Self-Guided Diffusion Models") and representation-conditioned
generation (Li et al. 2024, RCG) with the simplest representation generator there is: a table of counts.

The summary is modality-free (no beat detector): the mean and spread over time of each latent dimension.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.cluster.vq import kmeans2, vq

from tsvq.errors import ConfigError, DataError


def window_summaries(latents: torch.Tensor) -> np.ndarray:
    """``(N, 2D)``: each window's per-dimension mean and standard deviation over its ``L'`` positions, from
    standardised latents ``(N, D, L')``."""
    return torch.cat([latents.mean(-1), latents.std(-1)], dim=1).double().numpy()


def fit_clusters(summaries: np.ndarray, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(centroids, scale)``: k-means++ on the summaries, each feature divided by ``scale`` (its spread) first."""
    if not 2 <= k <= len(summaries):
        raise ConfigError(f"clusters must lie in [2, {len(summaries)}] (the training windows), got {k}")
    spread = summaries.std(0)
    scale = np.where(spread > 0, spread, 1.0)
    centroids, _ = kmeans2(summaries / scale, k, iter=25, minit="++", seed=np.random.default_rng(seed))
    return centroids, scale


def assign_clusters(summaries: np.ndarray, centroids: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``(N,)`` the nearest centroid of each window's summary."""
    return vq(summaries / scale, centroids, check_finite=False)[0].astype(np.int64)


def cluster_counts(clusters: np.ndarray, label_ids: np.ndarray, num_labels: int, k: int) -> np.ndarray:
    """``(num_labels + 1, k)`` how many training windows of each label (last row: unlabelled) fall in each
    cluster: the first stage of generation, ``p(cluster | label)``."""
    counts = np.zeros((num_labels + 1, k), dtype=np.int64)
    np.add.at(counts, (label_ids, clusters), 1)
    return counts


def draw_clusters(counts: np.ndarray, label_ids: torch.Tensor | None, n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` cluster indices: from ``p(cluster | label)`` for each label given, from the clusters' overall
    frequency where there is none (unconditional draws and the "no label" index)."""
    table = torch.as_tensor(counts, dtype=torch.float64)
    overall = table.sum(0)
    if label_ids is None:
        weights = overall.expand(n, -1)
    else:
        rows = table[label_ids.clamp(max=len(table) - 1)]
        unlabelled = (label_ids >= len(table) - 1) | (rows.sum(1) == 0)
        weights = torch.where(unlabelled[:, None], overall.expand(n, -1), rows)
    if float(overall.sum()) <= 0:
        raise DataError("diffusion prior: the cluster table is empty (prior.json 'cluster_counts')")
    return torch.multinomial(weights, 1, generator=generator).squeeze(1)
