"""Hidden states ``(B, T, n)`` of a model: one position per sequence for the encoder (SPEC §7).

``token="last"`` (the reference design's choice), ``token=<int>`` (negative counts from the end)
or ``attention_mask=(B, T)`` (each row's last non-padding position, for left or right padding)
select one position per sequence; inputs of other ranks pass through.
"""

from __future__ import annotations

from typing import Any, Literal, Union

import numpy as np
import numpy.typing as npt

from ._errors import DTypeError, Q2KeyError, ShapeError
from ._tensors import as_array

#: What ``token=`` accepts.
TokenLike = Union[int, Literal["last"], None]


def select_positions(a: npt.NDArray[Any], token: Any, attention_mask: Any, arg: str) -> npt.NDArray[Any]:
    """One position per sequence of hidden states ``(B, T, ·)``; other ranks pass through."""
    if token is None and attention_mask is None:
        if a.ndim == 3:
            raise ShapeError(
                f"got hidden states of shape {a.shape} (B, T, n); pass token='last', token=<int> or "
                "attention_mask=(B, T) to select one position per sequence",
                arg=arg,
            )
        return a
    given = "token" if attention_mask is None else "attention_mask"
    if a.ndim != 3:
        raise ShapeError(
            f"selects one position of hidden states (B, T, n), but {arg} has shape {a.shape}; "
            f"for a single sequence (T, n) pass {arg}[None], or drop {given}= to encode every row",
            arg=given,
        )
    if token is not None and attention_mask is not None:
        raise Q2KeyError("token, attention_mask: give one of them, not both")
    b, t = int(a.shape[0]), int(a.shape[1])
    if attention_mask is not None:
        picked: npt.NDArray[Any] = a[np.arange(b), _last_positions(attention_mask, b, t, f"{arg} of shape {a.shape}")]
        return picked
    return a[:, _token_index(token, t)]


def _token_index(token: Any, t: int) -> int:
    if isinstance(token, str):
        if token != "last":
            raise Q2KeyError(f"expected 'last', an integer position or None, got {token!r}", arg="token")
        index = -1
    elif isinstance(token, (int, np.integer)) and not isinstance(token, (bool, np.bool_)):
        index = int(token)
    else:
        raise DTypeError(f"expected 'last', an integer position or None, got {type(token).__name__}", arg="token")
    if t == 0:
        raise ShapeError("the hidden states have no positions (T = 0) to select from", arg="token")
    if not -t <= index < t:
        raise Q2KeyError(
            f"position {index} is out of range for sequences of length T = {t} (expected {-t} <= token <= {t - 1})",
            arg="token",
        )
    return index


def _last_positions(attention_mask: Any, b: int, t: int, what: str) -> npt.NDArray[np.intp]:
    m = as_array(attention_mask, "attention_mask")
    if m.dtype.kind not in "biu":
        raise DTypeError(f"expected bool or integer 0/1 values, got dtype {m.dtype}", arg="attention_mask")
    if m.shape != (b, t):
        raise ShapeError(f"expected shape (B, T) = ({b}, {t}) to match {what}, got {m.shape}", arg="attention_mask")
    if m.dtype.kind != "b":
        bad = np.argwhere((m != 0) & (m != 1))
        if len(bad):
            row, col = (int(v) for v in bad[0])
            raise Q2KeyError(
                f"row {row} column {col} holds {m[row, col]}; expected 0 (padding) or 1 (token)",
                arg="attention_mask",
                row=row,
                col=col,
            )
        m = m != 0
    empty = np.flatnonzero(~m.any(axis=1))
    if len(empty):
        more = f" (and {len(empty) - 1} more rows)" if len(empty) > 1 else ""
        raise Q2KeyError(
            f"row {int(empty[0])}{more} is all padding (no nonzero entry); there is no token to select",
            arg="attention_mask",
            row=int(empty[0]),
        )
    # Last nonzero position: the first one in the reversed row.
    last: npt.NDArray[np.intp] = (t - 1 - np.argmax(m[:, ::-1], axis=1)).astype(np.intp)
    return last
