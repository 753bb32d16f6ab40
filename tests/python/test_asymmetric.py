"""Asymmetric scoring (SPEC §8) from Python: reconstruction tables on Thresholds, q2key.decode,
q2key.asymmetric_search, q2key.rerank and Index.search(scoring=...)."""

from __future__ import annotations

import pickle
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import q2key
from hypothesis import given, settings
from hypothesis import strategies as st
from q2key import _native

DATA = Path(__file__).parents[2] / "data" / "wordnet-minilm-dev.npz"


def fitted(x: np.ndarray, th: q2key.Thresholds | None = None) -> q2key.Thresholds:
    """``th`` (Gaussian by default) carrying the cell means of ``x`` (the core's fit)."""
    th = th or q2key.Thresholds.gaussian(x.shape[1])
    return q2key.Thresholds._wrap(_native.fit_reconstruction(x, th._rule))


def brute(queries: np.ndarray, codes: np.ndarray, th: q2key.Thresholds | None, dim: int) -> np.ndarray:
    """``1 − cosine(query, x̂)`` of every (query, row) in float64, from the decoded codes."""
    xhat = q2key.decode(codes, dim=dim, threshold=th).astype(np.float64)
    q = queries.astype(np.float64)
    norms = np.linalg.norm(q, axis=1)[:, None] * np.linalg.norm(xhat, axis=1)[None, :]
    return 1.0 - (q @ xhat.T) / np.where(norms == 0, 1.0, norms)


def assert_top_k(dist: np.ndarray, rows: np.ndarray, want: np.ndarray, k: int) -> None:
    """The result is a top k of ``want`` (up to f32 rounding, ties in any order) and is sorted."""
    assert dist.dtype == np.float32 and dist.shape == rows.shape == (want.shape[0], min(k, want.shape[1]))
    for q in range(want.shape[0]):
        best = np.sort(want[q])[: dist.shape[1]]
        np.testing.assert_allclose(dist[q], best, atol=2e-6)
        np.testing.assert_allclose(want[q, rows[q].astype(np.intp)], dist[q], atol=2e-6)
        assert (np.diff(dist[q]) >= 0).all()
        assert len(set(rows[q].tolist())) == dist.shape[1]


# -- the table on Thresholds ----------------------------------------------------------------------


def test_default_tables_are_the_gaussian_cell_means() -> None:
    th = q2key.Thresholds.gaussian(384)
    assert th.reconstruction is None
    table = th.table()
    assert table.dtype == np.float32 and table.shape == (384, 4) and not table.flags.writeable
    sigma = 1 / np.sqrt(384)
    np.testing.assert_allclose(table[0], np.array([-1.2711, -0.3247, 0.3247, 1.2711]) * sigma, rtol=1e-3)
    # A global τ for any dimension needs one; a per-dimension rule has its own per-dimension means.
    with pytest.raises(q2key.Q2KeyError, match=r"^dim: "):
        q2key.Thresholds.global_(0.05).table()
    assert q2key.Thresholds.global_(0.05).table(8).shape == (8, 4)
    cuts = np.array([[-0.5, -0.1], [0.0, 0.0], [0.5, 0.1]])
    per_dim = q2key.Thresholds.per_dim(cuts).table()
    assert per_dim.shape == (2, 4) and per_dim[0, 3] > per_dim[1, 3]


def test_with_reconstruction_validates_and_keeps_the_rule() -> None:
    th = q2key.Thresholds.per_dim(np.array([[-0.5, -0.1], [0.0, 0.0], [0.5, 0.1]]))
    table = np.array([[-1.0, -0.2, 0.2, 1.0], [-0.3, -0.05, 0.05, 0.3]])
    t2 = th.with_reconstruction(table)
    assert t2.kind == "per_dim" and np.array_equal(t2.cuts, th.cuts)  # type: ignore[arg-type]
    assert t2.reconstruction is not None and t2.reconstruction.dtype == np.float32
    assert np.array_equal(t2.reconstruction, table.astype(np.float32)) and not t2.reconstruction.flags.writeable
    assert np.array_equal(t2.table(), t2.reconstruction)
    assert t2 != th and hash(t2) != hash(th)
    assert "fitted reconstruction table" in repr(t2)
    # A global τ without a dimension takes the table's.
    g = q2key.Thresholds.global_(0.1).with_reconstruction(table)
    assert g.dim == 2 and g.tau == 0.1
    with pytest.raises(q2key.ShapeError, match=r"^table: "):
        q2key.Thresholds.gaussian(3).with_reconstruction(table)
    with pytest.raises(q2key.Q2KeyError, match=r"^table: .*monotone"):
        th.with_reconstruction(table[:, ::-1])
    # The report stays.
    cal = q2key.calibrate(np.random.default_rng(0).normal(size=(300, 2)), method="per_dim")
    assert cal.with_reconstruction(table).report is cal.report


def tables(dim: int) -> st.SearchStrategy[np.ndarray]:
    """Valid (dim, 4) tables: float32 values in [-2, 2], tiny ones flushed to 0, each row sorted."""
    values = st.lists(st.floats(-2.0, 2.0, width=32), min_size=4 * dim, max_size=4 * dim)
    return values.map(lambda v: np.sort(np.where(np.abs(v) < 1e-12, 0, v).astype(np.float32).reshape(dim, 4)))


@st.composite
def thresholds_with_tables(draw: st.DrawFn) -> q2key.Thresholds:
    dim = draw(st.integers(1, 12))
    kind = draw(st.sampled_from(["gaussian", "global", "per_dim"]))
    if kind == "gaussian":
        th = q2key.Thresholds.gaussian(dim)
    elif kind == "global":
        th = q2key.Thresholds.global_(draw(st.floats(0, 1)), dim=draw(st.sampled_from([None, dim])))
    else:
        cuts = np.sort(
            np.array(draw(st.lists(st.floats(-1, 1), min_size=3 * dim, max_size=3 * dim))).reshape(3, dim), 0
        )
        th = q2key.Thresholds.per_dim(cuts)
    return th.with_reconstruction(draw(tables(dim)))


@settings(max_examples=60, deadline=None)
@given(thresholds_with_tables())
def test_tables_round_trip_through_json_bytes_and_pickle(th: q2key.Thresholds) -> None:
    for back in (
        q2key.Thresholds.from_json(th.to_json()),
        q2key.Thresholds.from_bytes(th.to_bytes()),
        pickle.loads(pickle.dumps(th)),
    ):
        assert back == th and hash(back) == hash(th)
        assert np.array_equal(back.reconstruction, th.reconstruction)  # type: ignore[arg-type]
        assert back.reconstruction.tobytes() == th.reconstruction.tobytes()  # type: ignore[union-attr]


def test_version_1_bytes_still_load_without_a_table() -> None:
    """What q2key wrote before tables: version 1, flags 0; it loads with no table."""
    th = q2key.Thresholds.per_dim(np.array([[-0.5, -0.1], [0.0, 0.0], [0.5, 0.1]]))
    body = struct.pack("<4sBBHQd", b"Q2TH", 1, 2, 0, 2, float("nan")) + th.cuts.astype("<f8").tobytes()  # type: ignore[union-attr]
    old = q2key.Thresholds.from_bytes(body + struct.pack("<I", zlib.crc32(body)))
    assert old == th and old.reconstruction is None
    # A version-1 header claiming a table is refused, as is an unknown flag.
    for version, flags in ((1, 1), (1, 2), (2, 4)):  # flag 2 is the rotation (version 2)
        bad = struct.pack("<4sBBHQd", b"Q2TH", version, 2, flags, 2, float("nan")) + th.cuts.tobytes()  # type: ignore[union-attr]
        with pytest.raises(q2key.Q2KeyError, match=r"^data: .*flags"):
            q2key.Thresholds.from_bytes(bad + struct.pack("<I", zlib.crc32(bad)))
    # JSON without the field (what older q2key wrote) has no table; with a bad one, an error naming text.
    assert q2key.Thresholds.from_json(th.to_json()).reconstruction is None
    doc = th.to_json()[:-1] + ', "reconstruction": [[1, 0, 0, 0], [0, 0, 0, 1]]}'
    with pytest.raises(q2key.Q2KeyError, match=r"^text: "):
        q2key.Thresholds.from_json(doc)


def test_fit_and_lloyd_max_reduce_the_reconstruction_error() -> None:
    x = np.random.default_rng(1).laplace(size=(3000, 24)) + np.linspace(-0.5, 0.5, 24)
    u = x / np.linalg.norm(x, axis=1, keepdims=True)

    def mse(th: q2key.Thresholds) -> float:
        return float(np.mean((q2key.decode(q2key.encode(x, threshold=th).codes, threshold=th) - u) ** 2))

    gauss = q2key.Thresholds.gaussian(24)
    fit = fitted(x, gauss)
    lloyd = q2key.Thresholds._wrap(_native.lloyd_max(x, gauss._rule, 50))
    assert lloyd.kind == "per_dim" and lloyd.reconstruction is not None
    assert mse(lloyd) <= mse(fit) < mse(gauss)
    bad = x.copy()
    bad[7, 3] = np.inf
    with pytest.raises(q2key.NonFiniteError, match=r"^sample: row 7 ") as info:
        _native.fit_reconstruction(bad, gauss._rule)
    assert (info.value.row, info.value.col) == (7, 3)


# -- decode and the free functions ----------------------------------------------------------------


def test_decode_is_the_table_lookup_of_each_symbol() -> None:
    x = np.random.default_rng(2).normal(size=(50, 37))
    th = fitted(x)
    codes = q2key.encode(x, threshold=th).codes
    out = q2key.decode(codes, threshold=th)
    symbols = q2key.unpack(codes, 37)
    assert out.dtype == np.float32 and out.shape == (50, 37)
    assert np.array_equal(out, th.table()[np.arange(37), symbols])
    assert np.array_equal(q2key.decode(codes[0], threshold=th), out[0])
    assert q2key.decode(codes).shape == (50, 40)  # no dimension known: every code bit a symbol
    with pytest.raises(q2key.ShapeError, match=r"^codes: "):
        q2key.decode(codes, dim=30)


@pytest.mark.parametrize("dim", [1, 7, 64, 130])
def test_asymmetric_search_is_the_exact_top_k(dim: int) -> None:
    rng = np.random.default_rng(dim)
    x = rng.normal(size=(700, dim)).astype(np.float32)
    th = fitted(x)
    codes = q2key.encode(x, threshold=th).codes
    q = rng.normal(size=(9, dim))  # float64 queries
    want = brute(q, codes, th, dim)
    for k in (1, 10, 5000):
        dist, rows = q2key.asymmetric_search(q, codes, k, threshold=th)
        assert rows.dtype == np.int64
        assert_top_k(dist, rows, want, k)
        # Every thread count gives the same answer.
        assert np.array_equal(q2key.asymmetric_search(q, codes, k, threshold=th, threads=1).ids, rows)


def test_rerank_scores_the_candidates_only() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(400, 48)).astype(np.float32)
    codes = q2key.encode(x).codes
    q = rng.normal(size=(4, 48)).astype(np.float32)
    cand = np.stack([rng.permutation(400)[:30] for _ in range(4)]).astype(np.int64)
    cand[:, -3:] = cand[:, :3]  # repeats count once
    cand[0, 5] = -1  # none
    dist, rows = q2key.rerank(q, codes, cand, 100)
    want = brute(q, codes, None, 48)
    assert dist.shape == (4, 30)
    for i in range(4):
        distinct = sorted(set(cand[i].tolist()) - {-1})
        n = len(distinct)
        sub = np.full(400, np.inf)
        sub[distinct] = want[i, distinct]
        assert_top_k(dist[i : i + 1, :n], rows[i : i + 1, :n], sub[None], n)
        assert (rows[i, n:] == -1).all() and np.isinf(dist[i, n:]).all()


def test_rerank_of_lee_candidates_matches_asymmetric_search_and_beats_lee() -> None:
    """On 5 000 MiniLM rows: asymmetric recall@10 is far above Lee's; re-ranking Lee's top 200 ≈ it."""
    with np.load(DATA) as d:
        db = d["database"][:5000].astype(np.float32)
        q = d["queries"][:200].astype(np.float32)
    dbn = db / np.linalg.norm(db, axis=1, keepdims=True)
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    truth = np.argsort(-(qn @ dbn.T), axis=1, kind="stable")[:, :10]

    def recall(found: np.ndarray) -> float:
        return float(np.mean([len(set(a.tolist()) & set(b.tolist())) / 10 for a, b in zip(found, truth)]))

    codes = q2key.encode(db).codes
    lee = q2key.search(q2key.encode(q).codes, codes, 200).ids
    asym = q2key.asymmetric_search(q, codes, 10).ids
    rr = q2key.rerank(q, codes, lee, 10).ids
    assert recall(asym) >= recall(lee[:, :10]) + 0.15, (recall(asym), recall(lee[:, :10]))
    assert recall(rr) >= recall(asym) - 0.03
    overlap = np.mean([len(set(a.tolist()) & set(b.tolist())) / 10 for a, b in zip(rr, asym)])
    assert overlap >= 0.9
    # The index gives the same answer as the free function.
    index = q2key.Index(384)
    index.add(db)
    assert np.array_equal(index.search(q, 10).ids.astype(np.int64), asym)


# -- Index.search(scoring=...) ---------------------------------------------------------------------


def test_index_search_scores_float_queries_asymmetrically(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(900, 40)).astype(np.float32) + np.linspace(-0.2, 0.2, 40).astype(np.float32)
    th = fitted(x)
    ids = rng.permutation(5000)[:900].astype(np.uint64)  # ids do not follow rows: ties by id
    index = q2key.Index(40, threshold=th)
    index.add(x, ids)
    assert index.thresholds == th and np.array_equal(index.thresholds.reconstruction, th.reconstruction)  # type: ignore[arg-type]
    gone = ids[:100]
    index.remove(gone)
    keep = np.isin(ids, gone, invert=True)
    q = rng.normal(size=(5, 40)).astype(np.float32)
    codes = q2key.encode(x, threshold=th).codes
    want = brute(q, codes, th, 40)
    want[:, ~keep] = np.inf
    dist, found = index.search(q, 12)
    assert dist.dtype == np.float32 and found.dtype == np.uint64
    row_of = {int(i): r for r, i in enumerate(ids)}
    as_rows = np.vectorize(lambda i: row_of[int(i)])(found)
    assert_top_k(dist, as_rows, want, 12)
    # Equal to the free function over the index's stored codes and thresholds.
    stored, _, stored_ids = index.arrays()
    fd, fr = q2key.asymmetric_search(q, stored, 12, threshold=index.thresholds)
    assert np.array_equal(stored_ids[fr], found) and np.array_equal(fd, dist)
    # Filters (ids and masks) and threads.
    allowed = ids[100:400:3]
    _, ffound = index.search(q, 5, filter=allowed, threads=1)
    assert set(ffound.ravel().tolist()) <= set(allowed.tolist())
    mask = np.zeros(5000, bool)
    mask[allowed.astype(np.intp)] = True
    assert np.array_equal(index.search(q, 5, filter=mask).ids, ffound)
    # Codes as queries keep Lee; scoring="lee" forces Lee for floats; asymmetric refuses codes.
    qc = q2key.encode(q, threshold=th).codes
    lee = index.search(qc, 5)
    assert lee.distances.dtype == np.uint32
    assert np.array_equal(index.search(q, 5, scoring="lee").ids, lee.ids)
    with pytest.raises(q2key.Q2KeyError, match=r"^scoring: "):
        index.search(qc, 5, scoring="asymmetric")
    assert np.array_equal(index.search(q, 5, scoring="asymmetric").ids, found[:, :5])
    # rescore= re-ranks the best k · oversample asymmetric candidates by exact cosine.
    vectors = np.zeros((5000, 40), np.float32)
    vectors[ids.astype(np.intp)] = x
    rd, rf = index.search(q, 5, rescore=vectors, oversample=4)
    assert rd.dtype == np.float64
    candidates = index.search(q, 20).ids
    for i in range(5):
        v = vectors[candidates[i].astype(np.intp)].astype(np.float64)
        cos = v @ q[i] / (np.linalg.norm(v, axis=1) * np.linalg.norm(q[i]))
        order = np.lexsort((candidates[i], 1 - cos))[:5]
        assert np.array_equal(rf[i], candidates[i][order])
        np.testing.assert_allclose(rd[i], (1 - cos)[order], atol=1e-9)
    # Save/load, bytes and pickling keep the table and the answers.
    index.save(tmp_path / "i.q2")
    for other in (
        q2key.Index.load(tmp_path / "i.q2"),
        q2key.Index.load(tmp_path / "i.q2", mmap=True),
        q2key.Index.from_bytes(index.to_bytes()),
        pickle.loads(pickle.dumps(index)),
    ):
        assert other.thresholds == th
        got = other.search(q, 12)
        assert np.array_equal(got.ids, found) and np.array_equal(got.distances, dist)


def test_an_index_without_a_fitted_table_uses_the_default_and_writes_format_1() -> None:
    x = np.random.default_rng(8).normal(size=(300, 33)).astype(np.float32)
    index = q2key.Index(33)
    index.add(x)
    assert index.thresholds.reconstruction is None
    assert index.to_bytes()[8:12] == (1).to_bytes(4, "little")
    gaussian = q2key.Thresholds.gaussian(33)
    explicit = q2key.Index(33, threshold=gaussian.with_reconstruction(gaussian.table()))
    explicit.add(x)
    assert explicit.to_bytes()[8:12] == (2).to_bytes(4, "little")
    q = x[:4] + 0.1
    a, b = index.search(q, 7), explicit.search(q, 7)
    assert np.array_equal(a.ids, b.ids) and np.array_equal(a.distances, b.distances)


def test_weighted_indexes_and_complement_keep_lee_under_auto() -> None:
    x = np.random.default_rng(9).normal(size=(100, 16)).astype(np.float32)
    weighted = q2key.Index(16, weights=(1.0, 2.0, 3.0))
    weighted.add(x)
    assert weighted.search(x[:2], 3).distances.dtype == np.float64  # weighted Lee
    assert weighted.search(x[:2], 3, scoring="asymmetric").distances.dtype == np.float32
    plain = q2key.Index(16)
    plain.add(x)
    assert plain.search(x[:2], 3, complement=True).distances.dtype == np.uint32
    with pytest.raises(q2key.Q2KeyError, match=r"^scoring: "):
        plain.search(x[:2], 3, complement=True, scoring="asymmetric")


def test_tables_of_huge_dimensions_are_a_memory_error_not_an_abort() -> None:
    """A table sized by a user's ``dim`` is allocated through the checked path (it aborted the process)."""
    import subprocess
    import sys

    code = (
        "import q2key, numpy as np\n"
        "for call in (lambda: q2key.Thresholds.global_(0.1).table(2**32 - 1),\n"
        "             lambda: q2key.decode(np.zeros((1, 3), np.uint8), dim=2**32 - 1)):\n"
        "    try:\n"
        "        call()\n"
        "    except (MemoryError, q2key.Q2KeyError) as e:\n"
        "        print(type(e).__name__, str(e).split(':')[0])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split("\n")[:2] == ["MemoryError table", "ShapeError codes"], done.stdout
