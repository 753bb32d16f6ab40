"""pack / unpack / complement / run_reduce / keys_from_symbols."""

from __future__ import annotations

import numpy as np
import pytest
import q2key
from conftest import (
    mixed_rows,
    ref_encode,
    ref_keys_and_transitions,
    ref_pack,
    ref_popcount_lee,
    ref_run_reduce,
    ref_unpack,
)

LAST_BYTE_MASK = {0: 0xFF, 1: 0xC0, 2: 0xF0, 3: 0xFC}


# --- pack / unpack --------------------------------------------------------------------------


def test_pack_exact_bytes() -> None:
    # Gray: A→00, B→01, C→11, D→10; first symbol in the most significant bits.
    assert q2key.pack([0, 1, 2, 3]).tolist() == [0b00_01_11_10]
    assert q2key.pack([3, 0, 1, 2, 2]).tolist() == [0b10_00_01_11, 0b11_00_00_00]
    assert q2key.pack([1]).tolist() == [0b01_00_00_00]
    assert q2key.pack([2, 2, 2]).tolist() == [0b11_11_11_00]
    assert q2key.pack([3, 3, 3, 3, 3, 3, 3, 3, 0, 1]).tolist() == [0xAA, 0xAA, 0b00_01_00_00]
    out = q2key.pack(np.array([[0, 0, 0, 0, 0, 0], [3, 2, 1, 0, 1, 2]], np.uint8))
    assert out.dtype == np.uint8 and out.tolist() == [[0, 0], [0b10_11_01_00, 0b01_11_00_00]]


def test_unpack_exact_symbols() -> None:
    assert q2key.unpack(np.array([0b00_01_11_10], np.uint8), 4).tolist() == [0, 1, 2, 3]
    assert q2key.unpack(np.array([0x87, 0xC0], np.uint8), 5).tolist() == [3, 0, 1, 2, 2]
    assert q2key.unpack(np.array([0x87, 0xC0], np.uint8), 6).tolist() == [3, 0, 1, 2, 2, 0]


@pytest.mark.parametrize("dim", [1, 2, 3, 4, 5, 6, 7, 8, 9, 31, 32, 33, 63, 64, 65, 100, 384, 1023])
def test_pack_unpack_roundtrip(rng: np.random.Generator, dim: int) -> None:
    s = rng.integers(0, 4, size=(23, dim), dtype=np.uint8)
    c = q2key.pack(s)
    assert c.shape == (23, -(-dim // 4)) and c.dtype == np.uint8
    assert np.array_equal(c, ref_pack(s))
    assert (c[:, -1] & ~np.uint8(LAST_BYTE_MASK[dim % 4]) == 0).all(), "padding bits must be zero"
    u = q2key.unpack(c, dim)
    assert u.dtype == np.uint8 and np.array_equal(u, s)
    assert np.array_equal(q2key.pack(u), c)


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64, np.uint16, np.uint32, np.uint64])
def test_pack_accepts_integer_dtypes(rng: np.random.Generator, dtype: type) -> None:
    s = rng.integers(0, 4, size=(5, 11))
    assert np.array_equal(q2key.pack(s.astype(dtype)), ref_pack(s))


def test_pack_leading_axes_and_layouts(rng: np.random.Generator) -> None:
    s = rng.integers(0, 4, size=(2, 3, 4, 13), dtype=np.uint8)
    c = q2key.pack(s)
    assert c.shape == (2, 3, 4, 4)
    assert np.array_equal(c, ref_pack(s))
    assert np.array_equal(q2key.unpack(c, 13), s)
    assert np.array_equal(q2key.pack(np.asfortranarray(s[0, 0])), ref_pack(s[0, 0]))
    assert np.array_equal(q2key.pack(s[..., ::2]), ref_pack(s[..., ::2]))
    assert np.array_equal(q2key.unpack(np.asfortranarray(c[0, 0]), 13), s[0, 0])


@pytest.mark.parametrize("dtype", [np.uint8, np.int64, np.int8])
@pytest.mark.parametrize("bad", [4, 7, 255, -1])
def test_pack_rejects_bad_symbols_naming_row_and_column(dtype: type, bad: int) -> None:
    info = np.iinfo(dtype)
    bad = min(max(bad, info.min), info.max)
    if bad <= 3:
        bad = 200 if info.max >= 200 else -1
    s = np.zeros((4, 9), dtype=dtype)
    s[1, 2] = 3
    s[2, 6] = bad
    s[3, 0] = bad
    with pytest.raises(q2key.Q2KeyError) as info:
        q2key.pack(s)
    msg = str(info.value)
    assert "symbols" in msg and "row 2" in msg and "column 6" in msg, msg


def test_pack_rejects_non_integer_symbols() -> None:
    for s in (np.zeros((2, 4)), np.zeros(4, np.float32), np.array([True, False])):
        with pytest.raises(q2key.DTypeError):
            q2key.pack(s)


def test_unpack_rejects_wrong_code_width() -> None:
    for dim, width in [(5, 3), (5, 1), (4, 2), (8, 1), (1, 2)]:
        with pytest.raises(q2key.ShapeError, match="codes"):
            q2key.unpack(np.zeros((2, width), np.uint8), dim)
        with pytest.raises(q2key.ShapeError, match="codes"):
            q2key.complement(np.zeros((2, width), np.uint8), dim)


@pytest.mark.parametrize(
    ("dim", "error"), [(0, q2key.Q2KeyError), (-3, q2key.Q2KeyError), (2.0, q2key.DTypeError), (None, q2key.DTypeError)]
)
def test_unpack_rejects_bad_dim(dim: object, error: type[Exception]) -> None:
    with pytest.raises(error, match=r"^dim: "):
        q2key.unpack(np.zeros((2, 1), np.uint8), dim)  # type: ignore[arg-type]
    with pytest.raises(error, match=r"^dim: "):
        q2key.complement(np.zeros((2, 1), np.uint8), dim)  # type: ignore[arg-type]


def test_unpack_and_complement_reject_non_uint8_codes() -> None:
    for c in (np.zeros((2, 2), np.int8), np.zeros((2, 2), np.uint16), np.zeros((2, 2))):
        with pytest.raises(q2key.DTypeError):
            q2key.unpack(c, 8)
        with pytest.raises(q2key.DTypeError):
            q2key.complement(c, 8)


def test_zero_dimensional_codes_and_symbols_are_shape_errors() -> None:
    with pytest.raises(q2key.ShapeError):
        q2key.unpack(np.uint8(3), 1)
    with pytest.raises(q2key.ShapeError):
        q2key.complement(np.uint8(3), 1)
    with pytest.raises(q2key.ShapeError):
        q2key.pack(np.uint8(3))
    with pytest.raises(q2key.ShapeError):
        q2key.keys_from_symbols(np.uint8(3))


# Empty batches (no rows) give empty results of the right shape and dtype (README); a row of
# zero symbols is no vector (SPEC: n ≥ 1), a ShapeError naming the argument, as in encode.


def test_empty_batches_give_empty_results_of_the_right_shape_and_dtype() -> None:
    keys = q2key.keys_from_symbols(np.zeros((0, 5), np.uint8))
    assert keys.shape == (0,) and keys.dtype == np.uint64
    keys = q2key.keys_from_symbols(np.zeros((3, 0, 5), np.uint8))
    assert keys.shape == (3, 0) and keys.dtype == np.uint64
    codes = q2key.pack(np.zeros((0, 9), np.uint8))
    assert codes.shape == (0, 3) and codes.dtype == np.uint8
    assert q2key.unpack(codes, 9).shape == (0, 9) and q2key.complement(codes, 9).shape == (0, 3)


def test_the_run_reduction_of_the_empty_sequence_is_empty() -> None:
    r = q2key.run_reduce(np.zeros(0, np.uint8))
    assert r.shape == (0,) and r.dtype == np.uint8


@pytest.mark.parametrize("fn", [q2key.pack, q2key.keys_from_symbols])
def test_rows_of_zero_symbols_are_a_shape_error(fn: object) -> None:
    for shape in [(2, 0), (0,), (0, 0)]:
        with pytest.raises(q2key.ShapeError, match=r"^symbols: sequences need at least one symbol"):
            fn(np.zeros(shape, np.uint8))  # type: ignore[operator]


# --- complement -----------------------------------------------------------------------------


@pytest.mark.parametrize("dim", [1, 2, 3, 4, 5, 7, 8, 33, 64, 97, 384])
def test_complement(rng: np.random.Generator, dim: int) -> None:
    s = rng.integers(0, 4, size=(40, dim), dtype=np.uint8)
    c = q2key.pack(s)
    k = q2key.complement(c, dim)
    assert k.shape == c.shape and k.dtype == np.uint8
    assert (q2key.lee(c, k) == 2 * dim).all()
    assert np.array_equal(q2key.unpack(k, dim), (s + 2) % 4), "θ(s) = s + 2 mod 4"
    assert np.array_equal(q2key.complement(k, dim), c), "involution"
    assert (k[:, -1] & ~np.uint8(LAST_BYTE_MASK[dim % 4]) == 0).all(), "padding stays zero"
    assert (k != c).any(axis=1).all(), "no code equals its complement"
    # Bitwise NOT of the used bits.
    full = ~c
    full[:, -1] &= np.uint8(LAST_BYTE_MASK[dim % 4])
    assert np.array_equal(k, full)


def test_complement_exact_bytes() -> None:
    assert q2key.complement(np.array([0x00], np.uint8), 1).tolist() == [0xC0]
    assert q2key.complement(np.array([0x87, 0xC0], np.uint8), 5).tolist() == [0x78, 0x00]
    assert q2key.complement(np.array([0x1E], np.uint8), 4).tolist() == [0xE1]
    assert q2key.unpack(q2key.complement(q2key.pack([0, 1, 2]), 3), 3).tolist() == [2, 3, 0]


def test_complement_keeps_leading_shape_and_accepts_layouts(rng: np.random.Generator) -> None:
    s = rng.integers(0, 4, size=(3, 2, 5, 10), dtype=np.uint8)
    c = q2key.pack(s)
    k = q2key.complement(c, 10)
    assert k.shape == c.shape
    assert np.array_equal(q2key.unpack(k, 10), (s + 2) % 4)
    f = np.asfortranarray(c[0, 0])
    assert np.array_equal(q2key.complement(f, 10), k[0, 0])
    one = q2key.complement(c[0, 0, 0], 10)
    assert one.shape == (3,) and np.array_equal(one, k[0, 0, 0])


def test_complement_does_not_modify_its_input(rng: np.random.Generator) -> None:
    c = q2key.pack(rng.integers(0, 4, size=(10, 9), dtype=np.uint8))
    before = c.copy()
    q2key.complement(c, 9)
    assert np.array_equal(c, before)


# --- run_reduce -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seq", "expected"),
    [
        ([1, 1, 3, 3, 3, 0, 1, 1], [1, 3, 0, 1]),
        ([2], [2]),
        ([0, 0, 0, 0], [0]),
        ([0, 1, 0, 1], [0, 1, 0, 1]),
        ([3, 3, 2, 2, 3, 3], [3, 2, 3]),
        ([1, 0], [1, 0]),
    ],
)
def test_run_reduce_examples(seq: list[int], expected: list[int]) -> None:
    for arr in (seq, np.array(seq, np.uint8), np.array(seq, np.int64)):
        out = q2key.run_reduce(arr)
        assert out.dtype == np.uint8 and out.tolist() == expected


@pytest.mark.parametrize("n", [1, 2, 10, 100, 1000])
def test_run_reduce_matches_reference(rng: np.random.Generator, n: int) -> None:
    for p_stay in (0.0, 0.5, 0.95):
        s = np.empty(n, np.uint8)
        s[0] = rng.integers(0, 4)
        for i in range(1, n):
            s[i] = s[i - 1] if rng.random() < p_stay else rng.integers(0, 4)
        r = q2key.run_reduce(s)
        assert np.array_equal(r, ref_run_reduce(s))
        assert (r[1:] != r[:-1]).all()
        assert np.array_equal(q2key.run_reduce(r), r)


def test_run_reduce_strided_input() -> None:
    s = np.array([1, 9, 1, 9, 2, 9, 2, 9, 0], np.int64)
    assert q2key.run_reduce(s[::2]).tolist() == [1, 2, 0]


def test_run_reduce_rejects_other_ranks_and_values() -> None:
    with pytest.raises(q2key.ShapeError, match="symbols"):
        q2key.run_reduce(np.zeros((2, 3), np.uint8))
    with pytest.raises(q2key.ShapeError):
        q2key.run_reduce(np.zeros((1, 3), np.uint8))
    with pytest.raises(q2key.ShapeError):
        q2key.run_reduce(np.uint8(1))
    with pytest.raises(q2key.Q2KeyError, match="column 1"):
        q2key.run_reduce(np.array([0, 5], np.uint8))
    with pytest.raises(q2key.Q2KeyError, match="column 2"):
        q2key.run_reduce([0, 1, -1])
    with pytest.raises(q2key.DTypeError):
        q2key.run_reduce(np.array([0.0, 1.0]))


# --- keys_from_symbols ----------------------------------------------------------------------


def test_keys_exact_values() -> None:
    assert int(q2key.keys_from_symbols([1, 1, 3, 0])) == 0x7000_0000_0000_0000
    assert int(q2key.keys_from_symbols([1])) == 1 << 62
    assert int(q2key.keys_from_symbols([1, 0])) == 1 << 62, "(B) and (B, A) share a key"
    assert int(q2key.keys_from_symbols([3, 3, 3])) == 3 << 62
    # More than 32 transitions: only the first 32 count.
    alt = [0, 1] * 40
    assert int(q2key.keys_from_symbols(alt)) == 0x1111_1111_1111_1111
    assert (
        int(q2key.keys_from_symbols([2, 1, 0] * 11 + [3]))
        == ref_keys_and_transitions(np.array([2, 1, 0] * 11 + [3]))[0]
    )
    # Digit i sits at bits 63-2i .. 62-2i.
    seq = [0, 1, 2, 3] * 8
    assert int(q2key.keys_from_symbols(seq)) == 0x1B1B_1B1B_1B1B_1B1B


def test_transition_count_tells_b_from_ba() -> None:
    enc = q2key.encode(np.array([[0.0, 0.0, 0.0, 0.0], [-0.0001, -0.0001, -0.0001, -5.0]]))
    assert enc.keys.tolist() == [1 << 62, 1 << 62]
    assert enc.transitions.tolist() == [1, 2]


def test_keys_shape_follows_leading_axes(rng: np.random.Generator) -> None:
    s = rng.integers(0, 4, size=(2, 3, 40), dtype=np.uint8)
    k = q2key.keys_from_symbols(s)
    assert k.shape == (2, 3) and k.dtype == np.uint64
    assert np.array_equal(k, ref_keys_and_transitions(s)[0])
    one = q2key.keys_from_symbols(s[0, 0])
    assert one.shape == () and one.dtype == np.uint64
    assert q2key.keys_from_symbols(np.zeros((0, 5), np.uint8)).shape == (0,)


@pytest.mark.parametrize("dim", [1, 2, 5, 31, 32, 33, 64, 65, 100, 384, 1000])
def test_keys_equal_encode_keys_and_reference(rng: np.random.Generator, dim: int) -> None:
    x = mixed_rows(rng, 60, dim)
    # Long runs too: rows with few transitions.
    x[::5] = np.sort(x[::5], axis=1)
    enc = q2key.encode(x)
    s = q2key.symbols(x)
    keys = q2key.keys_from_symbols(s)
    assert np.array_equal(keys, enc.keys)
    ref = ref_encode(x)
    ok = ~ref.ambiguous
    assert np.array_equal(keys[ok], ref.keys[ok])
    assert np.array_equal(enc.transitions[ok], ref.transitions[ok])


def test_keys_from_symbols_rejects_bad_symbols() -> None:
    s = np.zeros((3, 5), np.int32)
    s[2, 4] = 9
    with pytest.raises(q2key.Q2KeyError, match=r"row 2 column 4"):
        q2key.keys_from_symbols(s)
    s8 = s.astype(np.uint8)
    with pytest.raises(q2key.Q2KeyError, match=r"row 2 column 4"):
        q2key.keys_from_symbols(s8)


def test_unpack_matches_an_independent_decoder(rng: np.random.Generator) -> None:
    """unpack reads exactly the Gray pairs pack wrote: against an independent decoder."""
    c = rng.integers(0, 256, size=(30, 7), dtype=np.uint8)
    c[:, -1] &= np.uint8(LAST_BYTE_MASK[26 % 4])
    assert np.array_equal(q2key.unpack(c, 26), ref_unpack(c, 26))
    assert np.array_equal(q2key.pack(q2key.unpack(c, 26)), c)
    d = q2key.lee(c, q2key.complement(c, 26))
    assert np.array_equal(d, ref_popcount_lee(c, q2key.complement(c, 26)))
