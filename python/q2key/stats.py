"""Statistics on transition sequences (SPEC §4–§5), computed in Rust over many sequences at once.

Every function takes a batch of symbol sequences (values 0..3, as :func:`q2key.symbols` returns):
an array ``(..., n)`` of equal-length rows — a single ``(n,)`` sequence is a batch of one — or a
:class:`Ragged` batch of sequences of different lengths (what :func:`run_reduce_rows` returns).
Per-row results have the shape of the leading axes (``(N,)`` for a :class:`Ragged` batch).

Statistics are taken over the run-reduced sequence ``R`` of each row (reducing twice changes
nothing, so a reduced row gives the same values), with ``θ(s) = s + 2 mod 4``:

- transition density ``|R| / n``;
- complement bigram frequency: the share of ``i < |R| − 1`` with ``r[i+1] = θ(r[i])`` (≈ 1/3 on
  i.i.d. symbols);
- hairpin density: the share of ``i < |R| − 2`` with ``r[i+1] = θ(r[i])`` and ``r[i+2] = r[i]``
  (≈ 1/9 on i.i.d. symbols);
- bigram (4×4) and triplet (4×4×4) counts of ``R``: the diagonal bigrams are 0 and only the 36
  triplets with ``a ≠ b ≠ c`` occur.

A ratio with a zero denominator is NaN: the transition density of an empty ragged row, the
complement bigram frequency when ``|R| ≤ 1``, the hairpin density when ``|R| ≤ 2``.

>>> import numpy as np
>>> from q2key import stats
>>> s = np.array([[0, 0, 2, 0, 1, 3, 3, 1], [1, 1, 1, 1, 1, 1, 1, 1]], dtype=np.uint8)
>>> stats.run_reduce_rows(s).to_list()
[[0, 2, 0, 1, 3, 1], [1]]
>>> stats.hairpin_density(s).tolist()
[0.5, nan]
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, NamedTuple, Union, overload

import numpy as np
import numpy.typing as npt

from . import _args, _native
from ._args import threads as check_threads
from ._errors import DTypeError, Q2KeyError, ShapeError
from ._inputs import symbol_rows

__all__ = [
    "MAX_ADMISSIBLE_K",
    "KeyCollisions",
    "Ragged",
    "admissible_sequences",
    "bigram_counts",
    "complement_bigram_frequency",
    "hairpin_density",
    "key_collisions",
    "reverse_complement",
    "run_reduce_rows",
    "transition_counts",
    "transition_density",
    "triplet_counts",
]

UInt8 = npt.NDArray[np.uint8]
Int64 = npt.NDArray[np.int64]
UInt64 = npt.NDArray[np.uint64]
Float64 = npt.NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class Ragged:
    """Sequences of different lengths: row ``i`` is ``values[offsets[i]:offsets[i + 1]]``.

    ``values`` is uint8, ``offsets`` int64 with one more element than there are rows, starting
    at 0, nondecreasing and ending at ``len(values)``. Construction converts and checks both.

    >>> from q2key.stats import Ragged
    >>> r = Ragged.from_sequences([[0, 2], [], [3, 1, 3]])
    >>> len(r), r.offsets.tolist(), r.row(2).tolist()
    (3, [0, 2, 2, 5], [3, 1, 3])
    """

    values: UInt8
    offsets: Int64

    def __post_init__(self) -> None:
        v = np.asarray(self.values)
        o = np.asarray(self.offsets)
        if v.dtype.kind not in "iu":
            raise DTypeError(f"values: expected integer symbols 0..3, got dtype {v.dtype}")
        if v.ndim != 1:
            raise ShapeError(f"values: expected a flat array (total,), got shape {v.shape}")
        if o.dtype.kind not in "iu":
            raise DTypeError(f"offsets: expected integer offsets, got dtype {o.dtype}")
        if o.ndim != 1:
            raise ShapeError(f"offsets: expected a flat array of N + 1 ≥ 1 offsets, got shape {o.shape}")
        if o.dtype == np.uint64 and o.size and o.max() > np.iinfo(np.int64).max:  # would wrap in the conversion
            raise Q2KeyError(f"offsets: {o.max()} is too large")
        o = np.require(o, dtype=np.int64, requirements=["C", "A"])
        _native.stats.check_offsets(o, v.size)
        if v.dtype != np.uint8 and v.size:
            # Symbols of a wider dtype are checked before the conversion to uint8 would wrap them
            # (the core checks uint8 symbols when they are used).
            bad = np.flatnonzero((v < 0) | (v > 3))
            if bad.size:
                at = int(bad[0])
                row = int(np.searchsorted(o, at, side="right")) - 1
                raise Q2KeyError(
                    f"values: row {row} column {at - int(o[row])} holds {v[at]}; "
                    "symbols are 0 (A), 1 (B), 2 (C) or 3 (D)"
                )
        v = np.require(v, dtype=np.uint8, requirements=["C", "A"])
        object.__setattr__(self, "values", v)
        object.__setattr__(self, "offsets", o)

    @classmethod
    def from_sequences(cls, sequences: Any) -> Ragged:
        """A batch from an iterable of 1-D symbol sequences (lists or arrays), which may differ in length."""
        rows = [np.asarray(s).reshape(-1) for s in sequences]
        rows = [r if r.size else r.astype(np.uint8) for r in rows]  # [] is float64 to numpy
        lengths = np.array([r.size for r in rows], dtype=np.int64)
        offsets = np.concatenate([np.zeros(1, np.int64), np.cumsum(lengths, dtype=np.int64)])
        values = np.concatenate(rows) if rows else np.zeros(0, np.uint8)
        return cls(values, offsets)

    def __len__(self) -> int:
        """The number of rows."""
        return int(self.offsets.size) - 1

    @property
    def lengths(self) -> Int64:
        """The length of every row, int64 ``(N,)``."""
        return np.diff(self.offsets)

    def row(self, i: int) -> UInt8:
        """Row ``i`` (negative ``i`` counts from the end), a view into ``values``."""
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"row {i} out of range for {n} rows")
        i %= n
        return self.values[int(self.offsets[i]) : int(self.offsets[i + 1])]

    def to_list(self) -> list[list[int]]:
        """The rows as Python lists."""
        return [self.row(i).tolist() for i in range(len(self))]


Sequences = Union[Ragged, npt.ArrayLike]


class _Batch(NamedTuple):
    values: UInt8
    offsets: Int64
    shape: tuple[int, ...]  # the leading axes of per-row results
    dense: tuple[int, ...] | None  # the input's shape for an array input


def _batch(symbols: Any) -> _Batch:
    if isinstance(symbols, Ragged):
        return _Batch(symbols.values, symbols.offsets, (len(symbols),), None)
    s = np.asarray(symbols)
    m = symbol_rows(s, "symbols")
    rows, n = m.shape
    offsets = np.arange(rows + 1, dtype=np.int64) * n
    return _Batch(m.reshape(-1), offsets, s.shape[:-1], s.shape)


def run_reduce_rows(symbols: Sequences, *, threads: int | None = None) -> Ragged:
    """Run-reduce every row: its first symbol, then each symbol that differs from the one before.

    Rows of an array ``(..., n)`` are taken in C order, so the result has ``prod(shape[:-1])`` rows.
    (:func:`q2key.run_reduce` reduces one sequence to an array.)

    >>> from q2key import stats
    >>> stats.run_reduce_rows([[1, 1, 3, 3, 0], [2, 2, 2, 2, 2]]).to_list()
    [[1, 3, 0], [2]]
    """
    b = _batch(symbols)
    values, offsets = _native.stats.run_reduce(b.values, b.offsets, check_threads(threads))
    return Ragged(values, offsets)


def transition_counts(symbols: Sequences, *, threads: int | None = None) -> UInt64:
    """``|R|``, the length of every run-reduced row (uint64, the shape of the leading axes).

    >>> from q2key import stats
    >>> stats.transition_counts([[1, 1, 3, 3, 0], [2, 2, 2, 2, 2]]).tolist()
    [3, 1]
    """
    b = _batch(symbols)
    return _native.stats.transition_counts(b.values, b.offsets, check_threads(threads)).reshape(b.shape)


def transition_density(symbols: Sequences, *, threads: int | None = None) -> Float64:
    """``|R| / n`` of every row (float64; NaN for an empty ragged row).

    >>> from q2key import stats
    >>> stats.transition_density([[1, 1, 3, 3], [0, 1, 2, 3]]).tolist()
    [0.5, 1.0]
    """
    b = _batch(symbols)
    return _native.stats.transition_density(b.values, b.offsets, check_threads(threads)).reshape(b.shape)


def complement_bigram_frequency(symbols: Sequences, *, threads: int | None = None) -> Float64:
    """Share of the ``|R| − 1`` adjacent pairs of ``R`` with ``r[i+1] = θ(r[i])`` (NaN when ``|R| ≤ 1``).

    About 1/3 on i.i.d. symbols: each next element of ``R`` is one of the three other symbols.

    >>> from q2key import stats
    >>> stats.complement_bigram_frequency([[0, 2, 2, 0, 1], [3, 3, 3, 3, 3]]).tolist()
    [0.6666666666666666, nan]
    """
    b = _batch(symbols)
    out = _native.stats.complement_bigram_frequency(b.values, b.offsets, check_threads(threads))
    return out.reshape(b.shape)


def hairpin_density(symbols: Sequences, *, threads: int | None = None) -> Float64:
    """Share of the ``|R| − 2`` places with ``r[i+1] = θ(r[i])`` and ``r[i+2] = r[i]`` (NaN when ``|R| ≤ 2``).

    About 1/9 on i.i.d. symbols.

    >>> from q2key import stats
    >>> stats.hairpin_density([0, 2, 0, 1, 3, 1]).tolist()
    0.5
    """
    b = _batch(symbols)
    return _native.stats.hairpin_density(b.values, b.offsets, check_threads(threads)).reshape(b.shape)


def bigram_counts(symbols: Sequences, *, total: bool = False, threads: int | None = None) -> UInt64:
    """Counts of the adjacent pairs ``(r[i], r[i+1]) = (a, b)`` of ``R`` at ``[..., a, b]`` (uint64).

    Per row, shape ``(..., 4, 4)``; with ``total=True`` summed over all rows, shape ``(4, 4)``.
    The diagonal is always 0 (adjacent elements of ``R`` differ).

    >>> from q2key import stats
    >>> stats.bigram_counts([0, 0, 2, 0, 1]).tolist()
    [[0, 1, 1, 0], [0, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]]
    """
    b = _batch(symbols)
    t = check_threads(threads)
    if total:
        return _native.stats.bigram_totals(b.values, b.offsets, t).reshape(4, 4)
    return _native.stats.bigram_counts(b.values, b.offsets, t).reshape((*b.shape, 4, 4))


def triplet_counts(symbols: Sequences, *, total: bool = False, threads: int | None = None) -> UInt64:
    """Counts of the triplets ``(r[i], r[i+1], r[i+2]) = (a, b, c)`` of ``R`` at ``[..., a, b, c]`` (uint64).

    Per row, shape ``(..., 4, 4, 4)``; with ``total=True`` summed over all rows, ``(4, 4, 4)``.
    Only the 36 admissible cells (``a ≠ b``, ``b ≠ c``) can be nonzero.

    >>> from q2key import stats
    >>> t = stats.triplet_counts([[0, 2, 0, 1], [1, 1, 3, 1]], total=True)
    >>> int(t.sum()), int(t[0, 2, 0]), int(t[1, 3, 1])
    (3, 1, 1)
    """
    b = _batch(symbols)
    t = check_threads(threads)
    if total:
        return _native.stats.triplet_totals(b.values, b.offsets, t).reshape(4, 4, 4)
    return _native.stats.triplet_counts(b.values, b.offsets, t).reshape((*b.shape, 4, 4, 4))


@overload
def reverse_complement(symbols: Ragged, *, threads: int | None = None) -> Ragged: ...
@overload
def reverse_complement(symbols: npt.ArrayLike, *, threads: int | None = None) -> UInt8: ...
def reverse_complement(symbols: Sequences, *, threads: int | None = None) -> UInt8 | Ragged:
    """θ on every symbol, then each row reversed: an array of the input's shape, or a :class:`Ragged`.

    >>> from q2key import stats
    >>> stats.reverse_complement([0, 1, 1, 3]).tolist()
    [1, 3, 3, 2]
    >>> stats.reverse_complement(stats.Ragged.from_sequences([[0, 1], [2]])).to_list()
    [[3, 2], [0]]
    """
    b = _batch(symbols)
    out = _native.stats.reverse_complement(b.values, b.offsets, check_threads(threads))
    if b.dense is None:
        return Ragged(out, b.offsets)
    return out.reshape(b.dense)


class KeyCollisions(NamedTuple):
    """Collision statistics of a set of 64-bit keys."""

    n: int
    """``N``, the number of keys."""
    distinct: int
    """The number of distinct keys."""
    colliding_pairs: int
    """Pairs of equal keys: ``Σ c(c−1)/2`` over the groups of ``c`` equal keys (an exact int)."""
    expected_pairs: float
    """The birthday expectation for uniform 64-bit keys, ``N(N−1)/2^65``."""


def key_collisions(keys: npt.ArrayLike) -> KeyCollisions:
    """Count colliding key pairs and compare with the birthday expectation ``N(N−1)/2^65``.

    ``keys`` is an integer array of any shape (uint64 keys as :func:`q2key.encode` returns; a
    signed int64 array holding the same bits gives the same counts).

    >>> from q2key import stats
    >>> stats.key_collisions([7, 3, 7, 7, 1])
    KeyCollisions(n=5, distinct=3, colliding_pairs=3, expected_pairs=5.421010862427522e-19)
    """
    k = np.asarray(keys)
    if k.dtype.kind not in "iu" or k.dtype.itemsize > 8:
        raise DTypeError(f"expected integer keys (uint64), got dtype {k.dtype}", arg="keys")
    flat = np.require(k.reshape(-1).astype(np.uint64, copy=False), requirements=["C", "A"])
    return KeyCollisions(*_native.stats.key_collisions(flat))


#: The largest ``k`` :func:`admissible_sequences` takes: ``4·3^(k−1)`` fits the core's 128-bit result.
MAX_ADMISSIBLE_K: int = _native.stats.MAX_ADMISSIBLE_K


def admissible_sequences(k: int) -> int:
    """``4·3^(k−1)``, the number of transition sequences of length ``k`` (adjacent elements differ).

    Exact for ``0 ≤ k ≤`` :data:`MAX_ADMISSIBLE_K` (80, the largest count that fits 128 bits;
    keys hold 32 symbols); ``k = 0`` gives 1 (the empty sequence). A larger ``k`` raises
    :class:`q2key.Q2KeyError` at once.

    >>> from q2key import stats
    >>> stats.admissible_sequences(1), stats.admissible_sequences(32)
    (4, 2470693585135788)
    """
    return int(_native.stats.admissible_sequences(_args.size("k", k, minimum=0)))


def run_reduce(symbols: Sequences, *, threads: int | None = None) -> Ragged:
    """Deprecated: :func:`run_reduce_rows` under its old name, which :func:`q2key.run_reduce` also has."""
    warnings.warn(
        "q2key.stats.run_reduce is deprecated; use q2key.stats.run_reduce_rows (q2key.run_reduce reduces one sequence)",
        DeprecationWarning,
        stacklevel=2,
    )
    return run_reduce_rows(symbols, threads=threads)
