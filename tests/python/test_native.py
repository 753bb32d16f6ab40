"""The native module's shape (issue 11, "a thin binding"): a stats submodule that imports,
f32/f64 rows through one entry point, thresholds as one validated value, and every rule
written once, in Rust, so the same mistake reads the same through every entry point."""

from __future__ import annotations

import importlib
import math
import re
import sys

import numpy as np
import pytest
import q2key
from hypothesis import given, settings
from hypothesis import strategies as st
from q2key import _native
from q2key.stats import Ragged


def test_the_stats_submodule_imports_and_has_unprefixed_names() -> None:
    mod = importlib.import_module("q2key._native.stats")
    assert mod is _native.stats is sys.modules["q2key._native.stats"]
    assert mod.__name__ == "q2key._native.stats"
    values, offsets = mod.run_reduce(np.array([1, 1, 2], np.uint8), np.array([0, 3], np.int64))
    assert values.tolist() == [1, 2] and offsets.tolist() == [0, 2]
    assert mod.MAX_ADMISSIBLE_K == q2key.stats.MAX_ADMISSIBLE_K
    assert not any(name.startswith("stats_") for name in dir(_native))


def test_float32_and_float64_rows_go_through_one_entry_point() -> None:
    x = np.random.default_rng(1).integers(-50, 50, size=(64, 37)).astype(np.float32)
    th = _native.Thresholds.global_(0.1)
    a, b = _native.encode(x, th), _native.encode(x.astype(np.float64), th)
    for left, right in zip(a, b):
        np.testing.assert_array_equal(left, right)
    np.testing.assert_array_equal(_native.symbols(x, th), _native.symbols(x.astype(np.float64), th))
    with pytest.raises(TypeError):
        _native.encode(x.astype(np.float16))  # type: ignore[arg-type]


def test_an_index_encodes_with_the_thresholds_it_is_given() -> None:
    # The binding used to take (tau, cuts, gaussian): a tau without gaussian=False was ignored.
    x = np.random.default_rng(2).normal(size=(50, 16))
    th = _native.Thresholds.global_(0.5)
    index = _native.Index(16, th)
    index.add(x)
    codes, _, _ = index.arrays()
    np.testing.assert_array_equal(codes, _native.encode(x, th)[0])
    assert not np.array_equal(codes, _native.encode(x)[0])
    assert index.thresholds == _native.Thresholds.global_(0.5, 16)
    with pytest.raises(q2key.ShapeError, match="threshold: thresholds are for dimension 4, the vectors have 16"):
        _native.Index(16, _native.Thresholds.per_dim(np.zeros((3, 4))))


@pytest.mark.parametrize("tau", [-1.0, -0.25, -1e-300, math.nan, math.inf, -math.inf])
def test_a_bad_tau_reads_the_same_through_every_entry_point(tau: float) -> None:
    def message(call: object) -> str:
        with pytest.raises(q2key.Q2KeyError) as info:
            call()  # type: ignore[operator]
        return str(info.value).split(": ", 1)[1]

    x = np.ones((1, 8))
    words = {
        message(lambda: q2key.Thresholds.global_(tau)),
        message(lambda: q2key.Thresholds.global_(tau, dim=8)),
        message(lambda: q2key.encode(x, threshold=tau)),
        message(lambda: q2key.symbols(x, threshold=tau)),
        message(lambda: q2key.Index(8, threshold=tau)),
    }
    assert len(words) == 1, words
    assert words.pop().endswith(f"got {tau!r}".replace("nan", "NaN"))  # the value as Python writes it


@pytest.mark.parametrize(
    "offsets",
    [[], [1, 3], [0, 2, 1, 3], [0, 2], [0, 4], [0, -1, 3]],
)
def test_bad_offsets_read_the_same_from_ragged_and_from_the_core(offsets: list[int]) -> None:
    values, o = np.array([0, 1, 2], np.uint8), np.array(offsets, np.int64)
    with pytest.raises(q2key.Q2KeyError) as from_ragged:
        Ragged(values, o)
    with pytest.raises(q2key.Q2KeyError) as from_core:
        _native.stats.hairpin_density(values, o)
    assert type(from_ragged.value) is type(from_core.value)
    assert str(from_ragged.value) == str(from_core.value)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(-3, 6), max_size=6),
    st.lists(st.integers(0, 3), max_size=5),
)
def test_any_offsets_read_the_same_from_ragged_and_from_the_core(offsets: list[int], symbols: list[int]) -> None:
    values, o = np.array(symbols, np.uint8), np.array(offsets, np.int64)
    try:
        Ragged(values, o)
    except q2key.Q2KeyError as e:
        with pytest.raises(type(e), match="^" + re.escape(str(e)) + "$"):
            _native.stats.transition_counts(values, o)
    else:
        _native.stats.transition_counts(values, o)  # accepted by both


@pytest.mark.parametrize(
    "cuts",
    [
        np.zeros((2, 4)),
        np.zeros((3, 0)),
        np.zeros(3),
        np.zeros((3, 2, 1)),
        np.array([[0.0, 0.0], [0.0, 1.0], [0.0, 0.5]]),
        np.array([[0.0], [np.nan], [1.0]]),
    ],
)
def test_bad_cuts_read_the_same_from_thresholds_and_from_the_core(cuts: np.ndarray) -> None:
    with pytest.raises(q2key.Q2KeyError) as from_python:
        q2key.Thresholds.per_dim(cuts)
    with pytest.raises(q2key.Q2KeyError) as from_core:
        _native.Thresholds.per_dim(np.ascontiguousarray(cuts))
    assert type(from_python.value) is type(from_core.value)
    assert str(from_python.value) == str(from_core.value)
    assert from_python.value.arg == "cuts"  # type: ignore[attr-defined]


def test_unordered_cuts_are_quoted_as_python_writes_them() -> None:
    with pytest.raises(q2key.Q2KeyError, match=r"dimension 1: need low ≤ mid ≤ high, got \(0\.0, 1\.0, 1e-300\)"):
        q2key.Thresholds.per_dim(np.array([[0.0, 0.0], [0.0, 1.0], [0.0, 1e-300]]))


def test_thresholds_hold_one_native_value() -> None:
    cuts = np.array([[-0.2, -0.1], [0.0, 0.01], [0.1, 0.3]])
    for th in (q2key.Thresholds.gaussian(7), q2key.Thresholds.global_(0.25), q2key.Thresholds.per_dim(cuts)):
        native = th._rule
        assert isinstance(native, _native.Thresholds)
        assert (native.kind, native.dim, native.tau) == (th.kind, th.dim, th.tau)
        assert q2key.Thresholds.from_bytes(th.to_bytes())._rule == native


def test_native_matrices_must_be_c_ordered() -> None:
    """A Fortran-ordered array is contiguous but holds the transpose: the native layer refuses it
    (it used to read it as rows, e.g. encoding garbage or a transposed rotation)."""
    x = np.random.default_rng(0).normal(size=(5, 8)).astype(np.float32)
    rotation = np.linalg.qr(np.random.default_rng(1).normal(size=(8, 8)))[0]
    for call in (
        lambda: _native.encode(np.asfortranarray(x)),
        lambda: _native.Thresholds.gaussian(8).with_rotation(np.asfortranarray(rotation)),
    ):
        with pytest.raises(q2key.ShapeError, match="C-contiguous"):
            call()
