"""Input normalisation: dtypes, ranks and memory layout, before the native call.

The native module only takes C-contiguous, aligned arrays of one exact dtype;
everything else is converted here, copying only when needed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from . import _args
from ._errors import DTypeError, NonFiniteError, Q2KeyError, ShapeError

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
        raise ShapeError(f"{arg}: expected a vector (n,) or a matrix (N, n), got shape {a.shape}")
    if a.shape[-1] == 0:
        raise ShapeError(f"{arg}: vectors need at least one dimension, got shape {a.shape}")
    was_1d = a.ndim == 1
    m = a.reshape(1, -1) if was_1d else a
    return np.require(m, dtype=target, requirements=["C", "A"]), was_1d


def check_real_dtype(a: npt.NDArray[Any], arg: str) -> None:
    """DTypeError unless ``a`` holds real numbers (floats or integers; not bool, complex, object, strings)."""
    if a.dtype.kind not in "fiu":
        raise DTypeError(f"{arg}: expected a real numeric array (float16/32/64 or integers), got dtype {a.dtype}")


def code_rows(c: Any, arg: str) -> UInt8:
    """``c`` as a C-contiguous uint8 matrix ``(rows, width)``, any leading shape flattened."""
    a = np.asarray(c)
    if a.dtype != np.uint8:
        raise DTypeError(f"{arg}: expected packed codes of dtype uint8, got dtype {a.dtype}")
    if a.ndim == 0:
        raise ShapeError(f"{arg}: expected codes of shape (..., width), got a 0-d array")
    if a.shape[-1] == 0:
        raise ShapeError(f"{arg}: codes need at least 1 byte per row, got shape {a.shape}")
    return np.require(a.reshape(-1, a.shape[-1]), dtype=np.uint8, requirements=["C", "A"])


def symbol_rows(s: Any, arg: str = "symbols") -> UInt8:
    """``s`` as a C-contiguous uint8 matrix of symbols 0..3, any leading shape flattened."""
    a = np.asarray(s)
    if a.dtype.kind not in "iu":
        raise DTypeError(f"{arg}: expected integer symbols 0..3, got dtype {a.dtype}")
    if a.ndim == 0:
        raise ShapeError(f"{arg}: expected symbols of shape (..., n), got a 0-d array")
    if a.shape[-1] == 0:
        raise ShapeError(f"{arg}: sequences need at least one symbol, got shape {a.shape}")
    m = a.reshape(-1, a.shape[-1])
    if a.dtype != np.uint8 and m.size:
        bad = np.argwhere((m < 0) | (m > 3))
        if len(bad):
            row, col = (int(v) for v in bad[0])
            raise Q2KeyError(
                f"{arg}: row {row} column {col} holds {m[row, col]}; symbols are 0 (A), 1 (B), 2 (C) or 3 (D)"
            )
    return np.require(m, dtype=np.uint8, requirements=["C", "A"])


def check_finite(rows: npt.NDArray[np.floating[Any]], arg: str) -> None:
    """NonFiniteError naming the first NaN/±Inf of a float matrix, in the words of the core's check."""
    bad = ~np.isfinite(rows)
    if bad.any():
        row, col = (int(v) for v in np.argwhere(bad)[0])
        raise NonFiniteError(
            f"{arg}: row {row} has a non-finite value ({rust_float(float(rows[row, col]))}) at column {col}; "
            "inputs must be finite"
        )


def rust_float(v: float) -> str:
    """``v`` as the core's messages print a non-finite f64 (``NaN``, ``inf``, ``-inf``); else ``repr``."""
    if v != v:
        return "NaN"
    return repr(v)


def check_threads(threads: Any) -> int | None:
    """``threads=``: None or a thread count (see :func:`q2key._args.threads`)."""
    return _args.threads(threads)


def check_threshold(threshold: Any) -> float | None:
    """A float ``threshold=`` (or None); its range is checked by the core."""
    if threshold is None:
        return None
    if isinstance(threshold, (bool, np.bool_)) or not isinstance(threshold, (int, float, np.integer, np.floating)):
        raise DTypeError(f"threshold: expected a number, a q2key.Thresholds or None, got {type(threshold).__name__}")
    return _args.real("threshold", threshold)


def check_dim(dim: Any) -> int:
    """A vector dimension ``1..=MAX_DIM`` (see :func:`q2key._args.dim`)."""
    return _args.dim(dim)
