"""Input arrays converted for the native module: one owner of dtypes, ranks and memory layout.

The native module only takes C-contiguous, aligned arrays of one exact dtype; everything else is
converted here, copying only when needed (scalar arguments: :mod:`._args`).

* **plain arrays** — :func:`float_rows` (vectors), :func:`code_rows` (packed codes),
  :func:`symbol_rows` (symbols 0..3); :func:`check_finite` names the first NaN/±Inf.
* **model outputs** — :func:`prepare` turns whatever a model produced into what the native encoder
  takes: tensors of other frameworks (:mod:`._tensors`: DLPack, ``__array__``, pyarrow
  fixed-size lists), hidden states ``(B, T, n)`` with ``token=``/``attention_mask=``
  (:mod:`._hidden_states`), and element types (``dtype=``): ``"q8"`` (int8 used as is), ``"q4"``
  (two nibbles per byte, even index in the high nibble, value − 8), ``"q2"`` (packed Q² codes
  passed through), ``"bf16"`` (bfloat16 bit patterns in a uint16/int16 array, or an
  ``ml_dtypes.bfloat16`` array), and ``"f16"``/``"f32"``/``"f64"`` (that float type, or its bit
  patterns in an unsigned integer array of the same width). fp16 subnormals are kept, not flushed
  to zero as in the reference kernel: only the direction of a row matters, so a row of subnormals
  encodes like its rescaled self (scale invariance).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from . import _args, _native
from ._errors import DTypeError, NonFiniteError, Q2KeyError, ShapeError
from ._hidden_states import select_positions
from ._tensors import as_array

Float32 = npt.NDArray[np.float32]
Float64 = npt.NDArray[np.float64]
UInt8 = npt.NDArray[np.uint8]


def float_rows(x: Any, arg: str = "x") -> tuple[Float32 | Float64, bool]:
    """``x`` as a C-contiguous ``(N, n)`` float32 or float64 matrix, and whether it was 1-D.

    float16 and integers of up to 16 bits convert exactly to float32; wider
    integers and floats go to float64. bool, complex, object and strings are rejected.
    """
    a = np.asarray(x)
    kind = a.dtype.kind
    check_real_dtype(a, arg)
    exact_in_f32 = (kind == "f" and a.dtype.itemsize <= 4) or (kind in "iu" and a.dtype.itemsize <= 2)
    target = np.float32 if exact_in_f32 else np.float64
    if a.ndim not in (1, 2):
        raise ShapeError(f"expected a vector (n,) or a matrix (N, n), got shape {a.shape}", arg=arg)
    if a.shape[-1] == 0:
        raise ShapeError(f"vectors need at least one dimension, got shape {a.shape}", arg=arg)
    was_1d = a.ndim == 1
    m = a.reshape(1, -1) if was_1d else a
    return np.require(m, dtype=target, requirements=["C", "A"]), was_1d


def check_real_dtype(a: npt.NDArray[Any], arg: str) -> None:
    """DTypeError unless ``a`` holds real numbers (floats or integers; not bool, complex, object, strings)."""
    if a.dtype.kind not in "fiu":
        raise DTypeError(f"expected a real numeric array (float16/32/64 or integers), got dtype {a.dtype}", arg=arg)


def code_rows(c: Any, arg: str) -> UInt8:
    """``c`` as a C-contiguous uint8 matrix ``(rows, width)``, any leading shape flattened."""
    a = np.asarray(c)
    if a.dtype != np.uint8:
        raise DTypeError(f"expected packed codes of dtype uint8, got dtype {a.dtype}", arg=arg)
    if a.ndim == 0:
        raise ShapeError("expected codes of shape (..., width), got a 0-d array", arg=arg)
    if a.shape[-1] == 0:
        raise ShapeError(f"codes need at least 1 byte per row, got shape {a.shape}", arg=arg)
    return np.require(a.reshape(-1, a.shape[-1]), dtype=np.uint8, requirements=["C", "A"])


def symbol_rows(s: Any, arg: str = "symbols") -> UInt8:
    """``s`` as a C-contiguous uint8 matrix of symbols 0..3, any leading shape flattened."""
    a = np.asarray(s)
    if a.dtype.kind not in "iu":
        raise DTypeError(f"expected integer symbols 0..3, got dtype {a.dtype}", arg=arg)
    if a.ndim == 0:
        raise ShapeError("expected symbols of shape (..., n), got a 0-d array", arg=arg)
    if a.shape[-1] == 0:
        raise ShapeError(f"sequences need at least one symbol, got shape {a.shape}", arg=arg)
    m = a.reshape(-1, a.shape[-1])
    if a.dtype != np.uint8 and m.size:
        bad = np.argwhere((m < 0) | (m > 3))
        if len(bad):
            row, col = (int(v) for v in bad[0])
            raise Q2KeyError(
                f"row {row} column {col} holds {m[row, col]}; symbols are 0 (A), 1 (B), 2 (C) or 3 (D)",
                arg=arg,
                row=row,
                col=col,
            )
    return np.require(m, dtype=np.uint8, requirements=["C", "A"])


def check_finite(rows: npt.NDArray[np.floating[Any]], arg: str) -> None:
    """NonFiniteError naming the first NaN/±Inf of a float matrix, in the words of the core's check."""
    bad = ~np.isfinite(rows)
    if bad.any():
        row, col = (int(v) for v in np.argwhere(bad)[0])
        raise NonFiniteError(
            f"row {row} has a non-finite value ({rust_float(float(rows[row, col]))}) at column {col}; "
            "inputs must be finite",
            arg=arg,
            row=row,
            col=col,
        )


def rust_float(v: float) -> str:
    """``v`` as the core's messages print a non-finite f64 (``NaN``, ``inf``, ``-inf``); else ``repr``."""
    if v != v:
        return "NaN"
    return repr(v)


# -- element types of model outputs -------------------------------------------------------------------------


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


def _element_type(dtype: Any) -> str | None:
    if dtype is None:
        return None
    if not isinstance(dtype, str):
        raise DTypeError(f"expected a string such as 'q8', 'q4', 'q2' or 'bf16', or None; got {dtype!r}", arg="dtype")
    kind = _DTYPES.get(dtype.lower())
    if kind is None:
        accepted = ", ".join(repr(k) for k in _DTYPES)
        raise Q2KeyError(f"unknown element type {dtype!r}; expected None or one of {accepted}", arg="dtype")
    return kind


def _check_rank(a: npt.NDArray[Any], arg: str, what: str) -> None:
    if a.ndim not in (1, 2):
        raise ShapeError(
            f"expected {what} of shape (n,), (N, n), or hidden states (B, T, n) with token= or "
            f"attention_mask=; got shape {a.shape}",
            arg=arg,
        )
    if a.shape[-1] == 0:
        raise ShapeError(f"rows need at least one element, got shape {a.shape}", arg=arg)


def _check_dtype(a: npt.NDArray[Any], ok: bool, arg: str, kind: str, expected: str) -> None:
    if not ok:
        raise DTypeError(f"dtype={kind!r} expects {expected}, got dtype {a.dtype}", arg=arg)


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
        raise ShapeError(f"dim={n} needs {(n + 1) // 2} bytes of q4 nibbles per row, got {nbytes} bytes", arg=arg)
    values: npt.NDArray[np.float32] = np.take(_Q4, a).view(np.float32)
    return values if n == 2 * nbytes else values[..., :n]


def _q2_codes(a: npt.NDArray[Any], dim: int | None, arg: str) -> tuple[UInt8, int]:
    _check_dtype(a, a.dtype == np.uint8, arg, "q2", "uint8 packed codes")
    width = int(a.shape[-1])
    n = 4 * width if dim is None else dim
    if (n + 3) // 4 != width:
        raise ShapeError(f"dim={n} needs {(n + 3) // 4} bytes of q2 codes per row, got {width} bytes", arg=arg)
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
    want = None if dim is None else _args.dim(dim)
    a = select_positions(as_array(x, arg), token, attention_mask, arg)
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
        raise ShapeError(f"dim={want} was given, but the vectors have {n} values", arg=arg)
    return Prepared(rows=rows, codes=None, dim=n, was_1d=was_1d)
