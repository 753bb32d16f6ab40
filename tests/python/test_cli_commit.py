"""Crash safety of the files q2key writes (issue 10, items 8–10).

- ``q2key encode``'s outputs are committed through a roll-forward journal: killed at any rename
  (or at a random moment) they are all old or all new, or a journal is left that the next q2key
  command completes, saying so;
- temporary files of writers that died are removed by a later command or ``Index.save``, never
  those of a live writer;
- ``q2key index info`` reads the index without mapping it, so an index truncated or rewritten in
  place meanwhile is an error, never a SIGBUS.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import q2key
from q2key import _cli_commit
from q2key._cli_journal import JOURNAL_PREFIX, recover_interrupted_writes, remove_stale_temps
from test_cli import files, run

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="flock, SIGKILL and os._exit in subprocesses")

DIM, ROWS = 16, 2000
OUTPUTS = ("codes", "keys", "transitions")

# Runs the CLI with os.replace ending the process (as SIGKILL would) at its k-th call.
KILL_AT_RENAME = """
import os, sys
k, count, real = int(sys.argv[1]), [0], os.replace
def replace(a, b):
    count[0] += 1
    if count[0] == k:
        os._exit(77)
    real(a, b)
os.replace = replace
from q2key.cli import main
sys.exit(main(sys.argv[2:]))
"""

# Creates a temporary file named after its own pid, locks it as a writer does, and waits.
HOLD_TEMP = """
import fcntl, os, sys, time
path = sys.argv[1].format(pid=os.getpid())
fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL)
os.write(fd, b"partial output")
fcntl.flock(fd, fcntl.LOCK_EX)
print(path, flush=True)
time.sleep(120)
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), *sys.path])}


def _encode_argv(src: Path, folder: Path) -> list[str]:
    argv = ["encode", str(src), "-q"]
    for name in OUTPUTS:
        argv += [f"--{name}", str(folder / f"{name}.npy")]
    return argv


def _expected(x: np.ndarray) -> tuple[np.ndarray, ...]:
    enc = q2key.encode(x)
    return enc.codes, enc.keys, enc.transitions


def _state(folder: Path, old: tuple[np.ndarray, ...], new: tuple[np.ndarray, ...]) -> str:
    """``old``, ``new`` or ``mixed``: which run each output comes from."""
    seen = set()
    for name, o, n in zip(OUTPUTS, old, new):
        got = np.load(folder / f"{name}.npy")
        if got.shape == o.shape and np.array_equal(got, o):
            seen.add("old")
        elif got.shape == n.shape and np.array_equal(got, n):
            seen.add("new")
        else:
            seen.add("garbage")
    return seen.pop() if len(seen) == 1 else "mixed"


@pytest.fixture
def two_inputs(tmp_path: Path) -> tuple[Path, Path, tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    rng = np.random.default_rng(3)
    x_old = rng.standard_normal((ROWS, DIM)).astype(np.float32)
    x_new = rng.standard_normal((ROWS, DIM)).astype(np.float32)
    np.save(tmp_path / "old.npy", x_old)
    np.save(tmp_path / "new.npy", x_new)
    out = tmp_path / "out"
    out.mkdir()
    return tmp_path / "old.npy", tmp_path / "new.npy", _expected(x_old), _expected(x_new)


def _settle(folder: Path, old: tuple[np.ndarray, ...], new: tuple[np.ndarray, ...]) -> tuple[str, str, list[str]]:
    """The state after an interruption, then after the next command's recovery (and what it said)."""
    before = _state(folder, old, new)
    said = recover_interrupted_writes(str(folder / "codes.npy"))
    for name in OUTPUTS:
        remove_stale_temps(str(folder / f"{name}.npy"))
    after = _state(folder, old, new)
    assert files(folder) == {f"{n}.npy" for n in OUTPUTS}, "temporary files or journals left behind"
    return before, after, said


def test_killed_at_every_rename_outputs_are_all_old_or_all_new(two_inputs: Any, tmp_path: Path) -> None:
    src_old, src_new, old, new = two_inputs
    folder = tmp_path / "out"
    seen = []
    for k in range(1, 20):
        assert run(*_encode_argv(src_old, folder))[0] == 0
        p = subprocess.run(
            [sys.executable, "-c", KILL_AT_RENAME, str(k), *_encode_argv(src_new, folder)],
            env=_env(),
            capture_output=True,
            text=True,
        )
        if p.returncode == 0:
            assert _state(folder, old, new) == "new" and files(folder) == {f"{n}.npy" for n in OUTPUTS}
            break
        assert p.returncode == 77, p.stderr
        journal = any(n.startswith(JOURNAL_PREFIX) for n in files(folder))
        before, after, said = _settle(folder, old, new)
        seen.append((k, before, after))
        assert after in ("old", "new"), (k, before)
        if before == "mixed" or journal:
            assert after == "new" and len(said) == 1 and "completed the interrupted write of run" in said[0], said
    else:
        pytest.fail("the run never completed")
    # One rename of the journal, then one per output: a kill at the 2nd, 3rd and 4th leaves a journal.
    assert [k for k, _, _ in seen] == [1, 2, 3, 4], seen
    assert [b for _, b, _ in seen] == ["old", "old", "mixed", "mixed"], seen
    assert [a for _, _, a in seen] == ["old", "new", "new", "new"], seen


def test_the_next_command_completes_an_interrupted_write_and_says_so(two_inputs: Any, tmp_path: Path) -> None:
    src_old, src_new, old, new = two_inputs
    folder = tmp_path / "out"
    assert run(*_encode_argv(src_old, folder))[0] == 0
    p = subprocess.run(
        [sys.executable, "-c", KILL_AT_RENAME, "3", *_encode_argv(src_new, folder)], env=_env(), capture_output=True
    )
    assert p.returncode == 77 and _state(folder, old, new) == "mixed"
    # Any command reading one of the outputs first completes the run that wrote it.
    q = subprocess.run(
        [sys.executable, "-m", "q2key", "encode", str(folder / "codes.npy"), "--keys", str(tmp_path / "k2.npy"), "-q"],
        env=_env(),
        capture_output=True,
        text=True,
    )
    assert q.returncode == 0, q.stderr
    assert q.stderr.startswith("q2key: completed the interrupted write of run "), q.stderr
    assert _state(folder, old, new) == "new"
    assert not any(n.startswith(JOURNAL_PREFIX) or ".tmp-" in n for n in files(folder))


@pytest.mark.slow
def test_random_sigkills_leave_all_old_or_all_new(two_inputs: Any, tmp_path: Path) -> None:
    src_old, src_new, old, new = two_inputs
    folder = tmp_path / "out"
    start = time.monotonic()
    assert run(*_encode_argv(src_new, folder))[0] == 0
    p = subprocess.run([sys.executable, "-m", "q2key", *_encode_argv(src_new, folder)], env=_env())
    assert p.returncode == 0
    duration = time.monotonic() - start
    rng = random.Random(10)
    outcomes = []
    for _ in range(20):
        assert run(*_encode_argv(src_old, folder))[0] == 0
        proc = subprocess.Popen([sys.executable, "-m", "q2key", *_encode_argv(src_new, folder)], env=_env())
        time.sleep(rng.uniform(0, duration))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        before, after, _ = _settle(folder, old, new)
        outcomes.append((before, after))
        assert after in ("old", "new") and (before != "mixed" or after == "new"), outcomes
    assert {a for _, a in outcomes} <= {"old", "new"}


def test_ctrl_c_between_renames_still_commits_everything(
    two_inputs: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src_old, src_new, old, new = two_inputs
    folder = tmp_path / "out"
    assert run(*_encode_argv(src_old, folder))[0] == 0
    real, calls = os.replace, []

    def interrupted(a: str, b: str) -> None:
        calls.append(b)
        real(a, b)
        if len(calls) == 2:  # the journal and the first output are in place
            raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    rc, _, err = run(*_encode_argv(src_new, folder))
    assert rc == 130 and err == "q2key: interrupted\n"
    assert _state(folder, old, new) == "new"
    assert files(folder) == {f"{n}.npy" for n in OUTPUTS}


def test_parquet_outputs_share_the_run_id(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    np.save(tmp_path / "x.npy", np.random.default_rng(1).standard_normal((50, 8)).astype(np.float32))
    runs = []
    for _ in range(2):
        rc, _, err = run(
            "encode", tmp_path / "x.npy", "--codes", tmp_path / "c.parquet", "--keys", tmp_path / "k.arrow"
        )
        assert rc == 0, err
        import pyarrow.ipc as ipc

        with ipc.open_file(str(tmp_path / "k.arrow")) as reader:
            arrow_meta = reader.schema.metadata
        parquet_meta = pq.read_schema(tmp_path / "c.parquet").metadata
        run_id = parquet_meta[_cli_commit.RUN_ID_KEY.encode()]
        assert arrow_meta[_cli_commit.RUN_ID_KEY.encode()] == run_id
        runs.append(run_id)
    assert runs[0] != runs[1]


def _hold(template: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD_TEMP, template], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def _live_and_dead(template: str) -> tuple[subprocess.Popen[str], str, str]:
    live, live_path = _hold(template)
    dead, dead_path = _hold(template)
    dead.kill()
    dead.wait()
    return live, live_path, dead_path


def test_cli_removes_temporary_files_of_dead_writers_only(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.ones((10, 8), np.float32))
    live, live_path, dead_path = _live_and_dead(str(tmp_path / ".codes.npy.tmp-{pid}-0123abcd"))
    try:
        other = tmp_path / ".other.npy.tmp-1-00"  # another target's: not looked at
        other.write_bytes(b"x")
        rc, _, err = run("encode", tmp_path / "x.npy", "--codes", tmp_path / "codes.npy", "-q")
        assert rc == 0, err
        assert os.path.exists(live_path) and not os.path.exists(dead_path) and other.exists()
    finally:
        live.kill()
        live.wait()
    assert remove_stale_temps(str(tmp_path / "codes.npy")) == 1  # now that its writer is gone


def test_killed_cli_run_leaves_a_temp_the_next_run_removes(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.ones((300_000, 8), np.float32))
    cmd = [sys.executable, "-m", "q2key", "encode", str(tmp_path / "x.npy"), "--codes", str(tmp_path / "c.npy")]
    proc = subprocess.Popen([*cmd, "--batch-rows", "1"], env=_env())
    deadline = time.monotonic() + 30
    while not any(".tmp-" in n for n in files(tmp_path)) and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    assert any(n.startswith(".c.npy.tmp-") for n in files(tmp_path))
    rc, _, err = run("encode", tmp_path / "x.npy", "--codes", tmp_path / "c.npy", "-q", "--batch-rows", 100_000)
    assert rc == 0, err
    assert files(tmp_path) == {"x.npy", "c.npy"}


def test_index_save_removes_temporary_files_of_dead_writers_only(tmp_path: Path) -> None:
    path = tmp_path / "idx.q2k"
    live, live_path, dead_path = _live_and_dead(str(tmp_path / "idx.q2k.tmp-{pid}-0"))
    try:
        index = q2key.Index(8)
        index.add(np.ones((3, 8), np.float32))
        index.save(path)
        assert os.path.exists(live_path) and not os.path.exists(dead_path)
        assert len(q2key.Index.load(path)) == 3
    finally:
        live.kill()
        live.wait()
    q2key.Index(8).save(path)
    assert files(tmp_path) == {"idx.q2k"}


def test_index_info_reads_without_mapping(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "idx.q2k"
    index = q2key.Index(8)
    index.add(np.ones((3, 8), np.float32))
    index.save(path)
    loads: list[bool] = []
    real = q2key.Index.load.__func__  # type: ignore[attr-defined]

    def spy(cls: Any, p: Any, *, mmap: bool = False) -> q2key.Index:
        loads.append(mmap)
        return real(cls, p, mmap=mmap)  # type: ignore[no-any-return]

    monkeypatch.setattr(q2key.Index, "load", classmethod(spy))
    rc, out, err = run("index", "info", path)
    assert rc == 0 and "rows        3" in out, err
    assert loads == [False]


# Rewrites the index in place (truncate, then write back) until killed: what `cp other.q2 idx.q2` does.
REWRITE_IN_PLACE = """
import sys
path, blobs = sys.argv[1], [open(p, "rb").read() for p in sys.argv[2:]]
while True:
    for blob in blobs:
        with open(path, "r+b") as f:
            f.truncate(0)
            f.write(blob)
"""


@pytest.mark.slow
def test_index_info_survives_an_index_rewritten_in_place(tmp_path: Path) -> None:
    big, small = tmp_path / "big.q2k", tmp_path / "small.q2k"
    index = q2key.Index(64)
    index.add(np.random.default_rng(0).standard_normal((40_000, 64)).astype(np.float32))
    index.save(big)
    q2key.Index(64).save(small)
    target = tmp_path / "idx.q2k"
    target.write_bytes(big.read_bytes())
    writer = subprocess.Popen([sys.executable, "-c", REWRITE_IN_PLACE, str(target), str(big), str(small)])
    codes = []
    try:
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline and len(codes) < 15:
            p = subprocess.run(
                [sys.executable, "-m", "q2key", "index", "info", str(target)], capture_output=True, text=True
            )
            codes.append(p.returncode)
            assert p.returncode in (0, 1), (p.returncode, p.stderr)  # -7 would be SIGBUS
            if p.returncode == 1:
                assert p.stderr.startswith("q2key: error: ") and "Traceback" not in p.stderr, p.stderr
    finally:
        writer.kill()
        writer.wait()
    assert len(codes) >= 3, codes
