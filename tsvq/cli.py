"""The ``tsvq`` command: a thin layer over the Python API (everything here is one call away in Python)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from tsvq.errors import ConfigError, DataError, TsvqError

if TYPE_CHECKING:
    import numpy as np

from tsvq.io import check_output_file, check_output_path, claim_output_folder


def _prepare_config_from_args(args: argparse.Namespace):
    from tsvq.config import apply_overrides, from_dict, load_yaml
    from tsvq.data import PrepareConfig

    values = load_yaml(args.config) if args.config else {}
    values = values.get("data", values)
    source = args.source
    recipe_sources = values.get("source")
    if source and isinstance(recipe_sources, dict) and len(source) == 1:
        # a recipe's source mapping (groups, exclusions, a table) keeps its settings; --source says where the data is
        values["source"] = {**recipe_sources, "path": source[0]}
        source = None
    elif source and isinstance(recipe_sources, list) and any(isinstance(s, dict) for s in recipe_sources):
        values["source"] = _relocate_sources(recipe_sources, source)
        source = None
    flags = {f.name: getattr(args, f.name, None) for f in dataclasses.fields(PrepareConfig) if f.name != "source"}
    flags["source"] = source[0] if source and len(source) == 1 else source
    values.update({name: value for name, value in flags.items() if value is not None})
    return from_dict(PrepareConfig, apply_overrides(values, args.set), "prepare config")


def _relocate_sources(recipe_sources: list, paths: list[str]) -> list:
    """A recipe with several sources and ``--source``: as many paths replace the recipe's paths in order; one path
    is the folder that holds them all (``data/mitdb`` -> ``PATH/mitdb``)."""

    def path_of(entry):
        return entry["path"] if isinstance(entry, dict) else str(entry)

    def moved(entry, path):
        return {**entry, "path": path} if isinstance(entry, dict) else path

    if len(paths) == len(recipe_sources):
        return [moved(entry, path) for entry, path in zip(recipe_sources, paths)]
    if len(paths) == 1:
        return [moved(entry, str(Path(paths[0]) / Path(path_of(entry)).name)) for entry in recipe_sources]
    raise ConfigError(
        f"--source: the recipe names {len(recipe_sources)} sources; give one folder that holds them all "
        f"or {len(recipe_sources)} paths in the recipe's order"
    )


def summarise_store(store) -> str:
    """The closing summary of `tsvq prepare`: records, minutes per patient, windows per split, drops."""
    m = store.manifest
    mixtures = sum(":mix" in r["name"] for r in m["records"]) if m["config"].get("lead_projections") else 0
    examples = (
        f" ({len(m['records'])} single-lead examples"
        + (f", {mixtures} of them lead mixtures" if mixtures else "")
        + ")"
        if m["config"].get("leads_as_examples")
        else ""
    )
    lines = [
        f"window store: {store.path}",
        f"  rate {m['sampling_rate_hz']:g} Hz, window {m['window_length']} samples, channels {m['channel_names']} "
        f"({', '.join(m['units'])})",
        f"  records read: {len({r['file'] for r in m['records']})}{examples}; skipped: {len(m['skipped_records'])}; "
        "native rates: " + ", ".join(f"{r:g}" for r in sorted({rec["native_rate_hz"] for rec in m["records"]})) + " Hz",
        "  minutes per patient/group:",
    ]
    split_of = {r["group"]: r["split"] for r in m["records"]}
    for group, minutes in sorted(m["minutes_per_group"].items()):
        lines.append(f"    {group:<28} {minutes:8.1f} min  -> {split_of.get(group, '?')}")
    lines.append("  windows per split: " + ", ".join(f"{k} {v}" for k, v in m["windows_per_split"].items()))
    dropped = m["dropped_seconds"]
    stride_s = m["stride"] / m["sampling_rate_hz"]
    lines.append(
        "  dropped: "
        + (
            ", ".join(f"{k} {v:.1f} s (~{v / stride_s:.0f} windows)" for k, v in dropped.items())
            if dropped
            else "nothing"
        )
    )
    for name, reason in m["skipped_records"].items():
        lines.append(f"  skipped {name}: {reason}")
    lines.append(f"  split: {m['split_note']}")
    return "\n".join(lines)


def cmd_prepare(args: argparse.Namespace) -> int:
    from tsvq.data import prepare

    config = _prepare_config_from_args(args)
    store = prepare(
        config, args.out, overwrite=args.overwrite, workers=args.workers, part=args.part, shard_mb=args.shard_mb
    )
    if args.part:
        print(f"part {args.part} of the store: {store}; join all parts with `tsvq merge-stores PART... --out STORE`")
    else:
        print(summarise_store(store))
    return 0


def cmd_merge_stores(args: argparse.Namespace) -> int:
    from tsvq.data.parts import merge_stores

    print(summarise_store(merge_stores(args.parts, args.out, overwrite=args.overwrite)))
    return 0


def load_stage_config(
    stage: str,
    config_file: str | None,
    overrides: list[str],
    store: str | None = None,
    output_dir: str | None = None,
    codec: str | None = None,
):
    """Stage config from YAML + ``--set`` overrides + the common flags."""
    from tsvq.config import apply_overrides, from_dict, load_yaml
    from tsvq.training.stages import get_stage

    values = load_yaml(config_file) if config_file else {}
    values.pop("data", None)  # a recipe may keep its prepare settings in the same file
    if store:
        values["store"] = store
    if codec:
        values["codec"] = codec
    if output_dir:
        values.setdefault("training", {})["output_dir"] = output_dir
    values = apply_overrides(values, overrides)
    return from_dict(get_stage(stage).config_class, values, f"{config_file or 'defaults'} ({stage} stage)")


def cmd_train(args: argparse.Namespace) -> int:
    from tsvq.training.stages import get_stage

    config = load_stage_config(
        args.stage, args.config, args.set, args.store, args.output_dir, getattr(args, "codec", None)
    )
    folder = get_stage(args.stage).train(config)
    from accelerate import PartialState

    if PartialState().is_main_process:
        print(f"{args.stage} saved to {folder}")
    return 0


def _prior_options(args: argparse.Namespace) -> dict:
    """The sampling options a user set on the command line (unset ones keep the prior's defaults)."""
    from tsvq.priors.base import option_fields

    return {name: getattr(args, name) for name in option_fields() if getattr(args, name, None) is not None}


def cmd_sample(args: argparse.Namespace) -> int:
    from tsvq.pipeline import Pipeline
    from tsvq.sample_writer import write_samples

    pipe = Pipeline.from_pretrained(args.pipeline, device=args.device)
    check_output_path(args.out, [pipe.folder], "samples folder")
    claim_output_folder(args.out, args.overwrite, "samples folder")  # before drawing, not after
    labels = args.labels[0] if args.labels and len(args.labels) == 1 else args.labels  # one label: for every sample
    output = pipe.sample(
        args.n, args.prior, labels=labels, seed=args.seed, batch_size=args.batch_size, **_prior_options(args)
    )
    folder = write_samples(output, args.out, wfdb_records=not args.no_wfdb, overwrite=args.overwrite)
    print(
        f"{args.n} samples ({pipe.window_length} samples at {pipe.sampling_rate_hz:g} Hz, {pipe.channel_names}) -> "
        f"{folder}"
    )
    print(json.dumps(output.info))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from tsvq.evaluation.report import EvalConfig, evaluate
    from tsvq.evaluation.tables import compare_reports, format_table

    compare = args.compare or []
    if compare and all(_is_report(item) for item in compare):
        print(compare_reports(*compare))
        return 0
    priors = [item for item in compare if "=" not in item and not Path(item).exists()]
    sample_specs = (args.samples or []) + [item for item in compare if item not in priors]
    if priors and not args.pipeline:
        raise ConfigError(
            f"--compare names priors {priors} but no --pipeline holds them (or no such sample files exist)"
        )
    if not (args.data and args.out and (args.pipeline or sample_specs)):
        raise ConfigError("tsvq eval needs --data, --out and --pipeline and/or --samples (or --compare REPORT...)")
    from tsvq.data import WindowStore

    if args.task != "generation":
        return _eval_task(args)
    store = WindowStore(args.data)
    pipeline = None
    if args.pipeline:
        from tsvq.pipeline import Pipeline

        pipeline = Pipeline.from_pretrained(args.pipeline, device=args.device)
    samples = dict(_load_samples(spec) for spec in sample_specs) or None
    config = EvalConfig(
        split=args.split,
        n=1000 if args.n is None else args.n,
        prior=args.prior,
        priors=priors,
        sampling=_prior_options(args),
        seed=args.seed,
        seeds=args.seeds,
        baselines=args.baselines,
        physiology="none" if args.no_physiology else args.physiology,
        positive_label=args.positive_label,
        morphology=not args.no_morphology,
        folds=args.folds,
        classifier_steps=args.classifier_steps,
        search=args.search,
        references=not args.no_references,
        floor_halves=args.floor_halves,
    )
    check_output_path(args.out, [spec.rpartition("=")[2] for spec in sample_specs], "report folder")
    report = evaluate(store, args.out, config, pipeline=pipeline, samples=samples, overwrite=args.overwrite)
    print(format_table(report))
    print(f"report: {Path(args.out) / 'report.json'} (plots beside it)")
    return 0


def _eval_task(args: argparse.Namespace) -> int:
    """``tsvq eval --task impute|forecast|denoise``: the pipeline repairing held-out stretches of the store."""
    from tsvq.data import WindowStore
    from tsvq.evaluation.tasks import TaskConfig, evaluate_task, format_task
    from tsvq.pipeline import Pipeline

    if not (args.pipeline and args.data and args.out):
        raise ConfigError(f"tsvq eval --task {args.task} needs --pipeline, --data and --out")
    config = TaskConfig(
        task=args.task,
        split=args.split,
        n=100 if args.n is None else args.n,
        stretch_s=args.stretch_seconds,
        seconds=args.seconds,
        draws=args.draws,
        noise=args.noise or [],
        snr_db=args.snr,
        seed=args.seed,
        prior=args.prior,
        sampling=_prior_options(args),
    )
    store = WindowStore(args.data)
    pipeline = Pipeline.from_pretrained(args.pipeline, device=args.device)
    report = evaluate_task(store, args.out, config, pipeline, overwrite=args.overwrite)
    print(format_task(report))
    print(f"report: {Path(args.out) / 'report.json'} (task.png beside it)")
    return 0


def _is_report(item: str) -> bool:
    path = Path(item)
    return (path.is_file() and path.suffix == ".json") or (path.is_dir() and (path / "report.json").is_file())


def _load_samples(spec: str) -> tuple[str, np.ndarray]:
    """``[NAME=]PATH``: a .npy of (n, L, C) windows, or a folder `tsvq sample` wrote (its samples.npy)."""
    import numpy as np

    name, _, location = spec.rpartition("=")
    path = Path(location)
    if path.is_dir():
        path = path / "samples.npy"
    name = name or (path.parent.name if path.name == "samples.npy" else path.stem)
    from tsvq.data.preprocess import real_array

    if not path.is_file():
        raise DataError(f"{path}: samples file not found")
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise DataError(f"{path}: cannot read samples as a NumPy array ({error})") from error
    return name, real_array(loaded, str(path))


def cmd_assemble(args: argparse.Namespace) -> int:
    from tsvq.pipeline import Pipeline, named_folder

    priors = [named_folder(spec)[1] for spec in args.prior or []]
    check_output_path(args.out, [args.codec, *priors, *filter(None, [args.denoiser])], "pipeline folder")
    pipe = Pipeline.from_stages(
        args.codec, *(args.prior or []), sampling=_sampling_defaults(args.sampling), denoiser=args.denoiser
    )
    folder = pipe.save_pretrained(args.out, description=args.description, overwrite=args.overwrite, half=args.half)
    print(f"pipeline: codec {args.codec} + priors {sorted(pipe.priors) or 'none'} -> {folder}")
    for name, options in pipe.sampling.items():
        print(f"  {name} samples by default with {options}")
    return 0


def _sampling_defaults(settings: list[str]) -> dict[str, dict]:
    """``["wavenet.top_p=0.95", ...]`` -> ``{"wavenet": {"top_p": 0.95}}``."""
    from tsvq.config import parse_override

    defaults: dict[str, dict] = {}
    for text in settings:
        keys, value = parse_override(text)
        if len(keys) != 2:
            raise ConfigError(f"--sampling '{text}' must look like PRIOR.OPTION=VALUE (e.g. wavenet.top_p=0.95)")
        defaults.setdefault(keys[0], {})[keys[1]] = value
    return defaults


def cmd_compress(args: argparse.Namespace) -> int:
    from tsvq.compressed_file import is_compressed_file
    from tsvq.data import read_record
    from tsvq.data.records import record_files
    from tsvq.pipeline import Pipeline

    check_output_path(args.out, record_files(args.record), "compressed file")
    check_output_file(args.out, args.overwrite, is_compressed_file)
    pipe = Pipeline.from_pretrained(args.pipeline, device=args.device)
    record = read_record(args.record, annotation_extensions=())
    options = {"channels": args.channels, "search": args.search}
    if args.bitrate is not None or args.max_prdn is not None:
        if args.quantizers is not None:
            raise ConfigError("--quantizers fixes the operating point; --bitrate and --max-prdn choose it: give one")
        compressed, chosen = pipe.compress_at(record, bitrate=args.bitrate, max_prdn=args.max_prdn, **options)
        codes = f"{chosen['stages']} of {chosen['of']} stage(s)" if chosen["stages"] else "no codes"
        templates = " with beat templates" if chosen["beats"] else ""
        detail = "" if chosen["detail_step"] is None else f" + detail layer{templates} (step {chosen['detail_step']:g})"
        print(
            f"operating point: {codes}{detail}, "
            f"{chosen['bits_per_second']:.1f} bit/s per channel, PRDN "
            + ", ".join(f"{n} {v:.2f}%" for n, v in chosen["prdn"].items())
            + ("" if chosen["met"] else f" (the most this pipeline does; {args.max_prdn:g}% not reached)")
        )
    else:
        compressed = pipe.compress(record, quantizers=args.quantizers, **options)
    out = compressed.save(args.out, overwrite=args.overwrite)
    size = out.stat().st_size
    channels = len(compressed.channel_names)
    bits = ", ".join(sorted({f"{b}-bit" for b in compressed.input_bits}))
    codes_rate = pipe.codec.bits_per_second() * compressed.quantizers / pipe.codec.config.num_quantizers
    print(
        f"{record.name} ({', '.join(compressed.channel_names)}): {compressed.duration_s:.1f} s at "
        f"{compressed.native_rate_hz:g} Hz -> {out} ({size:,} bytes)"
    )
    print(
        f"  bit rate: {compressed.bits_per_second() / channels:.1f} bit/s per channel, file and all"
        + (f" (codes at a fixed width: {codes_rate:.1f} bit/s)" if compressed.quantizers else "")
    )
    if compressed.detail is not None:
        detail_rate = 8 * len(compressed.detail_bytes) / compressed.duration_s / channels
        print(
            f"  detail layer{' with beat templates' if compressed.detail.get('beats') else ''} "
            f"(step {compressed.detail['step']:g} {pipe.units[0]}): {len(compressed.detail_bytes):,} "
            f"bytes, {detail_rate:.1f} bit/s per channel"
            + ("" if compressed.quantizers else "; no codes: the layer codes the signal itself")
        )
    if compressed.quantizers and compressed.entropy is None:
        print(
            f"  fixed-width codes ({compressed.code_bits} bits each): entropy coding would not make this file smaller"
        )
    elif compressed.quantizers:
        print(
            f"  entropy coding: {compressed.bits_per_code():.3f} bit/code written, the context model's own code length "
            f"{compressed.model_bits / max(compressed.num_codes, 1):.3f} (fixed width: {compressed.code_bits})"
        )
    print(
        f"  compression ratio: {compressed.compression_ratio():.2f} (against {bits} samples at "
        f"{compressed.native_rate_hz:g} Hz, {channels} channel(s))"
    )
    if not args.no_prdn:
        prdn = pipe.compression_prdn(compressed, record)
        print(
            f"  PRDN against the input band-limited to {pipe.preprocessing.describe()}: "
            + ", ".join(f"{name} {value:.2f}%" for name, value in prdn.items())
        )
    return 0


def cmd_decompress(args: argparse.Namespace) -> int:
    from tsvq.pipeline import Pipeline
    from tsvq.sample_writer import is_tsvq_record_file, write_record

    targets = [f"{args.out}.hea", f"{args.out}.dat"]
    for target in targets:
        check_output_path(target, [args.file], "decompressed record")
        check_output_file(target, args.overwrite, is_tsvq_record_file)
    pipe = Pipeline.from_pretrained(args.pipeline or _compressing_pipeline(args.file), device=args.device)
    decoded = pipe.decompress(
        args.file, rate=args.rate, derive_leads={"auto": None, "yes": True, "no": False}[args.derive_leads]
    )
    path = write_record(
        decoded,
        args.out,
        fmt=args.format,
        overwrite=args.overwrite,
        comments=[f"decompressed by tsvq from {Path(args.file).name} ({pipe.name})"],
    )
    print(
        f"{args.file} -> {path}.hea ({decoded.signal.shape[0]} samples at {decoded.sampling_rate_hz:g} Hz, "
        f"{', '.join(decoded.channel_names)}, format {args.format})"
    )
    return 0


def _compressing_pipeline(file: str) -> str:
    """The pipeline a compressed file names (a shipped name, or the folder it was loaded from), when it is here:
    decompressing needs that very codec, and the file says which."""
    from tsvq.compressed_file import CompressedRecord
    from tsvq.pretrained import list_pretrained

    named = CompressedRecord.load(file).pipeline
    if named in list_pretrained() or (Path(named) / "pipeline.json").is_file():
        return named
    raise DataError(f"{file}: made by the pipeline '{named}', which is not here; name its folder with --pipeline")


def _record_to_repair(args: argparse.Namespace, what: str):
    """``impute``/``forecast``/``denoise``: refuse an ``--out`` record that is the input or exists (before any
    work), then the pipeline, the record, its channels to repair and their signal in the pipeline's units with the
    factors that took them there ``(pipeline, record, picked, signal, scales)`` (a record in microvolts is
    repaired by an mV pipeline as millivolts, and written back in microvolts)."""
    import numpy as np

    from tsvq.data import read_record
    from tsvq.data.records import record_files
    from tsvq.pipeline import Pipeline
    from tsvq.recording import recording_channels, unit_scale
    from tsvq.sample_writer import is_tsvq_record_file

    for target in (f"{args.out}.hea", f"{args.out}.dat"):
        check_output_path(target, record_files(args.record), what)
        check_output_file(target, args.overwrite, is_tsvq_record_file)
    pipe = Pipeline.from_pretrained(args.pipeline, device=args.device)
    record = read_record(args.record, annotation_extensions=())
    picked = recording_channels(pipe, record.channel_names, args.channels, str(record.path), record.units)
    config = pipe.codec.config
    scales = np.array([
        unit_scale(record.units[i], config.units[0 if config.in_channels == 1 else k],
                   f"{record.path}: channel '{record.channel_names[i]}'")
        for k, i in enumerate(picked)
    ])  # fmt: skip
    return pipe, record, picked, record.signal[:, picked] * scales, scales


def _repaired_record(record, picked: list[int], repaired, note: str, extra=(), extra_names=()):
    """The record to write ``(DecodedRecord, header comment)``: every channel of ``record`` in its place, those
    ``picked`` replaced by ``repaired`` ``(L', len(picked))`` and the rest as recorded (NaN past their end where a
    forecast made the record longer: a user's other leads are never dropped), then the ``extra`` channels (further
    draws, their mean) of the picked ones. The comment, ``note`` and which channels tsvq changed, goes in the
    header and on the console."""
    import numpy as np

    from tsvq.recording import DecodedRecord

    signal = np.full((len(repaired), record.signal.shape[1]), np.nan)
    signal[: len(record.signal)] = record.signal[: len(repaired)]
    signal[:, picked] = repaired
    names = list(record.channel_names)
    kept = [n for i, n in enumerate(names) if i not in picked]
    comment = f"{note}: {', '.join(names[i] for i in picked)}" + (f"; {', '.join(kept)} as recorded" if kept else "")
    out = DecodedRecord(
        np.concatenate([signal, *extra], axis=1),
        record.sampling_rate_hz,
        names + list(extra_names),
        list(record.units) + [record.units[i] for i in picked] * (len(extra_names) // len(picked)),
        0,
        base_date=record.base_date,
        base_time=record.base_time,
    )
    return out, comment


def cmd_repair(args: argparse.Namespace) -> int:
    """``tsvq impute`` and ``tsvq forecast``: a WFDB record in, the repaired record out (the first draw on the
    record's own channels, further draws as channels NAME_draw2, ..., and their mean as NAME_mean)."""
    from tsvq.data.preprocess import true_runs
    from tsvq.sample_writer import write_record

    pipe, record, picked, signal, scales = _record_to_repair(args, "repaired record")
    names = [record.channel_names[i] for i in picked]
    several = args.draws > 1  # then their mean too: the fill with the least expected squared error
    extra_names = [f"{n}_draw{d}" for d in range(2, args.draws + 1) for n in names]
    extra_names += [f"{n}_mean" for n in names] if several else []
    if clash := [n for n in extra_names if n in record.channel_names]:
        raise DataError(
            f"{args.record}: the record already has channel(s) {', '.join(clash)} (an earlier repair?); repair the "
            "original record, or draw once (--draws 1)"
        )
    options = {
        "draws": args.draws,
        "candidates": args.candidates,
        "choose": args.choose,
        "prior": args.prior,
        "seed": args.seed,
        "rhythm": args.rhythm,
        "top_p": args.top_p,
        "temperature": args.temperature,
        "steps": args.steps,
        "where": str(args.record),
    }
    if args.max_gap is not None:
        options["max_gap_s"] = args.max_gap
    if args.command == "forecast":
        repaired = pipe.forecast(signal, record.sampling_rate_hz, args.seconds, **options)
    else:
        repaired = pipe.impute(signal, record.sampling_rate_hz, **options)
    out, comment = _repaired_record(
        record,
        picked,
        repaired.signals[0] / scales,
        f"{'forecast' if args.command == 'forecast' else 'imputed'} by tsvq ({pipe.name})",
        [*(repaired.signals[1:] / scales), *([repaired.mean / scales] if several else [])],
        extra_names,
    )
    path = write_record(out, args.out, overwrite=args.overwrite, comments=[comment])
    filled = repaired.filled.any(axis=1)
    spread = float((repaired.spread / scales)[repaired.filled].mean()) if args.draws > 1 and filled.any() else None
    print(
        f"{args.record} -> {path}.hea ({comment}): {filled.sum() / record.sampling_rate_hz:.2f} s filled in "
        f"{len(true_runs(filled))} stretch(es), {args.draws} "
        "draw(s)"
        + (f"; spread of the draws in the filled stretches {spread:.3g} {record.units[picked[0]]}" if spread else "")
    )
    return 0


def cmd_denoise(args: argparse.Namespace) -> int:
    """``tsvq denoise``: a WFDB record in, its denoised channels out (band-limited to the pipeline's band)."""
    import numpy as np

    from tsvq.data.preprocess import finite_stretches
    from tsvq.denoise import denoise
    from tsvq.sample_writer import write_record

    pipe, record, picked, signal, scales = _record_to_repair(args, "denoised record")
    clean = denoise(pipe, signal, record.sampling_rate_hz, where=str(args.record)) / scales
    names, units = [record.channel_names[i] for i in picked], [record.units[i] for i in picked]
    out, comment = _repaired_record(record, picked, clean, f"denoised by tsvq ({pipe.name})")
    path = write_record(out, args.out, overwrite=args.overwrite, comments=[comment])
    recorded = record.signal[:, picked]
    band = np.full_like(recorded, np.nan)  # what a band-pass alone leaves: the denoiser's own share is beyond it
    for start, end in finite_stretches(recorded):
        band[start:end] = pipe.preprocessing.band_limited(recorded[start:end], record.sampling_rate_hz)
    removed, beyond = (np.sqrt(np.nanmean((x - clean) ** 2, axis=0)) for x in (recorded, band))
    print(
        f"{args.record} -> {path}.hea ({comment}); removed (RMS) "
        + ", ".join(f"{n} {r:.3g} {u}" for n, r, u in zip(names, removed, units))
        + f"; beyond what a {pipe.preprocessing.describe_band()} band-pass removes: "
        + ", ".join(f"{n} {r:.3g} {u}" for n, r, u in zip(names, beyond, units))
    )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from tsvq.demo import DemoConfig, run_demo

    config = DemoConfig(source=args.source, out=args.out)
    if args.fast:  # a smoke run: every stage, minutes -> seconds (figures meaningless)
        config.codec_steps, config.diffusion_steps, config.wavenet_steps, config.samples, config.eval_windows = (
            20,
            20,
            20,
            16,
            16,
        )
        config.eval_seeds, config.classifier_steps = 2, 20
    run_demo(config)
    return 0


def _value_type(f: dataclasses.Field) -> type:
    """The type a config field's option parses its value as, from the field's annotation (int, float or str)."""
    annotation = str(f.type)
    return next((t for t in (int, float) if annotation.startswith(t.__name__)), str)


def _add_prepare_arguments(p: argparse.ArgumentParser) -> None:
    """One option per PrepareConfig field, with the field's help; flags stay unset (None) so that a YAML file's
    values are overridden only by what the user typed."""
    from tsvq.data import PrepareConfig

    p.add_argument("--config", help="YAML file with a 'data:' section (PrepareConfig fields)")
    for f in dataclasses.fields(PrepareConfig):
        meta = f.metadata
        flag = "--" + (meta.get("flag") or f.name).replace("_", "-")
        kind = str(f.type)
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        shown = (
            "" if default is None or default is False or default == [] or default == {} else f" (default: {default})"
        )
        options = {"dest": f.name, "default": None, "help": meta["help"] + shown}
        if kind.startswith("dict"):
            continue  # mappings come from YAML or --set
        if kind == "bool":
            p.add_argument(flag, action="store_const", const=True, **options)
        elif kind.startswith("list") or f.name == "source":
            p.add_argument(flag, nargs="+", **options)
        else:
            p.add_argument(
                flag, type=_value_type(f), **{k: v for k, v in meta.items() if k in ("choices", "metavar")}, **options
            )
    p.add_argument(
        "--set",
        nargs="*",
        action="extend",
        default=[],
        metavar="KEY=VALUE",
        help="override any config field (repeatable)",
    )


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Help that states each option's default, but only where there is one to state (not None, an off flag or [])."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text, default = action.help, action.default
        if (
            text is None
            or "default" in text
            or default is None
            or default is False
            or default is argparse.SUPPRESS
            or default == []
        ):
            return text
        return f"{text} (default: %(default)s)"


def _add_prior_arguments(p: argparse.ArgumentParser) -> None:
    """How `sample` and `eval` draw from a prior: the same options, so a report's figures can be reproduced by hand.
    Each registered prior's sampling options become flags here, with their help and defaults."""
    import tsvq.priors  # noqa: F401  (registers the built-in priors, whose options become flags)
    from tsvq.priors.base import option_fields

    p.add_argument("--prior", help="which of the pipeline's priors draws the codes, by name (default: its first)")
    for name, fields in option_fields().items():
        helps = [
            f.metadata.get("help", name)
            + ("" if f.default in (None, dataclasses.MISSING) else f" (default: {f.default})")
            for f in fields
        ]
        p.add_argument(
            f"--{name.replace('_', '-')}", dest=name, type=_value_type(fields[0]), default=None, help="; ".join(helps)
        )
    p.add_argument("--seed", type=int, default=0, help="seed of the draw")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cuda or cuda:1")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tsvq", description="Generative models of 1D biosignals with VQ latents.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each stage's steps (INFO level)")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "prepare",
        help="WFDB records -> window store (resample, filter, window, split, normalise)",
        formatter_class=DefaultsHelpFormatter,
    )
    _add_prepare_arguments(p)
    p.add_argument("--out", required=True, help="folder of the window store")
    p.add_argument("--overwrite", action="store_true", help="replace a store tsvq made with another config")
    p.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="processes that read and window records (default: the machine's cores; the store is the same "
        "byte for byte whatever N)",
    )
    p.add_argument(
        "--part",
        metavar="I/N",
        help="write only part I of N (from 0) of the records, as one job of a job array; `tsvq merge-stores` joins "
        "the N parts into the store one job would write",
    )
    p.add_argument(
        "--shard-mb", type=float, default=1024, metavar="MB", help="the windows go to files of at most this many MiB"
    )
    p.set_defaults(func=cmd_prepare)

    for command, text in (
        ("impute", "fill the NaN stretches of a WFDB record with signal that agrees with both sides"),
        ("forecast", "continue a WFDB record by --seconds"),
    ):
        p = sub.add_parser(command, help=text, formatter_class=DefaultsHelpFormatter)
        p.add_argument("record", help="WFDB record path (no extension)")
        p.add_argument("--pipeline", default="ecg-single-lead", help="pipeline folder or shipped name")
        p.add_argument("--out", required=True, help="WFDB record to write (no extension)")
        if command == "forecast":
            p.add_argument("--seconds", type=float, required=True, help="how much to add after the record's end")
        p.add_argument(
            "--draws",
            type=int,
            default=1,
            help="fills to draw (further draws: channels NAME_drawK; their mean: NAME_mean)",
        )
        p.add_argument("--candidates", type=int, default=16, help="draws weighed by the signal after each gap")
        p.add_argument(
            "--choose",
            choices=["sample", "likeliest"],
            default="sample",
            help="keep a candidate by its weight (a draw given both sides) or the likeliest (one best guess)",
        )
        p.add_argument("--top-p", type=float, help="the WaveNet's nucleus (default: the pipeline's)")
        p.add_argument("--temperature", type=float, help="the WaveNet's temperature (default: the pipeline's)")
        p.add_argument("--steps", type=int, help="a diffusion or MaskGIT prior's steps (default: the pipeline's)")
        p.add_argument(
            "--prior",
            help="the pipeline's prior that fills, by name: a WaveNet, MaskGIT or diffusion prior (default: its "
            "first WaveNet)",
        )
        p.add_argument(
            "--rhythm",
            choices=["auto", "ecg", "none"],
            default="auto",
            help="ecg: beats planned from the R peaks around each gap guide the prior; auto: ecg for an mV codec",
        )
        p.add_argument(
            "--max-gap",
            type=float,
            help="seconds: a longer NaN stretch (or forecast) is refused (default: tsvq.repair.MAX_GAP_S, 60)",
        )
        p.add_argument(
            "--channels",
            nargs="+",
            help="channels to repair (default: the pipeline's lead, else the first in its unit)",
        )
        p.add_argument("--seed", type=int, default=0, help="seed of the draws (the same seed, the same fill)")
        p.add_argument("--device", default="cpu", help="torch device, e.g. cuda")
        p.add_argument("--overwrite", action="store_true", help="replace files tsvq wrote before")
        p.set_defaults(func=cmd_repair)

    p = sub.add_parser(
        "denoise",
        help="remove noise from a WFDB record with the pipeline's denoising encoder",
        formatter_class=DefaultsHelpFormatter,
    )
    p.add_argument("record", help="WFDB record path (no extension)")
    p.add_argument("--pipeline", default="ecg-single-lead", help="pipeline folder or shipped name")
    p.add_argument("--out", required=True, help="WFDB record to write (no extension)")
    p.add_argument(
        "--channels", nargs="+", help="channels to denoise (default: the pipeline's lead, else the first in its unit)"
    )
    p.add_argument("--device", default="cpu", help="torch device, e.g. cuda")
    p.add_argument("--overwrite", action="store_true", help="replace files tsvq wrote before")
    p.set_defaults(func=cmd_denoise)

    p = sub.add_parser(
        "merge-stores",
        help="join the parts `tsvq prepare --part I/N` wrote into one window store (links their files)",
        formatter_class=DefaultsHelpFormatter,
    )
    p.add_argument("parts", nargs="+", metavar="PART", help="the N part folders, in any order")
    p.add_argument("--out", required=True, help="folder of the window store")
    p.add_argument("--overwrite", action="store_true", help="replace a store tsvq made before")
    p.set_defaults(func=cmd_merge_stores)

    p = sub.add_parser(
        "train",
        help="train one stage (also under `accelerate launch -m tsvq.cli train ...`)",
        formatter_class=DefaultsHelpFormatter,
    )
    from tsvq.training.stages import stage_names

    p.add_argument("stage", choices=stage_names(), help="codec first; the priors need a trained codec")
    p.add_argument("--config", help="YAML file of the stage config (see recipes/)")
    p.add_argument("--store", help="window store folder (overrides the config)")
    p.add_argument("--codec", help="trained codec folder, for the prior stages")
    p.add_argument("--output-dir", help="where checkpoints, logs and the model folder go")
    p.add_argument(
        "--set",
        nargs="*",
        action="extend",
        default=[],
        metavar="KEY=VALUE",
        help="override any field, e.g. training.max_steps=500 (repeatable: --set a=1 --set b=2)",
    )
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "sample",
        help="draw new signals from a trained pipeline and write .npy, WFDB and a PNG grid",
        formatter_class=DefaultsHelpFormatter,
    )
    p.add_argument("--pipeline", required=True, help="pipeline folder (see `tsvq demo` or Pipeline.save_pretrained)")
    p.add_argument("--n", type=int, default=16, help="how many windows to draw")
    _add_prior_arguments(p)
    p.add_argument("--labels", nargs="+", help="class labels (one, or one per sample) for a conditional prior")
    p.add_argument("--batch-size", type=int, default=256, help="windows drawn at once (memory)")
    p.add_argument("--no-wfdb", action="store_true", help="skip writing WFDB records")
    p.add_argument("--out", required=True, help="folder for samples.npy, the WFDB records and the PNG grid")
    p.add_argument("--overwrite", action="store_true", help="replace an output tsvq made before (never anything else)")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser(
        "eval",
        help="reconstruction, codebook health and generation quality -> report.json + plots",
        formatter_class=DefaultsHelpFormatter,
    )
    p.add_argument("--pipeline", help="pipeline folder to evaluate")
    p.add_argument(
        "--samples",
        nargs="+",
        metavar="[NAME=]PATH",
        help="samples of any generator: .npy files of (n, L, C) windows in physical units, or `tsvq sample` folders",
    )
    p.add_argument("--data", help="window store with the held-out real windows")
    p.add_argument("--split", default="test", help="the store's split of held-out real windows")
    p.add_argument(
        "--n",
        type=int,
        help="generated windows (real windows: up to 2n, split in two halves; default 1000); with --task: "
        "stretches scored (default 100)",
    )
    p.add_argument(
        "--task",
        choices=["generation", "impute", "forecast", "denoise"],
        default="generation",
        help="what to score: generation (and reconstruction), or the pipeline repairing held-out stretches: a gap "
        "of --seconds filled, --seconds forecast, --noise removed; beside the baselines a specialist tries first",
    )
    p.add_argument("--seconds", type=float, default=0.5, help="--task impute: the gap; forecast: the horizon")
    p.add_argument(
        "--stretch-seconds", type=float, default=12.0, help="--task: consecutive windows joined into stretches of this"
    )
    p.add_argument("--draws", type=int, default=3, help="--task impute/forecast: draws of the pipeline (plotted)")
    p.add_argument(
        "--noise",
        nargs="+",
        metavar="RECORD",
        help="--task denoise: noise records, or 'NOISY - CLEAN' pairs whose difference is noise (nstdb's 118eXX - 118)",
    )
    p.add_argument(
        "--snr", type=float, nargs="+", default=[0.0, 6.0, 12.0, 24.0], help="--task denoise: input SNRs (dB, nst)"
    )
    _add_prior_arguments(p)
    p.add_argument("--seeds", type=int, default=3, help="figures are mean +- std over this many seeds")
    # names checked by tsvq.evaluation.baselines when the evaluation starts: importing it here would load the whole
    # evaluation package (matplotlib included) for every command
    p.add_argument(
        "--baselines",
        nargs="*",
        default=None,
        metavar="NAME",
        help="baseline generators scored beside the model: phase_randomised, autoregressive, gaussian, "
        "train_copies (default: all; none with an empty list)",
    )
    p.add_argument(
        "--no-references",
        action="store_true",
        help="skip the train_windows and train_decoded rows (training windows as they are and through the codec: "
        "what no model of the training split, and no prior over the codec, can beat)",
    )
    p.add_argument(
        "--floor-halves",
        choices=["blocks", "records"],
        default="blocks",
        help="how the held-out windows split into the reference and floor halves: time blocks within each record "
        "(long recordings), or whole records to one half each (many short ones: segment databases, where blocks "
        "would let a recording be compared with itself)",
    )
    p.add_argument("--folds", type=int, default=3, help="folds of the discriminative score")
    p.add_argument(
        "--classifier-steps",
        type=int,
        default=200,
        help="optimiser steps of the discriminative classifier and the forecaster (fewer: faster, noisier)",
    )
    p.add_argument(
        "--physiology",
        choices=["auto", "ecg", "ppg", "eeg", "none"],
        default="auto",
        help="physiology figures: ECG QRS complexes (rate, intervals, morphology), PPG pulse peaks, EEG band powers "
        "(with spectral entropy, line length, Hjorth parameters), or none (auto: PPG for a PLETH/PPG channel, ECG "
        "for a channel in mV, EEG for an EEG channel name or microvolts, none otherwise)",
    )
    p.add_argument("--no-physiology", action="store_true", help="no physiology figures (--physiology none)")
    p.add_argument(
        "--positive-label",
        metavar="LABEL",
        help="a conditional prior: also train-on-synthetic/test-on-real of this label against all others "
        "(e.g. the seizure set of an EEG database)",
    )
    p.add_argument(
        "--no-morphology", action="store_true", help="skip ECG beat delineation (P, QRS, T), the slowest ECG figures"
    )
    p.add_argument(
        "--search",
        type=int,
        default=0,
        metavar="N",
        help="reconstruct with analysis-by-synthesis code search over N candidates per position (slower)",
    )
    p.add_argument("--out", help="report folder")
    p.add_argument("--overwrite", action="store_true", help="replace an output tsvq made before (never anything else)")
    p.add_argument(
        "--compare",
        nargs="+",
        metavar="GENERATOR",
        help="generators side by side in one report: priors of --pipeline by name and [NAME=]PATH samples; "
        "or finished report folders, printed side by side",
    )
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser(
        "assemble",
        help="trained stage folders -> one pipeline folder (what sample, eval and compress load)",
        formatter_class=DefaultsHelpFormatter,
    )
    p.add_argument("--codec", required=True, help="trained codec folder (runs/<stage>/model)")
    p.add_argument(
        "--prior", nargs="*", help="trained prior folders, each named by its kind or as NAME=FOLDER (two of one kind)"
    )
    p.add_argument("--denoiser", help="trained denoising encoder folder (tsvq train denoiser), for tsvq denoise")
    p.add_argument("--description", default="", help="one line saved in pipeline.json (shown by tsvq.list_pretrained)")
    p.add_argument(
        "--sampling",
        nargs="*",
        action="extend",
        default=[],
        metavar="PRIOR.OPTION=VALUE",
        help="a prior's default sampling option, saved in pipeline.json (e.g. wavenet.top_p=0.95); "
        "sample and eval use it unless told otherwise",
    )
    p.add_argument(
        "--half",
        nargs="*",
        default=[],
        metavar="COMPONENT",
        help="components (codec, denoiser, prior kinds) whose weights are stored in float16: half the size, read "
        "back as float32",
    )
    p.add_argument("--out", required=True, help="pipeline folder")
    p.add_argument("--overwrite", action="store_true", help="replace an output tsvq made before (never anything else)")
    p.set_defaults(func=cmd_assemble)

    p = sub.add_parser(
        "compress",
        help="code a whole WFDB record into one small file (prints bit rate, ratio, PRDN)",
        formatter_class=DefaultsHelpFormatter,
    )
    p.add_argument("record", help="WFDB record path (with or without .hea)")
    p.add_argument("--pipeline", default="ecg-single-lead", help="pipeline folder or shipped name")
    p.add_argument(
        "--channels",
        nargs="+",
        help="channels to code ('all': every one; default: the pipeline's by alias, else the first in its unit)",
    )
    p.add_argument(
        "--search", type=int, default=0, metavar="K", help="code search over K candidates per position (slower, closer)"
    )
    p.add_argument("--quantizers", type=int, help="residual VQ: keep the first Q stages (lower bit rate)")
    p.add_argument(
        "--bitrate",
        type=float,
        metavar="B",
        help="choose the operating point: of every stage count (0: none) with a detail layer filling B bit/s per "
        "channel, the lowest PRDN",
    )
    p.add_argument(
        "--max-prdn",
        type=float,
        metavar="P",
        help="choose the operating point: the smallest file whose PRDN is at most P%% on every channel (stages, "
        "a detail layer, or both)",
    )
    p.add_argument("--no-prdn", action="store_true", help="skip decoding to measure PRDN")
    p.add_argument("--device", default="cpu", help="torch device")
    p.add_argument("--out", required=True, help="compressed file (e.g. 100.tsvqz)")
    p.add_argument("--overwrite", action="store_true", help="replace an output tsvq made before (never anything else)")
    p.set_defaults(func=cmd_compress)

    p = sub.add_parser(
        "decompress",
        help="a compressed file -> a WFDB record that wfdb.rdrecord opens",
        formatter_class=DefaultsHelpFormatter,
    )
    p.add_argument("file", help="compressed file made by `tsvq compress`")
    p.add_argument(
        "--pipeline", help="the pipeline that compressed it (default: the one the file names, when it is here)"
    )
    p.add_argument(
        "--rate",
        choices=["native", "pipeline"],
        default="native",
        help="write at the recording's rate or the pipeline's",
    )
    p.add_argument("--format", choices=["16", "212"], default="16", help="WFDB sample format")
    p.add_argument(
        "--derive-leads",
        choices=["auto", "yes", "no"],
        default="auto",
        help="add III, aVR, aVL, aVF from the decoded I and II (auto: when the file holds I, II, V1-V6 only)",
    )
    p.add_argument("--device", default="cpu", help="torch device")
    p.add_argument("--out", required=True, help="WFDB record path without extension (writes .hea and .dat)")
    p.add_argument("--overwrite", action="store_true", help="replace an output tsvq made before (never anything else)")
    p.set_defaults(func=cmd_decompress)

    p = sub.add_parser(
        "demo",
        help="the whole job on built-in data: prepare, train codec and priors, sample, evaluate",
        formatter_class=DefaultsHelpFormatter,
    )
    p.add_argument(
        "--source", default="mitdb208", help="mitdb208 (real ECG, default), synthetic, or a folder of WFDB records"
    )
    p.add_argument("--out", default="runs/demo", help="folder for the store, runs, pipeline, samples and report")
    p.add_argument("--fast", action="store_true", help="a smoke run with a few steps per stage")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return args.func(args)
    except TsvqError as error:
        print(f"tsvq {args.command}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # permissions, a full disk, a path that is not there: the system's words and the path
        where = f"{error.filename}: " if error.filename else ""
        print(f"tsvq {args.command}: error: {where}{error.strerror or error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
