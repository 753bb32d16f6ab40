"""Thresholds, Encoded and Index pickle (the way Dask, Ray and Spark ship them), also to a worker process."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import q2key


def _data(rows: int = 500, n: int = 48, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(rows, n)) + np.linspace(-0.4, 0.4, n)


def _thresholds() -> list[q2key.Thresholds]:
    x = _data()
    return [
        q2key.Thresholds.gaussian(48),
        q2key.Thresholds.global_(0.07),
        q2key.Thresholds.global_(0.07, dim=48),
        q2key.Thresholds.per_dim(np.tile([[-0.2], [0.01], [0.2]], 48)),
        q2key.calibrate(x, method="per_dim"),  # carries a report
        q2key.calibrate(x, method="fidelity", seed=3),
    ]


def _index() -> q2key.Index:
    x = _data()
    index = q2key.Index(48, threshold=q2key.calibrate(x, method="per_dim"))
    index.add(x, ids=np.arange(1_000, 1_500, dtype=np.uint64))
    index.remove([1_000, 1_017])
    return index


def _assert_same_encoded(a: q2key.Encoded, b: q2key.Encoded) -> None:
    assert a.dim == b.dim and len(a) == len(b)
    for name in ("codes", "keys", "transitions"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(x, y)


def _assert_same_index(a: q2key.Index, b: q2key.Index) -> None:
    assert (a.dim, len(a), a.thresholds, a.weights) == (b.dim, len(b), b.thresholds, b.weights)
    for x, y in zip(a.arrays(), b.arrays()):
        np.testing.assert_array_equal(x, y)
    q = _data(5, seed=9)
    for x, y in zip(a.search(q, k=7), b.search(q, k=7)):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_thresholds_round_trip(protocol: int) -> None:
    for th in _thresholds():
        back = pickle.loads(pickle.dumps(th, protocol=protocol))
        assert back == th and back.kind == th.kind and back.dim == th.dim
        assert (back.report is None) == (th.report is None)
        if th.report is not None:
            assert back.report is not None
            assert back.report.method == th.report.method and back.report.recall == th.report.recall
        assert copy.deepcopy(th) == th
        x = _data(20)
        if th.dim in (None, 48):
            np.testing.assert_array_equal(q2key.encode(x, threshold=back).codes, q2key.encode(x, threshold=th).codes)


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_encoded_round_trip(protocol: int) -> None:
    enc = q2key.encode(_data(), threshold=0.05)
    back = pickle.loads(pickle.dumps(enc, protocol=protocol))
    assert isinstance(back, q2key.Encoded)
    _assert_same_encoded(back, enc)
    empty = q2key.encode(np.zeros((0, 7)))
    _assert_same_encoded(pickle.loads(pickle.dumps(empty, protocol=protocol)), empty)
    with pytest.raises(AttributeError):
        back.dim = 3  # type: ignore[misc]  # still frozen


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_index_round_trip(protocol: int, tmp_path: Any) -> None:
    index = _index()
    back = pickle.loads(pickle.dumps(index, protocol=protocol))
    _assert_same_index(back, index)
    back.add(_data(3, seed=4))  # an independent, writable copy
    assert len(back) == len(index) + 3
    weighted = q2key.Index(48, weights=(1.0, 2.0, 3.5))
    weighted.add(_data())
    _assert_same_index(pickle.loads(pickle.dumps(weighted, protocol=protocol)), weighted)
    # A memory-mapped index pickles its contents; the copy is in memory.
    path = tmp_path / "i.q2"
    index.save(path)
    mapped = q2key.Index.load(path, mmap=True)
    copied = pickle.loads(pickle.dumps(mapped, protocol=protocol))
    assert not copied.mapped
    _assert_same_index(copied, index)


# -- through a worker process ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=1, processes=True, threads_per_worker=1, dashboard_address=None, memory_limit="1GiB"
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


def test_round_trip_through_a_worker(client: Any) -> None:
    objects: list[Any] = [*_thresholds(), q2key.encode(_data()), _index()]
    back = client.gather(client.map(lambda x: x, objects, pure=False))
    for original, returned in zip(objects, back):
        assert type(returned) is type(original)
    for th, got in zip(_thresholds(), back):
        assert got == th
    _assert_same_encoded(back[-2], objects[-2])
    _assert_same_index(back[-1], objects[-1])


def test_used_in_a_worker(client: Any) -> None:
    """A worker process encodes with shipped thresholds and searches a shipped index."""
    x = _data()
    th = q2key.calibrate(x, method="fidelity", seed=1)
    index = q2key.Index(48, threshold=th)
    index.add(x)
    queries = _data(10, seed=5)

    def work(th: q2key.Thresholds, index: q2key.Index, queries: np.ndarray) -> tuple[Any, ...]:
        import os

        enc = q2key.encode(queries, threshold=th)
        return os.getpid(), enc, index.search(enc.codes, k=5)

    pid, enc, (dist, ids) = client.submit(work, th, index, queries).result()
    assert pid != __import__("os").getpid()
    _assert_same_encoded(enc, q2key.encode(queries, threshold=th))
    want_dist, want_ids = index.search(queries, k=5, scoring="lee")
    np.testing.assert_array_equal(dist, want_dist)
    np.testing.assert_array_equal(ids, want_ids)
