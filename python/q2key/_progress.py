"""A small progress bar for the command line: rows done, rows/s and ETA, on stderr when it is a terminal."""

from __future__ import annotations

import os
import shutil
import sys
import time
from typing import Callable, TextIO

#: Seconds between two redraws at most (about ten a second).
REFRESH_S = 0.1
_BAR = 24


class Progress:
    """Counts rows and redraws one terminal line at most every :data:`REFRESH_S` seconds.

    ``enabled=None`` draws only when ``stream`` is a TTY; tests pass ``enabled=True`` to force
    the terminal path. A disabled bar costs one comparison per :meth:`update`.

    The line never reaches the terminal's last column (a full line would wrap and leave a copy
    per redraw): on a narrow terminal it drops, in turn, the bar, the row counts, the rate and
    the label, down to a plain percentage. ``columns`` fixes the width (default: the terminal's,
    asked at every redraw so a resized window is followed).
    """

    def __init__(
        self,
        total: int | None,
        *,
        label: str = "",
        unit: str = "rows",
        stream: TextIO | None = None,
        enabled: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
        columns: int | None = None,
    ) -> None:
        self.stream = sys.stderr if stream is None else stream
        if enabled is None:
            isatty = getattr(self.stream, "isatty", None)
            enabled = bool(isatty()) if callable(isatty) else False
        self.enabled = enabled
        self.total = total
        self.label = label
        self.unit = unit
        self.done = 0
        self._clock = clock
        self._columns = columns
        self._start = clock()
        self._last = -float("inf")
        self._width = 0
        self.draws = 0

    def update(self, rows: int) -> None:
        self.done += rows
        if not self.enabled:
            return
        now = self._clock()
        if now - self._last >= REFRESH_S:
            self._last = now
            self._draw(now)

    def close(self) -> None:
        """Draws the final state and ends the line (only if anything was drawn or the bar is enabled)."""
        if self.enabled:
            self._draw(self._clock())
            self.stream.write("\n")
            self.stream.flush()
            self.enabled = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()
        elif self.enabled:  # leave the partial line readable before the error message
            self.stream.write("\n")
            self.stream.flush()
            self.enabled = False

    def line(self, now: float, columns: int | None = None) -> str:
        """The text of the bar at time ``now``: the richest variant shorter than ``columns`` (if given)."""
        variants = self._variants(now)
        if columns is None:
            return variants[0]
        room = max(columns - 1, 1)  # the last column would wrap the cursor onto a new line
        for text in variants:
            if len(text) <= room:
                return text
        return variants[-1][:room]

    def _variants(self, now: float) -> list[str]:
        """The line from the richest to the plainest (each one drops a field of the one before)."""
        elapsed = max(now - self._start, 1e-9)
        rate = f"{_si(self.done / elapsed)} {self.unit}/s"
        if self.total and self.done < self.total and self.done > 0:
            when = f"ETA {_clock_time((self.total - self.done) * elapsed / self.done)}"
        else:
            when = _clock_time(elapsed)
        if not self.total:
            count = f"{self.done:,} {self.unit}"
            fields = [[self.label, count, rate, when], [self.label, count, when], [self.label, count], [count]]
        else:
            frac = min(self.done / self.total, 1.0)
            fill = round(frac * _BAR)
            bar = f"[{'#' * fill}{'.' * (_BAR - fill)}]"
            pct = f"{frac:4.0%}"
            counts = f"{self.done:,}/{self.total:,} {self.unit}"
            fields = [
                [self.label, f"{bar} {pct}", counts, rate, when],
                [self.label, pct, counts, rate, when],
                [self.label, pct, rate, when],
                [self.label, pct, when],
                [self.label, pct],
                [pct.strip()],
            ]
        return ["  ".join(f for f in variant if f) for variant in fields]

    def _draw(self, now: float) -> None:
        text = self.line(now, self._columns or _terminal_columns(self.stream))
        pad = " " * max(self._width - len(text), 0)
        self._width = len(text)
        self.stream.write("\r" + text + pad)
        self.stream.flush()
        self.draws += 1


def _terminal_columns(stream: TextIO) -> int:
    """The width of the terminal ``stream`` writes to (``$COLUMNS`` first, as ``shutil`` does; 80 if unknown)."""
    env = os.environ.get("COLUMNS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return os.get_terminal_size(stream.fileno()).columns or 80
    except (AttributeError, OSError, ValueError):  # not a terminal (a test's StringIO, a pipe)
        return shutil.get_terminal_size((80, 24)).columns


def _si(v: float) -> str:
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if v >= div:
            return f"{v / div:.2f} {suffix}"
    return f"{v:.0f}"


def _clock_time(seconds: float) -> str:
    s = round(seconds)
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
