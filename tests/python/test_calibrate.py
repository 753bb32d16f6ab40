"""q2key.calibrate and q2key.Calibrator: the fitted cells, reports, determinism, streaming and drift."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import q2key
from q2key._calibrate import FIDELITY_SHARES

DATA = Path(__file__).parents[2] / "data" / "wordnet-minilm-dev.npz"


def skewed(rows: int, dim: int, seed: int = 0) -> np.ndarray:
    """Rows whose dimensions have their own offsets and spreads, as real embeddings do."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(rows, dim)) * rng.uniform(0.2, 3.0, size=dim) + rng.normal(scale=0.5, size=dim)


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_equiprobable_puts_half_the_values_in_the_outer_cells() -> None:
    x = skewed(4000, 64)
    th = q2key.calibrate(x, method="equiprobable")
    assert th.kind == "global" and th.dim == 64 and th.tau is not None
    assert th.tau == pytest.approx(np.median(np.abs(unit(x))), rel=1e-9)
    r = th.report
    assert r is not None and r.method == "equiprobable" and r.rule == "global" and r.recall is None
    assert r.frequencies[0] + r.frequencies[3] == pytest.approx(0.5, abs=1e-3)
    assert r.frequencies.sum() == pytest.approx(1.0)
    assert r.per_dim_frequencies.shape == (64, 4)


def test_per_dim_gives_quartile_cells_in_every_dimension() -> None:
    x = skewed(4000, 48)
    th = q2key.calibrate(x, method="per_dim")
    assert th.kind == "per_dim" and th.cuts is not None
    assert np.allclose(th.cuts, np.quantile(unit(x), [0.25, 0.5, 0.75], axis=0))
    r = th.report
    assert r is not None
    assert np.abs(r.per_dim_frequencies - 0.25).max() < 0.01
    assert r.entropy_bits == pytest.approx(2.0, abs=1e-3)
    # The equiprobable global rule cannot make skewed dimensions equiprobable.
    g = q2key.calibrate(x, method="equiprobable").report
    assert g is not None and g.entropy_bits < r.entropy_bits - 0.05


def test_outer_share_moves_values_between_cells() -> None:
    x = skewed(3000, 32)
    for method in ("equiprobable", "per_dim"):
        r = q2key.calibrate(x, method=method, outer_share=0.2).report
        assert r is not None and r.outer_share == 0.2
        assert r.frequencies[0] + r.frequencies[3] == pytest.approx(0.2, abs=0.01)


def test_fidelity_is_deterministic_and_reports_every_candidate() -> None:
    x = skewed(1200, 40, seed=3)
    a = q2key.calibrate(x, method="fidelity", seed=7)
    b = q2key.calibrate(x, method="fidelity", seed=7)
    assert a == b and a.report is not None and b.report is not None
    assert a.report.candidates == b.report.candidates
    tried = a.report.candidates
    assert [(c.rule, c.outer_share) for c in tried] == [
        (rule, share) for rule in ("global", "per_dim") for share in FIDELITY_SHARES
    ]
    best = max(c.recall for c in tried)
    first_best = next(c for c in tried if c.recall == best)
    assert (a.report.rule, a.report.outer_share, a.report.recall) == (first_best.rule, first_best.outer_share, best)
    assert a.kind == ("global" if first_best.rule == "global" else "per_dim")
    assert 0.0 < best <= 1.0 and a.report.k == 10
    assert "held-out neighbour recall@10" in str(a.report)


def test_fidelity_beats_equiprobable_on_real_embeddings() -> None:
    """SPEC §6: equiprobable is not the best rule for neighbours; on MiniLM embeddings it is measurably worse."""
    d = np.load(DATA)
    db = d["database"][:6000].astype(np.float32)
    fid = q2key.calibrate(db, method="fidelity", seed=0)
    assert fid.report is not None and fid.report.recall is not None
    equi = next(c.recall for c in fid.report.candidates if c.rule == "global" and c.outer_share == 0.5)
    assert fid.report.recall > equi + 0.03
    assert fid.report.outer_share < 0.5


def test_calibration_input_errors() -> None:
    with pytest.raises(q2key.Q2KeyError, match="method"):
        q2key.calibrate(np.ones((10, 4)), method="median")  # type: ignore[arg-type]
    with pytest.raises(q2key.ShapeError, match="at least one row"):
        q2key.calibrate(np.ones((0, 4)))
    bad = np.ones((10, 4))
    bad[6, 2] = np.nan
    with pytest.raises(q2key.NonFiniteError, match="row 6"):
        q2key.calibrate(bad)
    with pytest.raises(q2key.Q2KeyError, match="all zeros"):
        q2key.calibrate(np.zeros((5, 4)))
    with pytest.raises(q2key.ShapeError, match="at least 64"):
        q2key.calibrate(np.ones((20, 4)), method="fidelity")
    with pytest.raises(q2key.Q2KeyError, match="outer_share"):
        q2key.calibrate(np.ones((10, 4)), outer_share=1.0)
    with pytest.raises(TypeError):
        q2key.calibrate(np.array([["a"]]))


def test_zero_rows_are_skipped_and_huge_rows_do_not_overflow() -> None:
    x = skewed(500, 16)
    th = q2key.calibrate(x, method="per_dim")
    padded = np.vstack([x * 1e300, np.zeros((50, 16))])
    th2 = q2key.calibrate(padded, method="per_dim")
    assert th2.report is not None and th2.report.sample_rows == 500
    assert th.cuts is not None and th2.cuts is not None and np.allclose(th.cuts, th2.cuts, rtol=1e-12, atol=1e-15)


def test_reports_travel_with_pickled_thresholds_but_not_json() -> None:
    th = q2key.calibrate(skewed(500, 8), method="per_dim")
    back = pickle.loads(pickle.dumps(th))
    assert back == th and back.report is not None and th.report is not None
    assert np.array_equal(back.report.per_dim_frequencies, th.report.per_dim_frequencies)
    assert q2key.Thresholds.from_json(th.to_json()).report is None


# -- Calibrator -----------------------------------------------------------------------------------


def test_reservoir_is_filled_then_sampled_uniformly() -> None:
    dim, capacity = 3, 200
    counts = np.zeros(2000)
    for seed in range(40):
        cal = q2key.Calibrator(dim, reservoir=capacity, seed=seed)
        stream = np.repeat(np.arange(2000.0)[:, None], dim, axis=1)
        for start in range(0, 2000, 137):  # uneven batches
            cal.update(stream[start : start + 137])
        assert cal.seen == 2000
        sample = cal.sample
        assert sample.shape == (capacity, dim)
        ids = sample[:, 0].astype(int)
        assert len(np.unique(ids)) == capacity  # each stream row at most once
        counts[ids] += 1
    # Every row is kept with probability capacity/2000 = 0.1: 40 runs → mean 4 per row.
    halves = counts[:1000].sum(), counts[1000:].sum()
    assert abs(halves[0] - halves[1]) < 0.1 * sum(halves)
    assert counts[:100].sum() == pytest.approx(400, rel=0.25)


def test_reservoir_before_it_is_full_and_with_one_dimensional_rows() -> None:
    cal = q2key.Calibrator(4, reservoir=10, seed=0)
    cal.update(np.arange(4.0))
    cal.update(np.ones((3, 4)))
    assert cal.seen == 4 and cal.sample.shape == (4, 4)
    assert cal.sample[0].tolist() == [0.0, 1.0, 2.0, 3.0]


def test_calibrator_is_seeded() -> None:
    x = skewed(5000, 8)
    samples = []
    for _ in range(2):
        cal = q2key.Calibrator(8, reservoir=100, seed=42)
        cal.update(x)
        samples.append(cal.sample)
    assert np.array_equal(samples[0], samples[1])


def test_bad_batches_store_nothing() -> None:
    cal = q2key.Calibrator(4, reservoir=8, seed=0)
    cal.update(np.ones((3, 4)))
    before = cal.sample
    bad = np.ones((5, 4))
    bad[4, 1] = np.inf
    with pytest.raises(q2key.NonFiniteError, match="row 4"):
        cal.update(bad)
    with pytest.raises(q2key.ShapeError, match="4 columns"):
        cal.update(np.ones((2, 5)))
    assert cal.seen == 3 and np.array_equal(cal.sample, before)
    with pytest.raises(q2key.Q2KeyError, match="reservoir"):
        q2key.Calibrator(4, reservoir=0)
    with pytest.raises(q2key.Q2KeyError, match="no rows yet"):
        q2key.Calibrator(4).thresholds()


def test_drift_is_small_for_the_same_distribution_and_large_after_a_shift() -> None:
    cal = q2key.Calibrator(32, reservoir=1024, seed=1)
    cal.update(skewed(5000, 32, seed=5))
    th = cal.thresholds(method="per_dim")
    assert cal.current is th
    again = cal.drift(skewed(5000, 32, seed=5)[2000:])
    shifted = cal.drift(skewed(5000, 32, seed=5) + 2.0)
    assert again.score < 0.05
    assert shifted.score > 0.2 and shifted.score > 4 * again.score
    assert again.frequencies.shape == (32, 4) and np.allclose(again.frequencies.sum(axis=1), 1.0)
    assert 0 <= shifted.worst_dim < 32 and shifted.worst >= shifted.score
    with pytest.raises(q2key.Q2KeyError, match="drift"):
        cal.drift(np.ones((3, 32)), thresholds=q2key.Thresholds.gaussian(32))
