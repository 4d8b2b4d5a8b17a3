"""Filling gaps with the priors that read both sides at once: MaskGIT infill and diffusion inpainting."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import wfdb

from tests.conftest import ecg_like, shared_data
from tests.test_rhythm import f1
from tsvq.errors import ConfigError, DataError
from tsvq.evaluation.repair_baselines import BASELINES
from tsvq.infill import window_pieces
from tsvq.pipeline import Pipeline
from tsvq.priors.maskgit import MaskedCodeTransformer, MaskGITPrior
from tsvq.priors.signature import codec_signature
from tsvq.rhythm import r_peaks

RATE = 250.0


def test_maskgit_infill_keeps_known_codes_decides_the_rest_and_follows_a_guide():
    torch.manual_seed(0)
    model = MaskedCodeTransformer(num_codes=16, latent_length=32, width=32, depth=1, heads=2).eval()
    whole = model.generate(3, steps=6, seed=1)
    known = whole.clone()
    known[:, 10:20] = -1
    known[2] = whole[2]  # a row with nothing to draw
    known[1, :5] = -1  # rows with different numbers of hidden codes
    codes = model.infill(known, steps=6, seed=2)
    seen = known >= 0
    assert torch.equal(codes[seen], known[seen]) and (codes < 16).all() and torch.equal(codes[2], whole[2])
    guide = torch.zeros(3, 32, 16)
    guide[..., 5] = 50.0
    steered = model.infill(known, steps=6, seed=2, guide=guide)
    assert (steered[~seen] == 5).all() and torch.equal(steered[seen], known[seen])
    assert torch.equal(model.infill(torch.full((3, 32), -1), 6, seed=1), whole)  # generation: nothing known


@pytest.mark.parametrize(("a", "b", "n"), [(40, 103, 400), (0, 30, 400), (350, 400, 400), (10, 300, 400), (5, 20, 50)])
def test_window_pieces_cover_a_run_with_context_on_both_sides(a, b, n):
    width = 128
    pieces = window_pieces(a, b, n, width)
    assert pieces[0][1] == a and pieces[-1][2] == b
    assert all(p[2] == q[1] for p, q in zip(pieces, pieces[1:]))  # contiguous, left to right
    for lo, start, end in pieces:
        assert lo <= start < end <= lo + width and end - start <= width // 2
        assert start - lo >= min(32, start) and (lo + width - end >= min(32, n - end) or lo + width >= n)


def test_diffusion_inpainting_keeps_the_observed_latents(shipped):
    prior, codec = shipped.prior("diffusion"), shipped.codec
    vectors = codec.snap(prior.sample(2, steps=10, seed=1, progress=False).vectors)[0]
    keep = torch.ones(2, 128, dtype=torch.bool)
    keep[:, 40:90] = False
    out = prior.inpaint_vectors(vectors, keep, steps=10, sampler="ddim", seed=0)
    assert out.shape == vectors.shape and torch.allclose(out[keep], vectors[keep], atol=1e-5)
    assert (out[~keep] - vectors[~keep]).norm(dim=-1).mean() > 0.1 * vectors.norm(dim=-1).mean()  # drawn, not copied
    # started from the truth itself, half noised: the draw stays near it
    near = prior.inpaint_vectors(vectors, keep, steps=10, sampler="ddim", seed=0, start=vectors, strength=0.5)
    assert (near[~keep] - vectors[~keep]).norm(dim=-1).mean() < 0.6 * (out[~keep] - vectors[~keep]).norm(dim=-1).mean()
    with pytest.raises(DataError, match=r"known vectors must have shape \(n, 128, 16\)"):
        prior.inpaint_vectors(vectors[:, :64], keep[:, :64])
    with pytest.raises(ConfigError, match="strength must lie in"):
        prior.inpaint_vectors(vectors, keep, start=vectors, strength=0.0)
    with pytest.raises(ConfigError, match=r"steps must lie in \[1, 1000\]"):
        prior.inpaint_vectors(vectors, keep, steps=5000)


def test_impute_with_a_maskgit_prior_fills_every_gap_and_keeps_the_rest(shipped):
    torch.manual_seed(0)
    model = MaskedCodeTransformer(num_codes=shipped.codec.config.num_codes, latent_length=64, width=32, depth=1,
                                  heads=2).eval()  # fmt: skip
    pipe = Pipeline(shipped.codec, {"maskgit": MaskGITPrior(model, codec_signature=codec_signature(shipped.codec))})
    x = ecg_like(30, RATE, seed=2)
    holed = x.copy()
    holed[:40], holed[2000:2600], holed[5000:5010], holed[-300:] = np.nan, np.nan, np.nan, np.nan  # edges too
    out = pipe.impute(holed, RATE, draws=2, seed=0, steps=4)
    seen = np.isfinite(holed)
    assert np.isfinite(out.signals).all() and np.array_equal(out.signals[0, seen, 0], holed[seen].astype(np.float32))
    assert not np.allclose(out.signals[0], out.signals[1])
    with pytest.raises(ConfigError, match="unknown key"):
        pipe.impute(holed, RATE, top_p=0.9)  # a WaveNet option


def test_impute_with_the_diffusion_prior_times_beats_on_a_real_record(shipped):
    """MIT-BIH 100 (a patient no model trained on), six 2-s gaps: the diffusion prior, started from the planned
    beats, places R peaks as the WaveNet does (its test: F1 >= 0.85), and its mean of four draws scores a lower
    PRDN than the AR model from both sides."""
    record = wfdb.rdrecord(str(shared_data() / "100"), channels=[0], sampto=360 * 120)
    beats = wfdb.rdann(str(shared_data() / "100"), "atr", sampto=360 * 120).sample
    x = shipped.preprocessing.condition(record.p_signal, 360.0)[:, 0]
    beats = np.round(beats * RATE / 360).astype(int)
    score, prdn, ar = 0.0, [], []
    starts = np.random.default_rng(0).integers(3000, len(x) - 2000, 6)
    for k, a in enumerate(starts):
        b = a + 500
        holed = x.copy()
        holed[a:b] = np.nan
        out = shipped.impute(holed, RATE, draws=4, seed=k, prior="diffusion")
        assert np.array_equal(out.signals[0, :a, 0], holed[:a].astype(np.float32))
        found = r_peaks(out.signals[0, a - 2000 : b + 1000, 0], RATE) + a - 2000
        score += f1(found[(found >= a) & (found < b)], beats[(beats >= a) & (beats < b)]) / len(starts)
        spread = np.linalg.norm(x[a:b] - x[a:b].mean())
        prdn.append(np.linalg.norm(out.mean[a:b, 0] - x[a:b]) / spread)
        ar.append(np.linalg.norm(BASELINES["autoregressive_both_sides"](x, a, b, RATE) - x[a:b]) / spread)
    assert score >= 0.85 and np.mean(prdn) < np.mean(ar), (score, np.mean(prdn), np.mean(ar))
