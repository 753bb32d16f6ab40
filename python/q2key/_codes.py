"""Packing, unpacking, complements, run-reduction and keys of symbol sequences."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from . import _native
from ._args import dim as check_dim
from ._errors import ShapeError
from ._inputs import code_rows, symbol_rows


def pack(symbols: Any) -> npt.NDArray[np.uint8]:
    """Pack symbols ``(..., n)`` (values 0..3) into Gray codes ``(..., ceil(n/4))``.

    >>> import q2key
    >>> q2key.pack([3, 0, 1, 2, 2]).tolist()
    [135, 192]
    """
    s = np.asarray(symbols)
    out = _native.pack(symbol_rows(s))
    return out.reshape((*s.shape[:-1], out.shape[1]))


def unpack(codes: Any, dim: int) -> npt.NDArray[np.uint8]:
    """Unpack Gray codes ``(..., ceil(dim/4))`` into symbols ``(..., dim)``.

    >>> import q2key
    >>> q2key.unpack(q2key.pack([3, 0, 1, 2, 2]), 5).tolist()
    [3, 0, 1, 2, 2]
    """
    c = np.asarray(codes)
    out = _native.unpack(code_rows(c, "codes"), check_dim(dim))
    return out.reshape((*c.shape[:-1], out.shape[1]))


def complement(codes: Any, dim: int) -> npt.NDArray[np.uint8]:
    """The complement θ(s) = s + 2 mod 4 of every symbol: each used bit flipped, padding kept zero.

    ``lee(c, complement(c, dim)) == 2 * dim`` for every code.

    >>> import q2key
    >>> q2key.unpack(q2key.complement(q2key.pack([0, 1, 2]), 3), 3).tolist()
    [2, 3, 0]
    """
    c = np.asarray(codes)
    out = _native.complement(code_rows(c, "codes"), check_dim(dim))
    return out.reshape(c.shape)


def run_reduce(symbols: Any) -> npt.NDArray[np.uint8]:
    """Run-reduce one symbol sequence: its first symbol, then each symbol differing from the one before.

    >>> import q2key
    >>> q2key.run_reduce([1, 1, 3, 3, 3, 0, 1, 1]).tolist()
    [1, 3, 0, 1]
    """
    s = np.asarray(symbols)
    if s.ndim != 1:
        raise ShapeError(f"expected one sequence of shape (n,), got shape {s.shape}", arg="symbols")
    if s.size == 0:  # the empty sequence reduces to itself
        return np.zeros(0, np.uint8)
    return _native.run_reduce(symbol_rows(s)[0])


def keys_from_symbols(symbols: Any) -> npt.NDArray[np.uint64]:
    """64-bit transition keys of symbol sequences ``(..., n)``: shape ``(...)``.

    The key holds the first 32 run-reduced symbols as base-4 digits, most significant first.

    >>> import q2key
    >>> hex(int(q2key.keys_from_symbols([1, 1, 3, 0])))
    '0x7000000000000000'
    """
    s = np.asarray(symbols)
    keys, _ = _native.keys_from_symbols(symbol_rows(s))
    return keys.reshape(s.shape[:-1])
