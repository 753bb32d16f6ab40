"""What the command line's readers (:mod:`._cli_read`), atomic outputs (:mod:`._cli_commit`) and
writers (:mod:`._cli_write`) share: the error type, batch sizing, and the optional pyarrow import."""

from __future__ import annotations

from typing import Any

#: Bytes of input aimed at per batch when ``--batch-rows`` is not given.
DEFAULT_BATCH_BYTES = 64 << 20
ARROW_INSTALL_HINT = "pip install 'q2key[arrow]' (or pip install pyarrow)"

PARQUET_SUFFIXES = (".parquet", ".pq")
ARROW_SUFFIXES = (".arrow", ".feather", ".ipc", ".arrows")


class CliError(Exception):
    """A runtime error of the command line, reported as one line (exit code 1)."""


def import_pyarrow(what: str) -> Any:
    """``pyarrow`` (with ``pyarrow.parquet`` and ``pyarrow.ipc`` loaded), or a one-line error naming the extra."""
    try:
        import pyarrow  # type: ignore[import-untyped,import-not-found,unused-ignore]
        import pyarrow.ipc  # type: ignore[import-untyped,import-not-found,unused-ignore]
        import pyarrow.parquet  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        raise CliError(f"{what} needs pyarrow: {ARROW_INSTALL_HINT}") from None
    return pyarrow


def default_batch_rows(dim: int, itemsize: int) -> int:
    """Rows per batch: about :data:`DEFAULT_BATCH_BYTES` of input."""
    return max(1, DEFAULT_BATCH_BYTES // max(dim * itemsize, 1))


def first_line(e: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none)."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
