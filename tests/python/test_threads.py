"""`threads=`: at most 256 (a Q2KeyError naming `threads`, before any thread starts), and calls
with many different thread counts leave a bounded number of threads alive."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import q2key

MAX_THREADS = 256


@pytest.mark.parametrize("threads", [MAX_THREADS + 1, 2**40])
def test_threads_above_the_cap_raise_quickly(threads: int) -> None:
    x = np.ones((1, 8), np.float32)
    started = time.monotonic()
    with pytest.raises(q2key.Q2KeyError, match=rf"threads.*at most {MAX_THREADS}"):
        q2key.encode(x, threads=threads)
    with pytest.raises(q2key.Q2KeyError, match="threads"):
        q2key.search(np.zeros((1, 2), np.uint8), np.zeros((3, 2), np.uint8), 1, threads=threads)
    assert time.monotonic() - started < 5


def test_threads_at_the_cap_runs() -> None:
    x = np.random.default_rng(0).normal(size=(1, 8))
    assert np.array_equal(q2key.encode(x, threads=MAX_THREADS).codes, q2key.encode(x).codes)


SCRIPT = textwrap.dedent(
    """
    import os
    import sys
    import time
    import numpy as np
    import q2key

    x = np.random.default_rng(1).normal(size=(20_000, 8)).astype(np.float32)
    want = q2key.encode(x)
    try:
        q2key.encode(x[:1], threads=2**63)
    except q2key.Q2KeyError as e:
        print("error:", e)
    for n in range(1, 101):
        got = q2key.encode(x, threads=n)
        assert np.array_equal(got.codes, want.codes) and np.array_equal(got.keys, want.keys), n
    # Dropped pools' threads exit asynchronously: give them a moment.
    for _ in range(200):
        live = len(os.listdir("/proc/self/task"))
        if live <= int(sys.argv[1]):
            break
        time.sleep(0.05)
    print("threads:", live)
    """
)


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads through /proc (Linux)")
def test_many_thread_counts_leave_a_bounded_number_of_threads(tmp_path: Path) -> None:
    script = tmp_path / "threads_script.py"
    script.write_text(SCRIPT)
    # The idle pools (at most 256 threads), the global pool and the interpreter's own;
    # each of threads=1..100 cached forever was 5 050.
    bound = MAX_THREADS + 64
    proc = subprocess.run([sys.executable, str(script), str(bound)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = dict(line.split(": ", 1) for line in proc.stdout.splitlines())
    assert "threads" in lines["error"] and str(MAX_THREADS) in lines["error"]
    assert int(lines["threads"]) <= bound, proc.stdout
