"""Scalar arguments of the public API converted for the native module: one place, one wording.

Every documented entry point is a Python function or method, and only this layer knows the
*public* parameter names (``threads``, ``k``, ``dim``, ``weights``, …): the native functions
take pre-converted arrays and sizes under internal names, and pyo3's own extraction errors are
``OverflowError``/``TypeError`` prefixed with ``argument 'x':``. So each entry point passes its
scalars through these helpers once, and the same mistake gets the same class and words
everywhere.

The helpers convert *types* only:

* any Python ``int`` or numpy integer scalar (through ``__index__``) is an integer; ``bool``,
  floats, strings and ``None`` are not (:class:`DTypeError`);
* a size is an integer ``>= minimum`` (a negative number has no unsigned native form), and a
  size beyond what the native side can hold *saturates* to the native maximum: ``threads=2**64``
  then meets the same Rust check, with the same words, as ``threads=10**9``, and
  ``k=2**64`` means "all rows" as ``k=10**9`` does;
* a real is an ``int``/``float`` or numpy real scalar; ``weights`` are three reals.

Range checks beyond the type — ``dim`` at most :data:`MAX_DIM`, the thread cap, finite and
non-negative weights, ``k`` against the rows — are made in Rust (or, for the pure-Python
calibration code, next to the computation they protect).
"""

from __future__ import annotations

import math
import operator
import os
from typing import Any

import numpy as np

from . import _native
from ._errors import DTypeError, Q2KeyError, ShapeError

#: The largest value a native size (``usize``) holds; larger sizes saturate to it.
SIZE_MAX = int(np.iinfo(np.uintp).max)
#: The largest 64-bit id or key.
U64_MAX = 2**64 - 1
#: The largest vector dimension (transition counts are uint32; see ``q2key::MAX_DIM``).
MAX_DIM: int = _native.MAX_DIM


def integer(name: str, value: Any) -> int:
    """``value`` as a Python int: an ``int`` or numpy integer scalar, never a bool."""
    if isinstance(value, (bool, np.bool_)):
        raise DTypeError("expected an integer, got bool", arg=name)
    try:
        return operator.index(value)
    except TypeError:
        raise DTypeError(f"expected an integer, got {type(value).__name__}", arg=name) from None


def size(name: str, value: Any, minimum: int = 1) -> int:
    """An integer ``>= minimum``, saturated to :data:`SIZE_MAX` (the native checks say what is too large)."""
    v = integer(name, value)
    if v < minimum:
        raise Q2KeyError(f"must be at least {minimum}, got {v}", arg=name)
    return min(v, SIZE_MAX)


def optional_size(name: str, value: Any, minimum: int = 1) -> int | None:
    """:func:`size`, or ``None`` passed through (``threads=None``: all cores)."""
    return None if value is None else size(name, value, minimum)


def threads(value: Any) -> int | None:
    """``threads=``: ``None`` (all cores) or a thread count, checked against the cap in Rust."""
    return optional_size("threads", value)


def dim(value: Any, name: str = "dim") -> int:
    """A vector dimension, ``1..=MAX_DIM`` (the range is checked by the core)."""
    return int(_native.check_dim(size(name, value, minimum=1)))


def u64(name: str, value: Any) -> int:
    """An unsigned 64-bit integer (a key): no saturation, a key beyond 64 bits is a different key."""
    v = integer(name, value)
    if v < 0:
        raise Q2KeyError(f"must be at least 0, got {v}", arg=name)
    if v > U64_MAX:
        raise Q2KeyError(f"must be at most {U64_MAX} (64 bits), got {v}", arg=name)
    return v


def real(name: str, value: Any) -> float:
    """``value`` as a float: an ``int``/``float`` or numpy real scalar, never a bool or a string.

    An int beyond the float range saturates to ``±inf`` (the range checks then refuse it).
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise DTypeError(f"expected a real number, got {type(value).__name__}", arg=name)
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def threshold(value: Any) -> float | None:
    """A float ``threshold=`` (or None); its range is checked by the core."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise DTypeError(f"expected a number, a q2key.Thresholds or None, got {type(value).__name__}", arg="threshold")
    return real("threshold", value)


def seed(name: str, value: Any) -> int | None:
    """A random seed: ``None`` or an integer ``>= 0`` (any size: numpy takes big seeds, so no saturation)."""
    if value is None:
        return None
    v = integer(name, value)
    if v < 0:
        raise Q2KeyError(f"must be at least 0, got {v}", arg=name)
    return v


def weights(value: Any, name: str = "weights") -> tuple[float, float, float]:
    """``(w_mag, w_sign, w_both)``: three reals (finite and non-negative is checked in Rust)."""
    expected = "(w_mag, w_sign, w_both), three real numbers"
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or not hasattr(value, "__getitem__"):
        raise DTypeError(f"expected {expected}, got {type(value).__name__}", arg=name)
    items = list(np.asarray(value, dtype=object).reshape(-1)) if isinstance(value, np.ndarray) else list(value)
    if len(items) != 3:
        raise ShapeError(f"expected {expected}, got {len(items)} values", arg=name)
    out = []
    for i, w in enumerate(items):
        if isinstance(w, (bool, np.bool_)) or not isinstance(w, (int, float, np.integer, np.floating)):
            raise DTypeError(f"expected {expected}, got {type(w).__name__} at position {i}", arg=name)
        out.append(float(w))
    return out[0], out[1], out[2]


def path(name: str, value: Any) -> str:
    """A file path: ``str`` or ``os.PathLike`` (``bytes`` paths are decoded as the file system does)."""
    try:
        p = os.fspath(value)
    except TypeError:
        raise DTypeError(f"expected a str or os.PathLike path, got {type(value).__name__}", arg=name) from None
    return os.fsdecode(p)


def buffer(name: str, value: Any) -> bytes:
    """The bytes of a bytes-like object (``bytes``, ``bytearray``, ``memoryview``, a buffer).

    An ``int`` is refused rather than read as ``bytes(n)``, which would allocate ``n`` zero bytes.
    """
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, (int, str, np.integer)):
        raise DTypeError(f"expected bytes, got {type(value).__name__}", arg=name)
    try:
        return memoryview(value).tobytes()
    except TypeError:
        raise DTypeError(f"expected bytes, got {type(value).__name__}", arg=name) from None
