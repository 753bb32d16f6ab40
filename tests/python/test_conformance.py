"""The conformance vectors (tests/conformance/q2_vectors.npz) are reproduced bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import q2key
from conftest import CONFORMANCE_FILE, first_mismatch_row, ref_encode

with np.load(CONFORMANCE_FILE) as _z:
    DIMS = [int(d) for d in _z["dims"]]


def _expect_equal(got: np.ndarray, expected: np.ndarray, what: str, dim: int, dtype: object) -> None:
    assert got.dtype == expected.dtype, f"dim {dim} {dtype}: {what} dtype {got.dtype} != {expected.dtype}"
    row = first_mismatch_row(got, expected)
    assert row is None, (
        f"dim {dim} {np.dtype(dtype).name}: {what} differ first at row {row}: "
        f"got {got[row]!r}, expected {expected[row]!r}"
    )


def test_file_lists_the_expected_dimensions(conformance: dict[str, np.ndarray]) -> None:
    assert len(DIMS) >= 20
    for n in DIMS:
        x = conformance[f"x_{n}"]
        assert x.dtype == np.float32 and x.shape[1] == n
        assert not x[0].any(), f"dim {n}: row 0 should be the all-zero vector"


@pytest.mark.parametrize("dim", DIMS)
def test_numpy_reference_agrees_with_the_file(conformance: dict[str, np.ndarray], dim: int) -> None:
    """The reference in conftest.py is itself checked against the independent vectors."""
    ref = ref_encode(conformance[f"x_{dim}"])
    assert not ref.ambiguous.any(), f"dim {dim}: the file promises no value near a threshold"
    for name, got in [("symbols", ref.symbols), ("codes", ref.codes), ("keys", ref.keys)]:
        _expect_equal(got, conformance[f"{name}_{dim}"], f"reference {name}", dim, np.float64)
    _expect_equal(ref.transitions, conformance[f"ntrans_{dim}"], "reference transitions", dim, np.float64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("dim", DIMS)
def test_encode_matches_the_file(conformance: dict[str, np.ndarray], dim: int, dtype: type) -> None:
    x = conformance[f"x_{dim}"].astype(dtype)
    enc = q2key.encode(x)
    assert enc.dim == dim
    _expect_equal(enc.codes, conformance[f"codes_{dim}"], "codes", dim, dtype)
    _expect_equal(enc.keys, conformance[f"keys_{dim}"], "keys", dim, dtype)
    _expect_equal(enc.transitions, conformance[f"ntrans_{dim}"], "transitions", dim, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("dim", DIMS)
def test_symbols_match_the_file(conformance: dict[str, np.ndarray], dim: int, dtype: type) -> None:
    x = conformance[f"x_{dim}"].astype(dtype)
    _expect_equal(q2key.symbols(x), conformance[f"symbols_{dim}"], "symbols", dim, dtype)


@pytest.mark.parametrize("dim", DIMS)
def test_rows_encoded_one_at_a_time_match_the_file(conformance: dict[str, np.ndarray], dim: int) -> None:
    x = conformance[f"x_{dim}"]
    for r in range(x.shape[0]):
        enc = q2key.encode(x[r])
        assert enc.codes.shape == (1, conformance[f"codes_{dim}"].shape[1])
        assert np.array_equal(enc.codes[0], conformance[f"codes_{dim}"][r]), f"dim {dim}: codes of row {r}"
        assert int(enc.keys[0]) == int(conformance[f"keys_{dim}"][r]), f"dim {dim}: key of row {r}"
        assert int(enc.transitions[0]) == int(conformance[f"ntrans_{dim}"][r]), f"dim {dim}: count row {r}"
        assert np.array_equal(q2key.symbols(x[r]), conformance[f"symbols_{dim}"][r]), f"dim {dim}: row {r}"


@pytest.mark.parametrize("dim", DIMS)
def test_float16_rows_that_keep_their_cells_match_the_file(conformance: dict[str, np.ndarray], dim: int) -> None:
    """float16 rounding moves values; rows where it moves none across a cut must still match."""
    x = conformance[f"x_{dim}"]
    with np.errstate(over="ignore"):
        x16 = x.astype(np.float16)
    finite = np.isfinite(x16).all(axis=1)
    ref16 = ref_encode(x16[finite].astype(np.float64))
    same = (ref16.symbols == conformance[f"symbols_{dim}"][finite]).all(axis=1) & ~ref16.ambiguous
    rows = np.flatnonzero(finite)[same]
    assert rows.size >= 1, f"dim {dim}: no float16-stable row"
    enc = q2key.encode(x16[rows])
    _expect_equal(enc.codes, conformance[f"codes_{dim}"][rows], "float16 codes", dim, np.float16)
    _expect_equal(enc.keys, conformance[f"keys_{dim}"][rows], "float16 keys", dim, np.float16)
    _expect_equal(enc.transitions, conformance[f"ntrans_{dim}"][rows], "float16 transitions", dim, np.float16)


@pytest.mark.parametrize("dim", DIMS)
def test_codes_and_keys_follow_from_the_file_symbols(conformance: dict[str, np.ndarray], dim: int) -> None:
    s = conformance[f"symbols_{dim}"]
    _expect_equal(q2key.pack(s), conformance[f"codes_{dim}"], "pack(symbols)", dim, np.uint8)
    _expect_equal(q2key.unpack(conformance[f"codes_{dim}"], dim), s, "unpack(codes)", dim, np.uint8)
    _expect_equal(q2key.keys_from_symbols(s), conformance[f"keys_{dim}"], "keys_from_symbols", dim, np.uint8)
    counts = np.array([len(q2key.run_reduce(row)) for row in s], dtype=np.uint32)
    _expect_equal(counts, conformance[f"ntrans_{dim}"], "len(run_reduce)", dim, np.uint8)
