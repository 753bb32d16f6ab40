"""Restating errors of the Python API about the command line's files and rows.

q2key's exceptions carry no structured fields yet (the argument and row they are about are only
in the message, ``"ids: row 3 …"``; the OS errors of ``Index.save`` have no ``errno``/``filename``),
so this module is the one place that reads them out of the message; the commands call
:func:`blamed_argument`, :func:`located` and :func:`written`, never a regex of their own.
"""

from __future__ import annotations

import re

from ._cli_io import CliError

#: ``ARG: rest`` at the start of a message of q2key's Python API (``x``, ``batch``, ``ids`` …).
_ARGUMENT_PREFIX = re.compile(r"^([A-Za-z_][A-Za-z0-9_.]*): ")
#: The first row a message names (``row 3``, or ``row 3 of the batch``).
_ROW = re.compile(r"\brow (\d+)( of the batch)?")


def blamed_argument(err: BaseException) -> str | None:
    """The parameter name an API error starts with (``"ids"`` for ``"ids: id 3 appears twice"``), or ``None``."""
    m = _ARGUMENT_PREFIX.match(str(err).strip())
    return m.group(1) if m else None


def written(err: OSError, path: str) -> CliError:
    """An OS error of ``Index.save`` (``PATH: cannot create the temporary file TMP: REASON (os error N)``)
    restated about the output alone: the temporary file is not the user's business."""
    reason = re.sub(r" \(os error \d+\)$", "", str(err).strip().rsplit(": ", 1)[-1])
    return CliError(f"{path}: cannot write the index ({reason})")


def located(err: BaseException, path: str, start: int) -> CliError:
    """An API error about a batch (``x: row 3 …``) restated about the file (``FILE: row start+3 …``)."""
    msg = str(err).strip()
    if blamed_argument(err) is not None:
        msg = _ARGUMENT_PREFIX.sub("", msg, count=1)
    msg = _ROW.sub(lambda m: f"row {int(m.group(1)) + start}", msg, count=1)
    msg = msg.replace(" in the batch", "")  # the command line's batches are not the user's business
    return CliError(f"{path}: {msg}")
