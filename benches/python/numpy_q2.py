"""A vectorised numpy implementation of the Q² encode pipeline (SPEC §1, §2, §4).

It is the baseline q2key's encoder is measured against, and a cross-check: on
the benchmark data it must produce the same codes, keys and transition counts
as ``q2key.encode`` (``test_encode_bench.py::test_numpy_reference_matches_q2key``).

Every step is a whole-array numpy operation over a chunk of rows (chunks keep
the float64 and boolean temporaries cache-sized; the work per element is the
same as one big call, and a big call is slower once it leaves the cache):

1. ``s = Σ x²`` in float64 (``x.astype(float64)`` then ``einsum``: the fastest
   of the numpy spellings we timed — ``np.linalg.norm``, ``(x*x).sum(1)``,
   ``einsum(..., dtype=float64)`` are 1.3–10× slower). q2key sums in eight
   interleaved lanes combined pairwise, so the last bit of ``s`` may differ;
   that flips a symbol only for a coordinate within one rounding of
   ``±τ·‖x‖``. ``exact_norm=True`` reproduces q2key's order (about 8× slower
   for this step) for bit-exact checks on adversarial data.
2. The cut ``t = τ·√s`` rounded to the input dtype, ``τ = 0.6745/√n``;
   compare the raw coordinates: high Gray bit ``x > 0``, low Gray bit
   ``-t < x ≤ t`` (same as normalising first, then comparing with ``τ``).
3. Interleave the two bit planes and ``np.packbits`` (MSB first): this is the
   Gray map plus 4-symbols-per-byte packing, padding bits zero.
4. Symbols ``s = g ^ (g >> 1)``; run starts where a symbol differs from its
   predecessor; transition count = number of starts; key = first 32 run-start
   symbols as base-4 digits, most significant first. Only a leading window of
   columns is examined for the key (rows whose first 32 runs do not fit in it
   are redone on all columns): random-ish rows reach 32 runs in ~43 symbols.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

GAUSSIAN_QUARTILE = 0.6745
KEY_SYMBOLS = 32
_KEY_WINDOW = 64

#: Elements per chunk (rows × dim): 256 Ki elements → 2 MB of float64 temporaries,
#: the fastest of 64 Ki … 4 Mi on the benchmark machine (n = 384: 1.8 µs/row vs
#: 3.0 at 2 Mi and 5.1 at 4 Mi).
CHUNK_ELEMENTS = 1 << 18


def sum_of_squares(x: npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
    """Σx² per row in float64 with q2key's lane order (32 sequential lanes, fixed combine)."""
    rows, n = x.shape
    x64 = x.astype(np.float64)
    sq = x64 * x64
    body = n // 32 * 32
    # Reducing over a non-last axis adds whole slices in order: the sequential
    # accumulation of q2key's `acc[j] += v*v`.
    acc = sq[:, :body].reshape(rows, body // 32, 32).sum(axis=1) if body else np.zeros((rows, 32))
    if body < n:
        acc[:, : n - body] += sq[:, body:]
    o = (acc[:, 0:8] + acc[:, 8:16]) + (acc[:, 16:24] + acc[:, 24:32])
    return ((o[:, 0] + o[:, 1]) + (o[:, 2] + o[:, 3])) + ((o[:, 4] + o[:, 5]) + (o[:, 6] + o[:, 7]))


def _keys(sym: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint64]:
    """Keys from symbols (rows, cols): first 32 run-start symbols, base 4, MSB first."""
    starts = np.empty(sym.shape, dtype=bool)
    starts[:, 0] = True
    np.not_equal(sym[:, 1:], sym[:, :-1], out=starts[:, 1:])
    rank = np.cumsum(starts, axis=1, dtype=np.int64) - 1
    use = starts & (rank < KEY_SYMBOLS)
    shift = (62 - 2 * np.where(use, rank, 0)).astype(np.uint64)
    digits = np.where(use, sym, 0).astype(np.uint64) << shift
    # Digits occupy disjoint bits: the sum is their OR.
    return digits.sum(axis=1, dtype=np.uint64)


def _fast_sum_of_squares(x: npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
    x64 = x.astype(np.float64)
    return np.einsum("ij,ij->i", x64, x64)


def _encode_chunk(
    x: npt.NDArray[np.floating], tau: float, exact_norm: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows, n = x.shape
    s = sum_of_squares(x) if exact_norm else _fast_sum_of_squares(x)
    t = (tau * np.sqrt(s)).astype(x.dtype)[:, None]
    high = x > 0
    low = (x > -t) & (x <= t)
    bits = np.empty((rows, n, 2), dtype=bool)
    bits[:, :, 0] = high
    bits[:, :, 1] = low
    codes = np.packbits(bits.reshape(rows, 2 * n), axis=1)
    # All-zero rows: every symbol is B (Gray 01).
    zero = s == 0
    # Z4 symbol = ungray(high, low) = (high, high ^ low).
    sym = (high.view(np.uint8) << 1) | (high ^ low).view(np.uint8)
    if zero.any():
        sym[zero] = 1
        codes[zero] = np.packbits(np.tile(np.array([0, 1], dtype=bool), n))
    transitions = (np.count_nonzero(sym[:, 1:] != sym[:, :-1], axis=1) + 1).astype(np.uint32)
    window = min(n, _KEY_WINDOW)
    keys = _keys(sym[:, :window])
    if window < n:
        # Rows with fewer than 32 runs inside the window may have more after it.
        short = np.count_nonzero(sym[:, 1:window] != sym[:, : window - 1], axis=1) + 1 < KEY_SYMBOLS
        if short.any():
            keys[short] = _keys(sym[short])
    return codes, keys, transitions


def encode(
    x: npt.ArrayLike,
    threshold: float | None = None,
    *,
    exact_norm: bool = False,
    chunk_elements: int = CHUNK_ELEMENTS,
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint64], npt.NDArray[np.uint32]]:
    """Codes ``(N, ceil(n/4))``, keys ``(N,)`` and transition counts ``(N,)`` of ``x`` ``(N, n)``."""
    x = np.asarray(x)
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise ValueError("x contains NaN or ±Inf")
    rows, n = x.shape
    tau = GAUSSIAN_QUARTILE / np.sqrt(n) if threshold is None else float(threshold)
    codes = np.empty((rows, (n + 3) // 4), dtype=np.uint8)
    keys = np.empty(rows, dtype=np.uint64)
    transitions = np.empty(rows, dtype=np.uint32)
    step = max(1, chunk_elements // n)
    for lo in range(0, rows, step):
        hi = min(rows, lo + step)
        codes[lo:hi], keys[lo:hi], transitions[lo:hi] = _encode_chunk(x[lo:hi], tau, exact_norm)
    return codes, keys, transitions
