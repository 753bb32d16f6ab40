"""A small progress bar for the command line: rows done, rows/s and ETA, on stderr when it is a terminal."""

from __future__ import annotations

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

    def line(self, now: float) -> str:
        """The text of the bar at time ``now``."""
        elapsed = max(now - self._start, 1e-9)
        rate = self.done / elapsed
        parts = [self.label] if self.label else []
        if self.total:
            frac = min(self.done / self.total, 1.0)
            fill = round(frac * _BAR)
            parts.append(f"[{'#' * fill}{'.' * (_BAR - fill)}] {frac:4.0%}")
            parts.append(f"{self.done:,}/{self.total:,} {self.unit}")
        else:
            parts.append(f"{self.done:,} {self.unit}")
        parts.append(f"{_si(rate)} {self.unit}/s")
        if self.total and rate > 0 and self.done < self.total:
            parts.append(f"ETA {_clock_time((self.total - self.done) / rate)}")
        else:
            parts.append(f"{_clock_time(elapsed)}")
        return "  ".join(parts)

    def _draw(self, now: float) -> None:
        text = self.line(now)
        pad = " " * max(self._width - len(text), 0)
        self._width = len(text)
        self.stream.write("\r" + text + pad)
        self.stream.flush()
        self.draws += 1


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
