"""Restating errors of the Python API about the command line's files and rows.

q2key's exceptions say what they are about as attributes: ``.arg`` (the parameter: ``"x"``,
``"batch"``, ``"ids"`` …) and ``.row`` (counted in the array that parameter was given); their
message starts with ``"<arg>: "`` and names the row as ``"row <row>"``. The command line hands
the API one batch of a file at a time, so :func:`located` swaps the parameter for the file and
the batch's row for the file's. The OS errors of ``Index.save`` carry the OS's ``errno``, so
:func:`written` words them with :func:`os.strerror`.
"""

from __future__ import annotations

import os

from ._cli_io import CliError
from ._errors import DTypeError, Q2KeyError


def written(err: OSError, path: str) -> CliError:
    """An OS error of ``Index.save`` restated about the output alone, in the OS's words
    (``Permission denied``): the temporary file it names is not the user's business."""
    reason = os.strerror(err.errno) if err.errno is not None else str(err)
    return CliError(f"{path}: cannot write the index ({reason})")


def located(err: BaseException, path: str, start: int) -> CliError:
    """An API error about a batch (``x: row 3 …``) restated about the file (``FILE: row start+3 …``)."""
    msg = without_argument(err)
    row = err.row if isinstance(err, (Q2KeyError, DTypeError)) else None
    if row is not None:
        # The batch's row as the file's; "of the batch" goes with it (the batches are ours, not the user's).
        for said in (f"row {row} of the batch", f"row {row}"):
            at = _find_number(msg, said)
            if at >= 0:
                msg = f"{msg[:at]}row {row + start}{msg[at + len(said) :]}"
                break
    msg = msg.replace(" in the batch", "")
    return CliError(f"{path}: {msg}")


def without_argument(err: BaseException) -> str:
    """The message of ``err`` without its leading ``"<arg>: "``."""
    msg = str(err).strip()
    arg = err.arg if isinstance(err, (Q2KeyError, DTypeError)) else None
    return msg.removeprefix(f"{arg}: ") if arg is not None else msg


def _find_number(text: str, said: str) -> int:
    """Where ``said`` first occurs in ``text`` as whole words (``row 3``, not ``row 35`` or ``arrow 3``); -1 if not."""
    at = text.find(said)
    while at >= 0 and (text[at - 1 : at].isalnum() or text[at + len(said) : at + len(said) + 1].isalnum()):
        at = text.find(said, at + 1)
    return at
