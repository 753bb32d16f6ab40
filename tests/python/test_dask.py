"""q2key.dask on a real two-process LocalCluster: equal to in-memory encode, thresholds travel, calibrate."""

from __future__ import annotations

import doctest
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import q2key

dask: Any = pytest.importorskip("dask")
da: Any = pytest.importorskip("dask.array")
distributed: Any = pytest.importorskip("distributed")
import q2key.dask as qd  # noqa: E402


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    """One cluster for the module: two worker processes, one thread each (tasks really leave this process)."""
    with (
        distributed.LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None, memory_limit="1GiB"
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


def _data(rows: int = 2_000, n: int = 70, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(rows, n)) + np.linspace(-0.3, 0.3, n)).astype(np.float32)


def _assert_equal(enc: qd.EncodedArrays, x: np.ndarray, threshold: Any = None) -> None:
    codes, keys, transitions = (np.asarray(a) for a in dask.compute(*enc))
    ref = q2key.encode(x, threshold=threshold)
    np.testing.assert_array_equal(codes, ref.codes)
    np.testing.assert_array_equal(keys, ref.keys)
    np.testing.assert_array_equal(transitions, ref.transitions)


def _workers_used(client: Any) -> set[str]:
    """Workers that ran a q2key encode task since the last call."""
    seen: set[str] = set()
    for worker, events in client.run(lambda dask_worker: list(dask_worker.state.log)).items():
        if any("q2key-encode" in str(event) for event in events):
            seen.add(worker)
    return seen


def test_encode_equals_in_memory(client: Any) -> None:
    x = _data()
    d = da.from_array(x, chunks=(250, 70))
    enc = qd.encode(d, threads=1)
    assert isinstance(enc, qd.EncodedArrays)
    codes, keys, transitions = enc
    assert codes.shape == (2_000, 18) and codes.dtype == np.uint8 and codes.chunks == ((250,) * 8, (18,))
    assert keys.shape == (2_000,) and keys.dtype == np.uint64 and keys.chunks == ((250,) * 8,)
    assert transitions.dtype == np.uint32 and transitions.chunks == keys.chunks
    assert type(codes._meta) is np.ndarray and codes._meta.dtype == np.uint8 and codes._meta.ndim == 2
    # Computed together on the cluster: equal to the in-memory encode, C-contiguous numpy.
    c, k, t = client.compute(list(enc), sync=True)
    ref = q2key.encode(x)
    np.testing.assert_array_equal(c, ref.codes)
    np.testing.assert_array_equal(k, ref.keys)
    np.testing.assert_array_equal(t, ref.transitions)
    assert c.flags.c_contiguous and k.dtype == np.uint64 and t.dtype == np.uint32
    assert len(_workers_used(client)) == 2, "both worker processes should have encoded chunks"


def test_uneven_chunks_split_columns_and_dtypes(client: Any) -> None:
    x = _data(1_001, 61, seed=1)
    # Split along n: rechunked to one column chunk; uneven row chunks are kept.
    d = da.from_array(x, chunks=((1, 500, 400, 100), (20, 41)))
    enc = qd.encode(d)
    assert enc.codes.chunks == ((1, 500, 400, 100), (16,))
    _assert_equal(enc, x)
    x64 = x.astype(np.float64) * 1e3
    _assert_equal(qd.encode(da.from_array(x64, chunks=(300, 61)), 0.05), x64, 0.05)
    xi = (x * 100).astype(np.int16)
    _assert_equal(qd.encode(da.from_array(xi, chunks=(300, 61))), xi)
    empty = da.zeros((0, 61), chunks=(10, 61), dtype=np.float32)
    e = qd.encode(empty)
    assert e.codes.compute().shape == (0, 16) and e.keys.compute().dtype == np.uint64


def test_per_dim_thresholds_travel(client: Any) -> None:
    x = _data(seed=2)
    th = q2key.calibrate(x, method="per_dim")
    d = da.from_array(x, chunks=(400, 70))
    enc = qd.encode(d, th, threads=1)
    _assert_equal(enc, x, th)
    # Different thresholds are different graphs (no key collisions in dask's cache).
    other = q2key.Thresholds.per_dim(th.cuts * 0.5)  # type: ignore[operator]
    enc2 = qd.encode(d, other)
    assert enc2.codes.name != enc.codes.name
    _assert_equal(enc2, x, other)
    assert not np.array_equal(enc2.codes.compute(), enc.codes.compute())


def test_reconstruction_tables_travel(client: Any) -> None:
    """Thresholds and indexes shipped to workers keep their fitted reconstruction table."""
    x = _data(seed=3)
    th = q2key.calibrate(x, method="per_dim")
    table = th.table() * np.float32(1.5)  # not the default: the workers must get this one
    th = th.with_reconstruction(table)
    _assert_equal(qd.encode(da.from_array(x, chunks=(400, 70)), th), x, th)
    index = q2key.Index(70, threshold=th)
    index.add(x)
    queries = x[:5] + 0.01

    def work(th: q2key.Thresholds, index: q2key.Index, queries: np.ndarray) -> Any:
        return th.reconstruction, index.thresholds, index.search(queries, k=4)

    got_table, got_th, (dist, ids) = client.submit(work, th, index, queries).result()
    np.testing.assert_array_equal(got_table, table)
    assert got_th == th
    want = index.search(queries, k=4)
    np.testing.assert_array_equal(dist, want.distances)
    np.testing.assert_array_equal(ids, want.ids)


def test_rotations_travel(client: Any) -> None:
    """Thresholds and indexes with a rotation are pickled to the workers whole: their codes and searches equal
    in-memory ones."""
    x = _data(seed=4)
    th = qd.calibrate(da.from_array(x, chunks=(400, 70)), method="lloyd_max", rotation="learned", sample_rows=800)
    assert th.rotation is not None
    rows = np.sort(np.random.default_rng(0).choice(len(x), size=800, replace=False))
    assert th == q2key.calibrate(x[rows], method="lloyd_max", rotation="learned")
    _assert_equal(qd.encode(da.from_array(x, chunks=(400, 70)), th, threads=1), x, th)
    index = q2key.Index(70, threshold=th)
    index.add(x)
    queries = x[:5] + 0.01

    def work(th: q2key.Thresholds, index: q2key.Index, queries: np.ndarray) -> Any:
        return th.rotation, index.thresholds, index.search(queries, k=4), index.search(queries, k=4, scoring="lee")

    got_rotation, got_th, asym, lee = client.submit(work, th, index, queries).result()
    np.testing.assert_array_equal(got_rotation, th.rotation)
    assert got_th == th
    for got, scoring in ((asym, "asymmetric"), (lee, "lee")):
        want = index.search(queries, k=4, scoring=scoring)
        np.testing.assert_array_equal(got.distances, want.distances)
        np.testing.assert_array_equal(got.ids, want.ids)


def test_generated_on_workers(client: Any) -> None:
    """Data made on the workers (nothing but the graph is sent), reduced there too."""
    d = da.random.default_rng(5).standard_normal((20_000, 384), chunks=(2_500, 384), dtype=np.float32)
    enc = qd.encode(d, threads=1)
    total, kmax = client.compute([enc.transitions.sum(dtype=np.uint64), enc.keys.max()], sync=True)
    ref = q2key.encode(d.compute())
    assert int(total) == int(ref.transitions.sum()) and int(kmax) == int(ref.keys.max())


@pytest.mark.slow
def test_calibrate_is_deterministic_for_a_seed(client: Any) -> None:
    x = _data(5_000, 64, seed=3)
    d = da.from_array(x, chunks=(500, 64))
    a = qd.calibrate(d, method="per_dim", sample_rows=1_000, seed=7)
    b = qd.calibrate(d, method="per_dim", sample_rows=1_000, seed=7)
    c = qd.calibrate(d, method="per_dim", sample_rows=1_000, seed=8)
    assert a == b and a != c
    assert a.report is not None and a.report.sample_rows == 1_000
    # The same rows as a numpy sample drawn the documented way.
    rows = np.sort(np.random.default_rng(7).choice(5_000, size=1_000, replace=False))
    assert a == q2key.calibrate(x[rows], method="per_dim", seed=7)
    # sample_rows ≥ N: every row, like the in-memory calibrate.
    assert qd.calibrate(d, sample_rows=10**6) == q2key.calibrate(x)
    f1 = qd.calibrate(d, method="fidelity", sample_rows=800, seed=1)
    f2 = qd.calibrate(d, method="fidelity", sample_rows=800, seed=1)
    assert f1 == f2 and f1.report is not None and f1.report.recall is not None
    enc = qd.encode(d, f1)
    _assert_equal(enc, x, f1)


def test_wrong_inputs_are_clear_errors() -> None:
    x = _data(100, 8)
    with pytest.raises(q2key.ShapeError, match=r"expected a dask array of shape \(N, n\).*\(800,\)"):
        qd.encode(da.from_array(x.ravel(), chunks=100))
    with pytest.raises(q2key.ShapeError, match=r"shape \(N, n\)"):
        qd.encode(da.zeros((4, 5, 6), chunks=2))
    with pytest.raises(q2key.ShapeError, match="at least one dimension"):
        qd.encode(da.zeros((4, 0), chunks=2))
    with pytest.raises(q2key.DTypeError, match=r"expected a dask.array.Array, got numpy.ndarray; use q2key.encode"):
        qd.encode(x)
    with pytest.raises(q2key.DTypeError, match="real numeric"):
        qd.encode(da.from_array(x > 0, chunks=50))
    th = q2key.Thresholds.per_dim(np.tile([[-0.1], [0.0], [0.1]], 9))
    with pytest.raises(q2key.ShapeError, match="thresholds are for dimension 9, the vectors have 8"):
        qd.encode(da.from_array(x, chunks=50), th)
    with pytest.raises(q2key.Q2KeyError, match="threads"):
        qd.encode(da.from_array(x, chunks=50), threads=0)
    with pytest.raises(q2key.DTypeError, match="threshold"):
        qd.encode(da.from_array(x, chunks=50), "0.1")  # type: ignore[arg-type]
    with pytest.raises(q2key.Q2KeyError, match="sample_rows"):
        qd.calibrate(da.from_array(x, chunks=50), sample_rows=0)
    with pytest.raises(q2key.ShapeError, match="at least one row"):
        qd.calibrate(da.zeros((0, 8), chunks=2))
    unknown = da.from_array(x, chunks=50)
    unknown = unknown[unknown[:, 0] > 0]
    with pytest.raises(q2key.ShapeError, match="compute_chunk_sizes"):
        qd.calibrate(unknown)
    # NaN rows fail on the worker with q2key's error naming the row of the chunk.
    bad = x.copy()
    bad[57, 3] = np.nan
    with pytest.raises(q2key.NonFiniteError, match="row 7"):
        qd.encode(da.from_array(bad, chunks=50)).codes.compute(scheduler="sync")


def test_unknown_row_chunks_still_encode(client: Any) -> None:
    x = _data(600, 12, seed=4)
    d = da.from_array(x, chunks=(100, 12))
    kept = d[d[:, 0] > 0]  # unknown (NaN) row chunk sizes
    enc = qd.encode(kept)
    _assert_equal(enc, x[x[:, 0] > 0])


def test_each_chunk_encoded_once(monkeypatch: pytest.MonkeyPatch) -> None:
    x = _data(1_000, 16)
    made: list[np.ndarray] = []

    def make(block_info: Any = None) -> np.ndarray:
        (lo, hi), _ = block_info[None]["array-location"]
        made.append(x[lo:hi])
        return made[-1]

    calls: list[int] = []
    original = qd._encode_block

    def counting(block: Any, *args: Any, **kwargs: Any) -> Any:
        # The chunk object itself reaches the encoder, not a concatenated copy.
        assert isinstance(block, list) and len(block) == 1 and any(block[0] is m for m in made)
        calls.append(block[0].shape[0])
        return original(block, *args, **kwargs)

    monkeypatch.setattr(qd, "_encode_block", counting)
    d = da.map_blocks(make, chunks=((250,) * 4, (16,)), dtype=np.float32, meta=np.empty((0, 0), np.float32))
    enc = qd.encode(d)
    got = dask.compute(*enc, scheduler="sync")
    assert sorted(calls) == [250] * 4
    np.testing.assert_array_equal(got[0], q2key.encode(x).codes)


def test_docstring_example(client: Any) -> None:
    result = doctest.testmod(qd, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_missing_dask_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dask.array", None)
    with pytest.raises(ImportError, match=r"pip install 'q2key\[dask\]'"):
        qd.encode(np.zeros((2, 3)))
