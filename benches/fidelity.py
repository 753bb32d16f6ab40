"""Fidelity of Q² codes against exact cosine neighbours on real embeddings (issue 3).

Usage::

    python benches/fidelity.py [--data PATH] [--out-dir DIR] [--check]

Loads ``data/wordnet-minilm-dev.npz`` (20 000 database rows and 1 000 held-out queries of
all-MiniLM-L6-v2, n = 384, with the exact cosine top-100 of every query), encodes both sides
with every method, searches the database by each method's code distance and measures

- recall@10 and recall@100 of the code-distance ranking against the exact cosine top-10/100;
- recall@10 after rescoring: the top 100 by code distance re-ranked by exact float32 cosine
  (rescoring only re-orders the 100 candidates, so recall@100 is the same with or without it);
- the rescoring curve: recall@10 after rescoring the top R candidates, R in ``RESCORE_DEPTHS``.

Methods, every calibration fitted on the database:

- **Q² Lee**: the Gaussian τ and each :func:`q2key.calibrate` method; queries encoded, Lee
  distance (:func:`q2key.search`); 96 bytes at n = 384.
- **Q² asymmetric**: the same thresholds (the Gaussian one with its analytic table, the
  calibrated ones with the table fitted to the database); float queries scored against the
  codes' reconstruction (:func:`q2key.asymmetric_search`, SPEC §8); 96 code bytes + the row's
  4-byte ‖x̂‖ = 100 bytes.
- **Q² asymmetric, rotated**: ``calibrate(database, method="lloyd_max", rotation=...)``, thresholds
  carrying an orthogonal rotation ``R`` (``n × n``, applied to the normalised rows before
  quantising, to the queries before scoring): a Haar-random one, and one learned on the database
  (ITQ-style: alternate the Lloyd–Max fit and the orthogonal Procrustes rotation that best maps
  the rows onto their reconstructions).
  A rotation keeps every cosine, so the ground truth is unchanged; it is stored once per index
  (``n²`` float32), not per vector: 100 bytes a vector, as unrotated.
- **Q² Lee → asymmetric re-rank**: the Lee top-200, re-ranked by asymmetric score from the
  codes alone (:func:`q2key.rerank`; the two-stage path for callers with codes only); 100 bytes.
- the 2-bit thermometer code at 96 bytes, by Hamming (= level L1) distance and asymmetrically
  (float query against the decoded levels, 100 bytes); 1-bit sign codes (48 bytes); int8 scalar
  quantization (384 bytes); faiss's RaBitQ (2-bit, plain, behind a random rotation and fast-scan), PQFastScan 192×4 and
  4-bit scalar quantization when faiss is installed; exact float32 cosine as a control (1 536 bytes).

Baselines are defined in ``fidelity_baselines.py`` and ``fidelity_faiss.py``. Hamming and Lee
searches use :func:`q2key.search` (popcount of XOR, exact, ties to the lower row).

Prints a Markdown table and writes ``fidelity.json`` and ``fidelity.png`` (if matplotlib is
installed) to ``--out-dir`` (default: this directory). ``--check`` exits 1 with a one-line
message when a target is missed: the best Q² asymmetric method's codes-only recall@10 must be
at least plain faiss ``IndexRaBitQ`` 2-bit's in the same run, at ≤ 100 bytes a vector (rotated
rows count), and its recall@10 after rescoring its top 100 with float vectors at least 0.995.
The moonshot (``MOONSHOT_MARGIN`` above RaBitQ) is reported, not checked.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import numpy.typing as npt
import q2key

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fidelity_baselines as fb  # sibling modules: importable however this file is run
import fidelity_faiss

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent / "data" / "wordnet-minilm-dev.npz"

#: Candidates taken by code distance before rescoring, and the k of the headline recall.
CANDIDATES = 100
K = 10
#: Candidate depths of the rescoring curve (the deepest one is the depth every method searches to).
RESCORE_DEPTHS = (10, 20, 30, 50, 100, 200)
RESCORED_TARGET = 0.995
#: Bytes a vector may take for the recall target (Q² asymmetric: 96 code bytes + a 4-byte norm).
TARGET_BYTES = 100
#: Calibrations of the Q² rows, in table order: the label and the calibrate() method (None: the Gaussian τ).
CALIBRATIONS: tuple[tuple[str, str | None], ...] = (
    ("gaussian", None),
    ("equiprobable", "equiprobable"),
    ("per_dim", "per_dim"),
    ("fidelity", "fidelity"),
    ("lloyd_max", "lloyd_max"),
)
#: Q² Lee rows: the name shown and the calibrate() method.
Q2_METHODS: tuple[tuple[str, str | None], ...] = tuple((f"Q² Lee, {label}", m) for label, m in CALIBRATIONS)
#: Q² asymmetric rows.
Q2_ASYM_METHODS: tuple[tuple[str, str | None], ...] = tuple((f"Q² asym, {label}", m) for label, m in CALIBRATIONS)
#: Rotated Q² asymmetric rows: the name shown and calibrate()'s ``rotation=`` (method lloyd_max).
Q2_ROTATED_METHODS: tuple[tuple[str, str], ...] = (
    ("Q² asym, lloyd_max + random rotation", "random"),
    ("Q² asym, lloyd_max + learned rotation", "learned"),
)
#: How far above plain RaBitQ's recall@10 the best Q² asymmetric row should be (issue 12's moonshot).
MOONSHOT_MARGIN = 0.01
#: Lee candidates re-ranked asymmetrically from the codes, and the calibrations it is run with.
RERANK_POOL = 200
Q2_RERANK_METHODS: tuple[tuple[str, str | None], ...] = tuple(
    (f"Q² Lee top-{RERANK_POOL} → asym re-rank, {m}", m) for m in ("fidelity", "lloyd_max")
)
#: Bytes of a Q² code at n = 384 and of the per-row ‖x̂‖ asymmetric scoring keeps.
NORM_BYTES = 4
THERMOMETER = "thermometer 2-bit"
THERMOMETER_ASYM = "thermometer 2-bit, asym"
SIGN = "sign 1-bit"
INT8 = "int8 SQ"
EXACT = "float32 exact"

I64 = npt.NDArray[np.int64]
F32 = npt.NDArray[np.float32]
#: A method: (unit queries, unit database, depth) -> candidate rows (Q, depth) best first, plus notes.
Ranker = Callable[[F32, F32, int], "tuple[I64, dict[str, Any]]"]


@dataclass(frozen=True)
class Dataset:
    """Unit-normalised float32 queries and database, and the exact cosine top-100 of each query."""

    database: F32
    queries: F32
    gt_ids: I64


@dataclass
class MethodResult:
    """Recall figures of one method (recalls are means over queries, in [0, 1])."""

    name: str
    family: str  # "q2" (Lee), "q2-asym" (asymmetric or re-ranked asymmetrically), "baseline" or "control"
    bytes_per_vector: int
    recall_at_10: float
    recall_at_100: float
    rescored_recall_at_10: float
    rescored_recall_at_100: float
    rescore_curve: dict[str, float]  # candidates R -> recall@10 after rescoring the top R
    seconds: float  # fit + encode + search, for orientation only
    notes: dict[str, Any] = field(default_factory=dict)


def load_dataset(path: Path) -> Dataset:
    """The benchmark arrays from the npz file, float16 → float32, rows L2-normalised."""
    with np.load(path) as z:
        return Dataset(
            database=fb.unit_rows(z["database"]),
            queries=fb.unit_rows(z["queries"]),
            gt_ids=np.asarray(z["gt_ids"], dtype=np.int64),
        )


def recall_at(found: I64, truth: I64, k: int) -> float:
    """Mean over queries of |found[:, :k] ∩ truth[:, :k]| / k (rows of distinct ids)."""
    hits = (found[:, :k, None] == truth[:, None, :k]).any(axis=2)
    return float(hits.sum() / (truth.shape[0] * k))


class Calibrations:
    """``q2key.calibrate(database, method=…)`` once per method and database, shared by the rows that use it."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._fitted: dict[tuple[int, str | None, str | None], tuple[Any, dict[str, Any], float]] = {}

    def get(self, database: F32, method: str | None, rotation: str | None = None) -> tuple[Any, dict[str, Any], float]:
        """(thresholds, notes, seconds the fit took); ``None``: the Gaussian τ with its analytic table."""
        key = (id(database), method, rotation)
        if key not in self._fitted:
            t0 = time.perf_counter()
            if method is None:
                th: Any = q2key.Thresholds.gaussian(database.shape[1])
                notes: dict[str, Any] = {"threshold": "gaussian", "tau": q2key.gaussian_threshold(database.shape[1])}
            else:
                th = q2key.calibrate(database, method=method, rotation=rotation, seed=self.seed)
                notes = calibration_notes(th)
            self._fitted[key] = (th, notes, time.perf_counter() - t0)
        th, notes, seconds = self._fitted[key]
        return th, dict(notes), seconds


def q2_ranker(method: str | None, fits: Calibrations) -> Ranker:
    """A Q² Lee method: thresholds from ``q2key.calibrate(database, method=...)`` (None: Gaussian τ), Lee search."""

    def rank(queries: F32, database: F32, depth: int) -> tuple[I64, dict[str, Any]]:
        th, notes, _ = fits.get(database, method)
        db_codes = q2key.encode(database, threshold=th).codes
        q_codes = q2key.encode(queries, threshold=th).codes
        _, idx = q2key.search(q_codes, db_codes, depth)
        notes["bytes"] = int(db_codes.shape[1])
        return idx, notes

    return rank


def q2_asym_ranker(method: str | None, fits: Calibrations, rotation: str | None = None) -> Ranker:
    """A Q² asymmetric method: the same thresholds and their table (and ``rotation``, when given); float queries
    against the database codes."""

    def rank(queries: F32, database: F32, depth: int) -> tuple[I64, dict[str, Any]]:
        th, notes, _ = fits.get(database, method, rotation)
        db_codes = q2key.encode(database, threshold=th).codes
        _, idx = q2key.asymmetric_search(queries, db_codes, depth, threshold=th)
        notes["table"] = "fitted" if th.reconstruction is not None else "gaussian (analytic)"
        notes["bytes"] = int(db_codes.shape[1]) + NORM_BYTES
        return np.asarray(idx, dtype=np.int64), notes

    return rank


def q2_rerank_ranker(method: str | None, fits: Calibrations) -> Ranker:
    """Q² Lee's top ``RERANK_POOL`` re-ranked by asymmetric score from the database codes alone."""

    def rank(queries: F32, database: F32, depth: int) -> tuple[I64, dict[str, Any]]:
        th, notes, _ = fits.get(database, method)
        db_codes = q2key.encode(database, threshold=th).codes
        _, lee = q2key.search(q2key.encode(queries, threshold=th).codes, db_codes, max(depth, RERANK_POOL))
        _, idx = q2key.rerank(queries, db_codes, lee[:, :RERANK_POOL], depth, threshold=th)
        notes["pool"] = RERANK_POOL
        notes["bytes"] = int(db_codes.shape[1]) + NORM_BYTES
        return np.asarray(idx, dtype=np.int64), notes

    return rank


def calibration_notes(th: Any) -> dict[str, Any]:
    """What a calibrated :class:`q2key.Thresholds` says about itself, as JSON-ready values."""
    report = getattr(th, "report", None)
    notes: dict[str, Any] = {"threshold": getattr(th, "kind", str(th))}
    if getattr(th, "tau", None) is not None:
        notes["tau"] = float(th.tau)
    if report is not None:
        if report.rotation is not None:
            notes["rotation"] = report.rotation
            notes["rotation_errors"] = [float(f"{e:.4g}") for e in report.rotation_errors]
        notes["symbol_shares"] = [round(float(f), 4) for f in report.frequencies]
        notes["entropy_bits"] = round(float(report.entropy_bits), 4)
        for name in ("rule", "outer_share", "recall"):
            value = getattr(report, name, None)
            if value is not None:
                notes[name] = value if isinstance(value, str) else round(float(value), 4)
    return notes


def hamming_ranker(encode: Callable[[F32, F32], tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]]) -> Ranker:
    """A bit-code method searched by Hamming distance with :func:`q2key.search`."""

    def rank(queries: F32, database: F32, depth: int) -> tuple[I64, dict[str, Any]]:
        q_codes, db_codes = encode(queries, database)
        _, idx = q2key.search(q_codes, db_codes, depth)
        return idx, {"bytes": int(db_codes.shape[1])}

    return rank


def sign_pair(queries: F32, database: F32) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """Sign codes of both sides."""
    return fb.sign_codes(queries), fb.sign_codes(database)


def thermometer_pair(queries: F32, database: F32) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """Thermometer codes of both sides, the cuts fitted on the database."""
    th = fb.Thermometer.fit(database)
    return th.encode(queries), th.encode(database)


def thermometer_asym_rank(queries: F32, database: F32, depth: int) -> tuple[I64, dict[str, Any]]:
    """The thermometer scored asymmetrically: cosine of the float query with the decoded database levels."""
    th = fb.Thermometer.fit(database)
    decoded = th.decode(th.levels(database), th.level_means(database))
    idx = fb.cosine_top_k(queries, fb.unit_rows(decoded), depth)
    return idx, {"bytes": int(th.encode(database[:1]).shape[1]) + NORM_BYTES}


def int8_rank(queries: F32, database: F32, depth: int) -> tuple[I64, dict[str, Any]]:
    """int8 scalar quantization: cosine of the decoded (symmetric) vectors, brute force."""
    sq = fb.Int8Quantizer.fit(database)
    idx = fb.cosine_top_k(sq.reconstruct(queries), sq.reconstruct(database), depth)
    return idx, {"bytes": int(sq.encode(database[:1]).shape[1])}


def exact_rank(queries: F32, database: F32, depth: int) -> tuple[I64, dict[str, Any]]:
    """The control: exact float32 cosine, which should reproduce the ground truth."""
    return fb.cosine_top_k(queries, database, depth), {"bytes": 4 * database.shape[1]}


def methods(seed: int = 0) -> list[tuple[str, str, Ranker]]:
    """Every method as (name, family, ranker), in table order."""
    fits = Calibrations(seed)
    out: list[tuple[str, str, Ranker]] = [(name, "q2", q2_ranker(m, fits)) for name, m in Q2_METHODS]
    out += [(name, "q2-asym", q2_asym_ranker(m, fits)) for name, m in Q2_ASYM_METHODS]
    out += [(name, "q2-asym", q2_asym_ranker("lloyd_max", fits, rot)) for name, rot in Q2_ROTATED_METHODS]
    out += [(name, "q2-asym", q2_rerank_ranker(m, fits)) for name, m in Q2_RERANK_METHODS]
    out += [
        (THERMOMETER, "baseline", hamming_ranker(thermometer_pair)),
        (THERMOMETER_ASYM, "baseline", thermometer_asym_rank),
        (SIGN, "baseline", hamming_ranker(sign_pair)),
        (INT8, "baseline", int8_rank),
    ]
    out += fidelity_faiss.rankers()
    out.append((EXACT, "control", exact_rank))
    return out


def evaluate(
    name: str, family: str, ranker: Ranker, data: Dataset, depths: tuple[int, ...] = RESCORE_DEPTHS
) -> MethodResult:
    """Runs one method to the deepest rescoring depth and measures every recall."""
    t0 = time.perf_counter()
    candidates, notes = ranker(data.queries, data.database, max(depths))
    seconds = time.perf_counter() - t0
    # One similarity per candidate at the deepest depth; every shallower depth re-ranks a prefix of it.
    sims = fb.candidate_similarities(data.queries, data.database, candidates)
    rescored = fb.rerank(candidates[:, :CANDIDATES], sims[:, :CANDIDATES], CANDIDATES)
    curve = {str(r): recall_at(fb.rerank(candidates[:, :r], sims[:, :r], K), data.gt_ids, K) for r in depths}
    return MethodResult(
        name=name,
        family=family,
        bytes_per_vector=int(notes.pop("bytes")),
        recall_at_10=recall_at(candidates, data.gt_ids, K),
        recall_at_100=recall_at(candidates, data.gt_ids, CANDIDATES),
        rescored_recall_at_10=recall_at(rescored, data.gt_ids, K),
        rescored_recall_at_100=recall_at(rescored, data.gt_ids, CANDIDATES),
        rescore_curve=curve,
        seconds=round(seconds, 3),
        notes=notes,
    )


def run(data: Dataset, seed: int = 0, depths: tuple[int, ...] = RESCORE_DEPTHS) -> list[MethodResult]:
    """Every method on ``data``, in table order."""
    return [evaluate(name, family, ranker, data, depths) for name, family, ranker in methods(seed)]


#: Shares of values in A ∪ D that ``--sweep`` tries with each rule (0.5 = equiprobable).
SWEEP_SHARES = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5)


def share_sweep(data: Dataset, shares: tuple[float, ...] = SWEEP_SHARES) -> list[dict[str, Any]]:
    """Q² recall with fixed outer shares, measured on the evaluation queries themselves.

    A diagnostic, not a calibration: picking the share by these figures would tune on the test
    set. It bounds what any choice of global or per-dimension quantile thresholds can reach.
    """
    rows = []
    for method, rule in (("equiprobable", "global"), ("per_dim", "per_dim")):
        for share in shares:
            th = q2key.calibrate(data.database, method=method, outer_share=share)
            q_codes = q2key.encode(data.queries, threshold=th).codes
            _, idx = q2key.search(q_codes, q2key.encode(data.database, threshold=th).codes, CANDIDATES)
            rescored = fb.rescore(data.queries, data.database, idx, K)
            rows.append(
                {
                    "rule": rule,
                    "outer_share": share,
                    "recall_at_10": recall_at(idx, data.gt_ids, K),
                    "recall_at_100": recall_at(idx, data.gt_ids, CANDIDATES),
                    "rescored_recall_at_10": recall_at(rescored, data.gt_ids, K),
                }
            )
    return rows


def sweep_table(rows: list[dict[str, Any]]) -> str:
    """The sweep as a Markdown table: one row per outer share, recall@10 (rescored) per rule."""
    shares = sorted({r["outer_share"] for r in rows})
    cell = {(r["rule"], r["outer_share"]): r for r in rows}
    lines = [
        f"| share in A ∪ D | global τ: recall@{K} | rescored | per-dimension cuts: recall@{K} | rescored |",
        "|---:|---:|---:|---:|---:|",
    ]
    for s in shares:
        g, d = cell[("global", s)], cell[("per_dim", s)]
        lines.append(
            f"| {s:.2f} | {g['recall_at_10']:.3f} | {g['rescored_recall_at_10']:.3f} "
            f"| {d['recall_at_10']:.3f} | {d['rescored_recall_at_10']:.3f} |"
        )
    return "\n".join(lines)


def best_q2(results: list[MethodResult], family: str = "q2-asym") -> MethodResult:
    """The Q² method of ``family`` (asymmetric by default; ``"q2"``: Lee) with the highest recall@10, within
    ``TARGET_BYTES`` (the first of equals)."""
    q2 = [r for r in results if r.family == family and r.bytes_per_vector <= TARGET_BYTES]
    return max(q2, key=lambda r: r.recall_at_10)


def rabitq(results: list[MethodResult]) -> MethodResult | None:
    """faiss ``IndexRaBitQ`` 2-bit's result (None without faiss ≥ 1.13)."""
    return next((r for r in results if r.name == fidelity_faiss.RABITQ_2BIT), None)


def check_targets(results: list[MethodResult]) -> list[str]:
    """One message per missed target (empty when both are met)."""
    best = best_q2(results)
    missed = []
    ref = rabitq(results)
    if ref is not None and best.recall_at_10 < ref.recall_at_10:
        missed.append(
            f"best Q² asymmetric ({best.name}, {best.bytes_per_vector} B) recall@{K} {best.recall_at_10:.4f} < "
            f"{ref.name}'s {ref.recall_at_10:.4f}"
        )
    if best.rescored_recall_at_10 < RESCORED_TARGET:
        missed.append(
            f"best Q² asymmetric ({best.name}) rescored recall@{K} {best.rescored_recall_at_10:.4f} < {RESCORED_TARGET}"
        )
    return missed


def thousands(n: int) -> str:
    """``n`` with a space between groups of three digits (the README's style)."""
    return f"{n:,}".replace(",", " ")


def target_summary(results: list[MethodResult]) -> str:
    """One line: each target, the figures it compares and whether it is met."""
    best = best_q2(results)
    ref = rabitq(results)
    first = (
        "no faiss RaBitQ to compare with"
        if ref is None
        else f"{best.recall_at_10:.3f} vs {ref.recall_at_10:.3f} ({ref.bytes_per_vector} B), "
        + ("met" if best.recall_at_10 >= ref.recall_at_10 else "missed")
    )
    second = "met" if best.rescored_recall_at_10 >= RESCORED_TARGET else "missed"
    moon = moonshot(results)
    third = "" if moon is None else f" (moonshot +{MOONSHOT_MARGIN}: {moon[0]:+.4f}, {'met' if moon[1] else 'missed'})"
    return (
        f"Targets — best Q² asymmetric ({best.name}, {best.bytes_per_vector} B) recall@{K} ≥ faiss RaBitQ 2-bit's: "
        f"{first}{third};  rescored recall@{K} ≥ {RESCORED_TARGET}: {best.rescored_recall_at_10:.3f}, {second}"
    )


def moonshot(results: list[MethodResult]) -> tuple[float, bool] | None:
    """(best Q² asymmetric recall@10 − plain RaBitQ 2-bit's, whether that is ≥ ``MOONSHOT_MARGIN``); None
    without faiss. Reported, never checked."""
    ref = rabitq(results)
    if ref is None:
        return None
    margin = best_q2(results).recall_at_10 - ref.recall_at_10
    # The recalls are multiples of 1/(queries·k): compare with a rounding error's slack.
    return margin, margin >= MOONSHOT_MARGIN - 1e-9


def markdown_table(results: list[MethodResult]) -> str:
    """The results as a Markdown table (recalls to three decimals)."""
    lines = [
        f"| method | bytes / vector | recall@{K} | recall@{CANDIDATES} | recall@{K} rescored (top {CANDIDATES}) |",
        "|---|---:|---:|---:|---:|",
    ]
    best = {best_q2(results).name, best_q2(results, "q2").name}
    for r in results:
        name = f"**{r.name}**" if r.name in best else r.name
        lines.append(
            f"| {name} | {thousands(r.bytes_per_vector)} | {r.recall_at_10:.3f} | {r.recall_at_100:.3f} "
            f"| {r.rescored_recall_at_10:.3f} |"
        )
    return "\n".join(lines)


def curve_table(results: list[MethodResult]) -> str:
    """Recall@10 after rescoring the top R candidates, one column per R."""
    depths = list(results[0].rescore_curve)
    lines = [
        "| method | " + " | ".join(f"R = {d}" for d in depths) + " |",
        "|---|" + "---:|" * len(depths),
    ]
    for r in results:
        if r.family != "control":
            lines.append(f"| {r.name} | " + " | ".join(f"{r.rescore_curve[d]:.3f}" for d in depths) + " |")
    return "\n".join(lines)


def write_json(
    results: list[MethodResult],
    data: Dataset,
    path: Path,
    total_seconds: float,
    sweep: list[dict[str, Any]] | None = None,
) -> None:
    """Every figure plus the context needed to compare runs."""
    moon = moonshot(results)
    doc = {
        "dataset": {
            "database": list(data.database.shape),
            "queries": list(data.queries.shape),
            "ground_truth": f"exact cosine top-{data.gt_ids.shape[1]}",
        },
        "k": K,
        "candidates": CANDIDATES,
        "rescored_target": RESCORED_TARGET,
        "best_q2_asymmetric": best_q2(results).name,
        "best_q2_lee": best_q2(results, "q2").name,
        "target_bytes": TARGET_BYTES,
        "targets_missed": check_targets(results),
        "moonshot": None if moon is None else {"margin": MOONSHOT_MARGIN, "above_rabitq": moon[0], "met": moon[1]},
        "q2key_version": q2key.__version__,
        "simd_backend": q2key.simd_backend(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "total_seconds": round(total_seconds, 2),
        "methods": [asdict(r) for r in results],
    }
    if sweep is not None:
        doc["outer_share_sweep_on_queries"] = sweep
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


# Colours of the three measures on the left panel, and of each method family on the right.
BAR_COLOURS = {"recall@10": "#6baed6", "recall@100": "#d0e1f2", "rescored": "#08519c"}
#: Curves of the Q² rows drawn on the right panel (the best of each kind; the bars show every row).
Q2_STYLES = {"q2": ("#6baed6", "v"), "q2-asym": ("#08306b", "o"), "rerank": ("#3182bd", "D")}
BASELINE_SHADES = {
    THERMOMETER: "#e6550d",
    THERMOMETER_ASYM: "#fd8d3c",
    SIGN: "#969696",
    INT8: "#31a354",
    fidelity_faiss.RABITQ_2BIT: "#756bb1",
    fidelity_faiss.RABITQ_ROTATED_2BIT: "#54278f",
    fidelity_faiss.RABITQ_FASTSCAN_2BIT: "#9e9ac8",
    fidelity_faiss.PQ_FASTSCAN: "#d6616b",
    fidelity_faiss.SQ_4BIT: "#8c6d31",
}


def is_rerank(r: MethodResult) -> bool:
    return r.name in {name for name, _ in Q2_RERANK_METHODS}


def plot(results: list[MethodResult], path: Path, title: str = "") -> None:
    """Two panels: recall per method (bars) and recall@10 against rescoring depth (lines). Needs matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    height = max(6.8, 0.5 * len(results))
    fig, (bars, curves) = plt.subplots(1, 2, figsize=(16, height), gridspec_kw={"width_ratios": [1.35, 1]})
    _plot_bars(bars, results)
    _plot_curves(curves, results)
    fig.suptitle(title or "Recall against exact cosine neighbours", fontsize=14, fontweight="bold", y=0.985)
    top = 1 - 0.5 / height  # the title and the target line take about half an inch
    fig.text(0.5, top - 0.01, target_summary(results), ha="center", fontsize=10, color="#333333")
    fig.tight_layout(rect=(0, 0, 1, top - 0.02))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_bars(ax: Any, results: list[MethodResult]) -> None:
    """Horizontal grouped bars: recall@10, recall@100 and rescored recall@10 of every method."""
    best = {best_q2(results).name, best_q2(results, "q2").name}
    ref = rabitq(results)
    n = len(results)
    height = 0.26
    y = np.arange(n)[::-1].astype(float)  # first method at the top
    measures = (
        ("recall@10", f"recall@{K} (code distance)", lambda r: r.recall_at_10),
        ("recall@100", f"recall@{CANDIDATES} (code distance)", lambda r: r.recall_at_100),
        ("rescored", f"recall@{K} after rescoring top {CANDIDATES}", lambda r: r.rescored_recall_at_10),
    )
    for j, (key, label, value) in enumerate(measures):
        vals = [value(r) for r in results]
        pos = y + (1 - j) * height
        ax.barh(pos, vals, height=height * 0.95, color=BAR_COLOURS[key], label=label)
        for p, v in zip(pos, vals):
            ax.text(v + 0.005, p, f"{v:.3f}", va="center", fontsize=8)
    # Shade the Q² Lee rows and the Q² asymmetric rows so each reads as one group.
    for family, shade in (("q2", "#deebf7"), ("q2-asym", "#c6dbef")):
        rows = [y[i] for i, r in enumerate(results) if r.family == family]
        ax.axhspan(min(rows) - 0.5, max(rows) + 0.5, color=shade, alpha=0.5, zorder=0)
    ax.axvline(RESCORED_TARGET, color="#cb181d", ls="--", lw=1.2, label=f"target: rescored ≥ {RESCORED_TARGET}")
    if ref is not None:
        ax.axvline(ref.recall_at_10, color="#756bb1", ls=":", lw=1.5, label="RaBitQ 2-bit recall@10 (Q² target)")
    labels = [f"{r.name}\n{thousands(r.bytes_per_vector)} B/vector" for r in results]
    ax.set_yticks(y, labels)
    for tick, r in zip(ax.get_yticklabels(), results):
        if r.name in best:
            tick.set_fontweight("bold")
    ax.set_xlim(0, 1.1)
    ax.set_xticks(np.linspace(0, 1, 11))
    ax.set_xlabel("recall (mean over queries)")
    ax.set_title("Recall per method (bold: best Q² Lee and best Q² asymmetric)")
    # Below the axes: inside, it would cover the bars that reach 1.0.
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.09), ncol=3, fontsize=8, frameon=False)
    ax.grid(axis="x", alpha=0.3)


def _plot_curves(ax: Any, results: list[MethodResult]) -> None:
    """recall@10 after rescoring the top R candidates, against R (log scale): the best Q² Lee, asymmetric and
    re-ranked rows, and every baseline."""
    shown = {
        "q2": best_q2(results, "q2").name,
        "q2-asym": best_q2([r for r in results if not is_rerank(r)]).name,
        "rerank": max((r for r in results if is_rerank(r)), key=lambda r: r.recall_at_10).name,
    }
    for r in results:
        if r.family == "control":
            continue
        depths = [int(d) for d in r.rescore_curve]
        kind = "rerank" if is_rerank(r) else r.family
        if kind in shown:
            if r.name != shown[kind]:
                continue
            (colour, marker), ls = Q2_STYLES[kind], "-"
        else:
            colour, marker, ls = BASELINE_SHADES.get(r.name, "black"), "s", "--"
        label = f"{r.name} ({thousands(r.bytes_per_vector)} B)"
        ax.plot(depths, list(r.rescore_curve.values()), ls=ls, marker=marker, color=colour, label=label, lw=1.8)
    ax.axhline(RESCORED_TARGET, color="#cb181d", ls="--", lw=1.2, label=f"target {RESCORED_TARGET}")
    ax.axvline(CANDIDATES, color="black", lw=0.8, alpha=0.4)
    ax.set_xscale("log")
    depths = [int(d) for d in results[0].rescore_curve]
    ax.set_xticks(depths, [str(d) for d in depths])
    ax.minorticks_off()
    ax.set_ylim(max(0.0, min(min(r.rescore_curve.values()) for r in results) - 0.05), 1.005)
    ax.text(CANDIDATES * 0.96, ax.get_ylim()[0] + 0.01, "depth of the table", rotation=90, ha="right", fontsize=8)
    ax.set_xlabel("candidates R taken by code distance, then re-ranked by exact cosine")
    ax.set_ylabel(f"recall@{K} after rescoring")
    ax.set_title(f"Rescoring: recall@{K} against candidate depth")
    ax.legend(loc="lower right", fontsize=8, framealpha=0.95)
    ax.grid(alpha=0.3)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the .npz file (default: %(default)s)")
    ap.add_argument("--out-dir", type=Path, default=HERE, help="where fidelity.json/.png go (default: %(default)s)")
    ap.add_argument("--check", action="store_true", help="exit 1 with a one-line message if a target is missed")
    ap.add_argument("--seed", type=int, default=0, help="seed of q2key.calibrate(method='fidelity')")
    ap.add_argument(
        "--sweep", action="store_true", help="also sweep Q²'s outer share on the evaluation queries (a diagnostic)"
    )
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    data = load_dataset(args.data)
    results = run(data, seed=args.seed)
    sweep = share_sweep(data) if args.sweep else None
    total = time.perf_counter() - t0
    args.out_dir.mkdir(parents=True, exist_ok=True)
    write_json(results, data, args.out_dir / "fidelity.json", total, sweep)
    print(markdown_table(results))
    print()
    print(curve_table(results))
    if sweep is not None:
        print()
        print(sweep_table(sweep))
    try:
        title = (
            f"Q² fidelity: {thousands(len(data.database))} × {data.database.shape[1]} WordNet embeddings "
            f"(all-MiniLM-L6-v2), {thousands(len(data.queries))} queries, exact cosine ground truth"
        )
        plot(results, args.out_dir / "fidelity.png", title)
    except ImportError as e:  # matplotlib missing: the figures are still printed and saved as JSON
        print(f"\nno plot ({e})")
    missed = check_targets(results)
    print("\n" + target_summary(results))
    print(
        f"{len(data.queries)} queries × {len(data.database)} rows in {total:.1f} s; targets: "
        + ("all met" if not missed else "; ".join(missed))
    )
    if args.check and missed:
        print("fidelity check failed: " + "; ".join(missed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
