"""Sizes, the result store, the ratio summary and a brute-force Hamming check shared by the benchmark modules."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

SMOKE = os.environ.get("Q2KEY_BENCH_SMOKE", "") not in ("", "0")

# Encode: N float32 rows of each dimension (Gaussian).
ENCODE_DIMS = (384, 1024, 4096)
ENCODE_ROWS = 2_000 if SMOKE else 100_000
# Search: N database codes of 96 bytes (n = 384), Q queries, k neighbours, 2 threads for everyone.
SEARCH_WIDTH = 96
SEARCH_ROWS = 20_000 if SMOKE else 1_000_000
SEARCH_QUERIES = 50 if SMOKE else 1_000
SEARCH_K = 10
SEARCH_THREADS = 2

# Rounds per benchmark (pedantic mode, one warm-up round each, iterations=1).
ROUNDS_FAST = 1 if SMOKE else 15
ROUNDS_SLOW = 1 if SMOKE else 5

#: Filled by the tests: {(group, case): {"median": s, "min": s, ...}} and check outcomes.
RESULTS: dict[tuple[str, str], dict[str, Any]] = {}


def hamming(query: np.ndarray, db: np.ndarray) -> np.ndarray:
    """Bit differences of one code to every row (numpy, in chunks): the reference the searches are checked against."""
    out = np.empty(db.shape[0], dtype=np.int64)
    for lo in range(0, db.shape[0], 65_536):
        x = np.bitwise_xor(db[lo : lo + 65_536], query)
        bits = np.bitwise_count(x) if hasattr(np, "bitwise_count") else np.unpackbits(x, axis=1)
        out[lo : lo + 65_536] = bits.sum(axis=1, dtype=np.int64)
    return out


def record(benchmark: Any, group: str, case: str, **extra: Any) -> None:
    """Keeps the benchmark's timing (if it was timed) and `extra` for the summary."""
    entry = RESULTS.setdefault((group, case), {})
    entry.update(extra)
    stats = getattr(getattr(benchmark, "stats", None), "stats", None)
    if stats is not None and getattr(stats, "rounds", 0):
        entry.update(median=stats.median, min=stats.min, mean=stats.mean, rounds=stats.rounds)
    benchmark.extra_info.update({k: v for k, v in extra.items() if isinstance(v, (int, float, str, bool))})


def _median(group: str, case: str) -> float | None:
    value = RESULTS.get((group, case), {}).get("median")
    return float(value) if value is not None else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b is not None and b > 0 else None


def fmt(v: float | None, spec: str = ".2f") -> str:
    return "—" if v is None else format(v, spec)


def summary() -> dict[str, Any]:
    out: dict[str, Any] = {"smoke": SMOKE, "encode": [], "search": {}}
    for n in ENCODE_DIMS:
        group = f"encode-n{n}"
        t1, tall = _median(group, "q2key-threads1"), _median(group, "q2key-threadsall")
        ref, probe = _median(group, "numpy"), _median(group, "einsum-probe")
        if t1 is None and tall is None:
            continue
        out["encode"].append(
            {
                "n": n,
                "rows": RESULTS.get((group, "q2key-threads1"), {}).get("rows", ENCODE_ROWS),
                "q2key_threads1_s": t1,
                "q2key_threadsall_s": tall,
                "numpy_s": ref,
                "einsum_probe_s": probe,
                "numpy_over_q2key_threads1": _ratio(ref, t1),
                "numpy_over_q2key_threadsall": _ratio(ref, tall),
                "q2key_threads1_over_probe": _ratio(t1, probe),
                # The most any encoder that reads its input once could gain over numpy.
                "numpy_over_probe": _ratio(ref, probe),
                "numpy_matches_q2key": RESULTS.get((group, "numpy"), {}).get("matches_q2key"),
            }
        )
    q2, fa, us = (_median("search", c) for c in ("q2key", "faiss", "usearch"))
    qps = {name: (SEARCH_QUERIES / t if t else None) for name, t in (("q2key", q2), ("faiss", fa), ("usearch", us))}
    out["search"] = {
        "rows": SEARCH_ROWS,
        "queries": SEARCH_QUERIES,
        "k": SEARCH_K,
        "threads": SEARCH_THREADS,
        "median_s": {"q2key": q2, "faiss": fa, "usearch": us},
        "queries_per_s": qps,
        "q2key_over_faiss": _ratio(fa, q2),
        "q2key_over_usearch": _ratio(us, q2),
        "faiss_distances_equal": RESULTS.get(("search", "faiss"), {}).get("distances_equal"),
        "faiss_indices_equal_fraction": RESULTS.get(("search", "faiss"), {}).get("indices_equal_fraction"),
        "usearch_distances_equal": RESULTS.get(("search", "usearch"), {}).get("distances_equal"),
        "usearch_indices_equal_fraction": RESULTS.get(("search", "usearch"), {}).get("indices_equal_fraction"),
    }
    return out
