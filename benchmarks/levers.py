"""Generation-quality levers of the priors, one change per row, on the demo's data and budget (issue 24).

    make demo    # the codec and window store every row reuses
    .venv/bin/python -m benchmarks.levers [--only transformer zero-snr] [--steps 1200] [--n 200] [--seeds 3]
        [--train-seed 0 --out runs/benchmarks/levers] [--results levers]

Every row trains a diffusion prior over the demo's codec on the demo's 407 training windows with the demo's
training settings (batch 32, learning rate 1e-3, ``--steps`` steps, training seed ``--train-seed``) and changes one
thing: the denoiser (a DiT-style transformer against the UNet), its size, the training length, the noise schedule,
the prediction target and loss weighting (Min-SNR), the latent normalisation, the codec's training loss (a row
with its own codec trains that first, at the demo's codec steps); or, reusing the baseline prior, a
sampling/decoding choice (decoding unsnapped vectors, a low-pass at decode, DDPM with 1000 steps, DPM-Solver++ with
50 steps or in its SDE form). The ``maskgit`` rows train the MaskGIT prior over the code indices instead (same codec,
windows, batch and steps; learning rate 2e-3, weight decay 0.01) and vary its decoding passes and confidence noise.
Each row draws ``--n`` x ``--seeds`` windows; one ``tsvq eval`` report scores all rows side by side against the
held-out windows and the real-vs-real floor, each seed on its own share (mean +- std over the seeds). Trained rows
are resumed, not retrained, when run again (so another ``--train-seed`` needs another ``--out``); rows run with
``--only`` replace those rows of ``results/<--results>.json`` and keep the others when the retrained baseline scores
exactly as the kept one did (the floor and the baseline are then the same draws at the same seeds), else they are
saved beside their own baseline in ``results/<--results>-<date>.json``.

Writes ``results/levers.json`` (per row: every figure's mean and std, its ratio to the floor, training time and
speed) and prints the table that ``benchmarks/README.md`` shows.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmarks.common import MEASURED_DENOISER, RESULTS, save
from tsvq.codec import VQVAE
from tsvq.codec.metrics import prdn
from tsvq.data import WindowStore
from tsvq.data.preprocess import Preprocessing, bandpass
from tsvq.demo import DEMO_CODEC, LEARNING_RATES, DemoConfig, stage_training
from tsvq.evaluation.generation import mean_welch_psd, psd_distance_db
from tsvq.evaluation.report import EvalConfig, evaluate
from tsvq.pipeline import Pipeline
from tsvq.training.codec import CodecStageConfig, train_codec
from tsvq.training.diffusion import DiffusionStageConfig, train_diffusion
from tsvq.training.maskgit import MaskGITStageConfig, train_maskgit

TRANSFORMER = {"architecture": "transformer", "width": 128, "depth": 4, "heads": 4}  # 1.26 M parameters (UNet: 1.15 M)
MASKGIT_LEARNING_RATE, MASKGIT_WEIGHT_DECAY = 2e-3, 0.01


@dataclass
class Lever:
    name: str
    what: str
    stage: dict = field(default_factory=dict)  # DiffusionStageConfig fields changed (model: merged into the demo's)
    steps_factor: float = 1.0  # training length relative to --steps
    reuse: str | None = None  # sample this row from another row's prior (a sampling-side lever)
    sampling: dict = field(default_factory=dict)
    snap: bool = True
    lowpass_hz: float | None = None
    prior: str = "diffusion"  # or "maskgit": stage (model) and sampling then configure a MaskGIT prior
    codec: dict = field(
        default_factory=dict
    )  # codec model fields changed: the row trains its own codec first (demo steps)


LEVERS = [
    Lever(
        "baseline",
        "the demo's prior until Min-SNR became its loss: UNet [64, 128] x 1 layer, cosine schedule, "
        "v-prediction with the plain (unweighted) error, per-dimension standardised latents, DPM-Solver++ "
        "20 steps, snapped to the codebook",
    ),
    Lever(
        "transformer",
        "DiT-style transformer denoiser (width 128, 4 adaLN-zero blocks, 4 heads) instead of the UNet",
        stage={"model": TRANSFORMER},
    ),
    Lever(
        "unet-attention",
        "UNet with 4-head self-attention after its lowest level (the DDPM UNet's choice)",
        stage={"model": {"attention_heads": 4}},
    ),
    Lever(
        "unet-large",
        "UNet [64, 128, 256] x 2 layers (5x the parameters)",
        stage={"model": {"block_out_channels": [64, 128, 256], "layers_per_block": 2}},
    ),
    Lever("longer", "2.5x the training steps", steps_factor=2.5),
    Lever("transformer-longer", "transformer, 2.5x the training steps", stage={"model": TRANSFORMER}, steps_factor=2.5),
    Lever(
        "zero-snr-linear",
        "linear beta schedule rescaled to zero terminal SNR (instead of the cosine schedule)",
        stage={"scheduler": {"beta_schedule": "linear", "rescale_betas_zero_snr": True}},
    ),
    Lever("epsilon", "epsilon prediction instead of v-prediction", stage={"scheduler": {"prediction_type": "epsilon"}}),
    Lever(
        "min-snr-5",
        "Min-SNR-5 loss weights (Hang et al. 2023) instead of the plain v-prediction error (the demo's "
        "prior since 2026-12-03)",
        stage={"snr_gamma": 5.0},
    ),
    Lever(
        "global-norm",
        "latents standardised with one mean and spread (instead of per dimension)",
        stage={"latent_normalisation": "global"},
    ),
    Lever(
        "unsnapped",
        "the baseline's samples decoded as drawn, not snapped to the codebook",
        reuse="baseline",
        snap=False,
    ),
    Lever(
        "lowpass-decode",
        "the baseline's decoded samples low-passed at the store's 40 Hz band edge",
        reuse="baseline",
        lowpass_hz=40.0,
    ),
    Lever(
        "ddpm-1000",
        "the baseline sampled by DDPM with 1000 steps",
        reuse="baseline",
        sampling={"sampler": "ddpm", "steps": 1000},
    ),
    Lever(
        "dpm-50", "the baseline sampled by DPM-Solver++ (3M) with 50 steps", reuse="baseline", sampling={"steps": 50}
    ),
    Lever(
        "dpm-sde-20",
        "the baseline sampled by DPM-Solver++ 2M SDE with 20 steps",
        reuse="baseline",
        sampling={"sampler": "dpm-sde", "steps": 20},
    ),
    Lever(
        "dpm-sde-50",
        "the baseline sampled by DPM-Solver++ 2M SDE with 50 steps",
        reuse="baseline",
        sampling={"sampler": "dpm-sde", "steps": 50},
    ),
    Lever(
        "codec-spectral",
        "the baseline prior over a codec trained with a multi-resolution STFT loss (weight 0.01) "
        "beside its squared error, against the decoder's out-of-band noise",
        codec={"spectral_loss_weight": 0.01},
    ),
    Lever(
        "maskgit",
        "MaskGIT prior over the code indices (width 128, 4 layers, 4 heads), 12 decoding passes",
        prior="maskgit",
    ),
    Lever(
        "maskgit-24-passes",
        "the MaskGIT prior decoded in 24 passes",
        reuse="maskgit",
        prior="maskgit",
        sampling={"steps": 24},
    ),
    Lever(
        "maskgit-low-noise",
        "the MaskGIT prior with confidence noise 1 (instead of 4.5)",
        reuse="maskgit",
        prior="maskgit",
        sampling={"confidence_noise": 1.0},
    ),
    Lever("maskgit-longer", "the MaskGIT prior, 2.5x the training steps", prior="maskgit", steps_factor=2.5),
]


def train_row_codec(lever: Lever, args) -> tuple[Path, dict]:
    """A codec row's own codec: the demo's codec, steps and settings with the row's changes (resumed if there)."""
    demo = DemoConfig(out=args.out, seed=args.train_seed)
    training = stage_training(demo, f"{lever.name}-codec", demo.codec_steps, LEARNING_RATES["codec"])
    training.progress = not args.quiet
    folder = train_codec(CodecStageConfig(store=args.store, model=DEMO_CODEC | lever.codec, training=training))
    return folder, json.loads((Path(training.output_dir) / "training_summary.json").read_text())


def codec_fidelity(codec: Path, store: WindowStore) -> dict:
    """A codec on the held-out windows: PRDN, and its reconstructions' spectrum against the real one's (PSD distance,
    and the power 5 Hz past the store's low-pass edge, where only the decoder's noise should be)."""
    test = store.load("test").astype(np.float32)
    model = VQVAE.from_pretrained(codec).eval()
    decoded = model.decode_codes(model.encode_windows(test))
    figures = {
        "windows": len(test),
        "prdn_percent": float(prdn(test, decoded).mean()),
        "psd_distance_db": psd_distance_db(decoded, test, store.sampling_rate_hz),
    }
    lowpass = Preprocessing.from_store_manifest(store.manifest).lowpass_hz
    if lowpass:
        frequencies, real_power = mean_welch_psd(test, store.sampling_rate_hz)
        decoded_power = mean_welch_psd(decoded, store.sampling_rate_hz)[1]
        above = frequencies > lowpass + 5
        figures[f"power_above_{lowpass + 5:g}_hz_vs_real"] = float(decoded_power[above].sum() / real_power[above].sum())
    return figures


def train_row(lever: Lever, args, codec: Path) -> tuple[Path, dict]:
    """The row's prior folder (trained, or resumed if already there) and its training summary."""
    steps = int(args.steps * lever.steps_factor)
    out = Path(args.out) / lever.name
    stage = dict(lever.stage)
    demo = DemoConfig(out=args.out, seed=args.train_seed)
    if lever.prior == "maskgit":
        training = stage_training(demo, lever.name, steps, MASKGIT_LEARNING_RATE)
        training.weight_decay = MASKGIT_WEIGHT_DECAY
        training.progress = not args.quiet
        prior = train_maskgit(MaskGITStageConfig(store=args.store, codec=str(codec), training=training, **stage))
    else:
        training = stage_training(demo, lever.name, steps, LEARNING_RATES["diffusion"])
        training.progress = not args.quiet
        model = MEASURED_DENOISER | stage.pop("model", {})
        prior = train_diffusion(
            DiffusionStageConfig(store=args.store, codec=str(codec), model=model, training=training, **stage)
        )
    summary = json.loads((out / "training_summary.json").read_text())
    return prior, summary


def draw(lever: Lever, prior: Path, codec: Path, store: WindowStore, args) -> tuple[np.ndarray, dict]:
    pipeline = Pipeline.from_stages(codec, prior)
    if lever.prior == "maskgit":
        sampling, options = {"steps": 12} | lever.sampling, {}
    else:
        sampling, options = {"sampler": "dpm", "steps": 20} | lever.sampling, {"snap": lever.snap}
    started = time.perf_counter()
    output = pipeline.sample(args.n * args.seeds, lever.prior, seed=0, progress=False, **options, **sampling)
    seconds = time.perf_counter() - started
    signals = output.signals
    if lever.lowpass_hz:
        along_time = np.moveaxis(signals, 1, 0)  # bandpass filters axis 0
        signals = np.moveaxis(bandpass(along_time, store.sampling_rate_hz, None, lever.lowpass_hz), 0, 1).astype(
            np.float32
        )
    return signals, {
        "sampling": sampling,
        "snap": lever.snap if lever.prior == "diffusion" else None,
        "lowpass_hz": lever.lowpass_hz,
        "samples_per_s": len(signals) / seconds,
        "snap_distance_relative": output.info.get("snap_distance_relative"),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--pipeline",
        default="runs/demo/pipeline",
        help="its codec is the codec of every row but those that train their own",
    )
    parser.add_argument("--store", default="runs/demo/store")
    parser.add_argument("--out", default="runs/benchmarks/levers")
    parser.add_argument("--steps", type=int, default=1200, help="training steps of a row (the demo's prior: 1200)")
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--only", nargs="+", default=None, help="rows to run (baseline always runs)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument(
        "--train-seed",
        type=int,
        default=0,
        help="training seed of every row (another seed: another --out too, or the rows trained there resume)",
    )
    parser.add_argument(
        "--results", default="levers", help="results/<name>.json to write (and, with --only, to add rows to)"
    )
    args = parser.parse_args()
    codec = Path(args.pipeline) / "codec"
    store = WindowStore(args.store)
    levers = [lever for lever in LEVERS if args.only is None or lever.name in args.only or lever.name == "baseline"]
    unknown = set(args.only or []) - {lever.name for lever in LEVERS}
    if unknown:
        parser.error(f"unknown rows {sorted(unknown)}; known: {[lever.name for lever in LEVERS]}")
    priors: dict[str, Path] = {}
    codecs: dict[str, Path] = {}  # each row's codec: the demo's, or the row's own
    rows: dict[str, dict] = {}
    samples: dict[str, np.ndarray] = {}
    for lever in levers:
        row = {"what": lever.what}
        codecs[lever.name] = codecs[lever.reuse] if lever.reuse else codec
        if lever.codec:
            codecs[lever.name], codec_summary = train_row_codec(lever, args)
            row |= {
                "codec": lever.codec,
                "codec_training_seconds": codec_summary["seconds"],
                "codec_best_prdn": codec_summary["best_prdn"],
                "codec_held_out": codec_fidelity(codecs[lever.name], store),
                "demo_codec_held_out": codec_fidelity(codec, store),
            }
        if lever.reuse is None:
            priors[lever.name], summary = train_row(lever, args, codecs[lever.name])
            row |= {
                "training_steps": summary["steps"],
                "training_seconds": summary["seconds"],
                "training_windows_per_s": summary["windows_per_s"],
                "stage": lever.stage,
                "prior": lever.prior,
                **{key: value for key, value in summary.items() if key.startswith("best_")},
            }
        samples[lever.name], info = draw(lever, priors[lever.reuse or lever.name], codecs[lever.name], store, args)
        rows[lever.name] = row | info
        print(f"{lever.name}: {info['samples_per_s']:.1f} samples/s", flush=True)
    report = evaluate(
        store,
        Path(args.out) / "report",
        EvalConfig(n=args.n, seeds=args.seeds, baselines=["train_copies"]),
        samples=samples,
        progress=not args.quiet,
    )
    generators = report["generation"]["generators"]
    floor = generators["floor"]["figures"]
    for name, row in rows.items():
        scored = generators[name]
        row["figures"] = {
            figure: value | {"vs_floor": value["mean"] / floor[figure]["mean"] if floor[figure]["mean"] else None}
            for figure, value in scored["figures"].items()
        }
        row["memorisation_ratio"] = scored.get("memorisation_ratio")
    results_name = args.results
    if args.only:  # keep the rows not run this time, in the table's order
        kept_file = RESULTS / f"{results_name}.json"
        kept = json.loads(kept_file.read_text())["rows"] if kept_file.exists() else {}
        if not baseline_reproduced(kept.get("baseline"), rows["baseline"], results_name):
            results_name, kept = f"{results_name}-{time.strftime('%Y-%m-%d')}", {}
        rows = {
            lever.name: rows.get(lever.name, kept.get(lever.name))
            for lever in LEVERS
            if lever.name in rows or lever.name in kept
        }
    results = {
        "store": args.store,
        "codec": str(codec),
        "steps": args.steps,
        "train_seed": args.train_seed,
        "n": args.n,
        "seeds": args.seeds,
        "floor": floor,
        "train_copies": generators["train_copies"]["figures"],
        "informative": report["generation"]["informative"],
        "rows": rows,
        "report": str(Path(args.out) / "report"),
    }
    print(markdown_table(results))
    print("saved", save(results_name, results))


def baseline_reproduced(kept: dict | None, baseline: dict, name: str) -> bool:
    """Rows added with ``--only`` are read against the kept rows' baseline, so it must score as it did. A retrained
    baseline can differ (another machine's kernels round differently, or the evaluation changed since); then this
    run's rows go to a file of their own with their own baseline, and the kept file stays as it was."""
    if kept is None or kept["figures"] == baseline["figures"]:
        return True
    changed = [
        figure
        for figure in baseline["figures"].keys() | kept["figures"].keys()
        if kept["figures"].get(figure) != baseline["figures"].get(figure)
    ]
    print(
        f"warning: the baseline does not reproduce the one in results/{name}.json ({len(changed)} figures differ, "
        f"e.g. {changed[0]}): this run's rows are saved on their own, beside their own baseline",
        file=sys.stderr,
    )
    return False


TABLE_FIGURES = [
    ("frechet_distance", "Frechet", "{:.0f}"),
    ("discriminative_score", "discr.", "{:.3f}"),
    ("psd_distance_db", "PSD dB", "{:.2f}"),
    ("heart_rate_wasserstein_bpm", "HR bpm", "{:.1f}"),
    ("rr_wasserstein_ms", "RR ms", "{:.0f}"),
    ("qtc_wasserstein_ms", "QTc ms", "{:.0f}"),
    ("average_beat_rms", "avg beat mV", "{:.3f}"),
]


def markdown_table(results: dict) -> str:
    """One row per lever: mean +- std of the headline figures, the floor's row first."""

    def cell(value: dict | None, fmt: str) -> str:
        return "-" if value is None else f"{fmt.format(value['mean'])} +- {fmt.format(value['std'])}"

    head = "| row | " + " | ".join(label for _, label, _ in TABLE_FIGURES) + " | memor. | train s |"
    lines = [head, "|" + "---|" * (len(TABLE_FIGURES) + 3)]
    lines.append(
        "| floor (held-out vs held-out) | "
        + " | ".join(cell(results["floor"].get(f), fmt) for f, _, fmt in TABLE_FIGURES)
        + " | | |"
    )
    for name, row in results["rows"].items():
        memor = f"{row['memorisation_ratio']['mean']:.2f}" if row.get("memorisation_ratio") else "-"
        seconds = f"{row['training_seconds']:.0f}" if "training_seconds" in row else "(reused)"
        lines.append(
            f"| {name} | "
            + " | ".join(cell(row["figures"].get(f), fmt) for f, _, fmt in TABLE_FIGURES)
            + f" | {memor} | {seconds} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
