"""Adaptive models for constriction's range coder: counts that start at one and grow with what was coded.

Why a module: the detail layer (``tsvq.detail``) and its beat templates (``tsvq.beats``) code integers whose
statistics no table could foresee (a 10-s ECG cannot pay for one), so both learn them as they go, with the same
integer counts on both sides: decoding is bit-exact on any machine and thread count. Counts are updated after
every symbol for the first ``WARMUP`` of a sequence, then once per ``BLOCK`` (so decoding runs a block at a time).
"""

from __future__ import annotations

import numpy as np

from tsvq.errors import DataError

BLOCK = 16  # symbols coded with one set of counts; the decoder updates its counts after each block
WARMUP = 1024  # ... except the first symbols of a sequence, counted one by one (most of a 10-s ECG)
GAIN = 8  # count added per observed symbol (against 1 for the unseen): adapts within the first beats
CHUNK = 256 * BLOCK  # symbols whose frequencies are made at once (a multiple of BLOCK, as WARMUP is)


def block_frequencies(symbols: np.ndarray, contexts: np.ndarray, size: int, num_contexts: int):
    """Chunks ``(start, end, rows)`` of the ``(n, size)`` float64 frequencies (exact integers) each symbol is coded
    with: 1 + GAIN x how often each value occurred in the same context in earlier blocks. Chunked, so that a
    long record's rows never sit in memory at once."""
    counts = np.ones((num_contexts, size))  # float64 holds these integers exactly (far below 2**53)
    for start in range(0, len(symbols), CHUNK):
        s, c = symbols[start : start + CHUNK], contexts[start : start + CHUNK]
        block = block_ids(np.arange(start, start + len(s)))
        block -= block[0]
        before = np.zeros((block[-1] + 2, *counts.shape))
        np.add.at(before, (block + 1, c, s), GAIN)
        np.cumsum(before, axis=0, out=before)
        before += counts  # before[b]: counts after the blocks ahead of b
        yield start, start + len(s), before[block, c]
        counts = before[-1]


def block_ids(positions: np.ndarray) -> np.ndarray:
    """Which block each position of a class's sequence is in: one per symbol for the first WARMUP, then BLOCK."""
    return np.where(positions < WARMUP, positions, WARMUP + (positions - WARMUP) // BLOCK)


def encode_blocks(encoder, symbols: np.ndarray, contexts: np.ndarray, size: int, num_contexts: int) -> None:
    """Range-code ``symbols`` (each in ``[0, size)``, in its context) under ``block_frequencies``' counts."""
    import constriction

    family = constriction.stream.model.Categorical(perfect=False)
    for start, end, rows in block_frequencies(symbols, contexts, size, num_contexts):
        encoder.encode(symbols[start:end].astype(np.int32), family, rows)


def decode_blocks(decoder, contexts: np.ndarray, size: int, num_contexts: int, where: str) -> np.ndarray:
    """The inverse of ``encode_blocks``: ``contexts`` known ahead (the parent subband)."""
    import constriction

    family = constriction.stream.model.Categorical(perfect=False)
    counts = np.ones((num_contexts, size), np.int64)
    out = np.zeros(len(contexts), np.int64)
    starts = [*range(min(WARMUP, len(contexts))), *range(WARMUP, len(contexts), BLOCK), len(contexts)]
    for start, end in zip(starts[:-1], starts[1:]):
        ctx = contexts[start:end]
        try:
            symbols = np.asarray(decoder.decode(family, counts[ctx].astype(np.float64)), np.int64)
        except Exception as error:  # constriction refuses data no encoder wrote
            raise DataError(f"{where}: detail layer is damaged ({error})") from error
        np.add.at(counts, (ctx, symbols), GAIN)
        out[start:end] = symbols
    return out


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def read_varint(data: bytes, at: int, where: str) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if at >= len(data) or shift > 28:
            raise DataError(f"{where}: detail layer is cut short")
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at, shift = at + 1, shift + 7
        if not byte & 0x80:
            return value, at
