"""``q2key index build --lists N``: an :class:`q2key.IVFIndex` built from a file in two streamed passes.

Pass 1 keeps a uniform float32 reservoir sample of the rows (the training sample); the centroids are
fitted to it and it is dropped. Pass 2 encodes and adds the rows batch by batch. Neither pass holds
more than one batch of the file: memory is the sample while training, then the index and a batch.
"""

from __future__ import annotations

import argparse
import math

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
#: Rows per batch of pass 2 when ``--batch-rows`` is not given. A batch is held about four times over
#: while it is added (the rows read, as float32, the copy the native call keeps while the GIL is
#: released, and their normalised copy for the assignment): 16 Ki rows of dimension 384 are ≈ 90 MB,
#: against ≈ 400 MB for a 64 MiB batch of float16 rows (measured on 2 M rows: the add pass's resident
#: memory rose ≈ 350 MB above the index during each 64 MiB batch).
ADD_BATCH_ROWS = 1 << 14


def default_lists(rows: int) -> int:
    """≈ 4·√rows lists (faiss's rule of thumb is 4–16·√N), at least 1."""
    return max(1, round(4 * math.sqrt(rows)))


def add_batch_rows(args: argparse.Namespace, default: int) -> int:
    return int(args.batch_rows or min(default, ADD_BATCH_ROWS))


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
        batch_rows = args.batch_rows or default_batch_rows(src.dim, src.dtype.itemsize)
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
