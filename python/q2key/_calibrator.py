"""Streaming calibration: a reservoir of sampled vectors, thresholds from it, and drift checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from . import _args
from ._calibrate import calibrate, symbol_frequencies
from ._encode import ThresholdLike, symbols_as
from ._errors import Q2KeyError, ShapeError
from ._inputs import check_finite, float_rows
from ._report import Method
from ._thresholds import Thresholds


@dataclass(frozen=True, eq=False)
class Drift:
    """How far a batch's symbol frequencies are from those the thresholds were fitted for.

    Attributes:
        score: mean over dimensions of the total variation distance between the
            batch's and the fitted symbol frequencies (0 = identical, 1 = disjoint).
            A random batch of ``N`` rows from the fitted distribution scores about
            ``0.7/√N`` from sampling noise alone; well above that, codes made now
            are drifting from codes made before.
        worst_dim: the dimension with the largest distance, and ``worst`` that distance.
        frequencies: ``(n, 4)`` the batch's symbol frequencies per dimension.
        expected: ``(n, 4)`` the fitted ones.
    """

    score: float
    worst_dim: int
    worst: float
    frequencies: npt.NDArray[np.float64]
    expected: npt.NDArray[np.float64]


class Calibrator:
    """Keeps a uniform reservoir sample of a stream of vectors and fits thresholds to it.

    >>> import numpy as np, q2key
    >>> rng = np.random.default_rng(0)
    >>> cal = q2key.Calibrator(32, reservoir=256, seed=1)
    >>> for _ in range(10):
    ...     cal.update(rng.normal(size=(100, 32)))
    >>> cal.seen, cal.sample.shape
    (1000, (256, 32))
    >>> th = cal.thresholds(method="per_dim")
    >>> cal.drift(rng.normal(size=(2000, 32))).score < 0.05
    True
    >>> cal.drift(rng.normal(size=(2000, 32)) + 1.0).score > 0.2
    True
    """

    def __init__(self, dim: int, *, reservoir: int = 1024, seed: int | None = None) -> None:
        self._dim, self._capacity = _args.dim(dim), _args.size("reservoir", reservoir)
        self._seed = _args.seed("seed", seed)
        try:
            self._rows = np.empty((self._capacity, self._dim), dtype=np.float64)
        except (MemoryError, ValueError):  # numpy: ValueError when the size overflows
            raise MemoryError(
                f"reservoir: cannot allocate {self._capacity} rows of dimension {self._dim} (float64)"
            ) from None
        self._seen = 0
        self._rng = np.random.default_rng(seed)
        self._current: Thresholds | None = None

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def seen(self) -> int:
        """Rows offered to :meth:`update` so far."""
        return self._seen

    @property
    def sample(self) -> npt.NDArray[np.float64]:
        """A copy of the reservoir: ``min(seen, reservoir)`` rows, a uniform sample of all rows seen."""
        return np.array(self._rows[: min(self._seen, self._capacity)], dtype=np.float64)

    @property
    def current(self) -> Thresholds | None:
        """The thresholds of the last :meth:`thresholds` call."""
        return self._current

    def update(self, batch: Any) -> None:
        """Offers the rows of ``batch`` (``(N, dim)`` or ``(dim,)``) to the reservoir (Algorithm R).

        The batch is checked whole before anything is stored: a NaN row leaves the reservoir unchanged.
        """
        rows, _ = float_rows(batch, "batch")
        if rows.shape[1] != self._dim:
            raise ShapeError(f"expected {self._dim} columns, got {rows.shape[1]}", arg="batch")
        check_finite(rows, "batch")
        reservoir_offer(self._rows, self._seen, rows, self._rng)
        self._seen += rows.shape[0]

    def thresholds(self, method: Method = "equiprobable", **options: Any) -> Thresholds:
        """:func:`q2key.calibrate` on the reservoir (cuts and reconstruction table fitted to it); remembered as
        :attr:`current` for :meth:`drift`."""
        if self._seen == 0:
            raise Q2KeyError("Calibrator: no rows yet; call update(batch) first")
        options.setdefault("seed", self._seed if self._seed is not None else 0)
        self._current = calibrate(self.sample, method=method, **options)
        return self._current

    def drift(self, batch: Any, thresholds: ThresholdLike = None) -> Drift:
        """Compares ``batch``'s symbol frequencies with those fitted (default: :attr:`current`)."""
        th = self._current if thresholds is None else thresholds
        if not isinstance(th, Thresholds) or th.report is None:
            raise Q2KeyError("drift: needs thresholds from calibrate()/thresholds(), which record their frequencies")
        rows, _ = float_rows(batch, "batch")
        if rows.shape[1] != self._dim:
            raise ShapeError(f"expected {self._dim} columns, got {rows.shape[1]}", arg="batch")
        if rows.shape[0] == 0:
            raise ShapeError("need at least one row to measure drift", arg="batch")
        got = symbol_frequencies(symbols_as(rows, "batch", threshold=th))
        expected = th.report.per_dim_frequencies
        tv = 0.5 * np.abs(got - expected).sum(axis=1)
        worst = int(np.argmax(tv))
        return Drift(float(tv.mean()), worst, float(tv[worst]), got, expected)


def reservoir_offer(store: npt.NDArray[Any], seen: int, rows: npt.NDArray[Any], rng: np.random.Generator) -> None:
    """One step of Algorithm R: offers ``rows`` (rows ``seen..`` of a stream) to the reservoir ``store``.

    After the stream's row ``t`` has been offered, ``store[:min(t + 1, capacity)]`` is a uniform sample of
    its rows ``0..t`` (the command line's IVF build keeps a float32 reservoir with it).
    """
    capacity, n = store.shape[0], rows.shape[0]
    fill = max(0, min(capacity - seen, n))
    store[seen : seen + fill] = rows[:fill]
    if fill < n:
        # Row number t (0-based over the stream) replaces slot j ~ U{0..t} when j < capacity.
        t = np.arange(seen + fill, seen + n)
        slots = rng.integers(0, t + 1)
        chosen = np.nonzero(slots < capacity)[0]
        # Later rows win a slot drawn twice: keep each slot's last draw.
        last = len(chosen) - 1 - np.unique(slots[chosen][::-1], return_index=True)[1]
        picked = chosen[last]
        store[slots[picked]] = rows[fill + picked]
