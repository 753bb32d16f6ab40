"""The arguments of :class:`q2key.Index` that are not vectors or codes: ids, filters and ``rescore=``.

Conversion only (types, shapes, the range of an id); the index itself checks what depends on its
contents (an id already stored, an id not stored).
"""

from __future__ import annotations

from typing import Any, Callable, Union, cast

import numpy as np
import numpy.typing as npt

from . import _args
from ._errors import DTypeError, Q2KeyError, ShapeError
from ._inputs import Float32, Float64, code_rows, float_rows
from ._results import SearchResult

#: What ``rescore=`` accepts: vectors indexed by id (an array or ``np.memmap``), or a callable from ids to vectors.
Rescore = Union[npt.ArrayLike, Callable[[npt.NDArray[np.uint64]], npt.ArrayLike]]


def check_dim(want: int, got: int, arg: str) -> None:
    """Vectors of dimension ``got`` passed as ``arg`` to an index of dimension ``want``."""
    if got != want:
        raise ShapeError(f"expected vectors of dimension {want}, got {got}", arg=arg)


def index_floats(vectors: Any, dim: int, arg: str) -> Float32 | Float64:
    """Float rows (``(N, dim)`` or ``(dim,)``) for an index of dimension ``dim``."""
    rows, _ = float_rows(vectors, arg)
    check_dim(dim, int(rows.shape[1]), arg)
    return rows


def index_codes(codes: Any, dim: int, width: int, arg: str) -> npt.NDArray[np.uint8]:
    """uint8 code rows of ``width`` bytes for an index of dimension ``dim``."""
    c = code_rows(codes, arg)
    if c.shape[1] != width:
        raise ShapeError(f"expected codes of {width} bytes (dimension {dim}), got {c.shape[1]}", arg=arg)
    return c


def id_array(ids: Any, rows: int | None, arg: str = "ids") -> npt.NDArray[np.uint64] | None:
    """Ids as a contiguous uint64 array (``rows`` of them when given); negative, fractional or ≥ 2^64 ids are errors."""
    if ids is None:
        return None
    a = np.asarray(ids)
    if a.dtype.kind in "fO" and not isinstance(ids, np.ndarray):
        # A list mixing ids below and above 2^63 becomes float64 or object in numpy: keep the ints exact.
        flat = list(np.ravel(np.asarray(ids, dtype=object)))
        if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in flat):
            outside = [int(v) for v in flat if not 0 <= int(v) <= _args.U64_MAX]
            if outside:
                raise Q2KeyError(f"ids are unsigned 64-bit integers, got {outside[0]}", arg=arg)
            a = np.array([int(v) for v in flat], dtype=np.uint64).reshape(np.shape(ids))
    if a.ndim == 0:
        a = a.reshape(1)
    if a.dtype.kind not in "iu" and not (a.size == 0 and a.dtype.kind == "f"):
        raise DTypeError(f"expected integer ids, got dtype {a.dtype}", arg=arg)
    if a.ndim != 1:
        raise ShapeError(f"expected a 1-D array, got shape {a.shape}", arg=arg)
    if a.dtype.kind == "i" and a.size and int(a.min()) < 0:
        raise Q2KeyError(f"ids are unsigned 64-bit integers, got {int(a.min())}", arg=arg)
    if rows is not None and a.shape[0] != rows:
        raise ShapeError(f"expected {rows} ids (one per row), got {a.shape[0]}", arg=arg)
    # Aligned too: an array unpickled from a buffer (a Dask worker's) may start at any byte.
    return np.require(a, dtype=np.uint64, requirements=["C", "A"])


def id_list(ids: Any) -> npt.NDArray[np.uint64]:
    """:func:`id_array` of a required list of ids (``None`` is a type error)."""
    a = id_array(ids, None)
    if a is None:
        raise DTypeError("expected integer ids, got None", arg="ids")
    return a


def filter_arrays(filter: Any) -> tuple[npt.NDArray[np.uint64] | None, npt.NDArray[np.uint8] | None]:
    """``(ids, None)`` or ``(None, mask bytes)``: a boolean mask goes to the core as its bytes
    (non-zero = allowed), as numpy reads a bool byte; the core copies either before searching."""
    if filter is None:
        return None, None
    a = np.asarray(filter)
    if a.dtype == np.bool_:
        if a.ndim != 1:
            raise ShapeError(f"a boolean mask over ids must be 1-D, got shape {a.shape}", arg="filter")
        return None, np.ascontiguousarray(a).view(np.uint8)
    return id_array(filter, None, "filter"), None


def rescore_candidates(
    queries: Float32 | Float64, candidates: npt.NDArray[np.uint64], source: Rescore, k: int
) -> SearchResult:
    """Re-ranks each query's candidate ids by exact cosine: ``(1 − cosine, ids)``, ties to the lower id."""
    q = np.asarray(queries, dtype=np.float64)
    if candidates.shape[1] == 0:
        return SearchResult(np.zeros((q.shape[0], 0)), candidates)
    flat = candidates.ravel()
    if callable(source):
        vectors = np.asarray(source(flat), dtype=np.float64)
    else:
        table = cast(npt.NDArray[Any], source if isinstance(source, np.ndarray) else np.asarray(source))
        if table.ndim != 2 or table.shape[1] != q.shape[1]:
            raise ShapeError(
                f"expected vectors (rows, {q.shape[1]}) indexed by id, got shape {table.shape}", arg="rescore"
            )
        if int(flat.max()) >= table.shape[0]:
            raise ShapeError(f"id {int(flat.max())} is beyond the {table.shape[0]} rows of the vectors", arg="rescore")
        vectors = np.asarray(table[flat.astype(np.intp)], dtype=np.float64)
    if vectors.shape != (flat.size, q.shape[1]):
        raise ShapeError(
            f"expected {flat.size} vectors of dimension {q.shape[1]}, got shape {vectors.shape}", arg="rescore"
        )
    if not np.isfinite(vectors).all():
        raise Q2KeyError("the vectors contain NaN or ±Inf", arg="rescore")
    vectors = vectors.reshape(*candidates.shape, q.shape[1])
    norms = np.linalg.norm(vectors, axis=2) * np.linalg.norm(q, axis=1)[:, None]
    cos = np.einsum("qcn,qn->qc", vectors, q) / np.where(norms == 0, 1.0, norms)
    dist = 1.0 - cos
    # Sort by (distance, id): lexsort's last key is the primary one.
    order = np.lexsort((candidates, dist), axis=1)[:, :k]
    return SearchResult(np.take_along_axis(dist, order, axis=1), np.take_along_axis(candidates, order, axis=1))
