"""The `q2key` command line: encode / calibrate / index from files, errors, atomic outputs, progress.

Most tests run the CLI in-process through ``q2key.cli.main([...])``; a few run ``python -m q2key``.
"""

from __future__ import annotations

import errno
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import q2key
from hypothesis import given, settings
from hypothesis import strategies as st
from q2key import _cli_commit, _cli_encode, _cli_read, _cli_write
from q2key._cli_errors import located
from q2key._cli_read import NpySource, open_source
from q2key._cli_source import rebatch
from q2key._progress import Progress
from q2key.cli import main

DIM = 48
ROWS = 1001  # not a multiple of the batch sizes used


def run(*argv: Any, tty: bool | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    rc = main([str(a) for a in argv], stdout=out, stderr=err, tty=tty)
    return rc, out.getvalue(), err.getvalue()


def assert_one_line_error(rc: int, err: str, code: int = 1, *fragments: str) -> None:
    assert rc == code, err
    assert err.startswith("q2key: error: ") and err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for f in fragments:
        assert f in err, (f, err)


def files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


@pytest.fixture
def x() -> np.ndarray:
    return np.random.default_rng(7).standard_normal((ROWS, DIM)).astype(np.float32)


@pytest.fixture
def npy(tmp_path: Path, x: np.ndarray) -> Path:
    p = tmp_path / "x.npy"
    np.save(p, x)
    return p


def load_outputs(folder: Path, prefix: str = "") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return tuple(np.load(folder / f"{prefix}{name}.npy") for name in ("codes", "keys", "transitions"))  # type: ignore[return-value]


def assert_matches(got: tuple[np.ndarray, np.ndarray, np.ndarray], enc: q2key.Encoded) -> None:
    codes, keys, transitions = got
    assert codes.dtype == np.uint8 and keys.dtype == np.uint64 and transitions.dtype == np.uint32
    np.testing.assert_array_equal(codes, enc.codes)
    np.testing.assert_array_equal(keys, enc.keys)
    np.testing.assert_array_equal(transitions, enc.transitions)


def encode_args(src: Any, folder: Path, prefix: str = "") -> list[Any]:
    return [
        "encode",
        src,
        "--codes",
        folder / f"{prefix}codes.npy",
        "--keys",
        folder / f"{prefix}keys.npy",
        "--transitions",
        folder / f"{prefix}transitions.npy",
    ]


def write_parquet(path: Path, x: np.ndarray, *, row_group_size: int = 300, name: str = "emb") -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    arr = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), x.shape[1])
    table = pa.table({"id": np.arange(len(x)), name: arr})
    pq.write_table(table, path, row_group_size=row_group_size)


# -- encode ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("batch", [1, 7, 128, 1000, 1001, 5000])
def test_encode_npy_matches_in_memory_encode(tmp_path: Path, npy: Path, x: np.ndarray, batch: int) -> None:
    rc, out, err = run(*encode_args(npy, tmp_path), "--batch-rows", batch)
    assert rc == 0, err
    assert out == "" and "encoded 1,001 vectors of dimension 48" in err
    assert_matches(load_outputs(tmp_path), q2key.encode(x))


@pytest.mark.parametrize("dtype", ["float64", "float16", "int8", ">f4"])
def test_encode_other_dtypes(tmp_path: Path, x: np.ndarray, dtype: str) -> None:
    y = (x * 20).astype(dtype) if dtype == "int8" else x.astype(dtype)
    np.save(tmp_path / "y.npy", y)
    assert run(*encode_args(tmp_path / "y.npy", tmp_path), "--batch-rows", 100, "-q")[0] == 0
    assert_matches(load_outputs(tmp_path), q2key.encode(y))


def test_encode_fortran_order_npy(tmp_path: Path, x: np.ndarray) -> None:
    np.save(tmp_path / "f.npy", np.asfortranarray(x))
    assert run(*encode_args(tmp_path / "f.npy", tmp_path), "--batch-rows", 64, "-q")[0] == 0
    assert_matches(load_outputs(tmp_path), q2key.encode(x))


def test_encode_single_output_and_threads(tmp_path: Path, npy: Path, x: np.ndarray) -> None:
    rc, _, err = run("encode", npy, "--keys", tmp_path / "k.npy", "--threads", 1, "--quiet")
    assert rc == 0 and err == ""
    assert files(tmp_path) == {"x.npy", "k.npy"}
    np.testing.assert_array_equal(np.load(tmp_path / "k.npy"), q2key.encode(x).keys)


def test_encode_empty_input(tmp_path: Path) -> None:
    np.save(tmp_path / "e.npy", np.zeros((0, 10), np.float32))
    assert run(*encode_args(tmp_path / "e.npy", tmp_path), "-q")[0] == 0
    codes, keys, transitions = load_outputs(tmp_path)
    assert codes.shape == (0, 3) and codes.dtype == np.uint8
    assert keys.shape == (0,) and keys.dtype == np.uint64 and transitions.shape == (0,)


@pytest.mark.parametrize("compressed", [True, False])
def test_encode_npz_member(tmp_path: Path, x: np.ndarray, compressed: bool) -> None:
    save = np.savez_compressed if compressed else np.savez
    save(tmp_path / "two.npz", emb=x, other=x[:5])
    save(tmp_path / "one.npz", only=x)
    enc = q2key.encode(x)
    assert run(*encode_args(tmp_path / "two.npz", tmp_path, "a"), "--column", "emb", "--batch-rows", 300)[0] == 0
    assert_matches(load_outputs(tmp_path, "a"), enc)
    assert run(*encode_args(f"{tmp_path / 'two.npz'}:emb", tmp_path, "b"), "--batch-rows", 64)[0] == 0
    assert_matches(load_outputs(tmp_path, "b"), enc)
    assert run(*encode_args(tmp_path / "one.npz", tmp_path, "c"))[0] == 0
    assert_matches(load_outputs(tmp_path, "c"), enc)
    np.savez(tmp_path / "f.npz", emb=np.asfortranarray(x))
    assert run(*encode_args(tmp_path / "f.npz", tmp_path, "d"), "--batch-rows", 100)[0] == 0
    assert_matches(load_outputs(tmp_path, "d"), enc)


def test_encode_with_thresholds_json(tmp_path: Path, npy: Path, x: np.ndarray) -> None:
    th = q2key.calibrate(x, method="per_dim")
    (tmp_path / "th.json").write_text(th.to_json())
    assert run(*encode_args(npy, tmp_path), "--thresholds", tmp_path / "th.json", "--batch-rows", 77)[0] == 0
    assert_matches(load_outputs(tmp_path), q2key.encode(x, threshold=th))
    # A global tau without a dimension works for any input.
    (tmp_path / "g.json").write_text(q2key.Thresholds.global_(0.07).to_json())
    assert run(*encode_args(npy, tmp_path, "g"), "--thresholds", tmp_path / "g.json")[0] == 0
    assert_matches(load_outputs(tmp_path, "g"), q2key.encode(x, threshold=0.07))


def test_encode_parquet_in_npy_out(tmp_path: Path, x: np.ndarray) -> None:
    write_parquet(tmp_path / "x.parquet", x, row_group_size=300)
    # Batches of 128 cross the row groups of 300: rebatched to exact sizes.
    assert run(*encode_args(tmp_path / "x.parquet", tmp_path), "--batch-rows", 128)[0] == 0
    assert_matches(load_outputs(tmp_path), q2key.encode(x))
    assert run(*encode_args(tmp_path / "x.parquet", tmp_path, "c"), "--column", "emb")[0] == 0
    assert_matches(load_outputs(tmp_path, "c"), q2key.encode(x))


def test_encode_parquet_out(tmp_path: Path, npy: Path, x: np.ndarray) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "enc.parquet"
    rc, _, err = run("encode", npy, "--codes", out, "--keys", out, "--transitions", out, "--batch-rows", 250)
    assert rc == 0, err
    table = pq.read_table(out)
    assert table.column_names == ["code", "key", "transitions"]
    assert str(table.schema.field("code").type) == f"fixed_size_binary[{DIM // 4}]"
    assert str(table.schema.field("key").type) == "uint64"
    assert str(table.schema.field("transitions").type) == "uint32"
    codes = np.frombuffer(b"".join(v.as_py() for v in table.column("code")), np.uint8).reshape(-1, DIM // 4)
    assert_matches((codes, table.column("key").to_numpy(), table.column("transitions").to_numpy()), q2key.encode(x))
    # Separate files: codes alone in Parquet, keys in .npy.
    rc, _, _ = run("encode", npy, "--codes", tmp_path / "c.parquet", "--keys", tmp_path / "k.npy")
    assert rc == 0 and pq.read_table(tmp_path / "c.parquet").column_names == ["code"]


def test_encode_arrow_ipc_in_and_out(tmp_path: Path, x: np.ndarray) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.ipc as ipc

    arr = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), DIM)
    table = pa.table({"emb": arr})
    with ipc.new_file(str(tmp_path / "x.arrow"), table.schema) as w:
        for start in range(0, ROWS, 333):
            w.write_table(table.slice(start, 333))
    with ipc.new_stream(str(tmp_path / "s.arrows"), table.schema) as w:
        w.write_table(table, max_chunksize=100)
    enc = q2key.encode(x)
    out = tmp_path / "out.arrow"
    assert run("encode", tmp_path / "x.arrow", "--codes", out, "--keys", out, "--batch-rows", 500)[0] == 0
    got = ipc.open_file(str(out)).read_all()
    np.testing.assert_array_equal(got.column("key").to_numpy(), enc.keys)
    assert run(*encode_args(tmp_path / "s.arrows", tmp_path), "--batch-rows", 256)[0] == 0
    assert_matches(load_outputs(tmp_path), enc)


# -- batches and memory ---------------------------------------------------------------------------------------


def test_npy_reader_yields_bounded_views_of_the_mapping(npy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[tuple[str, int, int]] = []  # (advice, start, length), in the order the helper thread gave them
    real = _cli_read._advise

    def spy(mm: Any, name: str, start: int, length: int) -> None:
        events.append((name, start, length))
        real(mm, name, start, length)

    monkeypatch.setattr(_cli_read, "_advise", spy)
    with open_source(str(npy)) as src:
        assert isinstance(src, NpySource) and (src.rows, src.dim) == (ROWS, DIM)
        offset, row_bytes = src._offset, DIM * 4
        sizes = []
        for i, b in enumerate(src.batches(100)):
            # A view of the file mapping (no copy), never more than a batch.
            assert not b.flags.owndata and not b.flags.writeable and b.shape[0] <= 100
            # Batch i comes only once batch i - 2 is released: never more than two batches mapped.
            assert sum(e[0] == "MADV_DONTNEED" for e in events) >= i - 1
            sizes.append(b.shape[0])
    assert sizes == [100] * 10 + [1]
    spans = [(offset + 100 * i * row_bytes, n * row_bytes) for i, n in enumerate(sizes)]
    assert [e[1:] for e in events if e[0] == "MADV_WILLNEED"] == spans  # each batch read ahead
    assert [e[1:] for e in events if e[0] == "MADV_DONTNEED"] == spans  # every batch released once, in order
    resident = peak = 0
    for name, _, _ in events:
        resident += 1 if name == "MADV_WILLNEED" else -1
        peak = max(peak, resident)
    assert peak <= 2  # the batch being encoded and the next one


def test_encoder_is_called_batch_by_batch(npy: Path, x: np.ndarray, tmp_path: Path) -> None:
    seen: list[int] = []

    def encoder(batch: np.ndarray, **kw: Any) -> q2key.Encoded:
        seen.append(batch.shape[0])
        return q2key.encode(batch, **kw)

    with open_source(str(npy)) as src:
        outputs = {"codes": str(tmp_path / "c.npy"), "keys": None, "transitions": None}
        rows = _cli_encode.encode_source(
            src, outputs, threshold=None, batch_rows=256, threads=None, progress=Progress(None), encoder=encoder
        )
    assert rows == ROWS and seen == [256, 256, 256, 233]
    np.testing.assert_array_equal(np.load(tmp_path / "c.npy"), q2key.encode(x).codes)


@given(
    sizes=st.lists(st.integers(0, 40), max_size=12),
    batch=st.integers(1, 30),
)
@settings(max_examples=60, deadline=None)
def test_rebatch_gives_exact_batches(sizes: list[int], batch: int) -> None:
    total = sum(sizes)
    data = np.arange(total * 2).reshape(total, 2)
    chunks, start = [], 0
    for s in sizes:
        chunks.append(data[start : start + s])
        start += s
    got = list(rebatch(iter(chunks), batch))
    assert [g.shape[0] for g in got[:-1]] == [batch] * (len(got) - 1)
    assert all(0 < g.shape[0] <= batch for g in got)
    np.testing.assert_array_equal(np.concatenate(got) if got else data, data)


def cli_peak_rss_growth_kib(argv: list[str], prelude: str = "") -> int:
    """How much ``q2key ARGV`` grows the peak resident set of a fresh process (KiB), after ``prelude`` ran.

    VmHWM is this process image's peak; ``ru_maxrss`` would carry over the parent's peak across exec.
    """
    script = (
        "import re\n"
        "import q2key.cli\n"
        f"{prelude}\n"
        "def hwm():\n"
        "    return int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1))\n"
        "base = hwm()\n"
        f"rc = q2key.cli.main({argv!r})\n"
        "print(base, hwm(), rc)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd="/")
    base, peak, rc = (int(v) for v in done.stdout.splitlines()[-1].split())  # the last line: after any report
    assert rc == 0, done.stderr
    return peak - base


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="VmHWM and MADV_DONTNEED: Linux")
def test_encode_peak_memory_is_bounded_by_the_batch(tmp_path: Path) -> None:
    rows, dim = 60_000, 384  # a 92 MB file, read in batches of 2 048 rows (3 MB)
    arr = np.lib.format.open_memmap(tmp_path / "big.npy", mode="w+", dtype=np.float32, shape=(rows, dim))
    rng = np.random.default_rng(0)
    for s in range(0, rows, 10_000):
        arr[s : s + 10_000] = rng.standard_normal((10_000, dim), dtype=np.float32)
    arr.flush()
    del arr
    argv = [*map(str, encode_args(tmp_path / "big.npy", tmp_path)), "--batch-rows", "2048", "-q"]
    growth = cli_peak_rss_growth_kib(argv)
    file_kib = rows * dim * 4 // 1024
    # Without releasing the mapped pages the peak would grow by the whole file (90 000 KiB); a batch is 3 072 KiB.
    assert growth < file_kib // 4, growth
    codes = np.load(tmp_path / "codes.npy", mmap_mode="r")
    assert codes.shape == (rows, dim // 4)


# -- atomic outputs -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("exc", [RuntimeError("boom"), KeyboardInterrupt()])
def test_failure_mid_stream_leaves_no_output(
    tmp_path: Path, npy: Path, monkeypatch: pytest.MonkeyPatch, exc: BaseException
) -> None:
    (tmp_path / "keys.npy").write_bytes(b"previous")  # an older output stays as it was
    calls = []

    def failing(batch: np.ndarray, **kw: Any) -> q2key.Encoded:
        calls.append(1)
        if len(calls) == 3:
            raise exc
        return q2key.encode(batch, **kw)

    monkeypatch.setattr(_cli_encode, "encode", failing)
    before = files(tmp_path)
    rc, _, err = run(*encode_args(npy, tmp_path), "--batch-rows", 100, "-q")
    assert len(calls) == 3
    if isinstance(exc, KeyboardInterrupt):
        assert rc == 130 and err == "q2key: interrupted\n"
    else:
        assert_one_line_error(rc, err, 1, "RuntimeError: boom")
    assert files(tmp_path) == before  # no output, no temporary file
    assert (tmp_path / "keys.npy").read_bytes() == b"previous"


def test_outputs_are_all_synced_before_any_is_renamed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[str] = []
    fsync, replace = os.fsync, os.replace

    def spy_fsync(fd: int) -> None:
        events.append("fsync")
        fsync(fd)

    def spy_replace(a: str, b: str) -> None:
        name = os.path.basename(b)
        events.append("rename journal" if name.startswith(_cli_commit.JOURNAL_PREFIX) else f"rename {name}")
        replace(a, b)

    monkeypatch.setattr(os, "fsync", spy_fsync)
    monkeypatch.setattr(os, "replace", spy_replace)
    with _cli_commit.Outputs() as out:
        for name in ("a", "b", "c"):
            out.new(str(tmp_path / name)).file.write(name.encode() * 3)
    # Three file fsyncs (issued together); the journal: written, synced, renamed into place, the
    # directory synced; then the renames, the directory's fsync, and the journal's removal, synced.
    journal = ["fsync", "rename journal", "fsync"]
    assert events == ["fsync"] * 3 + journal + ["rename a", "rename b", "rename c", "fsync", "fsync"]
    assert {n: (tmp_path / n).read_bytes() for n in "abc"} == {"a": b"aaa", "b": b"bbb", "c": b"ccc"}


def test_a_failed_sync_renames_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "b").write_bytes(b"previous")
    fsync, calls = os.fsync, []

    def failing(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(5, "Input/output error")
        fsync(fd)

    monkeypatch.setattr(os, "fsync", failing)
    with pytest.raises(OSError, match="Input/output error"), _cli_commit.Outputs() as out:
        for name in ("a", "b", "c"):
            out.new(str(tmp_path / name)).file.write(b"new")
    assert files(tmp_path) == {"b"} and (tmp_path / "b").read_bytes() == b"previous"


def test_sigterm_mid_stream_removes_temporary_outputs(
    tmp_path: Path, npy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    previous = signal.getsignal(signal.SIGTERM)
    calls = []

    def terminated(batch: np.ndarray, **kw: Any) -> q2key.Encoded:
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGTERM)  # handled by the CLI: raised here, between bytecodes
        return q2key.encode(batch, **kw)

    monkeypatch.setattr(_cli_encode, "encode", terminated)
    rc, _, err = run(*encode_args(npy, tmp_path), "--batch-rows", 100, "-q")
    assert rc == 143 and err == "q2key: terminated\n"
    assert files(tmp_path) == {"x.npy"}
    assert signal.getsignal(signal.SIGTERM) is previous  # the CLI's handler is gone again


def test_sigterm_to_a_running_process(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.ones((400_000, 8), np.float32))
    cmd = [sys.executable, "-m", "q2key", "encode", str(tmp_path / "x.npy"), "--codes", str(tmp_path / "c.npy")]
    proc = subprocess.Popen([*cmd, "--batch-rows", "1"], stderr=subprocess.PIPE, text=True, cwd="/")
    deadline = time.monotonic() + 30
    while not any(".tmp-" in n for n in files(tmp_path)) and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143 and err == "q2key: terminated\n"
    assert files(tmp_path) == {"x.npy"}


def test_failure_while_writing_parquet_leaves_no_output(
    tmp_path: Path, npy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("pyarrow")

    def fail(self: Any, batch: Any) -> None:
        raise OSError(28, "No space left on device", "out.parquet")

    monkeypatch.setattr(_cli_write.ArrowWriter, "append", fail)
    before = files(tmp_path)
    rc, _, err = run("encode", npy, "--codes", tmp_path / "out.parquet", "--keys", tmp_path / "k.npy")
    assert_one_line_error(rc, err, 1, "out.parquet: No space left on device")
    assert files(tmp_path) == before


def test_nan_row_is_reported_with_its_file_row(tmp_path: Path, x: np.ndarray) -> None:
    x[777, 3] = np.nan
    np.save(tmp_path / "nan.npy", x)
    before = files(tmp_path)
    rc, _, err = run(*encode_args(tmp_path / "nan.npy", tmp_path), "--batch-rows", 100)
    assert_one_line_error(rc, err, 1, "nan.npy: row 777 ", "NaN")
    assert files(tmp_path) == before


# -- errors ---------------------------------------------------------------------------------------------------


def _error_cases(tmp: Path, npy: Path) -> list[tuple[list[Any], int, str]]:
    np.save(tmp / "vec.npy", np.zeros(5, np.float32))
    np.save(tmp / "cube.npy", np.zeros((2, 3, 4), np.float32))
    np.save(tmp / "complex.npy", np.zeros((2, 3), np.complex64))
    np.save(tmp / "nodim.npy", np.zeros((4, 0), np.float32))
    np.savez(tmp / "two.npz", a=np.zeros((2, 3)), b=np.zeros((2, 3)))
    (tmp / "bad.json").write_text("{not json")
    (tmp / "th16.json").write_text(q2key.Thresholds.gaussian(16).to_json())
    (tmp / "text.txt").write_text("hello")
    (tmp / "junk.npy").write_bytes(b"\x93NUMPY garbage")
    raw = npy.read_bytes()
    (tmp / "short.npy").write_bytes(raw[: len(raw) // 2])
    np.save(tmp / "ids3.npy", np.arange(3))
    np.save(tmp / "dup.npy", np.zeros(ROWS, np.int64))
    np.save(tmp / "dup2.npy", np.where(np.arange(ROWS) == 500, 10, np.arange(ROWS)))
    np.save(tmp / "fids.npy", np.zeros(ROWS, np.float32))
    np.save(tmp / "q16.npy", np.zeros((2, 16), np.float32))
    np.save(tmp / "small100.npy", np.ones((100, DIM), np.float32))  # rescore rows for ids 0..99 only
    nan = np.ones((40, DIM), np.float32)
    nan[17, 3] = np.nan
    np.save(tmp / "nan.npy", nan)
    out = ["--codes", tmp / "o.npy"]
    return [
        (["encode", tmp / "missing.npy", *out], 1, "missing.npy: No such file or directory"),
        (["encode", npy], 1, "nothing to write"),
        (["encode", npy, "--codes", tmp / "nodir" / "c.npy"], 1, "does not exist"),
        (["encode", npy, "--codes", tmp], 1, "is a directory"),
        (["encode", npy, "--codes", npy], 1, "is the input file"),
        (["encode", npy, "--codes", tmp / "a.npy", "--keys", tmp / "a.npy"], 1, "name the same file"),
        (["encode", tmp / "vec.npy", *out], 1, "expected a 2-D array"),
        (["encode", tmp / "cube.npy", *out], 1, "expected a 2-D array"),
        (["encode", tmp / "complex.npy", *out], 1, "complex64"),
        (["encode", tmp / "nodim.npy", *out], 1, "at least one dimension"),
        (["encode", tmp / "two.npz", *out], 1, "choose one with --column"),
        (["encode", tmp / "two.npz", "--column", "c", *out], 1, "no array 'c'"),
        (["encode", npy, "--column", "c", *out], 1, "--column applies to"),
        (["encode", tmp / "text.txt", *out], 1, "unrecognised input format"),
        (["encode", tmp / "junk.npy", *out], 1, "junk.npy"),
        (["encode", tmp / "short.npy", *out], 1, "truncated"),
        (["encode", npy, *out, "--thresholds", tmp / "bad.json"], 1, "bad.json: thresholds JSON: not valid JSON"),
        (["encode", npy, *out, "--thresholds", tmp / "th16.json"], 1, "thresholds are for dimension 16"),
        (["encode", npy, *out, "--thresholds", tmp / "none.json"], 1, "none.json: No such file"),
        (["encode", npy, *out, "--batch-rows", "0"], 2, "--batch-rows: expected a positive integer"),
        (["encode", npy, *out, "--threads", "x"], 2, "--threads"),
        (["encode"], 2, "required: INPUT"),
        (["frobnicate"], 2, "invalid choice"),
        ([], 2, "required"),
        (["index"], 2, "required"),
        (["calibrate", npy], 2, "-o/--output"),
        (["calibrate", npy, "-o", tmp / "t.json", "--method", "best"], 2, "invalid choice"),
        (["calibrate", npy, "-o", tmp / "t.json", "--outer-share", "1.5"], 2, "(0, 1)"),
        (["calibrate", npy, "-o", tmp / "t.json", "--method", "fidelity", "--rows", "10"], 1, "at least 64"),
        (["index", "info", npy], 1, "not a q2key index"),
        (["index", "info", tmp / "none.q2"], 1, "none.q2: No such file"),
        (["index", "build", npy, "-o", tmp / "i.q2", "--ids", tmp / "ids3.npy"], 1, "3 ids for 1,001 vectors"),
        (["index", "build", npy, "-o", tmp / "i.q2", "--ids", tmp / "dup.npy"], 1, "dup.npy: id 0 appears twice"),
        (
            ["index", "build", npy, "-o", tmp / "i.q2", "--ids", tmp / "dup2.npy", "--batch-rows", "100"],
            1,
            "id 10 (row 500)",
        ),
        (["index", "build", npy, "-o", tmp / "i.q2", "--ids", tmp / "fids.npy"], 1, "integer array of ids"),
        (["index", "build", npy, "-o", tmp / "i.q2", "--weights", "1,2"], 1, "three numbers"),
        (["index", "build", npy, "-o", tmp / "i.q2", "--weights", "a,b,c"], 1, "three numbers"),
        (["index", "build", npy, "-o", tmp], 1, "is a directory"),
        (["index", "search", tmp / "idx.q2", tmp / "q16.npy"], 1, "q16.npy: expected vectors of dimension 48, got 16"),
        (["index", "search", tmp / "idx.q2", npy, "--rescore", tmp / "q16.npy"], 1, "dimension 16; the index holds"),
        (["index", "search", tmp / "idx.q2", npy, "-k", "0"], 2, "-k"),
        # The error names the file at fault, never an internal name or parameter.
        (["index", "search", tmp / "idx.q2", npy, "--rescore", tmp / "small100.npy"], 1, "small100.npy: "),
        (["index", "build", npy, "-o", tmp / "nodir" / "x.q2"], 1, "x.q2: directory"),
        (["calibrate", tmp / "nan.npy", "-o", tmp / "t.json"], 1, "nan.npy: row 17"),
        (["encode", tmp / "nan.npy", "--codes", tmp / "o.npy", "--batch-rows", "5"], 1, "nan.npy: row 17"),
        (["index", "build", tmp / "nan.npy", "-o", tmp / "i.q2", "--batch-rows", "5"], 1, "nan.npy: row 17"),
    ]


def test_every_error_is_one_line_with_an_exit_code(tmp_path: Path, npy: Path) -> None:
    assert run("index", "build", npy, "-o", tmp_path / "idx.q2", "-q")[0] == 0
    for argv, code, fragment in _error_cases(tmp_path, npy):
        before = files(tmp_path)
        rc, out, err = run(*argv)
        assert_one_line_error(rc, err, code, fragment)
        for leaked in ("Error:", ".tmp", "sample:", "queries:", "the batch", "vectors:"):  # internal names
            assert leaked not in err, (argv, err)
        assert files(tmp_path) == before, argv  # nothing written, no temporary file
        assert out == ""


def test_parquet_errors(tmp_path: Path, x: np.ndarray) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    fsl = pa.FixedSizeListArray.from_arrays(pa.array(x[:10].reshape(-1)), DIM)
    pq.write_table(pa.table({"a": fsl, "b": fsl, "s": pa.array(["x"] * 10)}), tmp_path / "two.parquet")
    pq.write_table(pa.table({"s": pa.array(["x"] * 10)}), tmp_path / "none.parquet")
    with_null = pa.FixedSizeListArray.from_arrays(
        pa.array(x[:10].reshape(-1)), DIM, mask=pa.array([False] * 6 + [True] * 4)
    )
    import pyarrow.ipc as ipc  # a null list read back from Parquet fails inside older pyarrow: use Arrow IPC

    with ipc.new_file(str(tmp_path / "null.arrow"), pa.schema([("a", with_null.type)])) as w:
        w.write_table(pa.table({"a": with_null}))
    (tmp_path / "broken.parquet").write_bytes(b"PAR1" + b"\0" * 20)
    out = ["--codes", tmp_path / "o.npy"]
    cases = [
        (["encode", tmp_path / "two.parquet", *out], "2 list-of-floats columns; choose one with --column"),
        (["encode", tmp_path / "none.parquet", *out], "no list-of-floats columns"),
        (["encode", tmp_path / "two.parquet", "--column", "s", *out], "column 's' is string"),
        (["encode", tmp_path / "two.parquet", "--column", "zz", *out], "no column 'zz'"),
        (["encode", tmp_path / "null.arrow", *out], "row 6 is null"),
        (["encode", tmp_path / "broken.parquet", *out], "broken.parquet: cannot read"),
    ]
    for argv, fragment in cases:
        before = files(tmp_path)
        rc, _, err = run(*argv)
        assert_one_line_error(rc, err, 1, fragment)
        assert files(tmp_path) == before
    rc, _, err = run("encode", tmp_path / "two.parquet", "--column", "b", *out, "-q")
    assert rc == 0, err


@pytest.mark.parametrize("kind", ["list_", "large_list"])
def test_variable_size_list_columns_of_equal_length_are_read(tmp_path: Path, x: np.ndarray, kind: str) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow.ipc as ipc

    t = getattr(pa, kind)(pa.float32())
    col = pa.array(list(x), type=t)  # what pandas writes for a column of arrays
    pq.write_table(pa.table({"id": np.arange(ROWS), "emb": col}), tmp_path / "x.parquet", row_group_size=300)
    with ipc.new_stream(str(tmp_path / "x.arrows"), pa.schema([("emb", t)])) as w:  # a stream: peeked, replayed
        for s in range(0, ROWS, 300):
            w.write_batch(pa.record_batch([col[s : s + 300]], names=["emb"]))
    enc = q2key.encode(x)
    for src in ("x.parquet", "x.arrows"):
        rc, _, err = run(*encode_args(tmp_path / src, tmp_path, src), "--batch-rows", 128, "-q")
        assert rc == 0, err
        assert_matches(load_outputs(tmp_path, src), enc)


def test_variable_size_list_rows_of_another_length_are_named(tmp_path: Path, x: np.ndarray) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    rows = [list(v) for v in x]
    rows[650] = rows[650][:-1]
    rows[900] = rows[900] + [0.0]
    ragged = pa.table({"emb": pa.array(rows, pa.list_(pa.float32()))})
    pq.write_table(ragged, tmp_path / "r.parquet", row_group_size=300)
    pq.write_table(pa.table({"emb": pa.array([], pa.list_(pa.float32()))}), tmp_path / "empty.parquet")
    for argv, fragment in [
        (["encode", tmp_path / "r.parquet", "--codes", tmp_path / "c.npy", "--batch-rows", 128],
         "r.parquet: column 'emb': row 650 holds 47 values, the first row 48"),
        (["encode", tmp_path / "empty.parquet", "--codes", tmp_path / "c.npy"], "no rows to tell the dimension"),
    ]:  # fmt: skip
        before = files(tmp_path)
        rc, _, err = run(*argv)
        assert_one_line_error(rc, err, 1, fragment)
        assert files(tmp_path) == before


def test_missing_pyarrow_is_a_one_line_hint(tmp_path: Path, npy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "x.parquet").write_bytes(b"PAR1 not really")
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # `import pyarrow` raises ImportError
    rc, _, err = run("encode", tmp_path / "x.parquet", "--codes", tmp_path / "c.npy")
    assert_one_line_error(rc, err, 1, "needs pyarrow", "q2key[arrow]")
    rc, _, err = run("encode", npy, "--codes", tmp_path / "c.parquet")
    assert_one_line_error(rc, err, 1, "needs pyarrow")
    assert not (tmp_path / "c.parquet").exists() and not (tmp_path / "c.npy").exists()


def test_debug_env_shows_the_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("Q2KEY_DEBUG", "1")
    with pytest.raises(FileNotFoundError):
        run("encode", tmp_path / "missing.npy", "--codes", tmp_path / "c.npy")


def test_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "encode" in capsys.readouterr().out
    assert main(["index", "search", "--help"]) == 0
    assert "--rescore" in capsys.readouterr().out


# -- subprocess -----------------------------------------------------------------------------------------------


def test_python_m_q2key_encode_and_errors(tmp_path: Path, npy: Path, x: np.ndarray) -> None:
    cmd = [sys.executable, "-m", "q2key", *map(str, encode_args(npy, tmp_path)), "--batch-rows", "300"]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd="/")
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith("encoded 1,001 vectors") and "\r" not in done.stderr  # no bar: not a TTY
    assert_matches(load_outputs(tmp_path), q2key.encode(x))
    bad = subprocess.run(
        [sys.executable, "-m", "q2key", "encode", str(tmp_path / "missing.npy"), "--codes", str(tmp_path / "c.npy")],
        capture_output=True,
        text=True,
        cwd="/",
    )
    assert_one_line_error(bad.returncode, bad.stderr, 1, "missing.npy: No such file or directory")
    usage = subprocess.run([sys.executable, "-m", "q2key", "encode"], capture_output=True, text=True, cwd="/")
    assert_one_line_error(usage.returncode, usage.stderr, 2, "INPUT")
    version = subprocess.run([sys.executable, "-m", "q2key", "version"], capture_output=True, text=True, check=True)
    assert q2key.__version__ in version.stdout


# -- index ----------------------------------------------------------------------------------------------------


def test_index_build_search_info_round_trip(tmp_path: Path, npy: Path, x: np.ndarray) -> None:
    ids = np.arange(ROWS, dtype=np.uint64) * 3 + 5
    np.save(tmp_path / "ids.npy", ids)
    th = q2key.calibrate(x, method="per_dim")
    (tmp_path / "th.json").write_text(th.to_json())
    idx_path = tmp_path / "idx.q2"
    rc, _, err = run(
        "index", "build", npy, "-o", idx_path, "--ids", tmp_path / "ids.npy", "--thresholds", tmp_path / "th.json",
        "--batch-rows", 300,
    )  # fmt: skip
    assert rc == 0 and "indexed 1,001 vectors of dimension 48" in err, err
    index = q2key.Index.load(idx_path)
    assert len(index) == ROWS and index.thresholds == th
    ref = q2key.Index(DIM, threshold=th)
    ref.add(x, ids=ids)
    np.testing.assert_array_equal(index.arrays()[0], ref.arrays()[0])

    queries = x[:37]
    np.save(tmp_path / "q.npy", queries)
    rc, _, err = run(
        "index", "search", idx_path, tmp_path / "q.npy", "-k", 5, "-o", tmp_path / "r.npz", "--batch-rows", 10
    )
    assert rc == 0, err
    with np.load(tmp_path / "r.npz") as r:
        assert sorted(r.files) == ["distances", "ids"]
        d, i = ref.search(queries, k=5)  # the CLI default, auto: float queries scored asymmetrically
        np.testing.assert_array_equal(r["distances"], d)
        np.testing.assert_array_equal(r["ids"], i)

    rc, out, _ = run("index", "search", idx_path, tmp_path / "q.npy", "-k", 2)
    lines = out.splitlines()
    assert rc == 0 and lines[0] == "query\trank\tid\tdistance" and len(lines) == 1 + 37 * 2
    d, i = ref.search(queries, k=2)  # float queries: asymmetric scoring, float32 1 − cosine
    assert d.dtype == np.float32 and lines[3] == f"1\t0\t{i[1, 0]}\t{d[1, 0]:.6f}"
    rc, out, _ = run("index", "search", idx_path, tmp_path / "q.npy", "-k", 2, "--scoring", "lee")
    d, i = ref.search(queries, k=2, scoring="lee")
    assert rc == 0 and out.splitlines()[3] == f"1\t0\t{i[1, 0]}\t{d[1, 0]}"

    rc, out, _ = run("index", "info", idx_path)
    assert rc == 0
    assert "dim         48" in out and "rows        1,001 (0 removed)" in out and "code bytes  12" in out
    assert f"({idx_path.stat().st_size:,} bytes)" in out and "per_dim" in out and "plain Lee" in out
    rc, out, _ = run("index", "info", idx_path, "--json")
    info = json.loads(out)
    assert info["rows"] == ROWS and info["dim"] == DIM and info["file_bytes"] == idx_path.stat().st_size
    assert info["thresholds"]["kind"] == "per_dim" and info["weights"] is None


def test_index_search_rescore_and_weights(tmp_path: Path, npy: Path, x: np.ndarray) -> None:
    idx_path = tmp_path / "idx.q2"
    assert run("index", "build", npy, "-o", idx_path, "--weights", "1,2,3", "-q")[0] == 0
    ref = q2key.Index(DIM, weights=(1, 2, 3))
    ref.add(x)
    rc, out, _ = run("index", "info", idx_path)
    assert rc == 0 and "w_mag 1, w_sign 2, w_both 3" in out
    np.save(tmp_path / "q.npy", x[:20])
    args = ["index", "search", idx_path, tmp_path / "q.npy", "-k", 4, "-o", tmp_path / "r.npz", "-q"]
    assert run(*args)[0] == 0
    with np.load(tmp_path / "r.npz") as r:
        d, i = ref.search(x[:20], k=4)
        assert r["distances"].dtype == np.float64
        np.testing.assert_array_equal(r["ids"], i)
        np.testing.assert_array_equal(r["distances"], d)
    assert run(*args, "--rescore", npy, "--oversample", 3)[0] == 0
    with np.load(tmp_path / "r.npz") as r:
        d, i = ref.search(x[:20], k=4, rescore=x, oversample=3, scoring="lee")
        np.testing.assert_array_equal(r["ids"], i)
        np.testing.assert_allclose(r["distances"], d)
        assert (r["ids"][:, 0] == np.arange(20)).all()


def test_index_build_from_parquet(tmp_path: Path, x: np.ndarray) -> None:
    write_parquet(tmp_path / "x.parquet", x)
    assert run("index", "build", tmp_path / "x.parquet", "-o", tmp_path / "i.q2", "--batch-rows", 200, "-q")[0] == 0
    index = q2key.Index.load(tmp_path / "i.q2")
    np.testing.assert_array_equal(index.arrays()[0], q2key.encode(x).codes)


def test_index_save_failure_names_the_output_not_its_temporary_file(
    tmp_path: Path, npy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(self: q2key.Index, path: str) -> None:  # what the Rust writer raises
        temp = f"{path}.tmp-1-0"
        err = PermissionError(f"{path}: cannot create the temporary file {temp}: Permission denied (os error 13)")
        err.errno = errno.EACCES
        raise err

    monkeypatch.setattr(q2key.Index, "save", fail)
    rc, _, err = run("index", "build", npy, "-o", tmp_path / "i.q2", "-q")
    assert_one_line_error(rc, err, 1, f"{tmp_path / 'i.q2'}: cannot write the index (Permission denied)")
    assert ".tmp" not in err and "Error" not in err


def test_index_build_failure_leaves_no_file(tmp_path: Path, x: np.ndarray) -> None:
    x[950] = np.inf
    np.save(tmp_path / "x.npy", x)
    rc, _, err = run("index", "build", tmp_path / "x.npy", "-o", tmp_path / "i.q2", "--batch-rows", 100)
    assert_one_line_error(rc, err, 1, "x.npy: row 950 ")
    assert files(tmp_path) == {"x.npy"}


# -- calibrate ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["equiprobable", "per_dim", "fidelity"])
def test_calibrate_writes_json_and_prints_report(tmp_path: Path, npy: Path, x: np.ndarray, method: str) -> None:
    rc, out, err = run("calibrate", npy, "--method", method, "-o", tmp_path / "th.json")
    assert rc == 0, err
    th = q2key.calibrate(x, method=method)  # type: ignore[arg-type]
    assert q2key.Thresholds.from_json((tmp_path / "th.json").read_text()) == th
    assert str(th.report) in out and "wrote" in out and files(tmp_path) == {"x.npy", "th.json"}


def reservoir_thresholds(x: np.ndarray, rows: int, seed: int, **options: Any) -> q2key.Thresholds:
    """What ``calibrate --rows ROWS --seed SEED`` must fit: ``q2key.calibrate`` on the reservoir sample."""
    cal = q2key.Calibrator(x.shape[1], reservoir=min(rows, len(x)), seed=seed)
    cal.update(x)
    return cal.thresholds(**options)


def test_calibrate_row_samples(tmp_path: Path, npy: Path, x: np.ndarray) -> None:
    rc, out, _ = run("calibrate", npy, "--method", "per_dim", "--rows", 200, "-o", tmp_path / "a.json")
    assert rc == 0 and "200 sample rows" in out
    expected = reservoir_thresholds(x, 200, 0, method="per_dim")
    assert q2key.Thresholds.from_json((tmp_path / "a.json").read_text()) == expected
    rc, _, _ = run("calibrate", npy, "--method", "per_dim", "--rows", 200, "--seed", 3, "-o", tmp_path / "b.json")
    expected = reservoir_thresholds(x, 200, 3, method="per_dim")
    assert rc == 0 and q2key.Thresholds.from_json((tmp_path / "b.json").read_text()) == expected
    # The same sample streamed out of a .npz member.
    np.savez_compressed(tmp_path / "x.npz", x=x)
    rc, _, _ = run(
        "calibrate", tmp_path / "x.npz", "--method", "per_dim", "--rows", 200, "--seed", 3, "-o", tmp_path / "c.json"
    )
    assert rc == 0 and (tmp_path / "c.json").read_text() == (tmp_path / "b.json").read_text()
    # More rows than the file holds: all of them.
    rc, out, _ = run("calibrate", npy, "--rows", 10**6, "--seed", 1, "-o", tmp_path / "d.json")
    assert rc == 0 and "1001 sample rows" in out


def test_calibrate_from_parquet(tmp_path: Path, x: np.ndarray) -> None:
    write_parquet(tmp_path / "x.parquet", x)
    rc, _, _ = run(
        "calibrate",
        tmp_path / "x.parquet",
        "--method",
        "per_dim",
        "--rows",
        500,
        "--seed",
        2,
        "-o",
        tmp_path / "t.json",
    )
    expected = reservoir_thresholds(x, 500, 2, method="per_dim")
    assert rc == 0 and q2key.Thresholds.from_json((tmp_path / "t.json").read_text()) == expected


def test_calibrate_plot(tmp_path: Path, npy: Path) -> None:
    pytest.importorskip("q2key.plot")
    pytest.importorskip("matplotlib")
    rc, _, err = run("calibrate", npy, "--method", "per_dim", "-o", tmp_path / "th.json", "--plot", tmp_path / "r.png")
    assert rc == 0, err
    assert (tmp_path / "r.png").read_bytes().startswith(b"\x89PNG")
    assert files(tmp_path) == {"x.npy", "th.json", "r.png"}
    rc, _, err = run("calibrate", npy, "-o", tmp_path / "t2.json", "--plot", tmp_path / "r.nope")
    assert_one_line_error(rc, err, 1, "nope")
    assert files(tmp_path) == {"x.npy", "th.json", "r.png"}  # neither the JSON nor the plot


def test_calibrate_plot_without_the_plot_module(tmp_path: Path, npy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "q2key.plot", None)
    monkeypatch.delattr(q2key, "plot", raising=False)
    rc, _, err = run("calibrate", npy, "-o", tmp_path / "th.json", "--plot", tmp_path / "r.png")
    assert_one_line_error(rc, err, 1, "--plot")
    assert files(tmp_path) == {"x.npy"}


# -- progress -------------------------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_progress_bar_rate_limits_and_reports_rate_and_eta() -> None:
    clock, stream = FakeClock(), io.StringIO()
    bar = Progress(1000, label="encode", stream=stream, enabled=True, clock=clock)
    clock.t = 0.5
    bar.update(100)
    for _ in range(50):  # 50 updates within 0.05 s: no redraw
        clock.t += 0.001
        bar.update(1)
    assert bar.draws == 1
    first = stream.getvalue()
    assert first.startswith("\rencode") and "100/1,000 rows" in first and "200 rows/s" in first
    assert "ETA 0:04" in first  # 900 rows left at 200 rows/s
    clock.t = 2.0
    bar.update(850)
    assert bar.draws == 2 and "1,000/1,000 rows" in stream.getvalue()
    bar.close()
    assert stream.getvalue().endswith("\n") and bar.draws == 3
    assert "\n" not in stream.getvalue()[:-1]  # one line, redrawn in place


def test_progress_bar_unknown_total_and_disabled() -> None:
    stream = io.StringIO()
    bar = Progress(None, stream=stream, enabled=True, clock=FakeClock())
    bar.update(5)
    assert "5 rows" in stream.getvalue() and "ETA" not in stream.getvalue()
    quiet = io.StringIO()
    off = Progress(10, stream=quiet)  # StringIO is not a TTY
    off.update(10)
    off.close()
    assert quiet.getvalue() == "" and off.done == 10


def test_cli_progress_only_on_a_tty_and_not_quiet(tmp_path: Path, npy: Path) -> None:
    rc, _, err = run(*encode_args(npy, tmp_path), "--batch-rows", 100, tty=True)
    assert rc == 0 and err.startswith("\rencode") and "1,001/1,001 rows" in err and "rows/s" in err
    assert err.splitlines()[-1].startswith("encoded 1,001 vectors")
    rc, _, err = run(*encode_args(npy, tmp_path), "--batch-rows", 100, "--quiet", tty=True)
    assert rc == 0 and err == ""
    rc, _, err = run(*encode_args(npy, tmp_path), "--batch-rows", 100)  # a StringIO is no TTY
    assert rc == 0 and "\r" not in err
    rc, _, err = run("index", "build", npy, "-o", tmp_path / "i.q2", tty=True)
    assert rc == 0 and err.startswith("\rindex")


def drawn_lines(stream_text: str) -> list[str]:
    """Every state a progress bar drew (each redraw starts with a carriage return)."""
    return [seg.rstrip("\n") for seg in stream_text.split("\r") if seg.strip()]


@pytest.mark.parametrize("columns", [1, 8, 20, 40, 80, 120])
@pytest.mark.parametrize("total", [300_000, 123_456_789, None])
def test_progress_line_fits_the_terminal(columns: int, total: int | None) -> None:
    clock, stream = FakeClock(), io.StringIO()
    bar = Progress(total, label="calibrate", stream=stream, enabled=True, clock=clock, columns=columns)
    for _ in range(30):
        clock.t += 0.37
        bar.update(9_999)
    bar.close()
    lines = drawn_lines(stream.getvalue())
    assert len(lines) == 31
    assert all(len(line) < columns or (columns == 1 and len(line) == 1) for line in lines), lines
    if total is not None and columns >= 8:
        assert all("%" in line for line in lines), lines  # narrowed down to the percentage, never past it
    if columns == 120:
        assert all("rows/s" in line for line in lines) and ("[" in lines[0]) == (total is not None)


@pytest.mark.parametrize("columns", [40, 80, 120])
def test_cli_progress_fits_the_terminal_width(
    tmp_path: Path, npy: Path, monkeypatch: pytest.MonkeyPatch, columns: int
) -> None:
    monkeypatch.setenv("COLUMNS", str(columns))
    rc, _, err = run(*encode_args(npy, tmp_path), "--batch-rows", 100, tty=True)
    assert rc == 0
    *bar, summary = err.split("\n")[:-1]
    assert summary.startswith("encoded")
    lines = drawn_lines("\n".join(bar))
    assert lines and all(len(line) < columns for line in lines), lines


@pytest.mark.parametrize(
    "argv",
    [["encode", "x.npy"], ["calibrate", "x.npy", "-o", "t.json"], ["index", "build", "x.npy", "-o", "i.q2"],
     ["index", "search", "i.q2", "q.npy"], ["index", "info", "i.q2"], ["demo"], ["version"]],
)  # fmt: skip
def test_every_command_names_the_function_that_runs_it(argv: list[str]) -> None:
    from q2key.cli import build_parser

    args = build_parser().parse_args(argv)
    assert callable(args.func) and args.func.__name__.startswith("_")
    assert not hasattr(args, "run")  # no dispatch on command strings


def test_version_in_process() -> None:
    rc, out, _ = run("version")
    assert rc == 0 and out.startswith(f"q2key {q2key.__version__} (")


def test_api_errors_are_restated_about_the_file_from_their_attributes() -> None:
    """The command line reads ``.arg`` and ``.row`` of an error about a batch, not its message."""
    nan = q2key.NonFiniteError("row 3 has a non-finite value (NaN) at column 35; inputs must be finite", arg="x", row=3)
    assert (
        str(located(nan, "v.npy", 100))
        == "v.npy: row 103 has a non-finite value (NaN) at column 35; inputs must be finite"
    )
    again = q2key.Q2KeyError("id 6 appears twice in the batch (again at row 2)", arg="ids", row=2)
    assert str(located(again, "ids.npy", 40)) == "ids.npy: id 6 appears twice (again at row 42)"
    stored = q2key.Q2KeyError("id 7 (row 3 of the batch) is already in the index", arg="ids", row=3)
    assert str(located(stored, "ids.npy", 40)) == "ids.npy: id 7 (row 43) is already in the index"
    # Only the row the error is about moves; a number that merely follows "row" elsewhere does not.
    first = q2key.Q2KeyError("row 35 of 36 and row 3 disagree", arg="x", row=3)
    assert str(located(first, "v.npy", 10)) == "v.npy: row 35 of 36 and row 13 disagree"
    # Without .arg the message is kept whole: only the parameter the error names is the batch's.
    both = q2key.Q2KeyError("token, attention_mask: give one of them, not both")
    assert str(located(both, "v.npy", 10)) == "v.npy: token, attention_mask: give one of them, not both"
