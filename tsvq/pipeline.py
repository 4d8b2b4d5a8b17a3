"""The whole model as one object: a codec and its priors, loaded from and saved to one folder.

    pipe = Pipeline.from_pretrained("runs/demo/pipeline")
    codes = pipe.encode(signals).codes           # signals (B, L, C) float32 in mV at pipe.sampling_rate_hz
    signals = pipe.decode(codes)                 # (B, L, C) float32 in mV
    out = pipe.sample(16, prior="diffusion", seed=0, steps=20, sampler="dpm")   # prior options as keywords
    out.signals, out.sampling_rate_hz

A pipeline folder holds ``pipeline.json`` and one sub-folder per component: ``codec/``, one per prior, and
``denoiser/`` when it has a denoising encoder. Like
diffusers' ``model_index.json``, the index lists each prior's name, kind and folder, and the kind finds its class
in the prior registry (``tsvq.priors.base``), so a new kind of prior needs no change here.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from tsvq import __version__, compression
from tsvq.codec import VQVAE, Encoded, as_signal_tensor
from tsvq.codec.denoising import DenoisingEncoder
from tsvq.compressed_file import CompressedRecord
from tsvq.data.preprocess import Preprocessing, is_number, one_recording
from tsvq.errors import CheckpointError, ConfigError, DataError, check_count
from tsvq.io import atomic_directory, read_json, write_json
from tsvq.priors import WaveNetPrior, load_prior
from tsvq.priors.base import sampling_options
from tsvq.priors.signature import as_long
from tsvq.recording import DecodedRecord
from tsvq.repair import MAX_GAP_S
from tsvq.safe_loading import load_model

logger = logging.getLogger(__name__)
PIPELINE_FORMAT_VERSION = 2  # 1: fixed 'diffusion'/'wavenet' components; 2: a 'priors' index by name


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


def float16_weights(path: Path) -> None:
    """Rewrite a safetensors file with its float32 tensors in float16 (its metadata kept)."""
    with safe_open(path, framework="pt") as file:
        metadata, tensors = file.metadata(), {name: file.get_tensor(name) for name in file.keys()}
    save_file({k: v.half() if v.dtype == torch.float32 else v for k, v in tensors.items()}, path, metadata=metadata)


PRIOR_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")  # a prior's name is its folder's in the pipeline


def named_folder(spec: str | Path) -> tuple[str | None, Path]:
    """A stage folder, optionally named: ``"NAME=FOLDER"`` -> ``(NAME, FOLDER)``, ``FOLDER`` -> ``(None, FOLDER)``
    (a folder whose own path holds ``=`` and exists is taken whole)."""
    text = os.fspath(spec)
    name, separator, folder = text.partition("=")
    if not separator or Path(text).exists():
        return None, Path(text)
    if not PRIOR_NAME.fullmatch(name):
        raise ConfigError(f"prior {text!r}: a name holds only letters, digits, '_', '-' and '.' (NAME=FOLDER)")
    return name, Path(folder)


def checked_device(device: str | torch.device) -> torch.device:
    """``device`` as a ``torch.device`` this machine has, or a ConfigError saying what it lacks (torch's own
    errors are an assertion from deep inside, or a list of every device type torch knows)."""
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ConfigError(f"device {device!r}: not a torch device (e.g. cpu, cuda, cuda:1, mps)") from error
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if not count:
            raise ConfigError(f"device {device!r}: this machine's torch sees no CUDA GPU; use cpu")
        if (parsed.index or 0) >= count:
            raise ConfigError(f"device {device!r}: this machine has {count} CUDA GPU(s), cuda:0 to cuda:{count - 1}")
    elif parsed.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device {device!r}: this machine's torch has no MPS (Apple GPU) backend; use cpu")
    elif parsed.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"device {device!r}: tsvq runs on cpu, cuda or mps")
    return parsed


class Pipeline:
    """Codec + priors by name. Every public method takes and returns ``(B, L, C)`` signals in physical units."""

    def __init__(
        self,
        codec: VQVAE,
        priors: dict | None = None,
        name: str = "in-memory pipeline",
        sampling: dict[str, dict] | None = None,
        denoiser: DenoisingEncoder | None = None,
    ):
        """``sampling``: default sampling options by prior name (e.g. ``{"wavenet": {"top_p": 0.95}}``), the draw
        measured best for these weights; options given to ``sample`` override them. ``denoiser``: an encoder
        trained to give noisy recordings the codes of their clean selves (``denoise``)."""
        self.codec = codec.eval()
        self.priors = dict(priors or {})
        self.denoiser = denoiser.eval() if denoiser is not None else None
        if self.denoiser is not None:
            self.denoiser.check_codec(codec, "denoiser")
        self.name = name  # where it was loaded from: compressed files name it in their messages
        self.folder: Path | None = None  # the pipeline folder it was loaded from (outputs must not land in it)
        self._codec_id: str | None = None
        for prior_name, prior in self.priors.items():
            if not isinstance(prior_name, str) or not PRIOR_NAME.fullmatch(prior_name):
                raise ConfigError(
                    f"prior name {prior_name!r}: letters, digits, '_', '-' and '.' (not first); it names its folder"
                )
            try:
                prior.check_codec(codec)
            except (CheckpointError, ConfigError) as error:
                raise type(error)(f"prior '{prior_name}': {error}") from error
        self.sampling = self._checked_sampling(sampling or {})

    def _checked_sampling(self, sampling: dict[str, dict]) -> dict[str, dict]:
        """Each prior's default options, checked against the options that prior takes (a typo fails here, at
        assembly or load, not at the first draw)."""
        for prior_name, options in sampling.items():
            if prior_name not in self.priors:
                raise ConfigError(
                    f"sampling defaults for '{prior_name}', which is not one of the pipeline's priors "
                    f"{sorted(self.priors)}"
                )
            sampling_options(type(self.priors[prior_name]), options, f"sampling defaults of prior '{prior_name}'")
        return {prior_name: dict(options) for prior_name, options in sampling.items() if options}

    # ----- loading and saving --------------------------------------------------------------------------
    @classmethod
    def from_stages(
        cls,
        codec: str | Path,
        *priors: str | Path | None,
        device: str = "cpu",
        sampling: dict[str, dict] | None = None,
        denoiser: str | Path | None = None,
    ) -> Pipeline:
        """Assemble a pipeline from trained stage folders (``runs/<stage>/model``); each prior is named by its kind,
        or by the name given as ``"NAME=FOLDER"`` (two priors of one kind, e.g. two WaveNets, need names)."""
        specs = [named_folder(spec) for spec in priors if spec is not None]
        loaded = [load_prior(folder, device) for _, folder in specs]
        names = [name or prior.kind for (name, _), prior in zip(specs, loaded)]
        if len(set(names)) != len(names):
            raise ConfigError(f"two priors named {names}; name each as NAME=FOLDER (e.g. wavenet-long=runs/w2/model)")
        return cls(
            load_model(VQVAE, codec).to(device),
            dict(zip(names, loaded)),
            name=str(codec),
            sampling=sampling,
            denoiser=load_model(DenoisingEncoder, denoiser).to(device) if denoiser is not None else None,
        )

    @classmethod
    def from_pretrained(cls, folder: str | Path, device: str = "cpu") -> Pipeline:
        """A pipeline folder, or the name of a pipeline shipped in the package (``tsvq.list_pretrained()``).

        A bare name of a shipped pipeline always means the shipped one; a local folder of the same name is reached
        with a path (``"./ecg-single-lead"``), and a warning says that one exists.
        """
        from tsvq.pretrained import list_pretrained, shipped_or_local

        device = checked_device(device)
        name = os.fspath(folder)
        folder = shipped_or_local(name)
        if not folder.exists() and len(folder.parts) == 1:
            raise CheckpointError(
                f"{folder}: no such pipeline folder, and no pretrained pipeline of that name "
                f"(shipped: {sorted(list_pretrained()) or 'none'})"
            )
        index_file = folder / "pipeline.json"
        index = read_json(index_file, "pipeline description")
        if not isinstance(index, dict) or not isinstance(index.get("components", {}), dict):
            raise CheckpointError(
                f"{index_file}: not a pipeline description (expected a JSON object with 'components')"
            )
        if not isinstance(index.get("format_version", 1), int):
            raise CheckpointError(f"{index_file}: format_version {index['format_version']!r} is not a number")
        if index.get("format_version", 0) > PIPELINE_FORMAT_VERSION:
            raise CheckpointError(f"{index_file}: written by a newer tsvq ({index.get('tsvq_version')}); upgrade tsvq")
        components = index.get("components", {})
        if "codec" not in components:
            raise CheckpointError(f"{index_file}: names no codec")
        if index.get("format_version", 1) == 1:  # fixed component names before the prior registry
            entries = {name: {"folder": components[name]} for name in ("diffusion", "wavenet") if name in components}
        else:
            entries = index.get("priors", {})

        def component(what: str, relative) -> Path:
            """A component's folder, which must lie inside the pipeline folder (a forged index cannot reach out)."""
            if not isinstance(relative, str) or not relative or Path(relative).is_absolute():
                raise CheckpointError(
                    f"{index_file}: {what} folder {relative!r} must be a relative path inside the pipeline folder"
                )
            path = folder / relative
            if folder.resolve() not in path.resolve().parents:
                raise CheckpointError(f"{index_file}: {what} folder {relative!r} lies outside the pipeline folder")
            return path

        if not isinstance(entries, dict) or not all(isinstance(e, dict) and "folder" in e for e in entries.values()):
            raise CheckpointError(f"{index_file}: 'priors' must map each name to {{\"folder\": ...}}")
        priors = {
            name: load_prior(component(f"prior '{name}'", entry["folder"]), device) for name, entry in entries.items()
        }
        sampling = {name: entry["sampling"] for name, entry in entries.items() if entry.get("sampling")}
        denoiser = None
        if "denoiser" in components:
            denoiser = load_model(DenoisingEncoder, component("denoiser", components["denoiser"])).to(device)
        try:
            pipe = cls(
                load_model(VQVAE, component("codec", components["codec"])).to(device),
                priors,
                name=name,
                sampling=sampling,
                denoiser=denoiser,
            )
        except (CheckpointError, ConfigError) as error:  # e.g. a hand-edited sampling default: name the file to fix
            raise CheckpointError(f"{index_file}: {error}") from error
        pipe.folder = folder
        return pipe

    def save_pretrained(
        self, folder: str | Path, description: str = "", overwrite: bool = True, half: Iterable[str] = ()
    ) -> Path:
        """Write the pipeline folder; only a folder tsvq made is replaced, and only with ``overwrite``.

        ``half``: components ("codec", "denoiser", prior names) whose weights are stored in float16, half the size
        (a shipped model stays a few MB); loading reads them back as float32, so only their rounding changes.
        """
        folder = Path(folder)
        components = {"codec": "codec", **({"denoiser": "denoiser"} if self.denoiser is not None else {})}
        parts = components | {name: f"priors/{name}" for name in self.priors}  # each one's folder in the pipeline
        unknown = sorted(set(half) - set(parts))
        if unknown:
            raise ConfigError(f"half: this pipeline has no component {unknown}; it has {sorted(parts)}")
        with atomic_directory(folder, overwrite, "pipeline folder") as tmp:
            self.codec.save_pretrained(tmp / "codec")
            if self.denoiser is not None:
                self.denoiser.save_pretrained(tmp / "denoiser")
            for name, prior in self.priors.items():
                prior.save_pretrained(tmp / parts[name])
            for name in half:
                for weights in sorted((tmp / parts[name]).rglob("*.safetensors")):
                    float16_weights(weights)
            write_json(
                tmp / "pipeline.json",
                {
                    "format_version": PIPELINE_FORMAT_VERSION,
                    "tsvq_version": __version__,
                    "description": description,
                    "components": components,
                    "priors": {
                        name: {
                            "kind": prior.kind,
                            "models": prior.models,
                            "folder": parts[name],
                            **({"sampling": self.sampling[name]} if name in self.sampling else {}),
                        }
                        for name, prior in self.priors.items()
                    },
                },
            )
        return folder

    def prior(self, name: str | None = None):
        """The prior called ``name``; without a name, the pipeline's first."""
        if not self.priors:
            raise ConfigError("this pipeline has no prior; add one with Pipeline(codec, priors={name: prior})")
        if name is None:
            return next(iter(self.priors.values()))
        if name not in self.priors:
            raise ConfigError(f"this pipeline has no prior '{name}'; it has {sorted(self.priors)}")
        return self.priors[name]

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

    @property
    def preprocessing(self) -> Preprocessing:
        """How the codec's training windows were conditioned (rate, band, filter, channels, window length)."""
        recorded = self.codec.config.get("preprocessing")
        if not recorded:
            raise CheckpointError(
                f"{self.name}: the codec does not record its preprocessing (saved before tsvq kept "
                "it); retrain it, or set it: pipe.codec.register_to_config(preprocessing="
                "Preprocessing(...).to_dict())"
            )
        return Preprocessing.from_dict(recorded, f"{self.name}: codec config 'preprocessing'")

    @property
    def codec_id(self) -> str:
        """Fingerprint of the codec's settings and weights, and nothing else (not where it was loaded from, nor the
        diffusers version): a compressed file decodes with that very codec, wherever it is installed."""
        if self._codec_id is None:
            settings = {key: value for key, value in dict(self.codec.config).items() if not key.startswith("_")}
            self._codec_id = self._fingerprint(settings)
        return self._codec_id

    def _fingerprint(self, settings: dict) -> str:
        digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
        for key, tensor in sorted(self.codec.state_dict().items()):
            digest.update(key.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()[:16]

    def accepts_codec_id(self, codec_id: str) -> bool:
        """Whether a compressed file's codec id is this codec's: the content id, or the id of files made before it,
        which also hashed the path the pipeline was loaded from (right when loaded the same way)."""
        return codec_id == self.codec_id or codec_id == self._fingerprint(dict(self.codec.config))

    # ----- preprocessing and whole recordings ----------------------------------------------------------
    def preprocess(self, signal, sampling_rate_hz: float) -> np.ndarray:
        """A recording ``(L, C)`` (or one lead ``(L,)``) in physical units at ``sampling_rate_hz`` -> ``(L', C)``
        float32 conditioned like the codec's training data (resampled to ``self.sampling_rate_hz``, band-passed); NaN
        gaps stay NaN.

        A single-lead codec treats each channel as its own recording (its gaps are its own); a multi-lead codec
        conditions its channels together. ``encode`` the result (any length that is a multiple of the downsample
        factor), or ``compress`` the recording instead.
        """
        signal = one_recording(signal, "preprocess")
        prep = self.preprocessing
        if self.codec.config.in_channels > 1:
            return prep.apply(signal, sampling_rate_hz)
        return np.concatenate(
            [prep.apply(signal[:, c : c + 1], sampling_rate_hz) for c in range(signal.shape[1])], axis=1
        )

    def compress(self, signal_or_record, sampling_rate_hz: float | None = None, **options) -> CompressedRecord:
        """Code a whole recording: a ``tsvq.data.Record`` or a signal ``(L,)`` or ``(L, C)`` at ``sampling_rate_hz``.
        Returns a ``CompressedRecord`` (``.save(path)``, ``.bits_per_second()``, ``.compression_ratio()``); options
        as in ``tsvq.compression.compress`` (``channels``, ``search``, ``quantizers``, ``input_bits``,
        ``entropy_coding``, ``detail_step``, ``beats``)."""
        return compression.compress(self, signal_or_record, sampling_rate_hz, **options)

    def compress_at(
        self, signal_or_record, sampling_rate_hz: float | None = None, **options
    ) -> tuple[CompressedRecord, dict]:
        """Compress at a target ``bitrate`` (bit/s per channel) or ``max_prdn`` (%), see
        ``tsvq.compression.compress_at``."""
        return compression.compress_at(self, signal_or_record, sampling_rate_hz, **options)

    def compression_prdn(
        self, compressed: CompressedRecord, signal_or_record, sampling_rate_hz: float | None = None
    ) -> dict[str, float]:
        """PRDN (%) of each coded channel against the input conditioned the same way (``tsvq.compression``)."""
        return compression.compression_prdn(self, compressed, signal_or_record, sampling_rate_hz)

    def decompress(
        self, compressed: CompressedRecord | str | Path, rate: str = "native", derive_leads: bool | None = None
    ) -> DecodedRecord:
        """A ``CompressedRecord`` (or its file) -> ``DecodedRecord``: one continuous ``(T, C)`` signal in the
        recording's units at its native rate (``rate="pipeline"``: at the pipeline's), NaN where it had gaps.
        ``derive_leads``: add III, aVR, aVL and aVF from the decoded I and II (None: when the file holds I, II and
        V1-V6 without them, the eight leads a 12-lead codec codes)."""
        return compression.decompress(self, compressed, rate, derive_leads)

    # ----- codec ---------------------------------------------------------------------------------------
    def _at_codec_rate(self, signals, sampling_rate_hz: float | None, resample: bool) -> torch.Tensor:
        x = as_signal_tensor(signals, self.codec.config.in_channels)
        if sampling_rate_hz is not None and (not is_number(sampling_rate_hz) or not 0 < sampling_rate_hz < np.inf):
            raise DataError(f"signals: sampling rate must be a positive number of Hz, got {sampling_rate_hz!r}")
        if sampling_rate_hz is None or math.isclose(sampling_rate_hz, self.sampling_rate_hz):
            return x
        if not resample:
            raise DataError(
                f"signals are at {sampling_rate_hz:g} Hz but the codec was trained at {self.sampling_rate_hz:g} Hz; "
                "pass resample=True or resample them first"
            )
        from tsvq.data.preprocess import resample as resample_signal

        y = np.stack(
            [resample_signal(w, sampling_rate_hz, self.sampling_rate_hz) for w in x.numpy().astype(np.float64)]
        )
        usable = (y.shape[1] // self.codec.config.downsample_factor) * self.codec.config.downsample_factor
        return torch.from_numpy(y[:, :usable].astype(np.float32))

    def encode(
        self, signals, sampling_rate_hz: float | None = None, resample: bool = False, search: int = 0, sweeps: int = 2
    ) -> Encoded:
        """``(B, L, C)`` mV -> vectors ``(B, L', D)`` and codes ``(B, L')``. Other rates need ``resample=True``.

        ``search`` > 0 picks codes by how well they decode (see ``VQVAE.encode``): slower, closer, same codes format.
        """
        return self.codec.encode(self._at_codec_rate(signals, sampling_rate_hz, resample), search=search, sweeps=sweeps)

    def decode(self, codes_or_vectors) -> np.ndarray:
        """Codes ``(B, L')`` (int) or codebook vectors ``(B, L', D)`` (float) -> ``(B, L, C)`` float32 mV."""
        return self.codec.decode(codes_or_vectors).cpu().numpy()

    # ----- priors --------------------------------------------------------------------------------------
    def sample(
        self,
        n: int,
        prior: str | None = None,
        *,
        labels=None,
        seed: int | None = 0,
        batch_size: int = 256,
        progress: bool = True,
        snap: bool = True,
        **options,
    ) -> SampleOutput:
        """Draw ``n`` new windows from the prior ``prior`` (default: the first) with that prior's ``options``
        (diffusion: ``steps``, ``sampler``, ``guidance``; WaveNet: ``temperature``, ``top_k``, ``top_p``); options
        not given (or None) take the pipeline's sampling defaults for that prior, then the prior's own.

        A vector prior's samples are snapped to the nearest codebook vectors before decoding (``snap=False``
        decodes them as drawn); the snap distance, in units of the codebook's spacing, says how far off they were.
        """
        n, batch_size = check_count("n", n, 1), check_count("batch_size", batch_size, 1)
        seed = None if seed is None else check_count("seed", seed, 0)
        name = prior or next(iter(self.priors), None)
        chosen = self.prior(prior)
        options = self.sampling_for(name, options)
        draw = chosen.sample(n, labels=labels, seed=seed, batch_size=batch_size, progress=progress, **options)
        info: dict = {"prior": name, "kind": chosen.kind, "seed": seed, **draw.info}
        codes, latents = draw.codes, draw.codes
        if draw.vectors is not None:
            snapped, codes = self.codec.snap(draw.vectors)
            distance = (draw.vectors.to(snapped.device) - snapped).norm(dim=-1).mean()
            info["snap_distance_relative"] = float(distance) / max(codebook_spacing(self.codec), 1e-12)
            latents = snapped if snap else draw.vectors
        signals = np.concatenate([self.decode(latents[i : i + batch_size]) for i in range(0, n, batch_size)])
        return SampleOutput(signals, codes.cpu().numpy(), self.sampling_rate_hz, self.channel_names, self.units, info)

    def impute(
        self, signal, sampling_rate_hz: float, *, draws: int = 1, candidates: int = 16, choose: str = "sample",
        prior: str | None = None, seed: int = 0, rhythm: str = "auto", max_gap_s: float | None = MAX_GAP_S,
        where: str = "signal", **options,
    ):  # fmt: skip
        """Fill every NaN stretch of a recording ``(L,)`` or ``(L, C)`` with signal that agrees with both sides
        (``tsvq.repair``: the WaveNet prior's draws weighed by the codes after the gap, and in an ECG guided by the
        beats the R peaks on either side plan); the observed samples come back unchanged. ``draws`` fills to draw;
        their spread says how sure the model is. ``choose="likeliest"``: the candidate the prior finds most
        probable together with the codes after the gap (a best guess). ``rhythm``: "auto", "ecg" or "none".
        ``max_gap_s``: a longer NaN stretch is refused (None: no limit). ``prior``: the prior that fills, by name
        (default: the first WaveNet; a MaskGIT or diffusion prior reads both sides at once, ``tsvq.infill``;
        ``candidates`` and ``choose`` are the WaveNet's); ``where`` names the recording in errors; ``options``: its
        sampling options."""
        from tsvq.repair import repair

        return repair(self, signal, sampling_rate_hz, draws=draws, candidates=candidates, choose=choose, prior=prior,
                      seed=seed, rhythm=rhythm, max_gap_s=max_gap_s, where=where, **options)  # fmt: skip

    def forecast(
        self, signal, sampling_rate_hz: float, seconds: float, *, max_gap_s: float | None = MAX_GAP_S,
        where: str = "signal", **options,
    ):  # fmt: skip
        """Continue a recording by ``seconds``: ``impute`` of a gap appended at its end (nothing after it to weigh
        the draws by, so they come from the prior given what came before); ``options`` as ``impute``'s."""
        x = one_recording(signal, where)
        self.preprocessing.check_rate(sampling_rate_hz, where)
        if not is_number(seconds) or not 0 < seconds < np.inf:
            raise ConfigError(f"seconds must be a positive, finite number, got {seconds!r}")
        if max_gap_s is not None and seconds > max_gap_s:  # refused before the continuation is allocated
            raise DataError(
                f"{where}: a forecast of {seconds:g} s is longer than max_gap_s={max_gap_s:g}; raise max_gap_s "
                "(--max-gap) to continue that far"
            )
        samples = int(round(seconds * sampling_rate_hz))
        if samples < 1:
            raise ConfigError(
                f"{where}: a forecast of {seconds:g} s is shorter than one sample at {sampling_rate_hz:g} Hz"
            )
        extra = np.full((samples, x.shape[1]), np.nan)
        return self.impute(np.concatenate([x, extra]), sampling_rate_hz, max_gap_s=max_gap_s, where=where, **options)

    def denoise(self, signal, sampling_rate_hz: float, pass_through: bool = True) -> np.ndarray:
        """A recording ``(L,)`` or ``(L, C)`` with its noise removed, same shape, band-limited to the pipeline's band
        (``tsvq.denoise``: the denoising encoder's codes for the clean signal decoded by the codec, plus the share
        of the input it keeps where it finds the input clean, corrected by its refiner if it has one); NaN stays NaN.
        ``pass_through=False``: the decoded codes alone."""
        from tsvq.denoise import denoise

        return denoise(self, signal, sampling_rate_hz, pass_through=pass_through)

    def sampling_for(self, prior: str, options: dict) -> dict:
        """The options a draw from ``prior`` uses: the pipeline's defaults for it, overridden by those given (a
        None value counts as not given)."""
        return self.sampling.get(prior, {}) | {key: value for key, value in options.items() if value is not None}

    @torch.no_grad()
    def log_likelihood(
        self, signals, labels=None, sampling_rate_hz: float | None = None, resample: bool = False
    ) -> np.ndarray:
        """Bits per second of each window under codec + WaveNet prior, ``(B,)``; atypical signals score higher."""
        wavenet = next((p for p in self.priors.values() if isinstance(p, WaveNetPrior)), None)
        if wavenet is None:
            raise ConfigError("log_likelihood needs a WaveNet prior (it gives exact likelihoods of the codes)")
        codes = self.encode(signals, sampling_rate_hz, resample).codes
        label_ids = as_long(labels, len(codes), wavenet.labels, "log_likelihood") if labels is not None else None
        bits = wavenet.model.nll_bits(codes.to(wavenet.model.device), label_ids)
        return (bits * self.codec.codes_per_second()).cpu().numpy()
