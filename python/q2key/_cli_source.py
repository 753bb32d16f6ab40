"""What every reader of the command line is: a :class:`Source` of row batches, and :func:`rebatch`.

Apart from the readers (:mod:`._cli_read`, :mod:`._cli_read_arrow`) so that neither imports the other.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

from ._cli_io import default_batch_rows


class Source:
    """A matrix of vectors ``(rows, dim)`` in a file, read in batches.

    ``rows`` is ``None`` when the file does not say (an Arrow IPC stream).
    """

    path: str
    rows: int | None
    dim: int
    dtype: np.dtype[Any]

    def batches(self, batch_rows: int) -> Iterator[npt.NDArray[Any]]:
        """Consecutive ``(≤ batch_rows, dim)`` arrays; every one but the last has exactly ``batch_rows`` rows.

        A batch is valid until the next one is asked for (it may be a view of a mapping or buffer
        that is then released or reused).
        """
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read_all(self) -> npt.NDArray[Any]:
        """Every row in one array (memory: the whole matrix)."""
        parts = [np.array(b) for b in self.batches(default_batch_rows(self.dim, self.dtype.itemsize))]
        return np.concatenate(parts) if parts else np.zeros((0, self.dim), self.dtype)


def rebatch(chunks: Iterable[npt.NDArray[Any]], batch_rows: int) -> Iterator[npt.NDArray[Any]]:
    """Chunks of any sizes regrouped into batches of exactly ``batch_rows`` rows (the last may be shorter)."""
    pending: list[npt.NDArray[Any]] = []
    have = 0
    for chunk in chunks:
        c = chunk
        while c.shape[0]:
            if not have and c.shape[0] >= batch_rows:
                yield c[:batch_rows]
                c = c[batch_rows:]
                continue
            take = min(batch_rows - have, c.shape[0])
            pending.append(c[:take])
            have += take
            c = c[take:]
            if have == batch_rows:
                yield np.concatenate(pending)
                pending, have = [], 0
    if have:
        yield np.concatenate(pending)
