"""`q2key demo`: encode the bundled WordNet/MiniLM embeddings, search them, report speed and recall."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from importlib import resources
from typing import TextIO

import numpy as np
import numpy.typing as npt

from ._calibrate import calibrate
from ._distance import search
from ._encode import encode
from ._native import simd_backend

#: Bytes of the transition key stored with every code (uint64).
KEY_BYTES = 8


@dataclass(frozen=True)
class DemoData:
    database: npt.NDArray[np.float16]
    queries: npt.NDArray[np.float16]
    gt_ids: npt.NDArray[np.int32]
    texts: list[str]
    query_texts: list[str]


def load_demo_data() -> DemoData:
    """The bundled subset: 10 000 WordNet glosses and 300 held-out queries, MiniLM 384-d, exact top-100."""
    root = resources.files("q2key") / "data"
    with (root / "wordnet-minilm-demo.npz").open("rb") as fh, np.load(fh) as z:
        arrays = {name: z[name] for name in ("database", "queries", "gt_ids")}

    def lines(name: str) -> list[str]:
        text = (root / f"wordnet-minilm-demo.{name}.jsonl").read_text(encoding="utf-8")
        return [json.loads(line) for line in text.splitlines()]

    return DemoData(
        database=arrays["database"],
        queries=arrays["queries"],
        gt_ids=arrays["gt_ids"],
        texts=lines("texts"),
        query_texts=lines("queries"),
    )


def recall_at(found: npt.NDArray[np.int64], truth: npt.NDArray[np.int32], k: int) -> float:
    """Mean over queries of |found[:, :k] ∩ truth[:, :k]| / k."""
    hits = [len(np.intersect1d(f[:k], t[:k])) for f, t in zip(found, truth)]
    return float(np.mean(hits)) / k


def rescore(
    candidates: npt.NDArray[np.int64],
    queries: npt.NDArray[np.float32],
    database: npt.NDArray[np.float32],
    k: int,
) -> npt.NDArray[np.int64]:
    """Re-rank each query's candidates by exact cosine and keep the best k."""
    cand = database[candidates]  # (Q, C, n), rows unit-normalised
    cos = np.einsum("qcn,qn->qc", cand, queries)
    order = np.argsort(-cos, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(candidates, order, axis=1)


def run(k: int = 10, threads: int | None = None, out: TextIO | None = None) -> dict[str, float]:
    """Runs the demo, prints a report to ``out`` (stdout by default) and returns its figures."""

    def say(line: str = "") -> None:
        print(line, file=out)

    data = load_demo_data()
    n_db, dim = data.database.shape
    say(f"q2key demo: {n_db} WordNet glosses, {len(data.queries)} queries, MiniLM {dim}-d (simd: {simd_backend()})")

    db32 = data.database.astype(np.float32)
    encode(db32[:1000], threads=threads)  # warm the thread pool
    start = time.perf_counter()
    enc = encode(db32, threads=threads)
    encode_s = time.perf_counter() - start
    queries = encode(data.queries, threads=threads)
    code_bytes = enc.codes.shape[1]

    start = time.perf_counter()
    _, lee_ids = search(queries.codes, enc.codes, max(k, 100), threads=threads)
    search_s = time.perf_counter() - start

    unit_db = db32 / np.linalg.norm(db32, axis=1, keepdims=True)
    q32 = data.queries.astype(np.float32)
    unit_q = q32 / np.linalg.norm(q32, axis=1, keepdims=True)
    rescored = rescore(lee_ids[:, :100], unit_q, unit_db, k)

    # Thresholds fitted to the corpus (SPEC §6) instead of the Gaussian default.
    start = time.perf_counter()
    th = calibrate(db32, method="fidelity", threads=threads)
    calibrate_s = time.perf_counter() - start
    cal_db, cal_q = encode(db32, threshold=th, threads=threads), encode(q32, threshold=th, threads=threads)
    _, cal_ids = search(cal_q.codes, cal_db.codes, max(k, 100), threads=threads)

    figures = {
        "encode_vectors_per_s": n_db / encode_s,
        "search_queries_per_s": len(data.queries) / search_s,
        # What a stored vector costs: its code and its 8-byte transition key.
        "bytes_per_vector": float(code_bytes + KEY_BYTES),
        "compression_vs_float32": dim * 4 / (code_bytes + KEY_BYTES),
        "recall_at_k": recall_at(lee_ids, data.gt_ids, k),
        "recall_at_k_rescored": recall_at(rescored, data.gt_ids, k),
        "calibrate_s": calibrate_s,
        "recall_at_k_calibrated": recall_at(cal_ids, data.gt_ids, k),
        "recall_at_k_calibrated_rescored": recall_at(rescore(cal_ids[:, :100], unit_q, unit_db, k), data.gt_ids, k),
    }
    say(f"encode:  {figures['encode_vectors_per_s']:,.0f} vectors/s ({n_db} vectors in {encode_s * 1e3:.1f} ms)")
    say(
        f"size:    {code_bytes}-byte code + {KEY_BYTES}-byte key = {code_bytes + KEY_BYTES} bytes per vector, "
        f"vs {dim * 4} bytes float32 ({figures['compression_vs_float32']:.1f}x smaller)"
    )
    say(f"search:  {figures['search_queries_per_s']:,.0f} queries/s (exact Lee top-{max(k, 100)} over {n_db} codes)")
    say()
    say("Each coordinate becomes one of four symbols A < B < C < D: A and D for large negative and")
    say("positive values, B and C for small ones; a threshold τ (or three cuts per dimension) separates")
    say("them. The Lee distance between two codes adds, per coordinate, how many steps apart their")
    say("symbols are around the cycle A-B-C-D-A (0, 1 or 2).")
    say()
    assert th.report is not None
    rows = [
        ("default τ (assumes Gaussian values)", figures["recall_at_k"], figures["recall_at_k_rescored"]),
        (
            f"calibrated: {th.report.rule}, {th.report.outer_share:.0%} in A or D",
            figures["recall_at_k_calibrated"],
            figures["recall_at_k_calibrated_rescored"],
        ),
    ]
    say(f"recall@{k} vs the exact cosine top-{k}       Lee only   top-100 by Lee, rescored by cosine")
    for label, lee_only, with_rescore in rows:
        say(f"  {label:<38}  {lee_only:.3f}      {with_rescore:.3f}")
    say(f"  (q2key.calibrate(method='fidelity') on the {n_db} database vectors took {calibrate_s:.1f} s)")

    say()
    say(f"query: {data.query_texts[0]}")
    dist, ids = search(cal_q.codes[:1], cal_db.codes, 5)
    for d, i in zip(dist[0], ids[0]):
        cos = float(unit_db[i] @ unit_q[0])
        say(f"  lee {int(d):3d}  cos {cos:.3f}  {data.texts[int(i)][:100]}")
    return figures
