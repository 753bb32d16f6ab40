"""q2key.faiss.to_faiss(index): a faiss IndexBinaryIDMap with the same codes, ids, distances and neighbours."""

from __future__ import annotations

import pickle
import sys
from typing import Any

import numpy as np
import pytest
import q2key
from q2key.faiss import to_faiss

faiss: Any = pytest.importorskip("faiss")


def _index(rng: np.random.Generator, dim: int, rows: int, **kwargs: Any) -> tuple[q2key.Index, np.ndarray]:
    x = rng.normal(size=(rows, dim)).astype(np.float32)
    # Some near-duplicates, so that there are ties and very small distances.
    x[rows // 2 : rows // 2 + 20] = x[:20] + 0.01 * rng.normal(size=(20, dim)).astype(np.float32)
    index = q2key.Index(dim, **kwargs)
    return index, x


def _check_same(index: q2key.Index, fx: Any, queries: np.ndarray, k: int) -> None:
    """faiss and q2key agree: identical distance rows, and the same ids up to the order of ties."""
    q_codes = q2key.encode(queries, threshold=index.thresholds).codes
    dist, ids = index.search(queries, k=k, scoring="lee")
    f_dist, f_ids = fx.search(q_codes, k)
    assert f_dist.dtype == np.int32 and f_ids.dtype == np.int64
    np.testing.assert_array_equal(f_dist.astype(np.int64), dist.astype(np.int64))
    for row in range(queries.shape[0]):
        last = dist[row, -1]
        # Below the k-th distance the sets must agree exactly; at it, faiss may pick other tied ids.
        ours = sorted(zip(dist[row].tolist(), ids[row].tolist()))
        theirs = sorted(zip(f_dist[row].tolist(), f_ids[row].tolist()))
        assert [p for p in ours if p[0] < last] == [p for p in theirs if p[0] < last]
        # Every faiss hit is a stored id at the distance faiss reports.
        got = q2key.lee(q_codes[row], index.codes(f_ids[row].astype(np.uint64)))
        np.testing.assert_array_equal(got, f_dist[row])


@pytest.mark.parametrize("dim", [384, 61, 768])
def test_same_neighbours_as_index_search(rng: np.random.Generator, dim: int) -> None:
    index, x = _index(rng, dim, 2_000)
    index.add(x)
    fx = to_faiss(index)
    assert isinstance(fx, faiss.IndexBinaryIDMap)
    assert fx.d == 8 * index.code_bytes and fx.ntotal == len(index)
    if dim == 768:
        assert index.code_bytes == 192 and fx.d == 1536
    _check_same(index, fx, x[:50], k=10)
    _check_same(index, fx, rng.normal(size=(20, dim)), k=37)


def test_ids_removals_and_per_dim_thresholds(rng: np.random.Generator) -> None:
    x = rng.normal(size=(3_000, 96)) + np.linspace(-0.5, 0.5, 96)
    th = q2key.calibrate(x, method="per_dim")
    index = q2key.Index(96, threshold=th)
    ids = rng.choice(2**62, size=3_000, replace=False).astype(np.uint64)
    ids[0] = 2**63 - 1  # the largest id faiss can hold
    index.add(x, ids=ids)
    index.remove(ids[100:400])
    fx = to_faiss(index)
    assert fx.ntotal == len(index) == 2_700
    stored = faiss.vector_to_array(fx.id_map)
    np.testing.assert_array_equal(np.sort(stored.astype(np.uint64)), np.sort(index.arrays()[2]))
    _check_same(index, fx, x[:40], k=15)
    _check_same(index, fx, x[150:160], k=5)  # removed rows are not found by either


def test_range_search_radius_is_strict_in_faiss(rng: np.random.Generator) -> None:
    index, x = _index(rng, 128, 1_000)
    index.add(x)
    fx = to_faiss(index)
    q_codes = q2key.encode(x[:10], threshold=index.thresholds).codes
    radius = 40
    lims, dist, ids = index.range_search(x[:10], radius)
    f_lims, f_dist, f_ids = fx.range_search(q_codes, radius + 1)
    np.testing.assert_array_equal(f_lims, lims)
    for q in range(10):
        a, b = int(lims[q]), int(lims[q + 1])
        ours = sorted(zip(dist[a:b].tolist(), ids[a:b].tolist()))
        theirs = sorted(zip(f_dist[a:b].tolist(), f_ids[a:b].astype(np.uint64).tolist()))
        assert ours == theirs


def test_empty_and_mmap_indexes(rng: np.random.Generator, tmp_path: Any) -> None:
    empty = to_faiss(q2key.Index(64))
    assert empty.ntotal == 0 and empty.d == 128
    index, x = _index(rng, 64, 500)
    index.add(x)
    path = tmp_path / "i.q2"
    index.save(path)
    mapped = q2key.Index.load(path, mmap=True)
    assert mapped.mapped
    _check_same(mapped, to_faiss(mapped), x[:10], k=8)


def test_the_faiss_index_is_an_independent_copy(rng: np.random.Generator) -> None:
    index, x = _index(rng, 64, 200)
    index.add(x)
    fx = to_faiss(index)
    index.remove(np.arange(100))
    assert fx.ntotal == 200
    # faiss indexes serialise on their own (faiss.serialize_index_binary), independent of q2key.
    again = faiss.deserialize_index_binary(faiss.serialize_index_binary(fx))
    assert again.ntotal == 200
    assert to_faiss(pickle.loads(pickle.dumps(index))).ntotal == 100


def test_errors(rng: np.random.Generator) -> None:
    index = q2key.Index(32)
    index.add(rng.normal(size=(3, 32)), ids=np.array([1, 2**63, 2**64 - 1], dtype=np.uint64))
    with pytest.raises(q2key.Q2KeyError, match=r"id 9223372036854775808 cannot be represented in faiss"):
        to_faiss(index)
    weighted = q2key.Index(32, weights=(1.0, 2.0, 3.0))
    with pytest.raises(q2key.Q2KeyError, match="weighted Lee"):
        to_faiss(weighted)


def test_missing_faiss_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "faiss", None)
    with pytest.raises(ImportError, match="pip install faiss-cpu"):
        to_faiss(q2key.Index(8))


def test_index_to_faiss_is_deprecated_and_still_works(rng: np.random.Generator) -> None:
    index, x = _index(rng, 64, 50)
    index.add(x)
    with pytest.warns(DeprecationWarning, match=r"use q2key\.faiss\.to_faiss\(index\)"):
        fx = index.to_faiss()
    assert fx.ntotal == 50
    _check_same(index, fx, x[:5], k=4)
