"""Figures of what q2key measured: symbol shares, Lee distance against cosine, recall curves.

Needs matplotlib (``pip install q2key[plot]``), imported only when a function runs; import this
module as ``import q2key.plot`` (``import q2key`` does not load it). Every function returns the
matplotlib ``Figure`` (made with pyplot, so ``plt.show()`` shows it; ``plt.close(fig)`` frees it)
and, given ``path``, also saves it there as a PNG.

>>> import numpy as np, q2key, q2key.plot  # doctest: +SKIP
>>> th = q2key.calibrate(np.random.default_rng(0).normal(size=(2000, 64)))  # doctest: +SKIP
>>> fig = q2key.plot.symbol_frequencies(th, path="symbols.png")  # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Union

import numpy as np
import numpy.typing as npt

from ._calibrate import entropy_bits
from ._calibrate import symbol_frequencies as _per_dim_frequencies
from ._distance import lee
from ._encode import ThresholdLike, encode
from ._errors import DTypeError, Q2KeyError, ShapeError
from ._report import CalibrationReport
from ._thresholds import Thresholds

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["distance_vs_cosine", "recall_curve", "symbol_frequencies"]

#: What :func:`symbol_frequencies` takes: a report, thresholds carrying one, or symbols ``(N, n)``.
SymbolSource = Union[CalibrationReport, Thresholds, npt.ArrayLike]
#: One curve of :func:`recall_curve`: ``(R values, recall values)`` or a mapping ``R → recall``.
Curve = Union[tuple[Sequence[float], Sequence[float]], Mapping[Any, float]]
PathLike = Union[str, "os.PathLike[str]"]

# A (strong −) … D (strong +): a diverging palette, red for negative and blue for positive.
SYMBOL_NAMES = ("A", "B", "C", "D")
SYMBOL_LABELS = ("A  strong −", "B  weak −", "C  weak +", "D  strong +")
SYMBOL_COLOURS = ("#b2182b", "#f4a582", "#92c5de", "#2166ac")
_DPI = 120


def _pyplot() -> Any:
    """``matplotlib.pyplot``, or an ImportError that says how to get it."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError(
            f"q2key.plot needs matplotlib, which is not installed ({e}): pip install q2key[plot]"
        ) from None
    return plt


def _finish(fig: Figure, path: PathLike | None) -> Figure:
    if path is not None:
        fig.savefig(os.fspath(path), dpi=_DPI, format="png")
    return fig


# -- symbol frequencies ---------------------------------------------------------------------------------------


def _frequencies(source: Any) -> tuple[npt.NDArray[np.float64], str]:
    """Per-dimension shares ``(n, 4)`` of A..D and a description of where they come from."""
    if isinstance(source, Thresholds):
        if source.report is None:
            raise Q2KeyError(
                "these Thresholds carry no report (only q2key.calibrate(...) attaches one); "
                "pass q2key.symbols(x, threshold=th) to plot the shares of your vectors",
                arg="source",
            )
        source = source.report
    if isinstance(source, CalibrationReport):
        per_dim = np.asarray(source.per_dim_frequencies, dtype=np.float64)
        what = (
            f"calibrate(method={source.method!r}): {source.rule} cuts, {source.outer_share:.0%} of values in A ∪ D, "
            f"{source.sample_rows:,} sample rows"
        )
        return per_dim, what
    a = np.asarray(source)
    if a.dtype.kind not in "iu":
        raise DTypeError(
            "expected a CalibrationReport, Thresholds with a report, or an integer symbol matrix "
            f"(N, n) of 0..3 — got dtype {a.dtype} (for float vectors pass q2key.symbols(x))",
            arg="source",
        )
    if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] == 0:
        raise ShapeError(f"expected a symbol matrix (N, n) with N, n ≥ 1, got shape {a.shape}", arg="source")
    bad = np.argwhere((a < 0) | (a > 3))
    if len(bad):
        row, col = (int(v) for v in bad[0])
        raise Q2KeyError(
            f"row {row} column {col} holds {a[row, col]}; symbols are 0 (A), 1 (B), 2 (C) or 3 (D)",
            arg="source",
            row=row,
            col=col,
        )
    return _per_dim_frequencies(a.astype(np.uint8)), f"symbols of {a.shape[0]:,} vectors"


def symbol_frequencies(source: SymbolSource, *, path: PathLike | None = None, ax: Axes | None = None) -> Figure:
    """How often each symbol A, B, C, D occurs, per dimension and overall.

    ``source`` is a :class:`q2key.CalibrationReport` (``th.report``), :class:`q2key.Thresholds`
    carrying a report (from :func:`q2key.calibrate`), or a symbol matrix ``(N, n)`` of 0..3
    (:func:`q2key.symbols`). The figure has a stacked area of the four shares along the
    dimensions (a dimension whose values sit mostly in one cell stands out as a band of one
    colour) and bars of the overall shares; the title gives the mean entropy per dimension.
    With ``ax`` only the per-dimension panel is drawn, on that axes (overall shares in the legend).
    """
    per_dim, what = _frequencies(source)
    plt = _pyplot()
    overall = per_dim.mean(axis=0)
    entropy = float(entropy_bits(per_dim).mean())
    title = f"Q² symbol shares over {per_dim.shape[0]} dimensions — {entropy:.2f} bits of entropy per dimension (max 2)"
    if ax is None:
        fig, (area, bars) = plt.subplots(
            1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [3.2, 1]}, layout="constrained"
        )
        fig.suptitle(f"{title}\n{what}", fontsize=12)
    else:
        fig, area, bars = ax.figure, ax, None
        area.set_title(f"{title}\n{what}", fontsize=10)

    dims = np.arange(per_dim.shape[0])
    labels = [f"{name}  ({share:.1%} overall)" for name, share in zip(SYMBOL_LABELS, overall)]
    if per_dim.shape[0] == 1:  # an area needs two points: draw the single dimension as a stacked bar
        bottom = 0.0
        for j in range(4):
            area.bar([0], [per_dim[0, j]], bottom=bottom, color=SYMBOL_COLOURS[j], label=labels[j], width=0.6)
            bottom += per_dim[0, j]
    else:
        area.stackplot(dims, per_dim.T, colors=SYMBOL_COLOURS, labels=labels, step="mid", linewidth=0)
        area.set_xlim(-0.5, per_dim.shape[0] - 0.5)
    for y in (0.25, 0.5, 0.75):
        area.axhline(y, color="white", lw=0.6, alpha=0.7)
    area.set_ylim(0, 1)
    area.yaxis.set_major_formatter(_percent())
    area.set_xlabel("dimension")
    area.set_ylabel("share of vectors")
    # Legend order top to bottom matches the stack (D on top).
    handles, names = area.get_legend_handles_labels()
    area.legend(handles[::-1], names[::-1], loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=9, frameon=False)
    if bars is not None:
        area.set_title("per dimension (stacked, A at the bottom)", fontsize=10)
        area.get_legend().remove()
        area.legend(handles, names, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=4, fontsize=9, frameon=False)
        x = np.arange(4)
        bars.bar(x, overall, color=SYMBOL_COLOURS, width=0.7)
        for xi, share in zip(x, overall):
            bars.text(xi, share + 0.01, f"{share:.1%}", ha="center", va="bottom", fontsize=10)
        bars.axhline(0.25, color="#555555", ls="--", lw=1, label="equiprobable (25 %)")
        bars.set_xticks(x, SYMBOL_NAMES)
        bars.set_ylim(0, max(0.55, float(overall.max()) + 0.08))
        bars.yaxis.set_major_formatter(_percent())
        bars.set_title("overall", fontsize=10)
        bars.set_ylabel("share of all values")
        bars.legend(loc="upper right", fontsize=8, frameon=False)
        bars.grid(axis="y", alpha=0.3)
    return _finish(fig, path)


def _percent() -> Any:
    from matplotlib.ticker import PercentFormatter

    return PercentFormatter(xmax=1.0, decimals=0)


# -- Lee distance against cosine ------------------------------------------------------------------------------


def _ranks(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Ranks 1..n with ties given their average rank (as in Spearman's ρ)."""
    order = np.argsort(x, kind="stable")
    sorted_x = x[order]
    starts = np.flatnonzero(np.r_[True, sorted_x[1:] != sorted_x[:-1]])
    ends = np.r_[starts[1:], len(x)]
    avg = (starts + ends + 1) / 2.0  # mean of the 1-based ranks starts+1 .. ends
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = np.repeat(avg, ends - starts)
    return ranks


def spearman(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """Spearman's rank correlation of two equal-length samples (NaN when either is constant)."""
    ra, rb = _ranks(np.asarray(a, dtype=np.float64)), _ranks(np.asarray(b, dtype=np.float64))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = math.sqrt(float(ra @ ra) * float(rb @ rb))
    return float(ra @ rb) / denom if denom > 0 else math.nan


def distance_vs_cosine(
    vectors: Any,
    *,
    threshold: ThresholdLike = None,
    pairs: int = 2000,
    seed: int | None = 0,
    path: PathLike | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Lee distance between the codes of random pairs of ``vectors`` against their cosine similarity.

    ``vectors`` ``(N, n)`` with ``N ≥ 2`` are encoded with ``threshold`` (``None``: the Gaussian
    ``τ``; a float; or a :class:`q2key.Thresholds`); ``pairs`` random pairs of distinct rows
    (``seed``) are drawn. A hexbin shows where the pairs lie (a scatter below 500 pairs), a line
    the mean Lee distance in bins of cosine; the title gives Spearman's ρ between the two (−1:
    the code distance orders pairs exactly as cosine does).
    """
    x = np.asarray(vectors)
    if x.dtype.kind not in "fiu":
        raise DTypeError(f"expected a real numeric matrix (N, n), got dtype {x.dtype}", arg="vectors")
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] == 0:
        raise ShapeError(f"expected a matrix (N, n) with N ≥ 2 rows, got shape {x.shape}", arg="vectors")
    if isinstance(pairs, bool) or not isinstance(pairs, (int, np.integer)) or pairs < 2:
        raise Q2KeyError(f"expected an int ≥ 2, got {pairs!r}", arg="pairs")
    codes = encode(x, threshold=threshold).codes  # checks the threshold and for NaN/Inf
    n_rows, dim = x.shape
    rng = np.random.default_rng(seed)
    i = rng.integers(0, n_rows, size=int(pairs))
    j = (i + rng.integers(1, n_rows, size=int(pairs))) % n_rows  # never equal to i
    unit = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(unit, axis=1)
    cosine = np.einsum("pn,pn->p", unit[i], unit[j]) / np.where(norms[i] * norms[j] == 0, 1.0, norms[i] * norms[j])
    dist = lee(codes[i], codes[j]).astype(np.float64)
    rho = spearman(cosine, dist)

    plt = _pyplot()
    if ax is None:
        fig, ax = plt.subplots(figsize=(8.5, 6), layout="constrained")
    else:
        fig = ax.figure
    if pairs >= 500:
        hb = ax.hexbin(cosine, dist, gridsize=45, mincnt=1, vmin=0, cmap="Blues", linewidths=0.2)
        from matplotlib.ticker import MaxNLocator

        fig.colorbar(hb, ax=ax, label="pairs per hexagon", ticks=MaxNLocator(integer=True))
    else:
        ax.scatter(cosine, dist, s=12, alpha=0.5, color="#3182bd", edgecolors="none", label="a pair of vectors")
    edges = np.linspace(cosine.min(), cosine.max(), 21)
    which = np.clip(np.digitize(cosine, edges) - 1, 0, len(edges) - 2)
    counts = np.bincount(which, minlength=len(edges) - 1)
    sums = np.bincount(which, weights=dist, minlength=len(edges) - 1)
    full = counts >= 5  # a mean of fewer pairs is mostly noise
    centres = (edges[:-1] + edges[1:]) / 2
    ax.plot(centres[full], sums[full] / counts[full], color="#e6550d", lw=2.2, marker="o", ms=4, label="mean per bin")
    th_name = _threshold_name(threshold, dim)
    ax.set_title(
        f"Lee distance of Q² codes vs cosine similarity — Spearman ρ = {_signed(rho)}\n"
        f"{len(cosine):,} random pairs of {n_rows:,} vectors, n = {dim} ({codes.shape[1]} B codes), {th_name}",
        fontsize=11,
    )
    ax.set_xlabel("cosine similarity of the float vectors", fontsize=11)
    ax.set_ylabel(f"Lee distance of the codes (0 … {2 * dim})", fontsize=11)
    ax.legend(loc="upper right", fontsize=9)
    ax.grid(alpha=0.3)
    return _finish(fig, path)


def _signed(v: float) -> str:
    return f"{v:.3f}".replace("-", "−")


def _threshold_name(threshold: ThresholdLike, dim: int) -> str:
    if threshold is None:
        return f"Gaussian τ = {0.6745 / math.sqrt(dim):.4f}"
    if isinstance(threshold, Thresholds):
        if threshold.report is not None:
            r = threshold.report
            return f"calibrated ({r.method}: {r.rule}, {r.outer_share:.0%} in A ∪ D)"
        return f"{threshold.kind} thresholds" + ("" if threshold.tau is None else f" τ = {threshold.tau:.4f}")
    return f"τ = {float(threshold):.4f}"


# -- recall curves --------------------------------------------------------------------------------------------

_CURVE_STYLES = (  # matplotlib's tab10 colours, each with its own marker and dash pattern
    ("#1f77b4", "o", "-"),
    ("#ff7f0e", "s", "--"),
    ("#2ca02c", "^", "-."),
    ("#d62728", "D", ":"),
    ("#9467bd", "v", "-"),
    ("#8c564b", "P", "--"),
    ("#e377c2", "X", "-."),
    ("#7f7f7f", "*", ":"),
    ("#bcbd22", "h", "-"),
    ("#17becf", "<", "--"),
)


def _curve(name: str, value: Any) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    if isinstance(value, Mapping):
        r, rec = list(value.keys()), list(value.values())
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        r, rec = value[0], value[1]
    else:
        raise DTypeError(f"entry {name!r}: expected (R values, recall values) or a mapping R → recall", arg="results")
    try:
        rs = np.asarray(r, dtype=np.float64)
        recalls = np.asarray(rec, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise DTypeError(f"entry {name!r}: R and recall values must be numbers ({e})", arg="results") from None
    if rs.ndim != 1 or recalls.ndim != 1 or rs.shape != recalls.shape or rs.size == 0:
        raise ShapeError(
            f"entry {name!r}: expected equally long non-empty 1-D R and recall values, "
            f"got shapes {rs.shape} and {recalls.shape}",
            arg="results",
        )
    if not (np.isfinite(rs).all() and (rs > 0).all()):
        raise Q2KeyError(
            f"entry {name!r}: candidate counts R must be finite and positive, got {rs.tolist()}", arg="results"
        )
    if not (np.isfinite(recalls).all() and ((recalls >= 0) & (recalls <= 1)).all()):
        raise Q2KeyError(f"entry {name!r}: recall values must lie in [0, 1], got {recalls.tolist()}", arg="results")
    order = np.argsort(rs, kind="stable")
    return rs[order], recalls[order]


def recall_curve(
    results: Mapping[str, Curve],
    *,
    k: int | None = None,
    title: str | None = None,
    path: PathLike | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Recall@k against the number of candidates R re-ranked by exact cosine, one line per method.

    ``results`` maps a method's name to ``(R values, recall values)`` or to a mapping ``R → recall``
    (the ``rescore_curve`` of ``benches/fidelity.py``'s JSON). ``k`` only labels the axis.
    The R axis is logarithmic when R spans more than a factor of 10.
    """
    if not isinstance(results, Mapping) or len(results) == 0:
        raise Q2KeyError("expected a non-empty mapping name → (R values, recall values)", arg="results")
    curves = {str(name): _curve(str(name), value) for name, value in results.items()}
    plt = _pyplot()
    if ax is None:
        fig, ax = plt.subplots(figsize=(8.5, 5.5), layout="constrained")
    else:
        fig = ax.figure
    for idx, (name, (rs, recalls)) in enumerate(curves.items()):
        colour, marker, ls = _CURVE_STYLES[idx % len(_CURVE_STYLES)]
        ax.plot(rs, recalls, color=colour, marker=marker, ls=ls, lw=2, ms=6, label=name)
    all_r = np.unique(np.concatenate([rs for rs, _ in curves.values()]))
    if all_r.max() > 10 * all_r.min():
        ax.set_xscale("log")
        ax.minorticks_off()
    if len(all_r) <= 12:
        ax.set_xticks(all_r, [f"{v:g}" for v in all_r])
    low = min(float(rec.min()) for _, rec in curves.values())
    ax.set_ylim(max(0.0, low - 0.05), 1.01)
    kk = "k" if k is None else str(k)
    ax.set_xlabel("candidates R taken by code distance, then re-ranked by exact cosine", fontsize=11)
    ax.set_ylabel(f"recall@{kk} against the exact neighbours", fontsize=11)
    ax.set_title(title or f"Recall@{kk} against the number of rescored candidates", fontsize=12)
    ax.legend(loc="lower right", fontsize=9, framealpha=0.95)
    ax.grid(alpha=0.3)
    return _finish(fig, path)
