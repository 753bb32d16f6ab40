"""Dask arrays as q2key takes them (checked, imported on first use), and thresholds fitted on a sample of one.

Shared by :mod:`q2key.dask` (encode, calibrate) and the sharded index (``_shard_build.py``, ``_sharded.py``).
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from ._calibrate import calibrate as _calibrate
from ._errors import DTypeError, Q2KeyError, ShapeError
from ._report import Method, Rotation
from ._thresholds import Thresholds

#: Rows :func:`calibrate` samples by default.
DEFAULT_SAMPLE_ROWS = 10_000


def dask_array() -> Any:
    try:
        # import_module: typed the same whether or not dask is installed
        return importlib.import_module("dask.array")
    except ImportError as e:
        raise ImportError("q2key.dask needs dask[array]: pip install 'q2key[dask]'") from e


def check_array(array: Any, da: Any, arg: str) -> Any:
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


def calibrate(
    array: Any,
    *,
    method: Method = "equiprobable",
    rotation: Rotation | None = None,
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
    sample = sample_of(array, sample_rows, seed)
    return _calibrate(
        sample,
        method=method,
        rotation=rotation,
        outer_share=outer_share,
        seed=seed,
        holdout=holdout,
        k=k,
        threads=threads,
    )


def sample_of(array: Any, sample_rows: int, seed: int | None, arg: str = "array") -> Any:
    """``sample_rows`` rows of a dask array drawn without replacement by ``seed``, in row order, as numpy."""
    da = dask_array()
    x = check_array(array, da, arg)
    if isinstance(sample_rows, bool) or not isinstance(sample_rows, (int, np.integer)) or sample_rows < 1:
        raise Q2KeyError(f"expected a positive integer, got {sample_rows!r}", arg="sample_rows")
    total = x.shape[0]
    if total != total:  # NaN: unknown chunk sizes
        raise ShapeError("the number of rows is unknown; call array.compute_chunk_sizes() first", arg=arg)
    total = int(total)
    if total == 0:
        raise ShapeError("need at least one row to calibrate", arg=arg)
    take = min(int(sample_rows), total)
    rows = np.sort(np.random.default_rng(seed).choice(total, size=take, replace=False))
    return np.asarray(x[rows].compute()) if take < total else np.asarray(x.compute())
