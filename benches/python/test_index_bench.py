"""q2key.Index benchmarks: search (plain and filtered), persistence, build and memory, against faiss and usearch.

- ``index-real``: the bundled MiniLM embeddings (20 000 × 384 float16 database, REAL_QUERIES
  queries): ``q2key.Index(384).add(database)`` searched with the float queries, against
  ``faiss.IndexBinaryIDMap(IndexBinaryFlat(768))`` and usearch's exact search over the same
  codes (the index's own, ``Index.arrays()``). Same codes → same distances → same recall@10
  against the exact cosine ground truth, up to the order of ties.
- ``index-search``: INDEX_ROWS random 96-byte codes stored under non-sequential user ids (a
  random sample of 0..3·N), INDEX_QUERIES code queries, k = 10, 2 threads for every library.
- ``index-filter-1pct`` / ``-50pct``: the same index, ``filter=`` an id array and a boolean
  mask over ids; faiss with ``SearchParameters(sel=IDSelectorBatch(ids))`` and
  ``IDSelectorBitmap`` (faiss's binary flat index honours selectors through IDMap). ``-small``:
  SMALL_BATCH queries per call (q2key builds the allowed rows' view on every call).
- ``index-persist``: ``save``, ``load``, ``load(mmap=True)`` of the N-row index against a plain
  ``open(path, "rb").read()`` and a plain write + fsync of the same bytes, and faiss's
  ``write_index_binary``/``read_index_binary`` of the IDMap index (no fsync). Files in /tmp, page
  cache warm for everyone.
- ``index-add``: ``add_codes(codes, ids)`` vs faiss ``add_with_ids`` (fresh index each round).
- ``index-memory``: bytes per stored row from /proc/self/status deltas, each case in a fresh
  interpreter (the benchmark time is that subprocess's wall time, not a figure); ``-live``: the
  same with glibc's mmap threshold fixed, so blocks the allocator keeps after freeing are not counted.

Every result is checked: distances equal between libraries (sorted rows), and q2key's rows
(ties to the lower id) against a numpy brute force on a few queries.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import q2key
from bench_common import ROUNDS_FAST, ROUNDS_SLOW, hamming, record
from bench_index import (
    FAISS_BATCH_SLOW_QUERIES,
    ID_SPACE,
    INDEX_DIM,
    INDEX_K,
    INDEX_QUERIES,
    INDEX_ROWS,
    INDEX_THREADS,
    INDEX_WIDTH,
    MEMORY_CASES,
    MEMORY_LIVE_CASES,
    REAL_QUERIES,
    SELECTIVITIES,
    SMALL_BATCH,
    USEARCH_INDEX_ROWS,
    SummaryPlugin,
    filter_group,
    measure_memory,
)

DATA = Path(__file__).resolve().parents[2] / "data" / "wordnet-minilm-dev.npz"
#: Queries checked against a numpy brute force over every stored row.
BRUTE_QUERIES = 3


@pytest.fixture(scope="module", autouse=True)
def _index_summary(request: pytest.FixtureRequest) -> None:
    pm = request.config.pluginmanager
    if not pm.has_plugin("q2key-index-summary"):
        pm.register(SummaryPlugin(), "q2key-index-summary")


# -- helpers ------------------------------------------------------------------------------------------------


def _brute_check(
    dist: np.ndarray, found: np.ndarray, queries: np.ndarray, codes: np.ndarray, ids: np.ndarray, k: int
) -> None:
    """q2key's first BRUTE_QUERIES rows equal a numpy brute force over (codes, ids), ties to the lower id."""
    for q in range(min(BRUTE_QUERIES, queries.shape[0])):
        d = hamming(queries[q], codes)
        order = np.lexsort((ids, d))[:k]
        assert np.array_equal(dist[q].astype(np.int64), d[order]), f"query {q}: distances"
        assert np.array_equal(found[q].astype(np.uint64), ids[order]), f"query {q}: ids (ties to the lower id)"


def _compare(name: str, dist: Any, found: Any, ref: tuple[np.ndarray, np.ndarray]) -> dict[str, Any]:
    """Sorted distance rows equal to q2key's (asserted) and the share of identical ids."""
    ref_d, ref_i = ref
    d = np.sort(np.asarray(dist).astype(np.int64), axis=1)
    equal = bool(np.array_equal(d, ref_d.astype(np.int64)))
    assert equal, f"{name}: sorted distance rows differ from q2key's"
    same = float(np.mean(np.asarray(found).astype(np.uint64) == ref_i.astype(np.uint64)))
    return {"distances_equal": equal, "ids_equal_fraction": same}


def _recall_at_10(found: Any, gt: np.ndarray) -> float:
    f = np.asarray(found).astype(np.int64)[:, :10]
    return float(np.mean([len(np.intersect1d(f[i], gt[i, :10])) / 10 for i in range(f.shape[0])]))


def _faiss() -> Any:
    faiss = pytest.importorskip("faiss")
    faiss.omp_set_num_threads(INDEX_THREADS)
    return faiss


def _usearch_exact() -> Any:
    pytest.importorskip("usearch")
    from usearch.index import search

    return search


# -- real embeddings ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_data() -> dict[str, Any]:
    """The MiniLM database in a q2key.Index (sequential ids = rows), its codes, the queries and the ground truth."""
    z = np.load(DATA)
    database, queries, gt = z["database"], z["queries"][:REAL_QUERIES], z["gt_ids"][:REAL_QUERIES]
    index = q2key.Index(database.shape[1])
    ids = index.add(database)
    assert np.array_equal(ids, np.arange(database.shape[0], dtype=np.uint64))
    codes, _, _ = index.arrays()
    qcodes = q2key.encode(queries, threshold=index.thresholds).codes
    # Lee search, the scoring faiss's and usearch's binary indexes share (float queries would be
    # scored asymmetrically by default): float queries and their codes give the same answer.
    ref = index.search(queries, 10, scoring="lee", threads=INDEX_THREADS)
    by_codes = index.search(qcodes, 10, threads=INDEX_THREADS)
    assert np.array_equal(ref[0], by_codes[0]) and np.array_equal(ref[1], by_codes[1])
    assert np.array_equal(codes, q2key.encode(database).codes)
    return {"index": index, "codes": codes, "queries": queries, "qcodes": qcodes, "gt": gt, "ref": ref}


def test_real_q2key(benchmark: Any, real_data: dict[str, Any]) -> None:
    index, queries = real_data["index"], real_data["queries"]
    benchmark.group = "index-real"
    dist, found = benchmark.pedantic(
        lambda: index.search(queries, 10, scoring="lee", threads=INDEX_THREADS),
        rounds=ROUNDS_FAST,
        iterations=1,
        warmup_rounds=1,
    )
    assert np.array_equal(dist, real_data["ref"][0]) and np.array_equal(found, real_data["ref"][1])
    codes = real_data["codes"]
    _brute_check(dist, found, real_data["qcodes"], codes, np.arange(codes.shape[0], dtype=np.uint64), 10)
    record(
        benchmark,
        "index-real",
        "q2key",
        rows=codes.shape[0],
        queries=queries.shape[0],
        recall_at_10=_recall_at_10(found, real_data["gt"]),
    )


def test_real_faiss(benchmark: Any, real_data: dict[str, Any]) -> None:
    faiss = _faiss()
    codes, qcodes = real_data["codes"], real_data["qcodes"]
    index = faiss.IndexBinaryIDMap(faiss.IndexBinaryFlat(8 * codes.shape[1]))
    index.add_with_ids(codes, np.arange(codes.shape[0], dtype=np.int64))
    benchmark.group = "index-real"
    dist, found = benchmark.pedantic(
        lambda: index.search(qcodes, 10), rounds=ROUNDS_FAST, iterations=1, warmup_rounds=1
    )
    record(
        benchmark,
        "index-real",
        "faiss",
        queries=qcodes.shape[0],
        recall_at_10=_recall_at_10(found, real_data["gt"]),
        **_compare("faiss", dist, found, real_data["ref"]),
    )


def test_real_usearch(benchmark: Any, real_data: dict[str, Any]) -> None:
    search = _usearch_exact()
    codes, qcodes = real_data["codes"], real_data["qcodes"]
    benchmark.group = "index-real"

    def run() -> Any:
        return search(codes, qcodes, 10, "hamming", exact=True, threads=INDEX_THREADS, dtype="b1")

    matches = benchmark.pedantic(run, rounds=ROUNDS_SLOW, iterations=1, warmup_rounds=1)
    record(
        benchmark,
        "index-real",
        "usearch",
        queries=qcodes.shape[0],
        recall_at_10=_recall_at_10(matches.keys, real_data["gt"]),
        **_compare("usearch", matches.distances, matches.keys, real_data["ref"]),
    )


# -- 1 M random codes under user ids ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def index_data() -> dict[str, Any]:
    """Random codes, their (non-sequential) ids, queries, and a q2key.Index holding them."""
    rng = np.random.default_rng(20240502)
    codes = rng.integers(0, 256, size=(INDEX_ROWS, INDEX_WIDTH), dtype=np.uint8)
    ids = rng.permutation(ID_SPACE * INDEX_ROWS)[:INDEX_ROWS].astype(np.uint64)
    queries = rng.integers(0, 256, size=(INDEX_QUERIES, INDEX_WIDTH), dtype=np.uint8)
    index = q2key.Index(INDEX_DIM)
    assert np.array_equal(index.add_codes(codes, ids), ids)
    t0 = time.perf_counter()
    ref = index.search(queries, INDEX_K, threads=INDEX_THREADS)  # the first search builds the id-ordered view
    first = time.perf_counter() - t0
    filters = {}
    for s in SELECTIVITIES:
        allowed = rng.choice(ids, size=max(1, round(s * INDEX_ROWS)), replace=False)
        mask = np.zeros(ID_SPACE * INDEX_ROWS, dtype=bool)
        mask[allowed.astype(np.int64)] = True
        filters[s] = (allowed, mask)
    return {
        "codes": codes,
        "ids": ids,
        "queries": queries,
        "index": index,
        "ref": ref,
        "first_search_s": first,
        "filters": filters,
    }


def test_index_search_q2key(benchmark: Any, index_data: dict[str, Any]) -> None:
    index, queries = index_data["index"], index_data["queries"]
    benchmark.group = "index-search"
    benchmark.extra_info.update(rows=len(index), queries=queries.shape[0], k=INDEX_K, threads=INDEX_THREADS)
    dist, found = benchmark.pedantic(
        lambda: index.search(queries, INDEX_K, threads=INDEX_THREADS),
        rounds=ROUNDS_FAST,
        iterations=1,
        warmup_rounds=1,
    )
    assert dist.shape == found.shape == (queries.shape[0], INDEX_K) and found.dtype == np.uint64
    assert np.array_equal(dist, index_data["ref"][0]) and np.array_equal(found, index_data["ref"][1])
    _brute_check(dist, found, queries, index_data["codes"], index_data["ids"], INDEX_K)
    record(
        benchmark,
        "index-search",
        "q2key",
        queries=queries.shape[0],
        first_search_s=index_data["first_search_s"],
        bytes_per_row=index.stats().bytes_per_row,
    )


def test_index_search_faiss(benchmark: Any, index_data: dict[str, Any]) -> None:
    faiss = _faiss()
    queries = index_data["queries"]
    index = faiss.IndexBinaryIDMap(faiss.IndexBinaryFlat(8 * INDEX_WIDTH))
    index.add_with_ids(index_data["codes"], index_data["ids"].astype(np.int64))
    benchmark.group = "index-search"
    benchmark.extra_info.update(rows=index.ntotal, queries=queries.shape[0], k=INDEX_K, threads=INDEX_THREADS)
    dist, found = benchmark.pedantic(
        lambda: index.search(queries, INDEX_K), rounds=ROUNDS_SLOW, iterations=1, warmup_rounds=1
    )
    record(
        benchmark,
        "index-search",
        "faiss",
        queries=queries.shape[0],
        version=faiss.__version__,
        **_compare("faiss", dist, found, index_data["ref"]),
    )


def test_index_search_usearch(benchmark: Any, index_data: dict[str, Any]) -> None:
    search = _usearch_exact()
    import usearch

    codes, ids, queries = index_data["codes"], index_data["ids"], index_data["queries"]
    benchmark.group = "index-search"
    benchmark.extra_info.update(rows=codes.shape[0], queries=queries.shape[0], k=INDEX_K, threads=INDEX_THREADS)

    def run() -> Any:
        # usearch's exact search returns rows; the caller maps them to ids (included in the time).
        m = search(codes, queries, INDEX_K, "hamming", exact=True, threads=INDEX_THREADS, dtype="b1")
        return m.distances, ids[m.keys.astype(np.int64)]

    # ~50 s at full size: one round, no warm-up.
    dist, found = benchmark.pedantic(run, rounds=1, iterations=1, warmup_rounds=0)
    record(
        benchmark,
        "index-search",
        "usearch",
        queries=queries.shape[0],
        version=usearch.__version__,
        **_compare("usearch", dist, found, index_data["ref"]),
    )


# -- filtered search ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=SELECTIVITIES, ids=lambda s: f"{round(s * 100)}pct")
def filtered(request: pytest.FixtureRequest, index_data: dict[str, Any]) -> dict[str, Any]:
    """One selectivity: allowed ids, the mask, q2key's reference result (checked by brute force)."""
    s = float(request.param)
    allowed, mask = index_data["filters"][s]
    index, queries = index_data["index"], index_data["queries"]
    ref = index.search(queries, INDEX_K, filter=allowed, threads=INDEX_THREADS)
    keep = mask[index_data["ids"].astype(np.int64)]
    _brute_check(ref[0], ref[1], queries, index_data["codes"][keep], index_data["ids"][keep], INDEX_K)
    return {"s": s, "group": filter_group(s), "allowed": allowed, "mask": mask, "ref": ref}


@pytest.mark.parametrize("form", ["ids", "mask", "ids-small"])
def test_filter_q2key(benchmark: Any, index_data: dict[str, Any], filtered: dict[str, Any], form: str) -> None:
    index, queries = index_data["index"], index_data["queries"]
    f = filtered["allowed"] if form.startswith("ids") else filtered["mask"]
    ref = filtered["ref"]
    if form.endswith("small"):
        queries, ref = queries[:SMALL_BATCH], (ref[0][:SMALL_BATCH], ref[1][:SMALL_BATCH])
    benchmark.group = filtered["group"]
    dist, found = benchmark.pedantic(
        lambda: index.search(queries, INDEX_K, filter=f, threads=INDEX_THREADS),
        rounds=ROUNDS_FAST,
        iterations=1,
        warmup_rounds=1,
    )
    assert np.array_equal(dist, ref[0]) and np.array_equal(found, ref[1])
    assert np.isin(found, filtered["allowed"]).all()
    record(
        benchmark,
        filtered["group"],
        f"q2key-{form}",
        queries=queries.shape[0],
        allowed=int(filtered["allowed"].shape[0]),
        selectivity=filtered["s"],
    )


@pytest.mark.parametrize("selector", ["batch", "bitmap", "bitmap-small"])
def test_filter_faiss(benchmark: Any, index_data: dict[str, Any], filtered: dict[str, Any], selector: str) -> None:
    faiss = _faiss()
    queries, ref = index_data["queries"], filtered["ref"]
    index = faiss.IndexBinaryIDMap(faiss.IndexBinaryFlat(8 * INDEX_WIDTH))
    index.add_with_ids(index_data["codes"], index_data["ids"].astype(np.int64))
    if selector == "batch":
        keep_alive: Any = filtered["allowed"].astype(np.int64)
        sel = faiss.IDSelectorBatch(keep_alive)
    else:
        keep_alive = np.packbits(filtered["mask"], bitorder="little")  # faiss: bit (id & 7) of byte id >> 3
        sel = faiss.IDSelectorBitmap(keep_alive)
    params = faiss.SearchParameters(sel=sel)
    slow = selector == "batch" and filtered["s"] > 0.1
    n = FAISS_BATCH_SLOW_QUERIES if slow else SMALL_BATCH if selector.endswith("small") else queries.shape[0]
    queries, ref = queries[:n], (ref[0][:n], ref[1][:n])
    benchmark.group = filtered["group"]
    dist, found = benchmark.pedantic(
        lambda: index.search(queries, INDEX_K, params=params),
        rounds=1 if slow else ROUNDS_SLOW,
        iterations=1,
        warmup_rounds=0 if slow else 1,
    )
    record(
        benchmark,
        filtered["group"],
        f"faiss-{selector}",
        queries=queries.shape[0],
        selectivity=filtered["s"],
        **_compare(f"faiss {selector}", dist, found, ref),
    )


# -- persistence --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved(index_data: dict[str, Any]) -> Any:
    """A directory in /tmp with the index saved as ``index.q2i``; removed afterwards."""
    d = tempfile.mkdtemp(prefix="q2key-index-bench-", dir="/tmp")
    path = os.path.join(d, "index.q2i")
    index_data["index"].save(path)
    yield d, path
    shutil.rmtree(d, ignore_errors=True)


def _check_loaded(loaded: q2key.Index, index_data: dict[str, Any], mapped: bool) -> None:
    assert len(loaded) == INDEX_ROWS and loaded.mapped == mapped
    q = index_data["queries"][:20]
    d, i = loaded.search(q, INDEX_K, threads=INDEX_THREADS)
    assert np.array_equal(d, index_data["ref"][0][:20]) and np.array_equal(i, index_data["ref"][1][:20])


def test_persist_save(benchmark: Any, index_data: dict[str, Any], saved: Any) -> None:
    d, _ = saved
    path = os.path.join(d, "save.q2i")
    benchmark.group = "index-persist"
    benchmark.pedantic(lambda: index_data["index"].save(path), rounds=ROUNDS_SLOW, iterations=1, warmup_rounds=1)
    size = os.path.getsize(path)
    _check_loaded(q2key.Index.load(path), index_data, False)
    os.remove(path)
    record(benchmark, "index-persist", "save", file_bytes=size, file_bytes_per_row=size / INDEX_ROWS)


@pytest.mark.parametrize("mmap", [False, True], ids=["load", "load-mmap"])
def test_persist_load(benchmark: Any, index_data: dict[str, Any], saved: Any, mmap: bool) -> None:
    _, path = saved
    benchmark.group = "index-persist"
    loaded = benchmark.pedantic(
        lambda: q2key.Index.load(path, mmap=mmap), rounds=ROUNDS_SLOW, iterations=1, warmup_rounds=1
    )
    _check_loaded(loaded, index_data, mmap)
    record(benchmark, "index-persist", "load-mmap" if mmap else "load")


def test_persist_read(benchmark: Any, saved: Any) -> None:
    _, path = saved

    def read() -> bytes:
        with open(path, "rb") as f:
            return f.read()

    benchmark.group = "index-persist"
    data = benchmark.pedantic(read, rounds=ROUNDS_SLOW, iterations=1, warmup_rounds=1)
    assert len(data) == os.path.getsize(path)
    record(benchmark, "index-persist", "read")


def test_persist_write_fsync(benchmark: Any, saved: Any) -> None:
    d, path = saved
    with open(path, "rb") as f:
        data = f.read()
    out = os.path.join(d, "plain.bin")

    def write() -> None:
        with open(out, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    benchmark.group = "index-persist"
    benchmark.pedantic(write, rounds=ROUNDS_SLOW, iterations=1, warmup_rounds=1)
    os.remove(out)
    record(benchmark, "index-persist", "write-fsync")


@pytest.mark.parametrize("op", ["write", "read"])
def test_persist_faiss(benchmark: Any, index_data: dict[str, Any], saved: Any, op: str) -> None:
    faiss = _faiss()
    d, _ = saved
    path = os.path.join(d, "index.faiss")
    index = faiss.IndexBinaryIDMap(faiss.IndexBinaryFlat(8 * INDEX_WIDTH))
    index.add_with_ids(index_data["codes"], index_data["ids"].astype(np.int64))
    faiss.write_index_binary(index, path)
    size = os.path.getsize(path)
    del index
    benchmark.group = "index-persist"
    if op == "write":
        loaded = faiss.read_index_binary(path)
        out = benchmark.pedantic(
            lambda: faiss.write_index_binary(loaded, path), rounds=ROUNDS_SLOW, iterations=1, warmup_rounds=1
        )
        assert out is None
    else:
        loaded = benchmark.pedantic(
            lambda: faiss.read_index_binary(path), rounds=ROUNDS_SLOW, iterations=1, warmup_rounds=1
        )
        dist, found = loaded.search(index_data["queries"][:20], INDEX_K)
        ref = index_data["ref"]
        _compare("faiss read", dist, found, (ref[0][:20], ref[1][:20]))
    os.remove(path)
    record(benchmark, "index-persist", f"faiss-{op}", file_bytes_per_row=size / INDEX_ROWS)


# -- build and memory ---------------------------------------------------------------------------------------


def test_add_q2key(benchmark: Any, index_data: dict[str, Any]) -> None:
    codes, ids = index_data["codes"], index_data["ids"]
    benchmark.group = "index-add"

    def build() -> q2key.Index:
        index = q2key.Index(INDEX_DIM)
        index.add_codes(codes, ids)
        return index

    index = benchmark.pedantic(build, rounds=ROUNDS_SLOW, iterations=1, warmup_rounds=1)
    assert len(index) == INDEX_ROWS
    record(benchmark, "index-add", "q2key")


def test_add_faiss(benchmark: Any, index_data: dict[str, Any]) -> None:
    faiss = _faiss()
    codes, ids = index_data["codes"], index_data["ids"].astype(np.int64)
    benchmark.group = "index-add"

    def build() -> Any:
        index = faiss.IndexBinaryIDMap(faiss.IndexBinaryFlat(8 * INDEX_WIDTH))
        index.add_with_ids(codes, ids)
        return index

    index = benchmark.pedantic(build, rounds=ROUNDS_SLOW, iterations=1, warmup_rounds=1)
    assert index.ntotal == INDEX_ROWS
    record(benchmark, "index-add", "faiss")


@pytest.mark.parametrize("case", [*MEMORY_CASES, *(f"{c}-live" for c in MEMORY_LIVE_CASES)])
def test_memory(benchmark: Any, saved: Any, case: str) -> None:
    live = case.endswith("-live")
    base = case.removesuffix("-live")
    if base.startswith("faiss"):
        _faiss()
    if base.startswith("usearch"):
        _usearch_exact()
    _, path = saved
    rows = min(INDEX_ROWS, USEARCH_INDEX_ROWS) if base == "usearch-index" else INDEX_ROWS
    benchmark.group = "index-memory"
    m = benchmark.pedantic(
        lambda: measure_memory(base, rows, INDEX_QUERIES, path, live), rounds=1, iterations=1, warmup_rounds=0
    )
    assert m["rows"] == rows
    if "stats_bytes_per_row" in m:
        assert m["stats_bytes_per_row"] >= INDEX_WIDTH + 8
    record(benchmark, "index-memory", case, memory=m)
