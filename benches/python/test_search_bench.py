"""Exact k-NN search benchmarks: q2key.search vs faiss.IndexBinaryFlat and usearch exact search.

SEARCH_ROWS random 96-byte codes (n = 384 dimensions, 768 bits), SEARCH_QUERIES
random queries, k = 10, two threads for every library, identical codes.
q2key's Lee distance on codes is the Hamming distance of the bits, so all
three compute the same distances; the order among equal distances may differ
(q2key breaks ties by the lower row; faiss and usearch do not promise one).

Target (issue): q2key ≥ 5× faiss's queries/s.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import q2key
from bench_common import ROUNDS_FAST, ROUNDS_SLOW, SEARCH_K, SEARCH_THREADS, SEARCH_WIDTH, hamming, record

#: Queries checked against a numpy brute force (the full database each).
BRUTE_QUERIES = 3


@pytest.fixture(scope="module")
def q2key_result(search_data: Any) -> tuple[np.ndarray, np.ndarray]:
    queries, db = search_data
    return q2key.search(queries, db, SEARCH_K, threads=SEARCH_THREADS)


def _compare(name: str, dist: np.ndarray, idx: np.ndarray, ref: tuple[np.ndarray, np.ndarray]) -> dict[str, Any]:
    ref_d, ref_i = ref
    d = np.sort(np.asarray(dist).astype(np.int64), axis=1)
    equal = bool(np.array_equal(d, ref_d.astype(np.int64)))
    same_idx = float(np.mean(np.asarray(idx).astype(np.int64) == ref_i))
    assert equal, f"{name}: sorted distance rows differ from q2key's"
    return {"distances_equal": equal, "indices_equal_fraction": same_idx}


def test_search_q2key(benchmark: Any, search_data: Any, q2key_result: Any) -> None:
    queries, db = search_data
    benchmark.group = "search"
    benchmark.extra_info.update(rows=db.shape[0], queries=queries.shape[0], k=SEARCH_K, threads=SEARCH_THREADS)
    dist, idx = benchmark.pedantic(
        lambda: q2key.search(queries, db, SEARCH_K, threads=SEARCH_THREADS),
        rounds=ROUNDS_FAST,
        iterations=1,
        warmup_rounds=1,
    )
    assert dist.shape == idx.shape == (queries.shape[0], SEARCH_K)
    assert np.array_equal(dist, q2key_result[0]) and np.array_equal(idx, q2key_result[1])
    assert np.all(np.diff(dist.astype(np.int64), axis=1) >= 0)
    # A few queries against a numpy brute force over the whole database.
    for q in range(min(BRUTE_QUERIES, queries.shape[0])):
        all_d = hamming(queries[q], db)
        order = np.argsort(all_d, kind="stable")[:SEARCH_K]
        assert np.array_equal(dist[q].astype(np.int64), all_d[order]), f"query {q}: distances"
        assert np.array_equal(idx[q], order), f"query {q}: rows (ties to the lower row)"
    record(benchmark, "search", "q2key", queries=queries.shape[0])


def test_search_faiss(benchmark: Any, search_data: Any, q2key_result: Any) -> None:
    faiss = pytest.importorskip("faiss")
    queries, db = search_data
    faiss.omp_set_num_threads(SEARCH_THREADS)
    index = faiss.IndexBinaryFlat(8 * SEARCH_WIDTH)
    index.add(db)
    benchmark.group = "search"
    benchmark.extra_info.update(rows=db.shape[0], queries=queries.shape[0], k=SEARCH_K, threads=SEARCH_THREADS)
    dist, idx = benchmark.pedantic(
        lambda: index.search(queries, SEARCH_K), rounds=ROUNDS_SLOW, iterations=1, warmup_rounds=1
    )
    record(benchmark, "search", "faiss", version=faiss.__version__, **_compare("faiss", dist, idx, q2key_result))


def test_search_usearch(benchmark: Any, search_data: Any, q2key_result: Any) -> None:
    pytest.importorskip("usearch")
    import usearch
    from usearch.index import search as usearch_search

    queries, db = search_data
    benchmark.group = "search"
    benchmark.extra_info.update(rows=db.shape[0], queries=queries.shape[0], k=SEARCH_K, threads=SEARCH_THREADS)

    def run() -> Any:
        return usearch_search(db, queries, SEARCH_K, "hamming", exact=True, threads=SEARCH_THREADS, dtype="b1")

    # usearch's exact search is ~80× slower than q2key here (~35 s for the full
    # size): one round, no warm-up.
    matches = benchmark.pedantic(run, rounds=1, iterations=1, warmup_rounds=0)
    record(
        benchmark,
        "search",
        "usearch",
        version=usearch.__version__,
        **_compare("usearch", matches.distances, matches.keys, q2key_result),
    )
