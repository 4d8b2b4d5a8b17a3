"""Regenerate the tables that quote benchmark results: the index in ``benchmarks/README.md`` and the results table
of the top-level ``README.md``, each between its ``<!-- tables:NAME -->`` and ``<!-- /tables:NAME -->`` markers,
read from ``benchmarks/results``. Nothing between the markers is typed by hand.

    python -m benchmarks.tables            # rewrite both
    python -m benchmarks.tables --check    # exit 1 if either is out of date (the test suite runs this)
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

from benchmarks.common import RESULTS
from benchmarks.questions import QUESTIONS, _mean, repair_leaders

ROOT = RESULTS.parents[1]


def load(name: str) -> dict:
    return json.loads((RESULTS / f"{name}.json").read_text())


def where(data: dict) -> str:
    machine = data.get("machine", {})
    return machine.get("gpu") or f"{machine.get('cpu_count', '?')}-core CPU"


def index_table() -> list[str]:
    lines = ["| results file | question | headline | command | ran on |", "|---|---|---|---|---|"]
    for question in QUESTIONS:
        data = load(question.name)
        needs = f" (first: {question.needs})" if question.needs else ""
        lines.append(
            f"| [`{question.name}`](results/{question.name}.json) | {question.what} | {question.headline(data)} "
            f"| `{question.command}`{needs} | {where(data)}, {data['date'][:10]}, {data['commit']} |"
        )
    return lines


def wavelet_at(rate: float) -> float:
    return load("rate-distortion-ds2")["summary"]["wavelet"][f"{rate:.1f}"]["prdn"]


def _compression(name: str) -> tuple[str, str]:
    s = load(name)["summary"]
    at = s.get("tsvq_at_rate") or {}
    rates = [rate for rate in ("150.0", "312.5", "625.0") if at.get(rate)]
    label = " / ".join(f"{float(rate):g}" for rate in rates)
    ours = " / ".join(f"{at[rate]['prdn']:.2f}" for rate in rates)
    theirs = " / ".join(f"{at[rate]['wavelet_prdn']:.2f}" for rate in rates)
    return (
        f"PRDN **{s['tsvq']['prdn']:.2f}%** at {s['tsvq']['bits_per_second']:.0f} bit/s "
        f"(CR {s['tsvq']['compression_ratio']:.1f})" + (f"; `--bitrate {label}`: **{ours}%**" if rates else ""),
        f"wavelet coder at that rate: {s['wavelet_at_tsvq_rate']['prdn']:.2f}%"
        + (f"; at {label} bit/s: {theirs}%" if rates else ""),
    )


def _search() -> tuple[str, str]:
    s = load("compress-pretrained-ds2-search8")["summary"]
    return (
        f"PRDN **{s['mean_prdn']:.2f}%** at {s['mean_bits_per_second']:.0f} bit/s",
        f"wavelet coder at 312.5 bit/s: {wavelet_at(312.5):.2f}%",
    )


def _recipe_codec() -> tuple[str, str]:
    row = next(iter(load("mitbih")["runs"].values()))["results"][0]
    return (
        f"PRDN **{row['mean_prdn_over_patients']:.2f}%** at {row['bits_per_second']:g} bit/s",
        f"wavelet coder at 312.5 bit/s: {wavelet_at(312.5):.2f}%",
    )


def _residual() -> tuple[str, str]:
    rows = next(iter(load("mitbih-rvq")["runs"].values()))["results"]
    row = next(r for r in rows if r["bits_per_second"] == 937.5)
    return (
        f"PRDN **{row['mean_prdn_over_patients']:.2f}%** at 937.5 bit/s (3 of 4 stages)",
        f"wavelet coder at 937.5 bit/s: {wavelet_at(937.5):.2f}%",
    )


def _anchor() -> tuple[str, str]:
    figures = load("anchors")["figures"]

    def pair(name: str) -> str:
        f = figures[name]["figures"]
        return f"{_mean(f['frechet_distance']):.0f} / {_mean(f['discriminative_score']):.3f}"

    return (
        f"tsvq (5x the demo's steps, 28 min): **{pair('tsvq-5x')}**",
        f"TimeVQVAE, its recommended budget (9 h): {pair('timevqvae-epochs')}; floor {pair('floor')}",
    )


def _eeg() -> tuple[str, str]:
    data = load("bonn")
    codec, seizure = data["codec"]["summary"], data["generation"]["wavenet"]["seizure_vs_rest"]
    return (
        f"PRDN **{codec['tsvq']['prdn']:.2f}%** at {codec['tsvq']['bits_per_second']:.0f} bit/s; "
        f"seizure TSTR macro-F1 **{seizure['tstr']:.3f}**",
        f"wavelet coder at that rate: {codec['wavelet_at_tsvq_rate']['prdn']:.2f}%; "
        f"trained on real: {seizure['trtr']:.3f}",
    )


def _bold_higher(ours: float, theirs: float) -> tuple[str, str]:
    """Markdown marks for two figures where higher is better (F1; minus a rounded PRDN): the higher in bold, neither
    where they print alike (two decimals)."""
    if f"{ours:.2f}" == f"{theirs:.2f}":
        return "", ""
    return ("**", "") if ours > theirs else ("", "**")


def _gaps() -> tuple[str, str]:
    data = load("gaps")
    by, draws = data["by_gap"]["2.0"], data["impute_options"]["draws"]
    timing, level = repair_leaders(by)
    f1, prdn = by["tsvq"]["r_peak_f1"], by["tsvq_mean"]["prdn_mean"]
    # what timing beats from either side reaches at best: the ceiling under a draw's F1
    ceiling = load("gap-timing")["by_gap"]["2.0"]["knowing_the_count"]["r_peak_f1"]
    f1_mark = _bold_higher(f1, by[timing]["r_peak_f1"])
    prdn_mark = _bold_higher(-round(prdn), -round(by[level]["prdn_mean"]))
    diffusion = load("gaps-diffusion")["by_gap"]["2.0"]
    return (
        f"R-peak F1 {f1_mark[0]}{f1:.2f}{f1_mark[0]} (a draw); "
        f"PRDN {prdn_mark[0]}{prdn:.0f}%{prdn_mark[0]} (mean of {draws} draws); the diffusion prior instead "
        f"([`gaps-diffusion`](benchmarks/results/gaps-diffusion.json)): {diffusion['tsvq']['r_peak_f1']:.2f}, "
        f"{diffusion['tsvq_mean']['prdn_mean']:.0f}%",
        f"{timing.replace('_', ' ')}: F1 {f1_mark[1]}{by[timing]['r_peak_f1']:.2f}{f1_mark[1]}; "
        f"{level.replace('_', ' ')}: PRDN {prdn_mark[1]}{by[level]['prdn_mean']:.0f}%{prdn_mark[1]}; "
        f"beats timed by an oracle told their count: F1 {ceiling:.2f} "
        "([`gap-timing`](benchmarks/results/gap-timing.json))",
    )


def _denoise() -> tuple[str, str]:
    by = load("denoise")["by_noise"]["em"]["6"]
    names = {"bandpass": "band-pass", "wavelet": "wavelet", "neurokit2": "neurokit2"}
    return (
        f"SNR out **{by['tsvq']['snr_db']:.1f} dB**, R-peak F1 {by['tsvq']['r_peak_f1']:.2f}",
        "; ".join(
            f"{label} {round(by[m]['snr_db'], 1) + 0.0:.1f} dB, {by[m]['r_peak_f1']:.2f}" for m, label in names.items()
        ),
    )


def _generation() -> tuple[str, str]:
    data = load("pretrained-generation")

    def pair(generator: str) -> str:
        parts = []
        for database, name in (("ptbxl", "PTB-XL"), ("mitdb-ds2", "DS2")):
            leads = data["per_lead"][database]
            generators = leads["MLII" if "MLII" in leads else "II"]["figures"]["generators"]
            floor = _mean(generators["floor"]["figures"]["frechet_distance"])
            figures = generators[generator]["figures"]
            frechet, discriminative = _mean(figures["frechet_distance"]), _mean(figures["discriminative_score"])
            parts.append(f"{name} {frechet / floor:.1f}x / {discriminative:.2f}")
        return "; ".join(parts)

    return f"**{pair(data['prior'])}**", f"phase-randomised: {pair('phase_randomised')}; floor: {pair('floor')}"


# (what, results file the link goes to, figures): at most ~10 rows, each beside what a specialist would try first
HEADLINES: list[tuple[str, str, Callable[[], tuple[str, str]]]] = [
    (
        "Compression, MIT-BIH DS2 (22 unseen patients), shipped pipeline",
        "rate-distortion-ds2",
        lambda: _compression("rate-distortion-ds2"),
    ),
    ("... with code search (`--search 8`)", "compress-pretrained-ds2-search8", _search),
    (
        "Compression, PTB-XL fold 10 lead II (unseen database)",
        "rate-distortion-ptbxl-fold10",
        lambda: _compression("rate-distortion-ptbxl-fold10"),
    ),
    ("MIT-BIH recipe codec (trained on DS1 on a GPU), DS2 in 4.096-s windows", "mitbih", _recipe_codec),
    ("MIT-BIH residual-VQ codec, DS2", "mitbih-rvq", _residual),
    ("Generation vs TimeVQVAE, demo data (Frechet / discriminative)", "anchors", _anchor),
    (
        "Generation, shipped pipeline, lead II (Frechet x floor / discriminative), unseen PTB-XL fold 10; DS2 MLII",
        "pretrained-generation",
        _generation,
    ),
    ("EEG (Bonn, held-out segments): codec; seizure detection from WaveNet samples", "bonn", _eeg),
    ("Filling 2-s gaps, MIT-BIH DS2 (unseen patients), shipped pipeline", "gaps", _gaps),
    ("Electrode-motion noise at 6 dB added to MIT-BIH DS2 (unseen patients), shipped denoiser", "denoise", _denoise),
]


def headline_table() -> list[str]:
    lines = ["| what | tsvq | baseline | source |", "|---|---|---|---|"]
    for what, name, figures in HEADLINES:
        ours, theirs = figures()
        lines.append(f"| {what} | {ours} | {theirs} | [`{name}`](benchmarks/results/{name}.json) |")
    return lines


def replace_block(text: str, name: str, lines: list[str], path: Path) -> str:
    pattern = re.compile(rf"(<!-- tables:{name} -->\n).*?(<!-- /tables:{name} -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"{path}: no <!-- tables:{name} --> ... <!-- /tables:{name} --> block")
    return pattern.sub(lambda m: m.group(1) + "\n".join(lines) + "\n" + m.group(2), text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only say whether the tables are up to date")
    args = parser.parse_args()
    stale = []
    for path, name, lines in (
        (RESULTS.parent / "README.md", "index", index_table()),
        (ROOT / "README.md", "results", headline_table()),
    ):
        text = path.read_text()
        updated = replace_block(text, name, lines, path)
        if updated != text:
            stale.append(str(path.relative_to(ROOT)))
            if not args.check:
                path.write_text(updated)
    if args.check and stale:
        print(f"out of date: {', '.join(stale)}; run python -m benchmarks.tables")
        return 1
    print("up to date" if not stale else f"rewrote {', '.join(stale)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
