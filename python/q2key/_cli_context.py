"""What every command of the command line shares: where it writes, and the thresholds it was given."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TextIO

from ._cli_io import CliError
from ._errors import Q2KeyError
from ._progress import Progress
from ._thresholds import Thresholds


@dataclass
class Context:
    """Where a command writes, and whether the progress bar is forced on/off (``None``: on a TTY)."""

    stdout: TextIO
    stderr: TextIO
    tty: bool | None = None

    def progress(self, total: int | None, label: str, quiet: bool) -> Progress:
        return Progress(total, label=label, stream=self.stderr, enabled=False if quiet else self.tty)


def load_thresholds(path: str | None, dim: int | None = None) -> Thresholds | None:
    """``Thresholds.from_json`` of a file (checked against ``dim``), or ``None``."""
    if path is None:
        return None
    with open(path, "rb") as f:
        text = f.read()
    try:
        th = Thresholds.from_json(text)
    except Q2KeyError as e:
        raise CliError(f"{path}: {str(e).removeprefix('text: ')}") from None  # the file is the text
    if dim is not None:
        try:
            th.resolve(dim, "--thresholds")
        except Q2KeyError as e:
            raise CliError(f"{path}: {e}") from None
    return th
