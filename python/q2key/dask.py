"""Dask: encode and calibrate arrays larger than memory, chunk by chunk, on any Dask scheduler;
build a sharded index (:func:`build_index`) and serve it from a cluster's workers (:class:`ShardedIndex`).

Needs ``dask[array]`` (``pip install 'q2key[dask]'``); it is imported when a function here is called.

>>> import dask, dask.array as da, q2key, q2key.dask
>>> x = da.random.default_rng(0).standard_normal((10_000, 384), chunks=(2_500, 384), dtype="f4")
>>> th = q2key.dask.calibrate(x, method="per_dim", sample_rows=2_000, seed=0)   # q2key.Thresholds
>>> enc = q2key.dask.encode(x, th)                                              # lazy
>>> enc.keys.chunks
((2500, 2500, 2500, 2500),)
>>> codes, keys, transitions = dask.compute(*enc)                               # each chunk encoded once
>>> codes.shape, keys.dtype, transitions.dtype
((10000, 96), dtype('uint64'), dtype('uint32'))
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from . import _args
from ._dask_arrays import DEFAULT_SAMPLE_ROWS as DEFAULT_SAMPLE_ROWS
from ._dask_arrays import calibrate
from ._dask_arrays import check_array as _check_array
from ._dask_arrays import dask_array as _dask_array
from ._encode import ThresholdLike
from ._encode import encode as _encode
from ._shard_build import build_index
from ._shard_files import merge as merge_top_k
from ._sharded import ShardedIndex
from ._thresholds import Thresholds

__all__ = ["EncodedArrays", "ShardedIndex", "build_index", "calibrate", "encode", "merge_top_k"]


class EncodedArrays(NamedTuple):
    """The lazy result of :func:`encode`: three ``dask.array.Array`` chunked by rows like the input.

    Attributes:
        codes: uint8 ``(N, ceil(n/4))``, one column chunk.
        keys: uint64 ``(N,)``.
        transitions: uint32 ``(N,)``.

    Computing them together (``dask.compute(*enc)``) encodes every chunk once.
    """

    codes: Any
    keys: Any
    transitions: Any


def _record_dtype(width: int) -> np.dtype[Any]:
    """One encoded row: its code bytes, key and transition count (explicit little-endian)."""
    return np.dtype([("codes", np.uint8, (width,)), ("keys", "<u8"), ("transitions", "<u4")])


def _encode_block(
    block: npt.NDArray[Any] | list[npt.NDArray[Any]], threshold: ThresholdLike, threads: int | None, width: int
) -> Any:
    """Runs on a worker: one row chunk ``(rows, n)`` → ``(rows,)`` records of codes, key and count.

    Called by ``blockwise`` without concatenation: ``block`` is the list of the row's column
    blocks (one after the rechunk), so no copy of the chunk is made.
    """
    if isinstance(block, list):
        block = block[0] if len(block) == 1 else np.concatenate(block, axis=1)
    enc = _encode(block, threshold=threshold, threads=threads)
    out = np.empty(enc.keys.shape[0], dtype=_record_dtype(width))
    out["codes"] = enc.codes
    out["keys"] = enc.keys
    out["transitions"] = enc.transitions
    return out


def _field(records: npt.NDArray[Any], name: str, dtype: Any) -> npt.NDArray[Any]:
    return np.ascontiguousarray(records[name]).astype(dtype, copy=False)


def encode(array: Any, threshold: ThresholdLike = None, *, threads: int | None = None) -> EncodedArrays:
    """Encode a ``dask.array`` of shape ``(N, n)``, chunked by rows, lazily: ``(codes, keys, transitions)``.

    Every row chunk is encoded on a worker with :func:`q2key.encode` — results are equal to
    ``q2key.encode(array.compute(), threshold=threshold)`` — and the outputs keep the input's row
    chunks. An array split along ``n`` is first rechunked to one column chunk (each row must be
    whole to be normalised); for large ``n`` choose row chunks that fit a worker's memory.

    ``threshold`` is ``None`` (Gaussian), a float ``τ`` or a :class:`q2key.Thresholds` (shipped
    to the workers pickled, inside the task graph). ``threads`` is the number of threads of each
    chunk's encode: ``threads=1`` when the scheduler already runs one task per core.
    """
    da = _dask_array()
    x = _check_array(array, da, "array")
    n = int(x.shape[1])
    if isinstance(threshold, Thresholds):
        threshold.resolve(n)  # a dimension mismatch raises here, not on a worker
    else:
        _args.threshold(threshold)
    threads = _args.threads(threads)
    if x.numblocks[1] != 1:
        x = x.rechunk({1: -1})
    width = (n + 3) // 4
    rows = x.chunks[0]
    rec = _record_dtype(width)
    # blockwise without concatenation: map_blocks(drop_axis=1) would copy every chunk once more.
    records = da.blockwise(
        _encode_block,
        "i",
        x,
        "ij",
        concatenate=False,
        dtype=rec,
        meta=np.empty((0,), dtype=rec),
        token="q2key-encode",
        threshold=threshold,
        threads=threads,
        width=width,
    )
    codes = records.map_blocks(
        _field,
        "codes",
        np.uint8,
        new_axis=1,
        chunks=(rows, (width,)),
        dtype=np.uint8,
        meta=np.empty((0, 0), dtype=np.uint8),
        token="q2key-codes",
    )
    keys = records.map_blocks(
        _field, "keys", np.uint64, dtype=np.uint64, meta=np.empty((0,), dtype=np.uint64), token="q2key-keys"
    )
    transitions = records.map_blocks(
        _field,
        "transitions",
        np.uint32,
        dtype=np.uint32,
        meta=np.empty((0,), dtype=np.uint32),
        token="q2key-transitions",
    )
    return EncodedArrays(codes, keys, transitions)
