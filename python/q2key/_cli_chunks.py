"""``q2key encode`` of a .npy file: worker threads read cache-sized chunks of rows with ``preadv`` and encode them.

Why not encode views of a memory mapping: mapping the page cache costs a page fault per 64 KiB
and unmapping it again costs as much (≈ 0.13 CPU-s for 1.5 GB), and the encoder then streams the
rows from memory a second time. A ``preadv`` of a 4 MiB chunk into a buffer that stays in the CPU
cache reads the file's pages once, and the encoder finds the rows in the cache: on a 2-core VM
this ran at 90–100 % of the speed of encoding the same array already in memory, against 55–62 %
for the mapping (see benches/README.md, "CLI encode").

Each worker thread reads and encodes whole chunks (``threads=1`` per chunk); when ``--threads``
leaves a core free, one reader thread reads chunks ahead of the encoders instead. Chunks are
submitted in file order, at most :data:`WINDOW_PER_WORKER` per worker in flight (memory stays a
few chunks plus the outputs of two batches), and the outputs of a batch are handed on once all
of its chunks are encoded; an error is raised for the first failing chunk in file order.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from ._cli_io import COLUMNS, NpySource, located
from ._native import NonFiniteError, Q2KeyError

#: Bytes of input per chunk: small enough to stay in a core's share of the L2/L3 cache.
CHUNK_BYTES = 4 << 20
#: Chunks in flight per worker thread (one being encoded, one read or queued).
WINDOW_PER_WORKER = 2


def available_cores() -> int:
    """Cores this process may run on (its affinity mask where the platform has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover (macOS, Windows)
        return os.cpu_count() or 1


class _Buffers:
    """Reusable chunk buffers: at most as many exist as chunks are in flight."""

    def __init__(self, rows: int, dim: int, dtype: np.dtype[Any]) -> None:
        self._shape = (rows, dim)
        self._dtype = dtype
        self._free: list[npt.NDArray[Any]] = []
        self._lock = threading.Lock()

    def take(self) -> npt.NDArray[Any]:
        with self._lock:
            if self._free:
                return self._free.pop()
        return np.empty(self._shape, self._dtype)

    def give(self, buf: npt.NDArray[Any]) -> None:
        with self._lock:
            self._free.append(buf)


@dataclass
class _Batch:
    """The outputs of rows ``start : start + rows`` and the chunks still filling them."""

    start: int
    rows: int
    out: dict[str, npt.NDArray[Any]]
    chunks: list[Future[None]] = field(default_factory=list)


def _new_outputs(rows: int, width: int) -> dict[str, npt.NDArray[Any]]:
    """Uninitialised ``codes`` / ``keys`` / ``transitions`` arrays for ``rows`` rows (every chunk fills its part)."""
    return {name: np.empty((rows, width) if matrix else (rows,), dtype) for name, (_, dtype, matrix) in COLUMNS.items()}


def encode_npy_chunks(
    src: NpySource,
    deliver: Callable[[dict[str, npt.NDArray[Any]], int], None],
    *,
    encoder: Callable[..., Any],
    threshold: Any,
    threads: int | None,
    batch_rows: int,
    width: int,
) -> int:
    """Encodes every row of ``src`` (:attr:`NpySource.preadable`); ``deliver(outputs, rows)`` gets each batch in order.

    Returns the number of rows.
    """
    n, dim = int(src.rows or 0), src.dim
    chunk_rows = max(1, min(batch_rows, CHUNK_BYTES // (dim * src.dtype.itemsize)))
    workers = max(1, threads if threads else available_cores())
    buffers = _Buffers(chunk_rows, dim, src.dtype)

    def read(start: int, stop: int) -> npt.NDArray[Any]:
        buf = buffers.take()
        try:
            src.read_rows(start, buf[: stop - start])
        except BaseException:
            buffers.give(buf)
            raise
        return buf

    def encode_chunk(start: int, stop: int, batch: _Batch, ahead: Future[npt.NDArray[Any]] | None) -> None:
        buf = read(start, stop) if ahead is None else ahead.result()
        try:
            enc = encoder(buf[: stop - start], threshold=threshold, threads=1)
        except (NonFiniteError, Q2KeyError) as e:
            raise located(e, src.path, start) from None
        finally:
            buffers.give(buf)
        lo, hi = start - batch.start, stop - batch.start
        for name, arr in batch.out.items():
            arr[lo:hi] = getattr(enc, name)

    encoders = ThreadPoolExecutor(workers, thread_name_prefix="q2key-encode")
    # A core the encoders leave free reads ahead of them; otherwise each worker reads its own chunk.
    reader = ThreadPoolExecutor(1, thread_name_prefix="q2key-read") if available_cores() > workers else None
    in_flight: deque[Future[None]] = deque()
    batches: deque[_Batch] = deque()

    def hand_on(finished: int) -> None:
        """Delivers the leading batches whose chunks are all done (only the first ``finished`` may be)."""
        while batches and finished > 0 and all(f.done() for f in batches[0].chunks):
            b = batches.popleft()
            for f in b.chunks:
                f.result()  # the first failure in file order
            deliver(b.out, b.rows)
            finished -= 1

    try:
        for b_start in range(0, n, batch_rows):
            b_rows = min(batch_rows, n - b_start)
            batch = _Batch(b_start, b_rows, _new_outputs(b_rows, width))
            batches.append(batch)
            for start in range(b_start, b_start + b_rows, chunk_rows):
                stop = min(start + chunk_rows, b_start + b_rows)
                while len(in_flight) >= workers * WINDOW_PER_WORKER:
                    wait([in_flight.popleft()])
                    hand_on(len(batches) - 1)  # the batch being submitted is not finished
                ahead = reader.submit(read, start, stop) if reader is not None else None
                f = encoders.submit(encode_chunk, start, stop, batch, ahead)
                batch.chunks.append(f)
                in_flight.append(f)
        while batches:
            wait(batches[0].chunks)
            hand_on(1)
    except BaseException:
        for f in in_flight:
            f.cancel()
        raise
    finally:
        encoders.shutdown(wait=True, cancel_futures=True)
        if reader is not None:
            reader.shutdown(wait=True, cancel_futures=True)
    return n
