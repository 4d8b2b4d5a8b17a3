"""Evaluation: reconstruction, codebook health and generation quality, on plain arrays or a trained pipeline."""

from tsvq.codec.metrics import codebook_report, mse, prd, prdn, reconstruction_report, snr_db
from tsvq.evaluation.baselines import BASELINES, Baseline, fit_baselines
from tsvq.evaluation.features import RandomKernelFeatures
from tsvq.evaluation.generation import (
    amplitude_distance,
    autocorrelation_distance,
    discriminative_score,
    frechet_distance,
    mmd_rbf,
    nearest_shifted_distances,
    phase_randomized,
    predictive_score,
    psd_distance_db,
)
from tsvq.evaluation.physiology import heart_rhythm, rhythm_distance
from tsvq.evaluation.report import EvalConfig, evaluate
from tsvq.evaluation.tables import compare_reports, format_table

__all__ = [
    "BASELINES",
    "Baseline",
    "EvalConfig",
    "RandomKernelFeatures",
    "amplitude_distance",
    "autocorrelation_distance",
    "codebook_report",
    "compare_reports",
    "discriminative_score",
    "evaluate",
    "fit_baselines",
    "format_table",
    "frechet_distance",
    "heart_rhythm",
    "mmd_rbf",
    "mse",
    "nearest_shifted_distances",
    "phase_randomized",
    "prd",
    "prdn",
    "predictive_score",
    "psd_distance_db",
    "reconstruction_report",
    "rhythm_distance",
    "snr_db",
]
