"""Lee distances between packed codes and exact k-NN search."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from . import _args, _native
from ._args import threads as check_threads
from ._errors import ShapeError
from ._inputs import code_rows
from ._results import SearchResult


def _broadcast_rows(a: Any, b: Any) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8], tuple[int, ...]]:
    """Both code arrays broadcast over their leading axes, as ``(rows, width)`` matrices."""
    a2, b2 = code_rows(a, "a"), code_rows(b, "b")
    aa, bb = np.asarray(a), np.asarray(b)
    if a2.shape[1] != b2.shape[1]:
        raise ShapeError(f"expected codes {a2.shape[1]} bytes wide, like a, got {b2.shape[1]} bytes", arg="b")
    try:
        lead = np.broadcast_shapes(aa.shape[:-1], bb.shape[:-1])
    except ValueError:
        raise ShapeError(f"a, b: leading shapes {aa.shape[:-1]} and {bb.shape[:-1]} do not broadcast") from None
    width = a2.shape[1]
    full = (*lead, width)
    a3 = np.ascontiguousarray(np.broadcast_to(aa, full)).reshape(-1, width)
    b3 = np.ascontiguousarray(np.broadcast_to(bb, full)).reshape(-1, width)
    return a3, b3, lead


def lee(a: Any, b: Any) -> npt.NDArray[np.uint32]:
    """Lee distance between codes, row by row, with numpy broadcasting over leading axes.

    ``a`` and ``b`` are uint8 codes ``(..., width)``; the result is uint32 of the
    broadcast leading shape. The distance is ``popcount(a XOR b)``: the Lee distance
    of the underlying Z4 symbols.

    >>> import numpy as np, q2key
    >>> db = q2key.encode(np.random.default_rng(0).normal(size=(5, 64))).codes
    >>> q2key.lee(db[0], db).shape
    (5,)
    """
    aa, bb = np.asarray(a), np.asarray(b)
    one_to_many = {aa.ndim, bb.ndim} == {1, 2} and aa.dtype == bb.dtype == np.uint8 and aa.shape[-1] == bb.shape[-1]
    if one_to_many:
        one, many = (aa, bb) if aa.ndim == 1 else (bb, aa)
        return _native.lee_one_to_many(np.require(one, requirements=["C", "A"]), code_rows(many, "b"))
    a2, b2, lead = _broadcast_rows(aa, bb)
    return _native.lee_pairwise(a2, b2).reshape(lead)


def lee_matrix(a: Any, b: Any, *, threads: int | None = None) -> npt.NDArray[np.uint32]:
    """All Lee distances between rows of ``a`` ``(M, width)`` and rows of ``b`` ``(N, width)``: ``(M, N)``.

    1-D inputs count as one row.

    >>> import numpy as np, q2key
    >>> codes = q2key.encode(np.random.default_rng(0).normal(size=(4, 32))).codes
    >>> d = q2key.lee_matrix(codes, codes)
    >>> d.shape, int(d.trace())
    ((4, 4), 0)
    """
    a2 = code_rows(np.atleast_2d(np.asarray(a)), "a")
    b2 = code_rows(np.atleast_2d(np.asarray(b)), "b")
    return _native.lee_matrix(a2, b2, check_threads(threads))


def weighted_lee(a: Any, b: Any, weights: tuple[float, float, float] = (1.0, 1.0, 2.0)) -> npt.NDArray[np.float64]:
    """Weighted Lee distance ``w_mag·#magnitude + w_sign·#sign + w_both·#both`` (row-wise, broadcasting).

    Per dimension, the XOR of the two Gray pairs says what changed: the low bit
    only (magnitude class), the high bit only (sign) or both (complement).
    ``weights=(1, 1, 2)`` is the plain Lee distance.

    >>> import q2key
    >>> a, b = q2key.pack([0, 0, 0]), q2key.pack([1, 3, 2])
    >>> float(q2key.weighted_lee(a, b, weights=(1.0, 10.0, 100.0)))
    111.0
    """
    w = _args.weights(weights)
    a2, b2, lead = _broadcast_rows(a, b)
    return _native.weighted_lee_pairwise(a2, b2, w).reshape(lead)


def search(queries: Any, database: Any, k: int, *, threads: int | None = None) -> SearchResult:
    """Exact k-nearest neighbours of each query code among the database codes by Lee distance.

    ``queries`` ``(Q, width)`` (or one code ``(width,)``) and ``database`` ``(N, width)``
    are uint8 codes. Returns a :class:`q2key.SearchResult` ``(distances, ids)``: uint32 distances
    and int64 database rows, of shape ``(Q, min(k, N))``, ascending by distance, ties broken by the
    lower database row. Never pads with ``-1``: with ``k > N`` there are ``N`` columns.

    >>> import numpy as np, q2key
    >>> db = q2key.encode(np.random.default_rng(0).normal(size=(100, 384))).codes
    >>> dist, idx = q2key.search(db[:2], db, k=3)
    >>> idx[:, 0].tolist(), dist[:, 0].tolist()
    ([0, 1], [0, 0])
    """
    kk = _args.size("k", k)
    n = check_threads(threads)
    q, d = np.asarray(queries), np.asarray(database)
    # Element types first (as code_rows checks them everywhere else), then the ranks search needs.
    q2, d2 = code_rows(np.atleast_2d(q), "queries"), code_rows(np.atleast_2d(d), "database")
    if q.ndim not in (1, 2):
        raise ShapeError(f"expected codes (Q, width) or (width,), got shape {q.shape}", arg="queries")
    if d.ndim != 2:
        raise ShapeError(f"expected codes (N, width), got shape {d.shape}", arg="database")
    return SearchResult(*_native.search(q2, d2, kk, n))
