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

Methods: Q² with the Gaussian τ and with each :func:`q2key.calibrate` method (fitted on the
database; 96 bytes at n = 384), the 2-bit thermometer code at the same 96 bytes, 1-bit sign codes
(48 bytes), int8 scalar quantization (384 bytes), faiss's RaBitQ (2-bit, plain and fast-scan),
PQFastScan 192×4 and 4-bit scalar quantization when faiss is installed, and exact float32 cosine
as a control (1 536 bytes). Baselines are defined in ``fidelity_baselines.py`` and
``fidelity_faiss.py``. Hamming and Lee searches use
:func:`q2key.search` (popcount of XOR, exact, ties to the lower row).

Prints a Markdown table and writes ``fidelity.json`` and ``fidelity.png`` (if matplotlib is
installed) to ``--out-dir`` (default: this directory). ``--check`` exits 1 with a one-line
message when a target is missed: the best Q² method's recall@10 must be at least the
thermometer's, and its recall@10 after rescoring at least 0.98.
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
RESCORED_TARGET = 0.98
#: Q² methods, in table order: the name shown and the calibrate() method (None: the Gaussian τ).
Q2_METHODS: tuple[tuple[str, str | None], ...] = (
    ("Q² gaussian", None),
    ("Q² equiprobable", "equiprobable"),
    ("Q² per_dim", "per_dim"),
    ("Q² fidelity", "fidelity"),
)
THERMOMETER = "thermometer 2-bit"
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
    family: str  # "q2", "baseline" or "control"
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


def q2_ranker(method: str | None, seed: int) -> Ranker:
    """A Q² method: thresholds from ``q2key.calibrate(database, method=...)`` (None: Gaussian τ), Lee search."""

    def rank(queries: F32, database: F32, depth: int) -> tuple[I64, dict[str, Any]]:
        threshold: Any = None
        notes: dict[str, Any] = {"threshold": "gaussian", "tau": q2key.gaussian_threshold(database.shape[1])}
        if method is not None:
            threshold = q2key.calibrate(database, method=method, seed=seed)
            notes = calibration_notes(threshold)
        db_codes = q2key.encode(database, threshold=threshold).codes
        q_codes = q2key.encode(queries, threshold=threshold).codes
        _, idx = q2key.search(q_codes, db_codes, depth)
        notes["bytes"] = int(db_codes.shape[1])
        return idx, notes

    return rank


def calibration_notes(th: Any) -> dict[str, Any]:
    """What a calibrated :class:`q2key.Thresholds` says about itself, as JSON-ready values."""
    report = getattr(th, "report", None)
    notes: dict[str, Any] = {"threshold": getattr(th, "kind", str(th))}
    if getattr(th, "tau", None) is not None:
        notes["tau"] = float(th.tau)
    if report is not None:
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
    out: list[tuple[str, str, Ranker]] = [(name, "q2", q2_ranker(m, seed)) for name, m in Q2_METHODS]
    out += [
        (THERMOMETER, "baseline", hamming_ranker(thermometer_pair)),
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


def best_q2(results: list[MethodResult]) -> MethodResult:
    """The Q² method with the highest recall@10 (the first of equals)."""
    q2 = [r for r in results if r.family == "q2"]
    return max(q2, key=lambda r: r.recall_at_10)


def check_targets(results: list[MethodResult]) -> list[str]:
    """One message per missed target (empty when both are met)."""
    best = best_q2(results)
    thermo = next(r for r in results if r.name == THERMOMETER)
    missed = []
    if best.recall_at_10 < thermo.recall_at_10:
        missed.append(
            f"best Q² ({best.name}) recall@10 {best.recall_at_10:.4f} < thermometer's {thermo.recall_at_10:.4f}"
        )
    if best.rescored_recall_at_10 < RESCORED_TARGET:
        missed.append(f"best Q² ({best.name}) rescored recall@10 {best.rescored_recall_at_10:.4f} < {RESCORED_TARGET}")
    return missed


def thousands(n: int) -> str:
    """``n`` with a space between groups of three digits (the README's style)."""
    return f"{n:,}".replace(",", " ")


def target_summary(results: list[MethodResult]) -> str:
    """One line: each target, the figures it compares and whether it is met."""
    best = best_q2(results)
    thermo = next(r for r in results if r.name == THERMOMETER)
    first = "met" if best.recall_at_10 >= thermo.recall_at_10 else "missed"
    second = "met" if best.rescored_recall_at_10 >= RESCORED_TARGET else "missed"
    return (
        f"Targets — best Q² ({best.name}) recall@{K} ≥ thermometer's at 96 B: {best.recall_at_10:.3f} vs "
        f"{thermo.recall_at_10:.3f}, {first};  rescored recall@{K} ≥ {RESCORED_TARGET}: "
        f"{best.rescored_recall_at_10:.3f}, {second}"
    )


def markdown_table(results: list[MethodResult]) -> str:
    """The results as a Markdown table (recalls to three decimals)."""
    lines = [
        f"| method | bytes / vector | recall@{K} | recall@{CANDIDATES} | recall@{K} rescored (top {CANDIDATES}) |",
        "|---|---:|---:|---:|---:|",
    ]
    best = best_q2(results).name
    for r in results:
        name = f"**{r.name}**" if r.name == best else r.name
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
    doc = {
        "dataset": {
            "database": list(data.database.shape),
            "queries": list(data.queries.shape),
            "ground_truth": f"exact cosine top-{data.gt_ids.shape[1]}",
        },
        "k": K,
        "candidates": CANDIDATES,
        "rescored_target": RESCORED_TARGET,
        "best_q2": best_q2(results).name,
        "targets_missed": check_targets(results),
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
Q2_STYLES = (("#9ecae1", "v"), ("#6baed6", "^"), ("#3182bd", "D"), ("#08306b", "o"))
BASELINE_SHADES = {THERMOMETER: "#e6550d", SIGN: "#969696", INT8: "#31a354"}


def plot(results: list[MethodResult], path: Path, title: str = "") -> None:
    """Two panels: recall per method (bars) and recall@10 against rescoring depth (lines). Needs matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (bars, curves) = plt.subplots(1, 2, figsize=(15, 6.8), gridspec_kw={"width_ratios": [1.35, 1]})
    _plot_bars(bars, results)
    _plot_curves(curves, results)
    fig.suptitle(title or "Recall against exact cosine neighbours", fontsize=14, fontweight="bold", y=0.985)
    fig.text(0.5, 0.925, target_summary(results), ha="center", fontsize=11, color="#333333")
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_bars(ax: Any, results: list[MethodResult]) -> None:
    """Horizontal grouped bars: recall@10, recall@100 and rescored recall@10 of every method."""
    best = best_q2(results).name
    thermo = next(r for r in results if r.name == THERMOMETER)
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
    # Shade the Q² rows so the four calibrations read as one group.
    q2_rows = [y[i] for i, r in enumerate(results) if r.family == "q2"]
    ax.axhspan(min(q2_rows) - 0.5, max(q2_rows) + 0.5, color="#deebf7", alpha=0.5, zorder=0)
    ax.axvline(RESCORED_TARGET, color="#cb181d", ls="--", lw=1.2, label=f"target: rescored ≥ {RESCORED_TARGET}")
    ax.axvline(thermo.recall_at_10, color="#e6550d", ls=":", lw=1.5, label="thermometer recall@10 (Q² target)")
    labels = [f"{r.name}\n{thousands(r.bytes_per_vector)} B/vector" for r in results]
    ax.set_yticks(y, labels)
    for tick, r in zip(ax.get_yticklabels(), results):
        if r.name == best:
            tick.set_fontweight("bold")
    ax.set_xlim(0, 1.1)
    ax.set_xticks(np.linspace(0, 1, 11))
    ax.set_xlabel("recall (mean over queries)")
    ax.set_title("Recall per method (bold: best Q² method)")
    # Below the axes: inside, it would cover the bars that reach 1.0.
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.09), ncol=3, fontsize=8, frameon=False)
    ax.grid(axis="x", alpha=0.3)


def _plot_curves(ax: Any, results: list[MethodResult]) -> None:
    """recall@10 after rescoring the top R candidates, against R (log scale)."""
    q2_styles = iter(Q2_STYLES)
    for r in results:
        if r.family == "control":
            continue
        depths = [int(d) for d in r.rescore_curve]
        if r.family == "q2":
            (colour, marker), ls = next(q2_styles), "-"
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
    # Every curve is above 0.93 from R = 100 on, so the right middle is free for the legend.
    ax.legend(loc="center right", fontsize=8, framealpha=0.95)
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
    print(
        f"\n{len(data.queries)} queries × {len(data.database)} rows in {total:.1f} s; targets: "
        + ("all met" if not missed else "; ".join(missed))
    )
    if args.check and missed:
        print("fidelity check failed: " + "; ".join(missed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
