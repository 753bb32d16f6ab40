"""Tensors of other frameworks as numpy arrays, without a copy where possible (SPEC §7).

numpy arrays pass as they are; objects with ``__dlpack__`` (a CPU torch/JAX/CuPy-on-host tensor)
are read through ``np.from_dlpack``, falling back to ``__array__``; pyarrow
``fixed_size_list<float…>[n]`` arrays (and ChunkedArrays of them) become ``(N, n)`` views of their
values (several chunks are concatenated: one copy; null rows are errors). No framework is imported.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from ._errors import DTypeError, Q2KeyError


def as_array(x: Any, arg: str = "x") -> npt.NDArray[Any]:
    """``x`` as a numpy array without a copy where possible.

    numpy arrays pass as they are; pyarrow fixed-size lists become ``(N, n)`` views of their
    values; objects with ``__dlpack__`` are read through ``np.from_dlpack`` (falling back to
    ``__array__``), anything else through ``np.asarray``.
    """
    if isinstance(x, np.ndarray):
        return x
    if type(x).__module__.startswith("pyarrow"):
        rows = _arrow_rows(x, arg)
        if rows is not None:
            return rows
    dlpack_error: Exception | None = None
    if hasattr(x, "__dlpack__"):
        from_dlpack = getattr(np, "from_dlpack", None)  # numpy >= 1.22
        if from_dlpack is None:
            dlpack_error = RuntimeError("np.from_dlpack needs numpy >= 1.22")
        else:
            try:
                return np.asarray(from_dlpack(x))
            except (BufferError, TypeError, ValueError, RuntimeError, NotImplementedError) as e:
                dlpack_error = e
    elif not hasattr(x, "__array__"):
        return np.asarray(x)  # lists, scalars, buffers: numpy's own rules
    try:
        a = np.asarray(x)
    except (BufferError, TypeError, ValueError, RuntimeError, NotImplementedError) as e:
        raise _unreadable(x, arg, dlpack_error, e) from e
    if a.dtype == object and dlpack_error is not None:
        raise _unreadable(x, arg, dlpack_error, None) from dlpack_error
    return a


def _unreadable(x: Any, arg: str, dlpack_error: Exception | None, array_error: Exception | None) -> DTypeError:
    tried = []
    if dlpack_error is not None:
        tried.append(f"through DLPack ({dlpack_error})")
    if array_error is not None:
        tried.append(f"through __array__ ({array_error})")
    return DTypeError(
        f"could not read the {type(x).__module__}.{type(x).__qualname__} {' or '.join(tried)}; "
        "pass a CPU tensor that does not require grad, or a numpy array (bfloat16 tensors: pass their bits, "
        "e.g. t.view(torch.int16), with dtype='bf16')",
        arg=arg,
    )


def _arrow_rows(x: Any, arg: str) -> npt.NDArray[Any] | None:
    """A pyarrow ``fixed_size_list<float…>[n]`` array (or ChunkedArray of them) as an ``(N, n)`` view.

    Zero-copy for an Array and a one-chunk ChunkedArray (the child values buffer, sliced at the
    array's offset); several chunks are concatenated (one copy). A FixedSizeListScalar is one
    vector ``(n,)``. Other pyarrow objects give None (they go through ``__array__``/DLPack as
    usual). pyarrow is never imported here.
    """
    t: Any = getattr(x, "type", None)
    size: Any = getattr(t, "list_size", None)
    if not isinstance(size, int):
        return None  # not a fixed-size list
    if not hasattr(x, "null_count"):  # a FixedSizeListScalar: one vector
        if not x.is_valid:
            raise Q2KeyError("the Arrow fixed-size list scalar is null", arg=arg)
        return _arrow_values(x.values, t, size, arg, 0).reshape(size)
    chunks = getattr(x, "chunks", None)
    if chunks is None:
        return _arrow_fixed_list(x, size, arg, 0)
    if len(chunks) == 1:
        return _arrow_fixed_list(chunks[0], size, arg, 0)
    parts, start = [], 0
    for chunk in chunks:
        parts.append(_arrow_fixed_list(chunk, size, arg, start))
        start += len(chunk)
    if not parts:
        return np.empty((0, size), dtype=_arrow_value_dtype(t, arg))
    joined: npt.NDArray[Any] = np.concatenate(parts)  # several chunks: one copy
    return joined


def _arrow_value_dtype(list_type: Any, arg: str) -> np.dtype[Any]:
    """The numpy dtype of a fixed-size list type's values; non-numeric values raise DTypeError."""
    try:
        dtype: np.dtype[Any] = np.dtype(list_type.value_type.to_pandas_dtype())
    except (NotImplementedError, TypeError, ValueError):
        dtype = np.dtype(object)
    if dtype.kind not in "fiu":
        raise DTypeError(f"expected an Arrow fixed-size list of floats, got {list_type}", arg=arg)
    return dtype


def _arrow_fixed_list(a: Any, size: int, arg: str, first_row: int) -> npt.NDArray[Any]:
    """One pyarrow FixedSizeListArray as a zero-copy ``(len, size)`` numpy view; nulls raise naming the row."""
    rows = len(a)
    if a.null_count:
        row = first_row + int(np.flatnonzero(np.asarray(a.is_null().to_numpy(zero_copy_only=False)))[0])
        raise Q2KeyError(
            f"row {row} of the Arrow fixed-size list array is null "
            f"({a.null_count} null rows in all); fill or drop null rows before encoding",
            arg=arg,
            row=row,
        )
    flat = a.values.slice(a.offset * size, rows * size)  # honours slices; no copy
    return _arrow_values(flat, a.type, size, arg, first_row).reshape(rows, size)


def _arrow_values(flat: Any, list_type: Any, size: int, arg: str, first_row: int) -> npt.NDArray[Any]:
    """The flat child values of ``rows × size`` list entries as a zero-copy 1-D numpy array."""
    _arrow_value_dtype(list_type, arg)
    if flat.null_count:
        at = int(np.flatnonzero(np.asarray(flat.is_null().to_numpy(zero_copy_only=False)))[0])
        raise Q2KeyError(
            f"row {first_row + at // size} column {at % size} of the Arrow fixed-size list array is null; "
            "vectors need a value in every dimension",
            arg=arg,
            row=first_row + at // size,
            col=at % size,
        )
    return np.asarray(flat.to_numpy(zero_copy_only=True))
