"""Twelve-lead ECGs: standard sheets for samples and reports, and beats taken from lead II."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import ecg_like
from tsvq import plots

LEADS = ["I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"]


def test_sheet_needs_the_twelve_standard_leads(tmp_path):
    assert plots.has_twelve_leads(LEADS) and plots.has_twelve_leads([n.replace("AV", "aV") for n in LEADS][::-1])
    assert not plots.has_twelve_leads(LEADS[:11]) and not plots.has_twelve_leads(["MLII"])
    with pytest.raises(ValueError, match="12-lead sheet needs"):
        plots.twelve_lead_sheet(np.zeros((960, 11)), 100, LEADS[:11], tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_written_samples_of_a_twelve_lead_ecg_include_a_sheet(tmp_path):
    from tsvq.pipeline import SampleOutput
    from tsvq.sample_writer import write_samples

    signals = np.stack([np.stack([ecg_like(9.6, 100, seed=i)[:960]] * 12, axis=1) for i in range(2)]).astype(np.float32)
    output = SampleOutput(
        signals, np.zeros((2, 120), dtype=np.int64), 100.0, LEADS, ["mV"] * 12, {"prior": "diffusion"}
    )
    write_samples(output, tmp_path / "twelve", wfdb_records=False)
    assert (tmp_path / "twelve" / "sample_12lead.png").stat().st_size > 10_000
    single = SampleOutput(
        signals[..., :1], np.zeros((2, 120), dtype=np.int64), 100.0, ["II"], ["mV"], {"prior": "diffusion"}
    )
    write_samples(single, tmp_path / "one", wfdb_records=False)
    assert not (tmp_path / "one" / "sample_12lead.png").exists()


def test_twelve_lead_report_finds_beats_on_lead_ii_and_draws_standard_sheets(tmp_path):
    """A 12-lead store whose lead I is flat noise: beats come from lead II (none would be found on lead I), and the
    report draws the held-out and generated ECGs as standard 12-lead sheets."""
    from tsvq.data import ArraySource, PrepareConfig, prepare
    from tsvq.evaluation import EvalConfig, evaluate

    rate, rng = 100.0, np.random.default_rng(0)
    rows = []
    for i in range(8):
        ecg = ecg_like(40, rate, seed=i)[: int(40 * rate)]
        leads = [rng.normal(0, 0.005, len(ecg))] + [ecg * (0.5 + 0.1 * k) * (-1) ** k for k in range(11)]
        rows.append(np.stack(leads, axis=1))
    store = prepare(
        PrepareConfig(
            source="unused",
            rate_hz=rate,
            window_samples=960,
            channels=LEADS,
            test_groups=["row0", "row1", "row2"],
            val_groups=["row3"],
        ),
        tmp_path / "store",
        progress=False,
        sources=[ArraySource(np.stack(rows), rate, channel_names=LEADS)],
    )
    samples = np.asarray(store.windows[store.split_indices("val")])
    report = evaluate(
        store,
        tmp_path / "report",
        EvalConfig(n=len(samples), seeds=1, baselines=[], classifier_steps=5, morphology=False),
        samples=samples,
        progress=False,
    )
    generation = report["generation"]
    assert generation["beats"] == "QRS complexes (wfdb XQRS) on channel II"
    assert generation["generators"]["floor"]["figures"]["windows_without_beats"]["mean"] == 0
    assert (tmp_path / "report" / "twelve_lead_real.png").stat().st_size > 10_000
    assert (tmp_path / "report" / "twelve_lead_samples.png").exists()
