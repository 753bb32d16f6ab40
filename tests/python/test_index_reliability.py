"""Index reliability (issue 10): no abort, panic or undefined behaviour reachable from Python.

- An output too large to allocate raises ``MemoryError`` naming it (it used to abort the
  interpreter). These run in a subprocess with an address-space limit, so a regression shows
  up as a failed test rather than a dead test run, and nothing here touches more than a few
  hundred MB.
- Arrays other Python threads write while a call runs without the GIL give at worst a
  wrong-but-valid answer, never a ``PanicException``.
- Boolean masks are read as bytes: any non-zero byte allows.
- ``arrays()`` is one consistent snapshot under concurrent removals.
- Getters wait for the index lock without the GIL.
- Weights whose largest distance overflows are refused.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import q2key
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

# -- outputs that cannot be allocated -----------------------------------------------------------------------

# Runs in a child whose address space is capped 768 MB above what it uses after setup, so
# every request below fails at a few hundred MB at most instead of taking the machine's memory.
_CHILD = """
import resource, sys
import numpy as np, q2key

rows = 1 << 20
index = q2key.Index(4{weights})
rng = np.random.default_rng(0)
codes = rng.integers(0, 256, size=(rows, 1), dtype=np.uint8)
index.add_codes(codes)
queries = codes[:30_000].copy()
with open("/proc/self/statm") as f:
    used = int(f.read().split()[0]) * resource.getpagesize()
limit = used + (768 << 20)
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
try:
{call}
except MemoryError as e:
    print("MemoryError:", e)
    sys.exit(0)
print("no error")
sys.exit(3)
"""

_CASES = {
    "index.search": ("", "index.search(queries, k=1_000_000)"),
    "index.search filter ids": ("", "index.search(queries, k=1_000_000, filter=np.arange(rows))"),
    "index.search filter mask": ("", "index.search(queries, k=1_000_000, filter=np.ones(rows, bool))"),
    "weighted index.search": (", weights=(1.0, 2.0, 3.0)", "index.search(queries, k=1_000_000)"),
    "index.search rescore": (
        "",
        "index.search(rng.normal(size=(30_000, 4)), k=1_000, oversample=1_000, rescore=np.zeros((rows, 4)))",
    ),
    # Every row is within radius 8 (dimension 4) of every query: 30 000 × 2^20 hits (380 GB)
    # grow until refused.
    "index.range_search": ("", "index.range_search(queries, 8)"),
    "q2key.search": ("", "q2key.search(queries, codes, 1_000_000)"),
    "q2key.lee_matrix": ("", "q2key.lee_matrix(queries, codes)"),
}


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, marks=pytest.mark.slow) if c == "index.range_search" else c for c in sorted(_CASES)],
)
def test_an_output_too_large_to_allocate_raises_memory_error(case: str) -> None:
    weights, call = _CASES[case]
    script = _CHILD.format(weights=weights, call=textwrap.indent(call, "    "))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{case}: exit code {proc.returncode}\n{proc.stdout}\n{proc.stderr[-2000:]}"
    message = proc.stdout.strip()
    function = case.split(".")[1].split()[0]
    assert message.startswith(f"MemoryError: {function}: cannot allocate the "), message
    assert "output" in message, f"{case}: the message names no output: {message}"


# -- arrays written by another thread during a call --------------------------------------------------------


def _shuffled_index(rows: int, dim: int = 16) -> q2key.Index:
    """Ids are a permutation of 0..rows (not increasing with rows: the id-bitmap filter path)."""
    rng = np.random.default_rng(3)
    index = q2key.Index(dim)
    index.add_codes(rng.integers(0, 256, size=(rows, dim // 4), dtype=np.uint8), ids=rng.permutation(rows))
    return index


def _search_while_writing(
    index: q2key.Index, flt: np.ndarray, write: list[tuple[int, object]], searches: int
) -> list[BaseException]:
    """``searches`` filtered searches while another thread cycles ``flt[i] = v`` over ``write``."""
    queries = np.zeros((2, index.code_bytes), dtype=np.uint8)
    stop = threading.Event()

    def writer() -> None:
        while not stop.is_set():
            for _ in range(200):
                for i, v in write:
                    flt[i] = v
            time.sleep(0)  # lets the searching thread take the GIL back soon

    errors: list[BaseException] = []
    t = threading.Thread(target=writer, daemon=True)
    t.start()
    try:
        for _ in range(searches):
            try:
                dist, ids = index.search(queries, k=3, filter=flt)
                assert dist.shape == ids.shape and ids.shape[0] == 2
                index.range_search(queries, 1, filter=flt)
            except BaseException as e:  # PanicException derives from BaseException
                errors.append(e)
    finally:
        stop.set()
        t.join(10)
    return errors


@pytest.mark.slow
def test_filter_ids_written_during_search_never_panic() -> None:
    index = _shuffled_index(200_000)
    flt = np.arange(100_000, dtype=np.uint64)
    # A huge last id, then a small one again: the largest id read first and the ids read later differ.
    errors = _search_while_writing(index, flt, [(-1, 2**40), (-1, 99_999)], 150)
    assert not errors, f"{len(errors)} of 150 searches raised, first: {errors[0]!r}"


@pytest.mark.slow
def test_filter_mask_written_during_search_never_panics() -> None:
    index = _shuffled_index(200_000)
    flt = np.zeros(200_000, dtype=bool)
    flt[::3] = True
    raw = flt.view(np.uint8)
    stop = threading.Event()

    def writer() -> None:
        while not stop.is_set():
            raw[::5] = 7
            raw[::5] = 0

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    errors: list[BaseException] = []
    try:
        for _ in range(100):
            try:
                index.search(np.zeros((2, 4), dtype=np.uint8), k=3, filter=flt)
            except BaseException as e:
                errors.append(e)
    finally:
        stop.set()
        t.join(10)
    assert not errors, f"{len(errors)} of 100 searches raised, first: {errors[0]!r}"


# -- boolean masks are bytes --------------------------------------------------------------------------------


@pytest.mark.parametrize("weights", [None, (1.0, 1.0, 2.0)])
def test_a_mask_of_any_nonzero_bytes_allows_those_ids(weights: tuple[float, float, float] | None) -> None:
    index = q2key.Index(4, weights=weights)
    index.add_codes(np.array([[0], [1], [3], [2]], dtype=np.uint8))
    mask = np.array([0, 2, 255, 1], np.uint8).view(bool)  # numpy counts 2 and 255 as True
    _, found = index.search(np.zeros((1, 1), np.uint8), k=4, filter=mask)
    assert sorted(found[0].tolist()) == [1, 2, 3]
    _, _, hits = index.range_search(np.zeros((1, 1), np.uint8), 8, filter=mask)
    assert sorted(hits.tolist()) == [1, 2, 3]


@settings(max_examples=60, deadline=None)
@given(
    mask_bytes=hnp.arrays(np.uint8, st.integers(0, 40), elements=st.sampled_from([0, 0, 1, 2, 127, 255])),
    weighted=st.booleans(),
)
def test_a_byte_mask_filters_like_the_ids_of_its_nonzero_bytes(mask_bytes: np.ndarray, weighted: bool) -> None:
    """Law: filter=bytes.view(bool) ≡ filter=flatnonzero(bytes), for search and range_search."""
    index = q2key.Index(8, weights=(1.0, 2.0, 3.0) if weighted else None)
    codes = np.random.default_rng(len(mask_bytes)).integers(0, 256, size=(30, 2), dtype=np.uint8)
    index.add_codes(codes, ids=np.arange(30)[::-1])  # ids not increasing with rows: the keyed paths
    queries = codes[:3]
    mask, ids = mask_bytes.view(bool), np.flatnonzero(mask_bytes).astype(np.uint64)
    for a, b in zip(index.search(queries, k=7, filter=mask), index.search(queries, k=7, filter=ids)):
        assert np.array_equal(a, b)
    for a, b in zip(index.range_search(queries, 6, filter=mask), index.range_search(queries, 6, filter=ids)):
        assert np.array_equal(a, b)


# -- arrays() under concurrent removals ---------------------------------------------------------------------


def test_arrays_is_a_consistent_snapshot_during_removals() -> None:
    """arrays() compacts first; a removal landing between its compaction and its copy used to
    make it raise "rows were removed during the call; try again"."""
    rows = 500_000
    rng = np.random.default_rng(5)
    index = q2key.Index(16)
    codes = rng.integers(0, 256, size=(rows, 4), dtype=np.uint8)
    index.add_codes(codes)
    stop = threading.Event()
    writer_errors: list[BaseException] = []

    def remove_and_add() -> None:
        """Removes the oldest 50 ids and adds 50 new ones (code of id i: codes[i % rows])."""
        oldest, next_id = 0, rows
        try:
            while not stop.is_set():
                index.remove(np.arange(oldest, oldest + 50))
                new_ids = np.arange(next_id, next_id + 50)
                index.add_codes(codes[new_ids % rows], ids=new_ids)
                oldest, next_id = oldest + 50, next_id + 50
        except BaseException as e:
            writer_errors.append(e)

    t = threading.Thread(target=remove_and_add, daemon=True)
    t.start()
    calls, errors = 0, []
    deadline = time.perf_counter() + 4.0
    try:
        while time.perf_counter() < deadline:
            calls += 1
            try:
                c, k, ids = index.arrays()
            except q2key.Q2KeyError as e:
                errors.append(e)
                continue
            assert c.shape == (len(ids), 4) and len(k) == len(ids) and len(ids) in (rows - 50, rows)
            assert np.all(np.diff(ids.astype(np.int64)) == 1), "not one state of the index"
            sample = slice(None, None, 997)  # a full comparison would hold the GIL most of the time
            assert np.array_equal(c[sample], codes[ids[sample].astype(np.intp) % rows]), "codes not of their ids"
    finally:
        stop.set()
        t.join(10)
    assert not writer_errors, writer_errors[:1]
    assert not errors, f"{len(errors)} of {calls} arrays() calls raised, first: {errors[0]}"


# -- getters wait for the lock without the GIL --------------------------------------------------------------

_GETTERS: dict[str, Callable[[q2key.Index], object]] = {
    "len": len,
    "dim": lambda index: index.dim,
    "in": lambda index: 7 in index,
    "repr": repr,
    "stats": lambda index: index.stats().alive,  # the save compacts: dead rows change
    "weights": lambda index: index.weights,
    "views": lambda index: len(index.views()[2]),  # the views die at once: the save may proceed
}


@pytest.fixture(scope="module")
def big_index() -> q2key.Index:
    rng = np.random.default_rng(6)
    index = q2key.Index(256)
    index.add_codes(rng.integers(0, 256, size=(400_000, 64), dtype=np.uint8), ids=rng.permutation(400_000))
    return index


@pytest.mark.parametrize("getter", sorted(_GETTERS))
def test_a_getter_waiting_for_a_save_does_not_block_other_python_threads(
    getter: str, big_index: q2key.Index, tmp_path: Path
) -> None:
    """Thread A saves a big index (holding the write lock); the main thread calls a getter, which
    must wait for the lock; thread C, pure Python, must keep counting meanwhile."""
    index, get = big_index, _GETTERS[getter]
    stamps: list[float] = []
    stop = threading.Event()

    def count() -> None:
        while not stop.is_set():
            stamps.append(time.perf_counter())
            time.sleep(0.0005)

    counter = threading.Thread(target=count, daemon=True)
    counter.start()
    try:
        for _attempt in range(5):
            index.remove(index.arrays()[2][:10])  # the save compacts first: longer under the lock
            expected = get(index)
            saver = threading.Thread(target=index.save, args=(tmp_path / "big.q2i",))
            saver.start()
            time.sleep(0.005)  # let the saver take the lock
            t0 = time.perf_counter()
            got = get(index)
            t1 = time.perf_counter()
            saver.join(60)
            assert got == expected
            if t1 - t0 > 0.1:  # the getter really waited for the save
                break
        else:
            pytest.skip("the save never held the lock long enough to test the getter")
    finally:
        stop.set()
        counter.join(5)
    margin = max(0.02, 4 * sys.getswitchinterval())
    inside = sum(1 for s in stamps if t0 + margin < s < t1 - margin)
    assert inside >= 10, f"a Python thread ran {inside} times while {getter} waited {t1 - t0:.3f} s for a save"


# -- weights --------------------------------------------------------------------------------------------------


def test_weights_whose_largest_distance_overflows_are_refused() -> None:
    with pytest.raises(q2key.Q2KeyError, match=r"^weights: the largest distance over 3 dimensions \(3 × 1e308\)"):
        q2key.Index(3, weights=(1e308, 1e308, 1e308))
    with pytest.raises(q2key.Q2KeyError, match="weights"):
        q2key.weighted_lee(q2key.pack([0, 0, 0]), q2key.pack([1, 2, 3]), weights=(1e308, 1e308, 1e308))
    # Large but finite over the dimension: accepted, and ranked by distance, not by id.
    index = q2key.Index(4, weights=(1e300, 2e300, 3e300))
    index.add_codes(np.array([[3], [0]], dtype=np.uint8))
    dist, found = index.search(np.zeros((1, 1), np.uint8), k=2)
    assert found[0].tolist() == [1, 0] and np.isfinite(dist).all()
