"""Whole-record compression: a recording of any length -> one small file of codes -> one continuous recording.

    compressed = pipe.compress(record)                 # a tsvq.data.Record, or compress(signal, sampling_rate_hz)
    compressed.save("100.tsvqz")
    restored = pipe.decompress(CompressedRecord.load("100.tsvqz"))   # .signal (T, C) at the native rate, NaN gaps

Each finite stretch of each coded stream is conditioned like the codec's training data (resampled, band-passed:
``Preprocessing``), coded in one pass with the codec's own receptive field as context (``tsvq.codec.streaming``:
no window seams, no overlap bits) and range-coded under an adaptive context model (``tsvq.entropy``; format 1
bit-packed them at ``log2(num_codes)`` bits each). NaN stretches are gaps:
kept out of the codes, recorded in the file, restored as NaN. A single-lead codec codes each channel on its own;
a multi-lead codec codes its channels together.

Above the codes' own rate a detail layer (``tsvq.detail``) codes what they missed: ``compress_at`` (``tsvq compress
--bitrate B`` / ``--max-prdn P``) fills any rate or PRDN the user asks for.

The file format lives in ``tsvq.compressed_file``; choosing the channels, converting units and refusing recordings
the codec cannot code, in ``tsvq.recording``.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tsvq import beats as beat_templates
from tsvq import entropy
from tsvq.codec.metrics import prdn
from tsvq.codec.streaming import decode_long, decode_margin, encode_long, encode_margin
from tsvq.compressed_file import CompressedRecord, Segment
from tsvq.data.leads import codes_independent_leads, lead_label, with_derived_limb_leads
from tsvq.data.preprocess import finite_stretches, real_array, resample
from tsvq.detail import DetailLayer
from tsvq.errors import ConfigError, DataError
from tsvq.recording import DecodedRecord, Recording, as_recording, check_amplitude, check_recording, unit_scale

if TYPE_CHECKING:
    from tsvq.pipeline import Pipeline


def compress(
    pipeline: Pipeline,
    signal_or_record,
    sampling_rate_hz: float | None = None,
    *,
    channels: list[str] | None = None,
    search: int = 0,
    quantizers: int | None = None,
    input_bits: int | list[int] | None = None,
    channel_names: list[str] | None = None,
    units: list[str] | None = None,
    entropy_coding: bool = True,
    detail_step: float | None = None,
    beats: bool = False,
) -> CompressedRecord:
    """Code a whole recording with a pipeline's codec (``Pipeline.compress``); what is coded as in ``as_recording``.

    ``search``: analysis-by-synthesis code search (slower encoding, lower error, same bits); ``quantizers``:
    residual-VQ stages to keep (fewer: lower bit rate); ``entropy_coding``: code the codes with the adaptive context
    model (``tsvq.entropy``, file format 2) where that makes the smaller file (long records; a few seconds may not
    be), else a fixed number of bits each (format 1); ``detail_step``: add a detail layer (``tsvq.detail``, format 4)
    that codes what the codes missed at this quantiser step, in the pipeline's unit (finer: more bits, less error;
    ``compress_at`` chooses it for a bit rate or a PRDN); ``beats``: the layer subtracts beat templates at the R
    peaks of an ECG first (``tsvq.beats``, format 5; an ECG pipeline's, in mV).
    """
    recording = as_recording(pipeline, signal_or_record, sampling_rate_hz, channels, input_bits, channel_names, units)
    return compress_recording(
        pipeline, recording, search=search, quantizers=quantizers, entropy_coding=entropy_coding,
        detail_step=detail_step, beats=beats,
    )  # fmt: skip


def compress_recording(
    pipeline: Pipeline, recording: Recording, *, search: int = 0, quantizers: int | None = None,
    entropy_coding: bool = True, detail_step: float | None = None, beats: bool = False,
) -> CompressedRecord:  # fmt: skip
    """The coding itself (``compress``), with a detail layer at ``detail_step`` when one is given (``quantizers=0``:
    no codes, the layer alone)."""
    if quantizers == 0 and detail_step is None:
        raise DataError("quantizers=0 keeps no codes: give a detail_step for the detail layer to code the signal")
    if beats and detail_step is None:
        raise DataError("beats=True subtracts beat templates in the detail layer: give a detail_step")
    compressed, conditioned = code_recording(
        pipeline, recording, search=search, quantizers=quantizers, entropy_coding=entropy_coding
    )
    if detail_step is None:
        return compressed
    fit = _StretchFit(compressed, conditioned, decoded_stretches(pipeline, compressed))
    if beats:
        fit = fit.with_beats(pipeline, conditioned)
        if fit.beats is None:
            raise DataError(f"{recording.where}: no beats to make templates of (an ECG pipeline, in mV, finds R peaks)")
    return with_detail(compressed, DetailLayer.rounded(detail_step, fit.beats is not None), fit.residuals, fit.beats)


def code_recording(
    pipeline: Pipeline, recording: Recording, *, search: int = 0, quantizers: int | None = None,
    entropy_coding: bool = True,
) -> tuple[CompressedRecord, list[np.ndarray]]:  # fmt: skip
    """Each finite stretch of each stream conditioned, encoded with no window seams, kept as segments of codes.
    Returns the record and the conditioned stretches, ``(samples, channels of the stream)`` per stream and
    segment in order, in the pipeline's unit (what a detail layer is measured against)."""
    codec, preprocessing = pipeline.codec, pipeline.preprocessing
    record, rate_hz, channel_names, units = (
        recording.where,
        recording.sampling_rate_hz,
        recording.channel_names,
        recording.units,
    )
    signal = real_array(recording.signal, record).astype(np.float64)
    check_recording(signal, channel_names, record)
    preprocessing.check_rate(rate_hz, record)
    c = codec.config
    preprocessing.check_length(len(signal), rate_hz, record, "code")
    if c.num_quantizers == 1 and quantizers not in (None, 0, 1):
        raise DataError(f"quantizers={quantizers}: this codec has one codebook")
    kept = c.num_quantizers if quantizers is None else min(quantizers, c.num_quantizers)
    if kept < 0:
        raise DataError(f"quantizers must be at least 1 (0: no codes, a detail layer alone), got {quantizers}")
    if c.in_channels > 1 and signal.shape[1] != c.in_channels:
        raise DataError(f"{record}: the codec codes {c.in_channels} channels together, got {signal.shape[1]}")
    scales = [
        unit_scale(u, codec.config.units[0 if c.in_channels == 1 else i], f"{record}: channel '{n}'")
        for i, (n, u) in enumerate(zip(channel_names, units))
    ]
    streams = [[i] for i in range(signal.shape[1])] if c.in_channels == 1 else [list(range(signal.shape[1]))]
    f = c.downsample_factor
    margin = encode_margin(codec, search)
    all_segments, all_codes, all_conditioned = [], [], []
    for stream in streams:
        x = signal[:, stream] * np.array([scales[i] for i in stream])
        segments, codes = [], []
        stretches = [(start, end, preprocessing.condition(x[start:end], rate_hz)) for start, end in finite_stretches(x)]
        check_amplitude(
            codec,
            stream,
            [channel_names[i] for i in stream],
            [units[i] for i in stream],
            np.concatenate([s[2] for s in stretches]),
            record,
        )
        for start, end, conditioned in stretches:
            n = len(conditioned)
            padded = _pad_to_multiple(conditioned, f)
            if kept:
                seg_codes = encode_long(codec, padded.astype(np.float32), search=search, quantizers=kept, margin=margin)
            else:  # no codes: a detail layer codes the stretch itself
                seg_codes = np.zeros((0, 0) if c.num_quantizers > 1 else 0, np.int64)
            segments.append(Segment(start, end, n, len(padded) // f))
            codes.append(seg_codes)
            all_conditioned.append(conditioned)
        all_segments.append(segments)
        all_codes.append(codes)
    compressed = CompressedRecord(
        codec_id=pipeline.codec_id,
        pipeline=pipeline.name,
        sampling_rate_hz=float(c.sampling_rate_hz),
        native_rate_hz=float(rate_hz),
        start_sample=0,
        length=len(signal),
        channel_names=list(channel_names),
        units=list(units),
        unit_scales=scales,
        input_bits=[int(b) for b in recording.input_bits],
        streams=streams,
        quantizers=kept if c.num_quantizers > 1 else min(kept, 1),
        code_bits=int(math.ceil(math.log2(c.num_codes))),
        segments=all_segments,
        codes=all_codes,
        search=search,
        residual=c.num_quantizers > 1,
        record=Path(record).name,  # the name, not the sender's folders
        base_date=recording.base_date,
        base_time=recording.base_time,
        entropy=entropy.ContextModel(int(c.num_codes)).describe() if entropy_coding and kept else None,
    )
    if compressed.entropy is not None:  # a short record gives the model little to learn: fixed-width may be smaller
        fixed = dataclasses.replace(compressed, entropy=None)
        if fixed.size_bytes() <= compressed.size_bytes():
            return fixed, all_conditioned
    return compressed, all_conditioned


def decoded_stretches(pipeline: Pipeline, compressed: CompressedRecord) -> Iterator[np.ndarray]:
    """What the codes alone decode to: ``(samples, channels of the stream)`` float64 per stream and segment, at the
    pipeline rate in the pipeline's unit, one at a time (a day-long record's stretches need not sit in memory)."""
    margin = decode_margin(pipeline.codec)
    for stream, segments, codes in zip(compressed.streams, compressed.segments, compressed.codes):
        for segment, seg_codes in zip(segments, codes):
            if compressed.quantizers:
                yield decode_long(pipeline.codec, seg_codes, margin=margin)[: segment.samples].astype(np.float64)
            else:  # no codes: the detail layer holds it all
                yield np.zeros((segment.samples, len(stream)))


def with_detail(
    compressed: CompressedRecord,
    layer: DetailLayer,
    residual: list[np.ndarray],
    beats: beat_templates.BeatFit | None = None,
) -> CompressedRecord:
    """The record with ``residual`` coded as its detail layer (file format 4; with ``beats``, 5); the codes'
    payload is reused."""
    payload = compressed.codes_payload()
    detailed = dataclasses.replace(compressed, detail=layer.describe(), detail_bytes=layer.encode(residual, beats))
    detailed._payload = payload
    return detailed


def _pad_to_multiple(x: np.ndarray, f: int) -> np.ndarray:
    """Mirror the end of ``x`` to a multiple of ``f`` samples (mirroring keeps the edge smooth; the pad is cut off
    after decoding)."""
    missing = (-len(x)) % f
    return np.pad(x, ((0, missing), (0, 0)), mode="reflect" if len(x) > 1 else "edge") if missing else x


def _with_derived_leads(signal: np.ndarray, names: list[str], units: list[str], where: str):
    """``signal`` with the limb leads that follow from its I and II appended, and their names and units."""
    try:
        derived, all_names = with_derived_limb_leads(signal, names)
    except ValueError as error:  # no I or no II
        raise DataError(f"{where}: {error}") from error
    labels = [lead_label(name) for name in names]
    unit = units[labels.index("I")]
    if units[labels.index("II")] != unit:
        raise DataError(f"{where}: leads I and II are in different units ({unit}, {units[labels.index('II')]})")
    return derived, all_names, units + [unit] * (len(all_names) - len(names))


def decompress(
    pipeline: Pipeline,
    compressed: CompressedRecord | str | Path,
    rate: str = "native",
    derive_leads: bool | None = None,
) -> DecodedRecord:
    """A ``CompressedRecord`` (or its file) -> ``DecodedRecord``: each segment decoded and placed, at the record's
    native rate or (``rate="pipeline"``) the pipeline's, NaN where it had gaps. Only the codec that wrote it may.
    ``derive_leads``: append III, aVR, aVL and aVF computed from the decoded I and II
    (``tsvq.data.leads.with_derived_limb_leads``); None: when the file holds the eight independent leads of a
    12-lead ECG (I, II, V1-V6) and none of those four."""
    where = "compressed record"
    if not isinstance(compressed, CompressedRecord):
        where = str(compressed)
        compressed = CompressedRecord.load(compressed)
    if not pipeline.accepts_codec_id(compressed.codec_id):
        raise DataError(
            f"{where}: made by pipeline '{compressed.pipeline}' "
            f"(codec {compressed.codec_id}); this is '{pipeline.name}' (codec {pipeline.codec_id}). "
            "Decompress it with the pipeline that compressed it"
        )
    codec = pipeline.codec
    if rate not in ("native", "pipeline"):
        raise DataError(f"rate must be 'native' or 'pipeline', got {rate!r}")
    check_codes_fit(codec, compressed)
    native = rate == "native"
    out_rate = compressed.native_rate_hz if native else compressed.sampling_rate_hz
    scale = compressed.sampling_rate_hz / compressed.native_rate_hz
    length = compressed.length if native else int(round(compressed.length * scale))
    out = np.full((length, len(compressed.channel_names)), np.nan, dtype=np.float32)
    details = iter(compressed.detail_residuals(where))
    stretches = decoded_stretches(pipeline, compressed)
    for stream, segments in zip(compressed.streams, compressed.segments):
        for segment in segments:
            decoded = next(stretches)
            if compressed.detail is not None:  # what the codes missed, added where it was measured
                decoded += np.column_stack([next(details) for _ in stream])
            if native:
                decoded = resample(decoded, compressed.sampling_rate_hz, compressed.native_rate_hz)
                want = segment.end - segment.start
                decoded = np.pad(decoded, ((0, max(0, want - len(decoded))), (0, 0)), mode="edge")[:want]
                at = segment.start
            else:
                at = int(round(segment.start * scale))
            usable = min(len(decoded), length - at)
            out[at : at + usable, stream] = decoded[:usable] / np.array([compressed.unit_scales[i] for i in stream])
    names, units = list(compressed.channel_names), list(compressed.units)
    if derive_leads or (derive_leads is None and codes_independent_leads(names)):
        out, names, units = _with_derived_leads(out, names, units, where)
    return DecodedRecord(
        out,
        out_rate,
        names,
        units,
        compressed.start_sample if native else int(round(compressed.start_sample * scale)),
        compressed.record,
        compressed.base_date,
        compressed.base_time,
    )


def compress_at(
    pipeline: Pipeline,
    signal_or_record,
    sampling_rate_hz: float | None = None,
    *,
    bitrate: float | None = None,
    max_prdn: float | None = None,
    channels: list[str] | None = None,
    input_bits: int | list[int] | None = None,
    channel_names: list[str] | None = None,
    units: list[str] | None = None,
    **options,
) -> tuple[CompressedRecord, dict]:
    """Compress at the operating point a user asks for: ``bitrate`` (bit/s per channel, the whole file) or
    ``max_prdn`` (%, every channel). Each count of residual stages (0: none) is tried with a detail layer
    (``tsvq.detail``) that codes what the codes missed, and no codes also with beat templates (``tsvq.beats``): for
    a rate, the finest step whose file still fits, and the point whose PRDN (mean over channels) is lowest wins; for
    a PRDN, the coarsest step that meets it (none where the codes do), and the smallest file wins. Returns the
    record and the point chosen (stages, detail step or None, beats, bit/s, PRDN per channel at the pipeline rate
    over the coded stretches, met or not); ``options`` as for ``compress``."""
    if (bitrate is None) == (max_prdn is None):
        raise ConfigError("give one target: bitrate (bit/s per channel) or max_prdn (%)")
    target = bitrate if bitrate is not None else max_prdn
    if not isinstance(target, (int, float)) or not target > 0:
        raise ConfigError(f"{'bitrate' if bitrate is not None else 'max_prdn'} = {target!r}: must be greater than 0")
    if "quantizers" in options or "detail_step" in options:
        raise ConfigError("compress_at chooses the stages and the detail step: give a bitrate or a max_prdn only")
    recording = as_recording(pipeline, signal_or_record, sampling_rate_hz, channels, input_bits, channel_names, units)
    stages = pipeline.codec.config.num_quantizers
    candidates, lowest = [], math.inf
    for kept, fit, compressed in _operating_points(pipeline, recording, stages, options):
        if not kept:  # a file needs the layer: its smallest is the coarsest step's
            compressed = fit.record(fit.coarsest())
        rate = compressed.bits_per_second() / len(compressed.channel_names)
        lowest = min(lowest, rate)
        if bitrate is not None and rate > bitrate:
            continue
        prdn, layer = fit.prdn(), None
        if bitrate is not None:
            layer = fit.layer_for_bitrate(bitrate)
        elif max(prdn.values()) > max_prdn:
            layer = fit.layer_for_prdn(max_prdn)
        if layer is not None:
            compressed, prdn = fit.record(layer), fit.prdn(layer)
        rate = compressed.bits_per_second() / len(compressed.channel_names)
        met = rate <= bitrate if bitrate is not None else max(prdn.values()) <= max_prdn
        step, beats = (layer.step, layer.beats) if layer is not None else (None, False)
        point = {"stages": kept, "of": stages, "detail_step": step, "beats": beats, "bits_per_second": rate}
        candidates.append((compressed, point | {"prdn": prdn, "met": met}))
    if not candidates:
        raise DataError(
            f"bitrate {bitrate:g} bit/s: the lowest operating point of this pipeline is {lowest:.1f} bit/s per channel"
        )
    if bitrate is not None:
        return min(candidates, key=lambda c: np.mean(list(c[1]["prdn"].values())))
    met = [c for c in candidates if c[1]["met"]]
    if met:
        return min(met, key=lambda c: c[1]["bits_per_second"])
    return min(candidates, key=lambda c: max(c[1]["prdn"].values()))  # the closest it comes, said as not met


def _operating_points(pipeline: Pipeline, recording: Recording, stages: int, options: dict):
    """``(stages kept, fit, record of the codes)`` for every count of stages, and for none also with beat templates
    (only without codes do they pay: on MIT-BIH the codes' residual repeats too little from beat to beat)."""
    for kept in range(0, stages + 1):  # 0: the detail layer alone (where the codes do not pay for themselves)
        compressed, conditioned = code_recording(pipeline, recording, quantizers=kept, **options)
        fit = _StretchFit(compressed, conditioned, decoded_stretches(pipeline, compressed))
        yield kept, fit, compressed
        if not kept:
            with_beats = fit.with_beats(pipeline, conditioned)
            if with_beats.beats is not None:
                yield kept, with_beats, compressed


def beat_anchors(pipeline: Pipeline, compressed: CompressedRecord, conditioned: list[np.ndarray]) -> list | None:
    """R peaks for the beat templates, one array per residual stretch of the detail layer (the leads of one stream
    share their stream's: found on its largest lead), or None for a pipeline that does not code ECG (in mV)."""
    from tsvq.rhythm import r_peaks

    if pipeline.codec.config.units[0].strip().lower() != "mv":
        return None
    anchors = []
    for target in conditioned:
        lead = int(np.argmax(np.std(target, axis=0)))
        peaks = r_peaks(target[:, lead], compressed.sampling_rate_hz)
        anchors += [peaks] * target.shape[1]
    return anchors


class _StretchFit:
    """One coded recording's stretches, what the codes decoded them to and their residuals: the PRDN a detail
    layer would give, and the layer that fits a rate or meets a PRDN (bisection on the step's logarithm)."""

    ITERATIONS = 14  # the step to ~0.1% (it is kept to four digits)
    NEAR, REFINE = 1.01, 2  # a step for a rate is refined by coding within 1% of the estimate's, in 2 bisections
    SHORT = 2**16  # samples up to which the step is bisected on the coded size alone (a 10-s ECG's layer is a few
    # dozen bytes at 150 bit/s: a percent of it is a coefficient or two)

    def __init__(self, compressed: CompressedRecord, conditioned: list[np.ndarray], decoded: list[np.ndarray]):
        self.compressed = compressed
        self.beats: beat_templates.BeatFit | None = None  # templates the layer subtracts first (with_beats)
        self._records: dict[DetailLayer, CompressedRecord] = {}
        self.channel = [
            c for stream, segs in zip(compressed.streams, compressed.segments) for _ in segs for c in stream
        ]
        targets = [t[:, k] for t in conditioned for k in range(t.shape[1])]
        # what the codes missed, one 1-D residual per stream, segment and channel: the detail layer's order
        self.residuals = [t[:, k] - d[:, k] for t, d in zip(conditioned, decoded) for k in range(t.shape[1])]
        names = compressed.channel_names
        self.spread = {}
        for c in range(len(names)):  # each channel's energy about its mean, over all its stretches
            x = np.concatenate([t for t, ch in zip(targets, self.channel) if ch == c])
            self.spread[c] = float(np.sum((x - x.mean()) ** 2))

    def with_beats(self, pipeline: Pipeline, conditioned: list[np.ndarray]) -> _StretchFit:
        """This fit with beat templates fitted to its residuals (its ``beats`` None where no stretch has beats)."""
        other = copy.copy(self)
        other._records = {}
        anchors = beat_anchors(pipeline, self.compressed, conditioned)
        if anchors is not None:
            other.beats = beat_templates.fit(self.residuals, anchors, self.compressed.sampling_rate_hz)
        return other

    def record(self, layer: DetailLayer) -> CompressedRecord:
        """The record with this layer (each coded once: the search for a step asks again for the one it keeps)."""
        if layer not in self._records:
            self._records[layer] = with_detail(self.compressed, layer, self.residuals, self.beats)
        return self._records[layer]

    def _layer(self, step: float) -> DetailLayer:
        return DetailLayer.rounded(step, self.beats is not None)

    def prdn(self, layer: DetailLayer | None = None) -> dict[str, float]:
        coded = layer.reconstruct(self.residuals, self.beats) if layer is not None else [0.0] * len(self.residuals)
        error = dict.fromkeys(self.spread, 0.0)
        for r, rc, c in zip(self.residuals, coded, self.channel):
            error[c] += float(np.sum((r - rc) ** 2))
        names = self.compressed.channel_names
        return {names[c]: 100 * math.sqrt(error[c] / max(self.spread[c], 1e-30)) for c in self.spread}

    def _steps(self) -> tuple[float, float]:
        # a step this coarse leaves every coefficient at 0 (a 6-level transform gains at most 8x)
        coarsest = 16 * max(float(np.abs(r).max(initial=0)) for r in self.residuals) + 1e-12
        return coarsest * 1e-4, coarsest

    def coarsest(self) -> DetailLayer:
        """The step that leaves every coefficient at 0: the smallest layer."""
        return self._layer(self._steps()[1])

    def layer_for_bitrate(self, bitrate: float) -> DetailLayer | None:
        """The finest step whose file fits ``bitrate`` per channel; None where not even an empty layer fits. The step
        is found on the layer's estimated size (``DetailLayer.estimated_bits``: a hundredth of the time of coding
        it, within a fraction of a percent of it on a long record), then checked and refined by coding near it."""
        budget = bitrate * len(self.compressed.channel_names) * self.compressed.duration_s

        def fits(layer):
            return self.record(layer).size_bytes() * 8 <= budget

        empty = self.record(self.coarsest())
        if empty.size_bytes() * 8 > budget:
            return None
        fine, coarse = self._steps()
        if sum(len(r) for r in self.residuals) <= self.SHORT:  # coded in milliseconds: bisect the file's size itself
            return self._finest(fine, coarse, fits, self.ITERATIONS)
        outside = 8 * (empty.size_bytes() - len(empty.detail_bytes))  # the header and the codes

        def estimated_fits(layer):
            return outside + layer.estimated_bits(self.residuals, self.beats) <= budget

        estimated = self._finest(fine, coarse, estimated_fits, self.ITERATIONS)
        near = self._layer(min(estimated.step * self.NEAR, coarse))
        if not fits(near):  # the estimate was off: search all the way up
            return self._finest(estimated.step / self.NEAR, coarse, fits, self.ITERATIONS)
        if fits(finer := self._layer(estimated.step / self.NEAR)):
            return finer
        return self._finest(finer.step, near.step, fits, self.REFINE, near)

    def _finest(self, fine: float, coarse: float, accepts, iterations: int, best: DetailLayer | None = None):
        """Bisection on the step's logarithm between ``fine`` and ``coarse``: the finest step ``accepts`` takes
        (``best``, default the coarsest layer, where it takes none)."""
        best = best or self.coarsest()
        for _ in range(iterations):
            layer = self._layer(math.sqrt(fine * coarse))
            if accepts(layer):
                coarse, best = layer.step, layer
            else:
                fine = layer.step
        return best

    def layer_for_prdn(self, max_prdn: float) -> DetailLayer:
        """The coarsest step whose PRDN is at most ``max_prdn`` on every channel (the finest tried, if none is)."""
        fine, coarse = self._steps()
        best = self._layer(fine)
        for _ in range(self.ITERATIONS):
            layer = self._layer(math.sqrt(fine * coarse))
            if max(self.prdn(layer).values()) <= max_prdn:
                fine, best = layer.step, layer
            else:
                coarse = layer.step
        return best


def compression_prdn(
    pipeline: Pipeline, compressed: CompressedRecord, signal_or_record, sampling_rate_hz: float | None = None
) -> dict[str, float]:
    """PRDN (%) of each coded channel: the decompressed recording against the input conditioned the same way
    (both at the pipeline rate, over the samples that are not gaps). The band the pipeline drops is not error."""
    from tsvq.data.records import Record

    if isinstance(signal_or_record, Record):
        index = [signal_or_record.channel_names.index(name) for name in compressed.channel_names]
        signal, rate = signal_or_record.signal[:, index], signal_or_record.sampling_rate_hz
    else:
        signal, rate = np.asarray(signal_or_record), float(sampling_rate_hz or compressed.native_rate_hz)
    reference = pipeline.preprocess(signal * np.array(compressed.unit_scales), rate)
    decoded = decompress(pipeline, compressed, "pipeline", derive_leads=False).signal * np.array(compressed.unit_scales)
    return dict(zip(compressed.channel_names, prdn_per_channel(reference, decoded)))


def check_codes_fit(codec, compressed: CompressedRecord, where: str | None = None) -> None:
    """The codes fit this codec: code width, stages, code count per segment and index range (a file whose codec id
    matched can still have been edited after it was written)."""
    c, where = codec.config, where or compressed.record or "compressed record"
    if (
        compressed.code_bits != int(math.ceil(math.log2(c.num_codes)))
        or compressed.quantizers > c.num_quantizers
        or compressed.residual != (c.num_quantizers > 1)
        or abs(compressed.sampling_rate_hz - c.sampling_rate_hz) > 1e-6
    ):
        raise DataError(
            f"{where}: its code layout ({compressed.code_bits}-bit codes, {compressed.quantizers} stage(s), "
            f"{compressed.sampling_rate_hz:g} Hz) is not this codec's"
        )
    if compressed.entropy is not None and compressed.entropy.get("num_codes") != c.num_codes:
        raise DataError(
            f"{where}: its entropy model codes {compressed.entropy.get('num_codes')} symbols; this codec has "
            f"{c.num_codes}"
        )
    for segments, codes in zip(compressed.segments, compressed.codes):
        for segment, seg_codes in zip(segments, codes):
            if segment.codes != -(-segment.samples // c.downsample_factor):
                raise DataError(
                    f"{where}: a segment of {segment.samples} samples holds {segment.codes} codes; this "
                    f"codec makes {-(-segment.samples // c.downsample_factor)}"
                )
            if seg_codes.size and int(seg_codes.max()) >= c.num_codes:
                raise DataError(f"{where}: code index {int(seg_codes.max())} is beyond the codebook's {c.num_codes}")


def prdn_per_channel(reference: np.ndarray, reconstruction: np.ndarray) -> list[float]:
    """PRDN (%) of each channel of two ``(T, C)`` recordings, over the samples finite in both."""
    values = []
    for c in range(reference.shape[1]):
        both = np.isfinite(reference[:, c]) & np.isfinite(reconstruction[:, c])
        values.append(float(prdn(reference[both, c][None, :, None], reconstruction[both, c][None, :, None])[0]))
    return values
