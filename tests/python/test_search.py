"""search(): exact k-NN by Lee distance against a brute-force numpy reference."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import q2key
from conftest import ref_search


def _codes(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.integers(0, 256, size=shape, dtype=np.uint8)


def _with_ties(rng: np.random.Generator, n: int, width: int, unique: int) -> np.ndarray:
    """A database of n rows drawn from only ``unique`` distinct codes: many exact ties."""
    base = _codes(rng, unique, width)
    return base[rng.integers(0, unique, size=n)]


def assert_search_equal(queries: np.ndarray, db: np.ndarray, k: int, **kw: object) -> None:
    dist, idx = q2key.search(queries, db, k, **kw)  # type: ignore[arg-type]
    rdist, ridx = ref_search(queries, db, k)
    assert dist.dtype == np.uint32 and idx.dtype == np.int64
    assert dist.shape == rdist.shape and idx.shape == ridx.shape, (dist.shape, rdist.shape)
    bad = np.flatnonzero((dist != rdist).any(axis=1) | (idx != ridx).any(axis=1))
    assert bad.size == 0, (
        f"k={k}: first wrong query {bad[0]}: got idx {idx[bad[0]][:10]} dist {dist[bad[0]][:10]}, "
        f"expected idx {ridx[bad[0]][:10]} dist {rdist[bad[0]][:10]}"
    )
    assert (idx >= 0).all() and (idx < max(db.shape[0], 1)).all()


@pytest.mark.parametrize("width", [1, 4, 8, 16, 24, 48, 96, 100, 128])
@pytest.mark.parametrize("k", [1, 10, 100])
def test_random_data(rng: np.random.Generator, width: int, k: int) -> None:
    db = _codes(rng, 1500, width)
    q = np.concatenate([_codes(rng, 12, width), db[[0, 7, 1499]]])
    assert_search_equal(q, db, k)


@pytest.mark.parametrize("n", [1, 2, 3, 15, 16, 17, 63, 64, 65, 127, 128, 129, 1000, 1023, 1025])
def test_database_sizes_around_block_boundaries(rng: np.random.Generator, n: int) -> None:
    db = _codes(rng, n, 32)
    q = _codes(rng, 9, 32)
    for k in (1, 5, n):
        assert_search_equal(q, db, k)


@pytest.mark.parametrize("k", [1, 7, 50, 256, 257, 400])
def test_ties_go_to_the_lower_index(rng: np.random.Generator, k: int) -> None:
    db = _with_ties(rng, 2000, 16, unique=6)
    q = np.concatenate([_codes(rng, 8, 16), db[:4]])
    assert_search_equal(q, db, k)


def test_all_equal_database_returns_first_rows(rng: np.random.Generator) -> None:
    db = np.repeat(_codes(rng, 1, 40), 700, axis=0)
    q = _codes(rng, 3, 40)
    for k in (1, 10, 300, 700):
        dist, idx = q2key.search(q, db, k)
        assert (idx == np.arange(k)).all(), f"k={k}"
        assert (dist == dist[:, :1]).all()


def test_exact_matches_come_first(rng: np.random.Generator) -> None:
    db = _codes(rng, 500, 48)
    dist, idx = q2key.search(db[:50], db, 3)
    assert (dist[:, 0] == 0).all()
    assert np.array_equal(idx[:, 0], np.arange(50))
    assert (np.diff(dist.astype(np.int64), axis=1) >= 0).all()


def test_k_equal_and_larger_than_n(rng: np.random.Generator) -> None:
    db = _codes(rng, 37, 12)
    q = _codes(rng, 5, 12)
    for k in (37, 38, 100, 10**6):
        dist, idx = q2key.search(q, db, k)
        assert dist.shape == (5, 37) and idx.shape == (5, 37), k
        assert_search_equal(q, db, k)
        assert (np.sort(idx, axis=1) == np.arange(37)).all(), "every row exactly once"


def test_large_k_counting_path(rng: np.random.Generator) -> None:
    db = _codes(rng, 3000, 24)
    q = np.concatenate([_codes(rng, 10, 24), db[2999:]])
    assert_search_equal(q, db, 500)
    assert_search_equal(q, db, 3000)
    tied = _with_ties(rng, 3000, 24, unique=20)
    assert_search_equal(np.concatenate([q, tied[:3]]), tied, 500)


@pytest.mark.parametrize("k", [0, -1, -100])
def test_non_positive_k_is_rejected(rng: np.random.Generator, k: int) -> None:
    db = _codes(rng, 10, 8)
    with pytest.raises(q2key.Q2KeyError, match="k"):
        q2key.search(db, db, k)


@pytest.mark.parametrize("k", [2.0, "3", None, True, np.float64(4.0), [1]])
def test_non_integer_k_is_rejected(rng: np.random.Generator, k: object) -> None:
    db = _codes(rng, 10, 8)
    with pytest.raises(q2key.DTypeError, match=r"^k: expected an integer"):
        q2key.search(db, db, k)  # type: ignore[arg-type]


@pytest.mark.parametrize("k", [np.int64(3), np.int32(3), np.uint8(3)])
def test_numpy_integer_k(rng: np.random.Generator, k: object) -> None:
    db = _codes(rng, 10, 8)
    assert_search_equal(db[:4], db, 3)
    dist, idx = q2key.search(db[:4], db, k)  # type: ignore[arg-type]
    rdist, ridx = ref_search(db[:4], db, 3)
    assert np.array_equal(dist, rdist) and np.array_equal(idx, ridx)


def test_empty_database(rng: np.random.Generator) -> None:
    q = _codes(rng, 4, 8)
    for k in (1, 5):
        dist, idx = q2key.search(q, np.zeros((0, 8), np.uint8), k)
        assert dist.shape == (4, 0) and dist.dtype == np.uint32
        assert idx.shape == (4, 0) and idx.dtype == np.int64


def test_empty_queries(rng: np.random.Generator) -> None:
    db = _codes(rng, 20, 8)
    for k, cols in [(1, 1), (5, 5), (20, 20), (50, 20)]:
        dist, idx = q2key.search(np.zeros((0, 8), np.uint8), db, k)
        assert dist.shape == (0, cols) and dist.dtype == np.uint32
        assert idx.shape == (0, cols) and idx.dtype == np.int64


def test_width_mismatch_is_a_shape_error(rng: np.random.Generator) -> None:
    with pytest.raises(q2key.ShapeError):
        q2key.search(_codes(rng, 3, 8), _codes(rng, 10, 9), 2)
    with pytest.raises(q2key.ShapeError):
        q2key.search(_codes(rng, 7), _codes(rng, 10, 8), 2)


def test_bad_ranks_are_shape_errors(rng: np.random.Generator) -> None:
    with pytest.raises(q2key.ShapeError):
        q2key.search(_codes(rng, 2, 3, 8), _codes(rng, 10, 8), 2)
    with pytest.raises(q2key.ShapeError):
        q2key.search(_codes(rng, 3, 8), _codes(rng, 8), 2)
    with pytest.raises(q2key.ShapeError):
        q2key.search(_codes(rng, 3, 8), _codes(rng, 2, 5, 8), 2)


def test_non_uint8_codes_are_dtype_errors(rng: np.random.Generator) -> None:
    db = _codes(rng, 10, 8)
    with pytest.raises(q2key.DTypeError):
        q2key.search(db.astype(np.int16), db, 2)
    with pytest.raises(q2key.DTypeError):
        q2key.search(db, db.astype(np.int8), 2)


def test_one_dimensional_query(rng: np.random.Generator) -> None:
    db = _codes(rng, 200, 16)
    dist, idx = q2key.search(db[17], db, 5)
    assert dist.shape == (1, 5) and idx.shape == (1, 5)
    assert int(idx[0, 0]) == 17 and int(dist[0, 0]) == 0
    assert_search_equal(db[17], db, 5)


def test_threads_give_identical_results(rng: np.random.Generator) -> None:
    db = _codes(rng, 5000, 48)
    q = _codes(rng, 300, 48)
    for k in (1, 10, 300):
        one = q2key.search(q, db, k, threads=1)
        for threads in (2, None):
            other = q2key.search(q, db, k, threads=threads)
            assert np.array_equal(one[0], other[0]) and np.array_equal(one[1], other[1]), (k, threads)
    assert_search_equal(q[:20], db, 10, threads=2)


@pytest.mark.parametrize(("threads", "error"), [(0, q2key.Q2KeyError), (-1, q2key.Q2KeyError), (2.5, q2key.DTypeError)])
def test_bad_threads_rejected(rng: np.random.Generator, threads: object, error: type[Exception]) -> None:
    db = _codes(rng, 10, 8)
    with pytest.raises(error, match=r"^threads: "):
        q2key.search(db, db, 2, threads=threads)  # type: ignore[arg-type]


def test_layouts(rng: np.random.Generator) -> None:
    big = _codes(rng, 800, 64)
    db = big[::2, ::2]
    q = big[1:40:3, 1::2]
    expected = ref_search(q, db, 7)
    for qq, dd in [(q, db), (np.asfortranarray(q), np.asfortranarray(db)), (q.copy(), db.copy())]:
        dist, idx = q2key.search(qq, dd, 7)
        assert np.array_equal(dist, expected[0]) and np.array_equal(idx, expected[1])
    ro = db.copy()
    ro.setflags(write=False)
    assert np.array_equal(q2key.search(q, ro, 7)[1], expected[1])


def test_search_on_encoded_vectors(rng: np.random.Generator) -> None:
    x = rng.normal(size=(1000, 384)).astype(np.float32)
    enc = q2key.encode(x)
    _, idx = q2key.search(enc.codes[:5], enc.codes, k=10)
    assert idx[:, 0].tolist() == [0, 1, 2, 3, 4]
    assert_search_equal(enc.codes[:50], enc.codes, 10)
    # Near-duplicates of a row are found before unrelated rows.
    noisy = q2key.encode(x[:20] + 0.01 * rng.normal(size=(20, 384)).astype(np.float32)).codes
    _, idx = q2key.search(noisy, enc.codes, 1)
    assert idx[:, 0].tolist() == list(range(20))


def test_inputs_are_not_modified(rng: np.random.Generator) -> None:
    db = _codes(rng, 300, 16)
    q = _codes(rng, 10, 16)
    db0, q0 = db.copy(), q.copy()
    q2key.search(q, db, 260)
    q2key.search(q, db, 3)
    assert np.array_equal(db, db0) and np.array_equal(q, q0)


def test_the_result_is_a_named_tuple_of_distances_and_ids(rng: np.random.Generator) -> None:
    db = _codes(rng, 50, 12)
    result = q2key.search(db[:3], db, k=5)
    assert isinstance(result, q2key.SearchResult) and isinstance(result, tuple)
    assert result._fields == ("distances", "ids")
    dist, idx = result  # unpacks as the plain tuple did
    assert dist is result.distances and idx is result.ids
    assert result.distances.dtype == np.uint32 and result.ids.dtype == np.int64
    assert result.ids[:, 0].tolist() == [0, 1, 2]
    assert repr(result).startswith("SearchResult(distances=array(")
    again = pickle.loads(pickle.dumps(result))
    assert type(again) is q2key.SearchResult
    assert np.array_equal(again.ids, result.ids) and np.array_equal(again.distances, result.distances)
