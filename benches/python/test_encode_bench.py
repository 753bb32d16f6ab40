"""Encode benchmarks: q2key.encode vs a vectorised numpy pipeline and a memory-bandwidth probe.

For each n in (384, 1024, 4096) on the same ENCODE_ROWS × n float32 array:

- ``q2key-threads1`` / ``q2key-threadsall``: ``q2key.encode(x, threads=1 | None)``;
- ``numpy``: :func:`numpy_q2.encode` (checked identical to q2key on the first rows);
- ``einsum-probe``: ``np.einsum('ij,ij->i', x, x)``, one single-threaded read of
  the array: about what any encoder that must read every value costs.

Targets (issue): numpy / q2key ≥ 50×; single-thread q2key ≤ 2× the probe.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy_q2
import q2key
from bench_common import ROUNDS_FAST, ROUNDS_SLOW, record

#: Rows of the check that numpy_q2 and q2key agree bit for bit.
CHECK_ROWS = 5_000


def _check_encoded(enc: q2key.Encoded, n: int, rows: int) -> None:
    assert enc.codes.shape == (rows, (n + 3) // 4) and enc.codes.dtype == np.uint8
    assert enc.keys.shape == (rows,) and enc.keys.dtype == np.uint64
    assert enc.transitions.shape == (rows,) and enc.transitions.dtype == np.uint32
    # Gaussian rows: every row has runs, and the first key digit is its first symbol.
    assert int(enc.transitions.min()) >= 1 and int(enc.transitions.max()) <= n


def _q2key(benchmark: Any, encode_data: Any, threads: int | None, case: str) -> None:
    n, x = encode_data
    benchmark.group = f"encode-n{n}"
    benchmark.extra_info.update(rows=x.shape[0], dim=n, threads=threads or "all")
    enc = benchmark.pedantic(
        lambda: q2key.encode(x, threads=threads), rounds=ROUNDS_FAST, iterations=1, warmup_rounds=1
    )
    _check_encoded(enc, n, x.shape[0])
    record(benchmark, f"encode-n{n}", case, rows=x.shape[0])


def test_encode_q2key_threads1(benchmark: Any, encode_data: Any) -> None:
    _q2key(benchmark, encode_data, 1, "q2key-threads1")


def test_encode_q2key_threadsall(benchmark: Any, encode_data: Any) -> None:
    _q2key(benchmark, encode_data, None, "q2key-threadsall")


def test_encode_numpy(benchmark: Any, encode_data: Any) -> None:
    n, x = encode_data
    sample = x[:CHECK_ROWS]
    ref = q2key.encode(sample, threads=1)
    codes, keys, transitions = numpy_q2.encode(sample)
    matches = (
        np.array_equal(codes, ref.codes)
        and np.array_equal(keys, ref.keys)
        and np.array_equal(transitions, ref.transitions)
    )
    assert matches, f"numpy_q2.encode differs from q2key.encode at n={n}"
    benchmark.group = f"encode-n{n}"
    benchmark.extra_info.update(rows=x.shape[0], dim=n)
    benchmark.pedantic(lambda: numpy_q2.encode(x), rounds=ROUNDS_SLOW, iterations=1, warmup_rounds=1)
    record(benchmark, f"encode-n{n}", "numpy", rows=x.shape[0], matches_q2key=bool(matches))


def test_encode_einsum_probe(benchmark: Any, encode_data: Any) -> None:
    n, x = encode_data
    benchmark.group = f"encode-n{n}"
    benchmark.extra_info.update(rows=x.shape[0], dim=n, bytes=x.nbytes)
    benchmark.pedantic(lambda: np.einsum("ij,ij->i", x, x), rounds=ROUNDS_FAST, iterations=1, warmup_rounds=1)
    record(benchmark, f"encode-n{n}", "einsum-probe", rows=x.shape[0], bytes=x.nbytes)
