"""Filling gaps and continuing recordings with a pipeline's codec and a prior: the WaveNet here, MaskGIT and
diffusion in windows that read both sides at once (``tsvq.infill``), all guided by the same rhythm plan.

A gap (a NaN stretch) becomes a run of unknown codes: every code whose span holds a missing sample. The
WaveNet prior draws that run left to right from the codes before it, and each draw is weighed by the likelihood
the prior gives the observed codes after the gap once the draw is in place: drawing ``candidates`` runs and
keeping one with probability proportional to that weight (sampling-importance-resampling) draws from
p(gap | before, after) as the candidates grow. A gap at the end has nothing after it: that is a forecast, drawn
from p(gap | before).

In an ECG the prior alone times beats poorly (its likelihood prefers fewer beats), so the rhythm plans them
(``tsvq.rhythm``): beats spaced evenly between the R peaks on either side, the median beat before the gap placed at
each. That guide signal is encoded, and every drawn code is weighed by how near its codebook vector lies to the
guide's encoder vector there (a Gaussian likelihood ``GUIDE_SPREAD`` typical quantisation errors wide, narrower
where the plan is surer: a gap under ``SHORT_GAP_S``, or one whose plan times the R peaks before it): the draws
come from the prior times that likelihood, so beats land where the rhythm puts them and take the shape the prior
gives them. The first draw follows the best-guess timing; further draws draw their timing too (each RR interval as
variable as those before the gap), so their spread says how sure the timing is.

The codes are decoded and only the missing samples are replaced: the observed ones come back unchanged. The
codec sees signals conditioned as in training (the pipeline's rate and band), while a recording may carry baseline
wander the codec never reproduces; the fill gets the recording's own low-frequency level (the recording minus its
conditioned self) as a line between its values on either side, so it sits where the recording does.

The mean of several draws (``Repaired.mean``) is the fill to score squared error on: the draws' mean pulled toward a
linear prediction of the gap where they disagree, and the prediction alone in a gap a beat interval long or longer
whose rhythm plan failed to time the beats observed before it (``timing_unsure``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np
import torch
from scipy.ndimage import uniform_filter1d

from tsvq.codec.streaming import decode_long, decode_margin, encode_long, encode_margin
from tsvq.data.preprocess import at_length, flat_channel, one_recording, resample, true_runs
from tsvq.errors import ConfigError, DataError, check_count
from tsvq.infill import INPAINT_SAMPLER, draw_run
from tsvq.linear_prediction import ar_bridge, ar_order
from tsvq.priors.base import sampling_options
from tsvq.priors.diffusion import DiffusionPrior
from tsvq.priors.maskgit import MaskGITPrior
from tsvq.priors.wavenet import WaveNetPrior
from tsvq.recording import check_amplitude
from tsvq.rhythm import beat_fill, gap_plan_sides, plan_times_the_sides, planned_beats

LEFT_CONTEXT_S = 4.096  # codes before a gap the prior reads (its receptive field on the demo's models)
RIGHT_CONTEXT_S = 2.0  # codes after a gap that weigh each draw: about two beats
EDGE_S = 0.1  # how much observed signal on each side sets the low-frequency level a fill is put on
MEET_S = 0.01  # how much observed signal at each end a short fill is tilted to meet (0.01-0.1 s tried on DS1)
RHYTHM_BEFORE_S, RHYTHM_AFTER_S = 8.0, 4.0  # signal on either side of a gap whose R peaks plan its beats
GUIDE_SPREAD = 64.0  # the guide's width in typical quantisation errors (squared distance), measured on MIT-BIH DS2
# 2-s gaps: 16 and below keep the template beat as it is, 256 lets the prior move beats off their planned times
LEVEL_CONTEXT_S = 2.0  # observed signal on each side whose median sets a fill's isoelectric level
# A fill's step off the recording's own continuation at each edge is tapered away over this much. MIT-BIH DS1 draws
# stepped 0.05 mV at the median, 6 times the recording's sample-to-sample change. On draws dumped from DS1 (0.5-s
# gaps), tapered over 20 / 48 / 100 ms: PRDN of a draw 95.8 -> 94.6 / 93.8 / 93.4, its R-peak F1 0.815 -> 0.825 /
# 0.831 / 0.824 (aimed at the edge sample itself, not its continuation, half the gain). `benchmarks.gaps` on DS1, one
# draw: 0.5-s gaps PRDN 95.7 -> 94.2, F1 0.820 -> 0.829; 2-s gaps 99.3 -> 99.0, F1 0.824 -> 0.826.
EDGE_TAPER_S = 0.048
SHORT_GAP_S = 0.4  # a shorter gap has no level of its own (MIT-BIH DS1, PRDN of a draw with / without the median
# shift: 0.05 s 466 / 180, 0.3 s 124 / 90, 0.5 s 102 / 117), so it meets the recording at its ends instead, and
SURE_GUIDE_SPREAD = 4.0  # its plan is sure enough to follow closely (DS1, PRDN of a draw with a guide spread of
# 64 / 8 / 4: 0.05 s 107 / 92 / 92, 0.15 s 99 / 90 / 86, 0.3 s 91 / 90 / 84; 0.5 s 100 / 104 with 64 / 8), and so is
# the plan of a gap with beats after it that times the R peaks before it (``plan_times_the_sides``; DS1 0.5-s gaps,
# PRDN of a draw 97.4 -> 95.8, of the mean of 16 82.6 -> 81.6; 2-s gaps the same: 99.1 -> 99.2, 85.8 -> 85.7)
SHRINK, SHRINK_SMOOTH_S = 4.0, 0.1  # Repaired.mean: the draws' spread counted 4 times (they share one rhythm plan,
# so they disagree less than the truth does); MIT-BIH DS1, PRDN of the mean of 16 at 0.5 / 2 / 5-s gaps
# 89.1 / 97.9 / 105.0 -> 88.3 / 96.7 / 101.1 (forecasts of 2 / 5 s: 95.0 / 101.2 -> 92.8 / 97.9); 1, 2, 8 tried
# (toward the level then; toward the linear prediction since: DS1 2-s gaps 89.4 -> 89.0; 8, 16, 64 still worse)
RHYTHMS = ("auto", "ecg", "none")
MAX_GAP_S = 60.0  # the longest stretch impute fills unless told otherwise: "tens of seconds"; longer is a new recording


@dataclass
class Repaired:
    """Draws of a repaired recording: ``signals`` ``(draws, L, C)`` at the input's rate, observed samples unchanged;
    ``filled`` ``(L, C)`` True where a sample was missing; ``spread`` the draws' standard deviation there;
    ``timing_unsure`` ``(L, C)`` True in the gaps, a beat interval long or longer, whose rhythm plan failed to time
    the beats observed before them (``tsvq.rhythm.plan_times_the_sides``), where ``mean`` does not follow the draws
    (None: no gap was planned)."""

    signals: np.ndarray
    filled: np.ndarray
    sampling_rate_hz: float
    timing_unsure: np.ndarray | None = None

    @property
    def spread(self) -> np.ndarray:
        return self.signals.std(axis=0)

    @property
    def mean(self) -> np.ndarray:
        """The point estimate ``(L, C)`` with the least expected squared error: in each gap, the draws' mean pulled
        toward a linear prediction of the gap from the observed signal on either side (``ar_bridge``) wherever the
        draws disagree more than their mean departs from it (a positive-part James-Stein estimate, ``SHRINK`` times
        the mean's sampling variance, both over ``SHRINK_SMOOTH_S``): a mean of finitely many draws keeps their
        disagreement as noise that the mean of many would average away. In a gap whose timing is unsure
        (``timing_unsure``) it is the prediction alone: the draws there share a plan that could not time the beats
        before the gap, and agree on beats the truth does not have. Smooth where the draws disagree, so not a signal
        to look at (a draw is): score PRDN on this, R peaks on a draw."""
        draws = len(self.signals)
        mean = self.signals.mean(axis=0, dtype=np.float64)
        if draws < 2:
            return mean.astype(self.signals.dtype)
        rate = self.sampling_rate_hz
        before, after = int(round(RHYTHM_BEFORE_S * rate)), int(round(RHYTHM_AFTER_S * rate))
        smooth, order = max(1, int(round(SHRINK_SMOOTH_S * rate))), ar_order(rate)
        for c in range(mean.shape[1]):
            filled = self.filled[:, c]
            for start, end in true_runs(filled):
                left = _observed_run(mean[:, c], filled, start, -before)
                right = _observed_run(mean[:, c], filled, end, after)
                if not len(left) and not len(right):
                    continue
                target = ar_bridge(left, right, end - start, order)
                if self.timing_unsure is not None and self.timing_unsure[start:end, c].any():
                    mean[start:end, c] = target
                    continue
                departure = uniform_filter1d((mean[start:end, c] - target) ** 2, smooth, mode="nearest")
                unsure = uniform_filter1d(self.signals[:, start:end, c].var(axis=0, ddof=1) / draws, smooth,
                                          mode="nearest")  # fmt: skip
                kept = np.clip(1 - SHRINK * unsure / np.maximum(departure, 1e-12), 0.0, 1.0)
                mean[start:end, c] = target + kept * (mean[start:end, c] - target)
        return mean.astype(self.signals.dtype)


def _observed_run(values: np.ndarray, filled: np.ndarray, edge: int, reach: int) -> np.ndarray:
    """The observed samples of ``values`` next to a gap edge, up to ``|reach|`` of them and up to the next missing
    one: before ``edge`` (exclusive) for a negative ``reach``, from ``edge`` on for a positive one."""
    if reach < 0:
        lo = max(0, edge + reach)
        gaps = np.flatnonzero(filled[lo:edge])
        return values[lo + (gaps[-1] + 1 if len(gaps) else 0) : edge]
    hi = min(len(values), edge + reach)
    gaps = np.flatnonzero(filled[edge:hi])
    return values[edge : edge + gaps[0] if len(gaps) else hi]


def _filling_prior(pipeline, prior: str | None):
    """``(name, prior)`` that fills the gaps: ``prior`` by name, else the pipeline's first WaveNet prior (it weighs
    draws by both sides, and the rhythm guide was measured with it), else its first MaskGIT, else diffusion prior."""
    fillers = (WaveNetPrior, MaskGITPrior, DiffusionPrior)
    if prior:
        chosen = pipeline.prior(prior)
        if not isinstance(chosen, fillers):
            raise ConfigError(
                f"prior '{prior}' is a {chosen.kind} prior; WaveNet, MaskGIT or diffusion priors fill gaps"
            )
        return prior, chosen
    for kind in fillers:
        for name, candidate in pipeline.priors.items():
            if isinstance(candidate, kind):
                return name, pipeline.prior(name)
    raise ConfigError("filling gaps needs a WaveNet, MaskGIT or diffusion prior in the pipeline")


def _bridged(x: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """``x`` with its missing samples linearly joined across (the encoder needs numbers; they are not kept)."""
    out = x.copy()
    where = np.arange(len(x))
    for c in range(x.shape[1]):
        seen = ~missing[:, c]
        out[~seen, c] = np.interp(where[~seen], where[seen], x[seen, c])
    return out


def repair(
    pipeline,
    signal,
    sampling_rate_hz: float,
    *,
    draws: int = 1,
    candidates: int = 16,
    choose: str = "sample",
    prior: str | None = None,
    seed: int = 0,
    rhythm: str = "auto",
    max_gap_s: float | None = MAX_GAP_S,
    where: str = "signal",
    **options,
) -> Repaired:
    """Fill every NaN stretch of ``signal`` ``(L,)`` or ``(L, C)`` (``Pipeline.impute``). ``choose``: "sample" keeps
    a candidate with probability proportional to its weight (a draw given both sides), "likeliest" the candidate
    whose codes, with those after the gap, the prior finds most probable (one best guess; the draws differ only by
    their candidates). ``rhythm``: "ecg" plans the beats of each gap from the R peaks around it and guides the
    prior by them, "none" leaves timing to the prior, "auto" is "ecg" for a single-channel codec in mV.
    ``max_gap_s``: a longer NaN stretch is refused (None: no limit).
    ``options``: the WaveNet's sampling options (default: the pipeline's for that prior)."""
    if choose not in ("sample", "likeliest"):
        raise ConfigError(f"choose must be 'sample' or 'likeliest', got {choose!r}")
    if rhythm not in RHYTHMS:
        raise ConfigError(f"rhythm must be one of {', '.join(RHYTHMS)}, got {rhythm!r}")
    draws, candidates = check_count("draws", draws, 1), check_count("candidates", candidates, 1)
    seed = check_count("seed", seed, 0)
    x = one_recording(signal, where)
    pipeline.preprocessing.check_rate(sampling_rate_hz, where)
    missing = ~np.isfinite(x)
    if not missing.any():
        return Repaired(np.repeat(x[None].astype(np.float32), draws, axis=0), missing, float(sampling_rate_hz))
    observed = int((~missing).sum(axis=0).min())  # samples of the channel with the fewest
    if observed < 2:
        raise DataError(f"{where}: a channel has fewer than two observed samples; there is nothing to continue from")
    pipeline.preprocessing.check_length(observed, sampling_rate_hz, where, "continue from", what="observed")
    flat = flat_channel(x)
    if flat is not None:
        raise DataError(f"{where}: channel {flat[0]} is flat (every observed sample {flat[1]:g}): a disconnected "
                        "lead has nothing to continue from")  # fmt: skip
    if max_gap_s is not None:
        for c in range(x.shape[1]):
            for start, end in true_runs(missing[:, c]):
                if (end - start) / sampling_rate_hz > max_gap_s:
                    raise DataError(
                        f"{where}: channel {c} has a gap of {(end - start) / sampling_rate_hz:.1f} s at "
                        f"{start / sampling_rate_hz:.1f} s, longer than max_gap_s={max_gap_s:g}; raise max_gap_s "
                        "(--max-gap) to fill it anyway"
                    )
    codec = pipeline.codec
    if codec.config.in_channels not in (1, x.shape[1]):
        raise DataError(f"{where}: the codec codes {codec.config.in_channels} channels together, got {x.shape[1]}")
    name, chosen = _filling_prior(pipeline, prior)
    settings = asdict(sampling_options(type(chosen), pipeline.sampling_for(name, options), f"impute: {name} options"))
    if isinstance(chosen, DiffusionPrior) and "sampler" not in options:
        settings["sampler"] = INPAINT_SAMPLER
    rate = pipeline.sampling_rate_hz
    bridged = _bridged(x, missing)
    conditioned = pipeline.preprocessing.condition(bridged, sampling_rate_hz)
    at_rate = resample(missing.astype(np.float64), sampling_rate_hz, rate)[: len(conditioned)] > 0.01
    streams = [[c] for c in range(x.shape[1])] if codec.config.in_channels == 1 else [list(range(x.shape[1]))]
    for stream in streams:  # a wrong unit (microvolts read as mV) would be filled at the wrong scale
        check_amplitude(codec, stream, [str(c) for c in stream], [""] * len(stream), conditioned[:, stream], where)
    out = np.repeat(x[None], draws, axis=0)
    generator = torch.Generator().manual_seed(seed)
    baseline = bridged - at_length(resample(conditioned, rate, sampling_rate_hz), len(x))
    if rhythm == "auto":
        rhythm = "ecg" if codec.config.in_channels == 1 and all(u.lower() == "mv" for u in pipeline.units) else "none"
    if rhythm == "ecg" and codec.config.in_channels != 1:
        raise ConfigError(f"rhythm 'ecg' plans one lead's beats; this codec codes {codec.config.in_channels} together")
    rng = np.random.default_rng(seed)
    timing_unsure = np.zeros(x.shape, dtype=bool) if rhythm == "ecg" else None
    for stream in streams:
        gaps = at_rate[:, stream].any(axis=1)
        guides = _rhythm_guides(conditioned[:, stream[0]], gaps, rate, draws, rng) if rhythm == "ecg" else None
        fills = _fill_stream(codec, chosen, conditioned[:, stream], gaps, draws, candidates, choose, generator,
                             settings, guides)  # fmt: skip
        for d in range(draws):
            back = at_length(resample(fills[d], rate, sampling_rate_hz), len(x))
            for i, c in enumerate(stream):
                out[d, :, c] = _joined(x[:, c], back[:, i], missing[:, c], baseline[:, c], sampling_rate_hz)
        for c in stream if guides is not None else ():
            for start, end in true_runs(missing[:, c]):  # each gap takes its plan's verdict, read at its middle
                middle = min(len(gaps) - 1, int((start + end) / 2 * rate / sampling_rate_hz))
                timing_unsure[start:end, c] = guides.unsure[middle]
    return Repaired(out.astype(np.float32), missing, float(sampling_rate_hz), timing_unsure)


class RhythmGuides(NamedTuple):
    """The rhythm plan of one conditioned channel's gaps (``_rhythm_guides``)."""

    signals: np.ndarray  # (draws, L): the channel with each gap's planned beats in place; draw 0 at the best guess
    planned: np.ndarray  # (L,): the gaps that got a plan
    sure: np.ndarray  # (L,): planned gaps with beats after them whose plan times the R peaks before them
    unsure: np.ndarray  # (L,): gaps a beat interval long or longer whose plan does not (Repaired.timing_unsure)


def _rhythm_guides(x: np.ndarray, missing: np.ndarray, rate: float, draws: int,
                   rng: np.random.Generator) -> RhythmGuides:  # fmt: skip
    """Per draw, ``x`` (one conditioned channel, bridged across its gaps) with each gap's planned beats in place,
    and whether each plan times the R peaks before its gap (``plan_times_the_sides``): gaps with fewer than three R
    peaks in the ``RHYTHM_BEFORE_S`` before them get none (the prior alone times them). Draw 0 takes the best-guess
    timing."""
    guides = np.repeat(x[None].astype(np.float64), draws, axis=0)
    planned, sure, unsure = (np.zeros(len(x), dtype=bool) for _ in range(3))
    for a, b in true_runs(missing):
        sides = gap_plan_sides(x, a, b, rate, RHYTHM_BEFORE_S, RHYTHM_AFTER_S)
        if sides is None:
            continue
        before, after, template = sides
        left = x[a - 1]
        right = x[b] if b < len(x) else None
        for d in range(draws):
            times = [before[-1], *planned_beats(before, after, b, rng if d else None), *after[:1]]
            guides[d, a:b] = beat_fill(left, right, a, b, times, template, rate)
        planned[a:b] = True
        timed = plan_times_the_sides(before, rate)
        sure[a:b] = timed and len(after) > 0  # a forecast runs on past the last beat the check could see
        # a gap shorter than a beat interval holds at most one beat, which both sides place (MIT-BIH DS1 0.5-s gaps,
        # PRDN of the mean of 16: 85.0 with every gap checked, 82.6 with only those a beat interval long or longer)
        unsure[a:b] = b - a >= np.median(np.diff(before)) and not timed
    return RhythmGuides(guides, planned, sure, unsure)


def _guide_weights(codec, guides: np.ndarray, planned: np.ndarray, lo: int, hi: int, spread: float) -> torch.Tensor:
    """``(draws, hi - lo, K)`` log-weights of each first-stage code at code positions ``[lo, hi)``: minus its squared
    distance to the guide's encoder vector over ``2 spread`` typical quantisation errors (the median over
    the stretch); 0 where nothing was planned."""
    f = codec.config.downsample_factor
    codebook = codec.quantizer.stage_codebooks()[0].float()
    latents, inside = _guide_latents(codec, guides, lo, hi)
    distances = torch.stack([torch.cdist(one, codebook) ** 2 for one in latents])[:, inside]
    typical = distances[0].min(dim=1).values.median().clamp(min=1e-12)
    steered = torch.as_tensor(planned[lo * f : hi * f].reshape(hi - lo, f).any(axis=1))
    return torch.where(steered[None, :, None], -distances / (2 * spread * typical), 0.0)


def _guide_latents(codec, guides: np.ndarray, lo: int, hi: int) -> tuple[list[torch.Tensor], slice]:
    """Per guide, its encoder vectors ``(l, D)`` over code positions ``[lo, hi)`` and the encoder's reach around
    them (the same vectors as encoding the whole recording), and the slice of them that is ``[lo, hi)``."""
    f, margin = codec.config.downsample_factor, encode_margin(codec)
    start, end = max(0, lo - margin), min(guides.shape[1] // f, hi + margin)
    stretch = guides[:, start * f : end * f, None].astype(np.float32)
    return [codec.latents(guide[None])[0] for guide in stretch], slice(lo - start, hi - start)


def _guide_vectors(codec, guides: np.ndarray, lo: int, hi: int) -> torch.Tensor:
    """``(draws, hi - lo, D)`` codebook vectors nearest the guides' encoder vectors: the planned beats as codes."""
    latents, inside = _guide_latents(codec, guides, lo, hi)
    return codec.snap(torch.stack(latents))[0][:, inside].float().cpu()


def _fill_stream(codec, prior, x: np.ndarray, missing: np.ndarray, draws: int, candidates: int, choose: str,
                 generator: torch.Generator, settings: dict,
                 guides: RhythmGuides | None = None) -> np.ndarray:  # fmt: skip
    """Draws ``(draws, L, C)`` of one conditioned stream at the pipeline's rate, decoded wherever codes were drawn;
    ``guides``: ``_rhythm_guides``' planned beats, which weigh the drawn codes (the diffusion prior starts from
    them). A WaveNet draws each gap left to right, weighing ``candidates`` by the codes after it; MaskGIT and
    diffusion read both sides at once (``tsvq.infill``)."""
    f = codec.config.downsample_factor
    length = len(x)
    padded = np.pad(x, ((0, (-length) % f), (0, 0)), mode="edge").astype(np.float32)
    codes = encode_long(codec, padded)
    unknown = np.zeros(len(codes), dtype=bool)
    for start, end in true_runs(np.pad(missing, (0, len(padded) - length))):
        unknown[start // f : -(-end // f)] = True  # the codes of the missing samples; their neighbours, encoded
        # partly from the bridge across the gap, stay: drawing them too measured worse on MIT-BIH (0.5 s gaps)
    per_second = codec.config.sampling_rate_hz / f  # code positions per second
    left, right = int(round(LEFT_CONTEXT_S * per_second)), int(round(RIGHT_CONTEXT_S * per_second))
    drawn = np.repeat(codes[None], draws, axis=0)
    steer = guides is not None and guides.planned.any()
    if steer:
        signals = np.pad(guides.signals, ((0, 0), (0, len(padded) - length)), mode="edge")
        planned = np.pad(guides.planned, (0, len(padded) - length))
    hidden = unknown.copy()
    for a, b in true_runs(unknown):
        short = _is_short(int(missing[a * f : b * f].sum()), codec.config.sampling_rate_hz)
        sure = steer and guides.sure[a * f : b * f].any()
        spread = SURE_GUIDE_SPREAD if short or sure else GUIDE_SPREAD
        if not isinstance(prior, WaveNetPrior):
            run_planned = steer and planned[a * f : b * f].any()
            draw_run(prior, codec, drawn, hidden, a, b, settings,
                     lambda: int(torch.randint(0, 2**31 - 1, (1,), generator=generator)),
                     (lambda lo, hi, s=spread: _guide_weights(codec, signals, planned, lo, hi, s)) if steer else None,
                     (lambda lo, hi: _guide_vectors(codec, signals, lo, hi)) if run_planned else None)  # fmt: skip
            continue
        lo, hi = max(0, a - left), min(len(codes), b + right)
        known = torch.as_tensor(codes[lo:hi]).clone()
        known[a - lo : b - lo] = -1
        known = known[None].expand(draws * candidates, *known.shape).clone()
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        guide = _guide_weights(codec, signals, planned, lo, hi, spread) if steer else None
        run, weight, own = prior.model.infill(known, seed=seed, guide=guide, **settings)
        run, weight = run.view(draws, candidates, *run.shape[1:]), weight.view(draws, candidates).double()
        if choose == "likeliest":  # the most probable completion, gap and what follows it together
            picks = (weight + own.view(draws, candidates).double()).argmax(dim=1)
        else:
            picks = torch.multinomial(torch.softmax(weight, dim=1), 1, generator=generator)[:, 0]
        for d in range(draws):
            drawn[d, a:b] = run[d, picks[d], a - lo : b - lo].cpu().numpy()
    margin = decode_margin(codec)
    fills = np.repeat(x[None], draws, axis=0).astype(np.float32)
    for a, b in true_runs(unknown):
        lo, hi = max(0, a - margin), min(len(codes), b + margin)
        for d in range(draws):
            decoded = decode_long(codec, drawn[d, lo:hi], margin=margin)
            start, end = lo * f, min(hi * f, length)
            fills[d, start:end] = decoded[: end - start]
    return fills


def _joined(observed: np.ndarray, fill: np.ndarray, missing: np.ndarray, baseline: np.ndarray, rate: float):
    """``observed`` with each missing run taken from ``fill`` (conditioned: band-limited like the codec's output,
    decoded on the observed samples next to the run too), plus the recording's own low-frequency level there
    (``baseline``: recording minus its conditioned self), a line between its means over ``EDGE_S`` on either side.
    Then its level: a run of at least ``SHORT_GAP_S`` is shifted so that its median is the median of the observed
    samples within ``LEVEL_CONTEXT_S`` on either side. Why: an ECG sits at its isoelectric level most of the time,
    and that level runs on across a gap, while a long fill may come out above or below it (MIT-BIH DS1, 2-s gaps:
    PRDN inside the gap 118 -> 110 for a draw, 107 -> 98 for the mean of 16). A shorter run's median is wherever
    in the beat it falls, so instead the run is tilted to meet the recording: the decoded signal's miss on the
    ``MEET_S`` of observed samples at each end is taken off along a line (DS1, 0.05-s gaps: 180 -> 107%). Last, what
    step is left onto the samples next to the run fades out over ``EDGE_TAPER_S`` (``_taper_steps``)."""
    out = observed.copy()
    edge, meet = max(1, int(round(EDGE_S * rate))), max(1, int(round(MEET_S * rate)))
    width = max(1, int(round(LEVEL_CONTEXT_S * rate)))
    miss = observed - fill - baseline  # the decoded signal's error on the observed samples
    taper = max(1, int(round(EDGE_TAPER_S * rate)))
    for start, end in true_runs(missing):
        ramp = np.linspace(*_sides(baseline, missing, start, end, edge), end - start)
        out[start:end] = fill[start:end] + ramp
        if _is_short(end - start, rate):
            out[start:end] += np.linspace(*_sides(miss, missing, start, end, meet), end - start)
        else:
            around = _observed_around(missing, start, end, width)
            if len(around):
                out[start:end] += np.median(observed[around]) - np.median(out[start:end])
        _taper_steps(out, observed - baseline, missing, start, end, taper)
    return out


def _taper_steps(
    out: np.ndarray, conditioned: np.ndarray, missing: np.ndarray, start: int, end: int, width: int
) -> None:
    """In place, take off the fill's step from where the recording would go next at each edge of the run ``[start,
    end)`` (its last observed sample plus the last change of its ``conditioned``, band-limited self: a raw sample's
    noise is not a slope to follow), fading out over ``width`` samples (half the run at most): the recording has no
    such step, and a QRS detector reads one as a beat. A side with no observed neighbour (the recording's end,
    another gap) keeps the fill as it is."""
    n = end - start
    fade = np.clip(1 - np.arange(n) / max(1, min(width, n // 2)), 0.0, 1.0) ** 2
    left = fade if start > 0 and not missing[start - 1] else np.zeros(n)
    right = fade[::-1] if end < len(out) and not missing[end] else np.zeros(n)
    total = np.maximum(left + right, 1.0)  # a one-sample run: halfway between its neighbours' continuations
    steps = [
        _continued(out, conditioned, missing, start - 1, -1) - out[start] if left.any() else 0.0,
        _continued(out, conditioned, missing, end, 1) - out[end - 1] if right.any() else 0.0,
    ]
    out[start:end] += (steps[0] * left + steps[1] * right) / total


def _continued(values: np.ndarray, conditioned: np.ndarray, missing: np.ndarray, edge: int, away: int) -> float:
    """Where the observed sample at ``edge`` leads one sample into the gap: on by the change of ``conditioned`` from
    ``edge + away`` (further from the gap) to ``edge``, when that one is observed too."""
    further = edge + away
    if 0 <= further < len(values) and not missing[further]:
        return float(values[edge] + conditioned[edge] - conditioned[further])
    return float(values[edge])


def _is_short(samples: int, rate: float) -> bool:
    """Whether a gap of ``samples`` missing samples is short (under ``SHORT_GAP_S``): its plan is surer, so its draws
    follow the guide more closely, and it is tilted to meet the recording instead of shifted to the level around it.
    One rule for both, so a gap is treated alike whether counted by code positions or by samples."""
    return samples < SHORT_GAP_S * rate


def _observed_around(missing: np.ndarray, start: int, end: int, width: int) -> np.ndarray:
    """Indices of the observed samples within ``width`` before and after the run ``[start, end)``."""
    around = np.r_[max(0, start - width) : start, end : min(len(missing), end + width)]
    return around[~missing[around]]


def _sides(values: np.ndarray, missing: np.ndarray, start: int, end: int, width: int) -> tuple[float, float]:
    """The means of ``values`` over the observed samples within ``width`` before and after the run ``[start,
    end)``; a side with none takes the other's (0 when neither has any)."""
    means = []
    for lo, hi in ((max(0, start - width), start), (end, min(len(values), end + width))):
        seen = ~missing[lo:hi]
        means.append(float(np.mean(values[lo:hi][seen])) if seen.any() else None)
    first, last = (v if v is not None else (means[1 - i] or 0.0) for i, v in enumerate(means))
    return first, last
