"""A prior is only valid for the codec it was trained on: the signature records which one."""

from __future__ import annotations

import hashlib

import torch

from tsvq.errors import CheckpointError


def codec_signature(codec) -> dict:
    """Codebook size, code dimension, latent length, quantizer count and a hash of the codebooks."""
    digest = hashlib.sha256()
    for quantizer in codec.quantizer.quantizers:
        digest.update(quantizer.codebook.detach().float().cpu().contiguous().numpy().tobytes())
    return {
        "num_codes": int(codec.config.num_codes),
        "code_dim": int(codec.code_dim),
        "latent_length": int(codec.latent_length),
        "num_quantizers": int(codec.config.num_quantizers),
        "codebook_sha256": digest.hexdigest()[:16],
    }


def check_signature(expected: dict, codec, where: str, what: str = "prior") -> None:
    """Raise a CheckpointError naming what differs between the codec ``what`` (a prior, a denoiser) was trained
    for and the one given."""
    actual = codec_signature(codec)
    for key in ("num_codes", "code_dim", "latent_length", "num_quantizers"):
        if expected.get(key) != actual[key]:
            raise CheckpointError(
                f"{where}: the {what} was trained for a codec with {key} = {expected.get(key)}, "
                f"but this codec has {key} = {actual[key]}"
            )
    if expected.get("codebook_sha256") != actual["codebook_sha256"]:
        raise CheckpointError(
            f"{where}: the {what} was trained on another codec's codebook "
            f"({expected.get('codebook_sha256')} vs {actual['codebook_sha256']}); retrain the {what} for this codec"
        )


def as_long(labels, n: int, vocabulary: list[str], where: str) -> torch.Tensor | None:
    """Map user labels (names or indices) to indices of ``vocabulary``; unknown ones are errors."""
    from tsvq.errors import DataError

    if labels is None:
        return None
    if isinstance(labels, (str, int)):
        labels = [labels] * n
    labels = list(labels)
    if len(labels) != n:
        raise DataError(f"{where}: got {len(labels)} labels for {n} samples")
    indices = []
    for label in labels:
        if isinstance(label, str):
            if label not in vocabulary:
                raise DataError(f"{where}: unknown label '{label}'; this prior knows {vocabulary}")
            indices.append(vocabulary.index(label))
        else:
            if not 0 <= int(label) < len(vocabulary):
                raise DataError(f"{where}: label index {label} out of range for {vocabulary}")
            indices.append(int(label))
    return torch.tensor(indices, dtype=torch.long)
