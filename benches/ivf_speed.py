"""Speed and recall of the inverted-file index (issue 13) against exhaustive search and faiss's IVF indexes.

Usage::

    python benches/ivf_speed.py [--rows N] [--queries Q] [--lists L] [--nprobe P,P,...] [--train-rows T]
                                [--threads T] [--k K] [--rounds R] [--methods NAME,...] [--out DIR]
                                [--json PATH] [--check]

Data: ``benches/ivf_data.py`` (mixtures of real all-MiniLM-L6-v2 neighbours plus noise shaped like
their spread, 384-d unit rows; the queries are the 1 000 real held-out queries; exact cosine top-10
cached beside the rows under ``--out``). q2key's thresholds: ``q2key.calibrate(20 000 rows,
method="lloyd_max", rotation=--rotation)`` (no rotation by default; ``learned`` raises the recall
of every q2key method against cosine), the same for every q2key method and for the binary codes given
to faiss.

Every IVF method gets ``--lists`` lists (default ≈ 4·√N) and **the same training sample**:
``--train-rows`` rows drawn uniformly without replacement (default 64 per list, at most N), seed 0.

Methods (float queries unless said; k = ``--k``; ``--threads`` threads everywhere, faiss through
``omp_set_num_threads``):

- ``exhaustive``: :meth:`q2key.Index.search` with ``scoring="asymmetric"`` over every row (the
  reference the issue's "recall of the exhaustive top-10" is measured against);
- ``exhaustive_lee``: the same index scored by Lee distance (``scoring="lee"``);
- ``ivf``: :class:`q2key.IVFIndex` (``IVFIndex(384, threshold=th).train(sample, lists=L)``, then ``add``),
  ``search(queries, k, nprobe=p, scoring="asymmetric")`` for every ``--nprobe`` p;
- ``ivf_lee``: the same index searched with the queries' Q² codes (Lee distance) for every p;
- ``rabitq``: faiss ``IndexIVFRaBitQ(IndexFlatIP(384), 384, L, METRIC_INNER_PRODUCT, True, 2)``
  (2-bit RaBitQ codes of the residuals, the default ``qb = 4`` query bits), trained on the same
  sample (faiss's spherical k-means, its default 10 iterations), every p;
- ``rabitq_fs``: faiss ``IndexIVFRaBitQFastScan(IndexFlatIP(384), 384, L, METRIC_INNER_PRODUCT, 32,
  True, 2)``, the same otherwise (not in the issue's targets: shown because it is faiss's faster scan);
- ``binary_ivf``: faiss ``IndexBinaryIVF(IndexBinaryFlat(768), 768, L)`` over the same Q² codes as
  q2key stores, queried with the queries' Q² codes (Hamming distance of Q² codes = Lee distance),
  trained on the codes of the same sample, every p.

Timing: every method is built first (build = train + add, timed), then all ``(method, nprobe)``
points are timed **interleaved** — round r of every point, then round r + 1 — so load from other
processes falls on all alike; queries/s = all queries in one call, by the median round. Recall@k
is given against the exact cosine top-k and against the exhaustive asymmetric top-k.

Targets (issue 13), checked by ``--check`` (exit 1 and a one-line message per miss):

1. at recall ≥ 0.95 of the exhaustive asymmetric top-10, ``ivf`` answers ≥ 20× the exhaustive
   queries/s (the q/s at recall 0.95 is interpolated on the ``ivf`` curve, log q/s linear in recall);
2. at that point, ``ivf`` answers ≥ faiss ``IndexIVFRaBitQ``'s queries/s at the same recall against
   exact cosine (interpolated on faiss's curve the same way; if faiss never reaches that recall the
   target is met, if its fastest point is already above it, that point's q/s is the comparison);
3. building (train + add) takes ≤ 1.5× faiss ``IndexIVFRaBitQ``'s train + add.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import numpy.typing as npt

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # benches/ is not a package

import ivf_data  # noqa: E402
import q2key  # noqa: E402
from asym_speed import machine  # noqa: E402

DIM = ivf_data.DIM
#: Rows the thresholds are fitted on.
CALIBRATION_ROWS = 20_000
EXHAUSTIVE, EXHAUSTIVE_LEE, IVF, IVF_LEE = "exhaustive", "exhaustive_lee", "ivf", "ivf_lee"
RABITQ, RABITQ_FS, BINARY_IVF = "rabitq", "rabitq_fs", "binary_ivf"
ALL_METHODS = (EXHAUSTIVE, EXHAUSTIVE_LEE, IVF, IVF_LEE, RABITQ, RABITQ_FS, BINARY_IVF)
SWEPT = (IVF, IVF_LEE, RABITQ, RABITQ_FS, BINARY_IVF)
LABELS = {
    EXHAUSTIVE: "q2key Index, asymmetric (exhaustive)",
    EXHAUSTIVE_LEE: "q2key Index, Lee (exhaustive)",
    IVF: "q2key IVFIndex, asymmetric",
    IVF_LEE: "q2key IVFIndex, Lee (code queries)",
    RABITQ: "faiss IndexIVFRaBitQ 2-bit",
    RABITQ_FS: "faiss IndexIVFRaBitQFastScan 2-bit",
    BINARY_IVF: "faiss IndexBinaryIVF on Q² codes",
}
TARGET_RECALL = 0.95
TARGET_SPEEDUP = 20.0
TARGET_BUILD = 1.5

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
#: A built method: search(queries, nprobe) → ids (Q, k); nprobe is None for exhaustive methods.
Searcher = Callable[[Any, "int | None"], I64]


@dataclass
class Point:
    """One (method, nprobe) point of the curve."""

    method: str
    nprobe: int | None
    queries_per_s: float
    best_queries_per_s: float
    round_seconds: list[float]
    recall_cosine: float
    recall_exhaustive: float | None


@dataclass
class Built:
    method: str
    label: str
    build_seconds: float
    train_seconds: float
    add_seconds: float
    notes: dict[str, Any] = field(default_factory=dict)


def recall(found: npt.NDArray[Any], truth: npt.NDArray[Any]) -> float:
    """Mean share of each truth row found in the same query's answer."""
    k = truth.shape[1]
    hits = (np.asarray(found, np.int64)[:, :k, None] == np.asarray(truth, np.int64)[:, None, :]).any(axis=2)
    return float(hits.sum() / truth.size)


def default_lists(rows: int) -> int:
    """≈ 4·√N lists, as the issue suggests."""
    return max(1, round(4 * math.sqrt(rows)))


def training_sample(rows: int, size: int, seed: int) -> npt.NDArray[np.intp]:
    """Sorted row numbers of the shared training sample (uniform, without replacement)."""
    return np.sort(np.random.default_rng(seed).choice(rows, size=min(size, rows), replace=False))


def faiss_module(threads: int) -> Any:
    import faiss

    faiss.omp_set_num_threads(threads)
    return faiss


def build(
    method: str,
    database: F32,
    sample: F32,
    th: Any,
    codes: npt.NDArray[np.uint8],
    sample_codes: npt.NDArray[np.uint8],
    args: argparse.Namespace,
    cache: dict[str, Any],
) -> tuple[Searcher, Built]:
    """Builds one method (timed: train, add) and returns its search."""
    k, t, lists = args.k, args.threads, args.lists
    notes: dict[str, Any] = {}
    t0 = time.perf_counter()
    if method in (EXHAUSTIVE, EXHAUSTIVE_LEE):
        index = q2key.Index(DIM, threshold=th)
        t1 = time.perf_counter()
        index.add(database, threads=t)
        scoring = "asymmetric" if method == EXHAUSTIVE else "lee"

        def exhaustive(queries: Any, nprobe: int | None) -> I64:
            return np.asarray(index.search(queries, k, scoring=scoring, threads=t)[1], np.int64)

        search: Searcher = exhaustive
        notes["bytes_per_row"] = index.stats().bytes_per_row
    elif method in (IVF, IVF_LEE):
        if "ivf" in cache:  # ivf and ivf_lee search one index; its build is timed once
            ivf, (t0, t1) = cache["ivf"], cache["ivf_times"]
        else:
            ivf = q2key.IVFIndex(DIM, threshold=th)
            per_list = -(-sample.shape[0] // lists)  # k-means on the whole shared sample
            ivf.train(sample, lists=lists, points_per_list=per_list, seed=args.seed, threads=t)
            t1 = time.perf_counter()
            ivf.add(database, threads=t)
            cache["ivf"], cache["ivf_times"] = ivf, (t0, t1)
        stats = ivf.stats()
        notes.update(bytes_per_row=round(stats.bytes_per_row, 1), imbalance=round(stats.imbalance, 3))
        notes["largest_list"] = stats.max_list
        lee = method == IVF_LEE

        def inverted(queries: Any, nprobe: int | None) -> I64:
            if lee:
                q = q2key.encode(queries, threshold=th, threads=t).codes
                return np.asarray(ivf.search(q, k, nprobe=nprobe, threads=t)[1], np.int64)
            return np.asarray(ivf.search(queries, k, nprobe=nprobe, scoring="asymmetric", threads=t)[1], np.int64)

        search = inverted
    else:
        faiss = faiss_module(t)
        if method == BINARY_IVF:
            index = faiss.IndexBinaryIVF(faiss.IndexBinaryFlat(8 * codes.shape[1]), 8 * codes.shape[1], lists)
            index.train(sample_codes)
            t1 = time.perf_counter()
            index.add(codes)
        else:
            quantizer = faiss.IndexFlatIP(DIM)
            ip = faiss.METRIC_INNER_PRODUCT
            if method == RABITQ:
                index = faiss.IndexIVFRaBitQ(quantizer, DIM, lists, ip, True, 2)
            else:
                index = faiss.IndexIVFRaBitQFastScan(quantizer, DIM, lists, ip, 32, True, 2)
            index.cp.seed = args.seed
            index.train(sample)
            t1 = time.perf_counter()
            index.add(database)
            notes["qb"] = int(index.qb)
            notes["code_size"] = int(index.code_size)

        def flat(queries: Any, nprobe: int | None) -> I64:
            index.nprobe = int(nprobe or 1)
            q = q2key.encode(queries, threshold=th, threads=t).codes if method == BINARY_IVF else queries
            return np.asarray(index.search(q, k)[1], np.int64)

        search = flat
    t2 = time.perf_counter() if "ivf_end" not in cache or method not in (IVF, IVF_LEE) else cache["ivf_end"]
    if method in (IVF, IVF_LEE):
        cache.setdefault("ivf_end", t2)
    built = Built(method, LABELS[method], round(t2 - t0, 2), round(t1 - t0, 2), round(t2 - t1, 2), notes)
    return search, built


def measure(chosen: list[str], data: dict[str, Any], args: argparse.Namespace) -> tuple[dict[str, Built], list[Point]]:
    """Builds every method, then times every (method, nprobe) point interleaved."""
    searchers: dict[str, Searcher] = {}
    built: dict[str, Built] = {}
    cache: dict[str, Any] = {}
    for method in chosen:
        searchers[method], built[method] = build(
            method, data["database"], data["sample"], data["th"], data["codes"], data["sample_codes"], args, cache
        )
        print(f"  built {method} in {built[method].build_seconds:.1f} s", flush=True)
    queries, truth = data["queries"], data["truth"]
    points = [(m, p) for m in chosen for p in (args.nprobe if m in SWEPT else [None])]
    answers = {pt: searchers[pt[0]](queries, pt[1]) for pt in points}  # warm-up, and the answers
    reference = answers.get((EXHAUSTIVE, None))
    rounds: dict[tuple[str, int | None], list[float]] = {pt: [] for pt in points}
    for _ in range(args.rounds):
        for pt in points:
            t0 = time.perf_counter()
            searchers[pt[0]](queries, pt[1])
            rounds[pt].append(time.perf_counter() - t0)
    out = []
    for pt in points:
        found = answers[pt]
        out.append(
            Point(
                method=pt[0],
                nprobe=pt[1],
                queries_per_s=round(queries.shape[0] / statistics.median(rounds[pt]), 1),
                best_queries_per_s=round(queries.shape[0] / min(rounds[pt]), 1),
                round_seconds=[round(r, 4) for r in rounds[pt]],
                recall_cosine=round(recall(found, truth), 4),
                recall_exhaustive=None if reference is None else round(recall(found, reference), 4),
            )
        )
    return built, out


def qps_at(points: list[Point], method: str, want: float, by: str) -> tuple[float | None, str]:
    """Queries/s of ``method`` at recall ``want`` (``by`` = ``"recall_cosine"`` or ``"recall_exhaustive"``),
    interpolated with log q/s linear in recall between the two points around it, and how it was found."""
    curve = sorted(
        ((getattr(p, by), p.queries_per_s) for p in points if p.method == method and getattr(p, by) is not None),
        key=lambda c: (c[0], -c[1]),
    )
    if not curve:
        return None, "not measured"
    if want > curve[-1][0]:
        return None, f"never reaches {want:.3f} (best {curve[-1][0]:.3f})"
    if want <= curve[0][0]:
        return curve[0][1], f"its lowest-recall point ({curve[0][0]:.3f}) is already above"
    for (r0, q0), (r1, q1) in zip(curve, curve[1:]):
        if r0 <= want <= r1:
            if r1 == r0:
                return max(q0, q1), "measured"
            f = (want - r0) / (r1 - r0)
            return math.exp(math.log(q0) + f * (math.log(q1) - math.log(q0))), "interpolated"
    return None, "no bracket"  # unreachable: the curve is sorted


def paired_speedup(slow: Point, fast: Point) -> float | None:
    """Median over rounds of ``slow``'s round time over ``fast``'s in the same round (the rounds run
    interleaved, so each ratio cancels the machine's drift between rounds; a shared VM's medians of
    separate rounds can differ by more than the effect)."""
    pairs = [a / b for a, b in zip(slow.round_seconds, fast.round_seconds) if b > 0]
    return round(statistics.median(pairs), 2) if pairs else None


def targets(built: dict[str, Built], points: list[Point]) -> tuple[dict[str, Any], list[str]]:
    """The issue's three targets as ratios, and one message per missed target."""
    out: dict[str, Any] = {}
    missed: list[str] = []
    exhaustive = next((p for p in points if p.method == EXHAUSTIVE), None)
    ivf_qps, how = qps_at(points, IVF, TARGET_RECALL, "recall_exhaustive")
    out["ivf_qps_at_0.95_of_exhaustive"] = None if ivf_qps is None else round(ivf_qps, 1)
    out["ivf_qps_at_0.95_how"] = how
    if exhaustive is not None and ivf_qps is not None:
        speedup = ivf_qps / exhaustive.queries_per_s
        out["speedup_over_exhaustive"] = round(speedup, 2)
        if speedup < TARGET_SPEEDUP:
            missed.append(f"ivf at recall {TARGET_RECALL} of exhaustive: {speedup:.1f}× exhaustive q/s < 20×")
    elif IVF in built and exhaustive is not None:
        missed.append(f"ivf: {how}")
    # The q2key point at TARGET_RECALL of exhaustive: its recall against cosine, interpolated the same way.
    ivf_pts = sorted((p for p in points if p.method == IVF and p.recall_exhaustive is not None), key=lambda p: p.nprobe)
    at = next((p for p in ivf_pts if p.recall_exhaustive is not None and p.recall_exhaustive >= TARGET_RECALL), None)
    if at is not None and exhaustive is not None:
        out["speedup_paired_at_operating_point"] = paired_speedup(exhaustive, at)
    if at is not None and RABITQ in built:
        faiss_qps, fhow = qps_at(points, RABITQ, at.recall_cosine, "recall_cosine")
        out["operating_point"] = {"nprobe": at.nprobe, "recall_cosine": at.recall_cosine, "q/s": at.queries_per_s}
        out["rabitq_qps_at_equal_recall"] = None if faiss_qps is None else round(faiss_qps, 1)
        out["rabitq_how"] = fhow
        if faiss_qps is not None:
            ratio = at.queries_per_s / faiss_qps
            out["ivf_over_rabitq_at_equal_recall"] = round(ratio, 2)
            if ratio < 1:
                missed.append(
                    f"ivf nprobe={at.nprobe} (recall {at.recall_cosine:.3f} vs cosine) {at.queries_per_s:.0f} q/s "
                    f"< faiss IVFRaBitQ {faiss_qps:.0f} q/s at that recall"
                )
    if IVF in built and RABITQ in built:
        ratio = built[IVF].build_seconds / built[RABITQ].build_seconds
        out["build_over_rabitq"] = round(ratio, 2)
        if ratio > TARGET_BUILD:
            missed.append(
                f"build {built[IVF].build_seconds:.1f} s = {ratio:.2f}× faiss IVFRaBitQ's "
                f"{built[RABITQ].build_seconds:.1f} s > {TARGET_BUILD}×"
            )
    return out, missed


def table(built: dict[str, Built], points: list[Point]) -> str:
    lines = [
        "| method | nprobe | q/s (median) | best | recall@k vs cosine | vs exhaustive asym |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for p in points:
        rx = "" if p.recall_exhaustive is None else f"{p.recall_exhaustive:.3f}"
        np_ = "all" if p.nprobe is None else str(p.nprobe)
        lines.append(
            f"| {LABELS[p.method]} | {np_} | {p.queries_per_s:,.0f} | {p.best_queries_per_s:,.0f} "
            f"| {p.recall_cosine:.3f} | {rx} |"
        )
    lines += ["", "| method | build s (train + add) | train s | add s | notes |", "|---|---:|---:|---:|---|"]
    for b in built.values():
        notes = ", ".join(f"{k} {v}" for k, v in b.notes.items())
        lines.append(f"| {b.label} | {b.build_seconds:g} | {b.train_seconds:g} | {b.add_seconds:g} | {notes} |")
    return "\n".join(lines)


def prepare(args: argparse.Namespace) -> dict[str, Any]:
    """The dataset in memory, the shared training sample, thresholds and codes."""
    ds = ivf_data.dataset(args.rows, args.out, seed=args.seed, data=args.data, log=print)
    database = np.ascontiguousarray(ds.database, dtype=np.float32)
    queries = np.ascontiguousarray(ds.queries[: args.queries])
    sample = database[training_sample(database.shape[0], args.train_rows, args.seed)]
    t0 = time.perf_counter()
    th = q2key.calibrate(database[:CALIBRATION_ROWS], method=args.calibration, rotation=args.rotation, seed=args.seed)
    calibrate_s = time.perf_counter() - t0
    codes = q2key.encode(database, threshold=th, threads=args.threads).codes
    return {
        "dataset": ds,
        "database": database,
        "queries": queries,
        "truth": ds.truth[: args.queries, : args.k],
        "sample": sample,
        "sample_codes": q2key.encode(sample, threshold=th, threads=args.threads).codes,
        "th": th,
        "codes": codes,
        "calibrate_seconds": round(calibrate_s, 2),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="database rows (default: %(default)s)")
    ap.add_argument("--queries", type=int, default=1_000, help="queries, at most 1 000 (default: %(default)s)")
    ap.add_argument("--lists", type=int, help="lists of every IVF method (default: ≈ 4·√rows)")
    ap.add_argument("--nprobe", default="1,2,4,8,16,32,64,128", help="nprobe values swept (default: %(default)s)")
    ap.add_argument("--train-rows", type=int, help="rows of the shared training sample (default: 64 per list)")
    ap.add_argument("--threads", type=int, default=2, help="threads for every method (default: %(default)s)")
    ap.add_argument("--k", type=int, default=10, help="neighbours per query, at most 10 (default: %(default)s)")
    ap.add_argument("--rounds", type=int, default=3, help="timed calls per point (default: %(default)s)")
    ap.add_argument("--calibration", default="lloyd_max", help="q2key.calibrate method (default: %(default)s)")
    ap.add_argument("--rotation", choices=("random", "learned"), help="q2key.calibrate rotation (default: none)")
    ap.add_argument("--methods", default=",".join(ALL_METHODS), help="comma-separated subset of %(default)s")
    ap.add_argument("--out", type=Path, default=ivf_data.DEFAULT_OUT, help="data cache (default: %(default)s)")
    ap.add_argument("--data", type=Path, default=ivf_data.DEFAULT_DATA, help="the bundled .npz")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="write every figure to this file")
    ap.add_argument("--check", action="store_true", help="exit 1 if a target of issue 13 is missed")
    args = ap.parse_args(argv)
    chosen = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(chosen) - set(ALL_METHODS))
    if unknown:
        ap.error(f"--methods: unknown {', '.join(unknown)}; choose from {', '.join(ALL_METHODS)}")
    if args.k > ivf_data.K:
        ap.error(f"--k: the cached ground truth holds the top {ivf_data.K}")
    args.nprobe = sorted({int(p) for p in args.nprobe.split(",") if p.strip()})
    args.lists = args.lists or default_lists(args.rows)
    args.nprobe = [p for p in args.nprobe if p <= args.lists] or [args.lists]
    args.train_rows = args.train_rows or 64 * args.lists

    t0 = time.perf_counter()
    data = prepare(args)
    print(
        f"data ready in {time.perf_counter() - t0:.1f} s: {data['database'].shape[0]:,} × {DIM}, "
        f"{data['queries'].shape[0]:,} queries, {args.lists} lists, training sample {data['sample'].shape[0]:,} rows"
    )
    built, points = measure(chosen, data, args)
    summary, missed = targets(built, points)
    print()
    print(table(built, points))
    print()
    print("targets: " + json.dumps(summary, ensure_ascii=False))
    print("missed: " + ("none" if not missed else "; ".join(missed)))
    if args.json:
        doc = {
            "machine": machine(),
            "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "data": data["dataset"].meta,
            "thresholds": {"kind": data["th"].kind, "method": args.calibration, "rotation": args.rotation},
            "calibrate_seconds": data["calibrate_seconds"],
            "built": [asdict(b) for b in built.values()],
            "points": [asdict(p) for p in points],
            "targets": summary,
            "targets_missed": missed,
        }
        args.json.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if args.check and missed:
        print("ivf speed check failed: " + "; ".join(missed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
