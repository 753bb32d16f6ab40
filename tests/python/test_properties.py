"""Hypothesis property tests of the algebraic laws of SPEC.md, through the Python API."""

from __future__ import annotations

import numpy as np
import q2key
from conftest import ref_encode, ref_key, ref_run_reduce, ref_symbol_lee
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

SETTINGS = settings(max_examples=150, deadline=None, database=None)

symbol_values = st.integers(min_value=0, max_value=3)


def symbol_arrays(min_len: int = 1, max_len: int = 200) -> st.SearchStrategy[np.ndarray]:
    return hnp.arrays(np.uint8, st.integers(min_len, max_len), elements=symbol_values)


@st.composite
def symbol_pairs(draw: st.DrawFn, max_len: int = 200) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(1, max_len))
    a = draw(hnp.arrays(np.uint8, n, elements=symbol_values))
    b = draw(hnp.arrays(np.uint8, n, elements=symbol_values))
    return a, b


@st.composite
def runny_sequences(draw: st.DrawFn, max_len: int = 300) -> np.ndarray:
    """Symbol sequences made of runs, so run-reduction has something to do."""
    runs = draw(st.lists(st.tuples(symbol_values, st.integers(1, 12)), min_size=1, max_size=60))
    s = np.concatenate([np.full(length, sym, np.uint8) for sym, length in runs])
    return s[:max_len]


@st.composite
def prefix_sharing_pairs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """Two sequences that often share a long common start, so key prefixes are tested both ways."""
    common = draw(runny_sequences(max_len=150))
    tail_a = draw(runny_sequences(max_len=80))
    tail_b = draw(runny_sequences(max_len=80))
    cut_a = draw(st.integers(1, len(common)))
    cut_b = draw(st.integers(1, len(common)))
    return np.concatenate([common[:cut_a], tail_a]), np.concatenate([common[:cut_b], tail_b])


def moderate_floats() -> st.SearchStrategy[float]:
    """0 or magnitudes in [1e-3, 1e3]: power-of-two scalings of these stay normal floats."""
    return st.one_of(
        st.just(0.0),
        st.floats(1e-3, 1e3),
        st.floats(-1e3, -1e-3),
    )


@st.composite
def float_rows(draw: st.DrawFn, dtype: type) -> np.ndarray:
    rows = draw(st.integers(1, 6))
    n = draw(st.integers(1, 100))
    return draw(hnp.arrays(dtype, (rows, n), elements=moderate_floats()))


# --- Gray map / Lee distance ----------------------------------------------------------------


@SETTINGS
@given(symbol_pairs())
def test_gray_isometry(pair: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = pair
    ca, cb = q2key.pack(a), q2key.pack(b)
    d = int(q2key.lee(ca, cb))
    assert d == int(ref_symbol_lee(a, b))
    assert d == int(np.unpackbits(ca ^ cb).sum())
    assert 0 <= d <= 2 * len(a)
    assert (d == 0) == np.array_equal(a, b)


@SETTINGS
@given(symbol_pairs(max_len=80), st.data())
def test_lee_is_a_metric(pair: tuple[np.ndarray, np.ndarray], data: st.DataObject) -> None:
    a, b = pair
    c = data.draw(hnp.arrays(np.uint8, len(a), elements=symbol_values))
    pa, pb, pc = q2key.pack(a), q2key.pack(b), q2key.pack(c)
    ab, bc, ac = (int(q2key.lee(x, y)) for x, y in ((pa, pb), (pb, pc), (pa, pc)))
    assert ab == int(q2key.lee(pb, pa))
    assert ac <= ab + bc


@SETTINGS
@given(symbol_pairs())
def test_weighted_lee_unit_weights_is_lee(pair: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = pair
    ca, cb = q2key.pack(a), q2key.pack(b)
    assert float(q2key.weighted_lee(ca, cb, weights=(1.0, 1.0, 2.0))) == float(q2key.lee(ca, cb))


@SETTINGS
@given(
    symbol_pairs(),
    st.tuples(*[st.floats(0, 100, allow_nan=False, allow_infinity=False)] * 3),
)
def test_weighted_lee_counts_property_changes(
    pair: tuple[np.ndarray, np.ndarray], w: tuple[float, float, float]
) -> None:
    a, b = pair
    ga, gb = a ^ (a >> 1), b ^ (b >> 1)
    x = ga ^ gb
    expected = w[0] * np.sum(x == 1) + w[1] * np.sum(x == 2) + w[2] * np.sum(x == 3)
    got = float(q2key.weighted_lee(q2key.pack(a), q2key.pack(b), weights=w))
    assert np.isclose(got, expected, rtol=1e-12, atol=1e-9)


# --- complement -----------------------------------------------------------------------------


@SETTINGS
@given(symbol_arrays())
def test_complement_laws(s: np.ndarray) -> None:
    n = len(s)
    c = q2key.pack(s)
    k = q2key.complement(c, n)
    assert int(q2key.lee(c, k)) == 2 * n
    assert not np.array_equal(c, k), "no code equals its complement"
    assert np.array_equal(q2key.complement(k, n), c)
    assert np.array_equal(q2key.unpack(k, n), (s + 2) % 4)
    assert np.array_equal(k, q2key.pack((s + 2) % 4)), "padding stays zero"


# --- pack / unpack --------------------------------------------------------------------------


@SETTINGS
@given(hnp.arrays(np.uint8, st.tuples(st.integers(0, 5), st.integers(1, 70)), elements=symbol_values))
def test_pack_unpack_roundtrip(s: np.ndarray) -> None:
    c = q2key.pack(s)
    assert c.shape == (s.shape[0], -(-s.shape[1] // 4))
    assert np.array_equal(q2key.unpack(c, s.shape[1]), s)


# --- run-reduction and keys -----------------------------------------------------------------


@SETTINGS
@given(st.one_of(runny_sequences(), symbol_arrays()))
def test_run_reduction(s: np.ndarray) -> None:
    r = q2key.run_reduce(s)
    assert np.array_equal(r, ref_run_reduce(s))
    assert r[0] == s[0]
    assert (r[1:] != r[:-1]).all(), "adjacent elements differ"
    assert np.array_equal(q2key.run_reduce(r), r), "idempotent"
    assert 1 <= len(r) <= len(s)


@SETTINGS
@given(st.one_of(runny_sequences(), symbol_arrays()))
def test_key_digits(s: np.ndarray) -> None:
    r = ref_run_reduce(s)
    key = int(q2key.keys_from_symbols(s))
    assert key == ref_key(r)
    m = min(len(r), 32)
    for i in range(32):
        digit = (key >> (62 - 2 * i)) & 3
        assert digit == (int(r[i]) if i < m else 0), f"digit {i}"


@SETTINGS
@given(prefix_sharing_pairs())
def test_key_prefix_law(pair: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = pair
    ra, rb = q2key.run_reduce(a), q2key.run_reduce(b)
    ka, kb = int(q2key.keys_from_symbols(a)), int(q2key.keys_from_symbols(b))
    for j in range(min(32, len(ra), len(rb)) + 1):
        top = ((1 << (2 * j)) - 1) << (64 - 2 * j) if j else 0
        share = (ka & top) == (kb & top)
        agree = np.array_equal(ra[:j], rb[:j])
        assert share == agree, f"j={j}"
        if share:
            # Both keys lie in the exact prefix range [K & m, K | ~m].
            lo, hi = ka & top, ka | (~top & (2**64 - 1))
            assert lo <= kb <= hi


@SETTINGS
@given(st.data())
def test_encode_is_consistent_with_its_parts(data: st.DataObject) -> None:
    x = data.draw(float_rows(np.float64))
    enc = q2key.encode(x)
    s = q2key.symbols(x)
    assert np.array_equal(enc.codes, q2key.pack(s))
    assert np.array_equal(enc.keys, q2key.keys_from_symbols(s))
    assert enc.transitions.tolist() == [len(q2key.run_reduce(row)) for row in s]
    ref = ref_encode(x)
    ok = ~ref.ambiguous
    assert np.array_equal(s[ok], ref.symbols[ok])


# --- scale invariance -----------------------------------------------------------------------


def _same(a: q2key.Encoded, b: q2key.Encoded) -> None:
    assert np.array_equal(a.codes, b.codes)
    assert np.array_equal(a.keys, b.keys)
    assert np.array_equal(a.transitions, b.transitions)


# The extremes, always run: the largest scalings that keep these values normal floats.
_EDGE_ROW = np.array([[0.5, -3.0, 0.0, 0.01, -0.02, 2.5, 1.0]])


@SETTINGS
@given(float_rows(np.float32), st.integers(-100, 100))
@example(_EDGE_ROW.astype(np.float32), -100)
@example(_EDGE_ROW.astype(np.float32), 100)
def test_scale_invariance_float32(x: np.ndarray, k: int) -> None:
    scaled = np.ldexp(x, k).astype(np.float32)
    _same(q2key.encode(scaled), q2key.encode(x))


@SETTINGS
@given(
    float_rows(np.float64),
    st.one_of(st.integers(-480, 480), st.integers(600, 1000), st.integers(-1000, -600)),
)
@example(_EDGE_ROW, -1000)
@example(_EDGE_ROW, -520)
@example(_EDGE_ROW, 520)
@example(_EDGE_ROW, 1000)
def test_scale_invariance_float64(x: np.ndarray, k: int) -> None:
    _same(q2key.encode(np.ldexp(x, k)), q2key.encode(x))


@SETTINGS
@given(float_rows(np.float64), st.floats(0.01, 0.5))
def test_scale_invariance_with_custom_threshold(x: np.ndarray, t: float) -> None:
    _same(q2key.encode(np.ldexp(x, 37), threshold=t), q2key.encode(x, threshold=t))
