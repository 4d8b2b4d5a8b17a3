"""Training-free features of signal windows: random convolution kernels in the manner of ROCKET
(Dempster et al. 2020). Each kernel has a random length (7, 9 or 11), zero-mean normal weights over all
channels, a uniform bias and an exponentially distributed dilation; each gives two features, the proportion of
positive values (PPV) and the maximum of its output. Seeded, so every report uses the same kernels, and usable
for any channel count, including one.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from tsvq.evaluation.generation import single_thread


class RandomKernelFeatures:
    """``transform(windows (n, L, C)) -> (n, 2 * num_kernels)``. Windows are standardised with ``scale`` first."""

    def __init__(self, length: int, channels: int, num_kernels: int = 256, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.kernels = []
        for _ in range(num_kernels):
            size = int(rng.choice([7, 9, 11]))
            weights = rng.normal(size=(channels, size))
            weights -= weights.mean()
            max_exponent = np.log2(max((length - 1) / (size - 1), 1))
            dilation = int(2 ** rng.uniform(0, max_exponent))
            padding = ((size - 1) * dilation) // 2 if rng.integers(2) else 0
            self.kernels.append(
                (torch.tensor(weights, dtype=torch.float32)[None], float(rng.uniform(-1, 1)), dilation, padding)
            )
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None

    def fit_scale(self, reference: np.ndarray) -> RandomKernelFeatures:
        """Standardise every set with the reference (real) windows' per-channel statistics, so amplitude counts."""
        self.mean = reference.mean(axis=(0, 1), keepdims=True)
        self.std = reference.std(axis=(0, 1), keepdims=True) + 1e-8
        return self

    @torch.no_grad()
    @single_thread()
    def transform(self, windows: np.ndarray, batch_size: int = 512) -> np.ndarray:
        if self.mean is None:
            self.fit_scale(windows)
        x_all = torch.from_numpy(((windows - self.mean) / self.std).astype(np.float32)).transpose(1, 2)
        out = []
        for start in range(0, len(x_all), batch_size):
            x = x_all[start : start + batch_size]
            columns = []
            for weight, bias, dilation, padding in self.kernels:
                response = F.conv1d(x, weight, bias=torch.tensor([bias]), dilation=dilation, padding=padding)[:, 0]
                columns += [(response > 0).float().mean(dim=1), response.max(dim=1).values]
            out.append(torch.stack(columns, dim=1))
        return torch.cat(out).numpy().astype(np.float64)
