"""Beat timing inside a gap (tsvq.rhythm) and the rhythm-guided gap filling of Pipeline.impute that uses it."""

from __future__ import annotations

import numpy as np
import pytest
import wfdb
from scipy import signal as sps

from tests.conftest import shared_data
from tsvq import repair
from tsvq.data.synthetic import random_subjects, synthesize
from tsvq.errors import ConfigError
from tsvq.evaluation.repair_baselines import beat_matches, template_both_sides
from tsvq.rhythm import (
    beat_fill,
    gap_plan_sides,
    gap_sides,
    median_beat,
    plan_times_the_sides,
    planned_beats,
    r_peaks,
)

RATE = 250.0
TOLERANCE = int(0.075 * RATE)  # the +-75 ms of the gap benchmark


def regular_ecg(seconds: float = 30, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic ECG band-passed as the shipped pipeline conditions it, and its true R peaks."""
    x, peaks = synthesize(random_subjects(4, seed=2)[seed], seconds, RATE, seed=seed)
    return sps.sosfiltfilt(sps.butter(4, [0.5, 40], "bandpass", fs=RATE, output="sos"), x), peaks


def f1(found: np.ndarray, truth: np.ndarray) -> float:
    return 2 * len(beat_matches(found, truth, TOLERANCE)) / max(len(found) + len(truth), 1)


def test_planned_beats_space_evenly_and_drawn_timings_still_meet_both_sides():
    before, after = np.array([0, 200, 400, 600]), np.array([1400, 1600])
    np.testing.assert_allclose(planned_beats(before, after, 1400), [800, 1000, 1200])
    rng = np.random.default_rng(0)
    np.testing.assert_allclose(planned_beats(before, after, 1400, rng), [800, 1000, 1200])  # a steady rhythm: no spread
    np.testing.assert_allclose(planned_beats(before, np.array([], dtype=int), 1000), [800, 1000, 1200])  # forecast
    irregular = np.array([0, 180, 420, 590, 830])
    draws = [planned_beats(irregular, np.array([1700]), 1700, rng) for _ in range(6)]
    assert all(len(d) == len(draws[0]) == 3 for d in draws)  # the count the sides allow, in every draw
    assert all((np.diff([830, *d, 1700]) > 0).all() for d in draws) and np.ptp([d[0] for d in draws]) > 10


def test_planned_beats_carry_a_bigeminal_pattern_through_the_gap():
    before = np.array([0, 150, 400, 550, 800, 950, 1200])  # short, long, ...: a premature beat every other beat
    after = np.array([2000, 2150, 2400])
    np.testing.assert_allclose(planned_beats(before, after, 2000), [1350, 1600, 1750])  # the phase carried on
    np.testing.assert_allclose(planned_beats(before, after, 2000, pattern=False), [1400, 1600, 1800])  # evenly
    jittered = np.array([0, 205, 395, 610, 800, 1003, 1200])  # sinus rhythm with a little variability
    np.testing.assert_allclose(planned_beats(jittered, np.array([1800, 2000]), 1800), [1400, 1600])


def test_a_plan_is_trusted_only_where_it_times_the_beats_it_can_see():
    steady = np.arange(0, 2000, 200)  # every 0.8 s
    assert plan_times_the_sides(steady, RATE)
    assert plan_times_the_sides(np.array([0, 205, 395, 610, 800, 1003, 1200, 1390, 1610]), RATE)  # a little jitter
    premature = steady.copy()
    premature[6] -= 60  # one beat 240 ms early: no plan from its neighbours puts a beat there
    assert not plan_times_the_sides(premature, RATE)
    fibrillation = np.cumsum(np.random.default_rng(0).uniform(100, 260, 12)).astype(int)
    assert not plan_times_the_sides(fibrillation, RATE)
    assert plan_times_the_sides(premature[:5], RATE)  # too few beats to check: trusted as before


def test_gap_sides_find_the_beats_that_time_a_gap_and_beat_fill_rebuilds_it():
    x, peaks = regular_ecg()
    a, b = 3000, 3500
    before, after = gap_sides(x, a, b, RATE)
    truth_before, truth_after = peaks[(peaks >= a - 2000) & (peaks < a)], peaks[(peaks >= b) & (peaks < b + 1000)]
    assert f1(before, truth_before) == 1.0 and abs(after[0] - truth_after[0]) <= 5  # the first beat after: found
    template = median_beat(x[a - 2000 : a], before - (a - 2000), RATE)
    inside = peaks[(peaks > before[-1]) & (peaks < after[0])]
    fill = beat_fill(x[a - 1], x[b], a, b, [before[-1], *inside, after[0]], template, RATE)
    prdn = np.linalg.norm(fill - x[a:b]) / np.linalg.norm(x[a:b] - x[a:b].mean())
    assert prdn < 0.35, prdn  # the true timing and the median beat: close to the truth
    assert abs(fill[0] - x[a - 1]) < 0.05 and abs(fill[-1] - x[b]) < 0.05  # no step at either side
    assert len(r_peaks(x[:100], RATE)) == 0  # under a second: nothing to find


@pytest.mark.parametrize("seed", [1, 3])
def test_peaks_a_gap_cuts_are_found_and_aligned_to_the_template(seed):
    x, peaks = regular_ecg(seed=seed)
    a, b = int(peaks[10]) + 1, int(peaks[11]) + 1  # the gap starts just after one R peak and ends just after the next
    holed = x.copy()
    holed[a:b] = np.interp(np.arange(a, b), [a - 1, b], [x[a - 1], x[b]])  # bridged, as impute's encoder sees it
    found_before, found_after = gap_sides(holed, a, b, RATE)
    assert found_before[-1] < peaks[10] - 100 and abs(found_after[0] - peaks[11]) > 3  # XQRS: missed, and off
    sides = gap_plan_sides(holed, a, b, RATE)
    assert abs(sides.before[-1] - peaks[10]) <= 3 and abs(sides.after[0] - peaks[11]) <= 3
    assert f1(sides.before[:-1], peaks[(peaks >= a - 2000) & (peaks < peaks[10])]) == 1.0  # the others kept
    fill = beat_fill(x[a - 1], x[b], a, b, [sides.before[-1], sides.after[0]], sides.template, RATE)
    prdn = np.linalg.norm(fill - x[a:b]) / np.linalg.norm(x[a:b] - x[a:b].mean())
    assert prdn < 0.6, prdn  # on the level: no ramp from a cut QRS complex (above 3 with XQRS's peaks)


def test_a_short_gap_through_one_qrs_complex_gets_that_beat_once():
    x, peaks = regular_ecg()
    a, b = int(peaks[10]), int(peaks[10]) + 4  # 16 ms from the R peak on
    holed = x.copy()
    holed[a:b] = np.interp(np.arange(a, b), [a - 1, b], [x[a - 1], x[b]])
    sides = gap_plan_sides(holed, a, b, RATE)
    assert abs(sides.before[-1] - peaks[10]) <= 2 and abs(sides.after[0] - peaks[11]) <= 2  # not the same beat twice
    times = [sides.before[-1], *planned_beats(sides.before, sides.after, b), sides.after[0]]
    fill = beat_fill(x[a - 1], x[b], a, b, times, sides.template, RATE)
    assert np.abs(fill - x[a:b]).max() < 0.1


def test_impute_places_beats_where_the_rhythm_puts_them(shipped):
    x, peaks = regular_ecg(seconds=30, seed=0)
    holed = x.copy()
    gaps = [(2500, 3000), (4000, 4500)]
    for a, b in gaps:
        holed[a:b] = np.nan
    out = shipped.impute(holed, RATE, draws=3, seed=0, candidates=4)
    for a, b in gaps:
        truth = peaks[(peaks >= a) & (peaks < b)]
        found = r_peaks(out.signals[0, :, 0], RATE)
        assert f1(found[(found >= a) & (found < b)], truth) >= 0.9
    assert (out.spread[out.filled] > 0).any()  # later draws draw their timing too
    assert out.timing_unsure is not None and not out.timing_unsure.any()  # a steady rhythm: the draws are trusted
    early = holed.copy()
    short = (6900, 6975)  # 0.3 s, shorter than a beat interval: it holds at most one beat, which both sides place
    for a, _ in [*gaps, short]:  # every other beat before the gaps 200 ms early: no plan times them
        for p in peaks[(peaks > a - 1500) & (peaks < a - 100)][::2]:
            early[p - 120 : p + 120] = holed[p - 70 : p + 170]
    early[short[0] : short[1]] = np.nan
    unsure = shipped.impute(early, RATE, draws=2, seed=0, candidates=2).timing_unsure
    expected = np.isnan(early)
    expected[short[0] : short[1]] = False
    np.testing.assert_array_equal(unsure, expected[:, None])
    with pytest.raises(ConfigError, match="rhythm must be one of auto, ecg, none"):
        shipped.impute(holed, RATE, rhythm="sinus")


def test_a_plan_that_times_the_beats_before_a_gap_is_followed_closely(shipped, monkeypatch):
    x, peaks = regular_ecg(seconds=30, seed=0)
    gap = np.zeros(len(x), dtype=bool)
    gap[4000:4500] = True
    guides = repair._rhythm_guides(np.where(gap, 0.0, x), gap, RATE, 1, np.random.default_rng(0))
    assert guides.sure[gap].all() and not guides.unsure.any() and not guides.sure[~gap].any()
    end = np.zeros(len(x), dtype=bool)
    end[-500:] = True  # a forecast: no beats after it to check the plan's last beats against
    assert not repair._rhythm_guides(np.where(end, 0.0, x), end, RATE, 1, np.random.default_rng(0)).sure.any()
    early = x.copy()
    for p in peaks[(peaks > 2500) & (peaks < 3900)][::2]:  # every other beat before the gap 200 ms early
        early[p - 120 : p + 120] = x[p - 70 : p + 170]
    missed = repair._rhythm_guides(np.where(gap, 0.0, early), gap, RATE, 1, np.random.default_rng(0))
    assert not missed.sure.any() and missed.unsure[gap].all()
    spreads = []
    weights = repair._guide_weights
    monkeypatch.setattr(repair, "_guide_weights", lambda *a: spreads.append(a[-1]) or weights(*a))
    for signal, expected in ((x, repair.SURE_GUIDE_SPREAD), (early, repair.GUIDE_SPREAD)):
        spreads.clear()
        shipped.impute(np.where(gap, np.nan, signal), RATE, seed=0, candidates=2)
        assert spreads == [expected]


def test_impute_on_a_real_record_times_beats_like_the_two_sided_template(shipped):
    record = wfdb.rdrecord(str(shared_data() / "100"), channels=[0], sampto=360 * 120)
    beats = wfdb.rdann(str(shared_data() / "100"), "atr", sampto=360 * 120).sample
    x = shipped.preprocessing.condition(record.p_signal, 360.0)[:, 0]
    beats = np.round(beats * RATE / 360).astype(int)
    hits = {"tsvq": 0.0, "template": 0.0}
    starts = np.random.default_rng(0).integers(3000, len(x) - 2000, 6)
    for k, a in enumerate(starts):
        b = a + 500  # 2 s
        holed = x.copy()
        holed[a:b] = np.nan
        filled = {"tsvq": shipped.impute(holed, RATE, seed=k, candidates=4).signals[0, :, 0]}
        filled["template"] = x.copy()
        filled["template"][a:b] = template_both_sides(x, a, b, RATE)
        truth = beats[(beats >= a) & (beats < b)]
        for name, y in filled.items():
            found = r_peaks(y[a - 2000 : b + 1000], RATE) + a - 2000
            hits[name] += f1(found[(found >= a) & (found < b)], truth) / len(starts)
    assert hits["tsvq"] >= 0.85 and hits["tsvq"] >= hits["template"] - 0.1, hits
