"""A prior from outside tsvq: one module that registers a prior class and its training stage is all it takes for
`tsvq train`, `tsvq sample` and `tsvq eval` to use it, with no edit to the pipeline, the CLI or the evaluation."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch

from tsvq.cli import main
from tsvq.errors import ConfigError
from tsvq.io import atomic_directory, read_json, write_json
from tsvq.pipeline import Pipeline
from tsvq.priors.base import PRIORS, PriorSample, read_prior_description, register_prior, sampling_options
from tsvq.priors.signature import check_signature, codec_signature
from tsvq.training.stages import Stage, register_stage, stage_names


@dataclass
class UnigramOptions:
    sharpness: float = field(default=1.0, metadata={"help": "unigram: raise the code frequencies to this power"})


@register_prior
class UnigramPrior:
    """Each code drawn independently with its training frequency: the simplest prior there is."""

    kind = "unigram-test"
    models = "codes"
    SamplingOptions = UnigramOptions

    def __init__(self, frequencies, latent_length: int, codec_signature: dict):
        self.frequencies = torch.as_tensor(frequencies, dtype=torch.float64)
        self.latent_length, self.codec_signature, self.labels = latent_length, codec_signature, []

    def check_codec(self, codec) -> None:
        check_signature(self.codec_signature, codec, "unigram prior")

    def sample(self, n, *, labels=None, seed=0, batch_size=256, progress=True, **options) -> PriorSample:
        settings = sampling_options(UnigramPrior, options, "unigram prior sampling options")
        weights = self.frequencies**settings.sharpness
        generator = torch.Generator().manual_seed(seed or 0)
        codes = torch.multinomial(weights, n * self.latent_length, replacement=True, generator=generator)
        return PriorSample(codes=codes.view(n, self.latent_length), info=asdict(settings))

    def save_pretrained(self, folder) -> None:
        with atomic_directory(folder) as tmp:
            write_json(
                tmp / "prior.json",
                {
                    "kind": self.kind,
                    "format_version": 1,
                    "frequencies": self.frequencies.tolist(),
                    "latent_length": self.latent_length,
                    "codec_signature": self.codec_signature,
                },
            )

    @classmethod
    def from_pretrained(cls, folder, device="cpu") -> UnigramPrior:
        info = read_prior_description(folder, cls.kind)
        return cls(info["frequencies"], info["latent_length"], info["codec_signature"])


@dataclass
class UnigramStageConfig:
    store: str = "runs/store"
    codec: str = "runs/codec/model"
    output_dir: str = "runs/unigram"


def train_unigram(config: UnigramStageConfig) -> Path:
    from tsvq.codec import VQVAE
    from tsvq.data import WindowStore
    from tsvq.safe_loading import load_model

    codec, store = load_model(VQVAE, config.codec), WindowStore(config.store)
    codes = codec.encode(store.load("train")).codes.flatten()
    counts = torch.bincount(codes, minlength=codec.config.num_codes).double() + 0.5
    folder = Path(config.output_dir) / "model"
    UnigramPrior(counts / counts.sum(), codec.latent_length, codec_signature(codec)).save_pretrained(folder)
    return folder


register_stage("unigram-test", Stage(UnigramStageConfig, train_unigram))


def test_a_registered_prior_trains_samples_and_evaluates_through_the_cli(tiny_runs, tmp_path, capsys):
    assert "unigram-test" in stage_names() and PRIORS["unigram-test"] is UnigramPrior
    assert (
        main(
            [
                "train",
                "unigram-test",
                "--store",
                str(tiny_runs["store"]),
                "--codec",
                str(tiny_runs["codec"]),
                "--set",
                f"output_dir={tmp_path / 'unigram'}",
            ]
        )
        == 0
    )
    pipe = Pipeline.from_stages(tiny_runs["codec"], tiny_runs["diffusion"], tmp_path / "unigram" / "model")
    pipe.save_pretrained(tmp_path / "pipeline")
    index = read_json(tmp_path / "pipeline" / "pipeline.json", "index")
    assert index["priors"]["unigram-test"] == {
        "kind": "unigram-test",
        "models": "codes",
        "folder": "priors/unigram-test",
    }

    # the CLI knows the new prior's option (--sharpness) from its dataclass, with its help and default
    assert (
        main(
            [
                "sample",
                "--pipeline",
                str(tmp_path / "pipeline"),
                "--prior",
                "unigram-test",
                "--sharpness",
                "2",
                "--n",
                "6",
                "--no-wfdb",
                "--out",
                str(tmp_path / "samples"),
            ]
        )
        == 0
    )
    info = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert info["kind"] == "unigram-test" and info["sharpness"] == 2.0
    samples = np.load(tmp_path / "samples" / "samples.npy")
    assert samples.shape == (6, 256, 1) and np.isfinite(samples).all()
    with pytest.raises(SystemExit):
        main(["sample", "--help"])
    assert "raise the code frequencies to this power (default: 1.0)" in " ".join(capsys.readouterr().out.split())

    assert (
        main(
            [
                "eval",
                "--pipeline",
                str(tmp_path / "pipeline"),
                "--data",
                str(tiny_runs["store"]),
                "--prior",
                "unigram-test",
                "--n",
                "8",
                "--folds",
                "2",
                "--seeds",
                "1",
                "--classifier-steps",
                "20",
                "--no-physiology",
                "--out",
                str(tmp_path / "report"),
            ]
        )
        == 0
    )
    report = read_json(tmp_path / "report" / "report.json", "report")
    scored = report["generation"]["generators"]["unigram-test"]
    assert scored["info"]["kind"] == "unigram-test" and scored["figures"]["frechet_distance"]["mean"] > 0

    # an option the chosen prior does not have is refused by name, not ignored
    with pytest.raises(ConfigError, match="sharpness"):
        pipe.sample(2, "diffusion", sharpness=2.0, progress=False)
    assert (
        main(["sample", "--pipeline", str(tmp_path / "pipeline"), "--prior", "nope", "--out", str(tmp_path / "x")]) == 2
    )
    assert "has no prior 'nope'" in capsys.readouterr().err


def test_pipeline_folders_of_the_first_format_still_load_and_unknown_kinds_are_named(tiny_runs, tmp_path):
    import shutil

    from tsvq.errors import CheckpointError
    from tsvq.priors import load_prior

    old = tmp_path / "old"
    shutil.copytree(tiny_runs["codec"], old / "codec")
    shutil.copytree(tiny_runs["wavenet"], old / "wavenet")
    write_json(old / "pipeline.json", {"format_version": 1, "components": {"codec": "codec", "wavenet": "wavenet"}})
    pipe = Pipeline.from_pretrained(old)
    assert list(pipe.priors) == ["wavenet"] and pipe.sample(2, seed=0, progress=False).signals.shape == (2, 256, 1)
    (tmp_path / "odd").mkdir()
    write_json(tmp_path / "odd" / "prior.json", {"kind": "odd", "format_version": 1})
    with pytest.raises(CheckpointError, match="unknown prior kind 'odd'; known kinds: .*'diffusion'"):
        load_prior(tmp_path / "odd")
