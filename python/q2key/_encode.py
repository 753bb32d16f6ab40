"""Encoding float vectors into Q² codes, keys and transition counts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

import numpy as np
import numpy.typing as npt

from . import _native
from ._args import dim as check_dim
from ._args import threads as check_threads
from ._args import threshold as check_threshold
from ._errors import Q2KeyError
from ._hidden_states import TokenLike
from ._inputs import prepare
from ._thresholds import Thresholds, global_thresholds

#: What ``threshold=`` accepts: ``None`` (Gaussian), a float ``τ`` or a :class:`Thresholds`.
ThresholdLike = Union[float, Thresholds, None]


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


def _native_thresholds(threshold: ThresholdLike) -> _native.Thresholds | None:
    """The core's thresholds for ``threshold=`` (``None``: the Gaussian rule of the vectors' dimension)."""
    if isinstance(threshold, Thresholds):
        return threshold._rule
    tau = check_threshold(threshold)
    return None if tau is None else global_thresholds(tau, None, "threshold")._rule


def encode(
    x: Any,
    *,
    threshold: ThresholdLike = None,
    threads: int | None = None,
    dtype: str | None = None,
    dim: int | None = None,
    token: TokenLike = None,
    attention_mask: Any = None,
) -> Encoded:
    """Encode vectors into Q² codes, 64-bit transition keys and transition counts.

    ``x`` is ``(n,)`` or ``(N, n)``, of any real numeric dtype and memory layout,
    or anything with ``__dlpack__`` / ``__array__`` (a CPU torch tensor, …); a
    1-D input gives ``N = 1``. Each row is L2-normalised (only its direction
    matters), cut at ``±threshold`` and 0 (``threshold`` in units of the unit
    vector, default ``0.6745/√n``) or at the cuts of a :class:`Thresholds`
    (see :func:`q2key.calibrate`), Gray-coded and packed 4 symbols per byte.
    NaN or ±Inf raise :class:`NonFiniteError` naming the row.

    Model outputs (SPEC §7): ``dtype="q8"`` (int8 as is), ``"q4"`` (packed
    nibbles, even index high, value − 8; ``dim=`` when odd), ``"bf16"`` (uint16
    bit patterns; ``ml_dtypes.bfloat16`` arrays need no ``dtype``), ``"q2"``
    (packed codes passed through; keys and counts computed from them). Hidden
    states ``(B, T, n)`` need ``token="last"``, ``token=<int>`` or
    ``attention_mask=(B, T)`` (each row's last non-padding token).

    >>> import numpy as np, q2key
    >>> enc = q2key.encode(np.array([[0.9, -0.1, 0.05, -0.8, 0.3]], dtype=np.float32))
    >>> enc.codes.shape, enc.keys.dtype, int(enc.transitions[0])
    ((1, 2), dtype('uint64'), 5)
    >>> hidden = np.random.default_rng(0).normal(size=(2, 7, 64)).astype(np.float32)
    >>> q2key.encode(hidden, token="last").codes.shape
    (2, 16)
    """
    return encode_as(
        x, "x", threshold=threshold, threads=threads, dtype=dtype, dim=dim, token=token, attention_mask=attention_mask
    )


def encode_as(
    x: Any,
    arg: str,
    *,
    threshold: ThresholdLike = None,
    threads: int | None = None,
    dtype: str | None = None,
    dim: int | None = None,
    token: TokenLike = None,
    attention_mask: Any = None,
) -> Encoded:
    """:func:`encode` of the vectors a public entry point calls ``arg`` (errors name it)."""
    p = prepare(x, dtype=dtype, dim=dim, token=token, attention_mask=attention_mask, arg=arg)
    n = check_threads(threads)
    if p.codes is not None:
        _no_threshold_for_codes(threshold)
        codes = np.array(p.codes, dtype=np.uint8, order="C")  # the result owns its codes
        keys, transitions = _native.keys_from_codes(codes, p.dim)
        return Encoded(codes=codes, keys=keys, transitions=transitions, dim=p.dim)
    assert p.rows is not None
    codes, keys, transitions = _native.encode(p.rows, _native_thresholds(threshold), n, arg)
    return Encoded(codes=codes, keys=keys, transitions=transitions, dim=p.dim)


def symbols(
    x: Any,
    *,
    threshold: ThresholdLike = None,
    dtype: str | None = None,
    dim: int | None = None,
    token: TokenLike = None,
    attention_mask: Any = None,
) -> npt.NDArray[np.uint8]:
    """Z4 symbols (0 = A strong −, 1 = B weak −, 2 = C weak +, 3 = D strong +) of ``x``.

    Same rank as the input: ``(n,)`` gives ``(n,)``, ``(N, n)`` gives ``(N, n)``.
    Takes the same inputs as :func:`encode`.

    >>> import numpy as np, q2key
    >>> q2key.symbols(np.array([0.9, -0.1, 0.05, -0.8]), threshold=0.3).tolist()
    [3, 1, 2, 0]
    """
    return symbols_as(x, "x", threshold=threshold, dtype=dtype, dim=dim, token=token, attention_mask=attention_mask)


def symbols_as(
    x: Any,
    arg: str,
    *,
    threshold: ThresholdLike = None,
    dtype: str | None = None,
    dim: int | None = None,
    token: TokenLike = None,
    attention_mask: Any = None,
) -> npt.NDArray[np.uint8]:
    """:func:`symbols` of the vectors a public entry point calls ``arg`` (errors name it)."""
    p = prepare(x, dtype=dtype, dim=dim, token=token, attention_mask=attention_mask, arg=arg)
    if p.codes is not None:
        _no_threshold_for_codes(threshold)
        out = _native.unpack(p.codes, p.dim)
    else:
        assert p.rows is not None
        out = _native.symbols(p.rows, _native_thresholds(threshold), None, arg)
    return out[0] if p.was_1d else out


def _no_threshold_for_codes(threshold: ThresholdLike) -> None:
    if threshold is not None:
        raise Q2KeyError("q2 codes are already quantised; threshold= does not apply to dtype='q2'", arg="threshold")


def gaussian_threshold(dim: int) -> float:
    """The default threshold ``0.6745 / √dim`` (the Gaussian quartile of a unit vector's coordinates).

    >>> round(gaussian_threshold(384), 6)
    0.03442
    """
    return _native.gaussian_threshold(check_dim(dim))
