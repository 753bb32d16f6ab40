"""Asymmetric scoring (SPEC §8): float queries against Q² codes, and the decode of codes to floats.

The score of a float query ``q`` against a code is the cosine between ``q`` and the code's
*reconstruction* ``x̂`` (per dimension, the value its symbol decodes to under the thresholds'
reconstruction table). Distances are reported as ``1 − cosine`` in float32, ascending, so that
smaller is nearer as for Lee distances.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from . import _args, _native
from ._args import threads as check_threads
from ._encode import ThresholdLike, _native_thresholds
from ._errors import DTypeError, Q2KeyError, ShapeError
from ._inputs import code_rows, float_rows
from ._results import SearchResult


def _dim_of(dim: Any, threshold: ThresholdLike, width: int) -> int:
    """``dim=`` when given, else the thresholds' dimension, else ``4 · width`` (every code bit a symbol)."""
    if dim is not None:
        return _args.dim(dim)
    own = _native_thresholds(threshold)
    if own is not None and own.dim is not None:
        return own.dim
    return 4 * width


def decode(codes: Any, *, dim: int | None = None, threshold: ThresholdLike = None) -> npt.NDArray[np.float32]:
    """The reconstructions of packed codes: float32 ``(N, dim)`` (or ``(dim,)`` for one code).

    Each symbol decodes to its dimension's value in the reconstruction table of ``threshold``
    (a :class:`q2key.Thresholds`' fitted table, else the default: the Gaussian cell means of its
    cuts; ``None`` is the Gaussian rule). ``dim`` defaults to the thresholds' dimension, else
    ``4 · code bytes``. Reconstructions are normalised coordinates: compare them by direction.
    Thresholds with a :attr:`~q2key.Thresholds.rotation` ``R`` decode to the input space:
    the table's values, which are about the rotated coordinates, times ``R.T``.

    >>> import numpy as np, q2key
    >>> codes = q2key.pack(np.array([[0, 1, 2, 3]], dtype=np.uint8))
    >>> q2key.decode(codes, dim=4).astype(float).round(4).tolist()
    [[-0.6356, -0.1623, 0.1623, 0.6356]]
    """
    one = np.asarray(codes).ndim == 1
    c = code_rows(codes, "codes")
    out = _native.decode(c, _dim_of(dim, threshold, int(c.shape[1])), _native_thresholds(threshold))
    return out[0] if one else out


def _float_queries(queries: Any, dim: int | None) -> tuple[npt.NDArray[Any], int]:
    q, _ = float_rows(queries, "queries")
    width = int(q.shape[1])
    if dim is not None and _args.dim(dim) != width:
        raise ShapeError(f"expected vectors of dimension {dim}, got {width}", arg="queries")
    return q, width


def asymmetric_search(
    queries: Any,
    codes: Any,
    k: int,
    *,
    dim: int | None = None,
    threshold: ThresholdLike = None,
    threads: int | None = None,
) -> SearchResult:
    """Exact k-nearest codes of each float query by asymmetric score (no index needed).

    ``queries`` are float vectors ``(Q, dim)`` (or one ``(dim,)``), ``codes`` uint8 ``(N, ceil(dim/4))``
    made with ``threshold`` (whose reconstruction table scores them; a rotation it carries is applied
    to the normalised queries first, as to the rows when they were encoded). Returns a
    :class:`q2key.SearchResult`: float32 distances ``1 − cosine(query, x̂)`` and int64 rows, both
    ``(Q, min(k, N))``, ascending, ties to the lower row.

    >>> import numpy as np, q2key
    >>> x = np.random.default_rng(0).normal(size=(100, 64)).astype(np.float32)
    >>> codes = q2key.encode(x).codes
    >>> dist, rows = q2key.asymmetric_search(x[:3], codes, k=2)
    >>> rows[:, 0].tolist(), dist.dtype.name
    ([0, 1, 2], 'float32')
    """
    kk = _args.size("k", k)
    q, width = _float_queries(queries, dim)
    c = code_rows(codes, "codes")
    return SearchResult(
        *_native.search_asym(q, c, width, _native_thresholds(threshold), kk, check_threads(threads), "queries")
    )


def rerank(
    queries: Any,
    codes: Any,
    candidates: Any,
    k: int,
    *,
    dim: int | None = None,
    threshold: ThresholdLike = None,
    threads: int | None = None,
) -> SearchResult:
    """Re-ranks each query's candidate rows of ``codes`` by asymmetric score (the two-stage path).

    ``candidates`` are int64 rows ``(Q, C)`` of ``codes`` (e.g. a Lee search's ids), ``-1`` for
    none; repeated rows count once. Returns a :class:`q2key.SearchResult` of float32 distances
    ``1 − cosine(query, x̂)`` and int64 rows, ``(Q, min(k, C))``, ascending, ties to the lower row;
    columns past a query's distinct candidates hold ``inf`` and ``-1``.

    >>> import numpy as np, q2key
    >>> x = np.random.default_rng(0).normal(size=(100, 64)).astype(np.float32)
    >>> codes = q2key.encode(x).codes
    >>> _, lee_rows = q2key.search(codes[:2], codes, k=20)
    >>> q2key.rerank(x[:2], codes, lee_rows, k=1).ids.tolist()
    [[0], [1]]
    """
    kk = _args.size("k", k)
    q, width = _float_queries(queries, dim)
    c = code_rows(codes, "codes")
    cand = np.asarray(candidates)
    if cand.dtype.kind not in "iu":
        raise DTypeError(f"expected integer rows, got dtype {cand.dtype}", arg="candidates")
    if cand.ndim == 1 and q.shape[0] == 1:
        cand = cand.reshape(1, -1)
    if cand.ndim != 2:
        raise ShapeError(f"expected rows (Q, C), got shape {cand.shape}", arg="candidates")
    if cand.dtype.kind == "u" and cand.size and int(cand.max()) > np.iinfo(np.int64).max:
        # The core's words for a row out of range (it cannot see rows beyond int64).
        at = int(np.argmax(cand > np.iinfo(np.int64).max))
        query, row = at // cand.shape[1], int(cand.ravel()[at])
        raise Q2KeyError(f"query {query} holds row {row}; candidates are rows 0..{c.shape[0]} or -1", arg="candidates")
    cand64 = np.require(cand, dtype=np.int64, requirements=["C", "A"])
    return SearchResult(
        *_native.rerank_asym(q, c, cand64, width, _native_thresholds(threshold), kk, check_threads(threads))
    )
