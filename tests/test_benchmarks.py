"""The benchmarks' bookkeeping: one registered question per results file, every file carrying where it came from,
and the tables that quote them regenerated from the files, never typed."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import eval_summary, tables
from benchmarks.common import RESULTS, provenance
from benchmarks.questions import BY_NAME, QUESTIONS

ROOT = Path(__file__).resolve().parents[1]


def test_every_results_file_answers_one_registered_question_and_says_where_it_came_from():
    files = {path.stem for path in RESULTS.glob("*.json")}
    assert files == set(BY_NAME), (files - set(BY_NAME), set(BY_NAME) - files)
    assert len(BY_NAME) == len(QUESTIONS)
    for name in files:
        assert not re.search(r"\d{4}-\d{2}-\d{2}", name), f"{name}: a dated copy; rewrite the file, git keeps the old"
        data = json.loads((RESULTS / f"{name}.json").read_text())
        assert list(data)[:5] == ["command", "machine", "versions", "commit", "date"], name
        assert data["command"] == BY_NAME[name].command, name
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC", data["date"]), name
        assert BY_NAME[name].headline(data), name


def test_the_tables_quoting_results_are_generated_from_them():
    checked = subprocess.run(
        [sys.executable, "-m", "benchmarks.tables", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    readme = (ROOT / "README.md").read_text()
    rows = re.search(r"<!-- tables:results -->\n(.*)<!-- /tables:results -->", readme, re.S).group(1)
    assert 3 <= len(rows.splitlines()) - 2 <= 10  # a handful of headline figures, each with its baseline
    with pytest.raises(SystemExit, match="no <!-- tables:nothing -->"):
        tables.replace_block("text without markers", "nothing", ["| a |"], Path("README.md"))


def test_a_results_file_records_the_command_as_typed_and_the_checkout(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["/somewhere/benchmarks/scale.py", "--workers", "1", "2"])
    stamp = provenance()
    assert stamp["command"] == "python -m benchmarks.scale --workers 1 2"
    assert stamp["versions"]["tsvq"] and stamp["versions"]["torch"]
    described = r"((v[\d.]+-\d+-g)?[0-9a-f]{7,}|v[\d.]+)(-dirty)?"  # a hash, or the nearest tag and how far past it
    assert re.fullmatch(described + r"|unknown \(not a git checkout\)", stamp["commit"]), stamp["commit"]


def test_an_evaluation_question_condenses_the_report_its_last_eval_writes():
    question = BY_NAME["mitbih-references"]
    assert eval_summary.report_folder(question.runs) == Path("runs/mitbih/eval-references")
    figures = {"frechet_distance": {"mean": 2.0, "std": 0.1, "per_seed": [2.0]}}
    report = {
        "seconds": 12.5,
        "generation": {
            "generators": {
                name: {"kind": name, "windows_per_seed": [3], "info": {}, "figures": figures, "memorisation_ratio": 1}
                for name in ("floor", "train_windows")
            },
            "informative": {"frechet_distance": True},
        },
        "label_classification": {"diffusion": {}},
    }
    condensed = eval_summary.condense(report)
    assert condensed["generation"]["train_windows"] == {"figures": figures, "memorisation_ratio": 1}
    assert condensed["eval_seconds"] == 12.5 and "label_classification" in condensed and "per_class" not in condensed
    with pytest.raises(SystemExit, match="no `tsvq eval --out DIR`"):
        eval_summary.report_folder(("tsvq assemble --codec c --out p",))


def test_pretrained_generation_draws_with_the_pipelines_saved_sampling_defaults():
    from argparse import Namespace

    from benchmarks.pretrained_generation import sampling_settings
    from tsvq.pipeline import Pipeline

    pipe = Pipeline.from_pretrained("ecg-single-lead")
    pipe.sampling = {"diffusion": {"guidance": 2.0}}  # as `tsvq assemble --sampling diffusion.guidance=2` saves it
    unset = Namespace(pipeline="ecg-single-lead", steps=None, sampler=None, guidance=None)
    assert sampling_settings(pipe, "diffusion", unset) == {"steps": 20, "sampler": "dpm", "guidance": 2.0}
    asked = Namespace(pipeline="ecg-single-lead", steps=8, sampler=None, guidance=1.0)
    assert sampling_settings(pipe, "diffusion", asked) == {"steps": 8, "sampler": "dpm", "guidance": 1.0}
    assert "guidance" not in sampling_settings(pipe, "wavenet", asked)  # a WaveNet has no guidance to set


def test_mitbih_noise_annotations_mark_the_lead_they_name():
    """``~`` subtypes are bit masks per signal (bit c noisy, bit c + 4 unreadable, -1 both unreadable), each holding
    until the next ``~``; the denoise benchmark draws its clean references clear of them."""
    import numpy as np
    import wfdb

    from benchmarks.mitbih import noisy_episodes, overlaps

    marks = wfdb.Annotation("r", "atr", sample=np.array([100, 200, 300, 400, 500, 600]),
                            symbol=["~", "N", "~", "~", "~", "~"], subtype=np.array([2, 0, 0, 1, 16, -1]))  # fmt: skip
    assert noisy_episodes(marks, 1).tolist() == [[100, 300], [600, np.iinfo(np.int64).max]]
    ends = np.iinfo(np.int64).max
    assert noisy_episodes(marks, 0).tolist() == [[400, ends]]  # noisy (1), then unreadable (16), then both (-1)
    episodes = noisy_episodes(marks, 1)
    assert overlaps(episodes, 250, 260) and overlaps(episodes, 299, 301) and not overlaps(episodes, 300, 600)


def test_gap_benchmarks_report_each_gap_under_the_rhythm_annotated_at_it():
    import numpy as np

    from benchmarks.gaps import RHYTHM_GROUPS, AnnotatedLead

    lead = AnnotatedLead(np.zeros(1000), np.array([]), np.array([]), np.array([100, 400, 700]),
                         np.array(["sinus", "AF/flutter", "other"]))  # fmt: skip
    assert [lead.rhythm_at(t) for t in (0, 100, 399, 400, 999)] == ["other", "sinus", "sinus", "AF/flutter", "other"]
    assert RHYTHM_GROUPS["(AFL"] == RHYTHM_GROUPS["(AFIB"] == "AF/flutter" and "(VT" not in RHYTHM_GROUPS


def test_twelve_lead_curves_are_read_between_their_points_only():
    import numpy as np

    from benchmarks.twelve_lead_compression import in_standard_order, read_at

    points = {"1": {"bits_per_second": 500.0, "prdn": 40.0}, "2": {"bits_per_second": 2000.0, "prdn": 10.0}}
    assert read_at(points, 1000.0) == pytest.approx(20.0)  # halfway on log-log axes
    assert read_at(points, 400.0) is None and read_at(points, 2500.0) is None
    names = ["V1", "V2", "V3", "V4", "V5", "V6", "AVF", "AVL", "AVR", "III", "II", "I"]
    ordered = in_standard_order(np.arange(12.0)[None].repeat(3, 0), names)
    assert ordered[0].tolist() == [11, 10, 9, 8, 7, 6, 0, 1, 2, 3, 4, 5]


def test_gap_timing_oracle_knows_the_count_of_beats_in_a_gap_but_not_their_times():
    import numpy as np

    from benchmarks.gap_timing import PLANS, plans
    from tsvq.data.preprocess import Preprocessing
    from tsvq.data.synthetic import random_subjects, synthesize

    rate = 250.0
    ecg, beats = synthesize(random_subjects(1, seed=3)[0], 20.0, rate, seed=1)
    x = Preprocessing(sampling_rate_hz=rate).condition(ecg[:, None], rate)[:, 0]
    a, b = int(10 * rate), int(12 * rate)
    inside = beats[(beats >= a) & (beats < b)]
    timed = plans(x, beats, a, b, rate)
    assert set(timed) == set(PLANS)
    for plan, times in timed.items():  # steady synthetic sinus rhythm: every plan lands each beat within 75 ms
        placed = times[(times >= a) & (times < b)]
        assert len(placed) == len(inside) and np.abs(placed - inside).max() < 0.075 * rate, plan
    early = beats.copy()
    early[np.flatnonzero(beats == inside[0])] -= int(0.3 * rate)  # a premature beat inside the gap
    oracle = plans(x, early, a, b, rate)["knowing_the_count"]
    assert len(oracle[(oracle > a) & (oracle < b)]) == len(inside)  # the count it is told ...
    assert np.abs(oracle - inside[0] + int(0.3 * rate)).min() > 0.075 * rate  # ... but not where the early beat fell
