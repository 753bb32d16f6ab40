"""q2key.Thresholds: kinds, validation, serialisation, pickling, and use by encode/symbols."""

from __future__ import annotations

import copy
import math
import pickle

import numpy as np
import pytest
import q2key
from hypothesis import given, settings
from hypothesis import strategies as st


def ordered_cuts(rng: np.random.Generator, dim: int, scale: float = 0.1) -> np.ndarray:
    return np.sort(rng.normal(scale=scale, size=(3, dim)), axis=0)


def reference_symbols(x: np.ndarray, cuts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """SPEC §1/§6 on x/‖x‖ in float64; also which values lie within rounding of a cut."""
    v = x / np.linalg.norm(x, axis=1, keepdims=True)
    sym = (v > cuts[0]).astype(np.uint8) + (v > cuts[1]) + (v > cuts[2])
    near = (np.abs(v[:, None, :] - cuts[None]) <= 1e-6 * (np.abs(cuts[None]) + 1e-30)).any(axis=1)
    return sym, near


# -- kinds ----------------------------------------------------------------------------------------


def test_gaussian_kind_matches_the_default_threshold() -> None:
    th = q2key.Thresholds.gaussian(384)
    assert (th.kind, th.dim, th.tau) == ("gaussian", 384, q2key.gaussian_threshold(384))
    x = np.random.default_rng(0).normal(size=(50, 384)).astype(np.float32)
    assert np.array_equal(q2key.encode(x, threshold=th).codes, q2key.encode(x).codes)
    assert th.cuts is not None and th.cuts.shape == (3, 384)
    assert np.array_equal(th.cuts[:, 0], [-th.tau, 0.0, th.tau])


def test_global_kind_matches_a_float_threshold() -> None:
    x = np.random.default_rng(1).normal(size=(40, 100))
    th = q2key.Thresholds.global_(0.07)
    assert th.dim is None and th.cuts is None
    enc = q2key.encode(x, threshold=th)
    assert np.array_equal(enc.codes, q2key.encode(x, threshold=0.07).codes)
    assert np.array_equal(enc.keys, q2key.encode(x, threshold=0.07).keys)


def test_per_dim_kind_follows_the_cells_on_the_normalised_vector() -> None:
    rng = np.random.default_rng(2)
    for dim in (1, 3, 4, 31, 32, 33, 384, 1000):
        x = rng.normal(size=(64, dim)) + rng.normal(size=dim)
        cuts = ordered_cuts(rng, dim, scale=1 / math.sqrt(dim))
        th = q2key.Thresholds.per_dim(cuts)
        want, near = reference_symbols(x, cuts)
        for rows in (x, x.astype(np.float32)):
            got = q2key.symbols(rows, threshold=th)
            assert np.array_equal(got[~near], want[~near]), (dim, rows.dtype)
            enc = q2key.encode(rows, threshold=th)
            assert np.array_equal(enc.codes, q2key.pack(got))
            assert np.array_equal(enc.keys, q2key.keys_from_symbols(got))
            runs = [len(q2key.run_reduce(row)) for row in got]
            assert enc.transitions.tolist() == runs


def test_per_dim_with_uniform_cuts_equals_the_global_rule_on_gaussian_data() -> None:
    x = np.random.default_rng(3).normal(size=(300, 384)).astype(np.float32)
    tau = q2key.gaussian_threshold(384)
    cuts = np.array([[-tau], [0.0], [tau]]).repeat(384, axis=1)
    assert np.array_equal(q2key.encode(x, threshold=q2key.Thresholds.per_dim(cuts)).codes, q2key.encode(x).codes)


def test_per_dim_is_scale_invariant_and_all_zero_rows_are_all_b() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(20, 50))
    th = q2key.Thresholds.per_dim(ordered_cuts(rng, 50))
    base = q2key.encode(x, threshold=th).codes
    for k in (-1000, -300, -20, 20, 300, 900):
        assert np.array_equal(q2key.encode(x * 2.0**k, threshold=th).codes, base), k
    assert q2key.symbols(np.zeros(50), threshold=th).tolist() == [1] * 50


# -- validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "error", "words"),
    [
        (lambda: q2key.Thresholds.gaussian(0), q2key.Q2KeyError, "dim"),
        (lambda: q2key.Thresholds.gaussian(2.5), TypeError, "dim"),
        (lambda: q2key.Thresholds.global_(-0.1), ValueError, "tau"),
        (lambda: q2key.Thresholds.global_(float("nan")), ValueError, "tau"),
        (lambda: q2key.Thresholds.global_("0.1"), TypeError, "tau"),
        (lambda: q2key.Thresholds.per_dim(np.zeros((2, 4))), q2key.ShapeError, "(3, n)"),
        (lambda: q2key.Thresholds.per_dim(np.zeros((3, 0))), q2key.ShapeError, "(3, n)"),
        (lambda: q2key.Thresholds.per_dim(np.array([[0, 0], [0, 1], [0, 0.5]])), ValueError, "dimension 1"),
        (lambda: q2key.Thresholds.per_dim(np.array([[0.0], [np.inf], [1.0]])), ValueError, "finite"),
        (lambda: q2key.Thresholds.per_dim(np.array([["a"], ["b"], ["c"]])), TypeError, "cuts"),
        (lambda: q2key.Thresholds(), TypeError, "Thresholds.gaussian"),
    ],
)
def test_bad_thresholds_are_rejected(make: object, error: type[Exception], words: str) -> None:
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")):
        make()  # type: ignore[operator]


def test_dimension_mismatch_is_a_shape_error() -> None:
    x = np.ones((2, 10))
    wrong = (
        q2key.Thresholds.gaussian(11),
        q2key.Thresholds.global_(0.1, dim=9),
        q2key.Thresholds.per_dim(np.zeros((3, 4))),
    )
    for th in wrong:
        with pytest.raises(q2key.ShapeError, match="threshold: thresholds are for dimension"):
            q2key.encode(x, threshold=th)
        with pytest.raises(q2key.ShapeError):
            q2key.symbols(x, threshold=th)
    with pytest.raises(TypeError, match=r"q2key\.Thresholds"):
        q2key.encode(x, threshold="0.1")  # type: ignore[arg-type]


def test_thresholds_are_immutable_and_their_cuts_read_only() -> None:
    th = q2key.Thresholds.per_dim(np.zeros((3, 4)))
    with pytest.raises(AttributeError):
        th.kind = "global"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        th._tau = 1.0
    assert th.cuts is not None
    with pytest.raises(ValueError):
        th.cuts[0, 0] = 1.0
    source = np.zeros((3, 4))
    th2 = q2key.Thresholds.per_dim(source)
    source[2] = 1.0  # the thresholds hold a copy
    assert th2 == th


# -- serialisation --------------------------------------------------------------------------------

finite = st.floats(min_value=-1.0, max_value=1.0, allow_nan=False, allow_subnormal=True)


@st.composite
def any_thresholds(draw: st.DrawFn) -> q2key.Thresholds:
    kind = draw(st.sampled_from(["gaussian", "global", "per_dim"]))
    if kind == "gaussian":
        return q2key.Thresholds.gaussian(draw(st.integers(1, 5000)))
    if kind == "global":
        dim = draw(st.one_of(st.none(), st.integers(1, 5000)))
        return q2key.Thresholds.global_(draw(st.floats(0.0, 10.0, allow_subnormal=True)), dim=dim)
    dim = draw(st.integers(1, 20))
    values = draw(st.lists(finite, min_size=3 * dim, max_size=3 * dim))
    return q2key.Thresholds.per_dim(np.sort(np.array(values).reshape(3, dim), axis=0))


@settings(max_examples=200, deadline=None)
@given(any_thresholds())
def test_json_bytes_and_pickle_round_trip_exactly(th: q2key.Thresholds) -> None:
    for back in (
        q2key.Thresholds.from_json(th.to_json()),
        q2key.Thresholds.from_bytes(th.to_bytes()),
        pickle.loads(pickle.dumps(th)),
        copy.deepcopy(th),
    ):
        assert back == th and hash(back) == hash(th)
        assert back.kind == th.kind and back.dim == th.dim
        assert repr(back) == repr(th)
        if th.cuts is not None:
            assert back.cuts is not None and back.cuts.tobytes() == th.cuts.tobytes()


def test_equality_distinguishes_kinds_and_values() -> None:
    a = q2key.Thresholds.global_(0.1)
    assert a == q2key.Thresholds.global_(0.1)
    assert a != q2key.Thresholds.global_(0.1, dim=5)
    assert a != q2key.Thresholds.global_(0.10000000000000002)
    assert q2key.Thresholds.gaussian(4) != q2key.Thresholds.global_(q2key.gaussian_threshold(4), dim=4)
    assert a != 0.1
    assert len({a, q2key.Thresholds.global_(0.1), q2key.Thresholds.gaussian(4)}) == 2


def test_every_corruption_of_the_bytes_is_detected() -> None:
    th = q2key.Thresholds.per_dim(ordered_cuts(np.random.default_rng(5), 6))
    data = th.to_bytes()
    for n in range(len(data)):
        with pytest.raises(q2key.Q2KeyError, match="thresholds bytes"):
            q2key.Thresholds.from_bytes(data[:n])
    for i in range(len(data)):
        for bit in (0, 3, 7):
            flipped = bytearray(data)
            flipped[i] ^= 1 << bit
            with pytest.raises(q2key.Q2KeyError, match="thresholds bytes"):
                q2key.Thresholds.from_bytes(bytes(flipped))


def test_bad_json_is_a_clear_error() -> None:
    good = q2key.Thresholds.global_(0.2).to_json()
    for text, words in [
        ("not json", "not valid JSON"),
        ("[]", "format"),
        (good.replace('"version": 1', '"version": 3'), "unsupported version"),
        (good.replace('"version": 1', '"version": 2'), "rotation"),  # version 2 is a rotation's
        (good.replace('"global"', '"magic"'), "unknown kind"),
        (good.replace("0.2", "-0.2"), "tau"),
    ]:
        with pytest.raises(ValueError, match=words):
            q2key.Thresholds.from_json(text)


def test_repr_says_what_the_thresholds_are() -> None:
    assert repr(q2key.Thresholds.global_(0.25)) == "Thresholds.global_(tau=0.25)"
    assert repr(q2key.Thresholds.gaussian(384)).startswith("Thresholds.gaussian(dim=384)")
    r = repr(q2key.Thresholds.per_dim(np.array([[-0.2, -0.1], [0.0, 0.01], [0.1, 0.3]])))
    assert "per_dim dim=2" in r and "low -0.2…-0.1" in r and "high 0.1…0.3" in r
