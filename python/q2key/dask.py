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

import importlib
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from . import _args
from ._calibrate import calibrate as _calibrate
from ._encode import ThresholdLike
from ._encode import encode as _encode
from ._errors import DTypeError, Q2KeyError, ShapeError
from ._report import Method
from ._thresholds import Thresholds

__all__ = ["EncodedArrays", "ShardedIndex", "build_index", "calibrate", "encode", "merge_top_k"]

#: Rows :func:`calibrate` samples by default.
DEFAULT_SAMPLE_ROWS = 10_000


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


def _dask_array() -> Any:
    try:
        # import_module: typed the same whether or not dask is installed
        return importlib.import_module("dask.array")
    except ImportError as e:
        raise ImportError("q2key.dask needs dask[array]: pip install 'q2key[dask]'") from e


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


def _check_array(array: Any, da: Any, arg: str) -> Any:
    if not isinstance(array, da.Array):
        raise DTypeError(
            f"expected a dask.array.Array, got {type(array).__module__}.{type(array).__qualname__}; "
            "use q2key.encode / q2key.calibrate for in-memory arrays, or dask.array.from_array(...)",
            arg=arg,
        )
    if array.ndim != 2:
        raise ShapeError(f"expected a dask array of shape (N, n) chunked by rows, got shape {array.shape}", arg=arg)
    n = array.shape[1]
    if not isinstance(n, (int, np.integer)) or n != n:  # NaN: unknown column count
        raise ShapeError(f"the number of columns is unknown ({n}); call array.compute_chunk_sizes() first", arg=arg)
    if n == 0:
        raise ShapeError(f"vectors need at least one dimension, got shape {array.shape}", arg=arg)
    if array.dtype.kind in "bcOUSMm":
        raise DTypeError(f"expected a real numeric array (float16/32/64 or integers), got dtype {array.dtype}", arg=arg)
    return array


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


def calibrate(
    array: Any,
    *,
    method: Method = "equiprobable",
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
    seed: int | None = 0,
    outer_share: float = 0.5,
    holdout: float = 0.25,
    k: int = 10,
    threads: int | None = None,
) -> Thresholds:
    """:func:`q2key.calibrate` on ``sample_rows`` rows of a dask array ``(N, n)``, drawn without replacement.

    Only the sampled rows are gathered to the caller (each chunk holding one is still computed
    or read). The rows and the fit are deterministic for a given ``seed``; ``sample_rows ≥ N``
    uses every row. The other arguments are those of :func:`q2key.calibrate`.
    """
    da = _dask_array()
    x = _check_array(array, da, "array")
    if isinstance(sample_rows, bool) or not isinstance(sample_rows, (int, np.integer)) or sample_rows < 1:
        raise Q2KeyError(f"expected a positive integer, got {sample_rows!r}", arg="sample_rows")
    total = x.shape[0]
    if total != total:  # NaN: unknown chunk sizes
        raise ShapeError("the number of rows is unknown; call array.compute_chunk_sizes() first", arg="array")
    total = int(total)
    if total == 0:
        raise ShapeError("need at least one row to calibrate", arg="array")
    take = min(int(sample_rows), total)
    rows = np.sort(np.random.default_rng(seed).choice(total, size=take, replace=False))
    sample = np.asarray(x[rows].compute()) if take < total else np.asarray(x.compute())
    return _calibrate(sample, method=method, outer_share=outer_share, seed=seed, holdout=holdout, k=k, threads=threads)


from ._shard_files import merge as merge_top_k  # noqa: E402
from ._sharded import ShardedIndex, build_index  # noqa: E402  (uses _check_array above)
