"""An outside anchor: TimeVQVAE (Lee et al., AISTATS 2023) trained on the demo's windows, scored beside tsvq's priors.

    make anchors    # installs the anchor (see below) and runs this script with its defaults
    .venv/bin/python -m benchmarks.anchors [--budgets same 5x] [--tsvq-factors 5] [--n 200] [--seeds 3]

What is TimeVQVAE's and what is ours: the model code is the published ``timevqvae`` 1.0.1 wheel (its ``VQVAE``,
stage 1, and ``MaskGIT``, stage 2, with their losses and iterative decoding). The wheel ships no training loop, so
this script writes one from the authors' published configuration (``configs/config.yaml`` of ML4ITS/TimeVQVAE):
AdamW at learning rate 1e-3 and weight decay 1e-5, batch 128 for stage 1 and 256 for stage 2, STFT size ``n_fft`` 8,
32 codes for each of the low- and high-frequency codebooks, latent widths 8 (LF) and 32 (HF), the prior transformers
of the wheel's README (LF: 128 wide, 4 layers, 2 heads; HF: 32 wide, 1 layer), masking choice temperature 4 and
T = 10 decoding steps; stage-1 loss = LF MSE + HF L1 + both codebooks' losses, as the authors train it. Windows are
scaled by the training windows' mean and spread (the config's ``data_scaling``) and scaled back before scoring.
The wheel's README example uses 1024-code books; the paper's configuration uses 32, which we set (407 training
windows are few for 1024 codes: tried on 2026-11-23, Frechet 3232 at the demo's budget).

Budgets: ``same`` gives stage 1 the demo codec's training seconds and stage 2 the demo diffusion prior's (measured
on this machine by ``make demo``, read from its training summaries); ``5x`` five times both; ``epochs`` runs the
authors' recommended 2000 stage-1 and 10000 stage-2 epochs (9.0 hours on the 2-core CPU, measured 2026-12-04: each
stage saves its progress in ``<out>/timevqvae-epochs/checkpoints`` every 10 minutes, and the same command run again
resumes it, drawing the batches and masks an unbroken run would; ``benchmarks/anchor_training.py``).

The wheel declares Python >= 3.12 and numpy >= 2.4 but runs on 3.11 with numpy 2.x; ``make anchors`` installs it
with ``pip install --no-deps --ignore-requires-python timevqvae==1.0.1 einops``. It is a benchmark-only dependency:
nothing in ``tsvq/`` imports it.

tsvq gets the larger budgets too: ``--tsvq-factors 5`` trains the demo's codec and diffusion prior, same models and
settings, for five times the demo's steps (4000 + 6000) on the same windows, so the 5x anchor has a like-for-like
tsvq column; it samples as the demo does (DPM-Solver++, 20 steps).

Writes ``results/anchors.json``: one ``tsvq eval`` report (``--compare``-style) of tsvq's diffusion and WaveNet
priors (the demo's pipeline) beside TimeVQVAE at each budget, tsvq at each factor, the floor and the baselines. Every
column's samples are kept in ``--out`` (``timevqvae-<budget>.npy``, ``tsvq-<factor>x.npy``), and every run scores all
the samples it finds there, trained now or before: a run of some columns only (``--budgets`` with fewer names, or
none, and ``--tsvq-factors`` with none) trains those and scores every column afresh, so a change to the evaluation
re-scores the whole table without training again (``--budgets --tsvq-factors``). Delete a column's ``.npy`` to
drop it. The training logs of columns not trained in a run are kept from the results file.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from benchmarks.anchor_training import OPTIMISER, train_stage
from benchmarks.common import MEASURED_DENOISER, RESULTS, save
from tsvq.data import WindowStore
from tsvq.demo import DEMO_CODEC, DEMO_DIFFUSION, LEARNING_RATES, DemoConfig, stage_training
from tsvq.evaluation.report import EvalConfig, evaluate
from tsvq.evaluation.tables import format_table
from tsvq.pipeline import Pipeline
from tsvq.training.codec import CodecStageConfig, train_codec
from tsvq.training.diffusion import DiffusionStageConfig, train_diffusion

try:
    from timevqvae.maskgit import MaskGIT, PriorModelConfig
    from timevqvae.vqvae import VQVAE
except ImportError as error:  # pragma: no cover - a benchmark-only dependency
    raise SystemExit(
        f"benchmarks/anchors.py needs the timevqvae wheel ({error}); run `make anchors`, or "
        "`.venv/bin/pip install --no-deps --ignore-requires-python timevqvae==1.0.1 einops`"
    ) from error

# The authors' configuration (configs/config.yaml) and the wheel README's prior transformers.
STAGE1 = {
    "n_fft": 8,
    "init_dim": 4,
    "hid_dim": 128,
    "downsampled_width_l": 8,
    "downsampled_width_h": 32,
    "encoder_n_resnet_blocks": 2,
    "decoder_n_resnet_blocks": 2,
    "codebook_size_l": 32,
    "codebook_size_h": 32,
    "kmeans_init": True,
    "codebook_dim": 8,
}
STAGE2 = {
    "lf_choice_temperature": 4.0,
    "hf_choice_temperature": 4.0,
    "lf_num_sampling_steps": 10,
    "hf_num_sampling_steps": 10,
    "transformer_embedding_dim": 128,
    "classifier_free_guidance_scale": 1.0,
}
PRIOR_L = {
    "hidden_dim": 128,
    "n_layers": 4,
    "heads": 2,
    "ff_mult": 1,
    "use_rmsnorm": True,
    "p_unconditional": 0.2,
    "model_dropout": 0.3,
    "emb_dropout": 0.3,
}
PRIOR_H = PRIOR_L | {"hidden_dim": 32, "n_layers": 1, "heads": 1}
BATCH = {"stage1": 128, "stage2": 256}
RECOMMENDED_EPOCHS = {"stage1": 2000, "stage2": 10000}


@dataclass
class Budget:
    """How long each stage trains: seconds of wall clock, or epochs."""

    name: str
    stage1_seconds: float | None = None
    stage2_seconds: float | None = None
    stage1_epochs: int | None = None
    stage2_epochs: int | None = None


def demo_seconds(demo: Path) -> tuple[float, float]:
    """The demo's codec and diffusion-prior training seconds (the same-budget anchor gets exactly these)."""
    seconds = []
    for stage in ("codec", "diffusion"):
        summary = demo / stage / "training_summary.json"
        if not summary.exists():
            raise SystemExit(f"{summary} is missing: run `make demo` first (the anchor's budget is the demo's)")
        seconds.append(float(json.loads(summary.read_text())["seconds"]))
    return seconds[0], seconds[1]


def stage1_loss(vqvae: VQVAE):
    def loss_of(batch: torch.Tensor) -> torch.Tensor:
        out = vqvae(batch)
        return sum(out.recons_loss.values()) + out.vq_losses["LF"]["loss"].sum() + out.vq_losses["HF"]["loss"].sum()

    return loss_of


def train_anchor(
    windows: np.ndarray, budget: Budget, seed: int, checkpoints: Path | None = None
) -> tuple[MaskGIT, dict]:
    """Stage 1 (VQVAE) then stage 2 (MaskGIT) on ``windows`` (n, C, L), already scaled. ``checkpoints``: a folder
    each stage of an epoch budget saves its progress in and resumes from."""
    torch.manual_seed(seed)
    np.random.seed(seed)  # MaskGIT draws its masking ratios from numpy's global generator
    x = torch.from_numpy(windows)
    vqvae = VQVAE(in_channels=x.shape[1], input_length=x.shape[2], **STAGE1)

    def checkpoint(stage: str) -> Path | None:
        return checkpoints / f"{stage}.pt" if checkpoints is not None else None

    log = {
        "stage1": train_stage(
            "stage1",
            vqvae,
            stage1_loss(vqvae),
            x,
            BATCH["stage1"],
            budget.stage1_seconds,
            budget.stage1_epochs,
            seed,
            checkpoint("stage1"),
        )
    }
    vqvae.eval()
    maskgit = MaskGIT(
        vqvae,
        lf_codebook_size=STAGE1["codebook_size_l"],
        hf_codebook_size=STAGE1["codebook_size_h"],
        lf_prior_model_config=PriorModelConfig(**PRIOR_L),
        hf_prior_model_config=PriorModelConfig(**PRIOR_H),
        **STAGE2,
    )
    log["stage2"] = train_stage(
        "stage2",
        maskgit,
        lambda batch: maskgit(batch, None).total_mask_prediction_loss,
        x,
        BATCH["stage2"],
        budget.stage2_seconds,
        budget.stage2_epochs,
        seed,
        checkpoint("stage2"),
    )
    stage1 = sum(p.numel() for p in vqvae.parameters())
    log["parameters"] = {"stage1": stage1, "stage2": sum(p.numel() for p in maskgit.parameters()) - stage1}
    return maskgit, log


def train_tsvq(store: WindowStore, factor: float, out: Path, n: int, seed: int) -> tuple[np.ndarray, dict]:
    """The demo's codec and diffusion prior (with the denoiser results/anchors.json was measured with) trained
    ``factor`` times as long; ``n`` samples drawn as the demo draws."""
    demo = DemoConfig(out=str(out), seed=seed)
    stages = {}
    codec = train_codec(
        CodecStageConfig(
            store=str(store.path),
            model=DEMO_CODEC,
            training=stage_training(demo, "codec", round(factor * demo.codec_steps), LEARNING_RATES["codec"]),
        )
    )
    prior = train_diffusion(
        DiffusionStageConfig(
            store=str(store.path),
            codec=str(codec),
            model=MEASURED_DENOISER,
            **DEMO_DIFFUSION,
            training=stage_training(
                demo, "diffusion", round(factor * demo.diffusion_steps), LEARNING_RATES["diffusion"]
            ),
        )
    )
    for stage in ("codec", "diffusion"):
        summary = json.loads((out / stage / "training_summary.json").read_text())
        stages[stage] = {key: summary[key] for key in ("steps", "seconds", "windows_per_s")} | {
            key: value for key, value in summary.items() if key.startswith("best_")
        }
    sampling = {"sampler": demo.sampler, "steps": demo.sampling_steps}
    started = time.perf_counter()
    output = Pipeline.from_stages(codec, prior).sample(n, "diffusion", seed=seed, progress=False, **sampling)
    return output.signals, {
        "stages": stages,
        "sampling": sampling,
        "samples_per_s": n / (time.perf_counter() - started),
        "factor": factor,
        "folder": str(out),
    }


def saved_samples(out: Path, seed: int, n: int) -> dict[str, np.ndarray]:
    """Every column's samples kept in ``out``. A tsvq column trained before its samples were kept is sampled once
    more from its stages (the same seed: the same draws) and kept."""
    demo = DemoConfig()
    for folder in sorted(out.glob("tsvq-*x")):
        if (folder / "diffusion" / "model").is_dir() and not (out / f"{folder.name}.npy").exists():
            output = Pipeline.from_stages(folder / "codec" / "model", folder / "diffusion" / "model").sample(
                n, "diffusion", seed=seed, progress=False, sampler=demo.sampler, steps=demo.sampling_steps
            )
            np.save(out / f"{folder.name}.npy", output.signals)
    return {
        path.stem: np.load(path) for path in sorted(out.glob("*.npy")) if path.stem.startswith(("timevqvae-", "tsvq-"))
    }


@torch.no_grad()
def sample_anchor(maskgit: MaskGIT, n: int, seed: int, batch: int = 200) -> np.ndarray:
    """``n`` windows (n, C, L) in the scaled units: iterative decoding of LF then HF tokens, both decoded and summed."""
    torch.manual_seed(seed)
    maskgit.eval()
    out = []
    for start in range(0, n, batch):
        tokens_l, tokens_h = maskgit.iterative_decoding(num_samples=min(batch, n - start), mode="cosine")
        signal = maskgit.decode_token_ind_to_timeseries(tokens_l, "lf") + maskgit.decode_token_ind_to_timeseries(
            tokens_h, "hf"
        )
        out.append(signal.numpy())
    return np.concatenate(out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--demo", default="runs/demo", help="the demo's folder: its store, pipeline and training times")
    parser.add_argument("--out", default="runs/benchmarks/anchors")
    parser.add_argument(
        "--budgets",
        nargs="*",
        default=["same", "5x"],
        choices=["same", "5x", "epochs"],
        help="TimeVQVAE's budgets (none: score only the tsvq columns)",
    )
    parser.add_argument(
        "--tsvq-factors",
        type=float,
        nargs="*",
        default=[5.0],
        help="train tsvq's codec and diffusion prior for these multiples of the demo's steps",
    )
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--seed", type=int, default=0, help="training and sampling seed of the anchor and of the tsvq columns"
    )
    parser.add_argument(
        "--stage-seconds",
        type=float,
        nargs=2,
        default=None,
        metavar=("STAGE1", "STAGE2"),
        help="the 'same' budget in seconds instead of the demo's measured training times",
    )
    args = parser.parse_args()
    demo, out = Path(args.demo), Path(args.out)
    store = WindowStore(demo / "store")
    train = store.load("train").astype(np.float32)  # (n, L, C), physical units
    mean, std = float(train.mean()), float(train.std())
    scaled = np.ascontiguousarray(((train - mean) / std).transpose(0, 2, 1))
    codec_s, prior_s = args.stage_seconds or demo_seconds(demo)
    budgets = {
        "same": Budget("same", codec_s, prior_s),
        "5x": Budget("5x", 5 * codec_s, 5 * prior_s),
        "epochs": Budget(
            "epochs", stage1_epochs=RECOMMENDED_EPOCHS["stage1"], stage2_epochs=RECOMMENDED_EPOCHS["stage2"]
        ),
    }
    runs = {}
    for name in args.budgets:
        print(f"TimeVQVAE, budget '{name}' ({len(train)} training windows)", flush=True)
        resumable = out / f"timevqvae-{name}" / "checkpoints" if budgets[name].stage1_epochs is not None else None
        maskgit, log = train_anchor(scaled, budgets[name], args.seed, resumable)
        started = time.perf_counter()
        generated = sample_anchor(maskgit, args.n * args.seeds, args.seed)
        log["samples_per_s"] = len(generated) / (time.perf_counter() - started)
        out.mkdir(parents=True, exist_ok=True)
        np.save(out / f"timevqvae-{name}.npy", (generated.transpose(0, 2, 1) * std + mean).astype(np.float32))
        runs[f"timevqvae-{name}"] = log | {"budget": vars(budgets[name])}
        print(json.dumps(runs[f"timevqvae-{name}"]), flush=True)
    for factor in args.tsvq_factors:
        name = f"tsvq-{factor:g}x"
        print(f"tsvq, {factor:g}x the demo's steps", flush=True)
        generated, runs[name] = train_tsvq(store, factor, out / name, args.n * args.seeds, args.seed)
        out.mkdir(parents=True, exist_ok=True)
        np.save(out / f"{name}.npy", generated)
        print(json.dumps(runs[name]), flush=True)
    samples = saved_samples(out, args.seed, args.n * args.seeds)
    print(f"scoring {', '.join(samples)} beside the demo's priors", flush=True)
    pipeline = Pipeline.from_pretrained(demo / "pipeline")
    config = EvalConfig(
        n=args.n, seeds=args.seeds, prior="diffusion", priors=["wavenet"], sampling={"steps": 20, "sampler": "dpm"}
    )
    report = evaluate(store, out / "report", config, pipeline=pipeline, samples=samples)
    print(format_table(report))
    generators = report["generation"]["generators"]
    figures = {
        name: {"figures": g["figures"], "memorisation_ratio": g.get("memorisation_ratio")}
        for name, g in generators.items()
    }
    results_file = RESULTS / "anchors.json"
    earlier_runs = json.loads(results_file.read_text())["runs"] if results_file.exists() else {}
    runs = {name: log for name, log in earlier_runs.items() if name in samples} | runs
    results = {
        "store": str(store.path),
        "pipeline": str(demo / "pipeline"),
        "n": args.n,
        "seeds": args.seeds,
        "anchor": {
            "package": "timevqvae 1.0.1",
            "stage1": STAGE1,
            "stage2": STAGE2,
            "prior_l": PRIOR_L,
            "prior_h": PRIOR_H,
            "optimiser": OPTIMISER,
            "batch": BATCH,
            "scaling": {"mean": mean, "std": std},
        },
        "runs": runs,
        "figures": figures,
        "report": str(out / "report"),
    }
    print("saved", save("anchors", results))


if __name__ == "__main__":
    main()
