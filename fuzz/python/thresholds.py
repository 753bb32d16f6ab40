"""Mutation fuzzing of the pure-Python ``Thresholds.from_bytes`` / ``from_json`` (no libFuzzer target
can reach them): valid encodings of every kind, mutated (bit flips, byte sets, truncation, insertion,
spliced special floats and integers, checksum recomputed or not; JSON fields replaced by values of
every type), must give a ``Thresholds`` that round-trips or a q2key error (``Q2KeyError`` /
``DTypeError``). Anything else is counted by exception type and place, and the first input of each
is written to ``fuzz/artifacts/thresholds-py/``.

    python fuzz/python/thresholds.py [EXECUTIONS] [SEED]
"""

from __future__ import annotations

import sys
import time
import traceback
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "python"))

from test_index_file import (  # noqa: E402  (the mutators are shared with the test suite)
    _json_mutations,
    _refresh_crc,
    _valid_thresholds,
    check_thresholds_bytes,
    check_thresholds_json,
    mutate,
)


def main() -> int:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    rng = np.random.default_rng(int(sys.argv[2]) if len(sys.argv) > 2 else 0)
    valid = _valid_thresholds()
    seeds = [(check_thresholds_bytes, th.to_bytes()) for th in valid]
    seeds += [(check_thresholds_json, th.to_json().encode()) for th in valid]
    out = ROOT / "fuzz" / "artifacts" / "thresholds-py"
    failures: Counter[str] = Counter()
    start = time.monotonic()
    for n in range(runs):
        check, seed = seeds[n % len(seeds)]
        if check is check_thresholds_json and n % 3 == 0:
            data = _json_mutations(rng, valid[n % len(valid)])
        else:
            data = mutate(rng, seed)
            for _ in range(int(rng.integers(0, 3))):
                data = mutate(rng, data)
            if check is check_thresholds_bytes and n % 2:
                data = _refresh_crc(data)
        try:
            check(data)
        except Exception as e:  # counting every unexpected failure is the point
            frame = traceback.extract_tb(e.__traceback__)[-1]
            key = f"{check.__name__}: {type(e).__name__} at {Path(frame.filename).name}:{frame.lineno}"
            if key not in failures:
                out.mkdir(parents=True, exist_ok=True)
                (out / f"crash-{len(failures)}.bin").write_bytes(data)
                print(f"{key}: {str(e)[:120]}", flush=True)
            failures[key] += 1
    elapsed = time.monotonic() - start
    print(f"{runs} executions in {elapsed:.0f} s ({runs / elapsed:,.0f}/s); unexpected failures: {dict(failures)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
