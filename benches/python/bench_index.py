"""Sizes, memory measurement and the ratio summary of the q2key.Index benchmarks (test_index_bench.py).

The summary is printed after conftest's ratios (a hook wrapper registered by the test module,
so it needs no change to conftest.py); with ``Q2KEY_BENCH_SUMMARY=path`` it is added to that
JSON file under ``"index"``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from bench_common import RESULTS, SMOKE, fmt

# 1 M random 96-byte codes (n = 384) under non-sequential user ids drawn from 0..ID_SPACE·N.
INDEX_WIDTH = 96
INDEX_DIM = 4 * INDEX_WIDTH
INDEX_ROWS = 20_000 if SMOKE else 1_000_000
INDEX_QUERIES = 50 if SMOKE else 1_000
INDEX_K = 10
INDEX_THREADS = 2
ID_SPACE = 3
#: Filtered search: share of the stored ids allowed.
SELECTIVITIES = (0.01, 0.5)
#: faiss's IDSelectorBatch (hash set + Bloom filter) at 50 %: ~0.14 s per query here,
#: so it is timed on this many queries only (q/s are comparable, seconds are not).
FAISS_BATCH_SLOW_QUERIES = 5 if SMOKE else 20
#: Filtered search with few queries per call (the per-call cost of a filter shows).
SMALL_BATCH = 10
#: Real embeddings: queries searched (the whole 20 000-row database is always used).
REAL_QUERIES = 50 if SMOKE else 1_000
#: usearch's Index (HNSW graph + vectors) for the memory comparison: building it for 1 M
#: rows takes minutes here, so it is measured on this many rows.
USEARCH_INDEX_ROWS = 100_000

#: Cases measured again with glibc's mmap threshold fixed at 128 KiB (``MALLOC_MMAP_THRESHOLD_``),
#: so freed large blocks go back to the OS at once: the live bytes, without allocator retention.
MEMORY_LIVE_CASES = () if SMOKE else ("q2key-user-ids", "q2key-sequential-ids", "q2key-load-mmap", "faiss-idmap")
#: What the memory test measures, each in a fresh interpreter.
MEMORY_CASES = (
    ("q2key-user-ids",)
    if SMOKE
    else (
        "q2key-user-ids",
        "q2key-sequential-ids",
        "q2key-load",
        "q2key-load-mmap",
        "faiss-idmap",
        "faiss-flat",
        "usearch-index",
    )
)

_MEMORY_SCRIPT = r"""
import json, os, sys, time
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import numpy as np

case, rows, queries_n, path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
width, k, threads = 96, 10, 2


def status():
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
                out[name] = int(value.split()[0]) * 1024
    return out


def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


rng = np.random.default_rng(7)
codes = rng.integers(0, 256, size=(rows, width), dtype=np.uint8)
ids = rng.permutation(3 * rows)[:rows].astype(np.uint64)
queries = rng.integers(0, 256, size=(queries_n, width), dtype=np.uint8)
ids64 = ids.astype(np.int64)  # faiss's id type, made before the first reading
if case in ("q2key-load", "q2key-load-mmap"):
    del codes, ids, ids64
import q2key  # noqa: E402
lib = case.split("-")[0]
if lib == "faiss":
    import faiss
    faiss.omp_set_num_threads(threads)
elif lib == "usearch":
    from usearch.index import Index as UIndex
peak_reset = reset_peak()
before = status()
t0 = time.perf_counter()
extra = {}
if case == "q2key-user-ids":
    index = q2key.Index(4 * width)
    index.add_codes(codes, ids)
elif case == "q2key-sequential-ids":
    index = q2key.Index(4 * width)
    index.add_codes(codes)
elif case in ("q2key-load", "q2key-load-mmap"):
    index = q2key.Index.load(path, mmap=case.endswith("mmap"))
elif case == "faiss-idmap":
    index = faiss.IndexBinaryIDMap(faiss.IndexBinaryFlat(8 * width))
    index.add_with_ids(codes, ids64)
elif case == "faiss-flat":
    index = faiss.IndexBinaryFlat(8 * width)
    index.add(codes)
elif case == "usearch-index":
    index = UIndex(ndim=8 * width, metric="hamming", dtype="b1")
    index.add(ids, codes, threads=threads)
else:
    raise SystemExit(f"unknown case {case}")
build_s = time.perf_counter() - t0
after_build = status()
if lib == "q2key":
    index.search(queries, k, threads=threads)
    extra["stats_bytes_per_row"] = index.stats().bytes_per_row
elif lib == "faiss":
    index.search(queries, k)
else:
    index.search(queries, k, threads=threads, exact=True)
    extra["memory_usage_bytes"] = int(index.memory_usage)
after_search = status()
print(json.dumps({
    "case": case, "rows": len(index) if lib != "faiss" else int(index.ntotal), "build_s": build_s,
    "before": before, "after_build": after_build, "after_search": after_search, "peak_reset": peak_reset,
    **extra,
}))
"""


def measure_memory(case: str, rows: int, queries: int, path: str, live: bool = False) -> dict[str, Any]:
    """Runs one memory case in a fresh interpreter; bytes per stored row from /proc/self/status deltas.

    ``live``: with ``MALLOC_MMAP_THRESHOLD_=131072`` (glibc then neither raises the threshold nor
    keeps freed blocks of ≥ 128 KiB), so the deltas are the memory the library holds.

    ``rss_*`` = VmRSS deltas (anonymous + file-backed pages), ``anon_*`` = RssAnon deltas (heap),
    ``peak`` = VmHWM after the build minus VmRSS before it (peak reset just before the build).
    The input arrays are made before the first reading and stay alive, so they are not counted.
    """
    out = subprocess.run(
        [sys.executable, "-c", _MEMORY_SCRIPT, case, str(rows), str(queries), path],
        check=True,
        capture_output=True,
        text=True,
        env={
            **{k: v for k, v in os.environ.items() if k != "MALLOC_MMAP_THRESHOLD_"},
            "OPENBLAS_NUM_THREADS": "1",
            **({"MALLOC_MMAP_THRESHOLD_": "131072"} if live else {}),
        },
    )
    raw = json.loads(out.stdout.strip().splitlines()[-1])
    n = raw["rows"]
    b, ab, asr = raw["before"], raw["after_build"], raw["after_search"]
    res: dict[str, Any] = {
        "case": case,
        "rows": n,
        "build_s": raw["build_s"],
        "rss_after_build_per_row": (ab["VmRSS"] - b["VmRSS"]) / n,
        "rss_after_search_per_row": (asr["VmRSS"] - b["VmRSS"]) / n,
        "anon_after_search_per_row": (asr["RssAnon"] - b["RssAnon"]) / n,
        "file_after_search_per_row": (asr["RssFile"] - b["RssFile"]) / n,
    }
    if raw["peak_reset"]:
        res["peak_build_per_row"] = (ab["VmHWM"] - b["VmRSS"]) / n
    for key in ("stats_bytes_per_row", "memory_usage_bytes"):
        if key in raw:
            res[key] = raw[key]
    if "memory_usage_bytes" in raw:
        res["memory_usage_per_row"] = raw["memory_usage_bytes"] / n
    return res


# -- summary ------------------------------------------------------------------------------------------------


def _entry(group: str, case: str) -> dict[str, Any]:
    return RESULTS.get((group, case), {})


def _median(group: str, case: str) -> float | None:
    v = _entry(group, case).get("median")
    return float(v) if v is not None else None


def _qps(group: str, case: str) -> float | None:
    t, q = _median(group, case), _entry(group, case).get("queries")
    return q / t if t and q else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b is not None and b > 0 else None


def filter_group(selectivity: float) -> str:
    return f"index-filter-{round(selectivity * 100)}pct"


def index_summary() -> dict[str, Any]:
    out: dict[str, Any] = {"smoke": SMOKE}
    g = "index-real"
    if any(k[0] == g for k in RESULTS):
        libs = ("q2key", "faiss", "usearch")
        out["real"] = {
            "rows": _entry(g, "q2key").get("rows"),
            "queries": _entry(g, "q2key").get("queries"),
            "queries_per_s": {c: _qps(g, c) for c in libs},
            "recall_at_10": {c: _entry(g, c).get("recall_at_10") for c in libs},
            "distances_equal": {c: _entry(g, c).get("distances_equal") for c in libs[1:]},
            "ids_equal_fraction": {c: _entry(g, c).get("ids_equal_fraction") for c in libs[1:]},
            "q2key_over_faiss": _ratio(_qps(g, "q2key"), _qps(g, "faiss")),
            "q2key_over_usearch": _ratio(_qps(g, "q2key"), _qps(g, "usearch")),
        }
    g = "index-search"
    if any(k[0] == g for k in RESULTS):
        libs = ("q2key", "faiss", "usearch")
        out["search"] = {
            "rows": INDEX_ROWS,
            "queries": INDEX_QUERIES,
            "k": INDEX_K,
            "threads": INDEX_THREADS,
            "queries_per_s": {c: _qps(g, c) for c in libs},
            "q2key_first_search_s": _entry(g, "q2key").get("first_search_s"),
            "q2key_over_faiss": _ratio(_qps(g, "q2key"), _qps(g, "faiss")),
            "q2key_over_usearch": _ratio(_qps(g, "q2key"), _qps(g, "usearch")),
            "distances_equal": {c: _entry(g, c).get("distances_equal") for c in libs[1:]},
            "ids_equal_fraction": {c: _entry(g, c).get("ids_equal_fraction") for c in libs[1:]},
        }
    filters = []
    for s in SELECTIVITIES:
        g = filter_group(s)
        if not any(k[0] == g for k in RESULTS):
            continue
        cases = ("q2key-ids", "q2key-mask", "faiss-batch", "faiss-bitmap", "q2key-ids-small", "faiss-bitmap-small")
        q = {c: _qps(g, c) for c in cases}
        filters.append(
            {
                "selectivity": s,
                "allowed": _entry(g, "q2key-ids").get("allowed"),
                "queries_per_s": q,
                "q2key_ids_over_faiss_batch": _ratio(q["q2key-ids"], q["faiss-batch"]),
                "q2key_mask_over_faiss_bitmap": _ratio(q["q2key-mask"], q["faiss-bitmap"]),
                "small_batch": SMALL_BATCH,
                "q2key_ids_small_over_faiss_bitmap_small": _ratio(q["q2key-ids-small"], q["faiss-bitmap-small"]),
                "faiss_distances_equal": {c: _entry(g, c).get("distances_equal") for c in cases if "faiss" in c},
            }
        )
    if filters:
        out["filter"] = filters
    g = "index-persist"
    if any(k[0] == g for k in RESULTS):
        t = {
            c: _median(g, c) for c in ("save", "load", "load-mmap", "read", "write-fsync", "faiss-write", "faiss-read")
        }
        out["persist"] = {
            "rows": INDEX_ROWS,
            "file_bytes": _entry(g, "save").get("file_bytes"),
            "file_bytes_per_row": _entry(g, "save").get("file_bytes_per_row"),
            "faiss_file_bytes_per_row": _entry(g, "faiss-write").get("file_bytes_per_row"),
            "median_s": t,
            "save_over_read": _ratio(t["save"], t["read"]),
            "save_over_write_fsync": _ratio(t["save"], t["write-fsync"]),
            "load_over_read": _ratio(t["load"], t["read"]),
            "load_mmap_over_read": _ratio(t["load-mmap"], t["read"]),
            "load_over_faiss_read": _ratio(t["load"], t["faiss-read"]),
        }
    g = "index-add"
    if any(k[0] == g for k in RESULTS):
        t = {c: _median(g, c) for c in ("q2key", "faiss")}
        out["add"] = {"rows": INDEX_ROWS, "median_s": t, "q2key_over_faiss_time": _ratio(t["q2key"], t["faiss"])}
    cases = (*MEMORY_CASES, *(f"{c}-live" for c in MEMORY_LIVE_CASES))
    mem = {c: _entry("index-memory", c).get("memory") for c in cases}
    if any(mem.values()):
        out["memory"] = {c: m for c, m in mem.items() if m}
    return out


def summary_lines(s: dict[str, Any]) -> list[str]:
    lines = [f"q2key.Index benchmark ratios (medians of this run{', SMOKE sizes' if SMOKE else ''})"]
    if "real" in s:
        r = s["real"]
        q, rc = r["queries_per_s"], r["recall_at_10"]
        lines.append(
            f"  real MiniLM {r['rows']} rows, {r['queries']} queries, k=10: q2key {fmt(q['q2key'], '.0f')} q/s "
            f"(recall@10 {fmt(rc['q2key'], '.3f')}), faiss IDMap {fmt(q['faiss'], '.0f')} q/s "
            f"({fmt(rc['faiss'], '.3f')}), usearch {fmt(q['usearch'], '.0f')} q/s ({fmt(rc['usearch'], '.3f')}) | "
            f"q2key/faiss {fmt(r['q2key_over_faiss'], '.1f')}×, q2key/usearch {fmt(r['q2key_over_usearch'], '.1f')}×; "
            f"distances equal {r['distances_equal']}"
        )
    if "search" in s:
        r = s["search"]
        q = r["queries_per_s"]
        lines.append(
            f"  Index.search {r['rows']}×{INDEX_WIDTH} B, user ids, {r['queries']} queries, k={r['k']}, "
            f"{r['threads']} threads: q2key {fmt(q['q2key'], '.0f')} q/s (first search "
            f"{fmt(r['q2key_first_search_s'], '.3f')} s), faiss IDMap {fmt(q['faiss'], '.0f')} q/s, usearch "
            f"{fmt(q['usearch'], '.1f')} q/s | q2key/faiss {fmt(r['q2key_over_faiss'], '.1f')}×, q2key/usearch "
            f"{fmt(r['q2key_over_usearch'], '.0f')}×; distances equal {r['distances_equal']}"
        )
    for f in s.get("filter", []):
        q = f["queries_per_s"]
        lines.append(
            f"  filter {f['selectivity']:.0%} ({f['allowed']} ids): q2key ids {fmt(q['q2key-ids'], '.0f')} q/s, "
            f"mask {fmt(q['q2key-mask'], '.0f')} q/s; faiss IDSelectorBatch {fmt(q['faiss-batch'], '.1f')} q/s, "
            f"IDSelectorBitmap {fmt(q['faiss-bitmap'], '.0f')} q/s | ids/Batch "
            f"{fmt(f['q2key_ids_over_faiss_batch'], '.1f')}×, "
            f"mask/Bitmap {fmt(f['q2key_mask_over_faiss_bitmap'], '.1f')}×; {SMALL_BATCH} queries per call: q2key ids "
            f"{fmt(q['q2key-ids-small'], '.0f')} q/s, faiss Bitmap {fmt(q['faiss-bitmap-small'], '.0f')} q/s "
            f"({fmt(f['q2key_ids_small_over_faiss_bitmap_small'], '.1f')}×)"
        )
    if "persist" in s:
        p = s["persist"]
        t = p["median_s"]
        lines.append(
            f"  persist {p['rows']} rows ({fmt(p['file_bytes_per_row'], '.1f')} B/row on disk): save "
            f"{fmt(t['save'], '.3f')} s, load {fmt(t['load'], '.3f')} s, load(mmap) {fmt(t['load-mmap'], '.3f')} s, "
            f"plain read {fmt(t['read'], '.3f')} s, write+fsync {fmt(t['write-fsync'], '.3f')} s, faiss write/read "
            f"{fmt(t['faiss-write'], '.3f')}/{fmt(t['faiss-read'], '.3f')} s | save/read "
            f"{fmt(p['save_over_read'], '.1f')}×, load/read {fmt(p['load_over_read'], '.1f')}×, mmap/read "
            f"{fmt(p['load_mmap_over_read'], '.1f')}×"
        )
    if "add" in s:
        a = s["add"]
        lines.append(
            f"  add_codes {a['rows']} rows with ids: q2key {fmt(a['median_s']['q2key'], '.3f')} s, faiss IDMap "
            f"{fmt(a['median_s']['faiss'], '.3f')} s | q2key/faiss time {fmt(a['q2key_over_faiss_time'], '.1f')}×"
        )
    for case, m in s.get("memory", {}).items():
        lines.append(
            f"  memory {case} ({m['rows']} rows): RSS +{m['rss_after_build_per_row']:.1f} B/row after build, "
            f"+{m['rss_after_search_per_row']:.1f} after a search (anon {m['anon_after_search_per_row']:.1f}, "
            f"file {m['file_after_search_per_row']:.1f}), peak {fmt(m.get('peak_build_per_row'), '.1f')}"
            + (f"; stats() {m['stats_bytes_per_row']}" if "stats_bytes_per_row" in m else "")
            + (f"; memory_usage {m['memory_usage_per_row']:.1f}" if "memory_usage_per_row" in m else "")
        )
    return lines


class SummaryPlugin:
    """Prints the index ratios after the other summaries and adds them to ``Q2KEY_BENCH_SUMMARY``."""

    @pytest.hookimpl(hookwrapper=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> Any:
        # A wrapper: the part after `yield` runs after conftest's summary.
        yield
        s = index_summary()
        if len(s) == 1:  # nothing but "smoke"
            return
        w = terminalreporter.write_line
        w("")
        for line in summary_lines(s):
            w(line)
        path = os.environ.get("Q2KEY_BENCH_SUMMARY")
        if path:
            try:
                with open(path) as f:
                    doc = json.load(f)
            except (OSError, ValueError):
                doc = {}
            doc["index"] = s
            with open(path, "w") as f:
                json.dump(doc, f, indent=2)
            w(f"  index summary added to {path}")
