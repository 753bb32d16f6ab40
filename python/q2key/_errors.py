"""The exceptions q2key raises for bad input, with what they are about as attributes.

Every one names the *public* parameter it is about (``.arg``), and when it is about one row of
an array (a NaN in row 3 of ``x``, a repeated id at row 7 of ``ids``) the row (``.row``, counted
from 0 in that array) and column (``.col``). Callers that restate an error in their own terms —
the command line says which file and which line of it — read these attributes instead of the
message. The message always starts with ``"<arg>: "`` when ``arg`` is known.

The native module raises the same classes (it imports them from here), so an error reads the
same whether Rust or Python found it.

>>> import q2key
>>> e = q2key.Q2KeyError("must be at least 1, got 0", arg="k")
>>> str(e), e.arg, e.row
('k: must be at least 1, got 0', 'k', None)
"""

from __future__ import annotations


class _Located:
    """What an error is about: the public parameter, and the row and column of that array."""

    arg: str | None
    row: int | None
    col: int | None

    def _locate(self, message: str, arg: str | None, row: int | None, col: int | None) -> str:
        self.arg, self.row, self.col = arg, row, col
        if arg is None or message.startswith(f"{arg}: "):
            return message
        return f"{arg}: {message}"


class Q2KeyError(_Located, ValueError):
    """Base of the errors q2key raises for bad input values (a ``ValueError``).

    ``arg`` is the public parameter at fault (``"x"``, ``"ids"``, ``"k"`` …); ``row`` and ``col``
    locate the offending element of that array when the error is about one (else ``None``).
    """

    def __init__(self, message: str, *, arg: str | None = None, row: int | None = None, col: int | None = None):
        super().__init__(self._locate(message, arg, row, col))


class NonFiniteError(Q2KeyError):
    """An input row holds NaN or ±Inf (``row`` and ``col`` say where)."""


class ShapeError(Q2KeyError):
    """Array shapes or code widths do not fit together."""


class FormatError(Q2KeyError):
    """A saved index file is truncated, corrupted, foreign or from a newer format."""


class DTypeError(_Located, TypeError):
    """An array or argument has a type q2key cannot use (a ``TypeError``); ``arg`` names it."""

    def __init__(self, message: str, *, arg: str | None = None, row: int | None = None, col: int | None = None):
        super().__init__(self._locate(message, arg, row, col))


# Shown in tracebacks as ``q2key.Q2KeyError`` and pickled by that public name.
for _cls in (Q2KeyError, NonFiniteError, ShapeError, FormatError, DTypeError):
    _cls.__module__ = "q2key"

__all__ = ["DTypeError", "FormatError", "NonFiniteError", "Q2KeyError", "ShapeError"]
