"""The main job end to end, small enough for a 2-core laptop: prepare -> codec -> diffusion and WaveNet priors
-> sample -> evaluate -> a report folder. ``tsvq demo`` runs it; every step is a public API call.

Running it again resumes each stage from its checkpoints (nothing is retrained); with other data or other stage
settings (another tsvq version's defaults, other ``DemoConfig`` values), the earlier stages are discarded first.

The default source is the built-in 5-minute excerpt of MIT-BIH record 208 (real ECG, one patient). One patient
cannot give a patient-wise split, so that source is split by time (first 70% trains, then 15% validates, the last
15% tests) and the report says so. ``--source synthetic`` uses six virtual subjects split by patient, and
``--source DIR`` any folder of WFDB records.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from tsvq.config import load_yaml
from tsvq.data import PrepareConfig, prepare
from tsvq.data.builtin import MITDB208, SYNTHETIC
from tsvq.evaluation.report import EvalConfig, evaluate
from tsvq.evaluation.tables import format_table
from tsvq.io import claim_workspace, is_tsvq_output, write_json
from tsvq.pipeline import Pipeline
from tsvq.sample_writer import write_samples
from tsvq.training.codec import CodecStageConfig, train_codec
from tsvq.training.diffusion import DiffusionStageConfig, train_diffusion
from tsvq.training.loop import TrainingConfig
from tsvq.training.wavenet import WaveNetStageConfig, train_wavenet

# The stage models come from the demo's recipe, tsvq/demo.yaml (the one place they are written down).
DEMO_RECIPE = load_yaml(Path(__file__).with_name("demo.yaml"))
DEMO_CODEC = DEMO_RECIPE["codec"]["model"]
DEMO_DENOISER = DEMO_RECIPE["diffusion"]["model"]
DEMO_DIFFUSION = {
    key: value for key, value in DEMO_RECIPE["diffusion"].items() if key != "model"
}  # the stage's other settings
DEMO_WAVENET = DEMO_RECIPE["wavenet"]["model"]


@dataclass
class DemoConfig:
    source: str = MITDB208
    out: str = "runs/demo"
    rate_hz: float = 250.0
    window_samples: int = 512  # 2.048 s at 250 Hz
    codec_steps: int = 800
    diffusion_steps: int = 1200
    # The WaveNet overfits the 407 training windows' codes after ~150 steps (trained for 600: validation bits/code
    # 7.07 at step 150, past 11 by step 300); trained for 200 its kept model is better (6.90) at a third of the cost.
    wavenet_steps: int = 200
    samples: int = 200
    eval_windows: int = 200
    eval_seeds: int = 3  # evaluation figures are mean +- std over this many seeds
    classifier_steps: int = 200  # optimiser steps of the evaluation's classifier and forecaster
    sampler: str = "dpm"
    sampling_steps: int = 20
    seed: int = 0


def prepare_config(config: DemoConfig) -> PrepareConfig:
    """Windows for the demo's source: a time split for the single-patient excerpt, a patient split otherwise."""
    common = dict(source=config.source, rate_hz=config.rate_hz, window_samples=config.window_samples, seed=config.seed)
    if config.source == MITDB208:
        # Windows every quarter window (75% overlap) give a 5-minute record enough training windows; the time
        # blocks of the split never share a window.
        return PrepareConfig(
            **common,
            split_by="time",
            stride_seconds=config.window_samples / config.rate_hz / 4,
            val_fraction=0.15,
            test_fraction=0.15,
            annotation_extensions=["atr", "xqrs"],
        )
    if config.source == SYNTHETIC:
        # 12 virtual subjects: 2 validate, 3 are held out for testing, 7 train; windows overlap by half
        return PrepareConfig(
            **common, val_fraction=0.17, test_fraction=0.25, stride_seconds=config.window_samples / config.rate_hz / 2
        )
    return PrepareConfig(**common)


LEARNING_RATES = {"codec": 2e-3, "diffusion": 1e-3, "wavenet": 2e-3}  # per stage


def stage_training(config: DemoConfig, stage: str, steps: int, learning_rate: float) -> TrainingConfig:
    """The demo's training settings for one stage (``benchmarks/levers.py`` trains its rows with them too)."""
    return TrainingConfig(
        output_dir=str(Path(config.out) / stage),
        max_steps=steps,
        batch_size=32,
        learning_rate=learning_rate,
        warmup_steps=min(50, steps // 10),
        eval_every=max(steps // 4, 1),
        checkpoint_every=max(steps // 4, 1),
        seed=config.seed,
    )


STAGES = ("codec", "diffusion", "wavenet", "pipeline", "samples-diffusion", "samples-wavenet", "report")
# Settings that change only the sampling and the evaluation: changing them keeps the trained stages.
NOT_TRAINING = ("out", "samples", "eval_windows", "eval_seeds", "classifier_steps", "sampler", "sampling_steps")


def settings_fingerprint(config: DemoConfig, store_hash: str) -> str:
    """Everything that decides what the stages train: data, demo settings and the stage models."""
    settings = {
        "store": store_hash,
        "demo": {k: v for k, v in asdict(config).items() if k not in NOT_TRAINING},
        "codec": DEMO_CODEC,
        "denoiser": DEMO_DENOISER,
        "diffusion": DEMO_DIFFUSION,
        "wavenet": DEMO_WAVENET,
    }
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def discard_stale_stages(out: Path, fingerprint: str) -> None:
    """Checkpoints trained with other data or settings must not be resumed (they would not even load)."""
    marker = out / "demo_settings.json"
    previous = json.loads(marker.read_text()).get("fingerprint") if marker.exists() else None
    if previous != fingerprint and any((out / stage).exists() for stage in STAGES):
        print(f"      settings changed since the last run in {out}: retraining every stage")
        for stage in STAGES:
            if is_tsvq_output(out / stage):  # a training folder tsvq made; anything else stays
                shutil.rmtree(out / stage, ignore_errors=True)
    write_json(marker, {"fingerprint": fingerprint})


def run_demo(config: DemoConfig | None = None) -> dict:
    """Run every stage; returns the evaluation report (also written to ``<out>/report/report.json``)."""
    config = config or DemoConfig()
    started = time.time()
    out = claim_workspace(config.out, "demo folder")
    print(f"[1/6] preparing windows from '{config.source}'")
    store = prepare(prepare_config(config), out / "store", overwrite=True)
    discard_stale_stages(out, settings_fingerprint(config, store.manifest["config_hash"]))
    print(f"      {store}")
    print("[2/6] training the codec (VQ-VAE)")
    codec = train_codec(
        CodecStageConfig(
            store=str(store.path),
            model=DEMO_CODEC,
            training=stage_training(config, "codec", config.codec_steps, LEARNING_RATES["codec"]),
        )
    )
    print("[3/6] training the diffusion prior over codebook vectors")
    diffusion = train_diffusion(
        DiffusionStageConfig(
            store=str(store.path),
            codec=str(codec),
            model=DEMO_DENOISER,
            **DEMO_DIFFUSION,
            training=stage_training(config, "diffusion", config.diffusion_steps, LEARNING_RATES["diffusion"]),
        )
    )
    print("[4/6] training the WaveNet prior over code indices")
    wavenet = train_wavenet(
        WaveNetStageConfig(
            store=str(store.path),
            codec=str(codec),
            model=DEMO_WAVENET,
            training=stage_training(config, "wavenet", config.wavenet_steps, LEARNING_RATES["wavenet"]),
        )
    )
    pipeline = Pipeline.from_stages(codec, diffusion, wavenet)
    pipeline.save_pretrained(out / "pipeline")
    pipeline.name = str(out / "pipeline")  # what the report names as the codec's owner: the folder a user loads
    print(f"[5/6] sampling {config.samples} windows from each prior")
    diffusion_options = {"steps": config.sampling_steps, "sampler": config.sampler}
    for prior, options in (("diffusion", diffusion_options), ("wavenet", {})):
        output = pipeline.sample(config.samples, prior, seed=config.seed, **options)
        write_samples(output, out / f"samples-{prior}")
    print(f"[6/6] evaluating against held-out real windows, the floor and the baselines ({config.eval_seeds} seeds)")
    eval_config = EvalConfig(
        n=config.eval_windows,
        prior="diffusion",
        sampling=diffusion_options,
        seed=config.seed,
        seeds=config.eval_seeds,
        classifier_steps=config.classifier_steps,
    )
    report = evaluate(store, out / "report", eval_config, pipeline=pipeline)
    wavenet_stats = pipeline.priors["wavenet"].statistics
    minutes = (time.time() - started) / 60
    print()
    print(format_table(report))
    print(
        f"WaveNet prior: {wavenet_stats.get('val_bits_per_code', float('nan')):.2f} bits/code on validation "
        f"(unigram entropy {wavenet_stats.get('unigram_bits_per_code', float('nan')):.2f})"
    )
    print(f"split: {store.manifest['split_note']}")
    print(
        f"\nreport: {out / 'report' / 'report.json'} (plots beside it); pipeline: {out / 'pipeline'}; "
        f"samples: {out / 'samples-diffusion'}, {out / 'samples-wavenet'}; {minutes:.1f} min"
    )
    return report
