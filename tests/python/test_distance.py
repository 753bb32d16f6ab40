"""lee / lee_matrix / weighted_lee against numpy references."""

from __future__ import annotations

import numpy as np
import pytest
import q2key
from conftest import ref_lee_matrix, ref_pack, ref_popcount_lee, ref_symbol_lee, ref_weighted_lee

WIDTHS = [1, 2, 3, 7, 8, 9, 16, 24, 31, 32, 33, 48, 64, 96, 128, 250, 256, 1024]


def _codes(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.integers(0, 256, size=shape, dtype=np.uint8)


# --- lee ------------------------------------------------------------------------------------


@pytest.mark.parametrize("width", WIDTHS)
def test_lee_rowwise_matches_popcount(rng: np.random.Generator, width: int) -> None:
    a, b = _codes(rng, 37, width), _codes(rng, 37, width)
    d = q2key.lee(a, b)
    assert d.dtype == np.uint32 and d.shape == (37,)
    assert np.array_equal(d, ref_popcount_lee(a, b))
    assert (q2key.lee(a, a) == 0).all()
    assert np.array_equal(q2key.lee(b, a), d)


@pytest.mark.parametrize("width", WIDTHS)
def test_lee_one_to_many_matches_popcount(rng: np.random.Generator, width: int) -> None:
    q, db = _codes(rng, width), _codes(rng, 301, width)
    expected = ref_popcount_lee(q[None, :], db)
    for d in (q2key.lee(q, db), q2key.lee(db, q)):
        assert d.dtype == np.uint32 and d.shape == (301,)
        assert np.array_equal(d, expected)


def test_lee_extremes() -> None:
    zero = np.zeros((1, 40), np.uint8)
    ones = np.full((1, 40), 0xFF, np.uint8)
    assert q2key.lee(zero, ones).tolist() == [320]
    assert q2key.lee(zero[0], ones[0]).tolist() == 320
    assert q2key.lee(np.array([0b1000_0001], np.uint8), np.array([0], np.uint8)).tolist() == 2


@pytest.mark.parametrize(
    ("sa", "sb", "lead"),
    [
        ((5, 12), (12,), (5,)),
        ((12,), (5, 12), (5,)),
        ((1, 12), (4, 12), (4,)),
        ((4, 12), (1, 12), (4,)),
        ((2, 1, 12), (3, 12), (2, 3)),
        ((3, 12), (2, 1, 12), (2, 3)),
        ((2, 3, 4, 12), (4, 12), (2, 3, 4)),
        ((12,), (12,), ()),
        ((0, 12), (12,), (0,)),
    ],
)
def test_lee_broadcasting(
    rng: np.random.Generator, sa: tuple[int, ...], sb: tuple[int, ...], lead: tuple[int, ...]
) -> None:
    a, b = _codes(rng, *sa), _codes(rng, *sb)
    d = q2key.lee(a, b)
    assert d.shape == lead and d.dtype == np.uint32
    assert np.array_equal(d, ref_popcount_lee(a, b))
    w = q2key.weighted_lee(a, b, weights=(0.5, 1.25, 3.0))
    assert w.shape == lead and w.dtype == np.float64
    assert np.array_equal(w, ref_weighted_lee(a, b, (0.5, 1.25, 3.0)))


def test_lee_non_contiguous_and_fortran(rng: np.random.Generator) -> None:
    a, b = _codes(rng, 40, 50), _codes(rng, 40, 50)
    expected = ref_popcount_lee(a[::2, ::2], b[::2, ::2])
    assert np.array_equal(q2key.lee(a[::2, ::2], b[::2, ::2]), expected)
    assert np.array_equal(q2key.lee(np.asfortranarray(a), b), ref_popcount_lee(a, b))
    assert np.array_equal(q2key.lee(a[3, ::2], b[:, ::2]), ref_popcount_lee(a[3, ::2], b[:, ::2]))


@pytest.mark.parametrize(("sa", "sb"), [((5, 12), (5, 11)), ((12,), (5, 11)), ((5, 11), (12,)), ((3,), (4,))])
def test_lee_width_mismatch_is_a_shape_error(
    rng: np.random.Generator, sa: tuple[int, ...], sb: tuple[int, ...]
) -> None:
    with pytest.raises(q2key.ShapeError):
        q2key.lee(_codes(rng, *sa), _codes(rng, *sb))
    with pytest.raises(q2key.ShapeError):
        q2key.weighted_lee(_codes(rng, *sa), _codes(rng, *sb))


def test_lee_non_broadcastable_leading_shapes_is_a_shape_error(rng: np.random.Generator) -> None:
    with pytest.raises(q2key.ShapeError):
        q2key.lee(_codes(rng, 2, 8), _codes(rng, 3, 8))


@pytest.mark.parametrize("dtype", [np.int8, np.uint16, np.int64, np.float32, bool])
def test_lee_rejects_non_uint8_codes(rng: np.random.Generator, dtype: type) -> None:
    good = _codes(rng, 4, 8)
    bad = good.astype(dtype)
    for a, b in ((bad, good), (good, bad), (bad[0], good), (good, bad[0]), (bad, bad)):
        with pytest.raises(q2key.DTypeError):
            q2key.lee(a, b)
    with pytest.raises(q2key.DTypeError):
        q2key.lee_matrix(bad, good)
    with pytest.raises(q2key.DTypeError):
        q2key.weighted_lee(good, bad)


def test_zero_dimensional_codes_are_shape_errors() -> None:
    with pytest.raises(q2key.ShapeError):
        q2key.lee(np.uint8(1), np.zeros(1, np.uint8))


def test_gray_isometry_on_random_symbols(rng: np.random.Generator) -> None:
    for dim in (1, 3, 4, 5, 17, 64, 101, 384):
        sa = rng.integers(0, 4, size=(50, dim))
        sb = rng.integers(0, 4, size=(50, dim))
        d = q2key.lee(q2key.pack(sa), q2key.pack(sb))
        assert np.array_equal(d, ref_symbol_lee(sa, sb)), f"dim {dim}"
        assert (d <= 2 * dim).all()


def test_lee_symbol_pairs() -> None:
    # A–B, B–C, C–D, D–A are 1 apart; A–C and B–D are 2 apart.
    for a in range(4):
        for b in range(4):
            expected = min(abs(a - b), 4 - abs(a - b))
            assert int(q2key.lee(q2key.pack([a]), q2key.pack([b]))) == expected, (a, b)


# --- lee_matrix -----------------------------------------------------------------------------


@pytest.mark.parametrize("width", WIDTHS)
def test_lee_matrix_matches_reference(rng: np.random.Generator, width: int) -> None:
    a, b = _codes(rng, 29, width), _codes(rng, 203, width)
    d = q2key.lee_matrix(a, b)
    assert d.shape == (29, 203) and d.dtype == np.uint32
    assert np.array_equal(d, ref_lee_matrix(a, b))


@pytest.mark.parametrize(("m", "n"), [(1, 1), (1, 1000), (1000, 1), (7, 9), (64, 64), (65, 130)])
def test_lee_matrix_shapes(rng: np.random.Generator, m: int, n: int) -> None:
    a, b = _codes(rng, m, 24), _codes(rng, n, 24)
    assert np.array_equal(q2key.lee_matrix(a, b), ref_lee_matrix(a, b))


def test_lee_matrix_empty_sides(rng: np.random.Generator) -> None:
    a = _codes(rng, 5, 16)
    for x, y, shape in [
        (a[:0], a, (0, 5)),
        (a, a[:0], (5, 0)),
        (a[:0], a[:0], (0, 0)),
    ]:
        d = q2key.lee_matrix(x, y)
        assert d.shape == shape and d.dtype == np.uint32


def test_lee_matrix_one_dimensional_inputs(rng: np.random.Generator) -> None:
    a, b = _codes(rng, 10), _codes(rng, 6, 10)
    assert q2key.lee_matrix(a, b).shape == (1, 6)
    assert np.array_equal(q2key.lee_matrix(a, b)[0], ref_popcount_lee(a[None], b))
    assert q2key.lee_matrix(b, a).shape == (6, 1)


def test_lee_matrix_layouts_and_threads(rng: np.random.Generator) -> None:
    a, b = _codes(rng, 300, 48), _codes(rng, 900, 48)
    expected = ref_lee_matrix(a, b)
    assert np.array_equal(q2key.lee_matrix(np.asfortranarray(a), b[::-1][::-1]), expected)
    assert np.array_equal(q2key.lee_matrix(a[::2], b[:, :]), expected[::2])
    for threads in (1, 2, None):
        assert np.array_equal(q2key.lee_matrix(a, b, threads=threads), expected), threads


def test_lee_matrix_errors(rng: np.random.Generator) -> None:
    with pytest.raises(q2key.ShapeError):
        q2key.lee_matrix(_codes(rng, 3, 8), _codes(rng, 3, 9))
    for threads, error in ((0, q2key.Q2KeyError), (-2, q2key.Q2KeyError), (1.0, q2key.DTypeError)):
        with pytest.raises(error, match=r"^threads: "):
            q2key.lee_matrix(_codes(rng, 3, 8), _codes(rng, 3, 8), threads=threads)  # type: ignore[arg-type]


# --- weighted_lee ---------------------------------------------------------------------------


@pytest.mark.parametrize("width", [1, 3, 8, 33, 96])
def test_weighted_lee_unit_weights_equal_lee(rng: np.random.Generator, width: int) -> None:
    a, b = _codes(rng, 50, width), _codes(rng, 50, width)
    w = q2key.weighted_lee(a, b, weights=(1, 1, 2))
    assert w.dtype == np.float64
    assert np.array_equal(w, q2key.lee(a, b).astype(np.float64))
    assert np.array_equal(q2key.weighted_lee(a, b), w), "default weights are (1, 1, 2)"


def test_weighted_lee_counts_example() -> None:
    a, b = q2key.pack([0, 0, 0]), q2key.pack([1, 3, 2])
    # A→B: magnitude only; A→D: sign only; A→C: both.
    assert float(q2key.weighted_lee(a, b, weights=(1.0, 10.0, 100.0))) == 111.0
    a2 = q2key.pack([0, 0, 0, 0, 1, 2, 3, 3])
    b2 = q2key.pack([1, 1, 3, 2, 1, 1, 0, 1])
    expected = ref_weighted_lee(a2, b2, (1.0, 10.0, 100.0))
    assert float(q2key.weighted_lee(a2, b2, weights=(1.0, 10.0, 100.0))) == float(expected)
    # Gray XORs: (A,B) 01 m, (A,B) 01 m, (A,D) 10 s, (A,C) 11 b, (B,B) 00, (C,B) 10 s,
    # (D,A) 10 s, (D,B) 11 b.
    assert float(expected) == 2 * 1.0 + 3 * 10.0 + 2 * 100.0


@pytest.mark.parametrize("weights", [(0.0, 0.0, 0.0), (0.5, 1.25, 3.0), (2.0, 0.0, 7.0), (1e-3, 1e3, 0.125)])
def test_weighted_lee_matches_reference(rng: np.random.Generator, weights: tuple[float, float, float]) -> None:
    a, b = _codes(rng, 64, 40), _codes(rng, 64, 40)
    got = q2key.weighted_lee(a, b, weights=weights)
    np.testing.assert_allclose(got, ref_weighted_lee(a, b, weights), rtol=1e-12)


def test_weighted_lee_is_symmetric_under_swap(rng: np.random.Generator) -> None:
    a, b = _codes(rng, 30, 21), _codes(rng, 30, 21)
    w = (0.3, 1.7, 2.9)
    assert np.array_equal(q2key.weighted_lee(a, b, weights=w), q2key.weighted_lee(b, a, weights=w))


@pytest.mark.parametrize(
    "weights",
    [(-1.0, 1.0, 2.0), (1.0, -0.5, 2.0), (1.0, 1.0, -2.0), (float("nan"), 1.0, 2.0), (1.0, 1.0, float("inf"))],
)
def test_weighted_lee_rejects_bad_weights(rng: np.random.Generator, weights: tuple[float, float, float]) -> None:
    a = _codes(rng, 3, 4)
    with pytest.raises(q2key.Q2KeyError, match="weights"):
        q2key.weighted_lee(a, a, weights=weights)


@pytest.mark.parametrize("weights", [(1.0, 2.0), (1.0, 2.0, 3.0, 4.0)])
def test_weighted_lee_rejects_wrong_weight_count(rng: np.random.Generator, weights: tuple[float, ...]) -> None:
    a = _codes(rng, 3, 4)
    with pytest.raises(q2key.Q2KeyError, match="weights"):
        q2key.weighted_lee(a, a, weights=weights)  # type: ignore[arg-type]


def test_packed_encode_codes_respect_the_isometry(rng: np.random.Generator) -> None:
    x = rng.normal(size=(40, 70))
    enc = q2key.encode(x)
    s = q2key.symbols(x)
    d = q2key.lee_matrix(enc.codes, enc.codes)
    expected = ref_symbol_lee(s[:, None, :], s[None, :, :])
    assert np.array_equal(d, expected)
    assert np.array_equal(ref_pack(s), enc.codes)


@pytest.mark.parametrize(
    "call",
    [
        lambda z: q2key.lee(z, z),
        lambda z: q2key.lee(z[0], z),
        lambda z: q2key.lee_matrix(z, z),
        lambda z: q2key.weighted_lee(z, z),
        lambda z: q2key.search(z, z, 1),
        lambda z: q2key.unpack(z, 1),
        lambda z: q2key.complement(z, 1),
    ],
    ids=["lee", "lee-1d", "lee_matrix", "weighted_lee", "search", "unpack", "complement"],
)
def test_zero_width_codes_are_shape_errors(call: object) -> None:
    """Codes 0 bytes wide are an error of the package's own family, naming the argument."""
    with pytest.raises(q2key.ShapeError):
        call(np.zeros((2, 0), np.uint8))  # type: ignore[operator]
