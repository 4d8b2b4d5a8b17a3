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

File layout (little-endian): ``TSVQZ`` | format byte | header length u32 | deflated JSON header | payload length u32 |
payload (range-coded 32-bit words, or bit-packed codes when the header names no entropy model) | formats 4-5:
detail length u32 | detail layer | CRC-32 of everything before it. Format 3 deflates the header against a fixed
preset dictionary (``HEADER_DICTIONARY``: the header's field names and common values): 100-150 bytes where plain
zlib took 280-300, on a 10-s ECG half the file at the lowest rate; format 4 is format 3 with a detail layer (a file
without one is still written as format 3); format 5 is format 4 whose detail layer subtracts beat templates
(``tsvq.beats``) first. Formats 1 (fixed-width codes) and 2 (entropy-coded), plain zlib headers,
still decode. A damaged or truncated file fails the CRC or a length check, a forged one the header's field-by-field
check, each refused with its name; a file made with another codec is refused by its codec id.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import struct
import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tsvq import beats as beat_templates
from tsvq import entropy
from tsvq.codec.metrics import prdn
from tsvq.codec.streaming import decode_long, decode_margin, encode_long, encode_margin
from tsvq.data.leads import codes_independent_leads, lead_label, with_derived_limb_leads
from tsvq.data.preprocess import finite_stretches, flat_channel, one_recording, real_array, resample
from tsvq.detail import DetailLayer
from tsvq.errors import ConfigError, DataError
from tsvq.io import atomic_file, check_output_file

if TYPE_CHECKING:
    from tsvq.pipeline import Pipeline

MAGIC = b"TSVQZ"
COMPRESSED_FORMAT_VERSION = 5  # 1: fixed-width codes; 2: entropy-coded (tsvq.entropy); 3: either, header by dictionary;
# 4: format 3 plus a detail layer (tsvq.detail); 5: a detail layer with beat templates (tsvq.beats). A file is written
# in the oldest format that holds it
# Format 3 headers are deflated against these bytes: never change them (a file of format 3 inflates with exactly these)
HEADER_DICTIONARY = (
    b'{"codec_id":"","pipeline":"ecg-single-lead","sampling_rate_hz":250.0,"native_rate_hz":360.0,"start_sample":0,'
    b'"length":,"channel_names":["ECG","MLII","V1","V5","I","II","III","AVR","AVL","AVF","V2","V3","V4","V6"],'
    b'"units":["mV","mV","mV"],"unit_scales":[1.0,1.0,1.0],"input_bits":[11,16,16],"streams":[[0],[1]],'
    b'"quantizers":1,"code_bits":10,"segments":[[{"start":0,"end":,"samples":,"codes":}]],"search":0,'
    b'"residual":false,"record":"","base_date":"","base_time":"","entropy":{"model":"adaptive-context",'
    b'"num_codes":1024,"gain":16,"backoff":1024},"model_bits":,"format_version":3}'
)
VOLTS = {"v": 1.0, "mv": 1e-3, "uv": 1e-6, "µv": 1e-6, "μv": 1e-6, "nv": 1e-9}


@dataclass
class Segment:
    """One finite stretch of one stream: native samples ``[start, end)``, ``samples`` at the pipeline rate, and
    where its ``codes`` sit in the payload."""

    start: int
    end: int
    samples: int
    codes: int


@dataclass
class CompressedRecord:
    """Codes of one recording and everything needed to turn them back into it (save/load: one small file)."""

    codec_id: str  # fingerprint of the codec's config and weights: decoding needs that very codec
    pipeline: str  # where the pipeline was loaded from, for messages
    sampling_rate_hz: float  # the pipeline's rate
    native_rate_hz: float
    start_sample: int  # first native sample coded (of the recording as read)
    length: int  # native samples coded
    channel_names: list[str]
    units: list[str]  # the recording's units; decoded signals are returned in them
    unit_scales: list[float]  # recording unit -> pipeline unit factor per channel
    input_bits: list[int]  # bits per stored input sample per channel, for the compression ratio
    streams: list[list[int]]  # channel indices coded together (one per channel for a single-lead codec)
    quantizers: int  # residual-VQ stages kept
    code_bits: int  # bits per code per stage
    segments: list[list[Segment]]  # per stream
    codes: list[list[np.ndarray]] = field(repr=False)  # per stream, per segment: (n,) or (n, quantizers) int64
    search: int = 0
    residual: bool = False  # residual-VQ codec: codes are (n, quantizers) even when one stage is kept
    record: str = ""  # the recording's name
    base_date: str = ""  # the recording's start date and time of day (ISO), when its header gave them
    base_time: str = ""
    entropy: dict | None = None  # the context model the codes are entropy-coded with (None: fixed-width, format 1)
    model_bits: float | None = None  # the model's own code length of all codes (set when the file is written)
    detail: dict | None = None  # the detail layer's settings (tsvq.detail; format 4), None: the codes alone
    detail_bytes: bytes = field(default=b"", repr=False)  # the coded residual of every stretch

    # ----- figures -------------------------------------------------------------------------------------
    @property
    def duration_s(self) -> float:
        return self.length / self.native_rate_hz

    @property
    def num_codes(self) -> int:
        return sum(s.codes for stream in self.segments for s in stream) * self.quantizers

    def bits_per_code(self) -> float:
        """Payload bits per code as written (the fixed width for format 1)."""
        self.to_bytes()
        return 8 * self._payload_length / max(self.num_codes, 1)

    def to_bytes(self) -> bytes:
        """The file's bytes; made once (entropy coding a long record takes a second), as a record does not change
        after it is made."""
        if getattr(self, "_bytes", None) is None:
            self._bytes = self._encode()
        return self._bytes

    def codes_payload(self) -> bytes:
        """The codes as the file stores them (made once: a detail layer's step is chosen over many files that
        share them)."""
        if getattr(self, "_payload", None) is None:
            if self.entropy is None:
                flat = [c.reshape(-1) for stream in self.codes for c in stream]
                self._payload = pack_bits(np.concatenate(flat) if flat else np.zeros(0, np.int64), self.code_bits)
            else:
                model = entropy.ContextModel.from_description(self.entropy, self.record)
                self._payload, self.model_bits = entropy.encode(self.codes, model)
        return self._payload

    def detail_lengths(self) -> list[int]:
        """Samples of each residual stretch the detail layer codes, in its order: stream, segment, channel."""
        return [s.samples for stream, segments in zip(self.streams, self.segments) for s in segments for _ in stream]

    def detail_residuals(self, where: str | None = None) -> list[np.ndarray]:
        """The decoded detail layer: one residual per stream, segment and channel (``detail_lengths``), at the
        pipeline rate in the pipeline's unit; empty without a layer."""
        if self.detail is None:
            return []
        if getattr(self, "_residuals", None) is None:
            layer = DetailLayer.from_description(self.detail, where or self.record, beats="beats" in self.detail)
            self._residuals = layer.decode(self.detail_bytes, self.detail_lengths(), where or self.record)
        return self._residuals

    def _encode(self) -> bytes:
        version = 3 if self.detail is None else 5 if self.detail.get("beats") else 4
        payload = self.codes_payload()
        self._payload_length = len(payload)
        header = {key: value for key, value in asdict(self).items() if key not in ("codes", "detail_bytes")}
        if self.detail is None:
            del header["detail"]
        header["format_version"] = version
        packed = deflate_header(header, version)
        body = MAGIC + bytes([version]) + struct.pack("<I", len(packed)) + packed
        body += struct.pack("<I", len(payload)) + payload
        if version >= 4:
            body += struct.pack("<I", len(self.detail_bytes)) + self.detail_bytes
        return body + struct.pack("<I", zlib.crc32(body))

    def size_bytes(self) -> int:
        return len(self.to_bytes())

    def bits_per_second(self) -> float:
        """The whole file's bits (header included) per second of recording."""
        return self.size_bytes() * 8 / self.duration_s

    def compression_ratio(self) -> float:
        """The channels' bits as stored at the native rate (e.g. 11 bits at 360 Hz per MIT-BIH channel) over the
        whole file's bits."""
        return sum(self.input_bits) * self.length / (self.size_bytes() * 8)

    # ----- files ---------------------------------------------------------------------------------------
    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write the file atomically; an existing file is replaced only with ``overwrite``, and only if it is a
        compressed file (tsvq never replaces a user's)."""
        path = Path(path)
        check_output_file(path, overwrite, is_compressed_file)
        with atomic_file(path, "wb") as handle:
            handle.write(self.to_bytes())
        return path

    @classmethod
    def load(cls, path: str | Path) -> CompressedRecord:
        path = Path(path)
        if not path.is_file():
            raise DataError(f"{path}: compressed record not found")
        return cls.from_bytes(path.read_bytes(), str(path))

    @classmethod
    def from_bytes(cls, data: bytes, where: str = "compressed record") -> CompressedRecord:
        """Parse and check a file: its checksum, then every header field (type, range, consistency with the
        payload), so a damaged or crafted file is refused with a DataError before anything is allocated."""
        if not data.startswith(MAGIC):
            raise DataError(f"{where}: not a tsvq compressed record (it does not start with {MAGIC!r})")
        if len(data) < len(MAGIC) + 13:
            raise DataError(f"{where}: truncated ({len(data)} bytes)")
        if data[len(MAGIC)] > COMPRESSED_FORMAT_VERSION:
            raise DataError(
                f"{where}: format {data[len(MAGIC)]} is newer than this tsvq reads ({COMPRESSED_FORMAT_VERSION}); "
                "upgrade tsvq"
            )
        if zlib.crc32(data[:-4]) != struct.unpack("<I", data[-4:])[0]:
            raise DataError(f"{where}: damaged or truncated (checksum mismatch); the file cannot be decoded")
        at = len(MAGIC) + 1
        (header_length,) = struct.unpack_from("<I", data, at)
        if at + 4 + header_length + 4 > len(data) - 4:
            raise DataError(f"{where}: header length {header_length} runs past the end of the file")
        header = inflate_header(data[at + 4 : at + 4 + header_length], data[len(MAGIC)], where)
        at += 4 + header_length
        (payload_length,) = struct.unpack_from("<I", data, at)
        payload = data[at + 4 : at + 4 + payload_length]
        at += 4 + payload_length
        detail_bytes = b""
        if data[len(MAGIC)] >= 4 and at + 4 <= len(data) - 4:
            (detail_length,) = struct.unpack_from("<I", data, at)
            detail_bytes, at = data[at + 4 : at + 4 + detail_length], at + 4 + detail_length
        if at != len(data) - 4:
            raise DataError(f"{where}: payload length {payload_length} does not match the file's size")
        fields = check_header(header, where, data[len(MAGIC)])
        segments = [[Segment(**s) for s in stream] for stream in fields.pop("segments")]
        total = sum(s.codes for stream in segments for s in stream) * fields["quantizers"]
        read = _entropy_coded if fields.get("entropy") is not None else _fixed_width
        record = cls(
            segments=segments, codes=read(payload, segments, total, fields, where), detail_bytes=detail_bytes, **fields
        )
        record._payload_length = payload_length
        record.detail_residuals(where)  # a damaged detail layer is refused here, before anything is decoded
        return record


def _entropy_coded(payload: bytes, segments: list[list[Segment]], total: int, fields: dict, where: str) -> list:
    """Format 2: the codes per stream and segment, range-decoded under the model the header names."""
    model = entropy.ContextModel.from_description(fields["entropy"], where)
    if model.num_codes > 2 ** fields["code_bits"]:
        raise DataError(
            f"{where}: the entropy model codes {model.num_codes} symbols, more than "
            f"{fields['code_bits']}-bit codes hold"
        )
    if total > 1024 * 8 * len(payload) + 65536:  # below 1/1024 bit a code: no real record, a forged count
        raise DataError(f"{where}: the header's {total} codes cannot fit {len(payload)} bytes of payload")
    return entropy.decode(
        payload,
        [[s.codes for s in stream] for stream in segments],
        fields["quantizers"],
        fields["residual"],
        model,
        where,
    )


def _fixed_width(payload: bytes, segments: list[list[Segment]], total: int, fields: dict, where: str) -> list:
    """Format 1: the codes per stream and segment, unpacked at ``code_bits`` each."""
    if (total * fields["code_bits"] + 7) // 8 != len(payload):
        raise DataError(
            f"{where}: the header's segments hold {total} codes of {fields['code_bits']} bits, but the "
            f"payload has {len(payload)} bytes"
        )
    flat = unpack_bits(np.frombuffer(payload, dtype=np.uint8), fields["code_bits"], total, where)
    per_code, codes, offset = fields["quantizers"], [], 0
    for stream in segments:
        codes.append([])
        for segment in stream:
            n = segment.codes * per_code
            part = flat[offset : offset + n]
            codes[-1].append(part.reshape(segment.codes, per_code) if fields["residual"] else part)
            offset += n
    return codes


MAX_SAMPLES = 2**31  # native samples x channels a file may describe (8 GiB of float32): bounds what decoding allocates


def deflate_header(header: dict, version: int = COMPRESSED_FORMAT_VERSION) -> bytes:
    """A header as a file of ``version`` stores it: compact JSON, deflated (against ``HEADER_DICTIONARY`` from
    format 3)."""
    text = json.dumps(header, separators=(",", ":")).encode()
    if version < 3:
        return zlib.compress(text, 9)
    deflater = zlib.compressobj(9, zdict=HEADER_DICTIONARY)
    return deflater.compress(text) + deflater.flush()


def inflate_header(packed: bytes, version: int, where: str) -> dict:
    """The inverse of ``deflate_header``; a DataError naming ``where`` for anything but a whole JSON object."""
    try:
        if version < 3:
            text = zlib.decompress(packed)
        else:
            inflater = zlib.decompressobj(zdict=HEADER_DICTIONARY)
            text = inflater.decompress(packed) + inflater.flush()
            if not inflater.eof or inflater.unused_data:
                raise zlib.error("the deflated header is cut short or followed by other bytes")
        header = json.loads(text)
    except zlib.error as error:
        raise DataError(f"{where}: header is not valid compressed data ({error})") from error
    except (UnicodeDecodeError, ValueError) as error:
        raise DataError(f"{where}: header is not valid JSON ({error})") from error
    if not isinstance(header, dict):
        raise DataError(f"{where}: header is not a JSON object")
    return header


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_header(header: dict, where: str, version: int = COMPRESSED_FORMAT_VERSION) -> dict:
    """The header's fields as ``CompressedRecord`` arguments, each checked; anything else is a DataError naming the
    field. Fields added after format 1 (``base_date``, ``base_time``) may be absent; format 2 adds the entropy
    model and its code length (both null for fixed-width codes from format 3)."""
    header = dict(header)
    if header.pop("format_version", None) != version:
        raise DataError(f"{where}: header field 'format_version' does not match the file's format {version}")
    optional = {"search": 0, "residual": False, "record": "", "base_date": "", "base_time": ""}
    later = {"entropy", "model_bits"}
    required = [
        f.name
        for f in dataclasses.fields(CompressedRecord)
        if f.name not in ("codes", "detail", "detail_bytes")
        and f.name not in optional
        and (version >= 2 or f.name not in later)
    ] + (["detail"] if version >= 4 else [])
    missing = [name for name in required if name not in header]
    unknown = sorted(set(header) - set(required) - set(optional))
    if missing or unknown:
        raise DataError(f"{where}: header fields missing {missing}, unknown {unknown}")
    fields = optional | header

    def bad(name: str, expected: str):
        return DataError(f"{where}: header field '{name}' = {str(fields[name])[:60]!r}: expected {expected}")

    for name in ("codec_id", "pipeline", "record", "base_date", "base_time"):
        if not isinstance(fields[name], str) or len(fields[name]) > 4096:
            raise bad(name, "text")
    for name in ("sampling_rate_hz", "native_rate_hz"):
        if not _is_number(fields[name]) or not 0 < fields[name] <= 1e6:
            raise bad(name, "a rate in Hz above 0")
    for name in ("start_sample", "search"):
        if not _is_int(fields[name]) or fields[name] < 0:
            raise bad(name, "an integer >= 0")
    if not _is_int(fields["code_bits"]) or not 1 <= fields["code_bits"] <= 24:
        raise bad("code_bits", "an integer in [1, 24]")
    fewest = 0 if version >= 4 else 1  # 0: no codes, the detail layer alone (format 4)
    if not _is_int(fields["quantizers"]) or not fewest <= fields["quantizers"] <= 64:
        raise bad("quantizers", f"an integer in [{fewest}, 64]")
    if fields["quantizers"] == 0 and fields["entropy"] is not None:
        raise bad("entropy", "null: the file holds no codes")
    if not isinstance(fields["residual"], bool):
        raise bad("residual", "true or false")
    if version >= 4:
        DetailLayer.from_description(fields["detail"], where, beats=version >= 5)
    if version >= 2 and fields["entropy"] is None and fields["model_bits"] is not None:
        raise bad("model_bits", "null: the codes are fixed-width")
    if (
        version >= 2
        and fields["entropy"] is not None
        and not (_is_number(fields["model_bits"]) and fields["model_bits"] >= 0)
    ):
        raise bad("model_bits", "a code length in bits >= 0")
    names = fields["channel_names"]
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise bad("channel_names", "a non-empty list of names")
    channels = len(names)
    for name, valid in (
        ("units", lambda v: isinstance(v, str)),
        ("unit_scales", lambda v: _is_number(v) and v > 0),
        ("input_bits", lambda v: _is_int(v) and 1 <= v <= 64),
    ):
        if (
            not isinstance(fields[name], list)
            or len(fields[name]) != channels
            or not all(valid(v) for v in fields[name])
        ):
            raise bad(name, f"a list of {channels} valid value(s), one per channel")
    if not _is_int(fields["length"]) or not 1 <= fields["length"] <= MAX_SAMPLES // channels:
        raise bad("length", f"a sample count in [1, {MAX_SAMPLES // channels}]")
    streams = fields["streams"]
    flat = (
        [c for stream in streams for c in stream]
        if isinstance(streams, list) and all(isinstance(s, list) for s in streams)
        else None
    )
    if flat is None or sorted(flat) != list(range(channels)) or not all(streams):
        raise bad("streams", f"lists of channel indices that cover 0..{channels - 1} once")
    segments = fields["segments"]
    if not isinstance(segments, list) or len(segments) != len(streams):
        raise bad("segments", f"one list of segments per stream ({len(streams)})")
    ratio = fields["sampling_rate_hz"] / fields["native_rate_hz"]
    for stream in segments:
        if not isinstance(stream, list):
            raise bad("segments", "lists of segments")
        previous_end = 0
        for segment in stream:
            keys = {"start", "end", "samples", "codes"}
            if not isinstance(segment, dict) or set(segment) != keys or not all(_is_int(segment[k]) for k in keys):
                raise bad("segments", "segments of integer start, end, samples and codes")
            start, end, samples, codes = (segment[k] for k in ("start", "end", "samples", "codes"))
            if not previous_end <= start < end <= fields["length"]:
                raise DataError(
                    f"{where}: a segment [{start}, {end}) lies outside the recording's {fields['length']} "
                    "samples or overlaps the one before"
                )
            if not 1 <= samples <= (end - start) * ratio + 2 or not 1 <= codes <= samples:
                raise DataError(
                    f"{where}: a segment of {end - start} native samples claims {samples} samples and "
                    f"{codes} codes; the header is inconsistent"
                )
            previous_end = end
    return fields


def pack_bits(values: np.ndarray, bits: int) -> bytes:
    """Non-negative integers < 2**bits, ``bits`` bits each, most significant first, padded to whole bytes."""
    as_bytes = values.astype(">u4").view(np.uint8).reshape(-1, 4)
    return np.packbits(np.unpackbits(as_bytes, axis=1)[:, 32 - bits :].reshape(-1)).tobytes()


def unpack_bits(data: np.ndarray, bits: int, count: int, where: str = "payload") -> np.ndarray:
    if len(data) * 8 < count * bits:
        raise DataError(
            f"{where}: payload holds {len(data) * 8} bits, {count} codes need {count * bits}; the file is truncated"
        )
    unpacked = np.unpackbits(data)[: count * bits].reshape(count, bits)
    words = np.zeros((count, 32), dtype=np.uint8)
    words[:, 32 - bits :] = unpacked
    return np.packbits(words, axis=1).view(">u4").reshape(-1).astype(np.int64)


def is_compressed_file(path: str | Path) -> bool:
    """Whether ``path`` is a file ``tsvq compress`` wrote (it starts with ``MAGIC``): the one kind of file
    ``--overwrite`` may replace as a compressed output."""
    try:
        with open(path, "rb") as handle:
            return handle.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


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
