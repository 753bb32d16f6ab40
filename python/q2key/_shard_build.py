"""Writing a sharded index on Dask: :func:`build_index`, and the shard writes ``ShardedIndex.add``/``remove`` reuse.

The directory's layout and the manifest are ``_shard_files.py``'s; serving is ``_sharded.py``'s.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from . import _args
from ._calibrate import calibrate
from ._dask_arrays import check_array, sample_of
from ._encode import ThresholdLike
from ._errors import DTypeError, Q2KeyError, ShapeError
from ._index import _thresholds_for
from ._index_args import id_array
from ._shard_files import (
    KINDS,
    TEMPLATE,
    Manifest,
    ShardInfo,
    check_disjoint,
    clean_up,
    remove_files,
    shard_file,
    write_manifest,
    writer_lock,
)

Fit = Literal["fit"]


def dask_module(name: str) -> Any:
    """``importlib.import_module(name)`` of a Dask module, or an ImportError saying what to install."""
    try:
        return importlib.import_module(name)
    except ImportError as e:
        raise ImportError("q2key.dask needs dask[array] and distributed: pip install 'q2key[dask]'") from e


# -- on the workers -----------------------------------------------------------------------------------------


def _write_shard(
    path: str,
    kind: str,
    template: str,
    blocks: Sequence[Any],
    ids: Sequence[npt.NDArray[np.uint64] | range],
) -> tuple[int, int | None, int | None]:
    """A worker task: one shard from its row blocks, saved atomically; returns (rows, min id, max id)."""
    index = KINDS[kind].load(template, False)
    for block, block_ids in zip(blocks, ids):
        if isinstance(block_ids, range):
            block_ids = np.arange(block_ids.start, block_ids.stop, dtype=np.uint64)
        index.add(np.asarray(block), ids=block_ids, threads=1)
    index.save(path)
    stored = KINDS[kind].ids(index)
    if not stored.size:
        return 0, None, None
    return int(stored.size), int(stored.min()), int(stored.max())


def _common_ids(path_a: str, path_b: str, kind: str) -> npt.NDArray[np.uint64]:
    """A worker task: the ids two shard files share (the reads are memory-mapped)."""
    a, b = (KINDS[kind].ids(KINDS[kind].load(path, True)) for path in (path_a, path_b))
    return np.intersect1d(a, b)[:1]


def rewrite_shard(
    old: str, new: str, ids: npt.NDArray[np.uint64], kind: str
) -> tuple[int, int, int | None, int | None]:
    """A worker task: the shard without ``ids``, saved under the next generation's name if any was removed."""
    index = KINDS[kind].load(old, False)
    removed = index.remove(ids)
    if removed:
        index.save(new)
    stored = KINDS[kind].ids(index)
    lo, hi = (int(stored.min()), int(stored.max())) if stored.size else (None, None)
    return removed, int(stored.size), lo, hi


# -- building -----------------------------------------------------------------------------------------------


def _stack_rows(block: npt.NDArray[Any], dim: int) -> npt.NDArray[Any]:
    """A block of a dataframe column holding one vector per row (lists or arrays) as ``(rows, dim)``."""
    if not len(block):
        return np.zeros((0, dim), dtype=np.float32)
    return np.stack([np.asarray(v) for v in block])


def _from_dataframe(column: Any, arg: str) -> Any:
    """A dask dataframe column (or frame) as a dask array; partition lengths are computed (one pass)."""
    arr = column.to_dask_array(lengths=True)
    if arr.ndim == 1 and arr.dtype == object:  # one vector per row: stack each partition's rows
        if not arr.shape[0]:
            raise ShapeError("the column is empty: no vector gives the dimension", arg=arg)
        head = arr[:1].compute()
        if isinstance(head[0], str):
            raise DTypeError(
                "expected one vector (array or list of numbers) per row, got strings; dask converts object "
                "columns to strings unless dask.config.set({'dataframe.convert-string': False})",
                arg=arg,
            )
        dim = int(np.asarray(head[0]).shape[0])
        return arr.map_blocks(
            _stack_rows, dim, new_axis=1, chunks=(arr.chunks[0], (dim,)), dtype=np.asarray(head[0]).dtype
        )
    return arr


def _dask_vectors(vectors: Any) -> Any:
    """Numpy, dask array or dask dataframe vectors as a dask array of one column chunk, row chunk sizes known."""
    da = dask_module("dask.array")
    if hasattr(vectors, "to_dask_array"):
        vectors = _from_dataframe(vectors, "vectors")
    if isinstance(vectors, np.ndarray):
        vectors = da.from_array(vectors, chunks=(max(1, len(vectors)), -1))
    x = check_array(vectors, da, "vectors")
    if any(c != c for c in x.chunks[0]):
        raise ShapeError("the row chunk sizes are unknown; call vectors.compute_chunk_sizes() first", arg="vectors")
    return x.rechunk({1: -1}) if x.numblocks[1] != 1 else x


def _vector_blocks(x: Any) -> tuple[list[Any], list[int], int]:
    """Row blocks (delayed) of :func:`_dask_vectors`, their row counts, and the dimension."""
    return list(x.to_delayed().ravel()), [int(c) for c in x.chunks[0]], int(x.shape[1])


def _id_blocks(ids: Any, sizes: list[int], first: int) -> list[Any]:
    """Ids per row block: given (numpy or dask, cut like the vectors) or ``first, first + 1, …`` by block offsets."""
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    if ids is None:
        if first + int(offsets[-1]) > _args.U64_MAX + 1:
            raise Q2KeyError("assigned ids would pass 2^64 − 1", arg="ids")
        # ranges, not arrays: the graph stays small, and the worker makes each block's ids
        return [range(first + int(a), first + int(b)) for a, b in zip(offsets, offsets[1:])]
    da = dask_module("dask.array")
    if hasattr(ids, "to_dask_array"):
        ids = ids.to_dask_array(lengths=True)
    if isinstance(ids, da.Array):
        if ids.ndim != 1 or ids.shape[0] != offsets[-1]:
            raise ShapeError(f"expected {int(offsets[-1])} ids (one per row), got shape {ids.shape}", arg="ids")
        return [b for b in ids.rechunk((tuple(sizes),)).to_delayed().ravel()]
    arr = id_array(ids, int(offsets[-1]))
    assert arr is not None
    return [arr[a:b] for a, b in zip(offsets, offsets[1:])]


def _groups(sizes: list[int], shards: int | None) -> list[list[int]]:
    """Consecutive blocks in ``shards`` groups of about equal rows (default: one group per block)."""
    if shards is None:
        return [[i] for i in range(len(sizes))]
    n = min(_args.size("shards", shards), max(1, len(sizes)))
    total = sum(sizes)
    groups: list[list[int]] = [[] for _ in range(n)]
    done = 0
    for i, rows in enumerate(sizes):
        # The block goes to the group its first row falls in, capped so no later group is left empty.
        g = min(done * n // max(total, 1), n - 1, i)
        g = max(g, n - (len(sizes) - i))
        groups[g].append(i)
        done += rows
    return [g for g in groups if g]


def write_shards(
    directory: str, manifest: Manifest, vectors: Any, ids: Any, shards: int | None
) -> tuple[list[ShardInfo], int]:
    """Writes the new shards on the cluster (the current Dask scheduler) and checks ids across all shards."""
    dask = dask_module("dask")
    blocks, sizes, dim = _vector_blocks(_dask_vectors(vectors))
    if dim != manifest.dim:
        raise ShapeError(f"expected vectors of dimension {manifest.dim}, got {dim}", arg="vectors")
    id_blocks = _id_blocks(ids, sizes, manifest.next_id)
    number = manifest.next_shard
    files, tasks = [], []
    write = dask.delayed(_write_shard, pure=False)
    for group in _groups(sizes, shards):
        files.append(shard_file(number))
        number += 1
        path = os.path.join(directory, files[-1])
        tasks.append(
            write(
                path,
                manifest.kind,
                os.path.join(directory, TEMPLATE),
                [blocks[i] for i in group],
                [id_blocks[i] for i in group],
            )
        )
    try:
        written = dask.compute(*tasks)
        new = [ShardInfo(f, *w) for f, w in zip(files, written)]
        everything = [*manifest.shards, *new]

        def common(i: int, j: int) -> npt.NDArray[np.uint64]:
            a, b = (os.path.join(directory, everything[n].file) for n in (i, j))
            return np.asarray(dask.compute(dask.delayed(_common_ids, pure=False)(a, b, manifest.kind))[0])

        check_disjoint(everything, common)
    except BaseException:
        remove_files(directory, files)
        raise
    return new, number


def build_index(
    vectors: Any,
    directory: str | os.PathLike[str],
    *,
    ids: Any = None,
    shards: int | None = None,
    threshold: ThresholdLike | Fit = "fit",
    method: Any = "lloyd_max",
    sample_rows: int = 10_000,
    seed: int | None = 0,
    weights: tuple[float, float, float] | None = None,
    kind: str = "flat",
    kind_options: dict[str, Any] | None = None,
) -> Manifest:
    """Builds a sharded index in ``directory`` from vectors ``(N, dim)``: a dask array chunked by rows,
    a dask dataframe column holding one vector per row (or a frame of ``dim`` numeric columns), or numpy.

    Runs on the current Dask scheduler (a ``distributed.Client`` if one is active). Returns the
    :class:`Manifest` written; open the directory with :class:`ShardedIndex`.

    - ``threshold``: ``"fit"`` (default) fits thresholds once with :func:`q2key.dask.calibrate` on
      ``sample_rows`` rows drawn with ``seed``, by ``method`` (``"lloyd_max"``: the best for the
      default asymmetric scoring); or ``None`` (Gaussian), a float ``τ`` or a :class:`q2key.Thresholds`.
    - ``shards``: how many shards; consecutive row blocks (partitions) are grouped into that many
      shards of about equal rows (default: one shard per block). Each is written by a worker as an
      ordinary saved :class:`q2key.Index` (``Index.load`` opens one alone), the manifest last.
    - ``ids``: ``None`` numbers the rows ``0 … N−1`` in order (each block's ids start at the sum of
      the chunk sizes before it, so they are unique and increase across shards); or a numpy or
      dask array (or dask dataframe column) of ``N`` unique ids. An id in two shards raises
      :class:`q2key.Q2KeyError` naming ``ids`` and nothing is left in the directory.
    - ``weights``: weighted Lee search (as :class:`q2key.Index`).
    - ``kind``: the shard index kind: ``"flat"`` (:class:`q2key.Index`, no ``kind_options``) or
      ``"ivf"`` (:class:`q2key.IVFIndex`): its centroids are trained once on the sample (the
      ``sample_rows`` rows drawn with ``seed``) with ``kind_options`` — :meth:`q2key.IVFIndex.train`'s
      ``lists``, ``points_per_list``, ``iterations``, ``seed`` — and every shard starts from them;
      search with ``nprobe=``.
    """
    path = _args.path("directory", directory)
    if kind not in KINDS:
        raise Q2KeyError(f"expected one of {', '.join(map(repr, KINDS))}, got {kind!r}", arg="kind")
    if shards is not None:
        _args.size("shards", shards)
    w = None if weights is None else _args.weights(weights)
    if kind == "flat" and kind_options:
        raise Q2KeyError(f"flat shards take no options, got {sorted(kind_options)}", arg="kind_options")
    os.makedirs(path, exist_ok=True)
    if os.path.exists(os.path.join(path, "manifest.json")):
        raise Q2KeyError(f"{path!r} already holds a sharded index: open it and add() to it", arg="directory")
    x = _dask_vectors(vectors)
    dim = int(x.shape[1])
    fit = isinstance(threshold, str) and threshold == "fit"
    # One sample, drawn as q2key.dask.calibrate draws it, fits the thresholds (and an inverted file's centroids).
    sample = sample_of(x, sample_rows, seed, "vectors") if fit or kind != "flat" else None
    th = calibrate(sample, method=method, seed=seed) if fit else _thresholds_for(threshold, dim)  # type: ignore[arg-type]
    with writer_lock(path):
        clean_up(path, None)
        manifest = Manifest.new(kind, dim, th, w)
        template = KINDS[kind].empty(dim, th, w, lambda: sample, dict(kind_options or {}))
        template.save(os.path.join(path, TEMPLATE))
        new, number = write_shards(path, manifest, x, ids, shards)
        manifest = manifest.with_shards(new, number)
        write_manifest(path, manifest)  # last: before this the directory holds no index
    return manifest
