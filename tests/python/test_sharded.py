"""q2key.dask.build_index / ShardedIndex on a two-process LocalCluster: equal to one Index, faults, manifest.

Every search is compared with a single in-memory ``q2key.Index`` holding the same rows under the
same ids: ids AND distances must be equal, whatever the shard count, filter, scoring or ties.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import q2key
from hypothesis import given, settings
from hypothesis import strategies as st
from q2key import _shard_files

da: Any = pytest.importorskip("dask.array")
distributed: Any = pytest.importorskip("distributed")
import q2key.dask as qd  # noqa: E402

DATA = Path(__file__).parents[2] / "data" / "wordnet-minilm-dev.npz"
DIM = 40


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    with distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None, memory_limit="1GiB"
    ) as c:
        yield c


@pytest.fixture(scope="module")
def client(cluster: Any) -> Iterator[Any]:
    with distributed.Client(cluster) as c:
        yield c


@pytest.fixture(autouse=True)
def two_workers(client: Any) -> None:
    """A test that killed a worker leaves its restart to the nanny: wait for it."""
    client.wait_for_workers(2, timeout=60)


def _data(rows: int = 1_200, n: int = DIM, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(rows, n)) + np.linspace(-0.3, 0.3, n)).astype(np.float32)


def _reference(x: np.ndarray, th: q2key.Thresholds, ids: Any = None) -> q2key.Index:
    ref = q2key.Index(x.shape[1], threshold=th)
    ref.add(x, ids=ids)
    return ref


def _assert_same(got: q2key.SearchResult, want: q2key.SearchResult) -> None:
    assert got.ids.dtype == want.ids.dtype and got.distances.dtype == want.distances.dtype
    np.testing.assert_array_equal(got.ids, want.ids)
    np.testing.assert_array_equal(got.distances, want.distances)


def _build(tmp_path: Path, x: np.ndarray, chunk: int, shards: int | None, **kw: Any) -> tuple[str, Any]:
    directory = str(tmp_path / "idx")
    manifest = qd.build_index(da.from_array(x, chunks=(chunk, x.shape[1])), directory, shards=shards, **kw)
    return directory, manifest


@pytest.mark.parametrize("shards", [1, 2, 3, 5])
def test_equal_to_one_index_for_every_scoring(client: Any, tmp_path: Path, shards: int) -> None:
    x = _data()
    directory, manifest = _build(tmp_path, x, 200, shards)
    assert len(manifest.shards) == shards and manifest.rows == len(x)
    ref = _reference(x, manifest.thresholds)
    q = _data(30, seed=1)
    codes = q2key.encode(q, threshold=manifest.thresholds).codes
    with qd.ShardedIndex(directory, client) as index:
        for scoring in ("auto", "asymmetric", "lee"):
            _assert_same(index.search(q, 10, scoring=scoring), ref.search(q, 10, scoring=scoring))
        _assert_same(index.search(codes, 7), ref.search(codes, 7))
        _assert_same(index.search(q, 5, complement=True), ref.search(q, 5, complement=True))
        # k beyond a shard's rows and beyond all rows: min(k, rows) columns, never padding.
        _assert_same(index.search(q[:3], 500), ref.search(q[:3], 500))
        _assert_same(index.search(q[:3], 5_000), ref.search(q[:3], 5_000))
        _assert_same(index.search(q, 10, rescore=x, oversample=3), ref.search(q, 10, rescore=x, oversample=3))


def test_equal_on_the_bundled_embeddings(client: Any, tmp_path: Path) -> None:
    with np.load(DATA) as z:
        x, q = z["database"][:3_000], z["queries"][:40]
    directory, manifest = _build(tmp_path, x, 500, 4, sample_rows=2_000)
    assert manifest.thresholds.reconstruction is not None  # fitted once on a sample (lloyd_max)
    ref = _reference(x, manifest.thresholds)
    with qd.ShardedIndex(directory, client) as index:
        _assert_same(index.search(q, 10), ref.search(q, 10))
        _assert_same(index.search(q, 10, scoring="lee"), ref.search(q, 10, scoring="lee"))
        rescore = x.astype(np.float32)
        _assert_same(index.search(q, 10, rescore=rescore), ref.search(q, 10, rescore=rescore))


def test_filters_are_routed_to_the_shards_holding_them(client: Any, tmp_path: Path) -> None:
    x = _data()
    directory, manifest = _build(tmp_path, x, 300, 4)
    ref = _reference(x, manifest.thresholds)
    q = _data(20, seed=2)
    rng = np.random.default_rng(3)
    mask = rng.random(len(x) + 50) < 0.3
    filters: list[Any] = [
        rng.choice(len(x), 40, replace=False),  # ids in every shard
        np.arange(310, 330),  # one shard only
        [5, 5, 9, 10_000],  # repeated and unknown ids
        np.array([], dtype=np.uint64),  # nothing allowed
        mask,
        mask[:100],  # a mask shorter than the ids: the rest is not allowed
        np.zeros(len(x), dtype=bool),
    ]
    with qd.ShardedIndex(directory, client) as index:
        for f in filters:
            for scoring in ("asymmetric", "lee"):
                _assert_same(
                    index.search(q, 10, filter=f, scoring=scoring), ref.search(q, 10, filter=f, scoring=scoring)
                )


def test_ties_across_shards_go_to_the_lower_id(client: Any, tmp_path: Path) -> None:
    # Every vector stored three times, in three different shards, under ids that do not increase
    # with the shards: a single index breaks ties by the lower id, so must the merge.
    base = _data(100, seed=4)
    x = np.concatenate([base, base, base])
    ids = np.random.default_rng(5).permutation(len(x)).astype(np.uint64) * 7 + 3
    directory, manifest = _build(tmp_path, x, 100, 3, ids=ids)
    ref = _reference(x, manifest.thresholds, ids=ids)
    q = base[:20]
    with qd.ShardedIndex(directory, client) as index:
        for scoring in ("asymmetric", "lee"):
            got = index.search(q, 9, scoring=scoring)
            _assert_same(got, ref.search(q, 9, scoring=scoring))
            assert (got.distances[:, 0] == got.distances[:, 2]).all()  # the tie really is there


def test_ids_given_as_a_dask_array_and_duplicates_across_shards(client: Any, tmp_path: Path) -> None:
    x = _data(600)
    ids = np.arange(600, dtype=np.uint64)[::-1] * 2
    directory, manifest = _build(tmp_path, x, 150, 2, ids=da.from_array(ids, chunks=100))
    _assert_same(
        qd.ShardedIndex(directory, client).search(x[:5], 4), _reference(x, manifest.thresholds, ids).search(x[:5], 4)
    )
    dup = ids.copy()
    dup[500] = dup[10]  # row 10 is in shard 0, row 500 in shard 1
    with pytest.raises(q2key.Q2KeyError, match=r"^ids: id \d+ is in two shards") as e:
        _build(tmp_path / "dup", x, 150, 2, ids=dup)
    assert e.value.arg == "ids"
    assert not os.path.exists(tmp_path / "dup" / "idx" / "manifest.json")
    assert not [f for f in os.listdir(tmp_path / "dup" / "idx") if f.startswith("shard-")]


def test_a_shard_is_an_ordinary_index_file_and_the_manifest_says_what_it_holds(client: Any, tmp_path: Path) -> None:
    x = _data(500)
    directory, manifest = _build(tmp_path, x, 100, 2)
    doc = json.loads(Path(directory, "manifest.json").read_text())
    assert doc["format"] == "q2key-sharded-index" and doc["version"] == 1 and doc["kind"] == "flat"
    assert doc["dim"] == DIM and q2key.Thresholds.from_json(json.dumps(doc["thresholds"])) == manifest.thresholds
    assert [(s["rows"], s["min_id"], s["max_id"]) for s in doc["shards"]] == [(300, 0, 299), (200, 300, 499)]
    one = q2key.Index.load(os.path.join(directory, doc["shards"][1]["file"]), mmap=True)
    assert len(one) == 200 and one.thresholds == manifest.thresholds
    np.testing.assert_array_equal(one.views()[2], np.arange(300, 500))


def test_empty_shards_and_an_empty_index(client: Any, tmp_path: Path) -> None:
    x = _data(300)
    d = da.from_array(x, chunks=((100, 0, 200), (DIM,)))
    directory = str(tmp_path / "idx")
    manifest = qd.build_index(d, directory, threshold=None)  # one shard per block, the Gaussian thresholds
    assert [s.rows for s in manifest.shards] == [100, 0, 200] and manifest.shards[1].min_id is None
    ref = _reference(x, manifest.thresholds)
    with qd.ShardedIndex(directory, client) as index:
        _assert_same(index.search(x[:4], 3), ref.search(x[:4], 3))
        index.remove(np.arange(300))
        assert len(index) == 0
        got = index.search(x[:4], 3)
        assert got.ids.shape == (4, 0) and got.distances.dtype == np.float32


def test_remove_rewrites_the_shards_holding_the_ids(client: Any, tmp_path: Path) -> None:
    x = _data()
    directory, manifest = _build(tmp_path, x, 300, 4)
    ref = _reference(x, manifest.thresholds)
    gone = np.array([0, 5, 650, 1199, 99_999])
    q = x[[0, 5, 650, 7]]
    with qd.ShardedIndex(directory, client) as index:
        before = index.search(q, 5)
        assert index.remove(gone) == 4
        assert ref.remove(gone) == 4
        _assert_same(index.search(q, 5), ref.search(q, 5))
        assert not np.array_equal(before.ids, index.search(q, 5).ids)
    m = _shard_files.read_manifest(directory)
    assert [s.file for s in m.shards] == [
        "shard-00000.1.q2",
        "shard-00001.0.q2",
        "shard-00002.1.q2",
        "shard-00003.1.q2",
    ]
    assert [s.rows for s in m.shards] == [298, 300, 299, 299] and m.shards[3].max_id == 1198
    assert sorted(f for f in os.listdir(directory) if f.startswith("shard-")) == sorted(s.file for s in m.shards)
    with qd.ShardedIndex(directory, client) as reopened:  # persisted
        _assert_same(reopened.search(q, 5), ref.search(q, 5))


def test_a_removal_killed_before_the_manifest_leaves_the_old_index(
    client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    x = _data(400)
    directory, manifest = _build(tmp_path, x, 200, 2)
    index = qd.ShardedIndex(directory, client)

    def killed(*_: Any) -> None:
        raise KeyboardInterrupt  # as a kill between the shard files and the manifest

    monkeypatch.setattr(q2key._sharded, "write_manifest", killed)
    with pytest.raises(KeyboardInterrupt):
        index.remove([3])
    monkeypatch.undo()
    assert _shard_files.read_manifest(directory) == manifest
    assert sorted(f for f in os.listdir(directory) if f.startswith("shard-")) == [
        "shard-00000.0.q2",
        "shard-00001.0.q2",
    ]
    _assert_same(
        qd.ShardedIndex(directory, client).search(x[:3], 3), _reference(x, manifest.thresholds).search(x[:3], 3)
    )


def test_a_manifest_interrupted_mid_write_leaves_the_old_one(client: Any, tmp_path: Path) -> None:
    x = _data(400)
    directory, manifest = _build(tmp_path, x, 200, 2)
    good = Path(directory, "manifest.json").read_text()
    # kill -9 during write_manifest: a truncated temp file, and a shard file the new manifest would have named.
    Path(directory, "manifest.json.tmp-4242-deadbeef").write_text(good[: len(good) // 2])
    Path(directory, "manifest.json.tmp-4243-cafe0000").write_text("")
    q2key.Index(DIM).save(os.path.join(directory, "shard-00002.0.q2"))
    index = qd.ShardedIndex(directory, client)
    assert index.manifest == manifest
    assert sorted(os.listdir(directory)) == [
        ".q2key-lock",
        "manifest.json",
        "shard-00000.0.q2",
        "shard-00001.0.q2",
        "template.q2",
    ]
    _assert_same(index.search(x[:3], 3), _reference(x, manifest.thresholds).search(x[:3], 3))
    # A torn manifest itself (never produced by q2key: it is renamed into place) is a FormatError.
    Path(directory, "manifest.json").write_text(good[:30])
    with pytest.raises(q2key.FormatError, match=r"^directory: .* not a valid manifest"):
        qd.ShardedIndex(directory, client)


def test_add_appends_shards_and_rejects_ids_already_present(client: Any, tmp_path: Path) -> None:
    x, y = _data(400), _data(300, seed=9)
    directory, manifest = _build(tmp_path, x, 200, 2)
    q = _data(10, seed=10)
    with qd.ShardedIndex(directory, client) as index:
        new = index.add(da.from_array(y, chunks=(100, DIM)), shards=2)
        assert [(s.rows, s.min_id, s.max_id) for s in new] == [(200, 400, 599), (100, 600, 699)]
        ref = _reference(np.concatenate([x, y]), manifest.thresholds)
        _assert_same(index.search(q, 10), ref.search(q, 10))
        with pytest.raises(q2key.Q2KeyError, match=r"^ids: id 650 is in two shards") as e:
            index.add(y[:50], ids=np.arange(650, 700))
        assert e.value.arg == "ids" and len(index) == 700
        assert len(_shard_files.read_manifest(directory).shards) == 4
        assert len([f for f in os.listdir(directory) if f.startswith("shard-")]) == 4
        index.add(y[:50], ids=np.arange(10_000, 10_050))
        ref.add(y[:50], ids=np.arange(10_000, 10_050))
        _assert_same(index.search(q, 10), ref.search(q, 10))
        assert _shard_files.read_manifest(directory).next_id == 10_050


def _slow_shard_searches(seconds: float, started: str | None = None, release: str | None = None) -> None:
    """Run on a worker: its shard searches sleep first (tasks name the function by module attribute).

    ``started``: a file each search creates as it starts sleeping — the test kills the worker only
    once a search is surely running there, not merely assigned to it. ``release``: a file that ends
    the sleep early, so a test leaves no busy worker thread behind for the next one.
    """
    import q2key._sharded as sharded

    search = getattr(sharded, "_fast_search_shard", sharded._search_shard)
    sharded._fast_search_shard = search  # type: ignore[attr-defined]

    def slow(*a: Any) -> Any:
        if started is not None:
            Path(started).touch()
        end = time.monotonic() + seconds
        while time.monotonic() < end and not (release is not None and Path(release).exists()):
            time.sleep(0.01)
        return search(*a)

    sharded._search_shard = slow  # type: ignore[assignment]


def _fast_shard_searches() -> None:
    import q2key._sharded as sharded

    sharded._search_shard = getattr(sharded, "_fast_search_shard", sharded._search_shard)  # type: ignore[assignment]


def _first_row_only_searches() -> None:
    """Run on every worker: a shard answers only its first query (a result of the wrong shape)."""
    import q2key._sharded as sharded

    search = getattr(sharded, "_fast_search_shard", sharded._search_shard)
    sharded._fast_search_shard = search  # type: ignore[attr-defined]
    sharded._search_shard = lambda *a: q2key.SearchResult(*(part[:1] for part in search(*a)))  # type: ignore[assignment]


def _queries_only_on(client: Any, worker: str, deadline: float) -> bool:
    """Waits until the batch's scattered queries (an ``ndarray-…`` key) are held by ``worker`` alone."""
    while time.monotonic() < deadline:
        holders = [set(w) for key, w in client.who_has().items() if str(key).startswith("ndarray-")]
        if holders and all(h == {worker} for h in holders):
            return True
        time.sleep(0.05)
    return False


def test_a_worker_killed_mid_batch(client: Any, tmp_path: Path) -> None:
    x = _data(2_000)
    directory, manifest = _build(tmp_path, x, 250, 4)
    ref = _reference(x, manifest.thresholds)
    q = _data(400, seed=11)
    started = tmp_path / "started"
    with qd.ShardedIndex(directory, client) as index:
        placement = index.placement()
        assert sorted(len(files) for files in placement.values()) == [2, 2], placement
        victim = sorted(placement)[0]
        pid = client.run(os.getpid, workers=[victim])[victim]
        client.run(_slow_shard_searches, 60, str(started), workers=[victim])
        results: list[Any] = []

        def search() -> None:
            try:
                results.append(index.search(q, 10, scoring="lee", timeout=50))
            except BaseException as e:
                results.append(e)

        searching = threading.Thread(target=search)
        start = time.monotonic()
        searching.start()
        while not started.exists():  # a search is running on the victim (it sleeps 60 s): kill it now
            assert time.monotonic() - start < 30 and searching.is_alive(), results
            time.sleep(0.01)
        # Once the other worker's searches are done the scheduler's memory manager drops its copy
        # of the scattered queries: the kill then takes their last copy, and the victim's searches
        # are cancelled, not rescheduled — the batch must send them again (CI saw it fail so).
        assert _queries_only_on(client, victim, deadline=time.monotonic() + 20), client.who_has()
        os.kill(pid, signal.SIGKILL)  # kill -9 of the worker process (its nanny starts a new one)
        searching.join()
        assert time.monotonic() - start < 50  # answered by the shards re-opened elsewhere, not the sleeper
        if isinstance(results[0], BaseException):
            raise results[0]
        _assert_same(results[0], ref.search(q, 10, scoring="lee"))
        _assert_same(index.search(q[:5], 3), ref.search(q[:5], 3))


def test_a_shard_answer_of_the_wrong_shape_fails_the_batch(client: Any, tmp_path: Path) -> None:
    # Never a wrong or partial answer: a shard result for other queries than the batch's raises,
    # it is not merged (before, one row per shard merged into a (1, k) answer for 8 queries).
    x = _data(400)
    directory, _ = _build(tmp_path, x, 200, 2)
    with qd.ShardedIndex(directory, client) as index:
        client.run(_first_row_only_searches)
        try:
            with pytest.raises(OSError, match=r"^q2key: shard shard-0000\d.0.q2 answered SearchResult of another"):
                index.search(x[:8], 5)
        finally:
            client.run(_fast_shard_searches)
        _assert_same(index.search(x[:8], 5), _reference(x, index.thresholds).search(x[:8], 5))


def test_a_timeout_raises_rather_than_answering_in_part(client: Any, tmp_path: Path) -> None:
    x = _data(400)
    directory, _ = _build(tmp_path, x, 200, 2)
    index = qd.ShardedIndex(directory, client)
    worker = sorted(index.placement())[0]
    index.search(x[:3], 10)  # a worker's first search (imports, first transfer) is not what is timed
    release = tmp_path / "release"
    client.run(_slow_shard_searches, 30, None, str(release), workers=[worker])
    try:
        start = time.monotonic()
        with pytest.raises(
            TimeoutError, match=r"^q2key: the search of 1 of 2 shards \(shard-0000\d.0.q2\) .*timeout=2 s"
        ):
            index.search(x[:3], 10, timeout=2)
        assert time.monotonic() - start < 5  # not the 30 s the slow shard sleeps
    finally:
        release.touch()
        client.run(_fast_shard_searches)
    with pytest.raises(q2key.Q2KeyError, match=r"^timeout: "):
        index.search(x[:2], 3, timeout=0)


def test_a_worker_that_joins_later_takes_shards(client: Any, cluster: Any, tmp_path: Path) -> None:
    x = _data(800)
    directory, manifest = _build(tmp_path, x, 200, 4)
    index = qd.ShardedIndex(directory, client)
    before = index.placement()
    cluster.scale(3)
    try:
        client.wait_for_workers(3, timeout=60)
        after = index.rebalance()
        assert len(after) == 3
        assert sorted(f for files in after.values() for f in files) == sorted(s.file for s in manifest.shards)
        assert {len(v) for v in after.values()} <= {1, 2} and len(before) == 2
        _assert_same(index.search(x[:5], 5), _reference(x, manifest.thresholds).search(x[:5], 5))
    finally:
        index.close()
        cluster.scale(2)
        deadline = time.monotonic() + 60
        while len(client.scheduler_info(n_workers=-1)["workers"]) > 2 and time.monotonic() < deadline:
            time.sleep(0.1)


def test_bad_arguments_raise_as_index_does(client: Any, tmp_path: Path) -> None:
    x = _data(200)
    directory, _ = _build(tmp_path, x, 100, 2)
    index = qd.ShardedIndex(directory, client)
    with pytest.raises(q2key.Q2KeyError, match=r"^k: must be at least 1"):
        index.search(x[:2], 0)
    with pytest.raises(q2key.ShapeError, match=r"^queries: "):
        index.search(x[:2, :5], 3)
    with pytest.raises(q2key.Q2KeyError, match=r"^scoring: "):
        index.search(x[:2], 3, scoring="cosine")  # type: ignore[arg-type]
    with pytest.raises(q2key.Q2KeyError, match=r"^directory: .* already holds a sharded index"):
        qd.build_index(da.from_array(x), directory)
    for bad, cls, arg in [
        ({"shards": 0}, q2key.Q2KeyError, "shards"),
        ({"shards": 1.5}, q2key.DTypeError, "shards"),
        ({"kind": "hnsw"}, q2key.Q2KeyError, "kind"),
        ({"kind_options": {"lists": 4}}, q2key.Q2KeyError, "kind_options"),
        ({"weights": (1.0, -1.0, 1.0)}, q2key.Q2KeyError, "weights"),
        ({"ids": np.arange(5)}, q2key.ShapeError, "ids"),
        ({"ids": -np.arange(200)}, q2key.Q2KeyError, "ids"),
    ]:
        with pytest.raises(cls) as e:
            qd.build_index(da.from_array(x, chunks=100), str(tmp_path / "bad"), threshold=None, **bad)
        assert e.value.arg == arg, bad
        assert not os.path.exists(tmp_path / "bad" / "manifest.json")
    with pytest.raises(q2key.DTypeError, match=r"^vectors: expected a dask.array.Array"):
        qd.build_index([[1.0, 2.0]], str(tmp_path / "bad"))
    for timeout, cls in [(0, q2key.Q2KeyError), (-1.0, q2key.Q2KeyError), (float("nan"), q2key.Q2KeyError),
                         ("1", q2key.DTypeError), (True, q2key.DTypeError)]:  # fmt: skip
        with pytest.raises(cls, match=r"^timeout: "):
            index.search(x[:2], 3, timeout=timeout)  # type: ignore[arg-type]
    with pytest.raises(q2key.FormatError, match=r"^directory: no manifest.json"):
        qd.ShardedIndex(tmp_path, client)
    with pytest.raises(q2key.DTypeError, match=r"^client: expected a distributed.Client"):
        qd.ShardedIndex(directory, None)


def test_ivf_shards_equal_one_ivf_index_with_the_same_centroids(client: Any, tmp_path: Path) -> None:
    x = _data(1_200)
    directory, manifest = _build(tmp_path, x, 300, 3, kind="ivf", kind_options={"lists": 8, "seed": 1})
    assert manifest.kind == "ivf" and len(manifest.shards) == 3
    ref = q2key.IVFIndex.load(os.path.join(directory, "template.q2"))  # trained once on the build sample
    assert ref.lists == 8 and len(ref) == 0
    ref.add(x)
    shard = q2key.IVFIndex.load(os.path.join(directory, manifest.shards[1].file), mmap=True)
    np.testing.assert_array_equal(shard.centroids, ref.centroids)
    q = _data(25, seed=12)
    mask = np.random.default_rng(13).random(len(x)) < 0.4
    with qd.ShardedIndex(directory, client) as index:
        for f in (None, np.arange(100, 700, 3), mask):
            for scoring in ("asymmetric", "lee"):
                _assert_same(
                    index.search(q, 10, nprobe=8, filter=f, scoring=scoring),
                    ref.search(q, 10, nprobe=8, filter=f, scoring=scoring),
                )
        # The shards share the centroids, so a query probes the same lists in each: equal at any nprobe.
        _assert_same(index.search(q, 10, nprobe=2), ref.search(q, 10, nprobe=2))
        gone = np.array([0, 5, 650, 1199, 99_999])
        assert index.remove(gone) == 4 and ref.remove(gone) == 4
        _assert_same(index.search(q, 10, nprobe=8), ref.search(q, 10, nprobe=8))
        _assert_same(index.search(q, 10, nprobe=8, filter=mask), ref.search(q, 10, nprobe=8, filter=mask))
    for bad, arg in [({"kind_options": {"bogus": 1}}, "kind_options"), ({"weights": (1.0, 2.0, 1.0)}, "weights")]:
        with pytest.raises(q2key.Q2KeyError) as e:
            qd.build_index(da.from_array(x, chunks=300), str(tmp_path / "bad"), kind="ivf", **bad)
        assert e.value.arg == arg
        assert not os.path.exists(tmp_path / "bad" / "manifest.json")
    flat, _ = _build(tmp_path / "flat", x[:200], 100, 2)
    with pytest.raises(q2key.Q2KeyError, match=r"^nprobe: flat shards"):
        qd.ShardedIndex(flat, client).search(q, 3, nprobe=4)


@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_rotated_thresholds_travel_to_the_shards(client: Any, tmp_path: Path, kind: str) -> None:
    # The rotation is part of the thresholds: each worker must encode and search with it, so every
    # shard answers like one index of the same rotated thresholds (a shard that lost the rotation
    # would encode the raw vectors and disagree).
    x = _data(900)
    th = q2key.calibrate(x, method="lloyd_max", rotation="random", seed=3)
    assert th.rotation is not None
    options = {"kind": kind, "kind_options": {"lists": 6, "seed": 2}} if kind == "ivf" else {}
    directory, manifest = _build(tmp_path, x, 300, 3, threshold=th, **options)
    assert manifest.thresholds.rotation is not None
    np.testing.assert_array_equal(manifest.thresholds.rotation, th.rotation)
    if kind == "ivf":
        ref: Any = q2key.IVFIndex.load(os.path.join(directory, "template.q2"))
        ref.add(x)
        search_options: dict[str, Any] = {"nprobe": 6}
    else:
        ref = _reference(x, th)
        search_options = {}
    shard = (q2key.IVFIndex if kind == "ivf" else q2key.Index).load(os.path.join(directory, manifest.shards[0].file))
    assert shard.thresholds.rotation is not None
    q = _data(20, seed=4)
    with qd.ShardedIndex(directory, client) as index:
        for scoring in ("asymmetric", "lee"):
            _assert_same(
                index.search(q, 10, scoring=scoring, **search_options),
                ref.search(q, 10, scoring=scoring, **search_options),
            )


# -- the merge, without a cluster ---------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 50)), max_size=12), min_size=1, max_size=5),
    st.integers(1, 20),
)
def test_merge_equals_sorting_everything(shards: list[list[tuple[int, int]]], k: int) -> None:
    # Ids are unique across shards (the manifest guarantees it); distances collide a lot.
    seen: set[int] = set()
    unique: list[list[tuple[int, int]]] = []
    for rows in shards:
        unique.append([])
        for d, i in rows:
            if i not in seen:
                seen.add(i)
                unique[-1].append((d, i))
    parts = [
        q2key.SearchResult(
            np.array([[d for d, _ in sorted(rows)[:k]]], dtype=np.uint32).reshape(1, -1),
            np.array([[i for _, i in sorted(rows)[:k]]], dtype=np.uint64).reshape(1, -1),
        )
        for rows in unique
    ]
    merged = _shard_files.merge(parts, k)
    want = sorted(r for rows in unique for r in rows)[:k]
    assert merged.distances[0].tolist() == [d for d, _ in want]
    assert merged.ids[0].tolist() == [i for _, i in want]


def test_merge_refuses_results_of_other_shapes() -> None:
    # numpy raised bare ValueErrors or IndexErrors (AxisError: all 1-D) and merged mismatched rows silently.
    good = q2key.SearchResult(np.zeros((3, 2), np.uint32), np.arange(6, dtype=np.uint64).reshape(3, 2))
    for bad in [
        q2key.SearchResult(np.zeros(2, np.uint32), np.arange(2, dtype=np.uint64)),
        q2key.SearchResult(np.zeros((1, 2), np.uint32), np.arange(2, dtype=np.uint64).reshape(1, 2)),
        q2key.SearchResult(np.zeros((3, 1), np.uint32), np.arange(6, dtype=np.uint64).reshape(3, 2)),
    ]:
        for parts in ([good, bad], [bad, good]):
            with pytest.raises(q2key.ShapeError, match=r"^results: result \d has ids of shape") as e:
                _shard_files.merge(parts, 2)
            assert e.value.arg == "results"
    with pytest.raises(q2key.Q2KeyError, match=r"^results: expected the results of at least one shard"):
        _shard_files.merge([], 2)


def test_unaligned_ids_and_filters_are_copied_not_refused() -> None:
    # Arrays unpickled on a Dask worker (a shard's filter part) may start at an odd byte:
    # Index.search(filter=) and remove() refused them with "expected a C-contiguous, aligned array".
    index = q2key.Index(8)
    index.add(_data(20, 8))
    unaligned = np.zeros(8 * 5 + 1, dtype=np.uint8)[1:].view(np.uint64)
    unaligned[:] = [1, 2, 3, 4, 5]
    assert not unaligned.flags.aligned
    want = index.search(_data(2, 8, seed=1), 3, filter=unaligned.copy())
    _assert_same(index.search(_data(2, 8, seed=1), 3, filter=unaligned), want)
    assert index.remove(unaligned) == 5


def test_built_from_a_dask_dataframe_column_with_an_id_column(client: Any, tmp_path: Path) -> None:
    dd: Any = pytest.importorskip("dask.dataframe")
    pd: Any = pytest.importorskip("pandas")
    x = _data(500)
    ids = np.arange(500, dtype=np.uint64)[::-1] * 3 + 1
    frame = pd.DataFrame({"id": ids.astype(np.int64), "embedding": list(x)})
    dask: Any = pytest.importorskip("dask")
    with dask.config.set({"dataframe.convert-string": False}):  # else the arrays become their repr strings
        df = dd.from_pandas(frame, npartitions=4)
    with pytest.raises(q2key.DTypeError, match=r"^vectors: expected one vector .* got strings"):
        qd.build_index(dd.from_pandas(frame, npartitions=4)["embedding"], str(tmp_path / "strings"))
    directory = str(tmp_path / "idx")
    manifest = qd.build_index(df["embedding"], directory, ids=df["id"], shards=2)
    assert manifest.rows == 500 and len(manifest.shards) == 2
    with qd.ShardedIndex(directory, client) as index:
        _assert_same(index.search(x[:6], 5), _reference(x, manifest.thresholds, ids).search(x[:6], 5))
