"""``q2key index build | search | info``."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from ._cli_commit import Outputs, check_output_path
from ._cli_context import Context, load_thresholds
from ._cli_errors import located, without_argument, written
from ._cli_io import CliError, default_batch_rows
from ._cli_read import NpySource, open_source
from ._errors import Q2KeyError
from ._index import Index
from ._ivf import IVF_MAGIC, IVFIndex


def _weights(text: str | None) -> tuple[float, float, float] | None:
    if text is None:
        return None
    try:
        parts = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise CliError(f"--weights: expected three numbers W_MAG,W_SIGN,W_BOTH, got {text!r}") from None
    if len(parts) != 3:
        raise CliError(f"--weights: expected three numbers W_MAG,W_SIGN,W_BOTH, got {len(parts)}")
    return parts[0], parts[1], parts[2]


def _ids(path: str, rows: int | None) -> npt.NDArray[Any]:
    try:
        ids = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as e:
        raise CliError(f"{path}: {e}") from None
    if not isinstance(ids, np.ndarray):
        raise CliError(f"{path}: expected a .npy array of ids")
    if ids.dtype.kind not in "iu" or ids.ndim != 1:
        raise CliError(f"{path}: expected a 1-D integer array of ids, got {ids.dtype} {ids.shape}")
    if rows is not None and ids.shape[0] != rows:
        raise CliError(f"{path}: {ids.shape[0]:,} ids for {rows:,} vectors; expected one id per vector")
    return ids


def _load(path: str, *, mmap: bool = True) -> Index | IVFIndex:
    """The index in ``path``: an :class:`IVFIndex` if its magic says so, else an :class:`Index`."""
    if not os.path.exists(path):
        raise CliError(f"{path}: No such file or directory")
    with open(path, "rb") as f:
        magic = f.read(len(IVF_MAGIC))
    if magic == IVF_MAGIC:
        return IVFIndex.load(path, mmap=mmap)
    return Index.load(path, mmap=mmap)


def cmd_build(args: argparse.Namespace, ctx: Context) -> int:
    check_output_path(args.output)
    index: Index | IVFIndex
    ivf: IVFIndex | None = None
    if args.lists is not None:
        from ._cli_ivf import trained  # pass 1: the training sample

        index = ivf = trained(args, ctx)
    with open_source(args.vectors, args.column, what="vectors") as src:
        if args.lists is None:
            index = Index(src.dim, threshold=load_thresholds(args.thresholds, src.dim), weights=_weights(args.weights))
        ids = None if args.ids is None else _ids(args.ids, src.rows)
        batch_rows = args.batch_rows or default_batch_rows(src.dim, src.dtype.itemsize)
        add: Callable[..., object] = index.add
        if ivf is not None:
            from ._cli_ivf import add_batch_rows, routed_adder

            batch_rows = add_batch_rows(args, batch_rows)
            add = routed_adder(ivf, args, ctx)  # pass 2: every row's list, every list sized
        done = 0
        with ctx.progress(src.rows, "index", args.quiet) as bar:
            for batch in src.batches(batch_rows):
                n = int(batch.shape[0])
                batch_ids = None
                if ids is not None:
                    if done + n > ids.shape[0]:
                        raise CliError(f"{args.ids}: {ids.shape[0]:,} ids for more vectors; expected one id per vector")
                    batch_ids = np.asarray(ids[done : done + n])
                try:
                    add(batch, ids=batch_ids, threads=args.threads)
                except Q2KeyError as e:
                    where = args.ids if e.arg == "ids" else src.path
                    raise located(e, where, done) from None
                done += n
                bar.update(n)
        if ids is not None and done != ids.shape[0]:
            raise CliError(f"{args.ids}: {ids.shape[0]:,} ids for {done:,} vectors; expected one id per vector")
    try:
        index.save(args.output)
    except OSError as e:
        raise written(e, args.output) from None
    if not args.quiet:
        size = os.path.getsize(args.output)
        lists = f" in {index.lists:,} lists" if isinstance(index, IVFIndex) else ""
        summary = f"indexed {len(index):,} vectors of dimension {index.dim}{lists} → {args.output} ({size:,} bytes)"
        print(summary, file=ctx.stderr)
    return 0


def cmd_search(args: argparse.Namespace, ctx: Context) -> int:
    index = _load(args.index)
    if args.nprobe is not None and not isinstance(index, IVFIndex):
        raise CliError(f"--nprobe: {args.index} is not an inverted-file index (build it with --lists)")
    probe = {} if args.nprobe is None else {"nprobe": args.nprobe}
    rescore = None if args.rescore is None else _rescore_vectors(args.rescore, index.dim)
    dists: list[npt.NDArray[Any]] = []
    found: list[npt.NDArray[np.uint64]] = []
    with open_source(args.queries, args.column, what="queries") as src:
        batch_rows = args.batch_rows or min(default_batch_rows(src.dim, src.dtype.itemsize), 4096)
        done = 0
        with ctx.progress(src.rows, "search", args.quiet) as bar:
            for batch in src.batches(batch_rows):
                try:
                    d, i = index.search(
                        batch,
                        k=args.k,
                        rescore=rescore,
                        oversample=args.oversample,
                        threads=args.threads,
                        scoring=args.scoring,
                        **probe,
                    )
                except Q2KeyError as e:
                    if e.arg == "rescore":  # an id the --rescore file has no row for
                        raise CliError(f"{args.rescore}: {without_argument(e)}") from None
                    if e.arg == "scoring":  # e.g. asymmetric scoring of uint8 code queries
                        raise CliError(f"--scoring {args.scoring}: {without_argument(e)}") from None
                    raise located(e, src.path, done) from None
                dists.append(d)
                found.append(i)
                done += int(batch.shape[0])
                bar.update(int(batch.shape[0]))
    cols = min(args.k, len(index))
    distances = np.concatenate(dists) if dists else np.zeros((0, cols), _distance_dtype(index, args, src.dtype))
    ids = np.concatenate(found) if found else np.zeros((0, cols), np.uint64)
    if args.output:
        with Outputs() as out:
            np.savez(out.new(args.output).file, distances=distances, ids=ids)
        if not args.quiet:
            print(f"searched {done:,} queries, k={args.k} → {args.output}", file=ctx.stderr)
        return 0
    w = ctx.stdout.write
    w("query\trank\tid\tdistance\n")
    is_float = distances.dtype.kind == "f"
    for q in range(ids.shape[0]):
        for r in range(ids.shape[1]):
            dist = f"{distances[q, r]:.6f}" if is_float else str(int(distances[q, r]))
            w(f"{q}\t{r}\t{int(ids[q, r])}\t{dist}\n")
    return 0


def _distance_dtype(index: Index | IVFIndex, args: argparse.Namespace, queries: np.dtype[Any]) -> type[np.generic]:
    """The dtype of the distances ``Index.search`` gives these options: for an empty result, which it never ran."""
    codes = queries == np.uint8
    if args.rescore is not None:
        return np.float64
    weighted = isinstance(index, Index) and index.weights is not None
    if args.scoring == "asymmetric" or (args.scoring == "auto" and not codes and not weighted):
        return np.float32
    return np.float64 if isinstance(index, Index) and index.weights is not None else np.uint32


def _rescore_vectors(path: str, dim: int) -> npt.NDArray[Any]:
    with open_source(path, None, what="rescore vectors") as src:
        if src.dim != dim:
            raise CliError(f"{path}: vectors of dimension {src.dim}; the index holds dimension {dim}")
        if isinstance(src, NpySource):
            table: npt.NDArray[Any] = np.load(path, mmap_mode="r", allow_pickle=False)  # rows read on demand
            return table
        return src.read_all()


def ivf_info(index: IVFIndex, path: str) -> dict[str, Any]:
    """What ``q2key index info`` reports about an inverted-file index, as a dict."""
    s = index.stats()
    th = index.thresholds
    return {
        "file": path,
        "file_bytes": os.path.getsize(path),
        "kind": "ivf",
        "dim": index.dim,
        "rows": s.rows,
        "removed": s.removed,
        "code_bytes": index.code_bytes,
        "lists": s.lists,
        "list_rows": {"min": s.min_list, "mean": s.mean_list, "max": s.max_list},
        "imbalance": s.imbalance,
        "memory_bytes": s.memory_bytes,
        "thresholds": {"kind": th.kind, "tau": th.tau, "repr": repr(th)},
        "reconstruction": "fitted" if th.reconstruction is not None else "gaussian default",
    }


def info(index: Index, path: str) -> dict[str, Any]:
    """What ``q2key index info`` reports, as a dict."""
    s = index.stats()
    th = index.thresholds
    return {
        "file": path,
        "file_bytes": os.path.getsize(path),
        "dim": s.dim,
        "rows": s.alive,
        "removed": s.dead,
        "code_bytes": s.code_bytes,
        "bytes_per_row": s.bytes_per_row,
        "memory_bytes": (s.alive + s.dead) * s.bytes_per_row,
        "thresholds": {"kind": th.kind, "tau": th.tau, "repr": repr(th)},
        "reconstruction": "fitted" if th.reconstruction is not None else "gaussian default",
        "rotation": th.rotation is not None,
        "weights": None if index.weights is None else list(index.weights),
    }


def cmd_info(args: argparse.Namespace, ctx: Context) -> int:
    # Read, not mapped: a file truncated or rewritten in place by another program meanwhile is then a
    # format error, never a SIGBUS (which a map raises on a page past the new end).
    index = _load(args.index, mmap=False)
    d = ivf_info(index, args.index) if isinstance(index, IVFIndex) else info(index, args.index)
    if args.json:
        print(json.dumps(d), file=ctx.stdout)
        return 0
    if isinstance(index, IVFIndex):
        sizes = d["list_rows"]
        lines = [
            f"file        {d['file']} ({d['file_bytes']:,} bytes)",
            f"dim         {d['dim']}",
            f"rows        {d['rows']:,} ({d['removed']:,} removed)",
            f"code bytes  {d['code_bytes']} per vector",
            f"lists       {d['lists']:,} (rows per list: min {sizes['min']:,}, mean {sizes['mean']:,.1f}, "
            f"max {sizes['max']:,}; imbalance {d['imbalance']:.2f}, 1 = even)",
            f"memory      ≈ {d['memory_bytes']:,} bytes loaded",
            f"thresholds  {d['thresholds']['repr']}",
            f"table       {d['reconstruction']} reconstruction (what asymmetric scoring decodes codes to)",
        ]
        print("\n".join(lines), file=ctx.stdout)
        return 0
    w = d["weights"]
    weights = "none (plain Lee distance)" if w is None else f"w_mag {w[0]:g}, w_sign {w[1]:g}, w_both {w[2]:g}"
    lines = [
        f"file        {d['file']} ({d['file_bytes']:,} bytes)",
        f"dim         {d['dim']}",
        f"rows        {d['rows']:,} ({d['removed']:,} removed)",
        f"code bytes  {d['code_bytes']} per vector",
        f"memory      ≈ {d['memory_bytes']:,} bytes loaded ({d['bytes_per_row']} per row: code, key, id;"
        " the id map, built on the first id lookup, adds ≈ 36 at 1 M rows)",
        f"thresholds  {d['thresholds']['repr']}",
        f"table       {d['reconstruction']} reconstruction (what asymmetric scoring decodes codes to)",
        f"rotation    {'yes: rows and queries are rotated before quantising' if d['rotation'] else 'none'}",
        f"weights     {weights}",
    ]
    print("\n".join(lines), file=ctx.stdout)
    return 0
