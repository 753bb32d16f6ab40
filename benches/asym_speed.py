"""Speed of asymmetric search (issue 12): float queries against 1 M Q² codes, against faiss's 2- and 4-bit scanners.

Usage::

    python benches/asym_speed.py [--rows N] [--queries Q] [--threads T] [--k K]
                                 [--latency-queries L] [--rounds R] [--source real|gaussian]
                                 [--methods NAME,...] [--json PATH] [--check]

Database: ``--rows`` unit vectors of dimension 384. ``--source real`` (default) synthesises them
from the 20 000 bundled all-MiniLM-L6-v2 rows of ``data/wordnet-minilm-dev.npz``: row ``i`` is
bundled row ``i mod 20 000`` plus Gaussian noise of norm ≈ ``--noise`` (default 0.5, i.e.
σ = 0.5/√384 per coordinate), renormalised — so the score distribution a query sees (and what the
integer fast path can prune) is that of real embeddings, not of isotropic noise. The queries are the
bundled held-out queries (more than 1 000: the same noise recipe). ``--source gaussian``: i.i.d.
standard normal rows and queries.

Methods (every one scores float queries, threads = ``--threads``, k = ``--k``):

- ``asym``: :func:`q2key.asymmetric_search` over the codes (exhaustive, exact reconstruction cosine);
- ``index``: :meth:`q2key.Index.search` with ``scoring="asymmetric"`` on an index of the same codes;
- ``lee``: :func:`q2key.search` — the queries encoded, then Lee distance (query encoding timed too);
- ``rabitq``: faiss ``IndexRaBitQFastScan(d, METRIC_INNER_PRODUCT, 32, 2)`` (2 bits per dimension);
- ``pq``: faiss ``IndexPQFastScan(d, 192, 4, METRIC_INNER_PRODUCT)`` (trained on 32 768 rows).

q2key's thresholds: ``q2key.calibrate(sample, method=--calibration)`` on the first 20 000 rows
(default ``lloyd_max``, the best codes-only recall in ``fidelity.py``), so every code carries the
fitted reconstruction table. Throughput: all queries in one call, median of ``--rounds`` calls,
in queries/s. Latency: the median of ``--latency-queries`` calls with one query each. Memory per
stored row: q2key's ``IndexStats.bytes_per_row`` for the index, the code width for the bare codes,
faiss's serialised index size / rows. Recall@k against exact float cosine over the database is
measured for the first ``--recall-queries`` queries, so a fast wrong answer shows.

Prints a table and the ratios; ``--json`` writes every figure. ``--check`` exits 1 when q2key's
asymmetric search is slower than faiss ``IndexPQFastScan`` (the issue's target), or when the free
function and the index disagree.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # numpy's idle BLAS threads would steal a core

import numpy as np
import numpy.typing as npt
import q2key

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent / "data" / "wordnet-minilm-dev.npz"
DIM = 384
#: Rows the thresholds are fitted on, and rows faiss's PQ is trained on.
CALIBRATION_ROWS = 20_000
PQ_TRAIN_ROWS = 32_768
#: Rows generated at a time (keeps the float64 temporaries small).
CHUNK = 100_000

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
#: A prepared method: queries (Q, dim) float32 -> row numbers (Q, k) best first.
Searcher = Callable[[F32], I64]

ASYM, INDEX, LEE, RABITQ, PQ = "asym", "index", "lee", "rabitq", "pq"
LABELS = {
    ASYM: "q2key asymmetric_search",
    INDEX: "q2key Index.search asymmetric",
    LEE: "q2key Lee search (encode + search)",
    RABITQ: "faiss RaBitQFastScan 2-bit",
    PQ: "faiss PQFastScan 192×4",
}
ALL_METHODS = (ASYM, INDEX, LEE, RABITQ, PQ)


@dataclass
class Timing:
    """One method's figures."""

    method: str
    label: str
    build_seconds: float
    bytes_per_row: float
    queries_per_s: float  # by the median round
    best_queries_per_s: float  # by the fastest round
    round_seconds: list[float]
    latency_ms: float
    recall: float
    notes: dict[str, Any] = field(default_factory=dict)


def unit(x: npt.NDArray[Any]) -> F32:
    """Rows as float32, L2-normalised."""
    a = np.asarray(x, dtype=np.float32)
    return np.asarray(a / np.linalg.norm(a, axis=1, keepdims=True), dtype=np.float32)


def synthesise(base: F32, rows: int, noise: float, seed: int) -> F32:
    """``rows`` unit rows: ``base[i mod len(base)]`` plus Gaussian noise of norm ≈ ``noise``, renormalised."""
    rng = np.random.default_rng(seed)
    out = np.empty((rows, base.shape[1]), dtype=np.float32)
    sigma = np.float32(noise / np.sqrt(base.shape[1]))
    for lo in range(0, rows, CHUNK):
        hi = min(rows, lo + CHUNK)
        block = base[np.arange(lo, hi) % base.shape[0]]
        block = block + sigma * rng.standard_normal(block.shape, dtype=np.float32)
        out[lo:hi] = unit(block)
    return out


def make_data(source: str, rows: int, queries: int, noise: float, seed: int, path: Path) -> tuple[F32, F32]:
    """(database, queries), unit float32 rows of dimension 384."""
    if source == "gaussian":
        rng = np.random.default_rng(seed)
        db = np.empty((rows, DIM), dtype=np.float32)
        for lo in range(0, rows, CHUNK):
            hi = min(rows, lo + CHUNK)
            db[lo:hi] = unit(rng.standard_normal((hi - lo, DIM), dtype=np.float32))
        return db, unit(rng.standard_normal((queries, DIM), dtype=np.float32))
    with np.load(path) as z:
        base, held = unit(z["database"]), unit(z["queries"])
    qs = held[:queries] if queries <= held.shape[0] else synthesise(held, queries, noise, seed + 1)
    return synthesise(base, rows, noise, seed), qs


def exact_top_k(queries: F32, database: F32, k: int) -> I64:
    """Exact cosine top-k of unit rows (ties to the lower row), in database chunks."""
    best_s = np.full((queries.shape[0], 0), -np.inf, dtype=np.float32)
    best_i = np.zeros((queries.shape[0], 0), dtype=np.int64)
    for lo in range(0, database.shape[0], CHUNK):
        sims = queries @ database[lo : lo + CHUNK].T
        s = np.concatenate([best_s, sims], axis=1)
        i = np.concatenate([best_i, np.broadcast_to(np.arange(lo, lo + sims.shape[1]), sims.shape)], axis=1)
        order = np.lexsort((i, -s), axis=1)[:, :k]
        best_s, best_i = np.take_along_axis(s, order, axis=1), np.take_along_axis(i, order, axis=1)
    return best_i


def recall(found: I64, truth: I64) -> float:
    """Mean share of each truth row found (rows of distinct ids)."""
    k = truth.shape[1]
    return float((found[:, :k, None] == truth[:, None, :]).any(axis=2).sum() / truth.size)


def faiss_module(threads: int) -> Any:
    import faiss

    faiss.omp_set_num_threads(threads)
    return faiss


def faiss_searcher(index: Any, k: int, rows: int) -> tuple[Searcher, float]:
    """A search over a filled faiss index, and its serialised bytes per row."""
    faiss = sys.modules["faiss"]
    size = int(faiss.serialize_index(index).size)

    def search(queries: F32) -> I64:
        _, idx = index.search(queries, k)
        return np.asarray(idx, dtype=np.int64)

    return search, size / rows


def prepare(
    method: str, database: F32, th: Any, codes: npt.NDArray[np.uint8], args: argparse.Namespace
) -> tuple[Searcher, dict[str, Any]]:
    """(search, notes) of one method, built over ``database``; ``notes["bytes_per_row"]`` is a number, or a
    callable asked after the timing."""
    k, t = args.k, args.threads
    if method == ASYM:

        def asym(queries: F32) -> I64:
            return np.asarray(q2key.asymmetric_search(queries, codes, k, threshold=th, threads=t)[1], np.int64)

        return asym, {"bytes_per_row": codes.shape[1], "stored": "codes only (‖x̂‖ and padding check per call)"}
    if method == INDEX:
        index = q2key.Index(DIM, threshold=th)
        index.add(database, threads=t)  # default ids: the rows, in insertion order (no id map to build)

        def indexed(queries: F32) -> I64:
            return np.asarray(index.search(queries, k, scoring="asymmetric", threads=t)[1], np.int64)

        notes = {
            "bytes_per_row": lambda: index.stats().bytes_per_row,
            "stored": "code, key, id, liveness, ‖x̂‖ (IndexStats.bytes_per_row)",
        }
        return indexed, notes
    if method == LEE:

        def lee(queries: F32) -> I64:
            q = q2key.encode(queries, threshold=th, threads=t).codes
            return np.asarray(q2key.search(q, codes, k, threads=t)[1], np.int64)

        return lee, {"bytes_per_row": codes.shape[1], "stored": "codes only"}
    faiss = faiss_module(t)
    ip = faiss.METRIC_INNER_PRODUCT
    if method == RABITQ:
        index = faiss.IndexRaBitQFastScan(DIM, ip, 32, 2)
        index.train(database[:CALIBRATION_ROWS])
    else:
        index = faiss.IndexPQFastScan(DIM, DIM // 2, 4, ip)
        index.train(database[:PQ_TRAIN_ROWS])
    index.add(database)
    search, per_row = faiss_searcher(index, k, database.shape[0])
    notes = {"bytes_per_row": per_row, "stored": "faiss serialize_index size / rows", "code_size": int(index.code_size)}
    return search, notes


def measure(
    chosen: list[str],
    database: F32,
    queries: F32,
    truth: I64,
    th: Any,
    codes: npt.NDArray[np.uint8],
    args: argparse.Namespace,
) -> tuple[dict[str, Timing], dict[str, I64]]:
    """Builds every method, then times them **interleaved** — round r of each method, then round r + 1; single
    query i of each method, then query i + 1 — so load from other processes falls on all of them alike.
    Returns the figures and each method's answer to every query."""
    built: dict[str, tuple[Searcher, dict[str, Any], float]] = {}
    found: dict[str, I64] = {}
    for method in chosen:
        t0 = time.perf_counter()
        search, notes = prepare(method, database, th, codes, args)
        built[method] = (search, notes, time.perf_counter() - t0)
        found[method] = search(queries)  # warm-up, and the answer compared across methods
    rounds: dict[str, list[float]] = {m: [] for m in chosen}
    for _ in range(args.rounds):
        for method in chosen:
            t0 = time.perf_counter()
            built[method][0](queries)
            rounds[method].append(time.perf_counter() - t0)
    single: dict[str, list[float]] = {m: [] for m in chosen}
    for i in range(args.latency_queries):
        q = queries[i % queries.shape[0]][None, :]
        for method in chosen:
            t0 = time.perf_counter()
            built[method][0](q)
            single[method].append(time.perf_counter() - t0)
    timings = {}
    for method in chosen:
        _, notes, build = built[method]
        per_row = notes.pop("bytes_per_row")
        per_row = per_row() if callable(per_row) else per_row  # the index counts ‖x̂‖ once a search ran
        timings[method] = Timing(
            method=method,
            label=LABELS[method],
            build_seconds=round(build, 2),
            bytes_per_row=round(float(per_row), 2),
            queries_per_s=queries.shape[0] / statistics.median(rounds[method]),
            best_queries_per_s=queries.shape[0] / min(rounds[method]),
            round_seconds=[round(r, 4) for r in rounds[method]],
            latency_ms=1e3 * statistics.median(single[method]),
            recall=recall(found[method][: truth.shape[0]], truth),
            notes=notes,
        )
    return timings, found


def ratio(results: dict[str, Timing], a: str, b: str, best: bool = False) -> float | None:
    if a not in results or b not in results:
        return None
    if best:
        return results[a].best_queries_per_s / results[b].best_queries_per_s
    return results[a].queries_per_s / results[b].queries_per_s


def ratios(results: dict[str, Timing]) -> dict[str, float | None]:
    """Throughput ratios of q2key's asymmetric search (free function and index) to every other method."""
    out: dict[str, float | None] = {}
    for mine in (ASYM, INDEX):
        for other in (PQ, RABITQ, LEE):
            out[f"{mine}/{other}"] = ratio(results, mine, other)
            out[f"{mine}/{other} best rounds"] = ratio(results, mine, other, best=True)
    for mine in (ASYM, INDEX):
        for other in (PQ, RABITQ, LEE):
            if mine in results and other in results:
                out[f"latency {mine}/{other}"] = results[mine].latency_ms / results[other].latency_ms
    return {k: (None if v is None else round(v, 3)) for k, v in out.items()}


def check(results: dict[str, Timing], agree: bool | None) -> list[str]:
    """One message per missed target."""
    missed = []
    best = max((results[m] for m in (ASYM, INDEX) if m in results), key=lambda r: r.queries_per_s, default=None)
    if best is not None and PQ in results and best.queries_per_s < results[PQ].queries_per_s:
        missed.append(
            f"q2key asymmetric ({best.label}) {best.queries_per_s:.0f} q/s < faiss PQFastScan "
            f"{results[PQ].queries_per_s:.0f} q/s"
        )
    if agree is False:
        missed.append("asymmetric_search and Index.search returned different rows")
    return missed


def table(results: dict[str, Timing]) -> str:
    lines = [
        "| method | queries/s (median round) | best round | latency (1 query, median) | bytes / stored row "
        "| recall@k vs exact | build s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results.values():
        lines.append(
            f"| {r.label} | {r.queries_per_s:,.0f} | {r.best_queries_per_s:,.0f} | {r.latency_ms:.2f} ms "
            f"| {r.bytes_per_row:g} "
            f"| {r.recall:.3f} | {r.build_seconds:g} |"
        )
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    """CPU model and SIMD flags, q2key's backend, versions."""
    model, flags = platform.processor(), ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            info = f.read()
        model = next((ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model name")), model)
        words = next((ln.split(":", 1)[1].split() for ln in info.splitlines() if ln.startswith("flags")), [])
        flags = " ".join(w for w in words if w.startswith(("avx", "bmi")))
    except OSError:
        pass
    out: dict[str, Any] = {
        "cpu": model,
        "simd_flags": flags,
        "cpus": os.cpu_count(),
        "q2key_simd_backend": q2key.simd_backend(),
        "Q2KEY_SIMD": os.environ.get("Q2KEY_SIMD"),
        "q2key": q2key.__version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    try:
        import faiss

        out["faiss"] = faiss.__version__
        out["faiss_compile_options"] = faiss.get_compile_options()
        # The level its dynamic dispatch runs (FAISS_SIMD_LEVEL=AVX2 lowers it on an AVX-512 CPU).
        simd_config = getattr(faiss, "SIMDConfig", None)
        if simd_config is not None:
            out["faiss_simd_level"] = simd_config.get_level_name()
    except ImportError:
        pass
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="database rows (default: %(default)s)")
    ap.add_argument("--queries", type=int, default=1_000, help="queries (default: %(default)s)")
    ap.add_argument("--threads", type=int, default=2, help="threads for every method (default: %(default)s)")
    ap.add_argument("--k", type=int, default=10, help="neighbours per query (default: %(default)s)")
    ap.add_argument("--rounds", type=int, default=3, help="timed calls over all queries (default: %(default)s)")
    ap.add_argument("--latency-queries", type=int, default=200, help="single-query calls (default: %(default)s)")
    ap.add_argument("--recall-queries", type=int, default=100, help="queries checked against exact cosine")
    ap.add_argument("--source", choices=("real", "gaussian"), default="real", help="database (default: %(default)s)")
    ap.add_argument("--noise", type=float, default=0.5, help="noise norm added to real rows (default: %(default)s)")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the bundled .npz (default: %(default)s)")
    ap.add_argument("--calibration", default="lloyd_max", help="q2key.calibrate method (default: %(default)s)")
    ap.add_argument("--methods", default=",".join(ALL_METHODS), help="comma-separated subset of %(default)s")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="write every figure to this file")
    ap.add_argument("--check", action="store_true", help="exit 1 if asymmetric search is slower than PQFastScan")
    args = ap.parse_args(argv)
    chosen = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(chosen) - set(ALL_METHODS))
    if unknown:
        ap.error(f"--methods: unknown {', '.join(unknown)}; choose from {', '.join(ALL_METHODS)}")

    t0 = time.perf_counter()
    database, queries = make_data(args.source, args.rows, args.queries, args.noise, args.seed, args.data)
    th = q2key.calibrate(database[:CALIBRATION_ROWS], method=args.calibration, seed=args.seed)
    codes = q2key.encode(database, threshold=th, threads=args.threads).codes
    truth = exact_top_k(queries[: args.recall_queries], database, args.k)
    print(f"data ready in {time.perf_counter() - t0:.1f} s: {database.shape[0]:,} × {DIM}, {len(queries):,} queries")

    results, answers = measure(chosen, database, queries, truth, th, codes, args)
    agree = None
    if ASYM in answers and INDEX in answers:
        agree = bool(np.array_equal(answers[ASYM], answers[INDEX]))
    missed = check(results, agree)
    r = ratios(results)
    print()
    print(table(results))
    print()
    print("ratios (queries/s): " + ", ".join(f"{k} {v:.2f}" for k, v in r.items() if v is not None))
    if agree is not None:
        print(f"asymmetric_search and Index.search agree on every query: {agree}")
    print("targets: " + ("all met" if not missed else "; ".join(missed)))
    if args.json:
        doc = {
            "machine": machine(),
            "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "rows": int(database.shape[0]),
            "thresholds": {"kind": th.kind, "method": args.calibration},
            "methods": [asdict(t) for t in results.values()],
            "ratios": r,
            "asym_index_agree": agree,
            "targets_missed": missed,
        }
        args.json.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if args.check and missed:
        print("asym speed check failed: " + "; ".join(missed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
