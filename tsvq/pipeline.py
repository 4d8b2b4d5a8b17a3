"""The whole model as one object: a codec and its priors, loaded from and saved to one folder.

    pipe = Pipeline.from_pretrained("runs/demo/pipeline")
    codes = pipe.encode(signals).codes           # signals (B, L, C) float32 in mV at pipe.sampling_rate_hz
    signals = pipe.decode(codes)                 # (B, L, C) float32 in mV
    out = pipe.sample(16, prior="diffusion", steps=20, sampler="dpm", seed=0)
    out.signals, out.sampling_rate_hz

A pipeline folder holds ``pipeline.json`` and one sub-folder per component: ``codec/``, ``diffusion/``, ``wavenet/``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from tsvq import __version__
from tsvq.codec import VQVAE, Encoded, as_signal_tensor
from tsvq.errors import CheckpointError, ConfigError, DataError
from tsvq.io import atomic_directory, read_json, write_json
from tsvq.priors.diffusion import DiffusionPrior
from tsvq.priors.signature import as_long, check_signature
from tsvq.priors.wavenet import WaveNetCodePrior, check_single_codebook
from tsvq.safe_loading import load_model

PIPELINE_FORMAT_VERSION = 1


@dataclass
class SampleOutput:
    """Generated signals ``(n, L, C)`` float32 in physical units, their codes, and health figures of the draw."""

    signals: np.ndarray
    codes: np.ndarray
    sampling_rate_hz: float
    channel_names: list[str]
    units: list[str]
    info: dict = field(default_factory=dict)


def codebook_spacing(codec: VQVAE) -> float:
    """Mean distance from each (first-stage) codebook vector to its nearest neighbour: the scale of one code step."""
    codebook = codec.quantizer.quantizers[0].normalized_codebook().detach()
    distances = torch.cdist(codebook, codebook)
    distances.fill_diagonal_(float("inf"))
    return float(distances.min(dim=1).values.mean())


class Pipeline:
    """Codec + priors. Every public method takes and returns ``(B, L, C)`` signals in physical units."""

    def __init__(self, codec: VQVAE, diffusion: DiffusionPrior | None = None, wavenet: WaveNetCodePrior | None = None):
        self.codec = codec.eval()
        self.diffusion = diffusion
        self.wavenet = wavenet
        if diffusion is not None:
            check_signature(diffusion.codec_signature, codec, "diffusion prior")
        if wavenet is not None:
            check_single_codebook(codec)
            check_signature(wavenet.codec_signature, codec, "WaveNet prior")

    # ----- loading and saving --------------------------------------------------------------------------
    @classmethod
    def from_stages(cls, codec: str | Path, diffusion: str | Path | None = None, wavenet: str | Path | None = None,
                    device: str = "cpu") -> "Pipeline":
        """Assemble a pipeline from trained stage folders (``runs/<stage>/model``)."""
        return cls(load_model(VQVAE, codec).to(device),
                   DiffusionPrior.from_pretrained(diffusion, device) if diffusion else None,
                   WaveNetCodePrior.from_pretrained(wavenet, device) if wavenet else None)

    @classmethod
    def from_pretrained(cls, folder: str | Path, device: str = "cpu") -> "Pipeline":
        folder = Path(folder)
        index = read_json(folder / "pipeline.json", "pipeline description")
        if index.get("format_version", 0) > PIPELINE_FORMAT_VERSION:
            raise CheckpointError(f"{folder / 'pipeline.json'}: written by a newer tsvq ({index.get('tsvq_version')}); upgrade tsvq")
        components = index.get("components", {})
        if "codec" not in components:
            raise CheckpointError(f"{folder / 'pipeline.json'}: names no codec")
        path = lambda name: folder / components[name] if name in components else None
        return cls.from_stages(path("codec"), path("diffusion"), path("wavenet"), device)

    def save_pretrained(self, folder: str | Path) -> Path:
        folder = Path(folder)
        with atomic_directory(folder) as tmp:
            self.codec.save_pretrained(tmp / "codec")
            components = {"codec": "codec"}
            if self.diffusion is not None:
                self.diffusion.save_pretrained(tmp / "diffusion")
                components["diffusion"] = "diffusion"
            if self.wavenet is not None:
                self.wavenet.save_pretrained(tmp / "wavenet")
                components["wavenet"] = "wavenet"
            write_json(tmp / "pipeline.json", {"format_version": PIPELINE_FORMAT_VERSION, "tsvq_version": __version__,
                                               "components": components})
        return folder

    # ----- properties ----------------------------------------------------------------------------------
    @property
    def sampling_rate_hz(self) -> float:
        return float(self.codec.config.sampling_rate_hz)

    @property
    def window_length(self) -> int:
        return int(self.codec.config.window_length)

    @property
    def channel_names(self) -> list[str]:
        return list(self.codec.config.channel_names)

    @property
    def units(self) -> list[str]:
        return list(self.codec.config.units)

    # ----- codec ---------------------------------------------------------------------------------------
    def _at_codec_rate(self, signals, sampling_rate_hz: float | None, resample: bool) -> torch.Tensor:
        x = as_signal_tensor(signals, self.codec.config.in_channels)
        if sampling_rate_hz is None or math.isclose(sampling_rate_hz, self.sampling_rate_hz):
            return x
        if not resample:
            raise DataError(f"signals are at {sampling_rate_hz:g} Hz but the codec was trained at {self.sampling_rate_hz:g} Hz; "
                            "pass resample=True or resample them first")
        from tsvq.data.preprocess import resample as resample_signal

        y = np.stack([resample_signal(w, sampling_rate_hz, self.sampling_rate_hz) for w in x.numpy().astype(np.float64)])
        usable = (y.shape[1] // self.codec.config.downsample_factor) * self.codec.config.downsample_factor
        return torch.from_numpy(y[:, :usable].astype(np.float32))

    def encode(self, signals, sampling_rate_hz: float | None = None, resample: bool = False, search: int = 0,
               sweeps: int = 2) -> Encoded:
        """``(B, L, C)`` mV -> vectors ``(B, L', D)`` and codes ``(B, L')``. Other rates need ``resample=True``.

        ``search`` > 0 picks codes by how well they decode (see ``VQVAE.encode``): slower, closer, same codes format.
        """
        return self.codec.encode(self._at_codec_rate(signals, sampling_rate_hz, resample), search=search, sweeps=sweeps)

    def decode(self, codes_or_vectors) -> np.ndarray:
        """Codes ``(B, L')`` (int) or codebook vectors ``(B, L', D)`` (float) -> ``(B, L, C)`` float32 mV."""
        return self.codec.decode(codes_or_vectors).cpu().numpy()

    # ----- priors --------------------------------------------------------------------------------------
    def sample(self, n: int, prior: str = "diffusion", steps: int = 20, sampler: str = "dpm", labels=None,
               guidance: float = 1.0, seed: int | None = 0, temperature: float = 1.0, top_k: int | None = None,
               top_p: float | None = None, batch_size: int = 256, progress: bool = True) -> SampleOutput:
        """Draw ``n`` new windows. Diffusion samples are snapped to the nearest codebook vectors before decoding."""
        if n < 1:
            raise ConfigError(f"n must be at least 1, got {n}")
        info: dict = {"prior": prior, "seed": seed}
        if prior == "diffusion":
            if self.diffusion is None:
                raise ConfigError("this pipeline has no diffusion prior")
            latents = self.diffusion.sample(n, steps, sampler, labels, guidance, seed, batch_size, progress)
            snapped, codes = self.codec.snap(latents)
            distance = (latents.to(snapped.device) - snapped).norm(dim=-1).mean()
            info |= {"steps": steps, "sampler": sampler, "guidance": guidance,
                     "snap_distance_relative": float(distance) / max(codebook_spacing(self.codec), 1e-12)}
        elif prior == "wavenet":
            if self.wavenet is None:
                raise ConfigError("this pipeline has no WaveNet prior")
            codes = self.wavenet.sample(n, labels, temperature, top_k, top_p, seed, batch_size, progress)
            info |= {"temperature": temperature, "top_k": top_k, "top_p": top_p}
        else:
            raise ConfigError(f"unknown prior '{prior}'; choose 'diffusion' or 'wavenet'")
        signals = np.concatenate([self.decode(codes[i : i + batch_size]) for i in range(0, n, batch_size)])
        return SampleOutput(signals, codes.cpu().numpy(), self.sampling_rate_hz, self.channel_names, self.units, info)

    @torch.no_grad()
    def log_likelihood(self, signals, labels=None, sampling_rate_hz: float | None = None, resample: bool = False) -> np.ndarray:
        """Bits per second of each window under codec + WaveNet prior, ``(B,)``; atypical signals score higher."""
        if self.wavenet is None:
            raise ConfigError("log_likelihood needs a WaveNet prior (it gives exact likelihoods of the codes)")
        codes = self.encode(signals, sampling_rate_hz, resample).codes
        label_ids = as_long(labels, len(codes), self.wavenet.labels, "log_likelihood") if labels is not None else None
        bits = self.wavenet.model.nll_bits(codes.to(self.wavenet.model.device), label_ids)
        codes_per_second = self.sampling_rate_hz / self.codec.config.downsample_factor
        return (bits * codes_per_second).cpu().numpy()
