"""Speed of a sharded index served by Dask workers (issue 14): queries/s with 1 and 2 worker processes.

Usage::

    python benches/sharded_speed.py [--rows N] [--dim D] [--shards S] [--queries Q] [--k K]
                                    [--rounds R] [--small-batch B] [--dir PATH] [--json PATH]
                                    [--dask-monitoring default|lean]

Database: ``--rows`` (default 2 000 000) i.i.d. Gaussian rows of dimension ``--dim`` (384),
generated chunk by chunk on the workers (``dask.array.random``), thresholds fitted once by
``q2key.dask.build_index`` on a 10 000-row sample (``lloyd_max``), ``--shards`` shards (4)
written by the workers. Queries: ``--queries`` (1 000) Gaussian rows, k = ``--k`` (10), default
scoring (asymmetric for float queries).

Measured, each the median of ``--rounds`` (3) rounds:

- ``sharded_1w``, ``sharded_2w``: ``ShardedIndex.search`` of all queries in one batch on a
  ``LocalCluster`` of 1 and of 2 worker processes with 1 thread each (each shard search 1 thread);
- ``local``: ``Index.search(threads=1)`` in this process on one index of the same rows (the
  shards' codes and ids added to it), the same answer;
- ``local_2t``: the same with ``threads=2``: ``local_speedup_2t = local / local_2t`` is what the
  machine's two cores give one process on this search;
- ``small_*``: the same with ``--small-batch`` (10) queries: the fixed cost
  of a batch (scatter, one task per shard, gather, merge) against a local search.

Each round runs every configuration once, back to back, so a change in the machine's load hits
them alike; and **one cluster at a time**: a round starts the 1-worker cluster, opens the index,
warms it up, times it and closes it, then the same with 2 workers; the local searches run with no
cluster up. (Dask's processes are never idle on the CPU: two idle clusters of 1 and 2 workers took
21–30 % of a core here, which two busy workers on two cores would have paid for.)

``--dask-monitoring``: ``default`` keeps Dask's settings; ``lean`` relaxes its own monitors
(:data:`LEAN_MONITORING`), which on this 2-core VM took 14–17 % of a core for one idle cluster of
2 workers (2 % lean). On a real cluster the scheduler has its own machine and each worker's
monitors cost its machine a few per cent.

Prints the figures and ``speedup = sharded_2w / sharded_1w`` (target ≥ 1.7) and
``overhead = sharded_1w − local`` per batch; ``--json`` writes them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import q2key


def _median_seconds(run: Callable[[], Any], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


#: Dask's own monitors, relaxed (``--dask-monitoring lean``): the worker's statistical profiler
#: (every 10 ms by default), the event-loop tick (20 ms), the system monitor (500 ms) and the
#: worker's and nanny's memory monitor (100 ms).
LEAN_MONITORING: dict[str, Any] = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.worker.memory.monitor-interval": "1s",
}


def _cluster(workers: int, monitoring: dict[str, Any]) -> tuple[Any, Any]:
    import dask
    import distributed

    with dask.config.set(monitoring):  # each Nanny passes the configuration to its worker
        cluster = distributed.LocalCluster(
            n_workers=workers, processes=True, threads_per_worker=1, dashboard_address=None, memory_limit="4GiB"
        )
        return cluster, distributed.Client(cluster)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=2_000_000)
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--shards", type=int, default=4)
    p.add_argument("--queries", type=int, default=1_000)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--small-batch", type=int, default=10)
    p.add_argument("--dir", type=str, default=None, help="where the index is written (default: a temp dir)")
    p.add_argument("--json", type=str, default=None)
    p.add_argument("--dask-monitoring", choices=("default", "lean"), default="default")
    a = p.parse_args(argv)

    import dask.array as da
    import q2key.dask as qd

    monitoring = LEAN_MONITORING if a.dask_monitoring == "lean" else {}
    directory = a.dir or tempfile.mkdtemp(prefix="q2key-sharded-")
    path = os.path.join(directory, "idx")
    queries = np.random.default_rng(1).standard_normal((a.queries, a.dim), dtype=np.float32)
    small = queries[: a.small_batch]
    out: dict[str, Any] = {"rows": a.rows, "dim": a.dim, "shards": a.shards, "queries": a.queries, "k": a.k}
    out["machine"] = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()}
    out["simd"] = q2key.simd_backend()
    out["dask_monitoring"] = a.dask_monitoring
    try:
        cluster, client = _cluster(2, monitoring)
        with cluster, client, client.as_current():
            chunk = min(100_000, max(1, a.rows // (2 * a.shards)))  # at least two blocks per shard
            x = da.random.default_rng(0).standard_normal((a.rows, a.dim), chunks=(chunk, a.dim), dtype=np.float32)
            start = time.perf_counter()
            manifest = qd.build_index(x, path, shards=a.shards)
            out["build_s_2w"] = time.perf_counter() - start
        local = q2key.Index(a.dim, threshold=manifest.thresholds)
        for s in manifest.shards:
            shard = q2key.Index.load(os.path.join(path, s.file), mmap=True)
            codes, _, ids = shard.views()
            local.add_codes(codes, ids)
            del codes, ids, shard
        times: dict[str, list[float]] = {}
        small_times: dict[str, list[float]] = {}
        answers: dict[str, Any] = {}

        def measure(name: str, run: Callable[[Any], Any]) -> None:
            start = time.perf_counter()
            answers.setdefault(name, run(queries))
            times.setdefault(name, []).append(time.perf_counter() - start)
            small_times.setdefault(name, []).append(_median_seconds(lambda: run(small), 3))

        local.search(small, a.k)  # the rows' norms, computed by the first asymmetric search
        for _ in range(a.rounds):
            measure("local", lambda q: local.search(q, a.k, threads=1))
            measure("local_2t", lambda q: local.search(q, a.k, threads=2))
            for workers in (1, 2):
                cluster, client = _cluster(workers, monitoring)
                with cluster, client, qd.ShardedIndex(path, client) as index:
                    index.search(small, a.k, timeout=900)  # shards open, norms computed
                    measure(f"sharded_{workers}w", lambda q: index.search(q, a.k, timeout=900))
        for name in times:
            out[f"{name}_s"] = statistics.median(times[name])
            out[f"{name}_all_s"] = times[name]
            out[f"small_{name}_s"] = statistics.median(small_times[name])
        out["equal"] = all(
            np.array_equal(answers["local"].ids, r.ids) and np.array_equal(answers["local"].distances, r.distances)
            for r in answers.values()
        )
    finally:
        if a.dir is None:
            shutil.rmtree(directory, ignore_errors=True)
    q = a.queries
    out["qps_1w"], out["qps_2w"], out["qps_local"] = (q / out[n] for n in ("sharded_1w_s", "sharded_2w_s", "local_s"))
    out["speedup_2w"] = out["qps_2w"] / out["qps_1w"]
    # The same search in one process on both cores.
    out["local_speedup_2t"] = out["local_s"] / out["local_2t_s"]
    out.update(paired_speedups(out))
    out["overhead_per_batch_s"] = out["sharded_1w_s"] - out["local_s"]
    out["small_overhead_s"] = out["small_sharded_1w_s"] - out["small_local_s"]
    print(json.dumps(out, indent=1))
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1) + "\n")
    return out


def paired_speedups(out: dict[str, Any]) -> dict[str, float]:
    """Median over rounds of each round's own 1-vs-2 ratio: the rounds interleave the
    configurations, so a ratio within one round cancels the machine's drift between rounds
    (on a shared VM single rounds of one configuration vary by ±20 %), which a ratio of
    medians taken from different rounds does not."""
    return {
        "speedup_2w_paired": statistics.median(
            one / two for one, two in zip(out["sharded_1w_all_s"], out["sharded_2w_all_s"])
        ),
        "local_speedup_2t_paired": statistics.median(
            one / two for one, two in zip(out["local_all_s"], out["local_2t_all_s"])
        ),
    }


if __name__ == "__main__":
    main()
