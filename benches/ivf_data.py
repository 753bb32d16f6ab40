"""Structured test data for the inverted-file index (issue 13): 1 M–10 M rows grown from real embeddings.

Usage::

    python benches/ivf_data.py --rows 1000000 [--out /tmp/q2key-ivf] [--seed 0] [--dtype auto|float16|float32]
                               [--force]

Writes, under ``--out`` (reused by later runs with the same settings)::

    minilm-mix-<rows>-s<seed>-<dtype>.npy          the database, (rows, 384), unit rows
    minilm-mix-<rows>-s<seed>-<dtype>.top10.npz    exact cosine top-10 of the 1 000 queries: ids, cosines
    minilm-mix-<rows>-s<seed>-<dtype>.json         settings, noise scale, neighbour-cosine statistics

**Why not Gaussian data.** An inverted file works because real embeddings have neighbourhoods: the
true neighbours of a query sit in a few k-means cells, so scanning the ``nprobe`` nearest cells finds
them. i.i.d. Gaussian rows in 384 dimensions have none: every pairwise cosine concentrates around
0 ± 1/√384, a query's nearest row is barely closer than a random one, k-means cells are arbitrary
slices of the sphere and a query's true top-10 is spread uniformly over them, so recall grows like
``nprobe / lists`` whatever the index does. Such data would measure nothing about routing — and the
2-bit codes' errors would be as large as the gaps between "neighbours", so recall against exact
cosine would measure nothing about the codes either.

**What this makes instead.** Only 20 000 real all-MiniLM-L6-v2 rows are bundled
(``data/wordnet-minilm-dev.npz``: ``database`` 20 000 × 384 fp16, ``queries`` 1 000 held-out real
queries). Each synthetic row is

    normalise( normalise(Σ_j w_j · r_j) + s · σ ⊙ z ),

where the ``r_j`` are 1–3 real database rows (the count uniform in {1, 2, 3}): a parent drawn
uniformly and partners drawn from the parent's 16 nearest real rows, so a mixture stays on the
data's manifold (a chord between two unrelated rows would not); ``w`` is Dirichlet(1, …, 1);
``σ`` is the per-dimension standard deviation of the real (unit) rows and ``z`` is standard normal,
so the noise is shaped like the data's own spread (dimensions the data does not use stay unused);
``s`` is fitted once (bisection, deterministic) so that the held-out queries' top-10 cosines against
20 000 synthetic rows have the same median as against the 20 000 real rows: at the real data's
density the neighbour cosines look like the real ones, and larger N is a denser sample of the same
distribution (its neighbour cosines rise, as they would for more real data). The run prints the
quantiles of the top-1 and top-10 cosines — real, synthetic at 20 000 rows, synthetic at N — to check
this. The queries are the 1 000 real held-out queries (never mixed into the database).

**Determinism.** Rows are made in chunks of ``CHUNK`` = 65 536, chunk ``c`` from the generator
``np.random.default_rng([seed, c])``: the same seed gives the same rows on every machine and every
run, and the first M rows of an N-row file are the M-row file (same dtype). The ground truth is the
exact float32 cosine top-10 of the *stored* rows (after the float16 rounding, if any), ties to the
lower row.

**Storage.** Rows are streamed to a ``.npy`` through ``np.lib.format.open_memmap`` one chunk at a
time, so the matrix never sits in memory (peak ≈ a few chunks, ≈ 0.3 GB). ``--dtype auto`` stores
float32 up to 2 M rows (1 M: 1.5 GB) and **float16 above** (10 M: 7.7 GB instead of 15.4 GB); the
float16 rounding of a unit row moves its cosines by ≲ 1e-3 and the ground truth is computed on the
rounded rows, so it is exact for what is stored. Files are written under a temporary name and
renamed when complete: an interrupted run leaves no half file that a later run would reuse.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent / "data" / "wordnet-minilm-dev.npz"
DEFAULT_OUT = Path("/tmp/q2key-ivf")
DIM = 384
#: Rows per generated chunk (part of the data's definition: chunk c is drawn from default_rng([seed, c])).
CHUNK = 65_536
#: Partners of a mixture are drawn from this many nearest real rows of its parent.
PARTNERS = 16
#: Largest number of real rows in one mixture.
MAX_PARTS = 3
K = 10
#: Above this many rows ``--dtype auto`` stores float16.
FLOAT32_MAX_ROWS = 2_000_000
#: Version of the recipe: part of the cache's settings, so a changed recipe never reuses old files.
RECIPE = 2

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]


def unit(x: npt.NDArray[Any]) -> F32:
    """Rows as float32, L2-normalised (a zero row stays zero)."""
    a = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(a, axis=1, keepdims=True)
    return np.asarray(a / np.where(n == 0, 1, n), dtype=np.float32)


@dataclass
class Real:
    """The bundled real rows (unit float32), each database row's nearest real rows and the per-dimension spread."""

    database: F32
    queries: F32
    partners: npt.NDArray[np.int32]
    sigma: F32


@functools.lru_cache(maxsize=2)
def load_real(path: Path = DEFAULT_DATA) -> Real:
    """The bundled rows, their nearest real rows and spread (cached: computing the partners takes seconds)."""
    with np.load(path) as z:
        db, queries = unit(z["database"]), unit(z["queries"])
    # Each row's PARTNERS nearest other rows (exact cosine, in blocks of 2 048 rows).
    partners = np.empty((db.shape[0], PARTNERS), dtype=np.int32)
    for lo in range(0, db.shape[0], 2048):
        sims = db[lo : lo + 2048] @ db.T
        sims[np.arange(sims.shape[0]), np.arange(lo, lo + sims.shape[0])] = -np.inf
        top = np.argpartition(-sims, PARTNERS, axis=1)[:, :PARTNERS]
        order = np.argsort(-np.take_along_axis(sims, top, axis=1), axis=1, kind="stable")
        partners[lo : lo + 2048] = np.take_along_axis(top, order, axis=1)
    return Real(db, queries, partners, np.asarray(db.std(axis=0), dtype=np.float32))


def chunk_rows(real: Real, seed: int, chunk: int, rows: int, scale: float) -> F32:
    """Rows ``[chunk·CHUNK, chunk·CHUNK + rows)`` of the synthetic database (``rows ≤ CHUNK``)."""
    rng = np.random.default_rng([seed, chunk])
    parts = rng.integers(1, MAX_PARTS + 1, size=rows)
    parent = rng.integers(0, real.database.shape[0], size=rows)
    picks = real.partners[parent[:, None], rng.integers(0, PARTNERS, size=(rows, MAX_PARTS - 1))]
    members = np.concatenate([parent[:, None], picks], axis=1)  # (rows, MAX_PARTS)
    weights = rng.dirichlet(np.ones(MAX_PARTS), size=rows).astype(np.float32)
    weights[np.arange(MAX_PARTS)[None, :] >= parts[:, None]] = 0  # only the first `parts` members mix
    mix = np.einsum("rm,rmn->rn", weights, real.database[members])
    noise = rng.standard_normal((rows, DIM), dtype=np.float32) * (np.float32(scale) * real.sigma)
    return unit(unit(mix) + noise)


def top_k(queries: F32, rows: npt.NDArray[Any], k: int = K, start: int = 0) -> tuple[I64, F32]:
    """Exact cosine top-k of unit ``queries`` among ``rows`` (ids from ``start``), ties to the lower row."""
    sims = queries @ np.asarray(rows, dtype=np.float32).T
    extra = min(sims.shape[1], k + 16)  # room for ties at the k-th place
    cand = np.argpartition(-sims, extra - 1, axis=1)[:, :extra] if extra < sims.shape[1] else None
    if cand is None:
        cand = np.broadcast_to(np.arange(sims.shape[1]), sims.shape)
    s = np.take_along_axis(sims, cand, axis=1)
    order = np.lexsort((cand, -s), axis=1)[:, :k]
    return np.take_along_axis(cand, order, axis=1).astype(np.int64) + start, np.take_along_axis(s, order, axis=1)


def merge_top_k(a: tuple[I64, F32], b: tuple[I64, F32], k: int = K) -> tuple[I64, F32]:
    """The top-k of two top-k lists (ties to the lower id)."""
    ids, s = np.concatenate([a[0], b[0]], axis=1), np.concatenate([a[1], b[1]], axis=1)
    order = np.lexsort((ids, -s), axis=1)[:, :k]
    return np.take_along_axis(ids, order, axis=1), np.take_along_axis(s, order, axis=1)


def exact_top_k(queries: F32, database: npt.NDArray[Any], k: int = K) -> tuple[I64, F32]:
    """Exact cosine top-k over a (memory-mapped) database, read CHUNK rows at a time."""
    best = (np.zeros((queries.shape[0], 0), np.int64), np.zeros((queries.shape[0], 0), np.float32))
    for lo in range(0, database.shape[0], CHUNK):
        best = merge_top_k(best, top_k(queries, database[lo : lo + CHUNK], k, lo), k)
    return best


def quantiles(cos: F32) -> dict[str, list[float]]:
    """10/50/90 % quantiles of the top-1 and the k-th cosine of each query."""
    q = (0.1, 0.5, 0.9)
    return {
        "top1": [round(float(v), 4) for v in np.quantile(cos[:, 0], q)],
        f"top{cos.shape[1]}": [round(float(v), 4) for v in np.quantile(cos[:, -1], q)],
    }


def small_sample(real: Real, seed: int, scale: float) -> F32:
    """As many synthetic rows as real ones (the real data's density), from the data's own chunks."""
    n = real.database.shape[0]
    return chunk_rows(real, seed + 1_000_003, 0, n, scale)  # a seed apart from the database's chunks


def fit_scale(real: Real, seed: int, steps: int = 14) -> float:
    """The noise scale s at which the queries' median top-10 cosine against as many synthetic rows as real
    ones equals the real median (bisection; the median falls as s grows)."""
    want = float(np.median(top_k(real.queries, real.database)[1][:, -1]))
    lo, hi = 0.0, 4.0
    for _ in range(steps):
        mid = (lo + hi) / 2
        got = float(np.median(top_k(real.queries, small_sample(real, seed, mid))[1][:, -1]))
        lo, hi = (mid, hi) if got > want else (lo, mid)
    return round((lo + hi) / 2, 4)


@dataclass
class Dataset:
    """A generated database (memory-mapped, read-only), the real queries and the exact cosine top-10."""

    path: Path
    database: npt.NDArray[Any]
    queries: F32
    truth: I64
    truth_cos: F32
    meta: dict[str, Any]


def storage_dtype(rows: int, dtype: str) -> str:
    if dtype == "auto":
        return "float32" if rows <= FLOAT32_MAX_ROWS else "float16"
    if dtype not in ("float16", "float32"):
        raise ValueError(f"dtype: expected auto, float16 or float32, got {dtype!r}")
    return dtype


def _replace(tmp: Path, final: Path) -> None:
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, final)


def dataset(
    rows: int,
    out: Path = DEFAULT_OUT,
    *,
    seed: int = 0,
    dtype: str = "auto",
    data: Path = DEFAULT_DATA,
    force: bool = False,
    log: Any = None,
) -> Dataset:
    """The ``rows``-row dataset under ``out``: made (minutes at 10 M rows) unless a complete one is cached."""
    say = log or (lambda *a: None)
    store = storage_dtype(rows, dtype)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"minilm-mix-{rows}-s{seed}-{store}"
    npy, gt, meta_path = stem.with_suffix(".npy"), stem.with_suffix(".top10.npz"), stem.with_suffix(".json")
    settings = {"recipe": RECIPE, "rows": rows, "seed": seed, "dtype": store, "data": data.name, "chunk": CHUNK}
    meta: dict[str, Any] | None = None
    if not force and npy.exists() and gt.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("settings") != settings:
            meta = None
    if meta is None:
        real = load_real(data)
        t0 = time.perf_counter()
        scale = fit_scale(real, seed)
        say(f"noise scale s = {scale} (fitted in {time.perf_counter() - t0:.1f} s)")
        tmp = npy.with_suffix(".npy.tmp")
        db = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.dtype(store), shape=(rows, DIM))
        t0 = time.perf_counter()
        for c, lo in enumerate(range(0, rows, CHUNK)):
            n = min(CHUNK, rows - lo)
            db[lo : lo + n] = chunk_rows(real, seed, c, CHUNK, scale)[:n]  # whole chunks: prefixes agree
            if c % 16 == 15:
                say(f"  {lo + n:,} / {rows:,} rows ({time.perf_counter() - t0:.0f} s)")
        db.flush()
        del db
        _replace(tmp, npy)
        gen_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        ids, cos = exact_top_k(real.queries, np.load(npy, mmap_mode="r"))
        gt_s = time.perf_counter() - t0
        tmp_gt = gt.with_suffix(".tmp.npz")
        np.savez(tmp_gt, ids=ids, cos=cos)
        _replace(tmp_gt, gt)
        real_cos = top_k(real.queries, real.database)[1]
        small_cos = top_k(real.queries, small_sample(real, seed, scale))[1]
        meta = {
            "settings": settings,
            "noise_scale": scale,
            "generate_seconds": round(gen_s, 1),
            "ground_truth_seconds": round(gt_s, 1),
            "neighbour_cosines": {
                f"real {real.database.shape[0]} rows": quantiles(real_cos),
                f"synthetic {real.database.shape[0]} rows": quantiles(small_cos),
                f"synthetic {rows} rows": quantiles(cos),
            },
        }
        tmp_meta = meta_path.with_suffix(".json.tmp")
        tmp_meta.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        _replace(tmp_meta, meta_path)
    with np.load(gt) as z:
        ids, cos = np.asarray(z["ids"]), np.asarray(z["cos"])
    with np.load(data) as z:
        queries = unit(z["queries"])
    return Dataset(npy, np.load(npy, mmap_mode="r"), queries, ids, cos, meta)


def describe(ds: Dataset) -> str:
    """The neighbour-cosine table: quantiles (10 / 50 / 90 %) of each query's top-1 and 10th cosine."""
    lines = ["| database | top-1 cosine (10 / 50 / 90 %) | 10th cosine (10 / 50 / 90 %) |", "|---|---|---|"]
    for name, q in ds.meta["neighbour_cosines"].items():
        lines.append(
            f"| {name} | {' / '.join(f'{v:.3f}' for v in q['top1'])} | {' / '.join(f'{v:.3f}' for v in q['top10'])} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="database rows (default: %(default)s)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="cache directory (default: %(default)s)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dtype", default="auto", choices=("auto", "float16", "float32"), help="storage dtype")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the bundled .npz (default: %(default)s)")
    ap.add_argument("--force", action="store_true", help="regenerate even if a cached copy exists")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    ds = dataset(args.rows, args.out, seed=args.seed, dtype=args.dtype, data=args.data, force=args.force, log=print)
    print(
        f"{ds.path}: {ds.database.shape[0]:,} × {ds.database.shape[1]} {ds.database.dtype} "
        f"({time.perf_counter() - t0:.1f} s)"
    )
    print(f"noise scale s = {ds.meta['noise_scale']}; queries: {ds.queries.shape[0]} real held-out rows")
    print(describe(ds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
