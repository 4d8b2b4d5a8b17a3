"""Every question the benchmarks answer, declared as data: the results file that answers it, the one command that
rewrites that file whole, what must exist first, and how to read its headline figure.

    python -m benchmarks.tables     # benchmarks/README.md's tables and the README's results table, from the files

A question whose answer comes from ``tsvq`` commands (train, assemble, eval) lists them in ``runs``;
``python -m benchmarks.eval_summary NAME`` runs them in order and condenses the evaluation report into the file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

MITBIH_DIFFUSION_CPU = (
    "tsvq train diffusion --config recipes/mitbih/diffusion.yaml --store runs/mitbih/store "
    "--codec tsvq/pretrained/ecg-single-lead/codec --set training.max_steps={steps} --set training.batch_size=32 "
    "--set training.learning_rate=1.0e-3 --set training.warmup_steps=100 {model} "
    "--set training.output_dir=runs/mitbih/{out}"
)
SMALL_UNET = "--set 'model.block_out_channels=[64, 128]' --set model.layers_per_block=1"
MITBIH_STORE = "tsvq prepare --config recipes/mitbih/prepare.yaml --source ../shared/data/mitdb --out runs/mitbih/store"
SHIPPED_CODEC = "tsvq/pretrained/ecg-single-lead/codec"


def _mean(value) -> float:
    return value["mean"] if isinstance(value, dict) else value


def generators(generation: dict) -> dict:
    """The scored generators of a results file's generation section, whichever of its two layouts it has."""
    return generation.get("generators", generation)


def model_against_floor(data: dict, model: str | None = None) -> str:
    """Frechet distance and discriminative score of the prior, beside the floor (held-out real against real)."""
    scored = generators(data["generation"])
    skip = {"floor", "train_copies", "train_windows", "train_decoded", "phase_randomised", "autoregressive"}
    model = model or next(name for name in scored if name not in skip | {"gaussian"})
    figures, floor = scored[model]["figures"], scored["floor"]["figures"]
    return (
        f"{model}: Frechet {_mean(figures['frechet_distance']):.0f} (floor {_mean(floor['frechet_distance']):.0f}), "
        f"discriminative {_mean(figures['discriminative_score']):.3f} "
        f"(floor {_mean(floor['discriminative_score']):.3f})"
    )


def rate_distortion(data: dict) -> str:
    s = data["summary"]
    at_rates = [
        f"{float(rate):g}: {point['prdn']:.2f}% (wavelet {point['wavelet_prdn']:.2f}%)"
        for rate, point in s.get("tsvq_at_rate", {}).items()
        if point is not None
    ]
    return (
        f"tsvq {s['tsvq']['bits_per_second']:.0f} bit/s, PRDN {s['tsvq']['prdn']:.2f}%; "
        f"wavelet coder at that rate {s['wavelet_at_tsvq_rate']['prdn']:.2f}%"
        + (f"; with a detail layer at bit/s {', '.join(at_rates)}" if at_rates else "")
    )


def twelve_lead(data: dict) -> str:
    s = data["summary"]
    rows = []
    for q in ("1", "3", str(len(s["tsvq"]))):
        ours, theirs = s["tsvq"][q], s["wavelet_at_tsvq_rate"][q]
        rows.append(f"{ours['bits_per_second']:.0f} bit/s: tsvq {ours['prdn']:.1f}%, wavelet {theirs['prdn']:.1f}%")
    at_rates = [
        f"{float(rate):g}: {point['prdn']:.1f}% (wavelet {s['at_rate'][rate]['wavelet']:.1f}%)"
        for rate, point in s.get("tsvq_at_rate", {}).items()
    ]
    detail = f"; `compress --bitrate` (stages + detail layer) {', '.join(at_rates)}" if at_rates else ""
    return "; ".join(rows) + detail


def whole_record(data: dict) -> str:
    s = data["summary"]
    return (
        f"PRDN {s['mean_prdn']:.2f}% at {s['mean_bits_per_second']:.0f} bit/s (CR {s['compression_ratio_whole']:.1f}); "
        f"compress {s['compress_real_time_factor']:.0f}x real time"
    )


def ptbxl_lead_ii(data: dict) -> str:
    s = data["summary"]
    return (
        f"{s['ecgs']} ECGs: PRDN {s['mean_prdn']:.2f}% (median {s['median_prdn']:.2f}%, worst {s['worst_prdn']:.2f}%)"
    )


def code_search(data: dict) -> str:
    s = data["summary"]
    return (
        f"plain {s['0x1']['mean_prdn']:.2f}% ({s['0x1']['encode_real_time_factor']:.0f}x real time); "
        f"8 x 2 {s['8x2']['mean_prdn']:.2f}% ({s['8x2']['encode_real_time_factor']:.0f}x)"
    )


def prepare_speed(data: dict) -> str:
    parts = []
    for name, scenario in data["scenarios"].items():
        rates = [run["records_per_s"] for run in scenario["runs"].values()]
        parts.append(f"{name} {rates[0]:.1f} -> {rates[-1]:.1f} records/s")
    return "; ".join(parts) + " (1 -> 2 workers), stores identical"


def repair_leaders(by: dict) -> tuple[str, str]:
    """Of a gap or forecast summary's baselines (every method but tsvq's), the one that places beats best (R-peak
    F1) and the one with the least squared error (mean PRDN)."""
    baselines = [m for m in by if not m.startswith("tsvq")]
    return max(baselines, key=lambda m: by[m]["r_peak_f1"]), min(baselines, key=lambda m: by[m]["prdn_mean"])


def _repair_line(by: dict) -> str:
    """A draw's R-peak F1 beside the baseline that places beats best; the draws' mean PRDN beside the lowest."""
    timing, level = repair_leaders(by)
    line = f"R-peak F1 {by['tsvq']['r_peak_f1']:.2f} ({timing} {by[timing]['r_peak_f1']:.2f})"
    if "tsvq_mean" in by:
        line += f", PRDN of the draws' mean {by['tsvq_mean']['prdn_mean']:.0f}% ({level} {by[level]['prdn_mean']:.0f}%)"
    return line


def gap_filling(data: dict) -> str:
    return "; ".join(f"{float(gap):g} s: {_repair_line(by)}" for gap, by in data["by_gap"].items())


def gap_timing(data: dict) -> str:
    """The plan's R-peak F1 beside the oracle that knows the beat count, per gap length (all gaps; normal beats)."""
    parts = []
    for gap, by in data["by_gap"].items():
        normal = data["by_rhythm_around_gap"][gap]["N"]
        parts.append(
            f"{float(gap):g} s: plan {by['tsvq_plan']['r_peak_f1']:.2f}, knowing the beat count "
            f"{by['knowing_the_count']['r_peak_f1']:.2f} (normal beats around: {normal['tsvq_plan']['r_peak_f1']:.2f}, "
            f"{normal['knowing_the_count']['r_peak_f1']:.2f})"
        )
    return "; ".join(parts)


def forecasting(data: dict) -> str:
    return "; ".join(f"{float(h):g} s: {_repair_line(by)}" for h, by in data["by_horizon"].items())


def denoising(data: dict) -> str:
    parts = []
    for kind, by_snr in data["by_noise"].items():
        if kind == "clean" or "6" not in by_snr:
            continue
        by = by_snr["6"]
        best = max((m for m in by if not m.startswith("tsvq") and m != "input"), key=lambda m: by[m]["snr_db"])
        parts.append(f"{kind} {by['tsvq']['snr_db']:.1f} dB ({best} {by[best]['snr_db']:.1f})")
    return "at 6 dB in, SNR out: " + "; ".join(parts)


def generation_by_lead(data: dict) -> str:
    parts = []
    for database, leads in data["per_lead"].items():
        for lead, scored in leads.items():
            t = scored["targets"]
            parts.append(
                f"{database} {lead}: discriminative {t['discriminative_score']['model']:.2f}, Frechet "
                f"{t['frechet_distance']['ratio']:.1f}x the floor"
            )
    tstr = data["leads_together"]["label_classification"]
    if tstr:
        scores = next(iter(tstr.values()))
        ratio = scores["train_synthetic_test_real"]["macro_f1"] / scores["train_real_test_real"]["macro_f1"]
        parts.append(f"lead classifier TSTR/TRTR macro-F1 {ratio:.2f}")
    return "; ".join(parts)


def store_at_scale(data: dict) -> str:
    epoch, prepare = data["epoch"], data["prepare"]["2"]
    return (
        f"{data['store']['windows']:,} windows ({data['store']['gb']:.1f} GB): prepare peak "
        f"{prepare['peak_resident_mb']:.0f} MB, an epoch's peak {epoch['peak_resident_mb']:.0f} MB (after imports "
        f"{epoch['resident_after_imports_mb']:.0f}); loader {epoch['windows_per_s']:,.0f} windows/s, "
        f"{data['loader_over_codec']:,.0f}x what the codec consumes on this CPU"
    )


def inter_patient_codec(data: dict) -> str:
    rows = next(iter(data["runs"].values()))["results"]
    return "; ".join(f"{r['bits_per_second']:g} bit/s: {r['mean_prdn_over_patients']:.2f}%" for r in rows)


def held_out_codec(data: dict) -> str:
    rows = data["codec_results"]
    codec = "; ".join(f"{r['bits_per_second']:g} bit/s: {r['mean_prdn_over_units']:.2f}%" for r in rows)
    return f"codec {codec}; {model_against_floor(data)}"


def unseen_patient_codec(data: dict) -> str:
    return ", ".join(f"{name} {run['test_prdn']:.1f}%" for name, run in data["runs"].items())


def levers(data: dict) -> str:
    rows, floor = data["rows"], data["floor"]
    best = min(rows, key=lambda name: _mean(rows[name]["figures"]["frechet_distance"]))
    return (
        f"{len(rows)} rows; Frechet: baseline {_mean(rows['baseline']['figures']['frechet_distance']):.0f}, "
        f"best ({best}) {_mean(rows[best]['figures']['frechet_distance']):.0f}, "
        f"floor {_mean(floor['frechet_distance']):.0f}"
    )


def anchors(data: dict) -> str:
    figures = data["figures"]
    frechet = {name: _mean(figures[name]["figures"]["frechet_distance"]) for name in figures}
    return (
        f"Frechet: tsvq 5x {frechet['tsvq-5x']:.0f}, TimeVQVAE recommended budget {frechet['timevqvae-epochs']:.0f}, "
        f"same budget: tsvq {frechet['diffusion']:.0f} vs TimeVQVAE {frechet['timevqvae-same']:.0f} "
        f"(floor {frechet['floor']:.0f})"
    )


def samplers(data: dict) -> str:
    rows = {f"{r['sampler']} {r['steps']}": r for r in data["runs"]}
    return (
        f"Frechet: DPM-Solver++ 20 {rows['dpm 20']['frechet_distance']:.0f} ({rows['dpm 20']['samples_per_s']:.0f}/s), "
        f"DDPM 1000 {rows['ddpm 1000']['frechet_distance']:.0f} ({rows['ddpm 1000']['samples_per_s']:.1f}/s), "
        f"floor {data['floor']['frechet_distance']:.0f}"
    )


def wavenet_speed(data: dict) -> str:
    longest = max((r for r in data["speed"] if r["batch"] == 1), key=lambda r: r["latent_length"])
    prior = data["prior"]
    return (
        f"cached {longest['speedup']:.1f}x naive at L' = {longest['latent_length']} (batch 1); "
        f"{prior['val_bits_per_code']:.2f} bits/code against unigram {prior['unigram_bits_per_code']:.2f}"
    )


def rhythm(data: dict) -> str:
    sets = data["sets"]
    return "RR-irregularity median: " + ", ".join(
        f"{name} {sets[name]['rr_irregularity_quantiles']['0.5']:.3f}" for name in sets
    )


def tstr(data: dict) -> str:
    labelled = data.get("label_classification") or data["generation"]["label_classification"]
    section = next(iter(labelled.values()))
    synthetic = section["train_synthetic_test_real"]["macro_f1"]
    real = section["train_real_test_real"]["macro_f1"]
    return f"{model_against_floor(data)}; TSTR/TRTR macro-F1 {synthetic:.3f} / {real:.3f}"


def eeg(data: dict) -> str:
    s = data["codec"]["summary"]
    prior = data["generation"]["wavenet"]  # the recipe's better prior
    seizure = prior.get("seizure_vs_rest", {})
    worst_band = max((v, k) for k, v in prior["ratio_to_floor"].items() if k.endswith("_power_wasserstein"))
    return (
        f"codec {s['tsvq']['bits_per_second']:.0f} bit/s PRDN {s['tsvq']['prdn']:.1f}% (wavelet coder at that rate "
        f"{s['wavelet_at_tsvq_rate']['prdn']:.1f}%); WaveNet seizure TSTR/TRTR "
        f"{seizure.get('ratio', float('nan')):.2f}x, band powers within {worst_band[0]:.1f}x the floor"
    )


@dataclass(frozen=True)
class Question:
    name: str  # results/<name>.json
    what: str
    command: str  # the one command that rewrites the file whole
    headline: Callable[[dict], str]
    needs: str = ""  # what must exist first
    runs: tuple[str, ...] = field(default=())  # eval-derived: the tsvq commands eval_summary runs


def _eval(name: str, what: str, runs: list[str], headline=model_against_floor, needs: str = "") -> Question:
    return Question(name, what, f"python -m benchmarks.eval_summary {name}", headline, needs, tuple(runs))


QUESTIONS = [
    # compression
    Question(
        "rate-distortion-ds2",
        "Shipped pipeline's files on the 22 MIT-BIH DS2 records (never seen) beside a wavelet coder",
        "python -m benchmarks.rate_distortion",
        rate_distortion,
        "../shared/data/mitdb",
    ),
    Question(
        "rate-distortion-ptbxl-fold10",
        "The same on PTB-XL fold 10, lead II (never seen)",
        "python -m benchmarks.rate_distortion --scenario ptbxl-fold10",
        rate_distortion,
        "../shared/data/ptbxl",
    ),
    Question(
        "rate-distortion-ptbxl-12lead",
        "12-lead ECGs of PTB-XL fold 10 coded as I, II, V1-V6 (the rest derived) beside the wavelet coder on the same",
        "python -m benchmarks.twelve_lead_compression",
        twelve_lead,
        "recipes/ptbxl: prepare-8lead.yaml, train codec-8lead.yaml, assemble runs/ptbxl-8lead/pipeline",
    ),
    Question(
        "compress-pretrained-ds2",
        "Whole-record compression of DS2: per beat class, window edges, speed (fixed-width codes)",
        "python -m benchmarks.compress --pipeline ecg-single-lead --results compress-pretrained-ds2",
        whole_record,
        "../shared/data/mitdb",
    ),
    Question(
        "compress-pretrained-ds2-search8",
        "The same with code search (8 candidates)",
        "python -m benchmarks.compress --pipeline ecg-single-lead --search 8 --results compress-pretrained-ds2-search8",
        whole_record,
        "../shared/data/mitdb",
    ),
    Question(
        "pretrained",
        "Shipped pipeline on PTB-XL fold 10 lead II; sizes and encode/decode speed",
        "python -m benchmarks.pretrained --source ../shared/data/ptbxl",
        ptbxl_lead_ii,
        "../shared/data/ptbxl",
    ),
    Question(
        "pretrained-search8",
        "The same with code search (8 candidates)",
        "python -m benchmarks.pretrained --source ../shared/data/ptbxl --search 8 --no-speed --results "
        "pretrained-search8",
        ptbxl_lead_ii,
        "../shared/data/ptbxl",
    ),
    Question(
        "search",
        "What code search buys and costs (candidates x sweeps) on two DS2 records",
        "python -m benchmarks.search --pipeline ecg-single-lead --source ../shared/data/mitdb",
        code_search,
        "../shared/data/mitdb",
    ),
    # codecs trained by the recipes
    Question(
        "mitbih",
        "MIT-BIH codec trained on DS1, on the 22 DS2 patients",
        "python -m benchmarks.mitbih --store runs/mitbih/store --codec runs/mitbih/codec/model",
        inter_patient_codec,
        "recipes/mitbih: prepare + train codec",
    ),
    Question(
        "mitbih-rvq",
        "One residual-VQ codec decoded with 1..4 stages on DS2 (a rate-distortion curve)",
        "python -m benchmarks.mitbih --store runs/mitbih/store --codec runs/mitbih/codec-rvq/model --rd "
        "--results mitbih-rvq",
        inter_patient_codec,
        "recipes/mitbih: prepare + train codec (codec-rvq.yaml)",
    ),
    Question(
        "ptbxl-6k",
        "PTB-XL 12-lead codec (1..4 stages) and superclass-conditional prior on fold 10",
        "python -m benchmarks.ptbxl --rd --report runs/ptbxl/eval --results ptbxl-6k",
        held_out_codec,
        "recipes/ptbxl: every stage, then tsvq eval",
    ),
    Question(
        "ptbxl",
        "The same over the first, 1500-step codec",
        "python -m benchmarks.ptbxl --rd --report runs/ptbxl/eval",
        held_out_codec,
        "recipes/ptbxl with training.max_steps=1500",
    ),
    Question(
        "cinc2017",
        "CinC 2017 handheld lead: codec and rhythm-conditional diffusion prior on held-out recordings",
        "python -m benchmarks.cinc2017 --report runs/cinc2017/eval",
        held_out_codec,
        "recipes/cinc2017: every stage, then tsvq eval",
    ),
    Question(
        "cinc2017-wavenet",
        "CinC 2017 rhythm-conditional WaveNet prior",
        "python -m benchmarks.cinc2017 --report runs/cinc2017/eval-wavenet --results cinc2017-wavenet",
        held_out_codec,
        "recipes/cinc2017: the WaveNet commands",
    ),
    Question(
        "cinc2017-wavenet-top-p-0.9",
        "The same drawn with top_p 0.9",
        "python -m benchmarks.cinc2017 --report runs/cinc2017/eval-wavenet-p09 --results cinc2017-wavenet-top-p-0.9",
        held_out_codec,
        "recipes/cinc2017 WaveNet, tsvq eval --top-p 0.9",
    ),
    Question(
        "cinc2017-wavenet-top-p-0.95",
        "The same drawn with top_p 0.95",
        "python -m benchmarks.cinc2017 --report runs/cinc2017/eval-wavenet-p095 --results cinc2017-wavenet-top-p-0.95",
        held_out_codec,
        "recipes/cinc2017 WaveNet, tsvq eval --top-p 0.95",
    ),
    Question(
        "bidmc",
        "BIDMC PPG: codec (pulse rate kept) and diffusion prior on held-out ICU patients",
        "python -m benchmarks.bidmc --report runs/bidmc/eval",
        held_out_codec,
        "recipes/bidmc: every stage, then tsvq eval",
    ),
    Question(
        "bonn",
        "Bonn EEG: codec on held-out segments per set beside the wavelet coder; priors' EEG figures and seizure TSTR",
        "python -m benchmarks.bonn --report runs/bonn/eval",
        eeg,
        "recipes/bonn: every stage, then tsvq eval (benchmarks/bonn.py's docstring)",
    ),
    Question(
        "codec",
        "Codec on an unseen patient of the shared recordings (record 100): VQ, RVQ and ablations",
        "python -m benchmarks.codec",
        unseen_patient_codec,
        "../shared/data/wfdb",
    ),
    # generation
    _eval(
        "mitbih-conditional-cpu",
        "MIT-BIH DS1 -> DS2 AAMI-conditional diffusion prior, CPU size (3000 steps), drawn with the training label mix",
        [
            MITBIH_STORE,
            MITBIH_DIFFUSION_CPU.format(steps=3000, model=SMALL_UNET, out="diffusion-cpu"),
            f"tsvq assemble --codec {SHIPPED_CODEC} --prior runs/mitbih/diffusion-cpu/model --out "
            "runs/mitbih/pipeline-cpu",
            "tsvq eval --pipeline runs/mitbih/pipeline-cpu --data runs/mitbih/store --n 300 --steps 20 --sampler dpm "
            "--guidance 2 --seeds 3 --out runs/mitbih/eval-conditional",
        ],
        tstr,
    ),
    _eval(
        "mitbih-conditional-cpu-guidance4",
        "The same at guidance 4",
        [
            "tsvq eval --pipeline runs/mitbih/pipeline-cpu --data runs/mitbih/store --n 300 --steps 20 --sampler dpm "
            "--guidance 4 --seeds 3 --out runs/mitbih/eval-conditional-g4"
        ],
        tstr,
        "mitbih-conditional-cpu",
    ),
    _eval(
        "mitbih-conditional-cpu-attention",
        "With self-attention in the UNet",
        [
            MITBIH_DIFFUSION_CPU.format(
                steps=3000, model=SMALL_UNET + " --set model.attention_heads=4", out="diffusion-cpu-attn"
            ),
            f"tsvq assemble --codec {SHIPPED_CODEC} --prior runs/mitbih/diffusion-cpu-attn/model "
            "--out runs/mitbih/pipeline-cpu-attn",
            "tsvq eval --pipeline runs/mitbih/pipeline-cpu-attn --data runs/mitbih/store --n 300 --steps 20 "
            "--sampler dpm --guidance 2 --seeds 3 --out runs/mitbih/eval-conditional-attn",
        ],
        tstr,
        "runs/mitbih/store",
    ),
    _eval(
        "mitbih-conditional-cpu-long",
        "Trained 3x longer (9000 steps)",
        [
            MITBIH_DIFFUSION_CPU.format(steps=9000, model=SMALL_UNET, out="diffusion-cpu-long"),
            f"tsvq assemble --codec {SHIPPED_CODEC} --prior runs/mitbih/diffusion-cpu-long/model "
            "--out runs/mitbih/pipeline-cpu-long",
            "tsvq eval --pipeline runs/mitbih/pipeline-cpu-long --data runs/mitbih/store --n 300 --steps 20 "
            "--sampler dpm --guidance 2 --seeds 3 --out runs/mitbih/eval-conditional-long",
        ],
        tstr,
        "runs/mitbih/store",
    ),
    _eval(
        "mitbih-conditional-cpu-medium",
        "A larger UNet ([128, 256] x 2 layers)",
        [
            MITBIH_DIFFUSION_CPU.format(
                steps=3000,
                model="--set 'model.block_out_channels=[128, 256]' --set model.layers_per_block=2",
                out="diffusion-cpu-medium",
            ),
            f"tsvq assemble --codec {SHIPPED_CODEC} --prior runs/mitbih/diffusion-cpu-medium/model "
            "--out runs/mitbih/pipeline-cpu-medium",
            "tsvq eval --pipeline runs/mitbih/pipeline-cpu-medium --data runs/mitbih/store --n 300 --steps 20 "
            "--sampler dpm --guidance 2 --seeds 3 --baselines --no-references --out "
            "runs/mitbih/eval-conditional-medium",
        ],
        needs="runs/mitbih/store",
    ),
    _eval(
        "mitbih-references",
        "Where the MIT-BIH prior's gap comes from: DS1 windows as they are and through the codec, against DS2",
        [
            f"tsvq assemble --codec {SHIPPED_CODEC} --out runs/mitbih/pipeline-codec-only",
            "tsvq eval --pipeline runs/mitbih/pipeline-codec-only --data runs/mitbih/store --n 300 --seeds 3 "
            "--out runs/mitbih/eval-references",
        ],
        lambda data: model_against_floor(data, "train_windows"),
        "runs/mitbih/store",
    ),
    _eval(
        "mitbih-wavenet-10k",
        "MIT-BIH WaveNet prior trained 10,000 steps, drawn with top_p 0.9, untruncated and top_p 0.95",
        [
            "tsvq train wavenet --config recipes/mitbih/wavenet.yaml --store runs/mitbih/store --codec "
            f"{SHIPPED_CODEC} --set training.max_steps=10000 --set training.output_dir=runs/mitbih/wavenet-cpu-10k",
            f"tsvq assemble --codec {SHIPPED_CODEC} --prior runs/mitbih/wavenet-cpu-10k/model "
            "--out runs/mitbih/pipeline-cpu-wavenet10k",
            "tsvq eval --pipeline runs/mitbih/pipeline-cpu-wavenet10k --data runs/mitbih/store --n 300 --seeds 3 "
            "--top-p 0.9 --no-references --out runs/mitbih/eval-wavenet10k-p09",
        ],
        lambda data: model_against_floor(data, "wavenet_10k_top_p_0.9"),
        "runs/mitbih/store",
    ),
    _eval(
        "bidmc-references",
        "BIDMC: training windows as they are and through the codec, against the held-out floor",
        [
            "tsvq assemble --codec runs/bidmc/pipeline/codec --out runs/bidmc/pipeline-codec-only",
            "tsvq eval --pipeline runs/bidmc/pipeline-codec-only --data runs/bidmc/store --n 300 --seeds 3 --baselines "
            "--out runs/bidmc/eval-references",
        ],
        lambda data: model_against_floor(data, "train_windows"),
        "recipes/bidmc",
    ),
    _eval(
        "cinc2017-references",
        "CinC 2017: training windows as they are and through the codec, against the held-out floor",
        [
            "tsvq assemble --codec runs/cinc2017/pipeline/codec --out runs/cinc2017/pipeline-codec-only",
            "tsvq eval --pipeline runs/cinc2017/pipeline-codec-only --data runs/cinc2017/store --n 300 --seeds 3 "
            "--baselines --out runs/cinc2017/eval-references",
        ],
        lambda data: model_against_floor(data, "train_windows"),
        "recipes/cinc2017",
    ),
    _eval(
        "ptbxl-references",
        "PTB-XL: training windows as they are and through the codec, against the held-out floor",
        [
            "tsvq assemble --codec runs/ptbxl/pipeline/codec --out runs/ptbxl/pipeline-codec-only",
            "tsvq eval --pipeline runs/ptbxl/pipeline-codec-only --data runs/ptbxl/store --n 300 --seeds 3 "
            "--baselines --out runs/ptbxl/eval-references",
        ],
        lambda data: model_against_floor(data, "train_windows"),
        "recipes/ptbxl",
    ),
    Question(
        "mitbih-rhythm",
        "What the MIT-BIH priors' rhythm figures are made of (beats, RR irregularity, doubled beats)",
        "python -m benchmarks.rhythm --pipelines unet=runs/mitbih/pipeline-cpu "
        "unet-3-levels=runs/mitbih/pipeline-cpu-3level transformer=runs/mitbih/pipeline-cpu-transformer "
        "--store runs/mitbih/store --name mitbih-rhythm",
        rhythm,
        "the three pipelines named, trained as in the file's 'commands' (mitbih-conditional-cpu's and two variants)",
    ),
    Question(
        "levers",
        "Generation levers of the demo's diffusion prior, one change per row",
        "python -m benchmarks.levers",
        levers,
        "make demo",
    ),
    Question(
        "anchors",
        "TimeVQVAE (published wheel) beside tsvq on the demo's data, same budget and 5x",
        "make anchors",
        anchors,
        "make demo",
    ),
    Question(
        "sampling",
        "Diffusion samplers: DDPM 1000, DDIM 50/20, DPM-Solver++ 20/10 (speed and distance)",
        "python -m benchmarks.sampling",
        samplers,
        "make demo",
    ),
    # speed and scale
    Question(
        "wavenet",
        "Cached vs naive WaveNet generation; the prior's bits per code",
        "python -m benchmarks.wavenet",
        wavenet_speed,
        "make demo",
    ),
    Question(
        "scale-prepare",
        "tsvq prepare with 1 and 2 workers on PTB-XL and MIT-BIH",
        "python -m benchmarks.scale",
        prepare_speed,
        "../shared/data",
    ),
    Question(
        "gaps",
        "Gaps of 0.5, 2 and 5 s in MIT-BIH DS2 filled by the shipped pipeline's WaveNet prior guided by the rhythm, "
        "beside linear, AR and template baselines: PRDN and R peaks inside the gap",
        "python -m benchmarks.gaps",
        gap_filling,
        "../shared/data/mitdb",
    ),
    Question(
        "gaps-diffusion",
        "The same gaps filled by the shipped pipeline's diffusion prior instead (latent inpainting started from the "
        "planned beats)",
        "python -m benchmarks.gaps --prior diffusion",
        gap_filling,
        "../shared/data/mitdb",
    ),
    Question(
        "gap-timing",
        "How well the beats inside those gaps can be timed from either side at all: tsvq's plan, the same from the "
        "annotated beats, and an oracle told the beat count (R-peak F1 of the planned times)",
        "python -m benchmarks.gap_timing",
        gap_timing,
        "../shared/data/mitdb",
    ),
    Question(
        "forecast",
        "2 and 5 s of MIT-BIH DS2 continued by the shipped pipeline's WaveNet prior guided by the rhythm, beside AR "
        "and template copy",
        "python -m benchmarks.forecast",
        forecasting,
        "../shared/data/mitdb",
    ),
    Question(
        "denoise",
        "nstdb baseline wander, muscle and electrode-motion noise at 0-24 dB on MIT-BIH DS2, removed by the shipped "
        "pipeline's denoiser beside the band-pass, wavelet thresholding and neurokit2",
        "python -m benchmarks.denoise",
        denoising,
        "../shared/data",
    ),
    Question(
        "pretrained-generation",
        "The shipped pipeline's samples of each lead against PTB-XL fold 10 and MIT-BIH DS2's MLII (never seen), "
        "beside the real-vs-real floor and surrogates; a lead classifier trained on samples (TSTR)",
        "python -m benchmarks.pretrained_generation",
        generation_by_lead,
        "../shared/data",
    ),
    Question(
        "scale-store",
        "A 200k-window generated store: peak memory of prepare (workers, parts + merge) and of an epoch; loader "
        "windows/s against the codec's; MIMIC-IV-ECG extrapolated",
        "python -m benchmarks.scale_store",
        store_at_scale,
    ),
]
BY_NAME = {question.name: question for question in QUESTIONS}
