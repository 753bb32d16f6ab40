"""`q2key encode` of a .npy file vs in-memory `q2key.encode`, and the CLI's peak memory.

On a CLI_ROWS × 384 float32 .npy file in /tmp (1 000 000 rows, 1.5 GB; Q2KEY_BENCH_SMOKE=1: 20 000),
written the way ``np.save`` writes it (and, for ``cli-npy-map-written``, the same rows written
through a memory map, which leaves them in 4 KiB page-cache pages):

- ``in-memory``: ``q2key.encode(x)`` of the same array loaded with ``np.load`` (all threads);
- ``cli-npy``: ``q2key.cli.main(["encode", FILE, "--codes", …, "--keys", …, "--transitions", …])``
  in-process: memory-mapped input in batches, three .npy outputs streamed, fsynced and renamed
  (into new files: the previous round's outputs are removed, untimed, before each round, and one
  in-memory encode is timed there too, so the ratio is also given from interleaved runs);
- ``cli-subprocess``: the same as ``python -m q2key encode`` in a child process (one round), whose
  peak resident set (``VmHWM``: ``ru_maxrss`` would include the parent's peak inherited across
  exec) is compared with one input batch and the outputs.

Both timings read a file that is in the page cache (it was just written); the CLI's includes
writing 108 bytes per row of output and the fsyncs. Targets (issue 5): CLI throughput ≥ 80 % of
the in-memory throughput; peak memory < 2 × one batch + the outputs.

    cd /tmp && python -m pytest /work/main/benches/python/test_cli_bench.py --benchmark-only -s
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import q2key
from bench_common import RESULTS, SMOKE, fmt, record
from q2key._cli_io import default_batch_rows
from q2key.cli import main

CLI_ROWS = 20_000 if SMOKE else 1_000_000
CLI_DIM = 384
ROUNDS = 1 if SMOKE else 7
GROUP = "cli-encode"
#: Bytes of output per row: codes (ceil(384 / 4)) + key (8) + transition count (4).
OUT_BYTES_PER_ROW = (CLI_DIM + 3) // 4 + 8 + 4


def _write_rows(path: Path, *, through_a_map: bool) -> Path:
    """A CLI_ROWS × 384 float32 .npy of standard normal rows, written in chunks (never whole in memory).

    ``through_a_map=False`` writes it the way ``np.save`` does (``write`` calls). On Linux ≥ 6.16
    (ext4; XFS earlier) the page cache then holds the file in large folios, which a read-only
    mapping maps 2 MiB at a time; a file written through a memory map stays in 4 KiB pages,
    each mapped by its own page fault (the slow case, also measured).
    """
    rng = np.random.default_rng(384)
    chunks = ((s, min(s + 100_000, CLI_ROWS)) for s in range(0, CLI_ROWS, 100_000))
    if through_a_map:
        arr = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(CLI_ROWS, CLI_DIM))
        for start, stop in chunks:
            arr[start:stop] = rng.standard_normal((stop - start, CLI_DIM), dtype=np.float32)
        arr.flush()
        del arr
    else:
        with open(path, "wb") as f:
            header = {"descr": "<f4", "fortran_order": False, "shape": (CLI_ROWS, CLI_DIM)}
            np.lib.format.write_array_header_1_0(f, header)
            for start, stop in chunks:
                f.write(rng.standard_normal((stop - start, CLI_DIM), dtype=np.float32).data)
    with open(path, "rb") as f:  # on disk before timing: its writeback would otherwise slow the outputs' fsync
        os.fsync(f.fileno())
    return path


@pytest.fixture(scope="module")
def cli_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The input, written like ``np.save`` writes (the same rows as ``loaded``)."""
    return _write_rows(tmp_path_factory.mktemp("cli-bench") / f"x-{CLI_ROWS}x{CLI_DIM}.npy", through_a_map=False)


@pytest.fixture(scope="module")
def cli_file_mapped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same rows written through a memory map (``np.lib.format.open_memmap``)."""
    return _write_rows(tmp_path_factory.mktemp("cli-bench") / f"m-{CLI_ROWS}x{CLI_DIM}.npy", through_a_map=True)


@pytest.fixture(scope="module")
def loaded(cli_file: Path) -> np.ndarray:
    """The same rows in memory (``np.load``)."""
    return np.load(cli_file)


def _argv(src: Path, out: Path) -> list[str]:
    return [
        "encode",
        str(src),
        "--codes",
        str(out / "codes.npy"),
        "--keys",
        str(out / "keys.npy"),
        "--transitions",
        str(out / "transitions.npy"),
        "--quiet",
    ]


def test_cli_encode_in_memory(benchmark: Any, loaded: np.ndarray) -> None:
    benchmark.group = GROUP
    benchmark.extra_info.update(rows=CLI_ROWS, dim=CLI_DIM)
    enc = benchmark.pedantic(lambda: q2key.encode(loaded), rounds=ROUNDS, iterations=1, warmup_rounds=1)
    assert enc.codes.shape == (CLI_ROWS, CLI_DIM // 4)
    record(benchmark, GROUP, "in-memory", rows=CLI_ROWS)


@pytest.mark.parametrize(
    ("threads", "mapped"), [(None, False), (1, False), (None, True)], ids=["threadsall", "threads1", "map-written"]
)
def test_cli_encode_npy(
    benchmark: Any,
    cli_file: Path,
    cli_file_mapped: Path,
    loaded: np.ndarray,
    tmp_path: Path,
    threads: int | None,
    mapped: bool,
) -> None:
    """The CLI, each round preceded (untimed) by removing the previous outputs and by one in-memory
    encode with the same threads whose time is kept: the two are interleaved, so drifts of a shared
    machine hit both. With one encode thread, the reader and writer threads have a core of their own."""
    src = cli_file_mapped if mapped else cli_file
    argv = _argv(src, tmp_path) + ([] if threads is None else ["--threads", str(threads)])
    interleaved: list[float] = []

    def setup() -> None:
        for name in ("codes", "keys", "transitions"):
            (tmp_path / f"{name}.npy").unlink(missing_ok=True)
        t = time.perf_counter()
        q2key.encode(loaded, threads=threads)
        interleaved.append(time.perf_counter() - t)

    case = "cli-npy" + ("" if threads is None else f"-threads{threads}") + ("-map-written" if mapped else "")
    benchmark.group = GROUP
    benchmark.extra_info.update(rows=CLI_ROWS, dim=CLI_DIM, batch_rows=default_batch_rows(CLI_DIM, 4))
    rc = benchmark.pedantic(lambda: main(argv), setup=setup, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    assert rc == 0
    enc = q2key.encode(loaded[:20_000])
    codes = np.load(tmp_path / "codes.npy", mmap_mode="r")
    assert codes.shape == (CLI_ROWS, CLI_DIM // 4)
    np.testing.assert_array_equal(codes[:20_000], enc.codes)
    np.testing.assert_array_equal(np.load(tmp_path / "keys.npy", mmap_mode="r")[:20_000], enc.keys)
    record(benchmark, GROUP, case, rows=CLI_ROWS, interleaved_in_memory_s=float(np.median(interleaved)))


def test_cli_encode_subprocess_peak_memory(benchmark: Any, cli_file: Path, tmp_path: Path) -> None:
    """Runs `python -m q2key encode` once; reports its wall time, peak memory, and the summary of this module."""
    script = (
        "import re, sys, time\n"
        "import q2key.cli\n"
        "def hwm():\n"
        "    return int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)) * 1024\n"
        "base = hwm()\n"
        "t = time.perf_counter()\n"
        f"rc = q2key.cli.main({_argv(cli_file, tmp_path)!r})\n"
        "print(base, hwm(), time.perf_counter() - t, rc)\n"
    )
    if not os.path.exists("/proc/self/status"):
        pytest.skip("peak memory is read from /proc/self/status (Linux)")
    benchmark.group = GROUP + "-subprocess"
    done = benchmark.pedantic(
        lambda: subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd="/"),
        rounds=1,
        iterations=1,
    )
    base, peak, seconds, rc = done.stdout.split()
    assert rc == "0"
    batch_rows = default_batch_rows(CLI_DIM, 4)
    batch_bytes = batch_rows * CLI_DIM * 4
    out_bytes = CLI_ROWS * OUT_BYTES_PER_ROW
    extra = int(peak) - int(base)
    record(
        benchmark,
        GROUP,
        "cli-subprocess",
        rows=CLI_ROWS,
        main_s=float(seconds),
        base_rss=int(base),
        peak_rss=int(peak),
        peak_over_base=extra,
        batch_rows=batch_rows,
        batch_bytes=batch_bytes,
        batch_out_bytes=batch_rows * OUT_BYTES_PER_ROW,
        out_bytes=out_bytes,
    )
    # Memory target: what the CLI adds to the interpreter stays under two input batches plus the outputs.
    assert extra < 2 * batch_bytes + out_bytes, (extra, batch_bytes, out_bytes)
    _summary()


def _summary() -> None:
    mem = RESULTS.get((GROUP, "in-memory"), {}).get("median")
    cli = RESULTS.get((GROUP, "cli-npy"), {}).get("median")
    both = RESULTS.get((GROUP, "cli-npy"), {}).get("interleaved_in_memory_s")
    mapped = RESULTS.get((GROUP, "cli-npy-map-written"), {}).get("median")
    both_mapped = RESULTS.get((GROUP, "cli-npy-map-written"), {}).get("interleaved_in_memory_s")
    cli1 = RESULTS.get((GROUP, "cli-npy-threads1"), {}).get("median")
    both1 = RESULTS.get((GROUP, "cli-npy-threads1"), {}).get("interleaved_in_memory_s")
    sub = RESULTS.get((GROUP, "cli-subprocess"), {})

    def ratio(a: float | None, b: float | None) -> float | None:
        return a / b if a and b else None

    mib = 1 << 20
    s: dict[str, Any] = {
        "smoke": SMOKE,
        "rows": CLI_ROWS,
        "dim": CLI_DIM,
        "simd_backend": q2key.simd_backend(),
        "in_memory_s": mem,
        "cli_s": cli,
        "in_memory_rows_per_s": CLI_ROWS / mem if mem else None,
        "cli_rows_per_s": CLI_ROWS / cli if cli else None,
        "cli_over_in_memory_throughput": ratio(mem, cli),
        "interleaved_in_memory_s": both,
        "cli_over_interleaved_in_memory_throughput": ratio(both, cli),
        "map_written_cli_s": mapped,
        "map_written_interleaved_in_memory_s": both_mapped,
        "map_written_cli_over_in_memory_throughput": ratio(both_mapped, mapped),
        "threads1_cli_s": cli1,
        "threads1_interleaved_in_memory_s": both1,
        "threads1_cli_over_in_memory_throughput": ratio(both1, cli1),
        **{k: v for k, v in sub.items() if k not in ("median", "min", "mean", "rounds")},
        "subprocess_wall_s": sub.get("median"),
    }
    lines = [
        f"q2key CLI encode, {CLI_ROWS:,} × {CLI_DIM} float32 .npy ({'SMOKE' if SMOKE else 'full'}, medians):",
        f"  in-memory q2key.encode {fmt(mem, '.3f')} s ({fmt(s['in_memory_rows_per_s'], ',.0f')} rows/s)",
        f"  q2key encode (in-process main) {fmt(cli, '.3f')} s ({fmt(s['cli_rows_per_s'], ',.0f')} rows/s)"
        f" = {fmt(s['cli_over_in_memory_throughput'], '.0%')} of in-memory throughput (target ≥ 80 %);"
        f" {fmt(s['cli_over_interleaved_in_memory_throughput'], '.0%')} of the in-memory encodes interleaved with"
        f" its rounds ({fmt(both, '.3f')} s)",
        f"  input written through a memory map (4 KiB page-cache pages): {fmt(mapped, '.3f')} s vs in-memory"
        f" {fmt(both_mapped, '.3f')} s (interleaved) = {fmt(s['map_written_cli_over_in_memory_throughput'], '.0%')}",
        f"  one encode thread: q2key encode --threads 1 {fmt(cli1, '.3f')} s vs in-memory threads=1"
        f" {fmt(both1, '.3f')} s (interleaved) = {fmt(s['threads1_cli_over_in_memory_throughput'], '.0%')}",
        f"  python -m q2key encode: {fmt(sub.get('median'), '.3f')} s wall, main() {fmt(sub.get('main_s'), '.3f')} s;"
        f" peak RSS {sub.get('peak_rss', 0) / mib:.0f} MiB = interpreter {sub.get('base_rss', 0) / mib:.0f} MiB"
        f" + {sub.get('peak_over_base', 0) / mib:.0f} MiB; one batch {sub.get('batch_rows', 0):,} rows ="
        f" {sub.get('batch_bytes', 0) / mib:.0f} MiB in + {sub.get('batch_out_bytes', 0) / mib:.1f} MiB out;"
        f" all outputs {sub.get('out_bytes', 0) / mib:.0f} MiB",
    ]
    print("\n" + "\n".join(lines))
    path = os.environ.get("Q2KEY_CLI_BENCH_JSON")
    if path:
        Path(path).write_text(json.dumps(s, indent=2))
