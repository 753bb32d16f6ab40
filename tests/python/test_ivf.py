"""q2key.IVFIndex from Python: equal to Index when every list is probed, ids, filters, removals, threads, files."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import q2key
from hypothesis import given, settings
from hypothesis import strategies as st

SETTINGS = settings(max_examples=40, deadline=None, database=None)


def clustered(rng: np.random.Generator, rows: int, dim: int, centres: int = 12) -> np.ndarray:
    """Rows around a few random centres: data with neighbourhoods, so routing matters."""
    c = rng.normal(size=(centres, dim))
    return (c[rng.integers(0, centres, rows)] + 0.4 * rng.normal(size=(rows, dim))).astype(np.float32)


def pair(
    x: np.ndarray, lists: int, ids: Any = None, threshold: Any = None, seed: int = 0
) -> tuple[q2key.IVFIndex, q2key.Index]:
    """An IVF index and an exhaustive index of the same rows, ids and thresholds."""
    ivf = q2key.IVFIndex(x.shape[1], threshold=threshold)
    ivf.train(x, lists=lists, seed=seed)
    exact = q2key.Index(x.shape[1], threshold=threshold)
    assert np.array_equal(ivf.add(x, ids), exact.add(x, ids))
    return ivf, exact


def assert_same(a: q2key.SearchResult, b: q2key.SearchResult) -> None:
    assert a.ids.dtype == b.ids.dtype and a.distances.dtype == b.distances.dtype
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_array_equal(a.distances, b.distances)


@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    rows=st.integers(1, 300),
    dim=st.sampled_from([3, 16, 33, 64]),
    lists=st.integers(1, 9),
    k=st.integers(1, 40),
    duplicates=st.booleans(),
    calibrated=st.booleans(),
)
def test_probing_every_list_equals_the_exhaustive_index(
    seed: int, rows: int, dim: int, lists: int, k: int, duplicates: bool, calibrated: bool
) -> None:
    rng = np.random.default_rng(seed)
    x = clustered(rng, rows, dim)
    if duplicates:  # ties: equal rows under different ids, the lower id first
        x[rng.integers(0, rows, rows // 2)] = x[0]
    lists = min(lists, rows)
    ids = rng.choice(2**40, rows, replace=False).astype(np.uint64) if seed % 2 else None
    th = q2key.calibrate(x, method="per_dim") if calibrated and rows >= 8 else None
    ivf, exact = pair(x, lists, ids, th, seed)
    q = np.concatenate([x[:3], rng.normal(size=(3, dim)).astype(np.float32)])
    qc = q2key.encode(q, threshold=ivf.thresholds).codes
    assert_same(ivf.search(q, k, nprobe=lists), exact.search(q, k))
    assert_same(ivf.search(q, k, nprobe=lists, scoring="lee"), exact.search(q, k, scoring="lee"))
    assert_same(ivf.search(qc, k, nprobe=lists), exact.search(qc, k))
    # nprobe beyond the lists means every list.
    assert_same(ivf.search(q, k, nprobe=10**6), exact.search(q, k))


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), rows=st.integers(8, 300), dim=st.sampled_from([3, 16, 33]), k=st.integers(1, 40))
def test_with_rotated_thresholds_probing_every_list_equals_the_exhaustive_index(
    seed: int, rows: int, dim: int, k: int
) -> None:
    """Rows are encoded and float queries scored rotated (SPEC §9), as Index does; routing is unrotated."""
    rng = np.random.default_rng(seed)
    x = clustered(rng, rows, dim)
    q_r, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    th = q2key.calibrate(x, method="per_dim").with_rotation(q_r.astype(np.float32))
    lists = min(5, rows)
    ivf, exact = pair(x, lists, None, th, seed)
    q = np.concatenate([x[:3], rng.normal(size=(3, dim)).astype(np.float32)])
    qc = q2key.encode(q, threshold=th).codes
    assert_same(ivf.search(q, k, nprobe=lists), exact.search(q, k))
    assert_same(ivf.search(q, k, nprobe=lists, scoring="lee"), exact.search(q, k, scoring="lee"))
    assert_same(ivf.search(qc, k, nprobe=lists), exact.search(qc, k))


@pytest.mark.parametrize("method", ["per_dim", "lloyd_max"])
def test_a_rotated_index_saves_loads_maps_and_pickles_with_equal_answers(
    rng: np.random.Generator, tmp_path: Path, method: str
) -> None:
    """The file carries the thresholds' rotation (inverted-file format 2): every copy answers alike."""
    x = clustered(rng, 300, 16)
    th = q2key.calibrate(x, method=method, rotation="random")
    assert th.rotation is not None
    index, _ = pair(x, 4, rng.permutation(10**6)[:300], th)
    index.remove(index.search(x[:2], 2, nprobe=4).ids.ravel())
    q = np.concatenate([x[5:9], rng.normal(size=(3, 16)).astype(np.float32)])
    qc = q2key.encode(q, threshold=th).codes
    data = index.to_bytes()
    assert int.from_bytes(data[8:12], "little") == 2
    for copy in _round_trip_cases(index, tmp_path):
        assert copy.thresholds == index.thresholds
        np.testing.assert_array_equal(copy.thresholds.rotation, th.rotation)
        assert copy.to_bytes() == data
        for nprobe in (1, 4):
            assert_same(copy.search(q, 7, nprobe=nprobe), index.search(q, 7, nprobe=nprobe))
            assert_same(
                copy.search(q, 7, nprobe=nprobe, scoring="lee"), index.search(q, 7, nprobe=nprobe, scoring="lee")
            )
            assert_same(copy.search(qc, 7, nprobe=nprobe), index.search(qc, 7, nprobe=nprobe))


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), share=st.floats(0.0, 0.9), mask=st.booleans())
def test_filters_and_removals_agree_with_the_exhaustive_index(seed: int, share: float, mask: bool) -> None:
    rng = np.random.default_rng(seed)
    x = clustered(rng, 400, 24)
    ivf, exact = pair(x, 7, rng.permutation(5000)[:400])
    stored = exact.arrays()[2]
    gone = stored[rng.random(400) < share]
    assert ivf.remove(gone) == exact.remove(gone) == len(gone)
    assert len(ivf) == len(exact)
    allowed = stored[rng.random(400) < 0.3]
    f: Any = allowed
    if mask:
        f = np.zeros(5000, dtype=bool)
        f[allowed.astype(np.intp)] = True
    q = x[rng.integers(0, 400, 5)]
    assert_same(ivf.search(q, 10, nprobe=7, filter=f), exact.search(q, 10, filter=f))
    ivf.compact()
    assert_same(ivf.search(q, 10, nprobe=7), exact.search(q, 10))


def test_fewer_probes_find_fewer_rows_padded_at_the_end(rng: np.random.Generator) -> None:
    x = clustered(rng, 2000, 32, centres=40)
    ivf, exact = pair(x, 40)
    truth = exact.search(x[:50], 10).ids
    recalls = []
    for nprobe in (1, 4, 40):
        dist, found = ivf.search(x[:50], 10, nprobe=nprobe)
        assert found.shape == (50, 10) and dist.dtype == np.float32
        recalls.append(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found.tolist(), truth.tolist())]))
    assert recalls[0] <= recalls[1] <= recalls[2] == 1.0
    assert recalls[1] > 0.8  # neighbours share lists on clustered data
    # A filter leaving a query's probed lists with fewer than k rows pads that row.
    dist, found = ivf.search(x[:1], 5, nprobe=1, filter=np.array([0, 1999]))
    assert found.shape == (1, 2)
    if found[0, 1] == 2**64 - 1:
        assert np.isinf(dist[0, 1])


def test_ids_all_or_nothing_and_contains(rng: np.random.Generator) -> None:
    x = clustered(rng, 100, 16)
    index = q2key.IVFIndex(16)
    with pytest.raises(q2key.Q2KeyError, match="not trained"):
        index.add(x)
    index.train(x, lists=4)
    assert index.is_trained and index.lists == 4 and index.centroids.shape == (4, 16)
    assert index.add(x[:10]).tolist() == list(range(10))
    with pytest.raises(q2key.Q2KeyError, match="ids"):
        index.add(x[:3], ids=[50, 51, 5])  # 5 is stored: nothing is added
    assert len(index) == 10 and 50 not in index
    bad = x[:3].copy()
    bad[2, 1] = np.nan
    with pytest.raises(q2key.NonFiniteError):
        index.add(bad, ids=[60, 61, 62])
    assert len(index) == 10 and 60 not in index
    assert index.add(x[:2], ids=[2**64 - 2, 7000]).tolist() == [2**64 - 2, 7000]
    assert 2**64 - 2 in index and -1 not in index and "a" not in index and True not in index
    with pytest.raises(q2key.Q2KeyError, match="trained"):
        index.train(x, lists=2)


def test_threads_do_not_change_the_answer(rng: np.random.Generator) -> None:
    x = clustered(rng, 3000, 48)
    a, b = q2key.IVFIndex(48), q2key.IVFIndex(48)
    a.train(x, lists=30, threads=1)
    b.train(x, lists=30, threads=2)
    np.testing.assert_array_equal(a.centroids, b.centroids)
    a.add(x, threads=1)
    b.add(x, threads=2)
    q = x[:64]
    for scoring in ("asymmetric", "lee"):
        assert_same(
            a.search(q, 10, nprobe=5, threads=1, scoring=scoring), b.search(q, 10, nprobe=5, threads=2, scoring=scoring)
        )
    assert a.stats() == b.stats()


def test_stats_report_list_sizes_and_imbalance(rng: np.random.Generator) -> None:
    x = clustered(rng, 1200, 16)
    index = q2key.IVFIndex(16)
    index.train(x, lists=12)
    index.add(x)
    s = index.stats()
    assert (s.rows, s.removed, s.lists) == (1200, 0, 12)
    assert s.min_list <= s.mean_list == 100 <= s.max_list and s.imbalance >= 1
    assert s.bytes_per_row > index.code_bytes and not s.mapped
    # Drift: rows far from the training data pile into few lists.
    shifted = x[:600] * 0.1 + 10.0
    index.add(shifted)
    assert index.stats().imbalance > s.imbalance


def test_rescore_reranks_by_exact_cosine(rng: np.random.Generator) -> None:
    x = clustered(rng, 800, 32)
    ivf, exact = pair(x, 8)
    q = x[:5] + 0.01
    got = ivf.search(q, 5, nprobe=8, rescore=x, oversample=8)
    want = exact.search(q, 5, rescore=x, oversample=8)
    np.testing.assert_array_equal(got.ids, want.ids)
    np.testing.assert_allclose(got.distances, want.distances)
    assert got.distances.dtype == np.float64
    with pytest.raises(q2key.Q2KeyError, match="rescore"):
        ivf.search(q2key.encode(q).codes, 5, rescore=x)


def _round_trip_cases(index: q2key.IVFIndex, tmp_path: Path) -> list[q2key.IVFIndex]:
    path = tmp_path / "ivf.q2"
    index.save(path)
    return [
        q2key.IVFIndex.load(path),
        q2key.IVFIndex.load(path, mmap=True),
        q2key.IVFIndex.from_bytes(index.to_bytes()),
        pickle.loads(pickle.dumps(index)),
    ]


def test_save_load_mmap_bytes_and_pickle_round_trip(rng: np.random.Generator, tmp_path: Path) -> None:
    x = clustered(rng, 700, 40)
    th = q2key.calibrate(x, method="lloyd_max")
    index = q2key.IVFIndex(40, threshold=th)
    index.train(x, lists=9)
    index.add(x, ids=rng.permutation(10**6)[:700])
    index.remove(index.search(x[:3], 2, nprobe=9).ids.ravel())
    q = x[10:20]
    for copy in _round_trip_cases(index, tmp_path):
        assert len(copy) == len(index) and copy.lists == 9 and copy.thresholds == index.thresholds
        np.testing.assert_array_equal(copy.centroids, index.centroids)
        for nprobe in (1, 3, 9):
            assert_same(copy.search(q, 7, nprobe=nprobe), index.search(q, 7, nprobe=nprobe))
    mapped = q2key.IVFIndex.load(tmp_path / "ivf.q2", mmap=True)
    assert mapped.mapped and "mapped" in repr(mapped)
    with pytest.raises(q2key.Q2KeyError):
        mapped.add(x[:1])


def test_an_untrained_index_searches_nothing_and_round_trips() -> None:
    index = q2key.IVFIndex(8)
    assert len(index) == 0 and index.lists == 0 and not index.is_trained
    copy = pickle.loads(pickle.dumps(index))
    assert copy.dim == 8 and not copy.is_trained


def test_a_corrupted_file_is_a_format_error(rng: np.random.Generator, tmp_path: Path) -> None:
    x = clustered(rng, 200, 16)
    index = q2key.IVFIndex(16)
    index.train(x, lists=4)
    index.add(x)
    data = bytearray(index.to_bytes())
    for cut in (0, 8, len(data) // 2, len(data) - 1):
        with pytest.raises(q2key.FormatError):
            q2key.IVFIndex.from_bytes(bytes(data[:cut]))
    data[len(data) // 2] ^= 0xFF
    with pytest.raises(q2key.FormatError):
        q2key.IVFIndex.from_bytes(bytes(data))


def test_ids_lists_the_stored_ids_in_storage_order(rng: np.random.Generator, tmp_path: Path) -> None:
    x = clustered(rng, 400, 16)
    given = rng.choice(2**40, 400, replace=False).astype(np.uint64)
    ivf, _ = pair(x, 6, given)
    ids = ivf.ids()
    assert ids.dtype == np.uint64 and ids.shape == (400,)
    assert sorted(ids.tolist()) == sorted(given.tolist())
    # Storage order: stable, kept by removals (in order) and by files.
    assert np.array_equal(ivf.ids(), ids)
    ivf.remove(given[::3])
    assert ivf.ids().tolist() == [i for i in ids.tolist() if i not in set(given[::3].tolist())]
    ivf.save(tmp_path / "i.ivf")
    assert np.array_equal(q2key.IVFIndex.load(tmp_path / "i.ivf", mmap=True).ids(), ivf.ids())
    assert q2key.IVFIndex(16).ids().shape == (0,)


@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    rows=st.integers(1, 400),
    lists=st.integers(1, 9),
    batch=st.integers(1, 150),
    reserve=st.booleans(),
)
def test_assign_reserve_then_add_to_lists_is_the_one_pass_build(
    seed: int, rows: int, lists: int, batch: int, reserve: bool
) -> None:
    # The streamed build's law: routing every batch first (assign), sizing the lists once (reserve) and
    # adding with the lists found gives the index, byte for byte, that adding the same batches gives.
    rng = np.random.default_rng(seed)
    x = clustered(rng, rows, 24)
    lists = min(lists, rows)
    one, two = q2key.IVFIndex(24), q2key.IVFIndex(24)
    one.train(x, lists=lists, seed=seed)
    two.train(x, lists=lists, seed=seed)
    batches = [x[lo : lo + batch] for lo in range(0, rows, batch)]
    routes = [two.assign(b) for b in batches]
    assert all(r.dtype == np.uint32 and r.shape == (len(b),) for r, b in zip(routes, batches))
    if reserve:
        two.reserve(np.bincount(np.concatenate(routes), minlength=lists))
    for b, r in zip(batches, routes):
        one.add(b)
        two.add(b, lists=r.astype(np.uint16))
    assert one.to_bytes() == two.to_bytes()


def test_add_to_lists_and_reserve_refuse_bad_input_before_storing(rng: np.random.Generator) -> None:
    x = clustered(rng, 60, 16)
    index = q2key.IVFIndex(16)
    with pytest.raises(q2key.Q2KeyError, match="not trained"):
        index.assign(x)
    with pytest.raises(q2key.Q2KeyError, match="not trained"):
        index.reserve([])
    index.train(x, lists=4)
    good = index.assign(x[:3])
    bad_lists: list[tuple[Any, type[Exception], str]] = [
        ([0, 1, 4], q2key.Q2KeyError, "lists: row 2: list 4 is not below the index's 4 lists"),
        ([0, 1, -1], q2key.Q2KeyError, "lists: list numbers are integers from 0 to 4294967295, got -1"),
        ([0, 1, 2**32], q2key.Q2KeyError, "got 4294967296"),
        ([0, 1], q2key.ShapeError, "lists: expected 3 list numbers, got 2"),
        ([[0, 1, 2]], q2key.ShapeError, "lists: expected a 1-D array"),
        ([0.0, 1.0, 2.0], q2key.DTypeError, "lists: expected integer list numbers, got dtype float64"),
    ]
    for lists, kind, words in bad_lists:
        with pytest.raises(kind) as e:
            index.add(x[:3], ids=[7, 8, 9], lists=lists)
        assert words in str(e.value) and e.value.arg == "lists"  # type: ignore[attr-defined]
        assert len(index) == 0
    nan = x[:3].copy()
    nan[1, 2] = np.nan
    with pytest.raises(q2key.NonFiniteError):
        index.assign(nan)
    with pytest.raises(q2key.NonFiniteError):
        index.add(nan, lists=good)
    assert len(index) == 0
    with pytest.raises(q2key.ShapeError, match="rows_per_list: expected 4 row counts, got 3"):
        index.reserve([1, 2, 3])
    with pytest.raises(q2key.Q2KeyError, match="rows_per_list: row counts are integers from 0 to"):
        index.reserve([1, 2, 3, -4])
    with pytest.raises(MemoryError, match="rows_per_list: cannot allocate the inverted lists"):
        index.reserve([1, 2**63, 3, 4])
    with pytest.raises(MemoryError, match="rows_per_list"):
        index.reserve([2**64 - 1, 0, 0, 0])
    assert len(index) == 0
    assert index.add(x[:3], lists=good).tolist() == [0, 1, 2]
    assert index.stats().rows == 3
    path_index = q2key.IVFIndex.from_bytes(index.to_bytes())
    assert np.array_equal(path_index.ids(), index.ids())
