"""Whole-record compression: a recording of any length -> one small file of codes -> one continuous recording.

    compressed = pipe.compress(record)                 # a tsvq.data.Record, or compress(signal, sampling_rate_hz)
    compressed.save("100.tsvqz")
    restored = pipe.decompress(CompressedRecord.load("100.tsvqz"))   # .signal (T, C) at the native rate, NaN gaps

Each finite stretch of each coded stream is conditioned like the codec's training data (resampled, band-passed:
``Preprocessing``), coded in one pass with the codec's own receptive field as context (``tsvq.codec.streaming``:
no window seams, no overlap bits) and bit-packed at ``log2(num_codes)`` bits per code. NaN stretches are gaps:
kept out of the codes, recorded in the file, restored as NaN. A single-lead codec codes each channel on its own;
a multi-lead codec codes its channels together.

File layout (little-endian): ``TSVQZ`` | format byte | header length u32 | zlib(JSON header) | payload length u32 |
bit-packed codes | CRC-32 of everything before it. A damaged or truncated file fails the CRC or a length check
and is refused with its name; a file made with another codec is refused by its codec id.
"""

from __future__ import annotations

import json
import math
import struct
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from tsvq.codec.metrics import prdn
from tsvq.codec.streaming import decode_long, decode_margin, encode_long, encode_margin
from tsvq.data.preprocess import Preprocessing, finite_stretches, resample
from tsvq.errors import DataError
from tsvq.io import atomic_file

MAGIC = b"TSVQZ"
COMPRESSED_FORMAT_VERSION = 1
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

    # ----- figures -------------------------------------------------------------------------------------
    @property
    def duration_s(self) -> float:
        return self.length / self.native_rate_hz

    def to_bytes(self) -> bytes:
        header = {key: value for key, value in asdict(self).items() if key != "codes"}
        header["format_version"] = COMPRESSED_FORMAT_VERSION
        packed = zlib.compress(json.dumps(header, separators=(",", ":")).encode(), 9)
        flat = [c.reshape(-1) for stream in self.codes for c in stream]
        payload = pack_bits(np.concatenate(flat) if flat else np.zeros(0, np.int64), self.code_bits)
        body = MAGIC + bytes([COMPRESSED_FORMAT_VERSION]) + struct.pack("<I", len(packed)) + packed
        body += struct.pack("<I", len(payload)) + payload
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
    def save(self, path: str | Path) -> Path:
        path = Path(path)
        with atomic_file(path, "wb") as handle:
            handle.write(self.to_bytes())
        return path

    @classmethod
    def load(cls, path: str | Path) -> "CompressedRecord":
        path = Path(path)
        if not path.is_file():
            raise DataError(f"{path}: compressed record not found")
        return cls.from_bytes(path.read_bytes(), str(path))

    @classmethod
    def from_bytes(cls, data: bytes, where: str = "compressed record") -> "CompressedRecord":
        if not data.startswith(MAGIC):
            raise DataError(f"{where}: not a tsvq compressed record (it does not start with {MAGIC!r})")
        if len(data) < len(MAGIC) + 13:
            raise DataError(f"{where}: truncated ({len(data)} bytes)")
        if data[len(MAGIC)] > COMPRESSED_FORMAT_VERSION:
            raise DataError(f"{where}: format {data[len(MAGIC)]} is newer than this tsvq reads ({COMPRESSED_FORMAT_VERSION}); upgrade tsvq")
        if zlib.crc32(data[:-4]) != struct.unpack("<I", data[-4:])[0]:
            raise DataError(f"{where}: damaged or truncated (checksum mismatch); the file cannot be decoded")
        at = len(MAGIC) + 1
        (header_length,) = struct.unpack_from("<I", data, at)
        header = json.loads(zlib.decompress(data[at + 4 : at + 4 + header_length]))
        at += 4 + header_length
        (payload_length,) = struct.unpack_from("<I", data, at)
        payload = np.frombuffer(data[at + 4 : at + 4 + payload_length], dtype=np.uint8)
        header.pop("format_version", None)
        segments = [[Segment(**s) for s in stream] for stream in header.pop("segments")]
        per_code = max(1, header["quantizers"])
        total = sum(s.codes for stream in segments for s in stream) * per_code
        flat = unpack_bits(payload, header["code_bits"], total, where)
        codes, offset = [], 0
        for stream in segments:
            codes.append([])
            for segment in stream:
                n = segment.codes * per_code
                part = flat[offset : offset + n]
                codes[-1].append(part.reshape(segment.codes, per_code) if header.get("residual") else part)
                offset += n
        return cls(segments=segments, codes=codes, **header)


def pack_bits(values: np.ndarray, bits: int) -> bytes:
    """Non-negative integers < 2**bits, ``bits`` bits each, most significant first, padded to whole bytes."""
    as_bytes = values.astype(">u4").view(np.uint8).reshape(-1, 4)
    return np.packbits(np.unpackbits(as_bytes, axis=1)[:, 32 - bits :].reshape(-1)).tobytes()


def unpack_bits(data: np.ndarray, bits: int, count: int, where: str = "payload") -> np.ndarray:
    if len(data) * 8 < count * bits:
        raise DataError(f"{where}: payload holds {len(data) * 8} bits, {count} codes need {count * bits}; the file is truncated")
    unpacked = np.unpackbits(data)[: count * bits].reshape(count, bits)
    words = np.zeros((count, 32), dtype=np.uint8)
    words[:, 32 - bits :] = unpacked
    return np.packbits(words, axis=1).view(">u4").reshape(-1).astype(np.int64)


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


def check_recording(signal: np.ndarray, channel_names: list[str], where: str) -> None:
    """Errors a user can act on before any coding: shape, no samples, a lead that is one constant value."""
    if signal.ndim != 2 or signal.shape[1] != len(channel_names):
        raise DataError(f"{where}: expected a signal of shape (L, {len(channel_names)}), got {signal.shape}")
    for c, name in enumerate(channel_names):
        finite = signal[np.isfinite(signal[:, c]), c]
        if not len(finite):
            raise DataError(f"{where}: channel '{name}' holds no finite sample (all NaN)")
        if float(finite.max() - finite.min()) == 0.0:
            raise DataError(f"{where}: channel '{name}' is flat (every sample {finite[0]:g}): a disconnected lead has "
                            "nothing to code; leave it out (--channels)")


def compress_signal(codec, preprocessing: Preprocessing, codec_id: str, pipeline: str, signal: np.ndarray,
                    rate_hz: float, channel_names: list[str], units: list[str], input_bits: list[int], *,
                    record: str = "signal", start_sample: int = 0, search: int = 0,
                    quantizers: int | None = None) -> CompressedRecord:
    """The work of ``Pipeline.compress`` on a signal ``(L, C)`` whose channels are already chosen."""
    signal = np.asarray(signal, dtype=np.float64)
    check_recording(signal, channel_names, record)
    preprocessing.check_rate(rate_hz, record)
    c = codec.config
    window_s = preprocessing.window_length / preprocessing.sampling_rate_hz
    if len(signal) / rate_hz < window_s:
        raise DataError(f"{record}: {len(signal) / rate_hz:.3g} s long, shorter than one window of the pipeline "
                        f"({window_s:g} s): too short to code")
    if c.num_quantizers == 1 and quantizers not in (None, 1):
        raise DataError(f"quantizers={quantizers}: this codec has one codebook")
    kept = min(quantizers or c.num_quantizers, c.num_quantizers)
    if kept < 1:
        raise DataError(f"quantizers must be at least 1, got {quantizers}")
    if c.in_channels > 1 and signal.shape[1] != c.in_channels:
        raise DataError(f"{record}: the codec codes {c.in_channels} channels together, got {signal.shape[1]}")
    scales = [unit_scale(u, codec.config.units[0 if c.in_channels == 1 else i], f"{record}: channel '{n}'")
              for i, (n, u) in enumerate(zip(channel_names, units))]
    streams = [[i] for i in range(signal.shape[1])] if c.in_channels == 1 else [list(range(signal.shape[1]))]
    f = c.downsample_factor
    margin = encode_margin(codec, search)
    all_segments, all_codes = [], []
    for stream in streams:
        x = signal[:, stream] * np.array([scales[i] for i in stream])
        segments, codes = [], []
        for start, end in finite_stretches(x):
            conditioned = preprocessing.condition(x[start:end], rate_hz)
            n = len(conditioned)
            padded = _pad_to_multiple(conditioned, f)
            seg_codes = encode_long(codec, padded.astype(np.float32), search=search, quantizers=kept, margin=margin)
            segments.append(Segment(start, end, n, len(seg_codes)))
            codes.append(seg_codes)
        all_segments.append(segments)
        all_codes.append(codes)
    return CompressedRecord(
        codec_id=codec_id, pipeline=pipeline, sampling_rate_hz=float(c.sampling_rate_hz), native_rate_hz=float(rate_hz),
        start_sample=int(start_sample), length=len(signal), channel_names=list(channel_names), units=list(units),
        unit_scales=scales, input_bits=[int(b) for b in input_bits], streams=streams,
        quantizers=kept if c.num_quantizers > 1 else 1, code_bits=int(math.ceil(math.log2(c.num_codes))),
        segments=all_segments, codes=all_codes, search=search, residual=c.num_quantizers > 1,
        record=Path(record).name,  # the name, not the sender's folders
    )


def _pad_to_multiple(x: np.ndarray, f: int) -> np.ndarray:
    """Mirror the end of ``x`` to a multiple of ``f`` samples (mirroring keeps the edge smooth; the pad is cut off
    after decoding)."""
    missing = (-len(x)) % f
    return np.pad(x, ((0, missing), (0, 0)), mode="reflect" if len(x) > 1 else "edge") if missing else x


def decompress_codes(codec, compressed: CompressedRecord, rate: str = "native") -> DecodedRecord:
    """The work of ``Pipeline.decompress``: decode each segment and place it, at the native or the pipeline rate."""
    if rate not in ("native", "pipeline"):
        raise DataError(f"rate must be 'native' or 'pipeline', got {rate!r}")
    native = rate == "native"
    out_rate = compressed.native_rate_hz if native else compressed.sampling_rate_hz
    scale = compressed.sampling_rate_hz / compressed.native_rate_hz
    length = compressed.length if native else int(round(compressed.length * scale))
    out = np.full((length, len(compressed.channel_names)), np.nan, dtype=np.float32)
    margin = decode_margin(codec)
    for stream, segments, codes in zip(compressed.streams, compressed.segments, compressed.codes):
        for segment, seg_codes in zip(segments, codes):
            decoded = decode_long(codec, seg_codes, margin=margin)[: segment.samples].astype(np.float64)
            if native:
                decoded = resample(decoded, compressed.sampling_rate_hz, compressed.native_rate_hz)
                want = segment.end - segment.start
                decoded = np.pad(decoded, ((0, max(0, want - len(decoded))), (0, 0)), mode="edge")[:want]
                at = segment.start
            else:
                at = int(round(segment.start * scale))
            usable = min(len(decoded), length - at)
            out[at : at + usable, stream] = decoded[:usable] / np.array([compressed.unit_scales[i] for i in stream])
    return DecodedRecord(out, out_rate, list(compressed.channel_names), list(compressed.units),
                         compressed.start_sample if native else int(round(compressed.start_sample * scale)),
                         compressed.record)


def prdn_per_channel(reference: np.ndarray, reconstruction: np.ndarray) -> list[float]:
    """PRDN (%) of each channel of two ``(T, C)`` recordings, over the samples finite in both."""
    values = []
    for c in range(reference.shape[1]):
        both = np.isfinite(reference[:, c]) & np.isfinite(reconstruction[:, c])
        values.append(float(prdn(reference[both, c][None, :, None], reconstruction[both, c][None, :, None])[0]))
    return values
