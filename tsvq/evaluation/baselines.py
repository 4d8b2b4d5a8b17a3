"""Named baseline generators that every report scores beside the model.

A metric is only worth reading if generators that are plainly not ECG score worse than real data on it. Each
baseline here is fitted to the *training* windows (never the held-out ones the report compares against) and
fails in a known way:

- ``phase_randomised``: training windows with their power spectrum kept and their phases drawn at random: the
  right spectrum and autocorrelation, no beats or morphology.
- ``autoregressive``: a linear AR model per channel, order chosen by AIC (Yule-Walker): a smooth stationary
  process with roughly the right spectrum and no beats.
- ``gaussian``: independent noise with the training windows' mean and standard deviation at every sample.
- ``train_copies``: training windows, each circularly shifted at random: near-perfect distribution figures and a
  memorisation ratio far below 1, which is what the memorisation figure exists to catch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import linalg
from scipy import signal as sps

from tsvq.errors import ConfigError
from tsvq.evaluation.generation import phase_randomized


class Baseline:
    """``fit(train windows (N, L, C))`` once, then ``sample(n, seed) -> (n, L, C)`` float32 as often as needed."""

    name = "baseline"

    def fit(self, train: np.ndarray) -> Baseline:
        self.train = np.asarray(train, dtype=np.float32)
        return self

    def sample(self, n: int, seed: int) -> np.ndarray:
        raise NotImplementedError

    @property
    def info(self) -> dict:
        return {}

    def _draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.train[rng.integers(0, len(self.train), n)]


class PhaseRandomised(Baseline):
    name = "phase_randomised"

    def sample(self, n: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return phase_randomized(self._draw(n, rng), seed=int(rng.integers(2**31)))


class TrainCopies(Baseline):
    name = "train_copies"

    def sample(self, n: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        windows = self._draw(n, rng)
        shifts = rng.integers(0, windows.shape[1], n)
        return np.stack([np.roll(w, s, axis=0) for w, s in zip(windows, shifts)]).astype(np.float32)


class Gaussian(Baseline):
    name = "gaussian"

    def fit(self, train: np.ndarray) -> Gaussian:
        self.mean = train.mean(axis=0)
        self.std = train.std(axis=0)
        return self

    def sample(self, n: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return (self.mean + self.std * rng.standard_normal((n, *self.mean.shape))).astype(np.float32)


@dataclass
class ARModel:
    """One channel's AR(p) model: x[t] = sum_k coefficients[k] x[t-1-k] + e[t], e ~ N(0, noise_variance)."""

    coefficients: np.ndarray
    noise_variance: float
    aic: list[float] = field(default_factory=list)

    @property
    def order(self) -> int:
        return len(self.coefficients)


def fit_ar_by_aic(windows: np.ndarray, max_order: int) -> ARModel:
    """Yule-Walker fits of orders 1..max_order on demeaned windows ``(N, L)`` pooled; the order of least AIC.

    The autocovariance is pooled over windows (each demeaned on its own, so the window means, drawn separately,
    do not pass for low-frequency power). Yule-Walker estimates are always stable, so simulating never diverges.
    """
    x = windows - windows.mean(axis=1, keepdims=True)
    length = x.shape[1]
    spectrum = np.fft.rfft(x, n=2 * length, axis=1)
    autocovariance = np.fft.irfft(np.abs(spectrum) ** 2, axis=1)[:, : max_order + 1].sum(axis=0) / x.size
    if autocovariance[0] <= 0:
        raise ValueError("the training windows are flat: no autoregressive model can be fitted")
    count = x.size
    best, aic = None, []
    for order in range(1, max_order + 1):
        coefficients = linalg.solve_toeplitz(autocovariance[:order], autocovariance[1 : order + 1])
        noise_variance = float(autocovariance[0] - coefficients @ autocovariance[1 : order + 1])
        if noise_variance <= 0:
            break
        aic.append(count * np.log(noise_variance) + 2 * order)
        if best is None or aic[-1] < best[0]:
            best = (aic[-1], coefficients, noise_variance)
    return ARModel(np.asarray(best[1]), best[2], aic)


class Autoregressive(Baseline):
    name = "autoregressive"

    def __init__(self, max_order: int = 64):
        self.max_order = max_order

    def fit(self, train: np.ndarray) -> Autoregressive:
        length = train.shape[1]
        max_order = max(1, min(self.max_order, length // 4))
        self.models = [fit_ar_by_aic(train[:, :, c].astype(np.float64), max_order) for c in range(train.shape[2])]
        self.window_means = train.mean(axis=1)  # (N, C): each sample takes one training window's mean level
        self.length = length
        return self

    def sample(self, n: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        channels = []
        for model in self.models:
            burn_in = 20 * model.order + 200  # long enough for the start-up transient to die out
            noise = rng.standard_normal((n, burn_in + self.length)) * np.sqrt(model.noise_variance)
            path = sps.lfilter([1.0], np.concatenate([[1.0], -model.coefficients]), noise, axis=1)
            channels.append(path[:, burn_in:])
        levels = self.window_means[rng.integers(0, len(self.window_means), n)]
        return (np.stack(channels, axis=2) + levels[:, None, :]).astype(np.float32)

    @property
    def info(self) -> dict:
        return {"orders": [m.order for m in self.models], "max_order": self.max_order}


BASELINES: dict[str, type[Baseline]] = {
    cls.name: cls for cls in (PhaseRandomised, Autoregressive, Gaussian, TrainCopies)
}


def baseline_names(names: list[str] | None = None) -> list[str]:
    """The baselines asked for (all by default), each checked to exist."""
    names = list(BASELINES) if names is None else list(names)
    unknown = [name for name in names if name not in BASELINES]
    if unknown:
        raise ConfigError(f"unknown baseline(s) {unknown}; known: {sorted(BASELINES)}")
    return names


def fit_baselines(train: np.ndarray, names: list[str] | None = None) -> dict[str, Baseline]:
    """Every named baseline (all by default) fitted to the training windows ``(N, L, C)``."""
    return {name: BASELINES[name]().fit(train) for name in baseline_names(names)}
