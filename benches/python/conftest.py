"""Shared sizes, data and the ratio summary of the q2key Python benchmarks.

Full run (from /tmp, so the installed wheel is imported, not the source tree)::

    cd /tmp && python -m pytest /work/main/benches/python --benchmark-only

Smoke run (CI; < 30 s, needs neither faiss nor usearch)::

    Q2KEY_BENCH_SMOKE=1 python -m pytest benches/python --benchmark-disable -q

``Q2KEY_BENCH_SMOKE=1`` shrinks every size; peers missing from the
environment skip only their own tests. At the end of a run with timings, a
table of ratios (same run, medians) is printed; ``Q2KEY_BENCH_SUMMARY=path``
also writes it as JSON.
"""

from __future__ import annotations

import json
import os
from typing import Any

# numpy's OpenBLAS threads spin after start-up and show in profiles of the
# two-thread search; nothing here uses BLAS. Must precede the numpy import.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import pytest
from bench_common import (
    ENCODE_DIMS,
    ENCODE_ROWS,
    SEARCH_QUERIES,
    SEARCH_ROWS,
    SEARCH_WIDTH,
    SMOKE,
    fmt,
    summary,
)


@pytest.fixture(scope="session", params=ENCODE_DIMS, ids=lambda n: f"n{n}")
def encode_data(request: pytest.FixtureRequest) -> Any:
    """(n, x): ENCODE_ROWS × n float32 standard normal rows; one dimension alive at a time."""
    n = int(request.param)
    x = np.random.default_rng(n).standard_normal((ENCODE_ROWS, n), dtype=np.float32)
    yield n, x
    del x


@pytest.fixture(scope="session")
def search_data() -> tuple[np.ndarray, np.ndarray]:
    """(queries, database): random uint8 codes, SEARCH_WIDTH bytes each."""
    rng = np.random.default_rng(20240501)
    db = rng.integers(0, 256, size=(SEARCH_ROWS, SEARCH_WIDTH), dtype=np.uint8)
    queries = rng.integers(0, 256, size=(SEARCH_QUERIES, SEARCH_WIDTH), dtype=np.uint8)
    return queries, db


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: Any) -> None:
    s = summary()
    if not s["encode"] and s["search"]["median_s"]["q2key"] is None:
        return
    w = terminalreporter.write_line
    w("")
    w(f"q2key benchmark ratios (medians of this run{', SMOKE sizes' if SMOKE else ''})")
    for e in s["encode"]:
        w(
            f"  encode n={e['n']:>4} N={e['rows']}: q2key t1 {fmt(e['q2key_threads1_s'], '.4f')} s, "
            f"all {fmt(e['q2key_threadsall_s'], '.4f')} s, numpy {fmt(e['numpy_s'], '.4f')} s, "
            f"probe {fmt(e['einsum_probe_s'], '.4f')} s | numpy/q2key t1 {fmt(e['numpy_over_q2key_threads1'], '.1f')}× "
            f"(target ≥ 50), numpy/q2key all {fmt(e['numpy_over_q2key_threadsall'], '.1f')}×, "
            f"q2key t1/probe {fmt(e['q2key_threads1_over_probe'])} (target ≤ 2), "
            f"numpy/probe {fmt(e['numpy_over_probe'], '.1f')}×; numpy codes identical: "
            f"{e['numpy_matches_q2key']}"
        )
    sr = s["search"]
    if sr["median_s"]["q2key"] is not None:
        q = sr["queries_per_s"]
        w(
            f"  search {sr['rows']}×{SEARCH_WIDTH} B, {sr['queries']} queries, k={sr['k']}, {sr['threads']} threads: "
            f"q2key {fmt(q['q2key'], '.0f')} q/s, faiss {fmt(q['faiss'], '.0f')} q/s, "
            f"usearch {fmt(q['usearch'], '.0f')} q/s | q2key/faiss {fmt(sr['q2key_over_faiss'], '.1f')}× "
            f"(target ≥ 5), q2key/usearch {fmt(sr['q2key_over_usearch'], '.1f')}×; distances equal: "
            f"faiss {sr['faiss_distances_equal']}, usearch {sr['usearch_distances_equal']}; same indices: "
            f"faiss {fmt(sr['faiss_indices_equal_fraction'], '.4f')}, "
            f"usearch {fmt(sr['usearch_indices_equal_fraction'], '.4f')}"
        )
    path = os.environ.get("Q2KEY_BENCH_SUMMARY")
    if path:
        with open(path, "w") as f:
            json.dump(s, f, indent=2)
        w(f"  summary written to {path}")
