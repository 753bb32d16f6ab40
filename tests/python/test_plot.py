"""q2key.plot: each figure has the axes and artists it promises, writes a PNG, and rejects bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import q2key  # noqa: E402
import q2key.plot as qplot  # noqa: E402
from matplotlib.collections import PathCollection, PolyCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _close_figures() -> Any:
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    rng = np.random.default_rng(7)
    # Correlated rows with per-dimension offsets, so neighbours and shares are not trivial.
    base = rng.normal(size=(40, 48))
    x = base[rng.integers(0, 40, size=600)] + 0.8 * rng.normal(size=(600, 48)) + np.linspace(-0.5, 0.5, 48)
    return x.astype(np.float32)


@pytest.fixture(scope="module")
def calibrated(vectors: np.ndarray) -> q2key.Thresholds:
    return q2key.calibrate(vectors, method="per_dim", outer_share=0.3)


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert len(data) > 5000, f"{path} is only {len(data)} bytes"
    assert data.startswith(PNG_MAGIC)


# -- symbol_frequencies ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["thresholds", "report", "symbols"])
def test_symbol_frequencies_sources(
    kind: str, vectors: np.ndarray, calibrated: q2key.Thresholds, tmp_path: Path
) -> None:
    source: Any = {
        "thresholds": calibrated,
        "report": calibrated.report,
        "symbols": q2key.symbols(vectors),
    }[kind]
    path = tmp_path / "shares.png"
    fig = qplot.symbol_frequencies(source, path=path)
    assert isinstance(fig, Figure)
    area, bars = fig.axes
    assert len(area.collections) == 4, "one stacked area per symbol"
    legend = area.get_legend()
    assert legend is not None
    labels = [t.get_text() for t in legend.get_texts()]
    assert [label[0] for label in labels] == ["A", "B", "C", "D"]
    assert len(bars.patches) == 4
    heights = np.array([p.get_height() for p in bars.patches])
    assert heights.sum() == pytest.approx(1.0)
    assert "entropy" in fig.get_suptitle()
    if kind != "symbols":
        assert "per_dim" in fig.get_suptitle()
        np.testing.assert_allclose(heights, calibrated.report.frequencies)  # type: ignore[union-attr]
    assert_png(path)


def test_symbol_frequencies_on_given_axes(calibrated: q2key.Thresholds) -> None:
    fig, ax = plt.subplots()
    got = qplot.symbol_frequencies(calibrated, ax=ax)
    assert got is fig
    assert fig.axes == [ax]
    assert len(ax.collections) == 4
    assert "entropy" in ax.get_title()


def test_symbol_frequencies_one_dimension() -> None:
    fig = qplot.symbol_frequencies(np.array([[0], [3], [3], [1]]))
    area = fig.axes[0]
    assert len(area.patches) == 4  # a stacked bar instead of an area
    assert sum(p.get_height() for p in area.patches) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("source", "error", "match"),
    [
        (q2key.Thresholds.gaussian(8), q2key.Q2KeyError, "no report"),
        (np.zeros((3, 4), dtype=np.float32), q2key.DTypeError, "q2key.symbols"),
        (np.array([[0, 1, 4]]), q2key.Q2KeyError, "row 0 column 2 holds 4"),
        (np.array([[0, -1]]), q2key.Q2KeyError, "row 0 column 1"),
        (np.array([0, 1, 2]), q2key.ShapeError, r"\(N, n\)"),
        (np.zeros((0, 4), dtype=np.uint8), q2key.ShapeError, "N, n ≥ 1"),
        ("ABCD", q2key.DTypeError, "CalibrationReport"),
    ],
)
def test_symbol_frequencies_rejects(source: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        qplot.symbol_frequencies(source)


# -- distance_vs_cosine ---------------------------------------------------------------------------------------


def test_distance_vs_cosine_hexbin(vectors: np.ndarray, calibrated: q2key.Thresholds, tmp_path: Path) -> None:
    path = tmp_path / "dist.png"
    fig = qplot.distance_vs_cosine(vectors, threshold=calibrated, pairs=1500, path=path)
    ax = fig.axes[0]
    assert len(fig.axes) == 2, "the plot and its colour bar"
    assert any(isinstance(c, PolyCollection) for c in ax.collections), "a hexbin"
    (mean_line,) = ax.get_lines()
    ys = mean_line.get_ydata()
    assert len(ys) >= 3
    assert 0 < min(ys) and max(ys) <= 2 * vectors.shape[1]
    title = ax.get_title()
    assert "Spearman ρ = −" in title, title  # distance falls as cosine rises
    assert "1,500 random pairs" in title and "per_dim" in title
    assert ax.get_xlabel().startswith("cosine") and ax.get_ylabel().startswith("Lee distance")
    assert_png(path)


def test_distance_vs_cosine_scatter_is_deterministic(vectors: np.ndarray) -> None:
    fig = qplot.distance_vs_cosine(vectors, pairs=200, seed=3)
    ax = fig.axes[0]
    (points,) = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert points.get_offsets().shape == (200, 2)
    again = qplot.distance_vs_cosine(vectors, pairs=200, seed=3).axes[0]
    assert again.get_title() == ax.get_title()
    np.testing.assert_array_equal(again.collections[0].get_offsets(), points.get_offsets())


def test_distance_vs_cosine_points_are_lee_and_cosine(vectors: np.ndarray) -> None:
    ax = qplot.distance_vs_cosine(vectors[:50], threshold=0.1, pairs=100).axes[0]
    cos, dist = np.asarray(ax.collections[0].get_offsets()).T
    codes = q2key.encode(vectors[:50], threshold=0.1).codes
    unit = vectors[:50].astype(np.float64)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    all_cos = unit @ unit.T
    all_lee = q2key.lee_matrix(codes, codes)
    # Every plotted point is the (cosine, Lee distance) of some pair of distinct rows.
    for c, d in zip(cos, dist):
        i, j = np.nonzero(np.isclose(all_cos, c, atol=1e-9) & ~np.eye(50, dtype=bool))
        assert len(i), f"cosine {c} is not a pair's"
        assert d in all_lee[i, j]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"vectors": np.zeros((1, 8))}, q2key.ShapeError, "N ≥ 2"),
        ({"vectors": np.zeros(8)}, q2key.ShapeError, "N ≥ 2"),
        ({"vectors": np.array([["a", "b"], ["c", "d"]])}, q2key.DTypeError, "real numeric"),
        ({"pairs": 1}, q2key.Q2KeyError, "pairs"),
        ({"pairs": 2.5}, q2key.Q2KeyError, "pairs"),
        ({"threshold": q2key.Thresholds.gaussian(9)}, q2key.ShapeError, "dimension 9"),
        ({"threshold": -1.0}, q2key.Q2KeyError, "threshold"),
    ],
)
def test_distance_vs_cosine_rejects(
    kwargs: dict[str, Any], error: type[Exception], match: str, vectors: np.ndarray
) -> None:
    args = {"vectors": vectors[:20], **kwargs}
    with pytest.raises(error, match=match):
        qplot.distance_vs_cosine(**args)


def test_distance_vs_cosine_rejects_nan(vectors: np.ndarray) -> None:
    bad = vectors[:10].copy()
    bad[4, 2] = np.nan
    with pytest.raises(q2key.NonFiniteError, match="row 4"):
        qplot.distance_vs_cosine(bad)


@pytest.mark.parametrize(
    ("a", "b", "rho"),
    [
        ([1, 2, 3, 4], [10, 20, 30, 40], 1.0),
        ([1, 2, 3, 4], [4, 3, 2, 1], -1.0),
        ([1, 2, 3, 4, 5], [1, 4, 9, 16, 25], 1.0),  # monotone, not linear
        ([1, 2, 2, 3], [1, 3, 2, 4], 0.9486832980505138),  # ties get average ranks
        ([1, 1, 1], [1, 2, 3], float("nan")),
    ],
)
def test_spearman(a: list[float], b: list[float], rho: float) -> None:
    assert qplot.spearman(a, b) == pytest.approx(rho, nan_ok=True)


# -- recall_curve ---------------------------------------------------------------------------------------------


def test_recall_curve(tmp_path: Path) -> None:
    path = tmp_path / "recall.png"
    results = {
        "Q² fidelity": ([10, 20, 50, 100, 200], [0.64, 0.83, 0.95, 0.98, 0.995]),
        "sign 1-bit": {"200": 0.986, "10": 0.57, "100": 0.962},  # a mapping R → recall, like fidelity.json
    }
    fig = qplot.recall_curve(results, k=10, path=path)
    (ax,) = fig.axes
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == list(results)
    np.testing.assert_array_equal(lines[1].get_xdata(), [10, 100, 200])  # sorted by R
    np.testing.assert_array_equal(lines[1].get_ydata(), [0.57, 0.962, 0.986])
    assert ax.get_xscale() == "log"
    assert ax.get_ylabel().startswith("recall@10")
    legend = ax.get_legend()
    assert legend is not None and [t.get_text() for t in legend.get_texts()] == list(results)
    assert_png(path)


def test_recall_curve_linear_axis_and_title() -> None:
    fig, ax = plt.subplots()
    got = qplot.recall_curve({"a": ([10, 20, 50], [0.5, 0.7, 0.9])}, title="mine", ax=ax)
    assert got is fig and ax.get_xscale() == "linear" and ax.get_title() == "mine"
    assert ax.get_ylabel().startswith("recall@k")


@pytest.mark.parametrize(
    ("results", "error", "match"),
    [
        ({}, q2key.Q2KeyError, "non-empty mapping"),
        ([([10], [0.5])], q2key.Q2KeyError, "mapping"),
        ({"a": ([10, 20], [0.5])}, q2key.ShapeError, "equally long"),
        ({"a": ([], [])}, q2key.ShapeError, "non-empty"),
        ({"a": ([10, 20], [0.5, 1.2])}, q2key.Q2KeyError, r"\[0, 1\]"),
        ({"a": ([0, 20], [0.5, 0.6])}, q2key.Q2KeyError, "positive"),
        ({"a": ([10, 20], [0.5, float("nan")])}, q2key.Q2KeyError, r"\[0, 1\]"),
        ({"a": 0.5}, q2key.DTypeError, "R values"),
        ({"a": (["x", "y"], [0.5, 0.6])}, q2key.DTypeError, "numbers"),
    ],
)
def test_recall_curve_rejects(results: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        qplot.recall_curve(results)


# -- the optional dependency ----------------------------------------------------------------------------------


def test_missing_matplotlib_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)  # makes `import matplotlib.pyplot` fail
    with pytest.raises(ImportError, match=r"pip install q2key\[plot\]"):
        qplot.recall_curve({"a": ([10, 20], [0.5, 0.6])})


def test_import_q2key_does_not_load_matplotlib() -> None:
    code = (
        "import sys, q2key; "
        "assert 'matplotlib' not in sys.modules and 'q2key.plot' not in sys.modules, 'eager import'; "
        "import q2key.plot; assert 'matplotlib' not in sys.modules, 'plot imports matplotlib eagerly'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
