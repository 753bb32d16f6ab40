"""Shared fixtures and a plain-numpy reference of the Q² encoding (SPEC.md §1–§4).

The reference is written for clarity, not speed: it normalises every row in
float64 (after an exact power-of-two rescaling, so huge and tiny rows neither
overflow nor underflow), quantises with the SPEC table, Gray-maps, packs
MSB-first, run-reduces and builds the 64-bit key with Python integers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

GAUSSIAN_QUARTILE = 0.6745
KEY_SYMBOLS = 32
# Values whose normalised magnitude lies within this relative distance of the
# threshold may legitimately land in either cell (SPEC §1: "except for values
# that lie within float rounding of a boundary"); tests skip such rows.
BOUNDARY_RTOL = 1e-6

CONFORMANCE_FILE = Path(__file__).parents[1] / "conformance" / "q2_vectors.npz"


@dataclass
class Reference:
    symbols: np.ndarray  # uint8 (N, n)
    codes: np.ndarray  # uint8 (N, ceil(n/4))
    keys: np.ndarray  # uint64 (N,)
    transitions: np.ndarray  # uint32 (N,)
    ambiguous: np.ndarray  # bool (N,): a coordinate within float rounding of ±τ


def ref_threshold(dim: int) -> float:
    return GAUSSIAN_QUARTILE / np.sqrt(dim)


def ref_normalise(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` (float64) divided by their L2 norm; all-zero rows stay zero."""
    x = np.asarray(x, dtype=np.float64)
    m = np.abs(x).max(axis=1, keepdims=True)
    _, e = np.frexp(m)
    xs = np.ldexp(x, -e)  # exact: a power-of-two rescaling bringing the max into [0.5, 1)
    norm = np.sqrt((xs * xs).sum(axis=1, keepdims=True))
    safe = np.where(norm > 0, norm, 1.0)
    return xs / safe


def ref_symbols(x: np.ndarray, threshold: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Symbols (N, n) of a 2-D input and the per-row "near a boundary" flag."""
    x = np.asarray(x, dtype=np.float64)
    assert x.ndim == 2
    n = x.shape[1]
    tau = ref_threshold(n) if threshold is None else float(threshold)
    v = ref_normalise(x)
    # The sign test uses the raw value (exact); the magnitude test the unit vector.
    pos = x > 0
    strong_pos = v > tau
    strong_neg = v <= -tau
    s = np.where(strong_pos, 3, np.where(pos, 2, np.where(strong_neg, 0, 1))).astype(np.uint8)
    zero_rows = ~(x != 0).any(axis=1)
    s[zero_rows] = 1
    near = (x != 0) & (np.abs(np.abs(v) - tau) <= BOUNDARY_RTOL * tau + 1e-300)
    ambiguous = near.any(axis=1) & ~zero_rows
    return s, ambiguous


def ref_gray(s: np.ndarray) -> np.ndarray:
    s = np.asarray(s, dtype=np.uint8)
    return s ^ (s >> 1)


def ref_pack(symbols: np.ndarray) -> np.ndarray:
    """Gray-code and pack (..., n) symbols MSB-first into (..., ceil(n/4)) bytes."""
    s = np.asarray(symbols, dtype=np.uint8)
    n = s.shape[-1]
    width = -(-n // 4)
    g = np.zeros((*s.shape[:-1], 4 * width), dtype=np.uint8)
    g[..., :n] = ref_gray(s)
    g = g.reshape(*s.shape[:-1], width, 4)
    return ((g[..., 0] << 6) | (g[..., 1] << 4) | (g[..., 2] << 2) | g[..., 3]).astype(np.uint8)


def ref_unpack(codes: np.ndarray, dim: int) -> np.ndarray:
    c = np.asarray(codes, dtype=np.uint8)
    pairs = np.stack([(c >> 6) & 3, (c >> 4) & 3, (c >> 2) & 3, c & 3], axis=-1)
    g = pairs.reshape(*c.shape[:-1], -1)[..., :dim]
    return (g ^ (g >> 1)).astype(np.uint8)


def ref_run_reduce(s: np.ndarray) -> np.ndarray:
    s = np.asarray(s, dtype=np.uint8).ravel()
    if s.size == 0:
        return s
    keep = np.concatenate([[True], s[1:] != s[:-1]])
    return s[keep]


def ref_key(reduced: np.ndarray) -> int:
    key = 0
    for i, r in enumerate(np.asarray(reduced)[:KEY_SYMBOLS]):
        key |= int(r) << (62 - 2 * i)
    return key


def ref_keys_and_transitions(symbols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(symbols, dtype=np.uint8)
    flat = s.reshape(-1, s.shape[-1])
    keys, counts = [], []
    for row in flat:
        r = ref_run_reduce(row)
        keys.append(ref_key(r))
        counts.append(len(r))
    return (
        np.array(keys, dtype=np.uint64).reshape(s.shape[:-1]),
        np.array(counts, dtype=np.uint32).reshape(s.shape[:-1]),
    )


def ref_encode(x: np.ndarray, threshold: float | None = None) -> Reference:
    x2 = np.asarray(x, dtype=np.float64)
    if x2.ndim == 1:
        x2 = x2[None, :]
    s, ambiguous = ref_symbols(x2, threshold)
    keys, transitions = ref_keys_and_transitions(s)
    return Reference(s, ref_pack(s), keys, transitions, ambiguous)


def ref_popcount_lee(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Lee distance of packed codes as popcount(a XOR b), with broadcasting."""
    x = np.bitwise_xor(np.asarray(a, dtype=np.uint8), np.asarray(b, dtype=np.uint8))
    return np.unpackbits(x, axis=-1).sum(axis=-1, dtype=np.int64)


def ref_lee_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = np.atleast_2d(a)
    b = np.atleast_2d(b)
    if a.shape[0] == 0 or b.shape[0] == 0:
        return np.zeros((a.shape[0], b.shape[0]), dtype=np.int64)
    return ref_popcount_lee(a[:, None, :], b[None, :, :])


def ref_symbol_lee(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Lee distance on Z4 summed over the last axis: Σ min(|a−b|, 4−|a−b|)."""
    d = np.abs(np.asarray(a, dtype=np.int64) - np.asarray(b, dtype=np.int64))
    return np.minimum(d, 4 - d).sum(axis=-1)


def ref_weighted_lee(a: np.ndarray, b: np.ndarray, weights: tuple[float, float, float]) -> np.ndarray:
    x = np.bitwise_xor(np.asarray(a, dtype=np.uint8), np.asarray(b, dtype=np.uint8))
    pairs = np.stack([(x >> 6) & 3, (x >> 4) & 3, (x >> 2) & 3, x & 3], axis=-1)
    mag = (pairs == 1).sum(axis=(-1, -2))
    sign = (pairs == 2).sum(axis=(-1, -2))
    both = (pairs == 3).sum(axis=(-1, -2))
    return weights[0] * mag + weights[1] * sign + weights[2] * both


def ref_search(queries: np.ndarray, database: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Brute force: stable sort of every distance row (ties to the lower index)."""
    q = np.atleast_2d(queries)
    d = ref_lee_matrix(q, database)
    kk = min(k, database.shape[0])
    idx = np.argsort(d, axis=1, kind="stable")[:, :kk]
    return np.take_along_axis(d, idx, axis=1).astype(np.uint32), idx.astype(np.int64)


def first_mismatch_row(got: np.ndarray, expected: np.ndarray) -> int | None:
    """Index of the first row (along axis 0) where two equal-shape arrays differ."""
    got, expected = np.asarray(got), np.asarray(expected)
    assert got.shape == expected.shape, f"shape {got.shape} != {expected.shape}"
    diff = got != expected
    if diff.ndim > 1:
        diff = diff.reshape(diff.shape[0], -1).any(axis=1)
    rows = np.flatnonzero(diff)
    return int(rows[0]) if rows.size else None


def assert_rows_equal(got: np.ndarray, expected: np.ndarray, what: str) -> None:
    row = first_mismatch_row(got, expected)
    assert row is None, f"{what}: first mismatch at row {row}: got {got[row]!r}, expected {expected[row]!r}"


def mixed_rows(rng: np.random.Generator, rows: int, n: int) -> np.ndarray:
    """float64 test rows: Gaussian, Laplace, sparse, offset and widely scaled vectors."""
    kinds = [
        lambda: rng.normal(size=n),
        lambda: rng.laplace(size=n),
        lambda: rng.normal(size=n) * (rng.random(n) < 0.2),
        lambda: rng.normal(size=n) + 0.5,
        lambda: rng.normal(size=n) * 10.0 ** rng.uniform(-3, 6),
        lambda: np.repeat(rng.normal(size=-(-n // 7)), 7)[:n],
    ]
    return np.stack([kinds[i % len(kinds)]() for i in range(rows)])


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20240601)


@pytest.fixture(scope="session")
def conformance() -> dict[str, np.ndarray]:
    with np.load(CONFORMANCE_FILE) as z:
        return {k: z[k] for k in z.files}
