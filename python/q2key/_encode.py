"""Encoding float vectors into Q² codes, keys and transition counts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from . import _native
from ._arrays import Float32, Float64, check_dim, check_threads, check_threshold, float_rows


@dataclass(frozen=True, eq=False)
class Encoded:
    """The result of :func:`encode` for ``N`` vectors of dimension ``dim``.

    Attributes:
        codes: uint8 ``(N, ceil(dim/4))``, 2-bit Gray codes, first dimension in the high bits.
        keys: uint64 ``(N,)``, 64-bit transition keys.
        transitions: uint32 ``(N,)``, length of each run-reduced symbol sequence.
        dim: the vectors' dimension.
    """

    codes: npt.NDArray[np.uint8]
    keys: npt.NDArray[np.uint64]
    transitions: npt.NDArray[np.uint32]
    dim: int

    def __len__(self) -> int:
        return int(self.keys.shape[0])


def encode(x: Any, *, threshold: float | None = None, threads: int | None = None) -> Encoded:
    """Encode vectors into Q² codes, 64-bit transition keys and transition counts.

    ``x`` is ``(n,)`` or ``(N, n)``, of any real numeric dtype and memory layout;
    a 1-D input gives ``N = 1``. Each row is L2-normalised (only its direction
    matters), cut at ``±threshold`` and 0 (``threshold`` in units of the unit
    vector, default ``0.6745/√n``), Gray-coded and packed 4 symbols per byte.
    NaN or ±Inf raise :class:`NonFiniteError` naming the row.

    >>> import numpy as np, q2key
    >>> enc = q2key.encode(np.array([[0.9, -0.1, 0.05, -0.8, 0.3]], dtype=np.float32))
    >>> enc.codes.shape, enc.keys.dtype, int(enc.transitions[0])
    ((1, 2), dtype('uint64'), 5)
    """
    rows, _ = float_rows(x)
    t, n = check_threshold(threshold), check_threads(threads)
    if rows.dtype == np.float32:
        codes, keys, transitions = _native.encode_f32(cast(Float32, rows), t, n)
    else:
        codes, keys, transitions = _native.encode_f64(cast(Float64, rows), t, n)
    return Encoded(codes=codes, keys=keys, transitions=transitions, dim=int(rows.shape[1]))


def symbols(x: Any, *, threshold: float | None = None) -> npt.NDArray[np.uint8]:
    """Z4 symbols (0 = A strong −, 1 = B weak −, 2 = C weak +, 3 = D strong +) of ``x``.

    Same rank as the input: ``(n,)`` gives ``(n,)``, ``(N, n)`` gives ``(N, n)``.

    >>> import numpy as np, q2key
    >>> q2key.symbols(np.array([0.9, -0.1, 0.05, -0.8]), threshold=0.3).tolist()
    [3, 1, 2, 0]
    """
    rows, was_1d = float_rows(x)
    t = check_threshold(threshold)
    if rows.dtype == np.float32:
        out = _native.symbols_f32(cast(Float32, rows), t)
    else:
        out = _native.symbols_f64(cast(Float64, rows), t)
    return out[0] if was_1d else out


def gaussian_threshold(dim: int) -> float:
    """The default threshold ``0.6745 / √dim`` (the Gaussian quartile of a unit vector's coordinates).

    >>> round(gaussian_threshold(384), 6)
    0.03442
    """
    return _native.gaussian_threshold(check_dim(dim))
