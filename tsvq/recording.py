"""What is coded or repaired: a recording's channels chosen, its units converted to the pipeline's, and the checks
that refuse a recording the pipeline would code as garbage (a flat lead, an amplitude 20 times off).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from tsvq.data.preprocess import flat_channel, one_recording
from tsvq.errors import DataError

if TYPE_CHECKING:
    from tsvq.pipeline import Pipeline

VOLTS = {"v": 1.0, "mv": 1e-3, "uv": 1e-6, "µv": 1e-6, "μv": 1e-6, "nv": 1e-9}


def unit_scale(unit: str, pipeline_unit: str, where: str) -> float:
    """Factor that takes values in ``unit`` to ``pipeline_unit``: voltages convert; other units must match."""
    a, b = unit.strip().lower(), pipeline_unit.strip().lower()
    if a == b or not a:
        return 1.0
    if a in VOLTS and b in VOLTS:
        return VOLTS[a] / VOLTS[b]
    raise DataError(f"{where}: in '{unit}', but the pipeline codes '{pipeline_unit}'; convert the signal first")


@dataclass
class DecodedRecord:
    """A decompressed recording: ``signal`` ``(T, C)`` float32 in the recording's units (NaN in its gaps)."""

    signal: np.ndarray
    sampling_rate_hz: float
    channel_names: list[str]
    units: list[str]
    start_sample: int
    record: str = ""
    base_date: str = ""  # the start of the recording (ISO), written into the WFDB header
    base_time: str = ""


def check_recording(signal: np.ndarray, channel_names: list[str], where: str) -> None:
    """Errors a user can act on before any coding: shape, no samples, a lead that is one constant value."""
    if signal.ndim != 2 or signal.shape[1] != len(channel_names) or not len(channel_names):
        raise DataError(
            f"{where}: expected a signal of shape (L, C >= 1) with one name per channel, got {signal.shape}"
        )
    for c, name in enumerate(channel_names):
        if not np.isfinite(signal[:, c]).any():
            kinds = " and ".join(k for k, f in (("NaN", np.isnan), ("Inf", np.isinf)) if f(signal[:, c]).any())
            raise DataError(f"{where}: channel '{name}' holds no finite sample (all {kinds})")
    flat = flat_channel(signal)
    if flat is not None:
        raise DataError(
            f"{where}: channel '{channel_names[flat[0]]}' is flat (every sample {flat[1]:g}): a disconnected lead has "
            "nothing to code; leave it out (--channels)"
        )


AMPLITUDE_FACTOR = 20.0  # a recording this many times louder or quieter than the codec's training data is refused


def check_amplitude(
    codec, stream: list[int], names: list[str], units: list[str], conditioned: np.ndarray, where: str
) -> None:
    """Refuse a recording whose band-passed amplitude is far from what the codec was trained on: the usual cause is
    a wrong unit (microvolts labelled mV code at PRDN near 100%, which no figure would otherwise reveal)."""
    trained = np.asarray(codec.config.norm_std, dtype=np.float64)
    for k, (name, unit) in enumerate(zip(names, units)):
        reference = trained[stream[k] if len(trained) > 1 else 0]
        spread = float(np.std(conditioned[:, k]))
        if reference > 0 and spread > 0 and not 1 / AMPLITUDE_FACTOR <= spread / reference <= AMPLITUDE_FACTOR:
            raise DataError(
                f"{where}: channel '{name}' has a band-passed spread of {spread:.3g} {codec.config.units[0]} "
                f"(read as {unit or 'the pipeline unit'}), {spread / reference:.3g} times that of the "
                f"pipeline's training data ({reference:.3g}); check its unit"
            )


@dataclass
class Recording:
    """What is coded: a signal ``(L, C)`` whose channels are chosen, with what the file keeps about them."""

    signal: np.ndarray
    sampling_rate_hz: float
    channel_names: list[str]
    units: list[str]
    input_bits: list[int]  # bits per stored input sample, for the compression ratio
    where: str = "signal"  # named in messages; the file keeps only its last component
    base_date: str = ""
    base_time: str = ""


def recording_channels(
    pipeline: Pipeline, available: list[str], wanted: list[str] | None, where: str, units: list[str] | None = None
) -> list[int]:
    """Indices of the channels to code: ``wanted`` by name (``["all"]``: every one), else the pipeline's own
    channels matched with aliases; a single-lead pipeline whose lead the recording lacks codes its first channel
    in a unit it reads (``units``: the channels' units; a bedside record such as BIDMC's starts with respiration
    and PPG before its ECG leads)."""
    from tsvq.data.records import select_channels

    in_channels = pipeline.codec.config.in_channels
    if wanted and [w.lower() for w in wanted] == ["all"]:
        if in_channels > 1 and len(available) != in_channels:
            raise DataError(f"{where}: the pipeline codes {pipeline.channel_names} together; name them with --channels")
        return list(range(len(available)))
    if wanted:
        return select_channels(available, wanted, use_aliases=True, where=where)
    try:
        return select_channels(available, pipeline.channel_names, use_aliases=True, where=where)
    except DataError:
        if in_channels == 1 and available:
            readable = [i for i, unit in enumerate(units or []) if _reads_unit(unit, pipeline.units[0])]
            return readable[:1] or [0]
        raise


def _reads_unit(unit: str, pipeline_unit: str) -> bool:
    try:
        unit_scale(unit, pipeline_unit, "")
    except DataError:
        return False
    return True


def as_recording(
    pipeline: Pipeline,
    signal_or_record,
    sampling_rate_hz: float | None = None,
    channels: list[str] | None = None,
    input_bits: int | list[int] | None = None,
    channel_names: list[str] | None = None,
    units: list[str] | None = None,
) -> Recording:
    """A ``tsvq.data.Record`` (channels chosen by name: ``channels``, default the pipeline's own) or a signal
    ``(L,)`` or ``(L, C)`` at ``sampling_rate_hz`` (named ``channel_names`` in ``units``, default the pipeline's) as a
    ``Recording``. ``input_bits`` default: the record's ADC resolution, else the codec's ``input_bits``."""
    from tsvq.data.records import Record

    if isinstance(signal_or_record, Record):
        record = signal_or_record
        picked = recording_channels(pipeline, record.channel_names, channels, str(record.path), record.units)
        names = [record.channel_names[i] for i in picked]
        bits = [record.adc_bits[i] if record.adc_bits and record.adc_bits[i] else None for i in picked]
        recording = Recording(
            record.signal[:, picked], record.sampling_rate_hz, names, [record.units[i] for i in picked], bits,
            str(record.path), record.base_date, record.base_time,
        )  # fmt: skip
    else:
        if sampling_rate_hz is None:
            raise DataError("compress: a signal array needs its sampling_rate_hz")
        signal = one_recording(signal_or_record, "compress")
        pipeline.preprocessing.check_rate(sampling_rate_hz, "compress")
        count = signal.shape[1]
        own = pipeline.channel_names if count == len(pipeline.channel_names) else [f"ch{c}" for c in range(count)]
        names = list(channel_names or own)
        recording = Recording(signal, float(sampling_rate_hz), names, list(units or [pipeline.units[0]] * count),
                              [None] * count)  # fmt: skip
    if input_bits is not None:
        count = len(recording.channel_names)
        recording.input_bits = [input_bits] * count if isinstance(input_bits, int) else list(input_bits)
    recording.input_bits = [b or int(pipeline.codec.config.input_bits) for b in recording.input_bits]
    return recording
