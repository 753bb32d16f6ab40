"""Real model inputs (SPEC §7): element types, tensors from other frameworks, hidden states.

:func:`prepare` turns whatever a model produced into what the native encoder takes:

* **tensors** — numpy arrays and array-likes as before; objects with ``__dlpack__``
  (a CPU torch/JAX/CuPy-on-host tensor, read without a copy through ``np.from_dlpack``)
  or ``__array__``; pyarrow ``fixed_size_list<float…>[n]`` arrays (and ChunkedArrays of them),
  read as ``(N, n)`` without a copy (several chunks are concatenated: one copy; null rows are
  errors). No framework is imported.
* **element types** (``dtype=``) — ``"q8"`` (int8 used as is), ``"q4"`` (two nibbles per byte,
  even index in the high nibble, value − 8), ``"q2"`` (packed Q² codes passed through),
  ``"bf16"`` (bfloat16 bit patterns in a uint16/int16 array, or an ``ml_dtypes.bfloat16``
  array), and ``"f16"``/``"f32"``/``"f64"`` (that float type, or its bit patterns in an unsigned
  integer array of the same width). fp16 subnormals are kept, not flushed to zero as in the
  reference kernel: only the direction of a row matters, so a row of subnormals encodes like
  its rescaled self (scale invariance).
* **hidden states** ``(B, T, n)`` — ``token="last"`` (the reference design's choice),
  ``token=<int>`` (negative counts from the end) or ``attention_mask=(B, T)`` (each row's last
  non-padding position, for left or right padding) select one position per sequence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Union

import numpy as np
import numpy.typing as npt

from . import _native
from ._arrays import Float32, Float64, UInt8, check_dim, check_real_dtype, float_rows
from ._errors import DTypeError, Q2KeyError, ShapeError

#: What ``token=`` accepts.
TokenLike = Union[int, Literal["last"], None]

# Accepted ``dtype=`` strings (case-insensitive) and the element type each names.
_DTYPES: dict[str, str] = {
    "f16": "f16",
    "fp16": "f16",
    "float16": "f16",
    "bf16": "bf16",
    "bfloat16": "bf16",
    "f32": "f32",
    "fp32": "f32",
    "float32": "f32",
    "f64": "f64",
    "fp64": "f64",
    "float64": "f64",
    "q8": "q8",
    "int8": "q8",
    "q4": "q4",
    "q2": "q2",
}
_FLOATS: dict[str, type[np.floating[Any]]] = {"f16": np.float16, "f32": np.float32, "f64": np.float64}
# ml_dtypes' small float types, all exactly representable in float32 (converted by the casts
# ml_dtypes registers; nothing is imported here).
_SMALL_FLOAT_PREFIXES = ("float8_", "float6_", "float4_")


def _q4_table() -> npt.NDArray[np.uint64]:
    b = np.arange(256)
    pairs = np.stack([(b >> 4) - 8, (b & 15) - 8], axis=1).astype(np.float32)
    return np.ascontiguousarray(pairs).view(np.uint64).reshape(256)


# byte -> the float32 pair (high nibble − 8, low nibble − 8) as one 8-byte word, so that
# unpacking is a single gather straight into the float32 output.
_Q4 = _q4_table()


@dataclass(frozen=True, eq=False)
class Prepared:
    """An input ready for the native encoder: float ``rows`` or q2 ``codes``, never both.

    Attributes:
        rows: C-contiguous float32 or float64 ``(N, dim)`` (``None`` for q2 codes).
        codes: C-contiguous uint8 ``(N, ceil(dim/4))`` packed codes (``dtype="q2"`` only).
        dim: the vectors' dimension.
        was_1d: the input was one vector (``rows``/``codes`` then have ``N = 1``).
    """

    rows: Float32 | Float64 | None
    codes: UInt8 | None
    dim: int
    was_1d: bool


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
            raise Q2KeyError(f"{arg}: the Arrow fixed-size list scalar is null")
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
        raise DTypeError(f"{arg}: expected an Arrow fixed-size list of floats, got {list_type}")
    return dtype


def _arrow_fixed_list(a: Any, size: int, arg: str, first_row: int) -> npt.NDArray[Any]:
    """One pyarrow FixedSizeListArray as a zero-copy ``(len, size)`` numpy view; nulls raise naming the row."""
    rows = len(a)
    if a.null_count:
        null_rows = np.flatnonzero(np.asarray(a.is_null().to_numpy(zero_copy_only=False)))
        raise Q2KeyError(
            f"{arg}: row {first_row + int(null_rows[0])} of the Arrow fixed-size list array is null "
            f"({a.null_count} null rows in all); fill or drop null rows before encoding"
        )
    flat = a.values.slice(a.offset * size, rows * size)  # honours slices; no copy
    return _arrow_values(flat, a.type, size, arg, first_row).reshape(rows, size)


def _arrow_values(flat: Any, list_type: Any, size: int, arg: str, first_row: int) -> npt.NDArray[Any]:
    """The flat child values of ``rows × size`` list entries as a zero-copy 1-D numpy array."""
    _arrow_value_dtype(list_type, arg)
    if flat.null_count:
        at = int(np.flatnonzero(np.asarray(flat.is_null().to_numpy(zero_copy_only=False)))[0])
        raise Q2KeyError(
            f"{arg}: row {first_row + at // size} column {at % size} of the Arrow fixed-size list array is null; "
            "vectors need a value in every dimension"
        )
    return np.asarray(flat.to_numpy(zero_copy_only=True))


def _unreadable(x: Any, arg: str, dlpack_error: Exception | None, array_error: Exception | None) -> DTypeError:
    tried = []
    if dlpack_error is not None:
        tried.append(f"through DLPack ({dlpack_error})")
    if array_error is not None:
        tried.append(f"through __array__ ({array_error})")
    return DTypeError(
        f"{arg}: could not read the {type(x).__module__}.{type(x).__qualname__} {' or '.join(tried)}; "
        "pass a CPU tensor that does not require grad, or a numpy array (bfloat16 tensors: pass their bits, "
        "e.g. t.view(torch.int16), with dtype='bf16')"
    )


def _element_type(dtype: Any) -> str | None:
    if dtype is None:
        return None
    if not isinstance(dtype, str):
        raise DTypeError(f"dtype: expected a string such as 'q8', 'q4', 'q2' or 'bf16', or None; got {dtype!r}")
    kind = _DTYPES.get(dtype.lower())
    if kind is None:
        accepted = ", ".join(repr(k) for k in _DTYPES)
        raise Q2KeyError(f"dtype: unknown element type {dtype!r}; expected None or one of {accepted}")
    return kind


def _token_index(token: Any, t: int) -> int:
    if isinstance(token, str):
        if token != "last":
            raise Q2KeyError(f"token: expected 'last', an integer position or None, got {token!r}")
        index = -1
    elif isinstance(token, (int, np.integer)) and not isinstance(token, (bool, np.bool_)):
        index = int(token)
    else:
        raise DTypeError(f"token: expected 'last', an integer position or None, got {type(token).__name__}")
    if t == 0:
        raise ShapeError("token: the hidden states have no positions (T = 0) to select from")
    if not -t <= index < t:
        raise Q2KeyError(
            f"token: position {index} is out of range for sequences of length T = {t} "
            f"(expected {-t} <= token <= {t - 1})"
        )
    return index


def _last_positions(attention_mask: Any, b: int, t: int, what: str) -> npt.NDArray[np.intp]:
    m = as_array(attention_mask, "attention_mask")
    if m.dtype.kind not in "biu":
        raise DTypeError(f"attention_mask: expected bool or integer 0/1 values, got dtype {m.dtype}")
    if m.shape != (b, t):
        raise ShapeError(f"attention_mask: expected shape (B, T) = ({b}, {t}) to match {what}, got {m.shape}")
    if m.dtype.kind != "b":
        bad = np.argwhere((m != 0) & (m != 1))
        if len(bad):
            row, col = (int(v) for v in bad[0])
            raise Q2KeyError(
                f"attention_mask: row {row} column {col} holds {m[row, col]}; expected 0 (padding) or 1 (token)"
            )
        m = m != 0
    empty = np.flatnonzero(~m.any(axis=1))
    if len(empty):
        more = f" (and {len(empty) - 1} more rows)" if len(empty) > 1 else ""
        raise Q2KeyError(
            f"attention_mask: row {int(empty[0])}{more} is all padding (no nonzero entry); there is no token to select"
        )
    # Last nonzero position: the first one in the reversed row.
    last: npt.NDArray[np.intp] = (t - 1 - np.argmax(m[:, ::-1], axis=1)).astype(np.intp)
    return last


def _select(a: npt.NDArray[Any], token: Any, attention_mask: Any, arg: str) -> npt.NDArray[Any]:
    """One position per sequence of hidden states ``(B, T, ·)``; other ranks pass through."""
    if token is None and attention_mask is None:
        if a.ndim == 3:
            raise ShapeError(
                f"{arg}: got hidden states of shape {a.shape} (B, T, n); pass token='last', token=<int> or "
                "attention_mask=(B, T) to select one position per sequence"
            )
        return a
    given = "token" if attention_mask is None else "attention_mask"
    if a.ndim != 3:
        raise ShapeError(
            f"{given}: selects one position of hidden states (B, T, n), but {arg} has shape {a.shape}; "
            f"for a single sequence (T, n) pass {arg}[None], or drop {given}= to encode every row"
        )
    if token is not None and attention_mask is not None:
        raise Q2KeyError("token, attention_mask: give one of them, not both")
    b, t = int(a.shape[0]), int(a.shape[1])
    if attention_mask is not None:
        picked: npt.NDArray[Any] = a[np.arange(b), _last_positions(attention_mask, b, t, f"{arg} of shape {a.shape}")]
        return picked
    return a[:, _token_index(token, t)]


def _check_rank(a: npt.NDArray[Any], arg: str, what: str) -> None:
    if a.ndim not in (1, 2):
        raise ShapeError(
            f"{arg}: expected {what} of shape (n,), (N, n), or hidden states (B, T, n) with token= or "
            f"attention_mask=; got shape {a.shape}"
        )
    if a.shape[-1] == 0:
        raise ShapeError(f"{arg}: rows need at least one element, got shape {a.shape}")


def _check_dtype(a: npt.NDArray[Any], ok: bool, arg: str, kind: str, expected: str) -> None:
    if not ok:
        raise DTypeError(f"{arg}: dtype={kind!r} expects {expected}, got dtype {a.dtype}")


def _bf16_to_f32(bits: npt.NDArray[Any]) -> Float32:
    """bfloat16 bit patterns (any 2-byte dtype) → float32, exactly: the bits are the top half."""
    wide = bits.view(np.uint16).astype(np.uint32, order="C")
    np.left_shift(wide, 16, out=wide)
    return wide.view(np.float32)


def _from_floats(a: npt.NDArray[Any], kind: str | None, arg: str) -> npt.NDArray[Any]:
    """Float element types to an array :func:`float_rows` takes."""
    name = a.dtype.name
    if kind is None:
        if a.dtype.kind == "V" and name == "bfloat16":
            return _bf16_to_f32(a)
        if a.dtype.kind == "V" and name.startswith(_SMALL_FLOAT_PREFIXES):
            return a.astype(np.float32)
        return a
    if kind == "bf16":
        ok = name == "bfloat16" or a.dtype in (np.dtype(np.uint16), np.dtype(np.int16))
        _check_dtype(a, ok, arg, kind, "uint16/int16 bfloat16 bit patterns or an ml_dtypes.bfloat16 array")
        return _bf16_to_f32(a)
    if kind == "q8":
        _check_dtype(a, a.dtype == np.int8, arg, kind, "int8 values (for raw bytes use .view(np.int8))")
        return a
    target = np.dtype(_FLOATS[kind])
    if a.dtype == target:
        return a
    bits_ok = a.dtype.kind in "iu" and a.dtype.itemsize == target.itemsize
    _check_dtype(a, bits_ok, arg, kind, f"{target} values or their {target.itemsize * 8}-bit integer bit patterns")
    return a.view(target)


def _from_q4(a: npt.NDArray[Any], dim: int | None, arg: str) -> npt.NDArray[np.float32]:
    _check_dtype(a, a.dtype == np.uint8, arg, "q4", "uint8 bytes of two packed nibbles")
    nbytes = int(a.shape[-1])
    n = 2 * nbytes if dim is None else dim
    if (n + 1) // 2 != nbytes:
        raise ShapeError(f"{arg}: dim={n} needs {(n + 1) // 2} bytes of q4 nibbles per row, got {nbytes} bytes")
    values: npt.NDArray[np.float32] = np.take(_Q4, a).view(np.float32)
    return values if n == 2 * nbytes else values[..., :n]


def _q2_codes(a: npt.NDArray[Any], dim: int | None, arg: str) -> tuple[UInt8, int]:
    _check_dtype(a, a.dtype == np.uint8, arg, "q2", "uint8 packed codes")
    width = int(a.shape[-1])
    n = 4 * width if dim is None else dim
    if (n + 3) // 4 != width:
        raise ShapeError(f"{arg}: dim={n} needs {(n + 3) // 4} bytes of q2 codes per row, got {width} bytes")
    codes = np.require(a if a.ndim == 2 else a.reshape(1, width), dtype=np.uint8, requirements=["C", "A"])
    _native.check_codes(codes, n, arg)  # the padding bits
    return codes, n


def prepare(
    x: Any,
    *,
    dtype: str | None = None,
    dim: int | None = None,
    token: int | Literal["last"] | None = None,
    attention_mask: Any = None,
    arg: str = "x",
) -> Prepared:
    """Normalise a model input into float rows (or q2 codes) for the encoder.

    ``x`` is ``(n,)``, ``(N, n)`` or, with ``token=``/``attention_mask=``, hidden states
    ``(B, T, n)`` (for packed types the last axis holds bytes). ``dtype`` names the element type
    (see the module docstring); ``dim`` is the vector dimension, needed for packed types whose
    last byte is not full and checked against the data otherwise.

    >>> import numpy as np
    >>> p = prepare(np.array([[0x9F, 0x80]], dtype=np.uint8), dtype="q4", dim=3)
    >>> p.rows.tolist(), p.dim
    ([[1.0, 7.0, 0.0]], 3)
    """
    kind = _element_type(dtype)
    want = None if dim is None else check_dim(dim)
    a = _select(as_array(x, arg), token, attention_mask, arg)
    if kind == "q2":
        _check_rank(a, arg, "packed codes")
        codes, n = _q2_codes(a, want, arg)
        return Prepared(rows=None, codes=codes, dim=n, was_1d=a.ndim == 1)
    if kind == "q4":
        _check_rank(a, arg, "packed q4 bytes")
        values = _from_q4(a, want, arg)
    else:
        if kind is None and a.dtype.kind in "bcOSU":  # the element type first, as float_rows checks it
            check_real_dtype(a, arg)
        _check_rank(a, arg, "vectors")
        values = _from_floats(a, kind, arg)
    rows, was_1d = float_rows(values, arg)
    n = int(rows.shape[1])
    if want is not None and want != n:
        raise ShapeError(f"{arg}: dim={want} was given, but the vectors have {n} values")
    return Prepared(rows=rows, codes=None, dim=n, was_1d=was_1d)
