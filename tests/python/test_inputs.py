"""Real model inputs (SPEC §7): element types, DLPack/__array__ tensors and hidden states."""

from __future__ import annotations

import doctest
import inspect
from typing import Any

import numpy as np
import pytest
import q2key
from conftest import mixed_rows, ref_keys_and_transitions, ref_pack, ref_unpack
from hypothesis import given, settings
from hypothesis import strategies as st
from q2key import _inputs, _native
from q2key._inputs import prepare

try:  # optional: only the tests that build ml_dtypes arrays need it
    import ml_dtypes
except ImportError:  # pragma: no cover
    ml_dtypes = None

needs_ml_dtypes = pytest.mark.skipif(ml_dtypes is None, reason="ml_dtypes is not installed")


def encode_is_wired() -> bool:
    """The lead wires ``prepare`` into ``q2key.encode``; until then the end-to-end tests skip."""
    return "dtype" in inspect.signature(q2key.encode).parameters


needs_wiring = pytest.mark.skipif(not encode_is_wired(), reason="q2key.encode has no dtype= yet")


class DLPackOnly:
    """A foreign tensor: only the DLPack protocol, delegating to a numpy array."""

    def __init__(self, a: np.ndarray) -> None:
        self._a = a

    def __dlpack__(self, **kwargs: Any) -> Any:
        return self._a.__dlpack__(**kwargs)

    def __dlpack_device__(self) -> tuple[int, int]:
        return self._a.__dlpack_device__()


class ArrayOnly:
    """A foreign tensor with only ``__array__``."""

    def __init__(self, a: np.ndarray) -> None:
        self._a = a

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self._a if dtype is None else self._a.astype(dtype)


class Both(DLPackOnly, ArrayOnly):
    """Like a torch tensor: both protocols (DLPack is tried first)."""


class Unreadable:
    """Refuses both protocols, like a CUDA tensor or one that requires grad."""

    def __dlpack__(self, **kwargs: Any) -> Any:
        raise BufferError("device not supported")

    def __dlpack_device__(self) -> tuple[int, int]:
        return (2, 0)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise TypeError("can't convert cuda:0 device type tensor to numpy")


def pack_q4(values: np.ndarray) -> np.ndarray:
    """Nibble-pack (..., n) values in -8..7: value + 8, even index in the high nibble."""
    v = np.asarray(values, dtype=np.int64) + 8
    n = v.shape[-1]
    if n % 2:
        v = np.concatenate([v, np.full((*v.shape[:-1], 1), 8)], axis=-1)  # padding nibble: value 0
    return ((v[..., 0::2] << 4) | v[..., 1::2]).astype(np.uint8)


def bf16_round(x: np.ndarray) -> np.ndarray:
    """float32 values truncated to bfloat16 precision (exactly representable in bfloat16)."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32) & np.uint32(0xFFFF0000)
    return bits.view(np.float32)


def bf16_bits(x: np.ndarray) -> np.ndarray:
    """The bfloat16 bit patterns of bfloat16-representable float32 values."""
    return (np.ascontiguousarray(x, dtype=np.float32).view(np.uint32) >> 16).astype(np.uint16)


# ---------------------------------------------------------------- default dtype, tensors


def test_float_rows_pass_through_without_a_copy(rng: np.random.Generator) -> None:
    x = rng.normal(size=(5, 7)).astype(np.float32)
    p = prepare(x)
    assert p.rows is x and p.codes is None and p.dim == 7 and not p.was_1d
    p64 = prepare(x.astype(np.float64)[:, ::2])
    assert p64.rows is not None and p64.rows.dtype == np.float64 and p64.rows.flags.c_contiguous
    one = prepare([1.0, -2.0, 3.0])
    assert one.was_1d and one.rows is not None and one.rows.shape == (1, 3)
    assert prepare(np.arange(6, dtype=np.int16).reshape(2, 3)).rows.dtype == np.float32  # type: ignore[union-attr]


def test_dlpack_producer_is_read_without_a_copy(rng: np.random.Generator) -> None:
    x = rng.normal(size=(4, 9)).astype(np.float32)
    p = prepare(DLPackOnly(x))
    assert p.rows is not None and np.shares_memory(p.rows, x)
    np.testing.assert_array_equal(p.rows, x)
    assert prepare(Both(x)).rows is not None


def test_array_only_object(rng: np.random.Generator) -> None:
    x = rng.normal(size=(3, 5))
    p = prepare(ArrayOnly(x))
    assert p.rows is not None
    np.testing.assert_array_equal(p.rows, x)


@needs_ml_dtypes
def test_dlpack_failure_falls_back_to_array() -> None:
    # numpy's DLPack refuses bfloat16; __array__ then hands over the ml_dtypes array.
    x = np.array([[1.5, -2.0, 0.25]], dtype=np.float32)
    p = prepare(Both(x.astype(ml_dtypes.bfloat16)))
    assert p.rows is not None
    np.testing.assert_array_equal(p.rows, x)


def test_unreadable_tensor_is_a_dtype_error_naming_both_attempts() -> None:
    with pytest.raises(q2key.DTypeError, match=r"x: could not read .*Unreadable.*DLPack.*__array__"):
        prepare(Unreadable())

    class DLPackBroken:
        def __dlpack__(self, **kwargs: Any) -> Any:
            raise BufferError("nope")

        def __dlpack_device__(self) -> tuple[int, int]:
            return (1, 0)

    with pytest.raises(q2key.DTypeError, match=r"queries: could not read .*DLPack \(nope\)"):
        prepare(DLPackBroken(), arg="queries")


@needs_ml_dtypes
def test_ml_dtypes_arrays_convert_exactly() -> None:
    x = np.array([[1.0, -0.5, 3.25, 0.0]], dtype=np.float32)
    for t in (ml_dtypes.bfloat16, ml_dtypes.float8_e4m3fn, ml_dtypes.float8_e5m2):
        p = prepare(x.astype(t))
        assert p.rows is not None and p.rows.dtype == np.float32
        np.testing.assert_array_equal(p.rows, x.astype(t).astype(np.float32))


# ---------------------------------------------------------------- element types


def test_q8_values_are_used_as_is(rng: np.random.Generator) -> None:
    q = rng.integers(-128, 128, size=(6, 33)).astype(np.int8)
    for name in ("q8", "Q8", "int8"):
        p = prepare(q, dtype=name)
        assert p.rows is not None and p.rows.dtype == np.float32
        np.testing.assert_array_equal(p.rows, q.astype(np.float32))
    assert prepare(q[0], dtype="q8").was_1d
    with pytest.raises(q2key.DTypeError, match=r"x: dtype='q8' expects int8 .*view\(np.int8\).*uint8"):
        prepare(q.view(np.uint8), dtype="q8")


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(1, 70),
    rows=st.integers(0, 4),
    seed=st.integers(0, 2**32 - 1),
)
def test_q4_unpacks_even_index_high_minus_eight(n: int, rows: int, seed: int) -> None:
    values = np.random.default_rng(seed).integers(-8, 8, size=(rows, n))
    packed = pack_q4(values)
    assert packed.shape == (rows, (n + 1) // 2)
    p = prepare(packed, dtype="q4", dim=n)
    assert p.rows is not None and p.rows.dtype == np.float32 and p.dim == n
    np.testing.assert_array_equal(p.rows, values)
    if n % 2 == 0:
        np.testing.assert_array_equal(prepare(packed, dtype="q4").rows, values)  # dim defaults to 2 · bytes


def test_q4_nibble_order_and_width_checks() -> None:
    p = prepare(np.array([0x9F, 0x80], dtype=np.uint8), dtype="q4", dim=3)
    assert p.was_1d and p.rows is not None and p.rows.tolist() == [[1.0, 7.0, 0.0]]
    with pytest.raises(q2key.ShapeError, match=r"x: dim=5 needs 3 bytes of q4 nibbles per row, got 2 bytes"):
        prepare(np.zeros((1, 2), np.uint8), dtype="q4", dim=5)
    with pytest.raises(q2key.ShapeError, match=r"dim=2 needs 1 bytes"):
        prepare(np.zeros((1, 2), np.uint8), dtype="q4", dim=2)
    with pytest.raises(q2key.DTypeError, match=r"dtype='q4' expects uint8"):
        prepare(np.zeros((1, 2), np.int8), dtype="q4")


def test_q2_codes_pass_through(rng: np.random.Generator) -> None:
    for n in (1, 3, 4, 5, 31, 384, 385):
        symbols = rng.integers(0, 4, size=(7, n)).astype(np.uint8)
        codes = ref_pack(symbols)
        p = prepare(codes, dtype="q2", dim=n)
        assert p.rows is None and p.codes is codes and p.dim == n and not p.was_1d
        keys, transitions = _native.keys_from_codes(p.codes, n)
        ref_k, ref_t = ref_keys_and_transitions(symbols)
        np.testing.assert_array_equal(keys, ref_k)
        np.testing.assert_array_equal(transitions, ref_t)
        k2, t2 = _native.keys_from_symbols(_native.unpack(codes, n))
        np.testing.assert_array_equal(keys, k2)
        np.testing.assert_array_equal(transitions, t2)
    one = prepare(ref_pack(np.array([3, 0, 1, 2, 2, 1, 0, 3], np.uint8)), dtype="q2")
    assert one.was_1d and one.dim == 8 and one.codes is not None and one.codes.shape == (1, 2)
    strided = prepare(np.zeros((4, 6), np.uint8)[:, ::2], dtype="q2")
    assert strided.codes is not None and strided.codes.flags.c_contiguous and strided.dim == 12


def test_q2_checks_width_padding_and_dtype() -> None:
    with pytest.raises(q2key.ShapeError, match=r"x: dim=9 needs 3 bytes of q2 codes per row, got 2 bytes"):
        prepare(np.zeros((1, 2), np.uint8), dtype="q2", dim=9)
    codes = np.zeros((3, 2), np.uint8)
    codes[2, 1] = 0b1100_0001  # dim 5 uses only the top 2 bits of the last byte
    with pytest.raises(q2key.Q2KeyError, match=r"x: row 2 has nonzero padding bits: dim=5 .*0b11000001"):
        prepare(codes, dtype="q2", dim=5)
    codes[2, 1] = 0b1100_0000
    assert prepare(codes, dtype="q2", dim=5).dim == 5
    with pytest.raises(q2key.DTypeError, match=r"dtype='q2' expects uint8 packed codes"):
        prepare(codes.astype(np.int16), dtype="q2", dim=5)


def test_native_keys_from_codes_validates() -> None:
    with pytest.raises(q2key.ShapeError, match="codes: expected 2 bytes per row for dim=5"):
        _native.keys_from_codes(np.zeros((1, 3), np.uint8), 5)
    with pytest.raises(q2key.Q2KeyError, match=r"codes: row 1 has nonzero padding bits"):
        _native.keys_from_codes(np.array([[0, 0], [0, 1]], np.uint8), 5)
    with pytest.raises(q2key.Q2KeyError, match="dim"):
        _native.keys_from_codes(np.zeros((0, 0), np.uint8), 0)
    keys, transitions = _native.keys_from_codes(np.zeros((0, 2), np.uint8), 5)
    assert keys.shape == (0,) and keys.dtype == np.uint64 and transitions.dtype == np.uint32


@needs_ml_dtypes
@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=40))
def test_bf16_bits_convert_like_ml_dtypes(bits: list[int]) -> None:
    u16 = np.array([bits], dtype=np.uint16)
    expected = u16.view(ml_dtypes.bfloat16).astype(np.float32)
    for raw in (u16, u16.view(np.int16)):
        got = _inputs._from_floats(raw, "bf16", "x")
        np.testing.assert_array_equal(got, expected)  # NaN compares equal here
        finite = np.isfinite(expected)
        np.testing.assert_array_equal(got.view(np.uint32)[finite], expected.view(np.uint32)[finite])


def test_bf16_inputs(rng: np.random.Generator) -> None:
    x = bf16_round(rng.normal(size=(5, 12)))
    for raw in (bf16_bits(x), bf16_bits(x).view(np.int16)):
        p = prepare(raw, dtype="bf16")
        assert p.rows is not None and p.rows.dtype == np.float32 and p.rows.flags.c_contiguous
        np.testing.assert_array_equal(p.rows, x)
    np.testing.assert_array_equal(prepare(bf16_bits(x).T, dtype="bfloat16").rows, x.T)  # any layout
    known = prepare(np.array([0x3FC0, 0xC020, 0x0001], np.uint16), dtype="bf16")  # 1.5, -2.5, a subnormal
    assert known.was_1d and known.rows is not None and known.rows.tolist() == [[1.5, -2.5, 2.0**-133]]
    with pytest.raises(q2key.DTypeError, match=r"dtype='bf16' expects uint16/int16 bfloat16 bit patterns"):
        prepare(x, dtype="bf16")


@needs_ml_dtypes
def test_ml_dtypes_bfloat16_arrays(rng: np.random.Generator) -> None:
    x = bf16_round(rng.normal(size=(5, 12)))
    b = x.astype(ml_dtypes.bfloat16)
    np.testing.assert_array_equal(b.view(np.uint16), bf16_bits(x))
    for dtype in (None, "bf16"):
        p = prepare(b, dtype=dtype)
        assert p.rows is not None and p.rows.dtype == np.float32
        np.testing.assert_array_equal(p.rows, x)


def test_float_aliases_take_the_type_or_its_bits() -> None:
    h = np.array([[1.0, -2.5, 0.0, 6e-8]], dtype=np.float16)  # 6e-8: an fp16 subnormal
    for name in ("f16", "fp16", "FP16", "float16"):
        p = prepare(h, dtype=name)
        assert p.rows is not None and p.rows.dtype == np.float32
        np.testing.assert_array_equal(p.rows, h.astype(np.float32))
    assert prepare(h, dtype="f16").rows[0, 3] != 0  # type: ignore[index]  # subnormals are kept
    np.testing.assert_array_equal(prepare(h.view(np.uint16), dtype="f16").rows, h.astype(np.float32))
    f = np.array([[1.0, -2.0]], dtype=np.float32)
    np.testing.assert_array_equal(prepare(f.view(np.uint32), dtype="f32").rows, f)
    p64 = prepare(f.astype(np.float64), dtype="fp64")
    assert p64.rows is not None and p64.rows.dtype == np.float64
    with pytest.raises(q2key.DTypeError, match=r"dtype='f32' expects float32 values or their 32-bit"):
        prepare(f.astype(np.float64), dtype="f32")


def test_unknown_and_non_string_dtypes() -> None:
    with pytest.raises(ValueError, match=r"dtype: unknown element type 'q3'; expected None or one of .*'q8'.*'q2'"):
        prepare(np.zeros((1, 4)), dtype="q3")
    with pytest.raises(q2key.Q2KeyError):
        prepare(np.zeros((1, 4)), dtype="int4")
    with pytest.raises(q2key.DTypeError, match="dtype: expected a string"):
        prepare(np.zeros((1, 4)), dtype=np.float32)  # type: ignore[arg-type]


def test_ranks_widths_and_dim() -> None:
    with pytest.raises(q2key.ShapeError, match=r"x: expected vectors of shape \(n,\), \(N, n\), or hidden states"):
        prepare(np.zeros((2, 3, 4, 5)))
    with pytest.raises(q2key.ShapeError):
        prepare(np.float32(1.0))
    with pytest.raises(q2key.ShapeError, match="at least one element"):
        prepare(np.zeros((3, 0), np.uint8), dtype="q2")
    with pytest.raises(q2key.ShapeError, match=r"x: dim=5 was given, but the vectors have 4 values"):
        prepare(np.zeros((2, 4)), dim=5)
    assert prepare(np.zeros((2, 4), np.int8), dtype="q8", dim=4).dim == 4
    for bad in (0, -3):
        with pytest.raises(q2key.Q2KeyError, match="dim: must be at least 1"):
            prepare(np.zeros((2, 4)), dim=bad)
    for wrong_type in (True, 2.0):
        with pytest.raises(q2key.DTypeError, match="dim: expected an integer"):
            prepare(np.zeros((2, 4)), dim=wrong_type)  # type: ignore[arg-type]
    empty = prepare(np.zeros((0, 4), np.uint8), dtype="q4")
    assert empty.rows is not None and empty.rows.shape == (0, 8)


# ---------------------------------------------------------------- hidden states


def test_hidden_states_need_a_selector(rng: np.random.Generator) -> None:
    h = rng.normal(size=(2, 3, 4))
    with pytest.raises(q2key.ShapeError, match=r"x: got hidden states of shape \(2, 3, 4\).*token='last'"):
        prepare(h)
    with pytest.raises(q2key.ShapeError, match=r"token: selects one position of hidden states.*x\[None\]"):
        prepare(h[0], token="last")
    with pytest.raises(q2key.ShapeError, match=r"attention_mask: selects one position"):
        prepare(h[0], attention_mask=np.ones((3,)))
    with pytest.raises(q2key.Q2KeyError, match="give one of them, not both"):
        prepare(h, token=-1, attention_mask=np.ones((2, 3), bool))


def test_token_selects_a_position(rng: np.random.Generator) -> None:
    h = rng.normal(size=(4, 6, 10)).astype(np.float32)
    np.testing.assert_array_equal(prepare(h, token="last").rows, h[:, -1])
    for t in (0, 2, 5, -1, -6, np.int64(3)):
        p = prepare(h, token=t)  # type: ignore[arg-type]
        assert p.rows is not None and p.rows.flags.c_contiguous and not p.was_1d
        np.testing.assert_array_equal(p.rows, h[:, int(t)])
    with pytest.raises(
        q2key.Q2KeyError, match=r"token: position 6 is out of range .*T = 6 \(expected -6 <= token <= 5\)"
    ):
        prepare(h, token=6)
    with pytest.raises(q2key.Q2KeyError, match="out of range"):
        prepare(h, token=-7)
    with pytest.raises(q2key.Q2KeyError, match="token: expected 'last'"):
        prepare(h, token="first")  # type: ignore[arg-type]
    with pytest.raises(q2key.DTypeError, match="token: expected 'last', an integer position or None, got bool"):
        prepare(h, token=True)
    with pytest.raises(q2key.DTypeError, match="got float"):
        prepare(h, token=1.0)  # type: ignore[arg-type]
    with pytest.raises(q2key.ShapeError, match=r"no positions \(T = 0\)"):
        prepare(np.zeros((2, 0, 4)), token="last")


def test_attention_mask_selects_each_rows_last_real_token(rng: np.random.Generator) -> None:
    h = rng.normal(size=(4, 5, 8))
    right = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0], [1, 1, 1, 1, 0]])
    left = right[:, ::-1].copy()
    np.testing.assert_array_equal(prepare(h, attention_mask=right).rows, h[np.arange(4), [2, 4, 0, 3]])
    np.testing.assert_array_equal(prepare(h, attention_mask=left).rows, h[:, -1])
    np.testing.assert_array_equal(prepare(h, attention_mask=right.astype(bool)).rows, h[np.arange(4), [2, 4, 0, 3]])
    np.testing.assert_array_equal(
        prepare(h, attention_mask=DLPackOnly(right.astype(np.int64))).rows, h[np.arange(4), [2, 4, 0, 3]]
    )
    empty = prepare(np.zeros((0, 5, 8)), attention_mask=np.zeros((0, 5), np.int64))
    assert empty.rows is not None and empty.rows.shape == (0, 8)


def test_attention_mask_errors(rng: np.random.Generator) -> None:
    h = rng.normal(size=(3, 4, 2))
    mask = np.ones((3, 4), np.int64)
    mask[1] = 0
    with pytest.raises(q2key.Q2KeyError, match=r"attention_mask: row 1 is all padding"):
        prepare(h, attention_mask=mask)
    mask[2] = 0
    with pytest.raises(q2key.Q2KeyError, match=r"row 1 \(and 1 more rows\) is all padding"):
        prepare(h, attention_mask=mask)
    with pytest.raises(q2key.ShapeError, match=r"attention_mask: expected shape \(B, T\) = \(3, 4\) .*got \(3, 5\)"):
        prepare(h, attention_mask=np.ones((3, 5), np.int64))
    with pytest.raises(q2key.ShapeError, match=r"got \(4, 3\)"):
        prepare(h, attention_mask=np.ones((4, 3), bool))
    with pytest.raises(q2key.DTypeError, match="attention_mask: expected bool or integer 0/1 values, got dtype float"):
        prepare(h, attention_mask=np.ones((3, 4)))
    bad = np.ones((3, 4), np.int64)
    bad[2, 1] = 101
    with pytest.raises(q2key.Q2KeyError, match=r"row 2 column 1 holds 101; expected 0 \(padding\) or 1"):
        prepare(h, attention_mask=bad)


def test_selection_happens_before_conversion(rng: np.random.Generator) -> None:
    values = rng.integers(-8, 8, size=(3, 5, 7))
    mask = np.array([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    picked = values[np.arange(3), [1, 4, 2]]
    np.testing.assert_array_equal(prepare(pack_q4(values), dtype="q4", dim=7, attention_mask=mask).rows, picked)
    np.testing.assert_array_equal(prepare(values.astype(np.int8), dtype="q8", token=-1).rows, values[:, -1])
    x = values.astype(np.float32)
    np.testing.assert_array_equal(prepare(bf16_bits(x), dtype="bf16", token=0).rows, x[:, 0])
    symbols = rng.integers(0, 4, size=(3, 5, 9)).astype(np.uint8)
    p = prepare(ref_pack(symbols), dtype="q2", dim=9, token="last")
    assert p.codes is not None and p.dim == 9
    np.testing.assert_array_equal(ref_unpack(p.codes, 9), symbols[:, -1])


def test_docstring_examples() -> None:
    result = doctest.testmod(_inputs, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


# ---------------------------------------------------------------- end to end (after the lead's wiring)


def assert_encoded_equal(got: q2key.Encoded, expected: q2key.Encoded) -> None:
    assert got.dim == expected.dim
    np.testing.assert_array_equal(got.codes, expected.codes)
    np.testing.assert_array_equal(got.keys, expected.keys)
    np.testing.assert_array_equal(got.transitions, expected.transitions)


@needs_wiring
def test_encode_q8_and_q4_like_their_float_values(rng: np.random.Generator) -> None:
    q = rng.integers(-128, 128, size=(20, 65)).astype(np.int8)
    assert_encoded_equal(q2key.encode(q, dtype="q8"), q2key.encode(q.astype(np.float32)))
    v = rng.integers(-8, 8, size=(20, 65))
    assert_encoded_equal(
        q2key.encode(pack_q4(v), dtype="q4", dim=65),
        q2key.encode(v.astype(np.float32)),
    )


@needs_wiring
def test_encode_bf16_like_float32(rng: np.random.Generator) -> None:
    x = bf16_round(mixed_rows(rng, 24, 100))
    expected = q2key.encode(x)
    assert_encoded_equal(q2key.encode(bf16_bits(x), dtype="bf16"), expected)
    assert_encoded_equal(q2key.encode(bf16_bits(x).view(np.int16), dtype="bf16"), expected)
    if ml_dtypes is not None:
        assert_encoded_equal(q2key.encode(x.astype(ml_dtypes.bfloat16)), expected)
        assert_encoded_equal(q2key.encode(x.astype(ml_dtypes.bfloat16), dtype="bf16"), expected)


@needs_wiring
def test_encode_q2_passes_codes_through(rng: np.random.Generator) -> None:
    x = mixed_rows(rng, 30, 77)
    enc = q2key.encode(x)
    again = q2key.encode(enc.codes, dtype="q2", dim=77)
    assert_encoded_equal(again, enc)
    np.testing.assert_array_equal(
        q2key.symbols(enc.codes, dtype="q2", dim=77),
        q2key.symbols(x),
    )


@needs_wiring
def test_encode_foreign_tensors_like_the_array(rng: np.random.Generator) -> None:
    x = rng.normal(size=(10, 48)).astype(np.float32)
    expected = q2key.encode(x)
    assert_encoded_equal(q2key.encode(DLPackOnly(x)), expected)
    assert_encoded_equal(q2key.encode(ArrayOnly(x)), expected)
    np.testing.assert_array_equal(q2key.symbols(DLPackOnly(x[0])), q2key.symbols(x[0]))


@needs_wiring
def test_encode_hidden_states(rng: np.random.Generator) -> None:
    h = rng.normal(size=(3, 6, 40)).astype(np.float32)
    mask = np.array([[1, 1, 1, 0, 0, 0], [0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0]])
    assert_encoded_equal(q2key.encode(h, token="last"), q2key.encode(h[:, -1]))
    assert_encoded_equal(q2key.encode(h, token=2), q2key.encode(h[:, 2]))
    assert_encoded_equal(
        q2key.encode(h, attention_mask=mask),
        q2key.encode(h[np.arange(3), [2, 5, 4]]),
    )
    np.testing.assert_array_equal(
        q2key.symbols(h, token=-1),
        q2key.symbols(h[:, -1]),
    )
    with pytest.raises(q2key.ShapeError, match="token="):
        q2key.encode(h)
    with pytest.raises(q2key.Q2KeyError, match="all padding"):
        q2key.encode(h, attention_mask=np.zeros((3, 6), bool))
