"""Signal conditioning at the record level: quality masking, resampling and zero-phase filtering.

Bad stretches (NaN/Inf, flat line, clipping) are cut out and counted, never interpolated: a record
becomes a list of clean segments, each resampled and filtered on its own so no filter runs across a gap.
"""

from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from scipy import signal as sps

from tsvq.config import from_dict
from tsvq.errors import DataError

OK, NOT_FINITE, FLAT, CLIPPED = 0, 1, 2, 3
REASONS = {NOT_FINITE: "nan_or_inf", FLAT: "flat_line", CLIPPED: "clipped"}


def real_array(values, what: str = "signals") -> np.ndarray:
    """``values`` as a NumPy array of real numbers, or a DataError that says what it is instead (text, complex,
    an ``.npz`` archive, an object array)."""
    if isinstance(values, np.lib.npyio.NpzFile):
        raise DataError(
            f"{what}: an .npz archive of {len(values.files)} array(s); save the one array with np.save (.npy)"
        )
    try:
        array = np.asarray(values)
    except ValueError as error:  # ragged nested lists
        raise DataError(f"{what}: not a rectangular array of numbers ({error})") from error
    if np.iscomplexobj(array):
        raise DataError(f"{what}: expected real-valued samples, got dtype {array.dtype}")
    if array.dtype == bool or not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise DataError(f"{what}: expected numbers, got an array of dtype {array.dtype}")
    return array


def one_recording(values, where: str) -> np.ndarray:
    """``values`` ``(L,)`` or ``(L, C)`` as a float64 ``(L, C)`` array. Samples run along the first axis: a
    recording passed transposed, ``(C, L)``, would otherwise be read as thousands of one-sample leads."""
    x = np.asarray(real_array(values, where), dtype=np.float64)
    shape = x.shape
    x = x[:, None] if x.ndim == 1 else x
    if x.ndim != 2 or not len(x):
        raise DataError(f"{where}: expected one recording of shape (L,) or (L, C), got {shape}")
    if x.shape[1] > x.shape[0]:
        raise DataError(
            f"{where}: shape {shape} has more channels ({x.shape[1]}) than samples ({x.shape[0]}); a recording is "
            "(L,) or (L, C) with samples along the first axis: transpose it (.T)"
        )
    return x


def is_number(value) -> bool:
    """A real number (Python's or NumPy's), not a bool or a string that reads as one."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


@dataclass(frozen=True)
class QualityConfig:
    """Thresholds for the stretches that are dropped."""

    # A lead unchanged this long is disconnected: any heart rate >= 30 bpm puts a QRS in 2 s, even after coarse
    # 8-bit quantisation (MIMIC format 80) leaves diastole unchanged for a second.
    flat_seconds: float = 2.0
    clip_seconds: float = 0.05  # samples pinned at the channel's extreme this long are clipping
    clip_min_fraction: float = 0.0005  # ...and only if the extreme is hit this often (a true peak is hit once)


def true_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Start/end (exclusive) of the True runs of a boolean vector."""
    padded = np.concatenate([[False], mask, [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return list(zip(edges[0::2].tolist(), edges[1::2].tolist()))


def quality_mask(signal: np.ndarray, rate_hz: float, config: QualityConfig = QualityConfig()) -> np.ndarray:
    """Per-sample reason code (0 = usable) for an ``(L, C)`` signal at its native rate."""
    length, channels = signal.shape
    mask = np.zeros(length, dtype=np.int8)
    finite = np.isfinite(signal)
    mask[~finite.all(axis=1)] = NOT_FINITE
    flat_min = max(2, int(round(config.flat_seconds * rate_hz)))
    clip_min = max(2, int(round(config.clip_seconds * rate_hz)))
    for c in range(channels):
        x = signal[:, c]
        good = finite[:, c]
        if not good.any():
            continue
        unchanged = np.zeros(length, dtype=bool)
        unchanged[1:] = (np.diff(x) == 0) & good[1:] & good[:-1]
        for start, end in true_runs(unchanged):
            if end - start + 1 >= flat_min:
                mask[max(start - 1, 0) : end][mask[max(start - 1, 0) : end] == OK] = FLAT
        low, high = np.nanmin(x[good]), np.nanmax(x[good])
        if high <= low:
            continue
        for extreme in (low, high):
            pinned = good & (x == extreme)
            if pinned.sum() < config.clip_min_fraction * length:
                continue
            for start, end in true_runs(pinned):
                if end - start >= clip_min:
                    mask[start:end][mask[start:end] == OK] = CLIPPED
    return mask


def clean_segments(mask: np.ndarray) -> list[tuple[int, int]]:
    """Start/end of the runs of usable samples."""
    return true_runs(mask == OK)


def dropped_seconds(mask: np.ndarray, rate_hz: float) -> dict[str, float]:
    """Seconds removed per reason."""
    return {name: float((mask == code).sum() / rate_hz) for code, name in REASONS.items() if (mask == code).any()}


def resample(signal: np.ndarray, from_hz: float, to_hz: float) -> np.ndarray:
    """Polyphase resampling of an ``(L, C)`` signal; exact rational ratio where rates allow."""
    if from_hz <= 0 or to_hz <= 0:
        raise DataError(f"sampling rates must be positive (got {from_hz} -> {to_hz} Hz)")
    if from_hz == to_hz:
        return signal
    ratio = Fraction(to_hz / from_hz).limit_denominator(1000)
    return sps.resample_poly(signal, ratio.numerator, ratio.denominator, axis=0, padtype="line")


def at_length(signal: np.ndarray, length: int) -> np.ndarray:
    """An ``(L, C)`` signal cut or edge-padded to ``length`` samples (a resampled signal back at its input's length:
    rational resampling may leave it a sample long or short)."""
    return np.pad(signal[:length], ((0, max(0, length - len(signal))), (0, 0)), mode="edge")


def bandpass(
    signal: np.ndarray, rate_hz: float, low_hz: float | None, high_hz: float | None, order: int = 4
) -> np.ndarray:
    """Zero-phase Butterworth band-pass (or high-/low-pass when one edge is None) along time.

    A high-pass near 0.5 Hz removes baseline wander from breathing and movement without touching the QRS.
    """
    nyquist = rate_hz / 2
    if high_hz is not None and high_hz >= nyquist:
        high_hz = None  # already band-limited by resampling
    if low_hz is None and high_hz is None:
        return signal
    if low_hz is not None and high_hz is not None:
        sos = sps.butter(order, [low_hz, high_hz], btype="bandpass", fs=rate_hz, output="sos")
    elif low_hz is not None:
        sos = sps.butter(order, low_hz, btype="highpass", fs=rate_hz, output="sos")
    else:
        sos = sps.butter(order, high_hz, btype="lowpass", fs=rate_hz, output="sos")
    padlen = min(signal.shape[0] - 1, 3 * (2 * len(sos) + 1) * 10)
    return sps.sosfiltfilt(sos, signal, axis=0, padlen=padlen)


def flat_channel(signal: np.ndarray) -> tuple[int, float] | None:
    """The first channel of ``signal`` ``(L, C)`` whose finite samples are all one value, and that value: a
    disconnected lead, which holds nothing to code, denoise or continue."""
    for c in range(signal.shape[1]):
        finite = signal[np.isfinite(signal[:, c]), c]
        if len(finite) and float(finite.max() - finite.min()) == 0.0:
            return c, float(finite[0])
    return None


def finite_stretches(signal: np.ndarray) -> list[tuple[int, int]]:
    """Start/end of the runs of samples where every channel of an ``(L, C)`` signal is finite (NaN/Inf: gaps)."""
    return true_runs(np.isfinite(signal).all(axis=1))


@dataclass(frozen=True)
class Preprocessing:
    """What a window store did to each record before cutting windows, kept in the codec's config.

    A codec only works on signals conditioned like the ones it learned from (on MIT-BIH's unseen patients a codec
    trained on 0.5-40 Hz windows gives PRDN 8.7% on band-passed input and 14.5% on raw input), so the codec folder
    carries this and ``Pipeline.preprocess`` applies it to new recordings.
    """

    sampling_rate_hz: float
    highpass_hz: float | None = 0.5
    lowpass_hz: float | None = 40.0
    filter_order: int = 4  # zero-phase Butterworth (scipy sosfiltfilt): no delay, so beats stay where they were
    window_length: int = 1024
    channel_names: tuple[str, ...] = ("ECG",)
    channel_aliases: bool = False  # names such as II match MLII (tsvq.data.records.DEFAULT_CHANNEL_ALIASES)
    leads_as_examples: bool = False  # each lead was its own single-channel example
    normalisation: str = "train-split mean and standard deviation per channel, applied inside the codec"

    @classmethod
    def from_store_manifest(cls, manifest: dict) -> Preprocessing:
        config = manifest.get("config", {})
        return cls(
            sampling_rate_hz=float(manifest["sampling_rate_hz"]),
            highpass_hz=config.get("highpass_hz"),
            lowpass_hz=config.get("lowpass_hz"),
            window_length=int(manifest["window_length"]),
            channel_names=tuple(manifest["channel_names"]),
            channel_aliases=bool(config.get("channel_aliases", False)),
            leads_as_examples=bool(config.get("leads_as_examples", False)),
        )

    @classmethod
    def from_dict(cls, values: dict, where: str = "preprocessing") -> Preprocessing:
        return from_dict(cls, {**values, "channel_names": tuple(values.get("channel_names", ()))}, where)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self) | {"channel_names": list(self.channel_names)}

    def describe(self) -> str:
        return (
            f"{self.sampling_rate_hz:g} Hz, {self.describe_band()} zero-phase Butterworth (order {self.filter_order})"
        )

    def describe_band(self) -> str:
        if self.lowpass_hz:
            return f"{self.highpass_hz or 0:g}-{self.lowpass_hz:g} Hz"
        return f"above {self.highpass_hz:g} Hz" if self.highpass_hz else "full-band"

    def band_limited(self, signal: np.ndarray, rate_hz: float) -> np.ndarray:
        """One finite stretch filtered to the pipeline's band at its own rate: what a band-pass alone does to it."""
        return bandpass(
            np.asarray(signal, dtype=np.float64), rate_hz, self.highpass_hz, self.lowpass_hz, self.filter_order
        )

    def check_rate(self, rate_hz: float, where: str) -> None:
        """A recording whose Nyquist frequency is below the pipeline's low-pass edge lacks part of the band the
        codec was trained on: upsampling cannot put it back, and the codec would add beats' high frequencies."""
        if not is_number(rate_hz) or rate_hz <= 0 or not np.isfinite(rate_hz):
            raise DataError(f"{where}: sampling rate must be a positive number of Hz, got {rate_hz!r}")
        band_top = self.lowpass_hz or self.sampling_rate_hz / 2
        if rate_hz / 2 < band_top:
            raise DataError(
                f"{where}: recorded at {rate_hz:g} Hz, which holds nothing above {rate_hz / 2:g} Hz, but the "
                f"pipeline codes {self.describe()}; use a pipeline trained at this rate"
            )

    def check_length(self, samples: int, rate_hz: float, where: str, task: str, what: str = "long") -> None:
        """A recording (or its observed part, ``what``) shorter than one of the pipeline's windows: the codec and
        priors learnt from windows, and the band-pass needs seconds to settle, so a shorter one would come back as
        filter edges and guesses."""
        window_s = self.window_length / self.sampling_rate_hz
        if samples / rate_hz < window_s:
            raise DataError(
                f"{where}: {samples / rate_hz:.3g} s {what}, shorter than one window of the pipeline "
                f"({window_s:g} s): too short to {task}"
            )

    def condition(self, signal: np.ndarray, rate_hz: float) -> np.ndarray:
        """One finite stretch ``(L, C)`` at ``rate_hz`` -> ``(L', C)`` float64 at the pipeline rate, band-limited."""
        out = resample(np.asarray(signal, dtype=np.float64), rate_hz, self.sampling_rate_hz)
        return bandpass(out, self.sampling_rate_hz, self.highpass_hz, self.lowpass_hz, self.filter_order)

    def output_length(self, length: int, rate_hz: float) -> int:
        return int(round(length * (self.sampling_rate_hz / rate_hz)))  # as prepare has always placed segments

    def apply(self, signal: np.ndarray, rate_hz: float, where: str = "signal") -> np.ndarray:
        """A whole recording ``(L, C)`` (or one channel ``(L,)``) at ``rate_hz`` -> ``(L', C)`` float32 at the
        pipeline rate, each finite stretch resampled and filtered on its own (no filter runs across a gap); NaN gaps
        stay NaN."""
        signal = one_recording(signal, where)
        self.check_rate(rate_hz, where)
        out = np.full((self.output_length(len(signal), rate_hz), signal.shape[1]), np.nan, dtype=np.float32)
        for start, end in finite_stretches(signal):
            stretch = self.condition(signal[start:end], rate_hz)
            at = self.output_length(start, rate_hz)
            usable = min(len(stretch), len(out) - at)
            out[at : at + usable] = stretch[:usable]
        return out
