"""Plain-numpy baselines for the fidelity benchmark (``fidelity.py``): exact cosine, int8, sign and thermometer codes.

Every quantiser here works on **L2-normalised float32 rows** (cosine similarity is the target, and
Qdrant likewise normalises vectors of a cosine collection on upload), is fitted on the database
only, and is applied unchanged to the queries. Ties in every ranking go to the lower database row,
as in :func:`q2key.search`.

- **sign** (1 bit per dimension): bit = ``u_d > 0``; Hamming distance.
- **thermometer** (2 bits per dimension; the three-bucket 2-bit binary quantization of Qdrant
  ≥ 1.15 and pgvectorscale's 2-bit statistical binary quantization, whose ``sbq/quantize.rs``
  splits z-scores in [−2, 2] into three ranges, i.e. cuts at ``z = ∓⅔``): per dimension the
  database mean ``μ_d`` and standard deviation ``σ_d`` give two cuts ``μ_d ∓ ⅔σ_d``; a coordinate
  falls in one of three levels — 0 below the low cut, 1 between, 2 above the high cut (boundaries
  belong to the lower level) — written as the thermometer bits
  ``(u_d > μ_d − ⅔σ_d, u_d > μ_d + ⅔σ_d)``, i.e. ``00``, ``10``, ``11``. The Hamming distance of
  two codes is then the L1 distance of their level vectors (opposite extremes are 2 apart). For
  Gaussian data the cells hold 25 % / 50 % / 25 % of the values. **Scored asymmetrically**, the
  float query is compared with the decoded database: each level decodes to the mean of the
  database's values at that level in that dimension (as Q²'s fitted table does, SPEC §8), and the
  score is the cosine between the query and the decoded row (dot product over the decoded row's
  norm, so 96 code bytes + a 4-byte norm per row).
- **int8** (8 bits per dimension, faiss ``QT_8bit``-style): per dimension the database minimum
  ``m_d`` and maximum ``M_d``; a value becomes ``round((u_d − m_d) / s_d)`` with
  ``s_d = (M_d − m_d) / 255`` (queries clipped to ``[m_d, M_d]``) and is decoded as
  ``m_d + c·s_d``. Both sides are quantised (symmetric, as Qdrant does) and ranked by the exact
  cosine of the decoded vectors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]

#: Half-width of the thermometer's middle level, in standard deviations of the dimension.
THERMOMETER_SIGMAS = 2.0 / 3.0
#: Query rows per block in the brute-force float searches (keeps the similarity block ≈ 20 MB).
QUERY_BLOCK = 256


def unit_rows(x: npt.ArrayLike) -> F32:
    """Rows of ``x`` as float32, L2-normalised (all-zero rows stay zero)."""
    a = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(a, axis=1, keepdims=True)
    return np.asarray(a / np.where(norms > 0, norms, 1.0), dtype=np.float32)


def top_k_by_similarity(sims: F32, k: int) -> I64:
    """Column indices of the ``k`` largest values of each row, best first, ties to the lower column."""
    k = min(k, sims.shape[1])
    if k == 0:
        return np.empty((sims.shape[0], 0), dtype=np.int64)
    # argpartition finds the k best in linear time but breaks ties at the k-th value arbitrarily;
    # rows with such a tie (rare with float scores) fall back to a full stable sort.
    part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    scores = np.take_along_axis(sims, part, axis=1)
    kth = scores.min(axis=1, keepdims=True)
    tied = (sims >= kth).sum(axis=1) > k
    order = np.lexsort((part, -scores), axis=1)  # similarity descending, then column ascending
    out = np.take_along_axis(part, order, axis=1).astype(np.int64)
    if tied.any():
        out[tied] = np.argsort(-sims[tied], axis=1, kind="stable")[:, :k]
    return out


def cosine_top_k(queries: F32, database: F32, k: int) -> I64:
    """Exact top-``k`` database rows by cosine for unit-norm float32 rows, in query blocks."""
    out = np.empty((queries.shape[0], min(k, database.shape[0])), dtype=np.int64)
    for start in range(0, queries.shape[0], QUERY_BLOCK):
        block = queries[start : start + QUERY_BLOCK]
        out[start : start + block.shape[0]] = top_k_by_similarity(block @ database.T, k)
    return out


def candidate_similarities(queries: F32, database: F32, candidates: I64) -> F32:
    """Exact cosine of each query with each of its candidate rows (unit-norm inputs), shape of ``candidates``."""
    out = np.empty(candidates.shape, dtype=np.float32)
    for start in range(0, queries.shape[0], QUERY_BLOCK):
        q = queries[start : start + QUERY_BLOCK]
        out[start : start + q.shape[0]] = np.einsum("qd,qrd->qr", q, database[candidates[start : start + q.shape[0]]])
    return out


def rerank(candidates: I64, sims: F32, k: int) -> I64:
    """The ``k`` candidates of each row with the highest ``sims``, best first, ties to the lower row."""
    order = np.lexsort((candidates, -sims), axis=1)[:, : min(k, candidates.shape[1])]
    return np.asarray(np.take_along_axis(candidates, order, axis=1), dtype=np.int64)


def rescore(queries: F32, database: F32, candidates: I64, k: int) -> I64:
    """Re-rank each query's candidate rows by exact cosine and keep the best ``k`` (ties to the lower row)."""
    return rerank(candidates, candidate_similarities(queries, database, candidates), k)


def sign_codes(unit: F32) -> U8:
    """1-bit sign codes, ``ceil(n/8)`` bytes per row, first dimension in the high bit."""
    return np.packbits(unit > 0, axis=1)


@dataclass(frozen=True)
class Thermometer:
    """The 2-bit thermometer quantiser: per-dimension cuts ``μ ∓ ⅔σ`` fitted on the database."""

    low: F32
    high: F32

    @classmethod
    def fit(cls, unit_database: F32, sigmas: float = THERMOMETER_SIGMAS) -> Thermometer:
        """Cuts from the mean and (population) standard deviation of each dimension."""
        mu = unit_database.mean(axis=0, dtype=np.float64)
        sd = unit_database.std(axis=0, dtype=np.float64)
        return cls(low=(mu - sigmas * sd).astype(np.float32), high=(mu + sigmas * sd).astype(np.float32))

    def levels(self, unit: F32) -> U8:
        """Levels 0, 1, 2 of each coordinate (for tests and for the cell shares)."""
        return ((unit > self.low).astype(np.uint8) + (unit > self.high)).astype(np.uint8)

    def encode(self, unit: F32) -> U8:
        """Packed codes, ``ceil(2n/8)`` bytes per row: bit pairs ``(u > low, u > high)`` in dimension order."""
        bits = np.stack([unit > self.low, unit > self.high], axis=2).reshape(unit.shape[0], -1)
        return np.packbits(bits, axis=1)

    def level_means(self, unit_database: F32) -> F32:
        """``(n, 3)`` the mean of the database's values at each level per dimension (the decode table).

        A level no value falls in decodes to the nearest cut (low, high) or their midpoint (middle).
        """
        levels = self.levels(unit_database)
        fallback = np.stack([self.low, (self.low + self.high) / 2, self.high], axis=1).astype(np.float64)
        out = fallback.copy()
        for level in range(3):
            hit = levels == level
            count = hit.sum(axis=0)
            total = np.where(hit, unit_database, 0.0).sum(axis=0, dtype=np.float64)
            out[:, level] = np.where(count > 0, total / np.maximum(count, 1), fallback[:, level])
        return out.astype(np.float32)

    def decode(self, levels: U8, means: F32) -> F32:
        """Levels ``(N, n)`` replaced by their dimension's value in ``means`` (from :meth:`level_means`)."""
        return np.asarray(means[np.arange(levels.shape[1]), levels], dtype=np.float32)


@dataclass(frozen=True)
class Int8Quantizer:
    """Per-dimension min–max scalar quantisation to 0..255."""

    minimum: F32
    step: F32

    @classmethod
    def fit(cls, unit_database: F32) -> Int8Quantizer:
        """Range of each dimension over the database; a constant dimension gets step 1 (it always codes 0)."""
        lo = unit_database.min(axis=0)
        span = unit_database.max(axis=0) - lo
        return cls(minimum=lo.astype(np.float32), step=np.where(span > 0, span / 255.0, 1.0).astype(np.float32))

    def encode(self, unit: F32) -> U8:
        """Codes 0..255, one byte per dimension; values outside the fitted range are clipped."""
        c = np.rint((unit - self.minimum) / self.step)
        return np.clip(c, 0, 255).astype(np.uint8)

    def decode(self, codes: U8) -> F32:
        """The float32 value each code stands for."""
        return np.asarray(self.minimum + codes.astype(np.float32) * self.step, dtype=np.float32)

    def reconstruct(self, unit: F32) -> F32:
        """Encode then decode, renormalised, so that cosine is a plain dot product."""
        return unit_rows(self.decode(self.encode(unit)))
