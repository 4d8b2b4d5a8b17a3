"""Every recipe in recipes/ parses into its config, and every codec recipe builds its model: a typo in a recipe
fails here instead of minutes into a user's run."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from tsvq.cli import load_stage_config
from tsvq.codec import VQVAE
from tsvq.config import from_dict, load_yaml
from tsvq.data import PrepareConfig
from tsvq.data.leads import STANDARD_LEADS
from tsvq.training.stages import stage_names

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
STAGE_FILES = sorted(p for p in RECIPES.glob("*/*.yaml") if p.stem.split("-")[0] in stage_names())


@pytest.mark.parametrize("path", sorted(RECIPES.glob("*/prepare.yaml")), ids=lambda p: p.parent.name)
def test_prepare_recipes_parse(path):
    config = from_dict(PrepareConfig, load_yaml(path)["data"], str(path))
    assert config.source and config.rate_hz


@pytest.mark.parametrize("path", STAGE_FILES, ids=lambda p: f"{p.parent.name}-{p.stem}")
def test_stage_recipes_parse_and_codecs_build(path):
    config = load_stage_config(path.stem.split("-")[0], str(path), [])
    assert config.training.max_steps > 0
    if path.stem.startswith("codec"):
        # the codec fits the windows its dataset's prepare recipe makes (a PTB-XL window of 1000 samples did not
        # fit a downsampling of 16)
        data = from_dict(PrepareConfig, load_yaml(path.parent / "prepare.yaml")["data"], "prepare")
        length = data.window_samples or round(data.window_seconds * data.rate_hz)
        model = VQVAE(window_length=length, **asdict(config.model))
        assert length % model.config.downsample_factor == 0, (length, model.config.downsample_factor)


def test_every_dataset_recipe_has_a_prepare_and_a_codec():
    for folder in (p for p in RECIPES.iterdir() if p.is_dir() and p.name != "accelerate"):
        assert (folder / "prepare.yaml").exists() and (folder / "codec.yaml").exists(), folder


REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
# Each dataset recipe's prepare step, run as a user runs it (`--source ../shared/data/DB`) on a few real records.
FEW_RECORDS = {
    "mitbih": (
        "mitdb",
        [
            "source.records=['100', '101', '102', '106', '201', '202']",
            "test_groups=['100', '201+202']",
            "val_groups=['106']",
            "lead_projections=2",
        ],
    ),
    "ptbxl": ("ptbxl", ["source.records=" + str([f"records100/00000/{i:05d}_lr" for i in range(1, 61)])]),
    "cinc2017": ("cinc2017", ["source.records=" + str([f"A{i:05d}" for i in range(1, 21)])]),
    "bidmc": ("bidmc", ["source.records=" + str([f"bidmc{i:02d}" for i in range(1, 11)])]),
    # four segments of each set (set C's files end in .TXT)
    "bonn": (
        "bonn",
        ["source.records=" + str([f"set{s}/{p}{i:03d}" for s, p in zip("ABCDE", "ZONFS") for i in range(1, 5)])],
    ),
    # several databases from one folder (--source ../shared/data); a few records of each (indices pick the source)
    "pretrained": (
        ".",
        [
            "source.0.records=['101', '106', '100']",
            "source.0.exclude=['100']",
            "source.1.records=" + str([f"records100/00000/{i:05d}_lr" for i in range(1, 31)]),
            "source.2.records=['A00001', 'A00002', 'A00003', 'A00004']",
            "source.3.records=['bidmc01', 'bidmc02']",
            "val_fraction=0.2",
        ],
    ),
}


@pytest.mark.parametrize("recipe", sorted(FEW_RECORDS))
def test_dataset_recipe_prepares_real_records(recipe, tmp_path, capsys):
    import numpy as np

    from tsvq.cli import main
    from tsvq.data import WindowStore

    folder, overrides = FEW_RECORDS[recipe]
    if not (REAL_DATA / folder).is_dir():
        pytest.skip(
            f"real recordings not found at {REAL_DATA / folder} (they live in ../shared/data beside the project)"
        )
    assert (
        main(
            [
                "prepare",
                "--config",
                str(RECIPES / recipe / "prepare.yaml"),
                "--source",
                str(REAL_DATA / folder),
                "--out",
                str(tmp_path / "store"),
                "--set",
                *overrides,
            ]
        )
        == 0
    )
    store = WindowStore(tmp_path / "store")
    split_of_group: dict[str, set] = {}
    for record in store.manifest["records"]:
        split_of_group.setdefault(record["group"], set()).add(record["split"])
    assert all(len(splits) == 1 for splits in split_of_group.values())  # no patient in two splits
    assert len(store.split_indices("train")) and np.isfinite(store.windows[:64]).all()
    labels = set(store.index["label"].tolist())
    if recipe == "mitbih":
        names = {r["name"].split(":")[0] for r in store.manifest["records"]}
        assert "102" not in names  # paced: left out
        assert split_of_group["201+202"] == {"test"} and {"201", "202"} <= names
        assert labels <= {"N", "S", "V", "F", "Q", ""} and "V" in labels
    elif recipe == "ptbxl":
        assert store.num_channels == 12 and store.window_length == 960
        assert labels <= {"NORM", "MI", "STTC", "CD", "HYP", ""} and "NORM" in labels
        assert all(len(store.split_indices(s)) for s in ("train", "val", "test"))
    elif recipe == "pretrained":
        sources = {Path(r["source"]).name for r in store.manifest["records"]}
        assert sources == {"mitdb", "ptbxl", "cinc2017", "bidmc"} and store.units == ["mV"]
        names = {r["name"] for r in store.manifest["records"]}
        assert not any(n.startswith("100") for n in names) and not any("PLETH" in n or "RESP" in n for n in names)
        folds = {r["labels"].get("strat_fold") for r in store.manifest["records"] if Path(r["source"]).name == "ptbxl"}
        assert folds and folds <= {str(f) for f in range(1, 9)}  # folds 9 and 10 stay unseen
        # each window labelled by its lead, for the lead-conditional prior; MIT-BIH's Holter lead II and CinC's
        # handheld lead are their own labels
        assert {"II", "MLII", "V1", "aVR", "V6", "handheld"} <= labels <= {*STANDARD_LEADS, "MLII", "handheld", ""}
    elif recipe == "cinc2017":
        assert labels <= {"N", "A", "O", "~"} and "A" in labels
    elif recipe == "bonn":  # by segment, stratified by set: every split holds every set
        assert store.units == ["uV"] and store.sampling_rate_hz == 128 and store.window_length == 512
        sets = {f"set{s}" for s in "ABCDE"}
        assert all(set(store.labels(split).tolist()) == sets for split in ("train", "val", "test"))
    else:
        assert store.channel_names == ["PLETH"] and store.units == ["NU"]


@pytest.mark.parametrize("recipe", ["bidmc", "bonn", "cinc2017", "mitbih", "pretrained", "ptbxl"])
def test_dataset_recipe_trains_every_stage_on_real_records(recipe, tmp_path, capsys):
    """Each database's stage recipes, as written (only the step count, batch and folders overridden), train on a
    store prepared from a few of its real records, and the pipeline they assemble into samples: a recipe that does
    not fit its data (window length, channels, labels) fails here, not an hour into a user's run."""
    from tsvq.cli import main

    folder, overrides = FEW_RECORDS[recipe]
    if not (REAL_DATA / folder).is_dir():
        pytest.skip(
            f"real recordings not found at {REAL_DATA / folder} (they live in ../shared/data beside the project)"
        )
    store = tmp_path / "store"
    # fewer windows of the long records (a window every 33-41 s): the prior stages encode every one of them
    fewer = {
        "mitbih": ["stride_seconds=40.96", "lead_projections=0"],
        "bidmc": ["stride_seconds=32.768"],
        "pretrained": ["stride_seconds=40.96", "lead_projections=0"],
    }.get(recipe, [])
    assert (
        main(
            [
                "prepare",
                "--config",
                str(RECIPES / recipe / "prepare.yaml"),
                "--source",
                str(REAL_DATA / folder),
                "--out",
                str(store),
                "--set",
                *overrides,
                *fewer,
            ]
        )
        == 0
    )
    quick = [
        "training.max_steps=2",
        "training.batch_size=4",
        "training.eval_every=2",
        "training.checkpoint_every=2",
        "training.warmup_steps=1",
        "training.progress=false",
        "training.log_with=['jsonl']",
    ]
    codec = tmp_path / "codec"
    assert (
        main(
            [
                "train",
                "codec",
                "--config",
                str(RECIPES / recipe / "codec.yaml"),
                "--store",
                str(store),
                "--set",
                *quick,
                f"training.output_dir={codec}",
            ]
        )
        == 0
    )
    priors, denoiser, trained = [], [], {}  # trained: a recipe's own model folder -> where this test wrote it
    # a stage that fine-tunes another (init_from) runs after it (a chain in its order), from what this test
    # trained, and replaces it
    configs = {path: load_yaml(path) for path in sorted((RECIPES / recipe).glob("*.yaml"))}
    made_by = {f"{c['training']['output_dir']}/model": path for path, c in configs.items() if "training" in c}

    def fine_tunes(path: Path) -> int:
        base = made_by.get(configs[path].get("init_from"))
        return 0 if base is None else 1 + fine_tunes(base)

    for path in sorted(configs, key=fine_tunes):
        stage = path.stem.split("-")[0]
        if stage in stage_names() and stage != "codec":
            output = tmp_path / path.stem
            recipe_config = configs[path]
            start, base = [], trained.get(recipe_config.get("init_from"))
            if base:
                start = [f"init_from={base}"]
            assert (
                main(
                    [
                        "train",
                        stage,
                        "--config",
                        str(path),
                        "--store",
                        str(store),
                        "--codec",
                        str(codec / "model"),
                        "--set",
                        *quick,
                        *start,
                        f"training.output_dir={output}",
                    ]
                )
                == 0
            )
            trained[f"{recipe_config['training']['output_dir']}/model"] = str(output / "model")
            if stage == "denoiser":
                denoiser = ["--denoiser", str(output / "model")]
            elif base:
                priors[priors.index(base)] = str(output / "model")
            else:
                priors.append(str(output / "model"))
    assert priors, f"recipes/{recipe} has no prior recipe"
    assemble = ["assemble", "--codec", str(codec / "model"), "--prior", *priors, *denoiser]
    assert main([*assemble, "--out", str(tmp_path / "pipeline")]) == 0
    assert (
        main(
            [
                "sample",
                "--pipeline",
                str(tmp_path / "pipeline"),
                "--n",
                "2",
                "--steps",
                "2",
                "--out",
                str(tmp_path / "samples"),
            ]
        )
        == 0
    )
    import numpy as np

    from tsvq.data import WindowStore

    samples = np.load(tmp_path / "samples" / "samples.npy")
    windows = WindowStore(store)
    assert samples.shape == (2, windows.window_length, windows.num_channels) and np.isfinite(samples).all()
    if recipe == "pretrained":  # the denoiser recipe trained on nstdb noise; its pipeline denoises a real record
        from tsvq.data import read_record
        from tsvq.pipeline import Pipeline

        assert denoiser, "recipes/pretrained has no denoiser recipe"
        record = read_record(REAL_DATA / "mitdb" / "100")
        ten_seconds = record.signal[: int(10 * record.sampling_rate_hz), :1]
        pipe = Pipeline.from_pretrained(tmp_path / "pipeline")
        out = pipe.denoise(ten_seconds, record.sampling_rate_hz)
        assert out.shape == ten_seconds.shape and np.isfinite(out).all()
        # the diffusion prior is lead-conditional: a user asks for lead II by name
        assert {"II", "MLII", "aVR", "handheld"} <= set(pipe.prior("diffusion").labels)
        lead_ii = pipe.sample(2, prior="diffusion", labels="II", steps=2, progress=False)
        assert lead_ii.signals.shape == samples.shape and np.isfinite(lead_ii.signals).all()
    if recipe == "bonn":  # EEG figures and the seizure task on the conditional prior, as the recipe README runs them
        report = tmp_path / "report"
        args = ["eval", "--pipeline", str(tmp_path / "pipeline"), "--data", str(store), "--n", "10", "--seeds", "1"]
        quick_eval = ["--steps", "2", "--classifier-steps", "5", "--baselines", "gaussian", "--no-references"]
        as_written = ["--positive-label", "setE", "--floor-halves", "records"]
        assert main([*args, *quick_eval, *as_written, "--out", str(report)]) == 0
        written = json.loads((report / "report.json").read_text())
        assert written["generation"]["real"]["halves"] == "records"
        figures = written["generation"]["generators"]["diffusion"]["figures"]
        assert "alpha_power_wasserstein" in figures and "heart_rate_wasserstein_bpm" not in figures
        task = written["label_classification"]["diffusion"]["one_vs_rest"]
        assert task["label"] == "setE" and set(task["train_synthetic_test_real"]["f1_per_class"]) == {"rest", "setE"}
        assert (report / "eeg_figures.png").is_file()
        for section in written["per_class"]["diffusion"].values():  # one held-out segment per set: no two halves
            assert "1 record: too few for two halves of whole records" in section["skipped"]


def test_the_ptbxl_12_lead_compression_recipe_codes_eight_leads_and_gives_back_twelve(tmp_path):
    """recipes/ptbxl/prepare-8lead.yaml and codec-8lead.yaml as written (steps and folders overridden) on 60 real
    PTB-XL ECGs; the codec compresses a 12-lead ECG it never saw and decompresses all twelve leads."""
    import numpy as np

    from tsvq.cli import main
    from tsvq.data import WindowStore, read_record
    from tsvq.pipeline import Pipeline

    config = from_dict(PrepareConfig, load_yaml(RECIPES / "ptbxl" / "prepare-8lead.yaml")["data"], "prepare-8lead")
    assert config.channels == ["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"]
    if not (REAL_DATA / "ptbxl").is_dir():
        pytest.skip(f"real recordings not found at {REAL_DATA / 'ptbxl'} (they live in ../shared/data)")
    store, codec = tmp_path / "store", tmp_path / "codec"
    prepare = [
        "prepare",
        "--config",
        str(RECIPES / "ptbxl" / "prepare-8lead.yaml"),
        "--source",
        str(REAL_DATA / "ptbxl"),
    ]
    assert main([*prepare, "--out", str(store), "--set", *FEW_RECORDS["ptbxl"][1]]) == 0
    assert WindowStore(store).num_channels == 8
    quick = ["training.max_steps=2", "training.batch_size=4", "training.eval_every=2", "training.checkpoint_every=2",
             "training.warmup_steps=1", "training.progress=false", f"training.output_dir={codec}"]  # fmt: skip
    train = ["train", "codec", "--config", str(RECIPES / "ptbxl" / "codec-8lead.yaml"), "--store", str(store)]
    assert main([*train, "--set", *quick]) == 0
    assert main(["assemble", "--codec", str(codec / "model"), "--out", str(tmp_path / "pipeline")]) == 0
    pipe = Pipeline.from_pretrained(tmp_path / "pipeline")
    ecg = read_record(REAL_DATA / "ptbxl" / "records100" / "00000" / "00099_lr")  # not among the 60
    decoded = pipe.decompress(pipe.compress(ecg, quantizers=2))
    assert decoded.signal.shape == (1000, 12) and np.isfinite(decoded.signal).all()
    assert {"III", "aVR", "aVL", "aVF"} <= set(decoded.channel_names)
