"""pyarrow fixed-size lists as encoder input: zero-copy, slices, chunks, float16, nulls."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import q2key
from q2key._inputs import prepare

pa: Any = pytest.importorskip("pyarrow")


def _fixed(x: np.ndarray) -> Any:
    """An Arrow FixedSizeListArray over a C-contiguous (N, n) numpy array (Arrow keeps numpy's buffer)."""
    return pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), x.shape[1])


def _values_buffer(a: Any, dtype: Any) -> np.ndarray:
    """The whole child values buffer of a FixedSizeListArray, as numpy (no copy)."""
    buf = a.values.buffers()[1]
    return np.frombuffer(buf, dtype=dtype)


def _assert_same(got: q2key.Encoded, want: q2key.Encoded) -> None:
    assert got.dim == want.dim
    np.testing.assert_array_equal(got.codes, want.codes)
    np.testing.assert_array_equal(got.keys, want.keys)
    np.testing.assert_array_equal(got.transitions, want.transitions)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_encode_equals_numpy(rng: np.random.Generator, dtype: Any) -> None:
    x = rng.normal(size=(300, 70)).astype(dtype)
    a = _fixed(x)
    assert str(a.type).startswith("fixed_size_list")
    _assert_same(q2key.encode(a), q2key.encode(x))
    th = q2key.calibrate(x.astype(np.float64), method="per_dim")
    _assert_same(q2key.encode(a, threshold=th), q2key.encode(x, threshold=th))
    np.testing.assert_array_equal(q2key.symbols(a), q2key.symbols(x))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_zero_copy(rng: np.random.Generator, dtype: Any) -> None:
    x = rng.normal(size=(200, 48)).astype(dtype)
    a = _fixed(x)
    p = prepare(a)
    assert p.rows is not None and p.rows.shape == (200, 48) and p.rows.dtype == dtype
    assert np.shares_memory(p.rows, _values_buffer(a, dtype))
    # One-chunk ChunkedArray: still a view of the same buffer.
    c = pa.chunked_array([a])
    pc = prepare(c)
    assert pc.rows is not None and np.shares_memory(pc.rows, _values_buffer(a, dtype))
    _assert_same(q2key.encode(c), q2key.encode(x))


def test_sliced_arrays(rng: np.random.Generator) -> None:
    x = rng.normal(size=(100, 33)).astype(np.float32)
    a = _fixed(x)
    for start, length in [(0, 100), (1, 10), (37, 63), (99, 1), (50, 0)]:
        s = a.slice(start, length)
        assert s.offset == start
        p = prepare(s)
        assert p.rows is not None and p.rows.shape == (length, 33)
        np.testing.assert_array_equal(p.rows, x[start : start + length])
        if length:
            assert np.shares_memory(p.rows, _values_buffer(a, np.float32))
        _assert_same(q2key.encode(s), q2key.encode(x[start : start + length]))


def test_chunked_several_chunks_concatenated(rng: np.random.Generator) -> None:
    x = rng.normal(size=(90, 20))
    c = pa.chunked_array([_fixed(x[:30]), _fixed(x[30:31]), _fixed(x[31:]).slice(5)])
    want = np.concatenate([x[:31], x[36:]])
    p = prepare(c)
    assert p.rows is not None
    np.testing.assert_array_equal(p.rows, want)
    _assert_same(q2key.encode(c), q2key.encode(want))
    empty = pa.chunked_array([], type=pa.list_(pa.float32(), 20))
    assert q2key.encode(empty).codes.shape == (0, 5)


def test_float16_lists(rng: np.random.Generator) -> None:
    x = rng.normal(size=(64, 96)).astype(np.float16)
    x[0, :5] = np.float16(6e-8)  # subnormals are kept
    a = _fixed(x)
    assert str(a.type.value_type) == "halffloat"
    _assert_same(q2key.encode(a), q2key.encode(x.astype(np.float32)))


def test_null_rows_are_errors(rng: np.random.Generator) -> None:
    x = rng.normal(size=(6, 4)).astype(np.float32)
    rows: list[Any] = [list(map(float, r)) for r in x]
    rows[3] = None
    rows[5] = None
    a = pa.array(rows, type=pa.list_(pa.float32(), 4))
    with pytest.raises(q2key.Q2KeyError, match=r"x: row 3 of the Arrow fixed-size list array is null \(2 null"):
        q2key.encode(a)
    # Rows of later chunks are counted from the start of the ChunkedArray.
    c = pa.chunked_array([_fixed(x), a])
    with pytest.raises(q2key.Q2KeyError, match="row 9 of"):
        q2key.encode(c)
    # A slice that skips the null rows is fine.
    _assert_same(q2key.encode(a.slice(0, 3)), q2key.encode(x[:3]))


def test_null_values_are_errors() -> None:
    a = pa.array([[1.0, 2.0], [3.0, None]], type=pa.list_(pa.float64(), 2))
    with pytest.raises(q2key.Q2KeyError, match="row 1 column 1 of the Arrow fixed-size list array is null"):
        q2key.encode(a)


def test_non_float_lists_and_other_arrow_inputs() -> None:
    b = pa.array([[True, False]], type=pa.list_(pa.bool_(), 2))
    with pytest.raises(q2key.DTypeError, match="fixed-size list of floats"):
        q2key.encode(b)
    s = pa.array([["a", "b"]], type=pa.list_(pa.string(), 2))
    with pytest.raises(q2key.DTypeError):
        q2key.encode(s)
    # A plain float Array is one vector, as before.
    v = pa.array([0.5, -0.25, 0.125, -1.0], type=pa.float32())
    _assert_same(q2key.encode(v), q2key.encode(np.array([0.5, -0.25, 0.125, -1.0], dtype=np.float32)))
    # A zero-width list is a clear shape error.
    z = pa.array([[], []], type=pa.list_(pa.float32(), 0))
    with pytest.raises(q2key.ShapeError):
        q2key.encode(z)


def test_fixed_size_list_scalar_is_one_vector(rng: np.random.Generator) -> None:
    x = rng.normal(size=(5, 40)).astype(np.float32)
    a = _fixed(x)
    p = prepare(a[2])
    assert p.was_1d and p.rows is not None and p.rows.shape == (1, 40)
    assert np.shares_memory(p.rows, _values_buffer(a, np.float32))
    _assert_same(q2key.encode(a[2]), q2key.encode(x[2]))
    np.testing.assert_array_equal(q2key.symbols(a[2]), q2key.symbols(x[2]))
    null = pa.array([None], type=pa.list_(pa.float32(), 40))[0]
    with pytest.raises(q2key.Q2KeyError, match="scalar is null"):
        q2key.encode(null)
