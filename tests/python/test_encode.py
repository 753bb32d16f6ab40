"""encode() and symbols(): values against the numpy reference, dtypes, layouts and errors."""

from __future__ import annotations

import re

import numpy as np
import pytest
import q2key
from conftest import assert_rows_equal, mixed_rows, ref_encode, ref_pack, ref_threshold

DIMS = [*range(1, 71), 100, 384, 1000, 1023]


def assert_encoded_equal(a: q2key.Encoded, b: q2key.Encoded, what: str = "") -> None:
    assert a.dim == b.dim, what
    for name in ("codes", "keys", "transitions"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype, f"{what}: {name} dtype {x.dtype} != {y.dtype}"
        assert x.shape == y.shape, f"{what}: {name} shape {x.shape} != {y.shape}"
        assert_rows_equal(x, y, f"{what}: {name}")


def assert_matches_reference(x: np.ndarray, enc: q2key.Encoded, threshold: float | None = None) -> None:
    ref = ref_encode(x, threshold)
    ok = ~ref.ambiguous
    assert ok.mean() > 0.9, "too many rows near a threshold for a meaningful comparison"
    assert_rows_equal(enc.codes[ok], ref.codes[ok], "codes")
    assert_rows_equal(enc.keys[ok], ref.keys[ok], "keys")
    assert_rows_equal(enc.transitions[ok], ref.transitions[ok], "transitions")


# --- values -----------------------------------------------------------------------------------


@pytest.mark.parametrize("dim", DIMS)
def test_matches_reference_for_many_dims(rng: np.random.Generator, dim: int) -> None:
    x = mixed_rows(rng, 24, dim)
    for dtype in (np.float32, np.float64):
        xd = x.astype(dtype)
        enc = q2key.encode(xd)
        width = -(-dim // 4)
        assert enc.codes.shape == (24, width) and enc.codes.dtype == np.uint8
        assert enc.keys.shape == (24,) and enc.keys.dtype == np.uint64
        assert enc.transitions.shape == (24,) and enc.transitions.dtype == np.uint32
        assert enc.dim == dim and len(enc) == 24
        assert_matches_reference(xd, enc)
        ref = ref_encode(xd)
        ok = ~ref.ambiguous
        assert_rows_equal(q2key.symbols(xd)[ok], ref.symbols[ok], f"symbols dim {dim}")


def test_large_batch_matches_reference(rng: np.random.Generator) -> None:
    x = rng.normal(size=(3000, 96)).astype(np.float32)
    assert_matches_reference(x, q2key.encode(x))


@pytest.mark.parametrize("dim", [1, 3, 4, 5, 8, 33, 384])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_all_zero_row_is_all_b(dim: int, dtype: type, rng: np.random.Generator) -> None:
    x = rng.normal(size=(3, dim)).astype(dtype)
    x[1] = 0.0
    x[2] = -0.0
    enc = q2key.encode(x)
    for r in (1, 2):
        assert int(enc.keys[r]) == 1 << 62, f"row {r}: key {int(enc.keys[r]):#x}"
        assert int(enc.transitions[r]) == 1
        assert np.array_equal(enc.codes[r], ref_pack(np.ones(dim, np.uint8)))
        assert (q2key.symbols(x)[r] == 1).all()
    assert enc.codes[1, -1] & ~np.uint8([0xFF, 0xC0, 0xF0, 0xFC][dim % 4]) == 0


def test_all_zero_row_exact_bytes() -> None:
    enc = q2key.encode(np.zeros(5, dtype=np.float32))
    assert enc.codes.tolist() == [[0x55, 0x40]]
    assert enc.keys.tolist() == [1 << 62]
    assert enc.transitions.tolist() == [1]


def test_boundaries_belong_to_the_lower_cell() -> None:
    # n = 4, threshold 0.5: the unit vector (±0.5, ...) sits exactly on ±τ.
    assert q2key.symbols(np.array([1.0, 1.0, 1.0, 1.0]), threshold=0.5).tolist() == [2, 2, 2, 2]
    assert q2key.symbols(np.array([-1.0, -1.0, -1.0, -1.0]), threshold=0.5).tolist() == [0, 0, 0, 0]
    assert q2key.symbols(np.array([1.0, -1.0, 1.0, -1.0], np.float32), threshold=0.5).tolist() == [2, 0, 2, 0]
    # A one-hot vector is exactly 1 after normalisation: with threshold 1 it is C, not D.
    assert q2key.symbols(np.array([0.0, 3.0, 0.0]), threshold=1.0).tolist() == [1, 2, 1]
    assert q2key.symbols(np.array([0.0, -3.0, 0.0]), threshold=1.0).tolist() == [1, 0, 1]


def test_docstring_example_values() -> None:
    assert q2key.symbols(np.array([0.9, -0.1, 0.05, -0.8]), threshold=0.3).tolist() == [3, 1, 2, 0]
    enc = q2key.encode(np.array([[0.9, -0.1, 0.05, -0.8, 0.3]], dtype=np.float32))
    assert enc.codes.shape == (1, 2) and int(enc.transitions[0]) == 5


def test_gaussian_threshold() -> None:
    for dim in (1, 4, 5, 100, 384, 4096):
        assert q2key.gaussian_threshold(dim) == pytest.approx(0.6745 / np.sqrt(dim), rel=1e-15)
    assert q2key.gaussian_threshold(np.int64(16)) == pytest.approx(0.6745 / 4)
    with pytest.raises(q2key.Q2KeyError):
        q2key.gaussian_threshold(0)


def test_gaussian_threshold_negative_dim_is_a_q2key_error() -> None:
    with pytest.raises(q2key.Q2KeyError, match="dim"):
        q2key.gaussian_threshold(-1)


def test_default_threshold_equals_explicit_gaussian_threshold(rng: np.random.Generator) -> None:
    x = rng.normal(size=(50, 77))
    assert_encoded_equal(q2key.encode(x), q2key.encode(x, threshold=q2key.gaussian_threshold(77)))


# --- scale invariance -----------------------------------------------------------------------


def _moderate(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Values with magnitudes in [0.01, 3]: power-of-two scalings keep them normal floats."""
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.01, 3.0, size=shape)


# Scaling by powers of two is a property test (test_properties.py); here, other scalars.


def test_scale_invariance_positive_non_power_scalars(rng: np.random.Generator) -> None:
    x = _moderate(rng, (40, 67))
    ok = ~ref_encode(x).ambiguous
    base = q2key.encode(x[ok])
    for c in (3.0, 0.1, 1e-7, 12345.678):
        assert_encoded_equal(q2key.encode(c * x[ok]), base, f"scale {c}")


@pytest.mark.parametrize("scale", [1e300, 1e-300, 1e-305])
def test_huge_and_tiny_float64_rows(rng: np.random.Generator, scale: float) -> None:
    x = _moderate(rng, (30, 50))
    y = x * scale
    assert np.isfinite(y).all() and (y != 0).all()
    enc = q2key.encode(y)
    assert_matches_reference(y, enc)
    ok = ~ref_encode(x).ambiguous
    assert_encoded_equal(q2key.encode(y[ok]), q2key.encode(x[ok]), f"scale {scale}")


def test_subnormal_float64_rows_match_reference(rng: np.random.Generator) -> None:
    y = _moderate(rng, (30, 40)) * 1e-310
    assert (np.abs(y) < np.finfo(np.float64).tiny).all()
    assert_matches_reference(y, q2key.encode(y))


def test_rows_whose_sum_of_squares_overflows(rng: np.random.Generator) -> None:
    x = rng.normal(size=(20, 40))
    x[:, 0] = 1.5e308 * np.sign(x[:, 0])
    x[:, 1] = 1e200
    x[::2, 2] = 1e-300
    with np.errstate(over="ignore"):
        assert np.isinf((x * x).sum(axis=1)).all()
    assert_matches_reference(x, q2key.encode(x))


def test_rows_mixing_huge_and_tiny_values(rng: np.random.Generator) -> None:
    x = _moderate(rng, (20, 30))
    x[:, ::3] *= 1e250
    x[:, 1::3] *= 1e-250
    enc = q2key.encode(x)
    assert_matches_reference(x, enc)
    # The tiny values are positive or negative near-zero coordinates: B or C, never A or D.
    s = q2key.symbols(x)
    tiny = s[:, 1::3]
    assert np.array_equal(tiny, np.where(x[:, 1::3] > 0, 2, 1))


# --- thresholds -----------------------------------------------------------------------------


def test_threshold_zero_gives_only_strong_symbols(rng: np.random.Generator) -> None:
    x = rng.normal(size=(30, 41))
    x[:, 5] = 0.0
    s = q2key.symbols(x, threshold=0.0)
    # v > 0 → D; v ≤ −0 → A (a zero coordinate of a non-zero row lies on the boundary: A).
    assert np.array_equal(s, np.where(x > 0, 3, 0))
    assert_matches_reference(x, q2key.encode(x, threshold=0.0), threshold=0.0)


@pytest.mark.parametrize("threshold", [1.0, 2.0, 1e6])
def test_threshold_large_gives_only_weak_symbols(rng: np.random.Generator, threshold: float) -> None:
    x = rng.normal(size=(30, 41))
    s = q2key.symbols(x, threshold=threshold)
    assert np.array_equal(s, np.where(x > 0, 2, 1))
    enc = q2key.encode(x, threshold=threshold)
    assert np.array_equal(enc.codes, ref_pack(np.where(x > 0, 2, 1)))


@pytest.mark.parametrize("threshold", [0.01, 0.05, 0.1, 0.3, np.float32(0.2), 1])
def test_custom_threshold_matches_reference(rng: np.random.Generator, threshold: float) -> None:
    x = mixed_rows(rng, 60, 64)
    for dtype in (np.float32, np.float64):
        xd = x.astype(dtype)
        assert_matches_reference(xd, q2key.encode(xd, threshold=threshold), threshold=float(threshold))


def test_threshold_changes_the_result(rng: np.random.Generator) -> None:
    x = rng.normal(size=(10, 64))
    a = q2key.encode(x).codes
    b = q2key.encode(x, threshold=ref_threshold(64) * 2).codes
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("threshold", [-0.1, -1e-300, float("nan"), float("inf"), float("-inf")])
def test_bad_threshold_is_rejected(rng: np.random.Generator, threshold: float) -> None:
    x = rng.normal(size=(3, 8))
    with pytest.raises(q2key.Q2KeyError, match="threshold"):
        q2key.encode(x, threshold=threshold)
    with pytest.raises(q2key.Q2KeyError, match="threshold"):
        q2key.symbols(x, threshold=threshold)


# --- ranks and shapes -----------------------------------------------------------------------


def test_one_dimensional_input_gives_one_row(rng: np.random.Generator) -> None:
    x = rng.normal(size=37)
    enc = q2key.encode(x)
    assert enc.codes.shape == (1, 10) and enc.keys.shape == (1,) and enc.transitions.shape == (1,)
    assert_encoded_equal(enc, q2key.encode(x[None, :]))
    s = q2key.symbols(x)
    assert s.shape == (37,) and s.dtype == np.uint8
    assert np.array_equal(s, q2key.symbols(x[None, :])[0])


def test_list_input(rng: np.random.Generator) -> None:
    x = rng.normal(size=(4, 9))
    assert_encoded_equal(q2key.encode(x.tolist()), q2key.encode(x))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 4, 10])
def test_empty_batch(dtype: type, n: int) -> None:
    enc = q2key.encode(np.zeros((0, n), dtype=dtype))
    assert enc.codes.shape == (0, -(-n // 4)) and enc.codes.dtype == np.uint8
    assert enc.keys.shape == (0,) and enc.keys.dtype == np.uint64
    assert enc.transitions.shape == (0,) and enc.transitions.dtype == np.uint32
    assert enc.dim == n and len(enc) == 0
    s = q2key.symbols(np.zeros((0, n), dtype=dtype))
    assert s.shape == (0, n) and s.dtype == np.uint8


@pytest.mark.parametrize(
    "x",
    [np.float64(1.5), np.array(2.0), np.zeros((2, 3, 4)), np.zeros((1, 1, 1, 1), np.float32)],
    ids=["scalar", "0d", "3d", "4d"],
)
def test_bad_rank_is_a_shape_error(x: np.ndarray) -> None:
    with pytest.raises(q2key.ShapeError, match="x"):
        q2key.encode(x)
    with pytest.raises(q2key.ShapeError):
        q2key.symbols(x)


@pytest.mark.parametrize("shape", [(0,), (3, 0), (0, 0)])
def test_zero_dimension_is_a_shape_error(shape: tuple[int, ...]) -> None:
    with pytest.raises(q2key.ShapeError):
        q2key.encode(np.zeros(shape))
    with pytest.raises(q2key.ShapeError):
        q2key.symbols(np.zeros(shape, np.float32))


def test_error_hierarchy() -> None:
    assert issubclass(q2key.Q2KeyError, ValueError)
    assert issubclass(q2key.NonFiniteError, q2key.Q2KeyError)
    assert issubclass(q2key.ShapeError, q2key.Q2KeyError)
    assert issubclass(q2key.DTypeError, TypeError)
    assert not issubclass(q2key.DTypeError, ValueError)


# --- non-finite input -----------------------------------------------------------------------


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("row", [0, 3, 6])
def test_non_finite_names_the_row(rng: np.random.Generator, bad: float, dtype: type, row: int) -> None:
    x = rng.normal(size=(7, 13)).astype(dtype)
    x[row, 5] = bad
    before = x.copy()
    with pytest.raises(q2key.NonFiniteError) as info:
        q2key.encode(x)
    msg = str(info.value)
    assert f"row {row}" in msg, msg
    assert re.match(r"x\b", msg), f"message should name the argument x: {msg}"
    with pytest.raises(q2key.NonFiniteError, match=f"row {row}"):
        q2key.symbols(x)
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("threads", [1, 2, None])
def test_non_finite_row_in_a_large_parallel_batch(rng: np.random.Generator, threads: int | None) -> None:
    x = rng.normal(size=(5000, 64)).astype(np.float32)
    x[4321, 63] = np.nan
    with pytest.raises(q2key.NonFiniteError, match="row 4321"):
        q2key.encode(x, threads=threads)


def test_non_finite_in_one_dimensional_input_is_row_0(rng: np.random.Generator) -> None:
    x = rng.normal(size=20)
    x[7] = np.inf
    with pytest.raises(q2key.NonFiniteError, match="row 0"):
        q2key.encode(x)


def test_float16_overflowing_value_is_non_finite() -> None:
    with np.errstate(over="ignore"):
        x = np.array([[1.0, 2.0], [1e6, 1.0]]).astype(np.float16)
    with pytest.raises(q2key.NonFiniteError, match="row 1"):
        q2key.encode(x)


# --- dtypes ---------------------------------------------------------------------------------


def test_float16_matches_reference(rng: np.random.Generator) -> None:
    x = mixed_rows(rng, 40, 50)
    x[4] *= 1e-6  # below float16 normals but not zero
    with np.errstate(over="ignore"):
        x16 = x.astype(np.float16)
    x16 = x16[np.isfinite(x16).all(axis=1)]
    assert x16.shape[0] > 30
    assert_matches_reference(x16, q2key.encode(x16))


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint64])
def test_integer_inputs_match_reference(rng: np.random.Generator, dtype: type) -> None:
    info = np.iinfo(dtype)
    lo, hi = max(info.min, -1000), min(info.max, 1000)
    x = rng.integers(lo, hi, size=(50, 33), endpoint=True).astype(dtype)
    x[3] = 0
    enc = q2key.encode(x)
    assert_matches_reference(x, enc)
    assert_encoded_equal(enc, q2key.encode(x.astype(np.float64)), str(np.dtype(dtype)))


def test_wide_int64_values_match_reference() -> None:
    x = np.array([[2**62, -(2**61), 5, -3], [1, 2, 3, -(2**40)]], dtype=np.int64)
    assert_matches_reference(x, q2key.encode(x))


@pytest.mark.parametrize("dtype", [">f4", ">f8", "<f4", "<f8", ">i4", ">f2"])
def test_explicit_byte_orders(rng: np.random.Generator, dtype: str) -> None:
    x = (rng.normal(size=(20, 19)) * 100).astype(dtype)
    native = x.astype(np.dtype(dtype).newbyteorder("="))
    assert_encoded_equal(q2key.encode(x), q2key.encode(native), dtype)
    assert np.array_equal(q2key.symbols(x), q2key.symbols(native))


@pytest.mark.parametrize(
    "x",
    [
        np.ones((2, 3), dtype=bool),
        np.ones((2, 3), dtype=np.complex64),
        np.ones((2, 3), dtype=np.complex128),
        np.array([[1.0, 2.0]], dtype=object),
        np.array(["1.0", "2.0"]),
        np.array([b"a", b"b"]),
        np.zeros(3, dtype="datetime64[s]"),
    ],
    ids=["bool", "complex64", "complex128", "object", "str", "bytes", "datetime"],
)
def test_unsupported_dtypes_raise_dtype_error(x: np.ndarray) -> None:
    with pytest.raises(q2key.DTypeError, match="x"):
        q2key.encode(x)
    with pytest.raises(TypeError):
        q2key.symbols(x)


# --- memory layouts -------------------------------------------------------------------------


def _layouts(x: np.ndarray) -> dict[str, np.ndarray]:
    """Views and copies of ``x`` with unusual layouts but the same values."""
    out = {"fortran": np.asfortranarray(x)}
    ro = x.copy()
    ro.setflags(write=False)
    out["readonly"] = ro
    buf = bytearray(x.nbytes + 1)
    mis = np.frombuffer(buf, dtype=x.dtype, count=x.size, offset=1).reshape(x.shape)
    mis[...] = x
    assert not mis.flags.aligned
    out["misaligned"] = mis
    mis_ro = np.frombuffer(bytes(buf), dtype=x.dtype, count=x.size, offset=1).reshape(x.shape)
    assert not mis_ro.flags.writeable and not mis_ro.flags.aligned
    out["misaligned-readonly"] = mis_ro
    wide = np.zeros((x.shape[0], 2 * x.shape[1]), dtype=x.dtype)
    wide[:, ::2] = x
    out["column-stride"] = wide[:, ::2]
    tall = np.zeros((3 * x.shape[0], x.shape[1]), dtype=x.dtype)
    tall[::3] = x
    out["row-stride"] = tall[::3]
    rev = x[::-1, ::-1].copy()
    out["negative-strides"] = rev[::-1, ::-1]
    out["transposed"] = np.ascontiguousarray(x.T).T
    return out


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int16, np.int64])
def test_layouts_give_the_same_result(rng: np.random.Generator, dtype: type) -> None:
    x = (rng.normal(size=(31, 45)) * 50).astype(dtype)
    expected = q2key.encode(np.ascontiguousarray(x))
    expected_symbols = q2key.symbols(np.ascontiguousarray(x))
    for name, view in _layouts(x).items():
        assert np.array_equal(view, x), name
        assert_encoded_equal(q2key.encode(view), expected, name)
        assert np.array_equal(q2key.symbols(view), expected_symbols), name


def test_slices_of_a_bigger_array(rng: np.random.Generator) -> None:
    x = rng.normal(size=(60, 80))
    for name, view in {"x[:, ::2]": x[:, ::2], "x[::3]": x[::3], "x[5:50:4, 3:70:3]": x[5:50:4, 3:70:3]}.items():
        assert_encoded_equal(q2key.encode(view), q2key.encode(view.copy()), name)


def test_one_dimensional_strided_and_misaligned(rng: np.random.Generator) -> None:
    x = rng.normal(size=64).astype(np.float32)
    expected = q2key.encode(x[::2].copy())
    assert_encoded_equal(q2key.encode(x[::2]), expected, "1-D stride")
    buf = bytearray(x[::2].nbytes + 3)
    mis = np.frombuffer(buf, dtype=np.float32, count=32, offset=3)
    mis[...] = x[::2]
    assert_encoded_equal(q2key.encode(mis), expected, "1-D misaligned")


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int32])
def test_input_is_never_modified(rng: np.random.Generator, dtype: type) -> None:
    x = (rng.normal(size=(40, 70)) * 30).astype(dtype)
    x[2] = 0
    f = np.asfortranarray(x)
    for arr in (x, f, x[:, ::2]):
        before = arr.copy()
        q2key.encode(arr)
        q2key.encode(arr, threshold=0.0)
        q2key.symbols(arr)
        np.testing.assert_array_equal(arr, before)
        assert arr.dtype == before.dtype


# --- threads and pickling -------------------------------------------------------------------


def test_thread_counts_give_identical_results(rng: np.random.Generator) -> None:
    x = mixed_rows(rng, 3000, 384).astype(np.float32)
    x64 = mixed_rows(rng, 500, 1023)
    one = q2key.encode(x, threads=1)
    assert_encoded_equal(q2key.encode(x, threads=2), one, "threads=2")
    assert_encoded_equal(q2key.encode(x, threads=None), one, "threads=None")
    assert_encoded_equal(q2key.encode(x, threads=np.int64(3)), one, "threads=3")
    one64 = q2key.encode(x64, threads=1)
    assert_encoded_equal(q2key.encode(x64, threads=2), one64, "f64 threads=2")


@pytest.mark.parametrize(
    ("threads", "error"),
    [
        (0, q2key.Q2KeyError),
        (-1, q2key.Q2KeyError),
        (1.5, q2key.DTypeError),
        ("2", q2key.DTypeError),
        (True, q2key.DTypeError),
    ],
)
def test_bad_thread_counts_are_rejected(threads: object, error: type[Exception]) -> None:
    with pytest.raises(error, match=r"^threads: "):
        q2key.encode(np.ones((2, 4)), threads=threads)  # type: ignore[arg-type]


def test_encoded_codes_are_consistent_with_pack_and_keys(rng: np.random.Generator) -> None:
    x = mixed_rows(rng, 50, 130)
    enc = q2key.encode(x)
    s = q2key.symbols(x)
    assert np.array_equal(enc.codes, q2key.pack(s))
    assert np.array_equal(enc.keys, q2key.keys_from_symbols(s))
    assert enc.transitions.tolist() == [len(q2key.run_reduce(row)) for row in s]
