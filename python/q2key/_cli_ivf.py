"""``q2key index build --lists N``: an :class:`q2key.IVFIndex` built from a file in three streamed passes.

Pass 1 keeps a uniform float32 reservoir sample of the rows (the training sample); the centroids are
fitted to it and it is dropped. Pass 2 finds each row's list (kept as 2 bytes a row) and counts the
rows per list; every list is then sized once, exactly. Pass 3 encodes and adds the rows batch by
batch into their lists, which never reallocate (growing them batch by batch left the heap full of
the blocks they outgrew). No pass holds more than one batch of the file: memory is the sample
while training, then the index, the rows' lists and a batch.
"""

from __future__ import annotations

import argparse
import ctypes
import math
import sys
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from ._calibrator import reservoir_offer
from ._cli_context import Context, load_thresholds
from ._cli_errors import located
from ._cli_io import CliError, default_batch_rows
from ._cli_read import open_source
from ._errors import Q2KeyError
from ._inputs import check_finite, float_rows
from ._ivf import IVFIndex

#: Training rows per list when ``--train-rows`` is not given (the core's default).
POINTS_PER_LIST = 64
#: At most this many training rows by default: 256 Ki rows of dimension 384 are 384 MiB of float32,
#: and k-means gains little from more (the lists only route; they need not be optimal).
MAX_DEFAULT_TRAIN_ROWS = 1 << 18
#: Rows per batch of every pass when ``--batch-rows`` is not given. A batch is held a few times over
#: while it is added (the rows read, as float32, and the copy the native call keeps while the GIL is
#: released): 2 Ki rows of dimension 384 are ≈ 3 MB each. Measured on 2 M float16 rows, 1 024 lists
#: (peak resident memory above the interpreter and the index): 64 MiB sample batches and 16 Ki-row
#: add batches 198 MB (the sample pass was the peak); 4 Ki-row batches 76 MB; with the lists sized
#: by a routing pass and the heap trimmed after each batch, 4 Ki rows 24 MB, 2 Ki rows 17 MB.
ADD_BATCH_ROWS = 1 << 11


def default_lists(rows: int) -> int:
    """≈ 4·√rows lists (faiss's rule of thumb is 4–16·√N), at least 1."""
    return max(1, round(4 * math.sqrt(rows)))


def add_batch_rows(args: argparse.Namespace, default: int) -> int:
    return int(args.batch_rows or min(default, ADD_BATCH_ROWS))


def heap_trimmer() -> Callable[[], object] | None:
    """glibc's ``malloc_trim(0)`` (``None`` on other C libraries), to call after each batch of pass 3.

    A batch's buffers (float32 rows, their copies, codes) are freed into the heap, where glibc keeps
    their pages resident below the trim threshold it raises as large blocks come and go;
    ``malloc_trim`` hands every whole free page, in all arenas, back to the kernel. Measured on 2 M
    rows, lists sized by the routing pass, 4 Ki-row batches: the build peaked 43 MB above the index
    without it, 24 MB with it. (When the lists grew batch by batch instead, it was 56 MB → 0 MB at the
    end of the add pass: the blocks they outgrew.)
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # musl and other C libraries have no malloc_trim
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: trim(0)


def routed_adder(index: IVFIndex, args: argparse.Namespace, ctx: Context) -> Callable[..., None]:
    """Pass 2, then pass 3's ``add(rows, ids=, threads=)``: every batch of pass 3 goes to the lists pass 2 found.

    Pass 2 finds each row's list (kept as uint16, or uint32 above 65 536 lists; each batch's are
    dropped once added) and counts the rows per list; every list is then reserved once, exactly.
    After each batch of pass 3 the C heap's free pages are handed back (:func:`heap_trimmer`).
    """
    narrow = np.uint16 if index.lists <= 1 << 16 else np.uint32
    batches: deque[npt.NDArray[Any]] = deque()
    counts = np.zeros(index.lists, dtype=np.uint64)
    with open_source(args.vectors, args.column, what="vectors") as src:
        batch_rows = add_batch_rows(args, default_batch_rows(src.dim, src.dtype.itemsize))
        done = 0
        with ctx.progress(src.rows, "route", args.quiet) as bar:
            for batch in src.batches(batch_rows):
                try:
                    lists = index.assign(batch, threads=args.threads)
                except Q2KeyError as e:
                    raise located(e, src.path, done) from None
                counts += np.bincount(lists, minlength=index.lists).astype(np.uint64)
                batches.append(lists.astype(narrow))
                done += int(lists.shape[0])
                bar.update(int(lists.shape[0]))
    try:
        index.reserve(counts)
    except MemoryError:
        raise CliError(f"{args.vectors}: not enough memory for an index of {done:,} rows") from None
    trim_heap = heap_trimmer()

    def add(rows: Any, ids: Any = None, threads: int | None = None) -> None:
        if not batches or len(batches[0]) != len(rows):
            raise CliError(f"{args.vectors}: its rows changed since they were assigned to lists")
        index.add(rows, ids=ids, lists=batches.popleft(), threads=threads)
        if trim_heap is not None:
            trim_heap()

    return add


def train_rows(args: argparse.Namespace, lists: int) -> int:
    return int(args.train_rows or min(POINTS_PER_LIST * lists, MAX_DEFAULT_TRAIN_ROWS))


def sample(
    path: str, column: str | None, want: int, seed: int, args: argparse.Namespace, ctx: Context
) -> tuple[npt.NDArray[np.float32], int]:
    """A uniform sample of ``want`` rows of the file (all of them if it holds fewer) and the file's row count."""
    with open_source(path, column, what="vectors") as src:
        store = np.empty((want if src.rows is None else min(want, src.rows), src.dim), dtype=np.float32)
        rng = np.random.default_rng(seed)
        done = 0
        batch_rows = add_batch_rows(args, default_batch_rows(src.dim, src.dtype.itemsize))
        with ctx.progress(src.rows, "sample", args.quiet) as bar:
            for batch in src.batches(batch_rows):
                rows, _ = float_rows(batch, "vectors")
                try:
                    check_finite(rows, "vectors")
                except Q2KeyError as e:
                    raise located(e, src.path, done) from None
                reservoir_offer(store, done, rows, rng)
                done += int(rows.shape[0])
                bar.update(int(rows.shape[0]))
    return store[: min(done, store.shape[0])], done


def trained(args: argparse.Namespace, ctx: Context) -> IVFIndex:
    """An empty IVF index trained on a sample of ``args.vectors`` (pass 1)."""
    with open_source(args.vectors, args.column, what="vectors") as src:
        dim, rows = src.dim, src.rows
    th = load_thresholds(args.thresholds, dim)
    if args.weights is not None:
        raise CliError("--weights: weighted Lee search is for a plain index; drop --lists or --weights")
    lists = args.lists if args.lists > 0 else default_lists(rows or 0)
    if rows is not None and lists > rows:
        raise CliError(f"--lists {lists:,}: more lists than the {rows:,} vectors of {args.vectors}")
    seed = 0 if args.seed is None else args.seed
    rows_sampled, seen = sample(args.vectors, args.column, train_rows(args, lists), seed, args, ctx)
    if rows is None and args.lists == 0:  # a stream that did not say how long it is: now we know
        lists = default_lists(seen)
    if lists > rows_sampled.shape[0]:
        raise CliError(f"--lists {lists:,}: more lists than the {rows_sampled.shape[0]:,} training rows")
    index = IVFIndex(dim, threshold=th)
    per_list = -(-rows_sampled.shape[0] // lists)  # every sampled row trains
    try:
        index.train(rows_sampled, lists=lists, points_per_list=per_list, seed=seed, threads=args.threads)
    except Q2KeyError as e:
        raise CliError(f"{args.vectors}: training the lists: {e}") from None
    return index
