"""Encode a store's windows once and cache their codes: priors train on codes (or their codebook vectors).

Codes are cached rather than vectors: a (L',) int16 row is far smaller than its (L', D) float vectors, and the
vectors are one codebook lookup away.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tsvq.io import atomic_file, read_json, write_json
from tsvq.priors.signature import codec_signature


def cached_codes(
    codec, store, split: str, cache_dir: str | Path, max_windows: int | None = None, progress: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Codes of a store split (a seeded subset of ``max_windows`` if set) and the window indices they belong to,
    computed once per (codec, store) and reused from ``cache_dir``."""
    cache_dir = Path(cache_dir)
    key = {
        "codec": codec_signature(codec),
        "store": store.manifest["config_hash"],
        "split": split,
        "max_windows": max_windows,
    }
    indices = store.subset_indices(split, max_windows, seed=0)
    codes_file, key_file = cache_dir / f"codes-{split}.npy", cache_dir / f"codes-{split}.json"
    if codes_file.exists() and key_file.exists() and read_json(key_file) == key:
        return np.load(codes_file), indices
    codes = codec.encode_windows(store.windows, indices, progress=progress)
    cache_dir.mkdir(parents=True, exist_ok=True)
    with atomic_file(codes_file, "wb") as handle:
        np.save(handle, codes)
    write_json(key_file, key)
    return codes, indices
