"""Recorded noise to add to clean signals: for training a denoiser and for measuring one.

The MIT-BIH Noise Stress Test Database ships baseline wander (``bw``) and muscle artefact (``ma``) as records of
noise alone; its electrode motion exists only added to record 118 (``118e24`` = 118 + noise), so it is recovered
as a difference: ``"nstdb/118e00 - mitdb/118"``. Noise is added the way nstdb's ``nst`` tool calibrates it: the
signal's size is its QRS peak-to-peak amplitude, as the power of a sine of that amplitude (pp² / 8), and the noise's
its mean power over 1-s blocks, each 5% tail trimmed, so "6 dB" means what it means in the papers that use nstdb.

Each noise record can be cut by time (``span``, fractions of its length): a denoiser trains on one part and is
measured on the rest, and the folder it saves says which part it saw.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from tsvq.data.preprocess import Preprocessing, is_number, true_runs
from tsvq.data.records import read_record
from tsvq.errors import ConfigError, DataError


def noise_source(spec: str | os.PathLike) -> tuple[np.ndarray, float]:
    """Noise ``(L, C)`` and its rate from ``"RECORD"`` or ``"NOISY - CLEAN"`` (the noise is their difference)."""
    spec = os.fspath(spec)
    parts = [p.strip() for p in spec.split(" - ")]
    if len(parts) not in (1, 2) or not all(parts):
        raise DataError(f"noise {spec!r}: expected 'RECORD' or 'NOISY - CLEAN'")
    noisy = read_record(parts[0])
    signal = noisy.signal
    if len(parts) == 2:
        clean = read_record(parts[1])
        if clean.sampling_rate_hz != noisy.sampling_rate_hz:
            raise DataError(f"noise {spec!r}: the two records have different rates")
        length, channels = min(len(signal), len(clean.signal)), min(signal.shape[1], clean.signal.shape[1])
        signal = signal[:length, :channels] - clean.signal[:length, :channels]
    if not np.isfinite(signal).all():
        raise DataError(f"noise {spec!r}: holds NaN samples")
    return signal, float(noisy.sampling_rate_hz)


def portable_name(spec: str | os.PathLike) -> str:
    """A noise spec as it is recorded with a model: each record as its database folder and name (``nstdb/bw``,
    ``nstdb/118e00 - mitdb/118``), not a path of the machine it was trained on."""
    return " - ".join("/".join(Path(part.strip()).parts[-2:]) for part in os.fspath(spec).split(" - "))


def noise_power(noise: np.ndarray, rate_hz: float) -> float:
    """Mean power of ``noise`` ``(L,)`` over 1-s blocks (each block's mean removed), 5% of blocks trimmed each side."""
    block = max(1, int(round(rate_hz)))
    blocks = noise[: len(noise) // block * block].reshape(-1, block) if len(noise) >= block else noise[None]
    powers = np.sort(blocks.var(axis=1))
    cut = len(powers) // 20
    return float(powers[cut : len(powers) - cut].mean())


def qrs_power(signal: np.ndarray, beats: np.ndarray, rate_hz: float) -> float:
    """nst's signal size: the trimmed mean QRS peak-to-peak amplitude (±50 ms of each beat), squared, over 8."""
    half = max(1, int(round(0.05 * rate_hz)))
    amplitudes = np.sort([np.ptp(signal[b - half : b + half]) for b in beats if half <= b < len(signal) - half])
    if not len(amplitudes):
        raise DataError("no beat lies far enough from the ends to measure its QRS amplitude")
    cut = len(amplitudes) // 20
    return float(amplitudes[cut : len(amplitudes) - cut].mean() ** 2 / 8)


# Beyond: noise 10^5 times the signal's amplitude, or 10^-5 of it (and 10^(SNR/10) overflows a float).
SNR_RANGE_DB = (-100.0, 100.0)


def check_snr_db(values, where: str) -> list[float]:
    """SNRs in dB as floats, or a ConfigError naming ``where``: each a finite number within ``SNR_RANGE_DB``."""
    low, high = SNR_RANGE_DB
    for value in values:
        if not is_number(value) or not low <= value <= high:
            raise ConfigError(f"{where}: SNR {value!r} dB: each must be a number of dB in [{low:g}, {high:g}]")
    return [float(v) for v in values]


def scaled_to_snr(noise: np.ndarray, signal_power: float, snr_db: float, rate_hz: float) -> np.ndarray:
    """``noise`` scaled so that ``signal_power`` over its power is ``snr_db``."""
    return noise * np.sqrt(signal_power / (max(noise_power(noise, rate_hz), 1e-20) * 10 ** (snr_db / 10)))


class NoiseBank:
    """Noise stretches conditioned like the codec's windows (rate, band), by source (record and channel).

    Only stretches where there is noise are kept (a difference of two records is zero where nothing was added).
    """

    def __init__(
        self, specs: list[str], preprocessing: Preprocessing | None, span: tuple[float, float] = (0.0, 1.0)
    ):  # preprocessing None: keep each record's own rate and band (to add to raw recordings)
        if not specs:
            raise DataError("noise: give at least one noise record")
        if not 0 <= span[0] < span[1] <= 1:
            raise DataError(f"noise span {list(span)}: expected two fractions 0 <= start < end <= 1")
        self.specs, self.span = [os.fspath(spec) for spec in specs], tuple(span)
        self.names: list[str] = []
        self.stretches: list[np.ndarray] = []
        for spec in self.specs:
            raw, rate = noise_source(spec)
            lo, hi = int(span[0] * len(raw)), int(span[1] * len(raw))
            for c in range(raw.shape[1]):
                for stretch in _noisy_stretches(raw[lo:hi, c], rate):
                    if preprocessing is not None:
                        stretch = preprocessing.condition(stretch[:, None], rate)[:, 0]
                    self.stretches.append(stretch.astype(np.float32))
                    self.names.append(f"{Path(spec.split(' - ')[0]).name}:{c}")
        if not self.stretches:
            raise DataError(f"noise {specs}: no stretch with noise in span {list(span)}")
        self.sources = sorted(set(self.names))  # drawn equally often, whatever their length
        self._by_source = {s: [i for i, name in enumerate(self.names) if name == s] for s in self.sources}

    def draw(self, rng: np.random.Generator, length: int) -> np.ndarray:
        """A random stretch of ``length`` samples from a random source (sources equally likely), mean removed."""
        source = self.sources[rng.integers(len(self.sources))]
        choices = [i for i in self._by_source[source] if len(self.stretches[i]) > length]
        if not choices:
            raise DataError(f"noise {source}: no stretch of {length} samples")
        stretch = self.stretches[choices[rng.integers(len(choices))]]
        start = rng.integers(len(stretch) - length)
        piece = stretch[start : start + length]
        return piece - piece.mean()


def _noisy_stretches(noise: np.ndarray, rate_hz: float) -> list[np.ndarray]:
    """The runs of 1-s blocks that hold noise (power above a millionth of the loudest block's)."""
    block = max(1, int(round(rate_hz)))
    usable = len(noise) // block * block
    powers = noise[:usable].reshape(-1, block).var(axis=1)
    if not len(powers) or powers.max() <= 0:
        return []
    loud = powers > powers.max() * 1e-6
    return [noise[a * block : b * block] for a, b in true_runs(loud) if b - a >= 2]
