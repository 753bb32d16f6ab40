"""A streamed inverted-file build of 10 M rows (issue 13): build time, peak memory, load, queries/s, recall.

Usage::

    python benches/ivf_stream.py [--rows 10000000] [--lists 4096] [--queries 100] [--nprobe 8,16,32,64]
                                 [--out /tmp/q2key-ivf] [--json PATH]

The rows are ``benches/ivf_data.py``'s structured data (made first if missing; float16 above 2 M rows:
10 M rows are a 7.7 GB ``.npy``). Steps, each timed:

1. ``q2key calibrate --method lloyd_max --rows 20000`` on the file (thresholds JSON; ``--calibration``);
2. ``q2key index build FILE --lists L --thresholds JSON`` **in a child process** of a fresh parent,
   so the peak resident memory the parent reads (``getrusage(RUSAGE_CHILDREN).ru_maxrss``) is the
   build's own (the interpreter's ≈ 40 MB included): one pass samples the training rows, k-means fits
   the lists, a second pass finds every row's list and sizes the lists once, a third encodes and adds
   the rows batch by batch — the float matrix is never in memory. The target is a peak ≤ 120 bytes
   per row (ids, lists and centroids included);
3. ``IVFIndex.load`` of the file, read into memory and with ``mmap=True`` (each in a fresh child
   process, so neither finds the other's pages in its heap; the file is in the page cache for both);
4. the first ``--queries`` real held-out queries, k = 10, 2 threads: IVF queries/s and recall@10 for each
   ``--nprobe`` against the exhaustive asymmetric top-10 (a ``q2key.Index`` of the same codes:
   ``IVFIndex`` rows are encoded with the same thresholds, so the exhaustive answer is
   ``Index.search(scoring="asymmetric")`` over the same rows) and against the exact cosine top-10.

The ``Index`` for the exhaustive answer is built by encoding the file in batches in this process
(after the build's memory was measured).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import q2key

sys.path.insert(0, str(Path(__file__).parent))
import ivf_data

K = 10
BATCH = 262_144


PEAK_CHILD = """
import resource, subprocess, sys, time
start = time.perf_counter()
subprocess.run(sys.argv[1:], check=True)
print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)
"""


def _run(cmd: list[str]) -> tuple[float, int]:
    """Runs ``cmd`` under a fresh parent, so the peak resident memory reported (Linux: KiB) is ``cmd``'s own."""
    out = subprocess.run([sys.executable, "-c", PEAK_CHILD, *cmd], check=True, capture_output=True, text=True)
    seconds, peak = out.stdout.split()[-2:]
    return float(seconds), int(peak)


LOAD_CHILD = """
import resource, sys, time
import q2key
start = time.perf_counter()
index = q2key.IVFIndex.load(sys.argv[1], mmap=sys.argv[2] == "1")
seconds = time.perf_counter() - start
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(seconds, rss, len(index))
"""


def _load(path: Path, mapped: bool) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", LOAD_CHILD, str(path), "1" if mapped else "0"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return {"seconds": round(float(out[0]), 3), "peak_rss_bytes": int(out[1]), "rows": int(out[2])}


def _recall(found: Any, truth: Any) -> float:
    return float(np.mean([len(set(a.tolist()) & set(b.tolist())) / K for a, b in zip(found, truth)]))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--lists", type=int, default=4096)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--nprobe", default="8,16,32,64")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--calibration", default="lloyd_max", help="q2key calibrate --method (default: %(default)s)")
    ap.add_argument("--out", type=Path, default=ivf_data.DEFAULT_OUT)
    ap.add_argument("--data", type=Path, default=ivf_data.DEFAULT_DATA, help="the bundled .npz")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args(argv)

    data = ivf_data.dataset(a.rows, a.out, data=a.data)
    npy = Path(data.path)
    thresholds = a.out / f"{npy.stem}.{a.calibration}.json"
    index_path = a.out / f"{npy.stem}.L{a.lists}.q2ivf"
    q2key_cli = [sys.executable, "-m", "q2key"]
    out: dict[str, Any] = {
        "rows": a.rows,
        "lists": a.lists,
        "queries": a.queries,
        "machine": {"cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count()},
        "simd": q2key.simd_backend(),
        "file": {"path": str(npy), "dtype": str(np.load(npy, mmap_mode="r").dtype), "bytes": npy.stat().st_size},
    }
    calibrate = [*q2key_cli, "calibrate", str(npy), "--method", a.calibration, "--rows", "20000", "-q"]
    out["calibrate_s"] = round(_run([*calibrate, "-o", str(thresholds)])[0], 1)
    build = [*q2key_cli, "index", "build", str(npy), "-o", str(index_path), "--lists", str(a.lists)]
    seconds, peak = _run([*build, "--thresholds", str(thresholds), "-q"])
    out["build_s"] = round(seconds, 1)
    out["build_peak_rss_bytes"] = peak
    out["build_peak_bytes_per_row"] = round(peak / a.rows, 1)
    out["index_file_bytes"] = index_path.stat().st_size
    out["load"] = {"read": _load(index_path, False), "mmap": _load(index_path, True)}

    ivf = q2key.IVFIndex.load(index_path, mmap=True)
    stats = ivf.stats()
    out["index"] = {
        "bytes_per_row": round(stats.bytes_per_row, 1),
        "imbalance": round(stats.imbalance, 3),
        "largest_list": stats.max_list,
    }
    th = ivf.thresholds
    flat = q2key.Index(ivf.dim, threshold=th)
    rows = np.load(npy, mmap_mode="r")
    for lo in range(0, a.rows, BATCH):
        flat.add(np.asarray(rows[lo : lo + BATCH], dtype=np.float32))
    queries = data.queries[: a.queries]
    truth_cosine = data.truth[: a.queries]
    start = time.perf_counter()
    exhaustive = flat.search(queries, K, scoring="asymmetric", threads=2)
    exhaustive_s = time.perf_counter() - start
    out["exhaustive"] = {
        "queries_per_s": round(a.queries / exhaustive_s, 1),
        "recall_cosine": _recall(exhaustive.ids, truth_cosine),
    }
    points = []
    for nprobe in (int(p) for p in a.nprobe.split(",")):
        found = ivf.search(queries, K, nprobe=nprobe, scoring="asymmetric", threads=2)  # warm
        times = []
        for _ in range(a.rounds):
            start = time.perf_counter()
            ivf.search(queries, K, nprobe=nprobe, scoring="asymmetric", threads=2)
            times.append(time.perf_counter() - start)
        points.append(
            {
                "nprobe": nprobe,
                "queries_per_s": round(a.queries / statistics.median(times), 1),
                "recall_exhaustive": _recall(found.ids, exhaustive.ids),
                "recall_cosine": _recall(found.ids, truth_cosine),
            }
        )
    out["points"] = points
    print(json.dumps(out, indent=1))
    if a.json:
        a.json.write_text(json.dumps(out, indent=1) + "\n")
    return out


if __name__ == "__main__":
    main()
