"""The compressed file format: what a ``.tsvqz`` holds, how it is packed and how a damaged or forged one is refused.

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

import dataclasses
import json
import math
import struct
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tsvq import entropy
from tsvq.detail import DetailLayer
from tsvq.errors import DataError
from tsvq.io import atomic_file, check_output_file

if TYPE_CHECKING:
    pass

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
