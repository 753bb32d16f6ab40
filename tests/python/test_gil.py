"""Long native calls release the GIL: other Python threads keep running meanwhile.

The checks count events that happen strictly inside a long native call (with a
margin on both sides of several GIL switch intervals). If the call held the
GIL, no other Python thread could run there at all and the count would be 0;
with the GIL released it is in the hundreds. No timing ratio is asserted.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Callable

import numpy as np
import pytest
import q2key
from conftest import ref_lee_matrix, ref_search

TARGET_SECONDS = 0.4
MARGIN = max(0.02, 4 * sys.getswitchinterval())


def _calibrated(make: Callable[[int], Callable[[], object]], start: int, cap: int) -> Callable[[], object]:
    """A call built by ``make(size)`` whose duration is about TARGET_SECONDS."""
    size = start
    while True:
        call = make(size)
        t0 = time.perf_counter()
        call()
        elapsed = time.perf_counter() - t0
        if elapsed >= TARGET_SECONDS / 2 or size >= cap:
            return make(size)
        size = min(cap, int(size * min(8.0, max(1.5, TARGET_SECONDS / max(elapsed, 1e-4)))))


@pytest.fixture(scope="module")
def big_search() -> Callable[[], object]:
    rng = np.random.default_rng(7)
    db = rng.integers(0, 256, size=(200_000, 48), dtype=np.uint8)
    queries = rng.integers(0, 256, size=(40_000, 48), dtype=np.uint8)
    return _calibrated(lambda q: lambda: q2key.search(queries[:q], db, 10, threads=1), 200, 40_000)


@pytest.fixture(scope="module")
def big_lee_matrix() -> Callable[[], object]:
    rng = np.random.default_rng(8)
    b = rng.integers(0, 256, size=(20_000, 96), dtype=np.uint8)
    a = rng.integers(0, 256, size=(2_000, 96), dtype=np.uint8)
    return _calibrated(lambda m: lambda: q2key.lee_matrix(a[:m], b, threads=1), 20, 2_000)


@pytest.fixture(scope="module")
def big_ivf_search() -> Callable[[], object]:
    rng = np.random.default_rng(9)
    x = rng.normal(size=(50_000, 32)).astype(np.float32)
    index = q2key.IVFIndex(32)
    index.train(x[:4096], lists=16, threads=1)
    index.add(x, threads=1)
    return _calibrated(lambda q: lambda: index.search(x[:q], 10, nprobe=16, threads=1), 50, 50_000)


def _ticks_inside(call: Callable[[], object]) -> tuple[int, float]:
    """Run ``call`` while a Python thread records a timestamp about every 0.5 ms.

    Returns how many timestamps fall strictly inside the call (minus margins), and its duration.
    """
    stamps: list[float] = []
    stop = threading.Event()
    running = threading.Event()

    def spin() -> None:
        last = 0.0
        running.set()
        while not stop.is_set():
            now = time.perf_counter()
            if now - last >= 0.0005:
                stamps.append(now)
                last = now

    t = threading.Thread(target=spin, daemon=True)
    t.start()
    running.wait(5)
    time.sleep(0.01)
    t0 = time.perf_counter()
    call()
    t1 = time.perf_counter()
    stop.set()
    t.join(5)
    inside = sum(1 for s in stamps if t0 + MARGIN < s < t1 - MARGIN)
    return inside, t1 - t0


@pytest.mark.parametrize("which", ["search", "lee_matrix", "IVFIndex.search"])
def test_python_thread_progresses_during_native_call(
    which: str,
    big_search: Callable[[], object],
    big_lee_matrix: Callable[[], object],
    big_ivf_search: Callable[[], object],
) -> None:
    call = {"search": big_search, "lee_matrix": big_lee_matrix, "IVFIndex.search": big_ivf_search}[which]
    inside, duration = _ticks_inside(call)
    assert duration > 3 * MARGIN, f"the {which} call was too short ({duration:.3f} s) to test anything"
    assert inside >= 20, (
        f"a Python thread recorded only {inside} ticks during a {duration:.3f} s {which} call: the GIL seems to be held"
    )


def _short_calls_during_long_search(
    long_call: Callable[[], object], short_threads: int | None
) -> tuple[int, float, list[str]]:
    """Thread A runs ``long_call``; thread B loops over short lee_matrix/search calls meanwhile.

    Returns how many of B's iterations finished strictly inside A's call, its duration and B's errors.
    """
    rng = np.random.default_rng(10)
    a = rng.integers(0, 256, size=(40, 32), dtype=np.uint8)
    b = rng.integers(0, 256, size=(300, 32), dtype=np.uint8)
    expected_lm = ref_lee_matrix(a, b)
    expected_d, expected_i = ref_search(a, b, 5)

    done: list[float] = []
    errors: list[str] = []
    stop = threading.Event()
    window: dict[str, float] = {}

    def short_calls() -> None:
        while not stop.is_set():
            lm = q2key.lee_matrix(a, b, threads=short_threads)
            d, i = q2key.search(a, b, 5, threads=short_threads)
            if not np.array_equal(lm, expected_lm):
                errors.append("wrong lee_matrix result in thread B")
            if not (np.array_equal(d, expected_d) and np.array_equal(i, expected_i)):
                errors.append("wrong search result in thread B")
            done.append(time.perf_counter())

    def timed_long_call() -> None:
        window["start"] = time.perf_counter()
        long_call()
        window["end"] = time.perf_counter()

    tb = threading.Thread(target=short_calls, daemon=True)
    tb.start()
    time.sleep(0.02)
    ta = threading.Thread(target=timed_long_call)
    ta.start()
    ta.join(60)
    stop.set()
    tb.join(60)
    assert not ta.is_alive() and not tb.is_alive()
    inside = sum(1 for s in done if window["start"] + MARGIN < s < window["end"] - MARGIN)
    return inside, window["end"] - window["start"], errors


def test_two_python_threads_run_native_calls_concurrently(big_search: Callable[[], object]) -> None:
    """A long search (threads=1) in thread A; thread B's native calls (threads=None) finish meanwhile."""
    inside, duration, errors = _short_calls_during_long_search(big_search, None)
    assert not errors, errors[:3]
    assert inside >= 5, f"thread B finished {inside} native calls during thread A's {duration:.3f} s search"


def test_single_threaded_native_calls_from_two_python_threads_overlap(
    big_search: Callable[[], object],
) -> None:
    """threads=1 in two Python threads: B's single-threaded calls must not wait for A's whole call.

    Running single-threaded native calls from several Python threads is the usual way to
    use all cores from a thread pool; the GIL is released, so nothing should serialise them.
    """
    inside, duration, errors = _short_calls_during_long_search(big_search, 1)
    assert not errors, errors[:3]
    assert inside >= 5, (
        f"thread B finished {inside} threads=1 calls during thread A's {duration:.3f} s threads=1 search: "
        "concurrent threads=1 calls are serialised"
    )


def test_parallel_python_threads_get_correct_results() -> None:
    """Several Python threads calling search and lee_matrix at once (each with native threads)."""
    rng = np.random.default_rng(11)
    db = rng.integers(0, 256, size=(4000, 24), dtype=np.uint8)
    queries = [rng.integers(0, 256, size=(50, 24), dtype=np.uint8) for _ in range(6)]
    expected = [ref_search(q, db, 7) for q in queries]
    expected_lm = [ref_lee_matrix(q, db[:500]) for q in queries]
    results: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def work(i: int) -> None:
        for _ in range(3):
            d, idx = q2key.search(queries[i], db, 7, threads=2)
            lm = q2key.lee_matrix(queries[i], db[:500], threads=2)
        results[i] = (d, idx, lm)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results) == list(range(6))
    for i, (d, idx, lm) in results.items():
        assert np.array_equal(d, expected[i][0]) and np.array_equal(idx, expected[i][1]), f"thread {i}"
        assert np.array_equal(lm, expected_lm[i]), f"thread {i}"
