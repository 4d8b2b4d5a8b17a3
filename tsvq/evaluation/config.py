"""What `tsvq eval` scores and how: one dataclass, shared by the report and the modules that build its parts."""

from __future__ import annotations

from dataclasses import dataclass, field

from tsvq.config import check_ranges
from tsvq.errors import ConfigError
from tsvq.evaluation.physiology import PHYSIOLOGY_KINDS


@dataclass
class EvalConfig:
    split: str = "test"
    n: int = 1000  # windows drawn from each generator per seed; real windows are capped at 2n (two halves)
    prior: str | None = None  # the pipeline's prior to score (None: its first, unless only external samples are scored)
    priors: list[str] = field(default_factory=list)  # more of the pipeline's priors, side by side (`--compare`)
    sampling: dict = field(default_factory=dict)  # the priors' sampling options, e.g. {"steps": 20, "sampler": "dpm"}
    seed: int = 0
    seeds: int = 3  # figures are mean +- std over this many seeds (real split, samples and classifiers reseeded)
    baselines: list[str] | None = None  # named baselines to score beside the generators (None: all of them)
    train_windows: int = 2000  # training windows the baselines are fitted to and memorisation is measured against
    num_kernels: int = 256
    folds: int = 3
    classifier_steps: int = 200  # optimiser steps of the post-hoc classifier and forecaster
    physiology: str = "auto"  # "ecg" (QRS), "ppg" (pulse peaks), "eeg" (band powers...), "none", "auto" (channels)
    positive_label: str | None = None  # a conditional prior: also TSTR of this label against the rest (e.g. seizure)
    morphology: bool = True  # ECG beat delineation (P/QRS/T), when neurokit2 is installed (tsvq[morphology])
    plots: bool = True
    search: int = 0  # reconstruction: analysis-by-synthesis code search over this many candidates (0: nearest codes)
    references: bool = True  # score the train_windows and train_decoded references (the parts of a prior's gap)
    floor_halves: str = "blocks"  # the real halves: "blocks" of time within records, or whole "records" each

    def __post_init__(self) -> None:
        check_ranges(
            self, positive=("num_kernels", "classifier_steps", "train_windows"), non_negative=("search", "seed")
        )
        for name, least in (("n", 2), ("seeds", 1), ("folds", 2)):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < least:
                raise ConfigError(f"{name} = {getattr(self, name)!r}: must be an integer of at least {least}")
        if isinstance(self.physiology, bool):  # the flag of report format 1
            self.physiology = "auto" if self.physiology else "none"
        if self.physiology not in ("auto", "none", *PHYSIOLOGY_KINDS):
            raise ConfigError(f"physiology must be auto, none, ecg, ppg or eeg, not {self.physiology!r}")
        if self.floor_halves not in ("blocks", "records"):
            raise ConfigError(f"floor_halves must be blocks or records, not {self.floor_halves!r}")

    @property
    def seed_list(self) -> list[int]:
        """The seeds every figure is averaged over."""
        return [self.seed + i for i in range(self.seeds)]
