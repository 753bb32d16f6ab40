"""faiss baselines for the fidelity benchmark (``fidelity.py``): the 2- and 4-bit codes the field uses.

Each ranker trains a faiss index on the unit-normalised database, adds it, and searches the
unit-normalised queries by inner product (= cosine), so the candidates are what that index
returns with its own scoring of float queries against its codes:

- ``IndexRaBitQ`` with 2 bits per dimension (extended RaBitQ; faiss ≥ 1.13), and its fast-scan
  variant ``IndexRaBitQFastScan`` (blocks of 32 rows, 4-bit lookup tables);
- ``IndexRaBitQ`` 2-bit behind a random rotation (``IndexPreTransform(RandomRotationMatrix)``,
  seed :data:`ROTATION_SEED`): a fairness control for Q²'s rotated rows, since faiss's RaBitQ does
  not rotate by itself. The target compares Q² with the plain ``IndexRaBitQ``, the index faiss
  users build;
- ``IndexPQFastScan`` 192 × 4 bits (96 bytes at n = 384, the same size as a Q² code);
- ``IndexScalarQuantizer`` ``QT_4bit`` (4 bits per dimension, 192 bytes).

Bytes per vector are the index's ``code_size`` (RaBitQ stores per-vector factors beside the
bits; a rotation is one ``n × n`` matrix per index, not per vector). faiss is an optional
dependency of the benchmarks: without it :func:`rankers` is empty.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
F32 = npt.NDArray[np.float32]
Ranker = Callable[[F32, F32, int], "tuple[I64, dict[str, Any]]"]

RABITQ_2BIT = "faiss RaBitQ 2-bit"
RABITQ_ROTATED_2BIT = "faiss RaBitQ 2-bit + random rotation"
RABITQ_FASTSCAN_2BIT = "faiss RaBitQFastScan 2-bit"
PQ_FASTSCAN = "faiss PQFastScan 192×4"
SQ_4BIT = "faiss SQ 4-bit"
#: Seed of the random rotation in front of RABITQ_ROTATED_2BIT.
ROTATION_SEED = 0


def _faiss() -> Any:
    return importlib.import_module("faiss")


def _ranker(build: Callable[[Any, int], Any]) -> Ranker:
    """A method searching a faiss index built by ``build(faiss, dim)`` (trained and filled here)."""

    def rank(queries: F32, database: F32, depth: int) -> tuple[I64, dict[str, Any]]:
        faiss = _faiss()
        index = build(faiss, database.shape[1])
        index.train(database)
        index.add(database)
        _, idx = index.search(queries, depth)
        # An IndexPreTransform has no code_size of its own: its codes are its inner index's.
        code_size = index.code_size if hasattr(index, "code_size") else index.sa_code_size()
        return idx.astype(np.int64), {"bytes": int(code_size)}

    return rank


def _rotated_rabitq(faiss: Any, dim: int) -> Any:
    """``IndexRaBitQ`` 2-bit behind a random orthogonal rotation seeded with :data:`ROTATION_SEED`."""
    rotation = faiss.RandomRotationMatrix(dim, dim)
    rotation.init(ROTATION_SEED)
    return faiss.IndexPreTransform(rotation, faiss.IndexRaBitQ(dim, faiss.METRIC_INNER_PRODUCT, 2))


def rankers() -> list[tuple[str, str, Ranker]]:
    """Every faiss baseline as (name, family, ranker); empty when faiss is not installed."""
    try:
        faiss = _faiss()
    except ImportError:
        return []
    ip = faiss.METRIC_INNER_PRODUCT
    out: list[tuple[str, str, Ranker]] = [
        (PQ_FASTSCAN, "baseline", _ranker(lambda f, d: f.IndexPQFastScan(d, d // 2, 4, ip))),
        (SQ_4BIT, "baseline", _ranker(lambda f, d: f.IndexScalarQuantizer(d, f.ScalarQuantizer.QT_4bit, ip))),
    ]
    if hasattr(faiss, "IndexRaBitQFastScan"):  # multi-bit RaBitQ: faiss ≥ 1.13
        out[:0] = [
            (RABITQ_2BIT, "baseline", _ranker(lambda f, d: f.IndexRaBitQ(d, ip, 2))),
            (RABITQ_ROTATED_2BIT, "baseline", _ranker(_rotated_rabitq)),
            (RABITQ_FASTSCAN_2BIT, "baseline", _ranker(lambda f, d: f.IndexRaBitQFastScan(d, ip, 32, 2))),
        ]
    return out
