"""The chunked ``preadv`` path of ``q2key encode`` for .npy inputs: the in-memory ``encode`` outputs, in file order."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import q2key
from q2key import _cli_chunks
from q2key._cli_chunks import encode_npy_chunks
from q2key._cli_io import CliError, NpySource, open_source

DIM = 48
ROWS = 1001
WIDTH = DIM // 4

pytestmark = pytest.mark.skipif(not hasattr(os, "preadv"), reason="the chunked path needs os.preadv")


@pytest.fixture
def x() -> np.ndarray:
    return np.random.default_rng(11).standard_normal((ROWS, DIM)).astype(np.float32)


def run_chunks(
    path: Path, *, batch_rows: int, threads: int | None, threshold: Any = None
) -> tuple[dict[str, np.ndarray], list[int]]:
    """Every output of encode_npy_chunks concatenated, and the batch sizes in delivery order."""
    got: dict[str, list[np.ndarray]] = {"codes": [], "keys": [], "transitions": []}
    sizes: list[int] = []

    def deliver(out: dict[str, np.ndarray], n: int) -> None:
        sizes.append(n)
        for name, arr in out.items():
            assert arr.shape[0] == n
            got[name].append(arr.copy())

    src = open_source(str(path))
    assert isinstance(src, NpySource) and src.preadable
    with src:
        rows = encode_npy_chunks(
            src,
            deliver,
            encoder=q2key.encode,
            threshold=threshold,
            threads=threads,
            batch_rows=batch_rows,
            width=WIDTH,
        )
    assert rows == sum(sizes)
    return {k: np.concatenate(v) for k, v in got.items()}, sizes


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("cores", [1, 4], ids=["no-spare-core", "spare-core-reads-ahead"])
def test_chunks_not_aligned_with_batches_give_the_in_memory_result(
    tmp_path: Path, x: np.ndarray, monkeypatch: pytest.MonkeyPatch, threads: int, cores: int
) -> None:
    np.save(tmp_path / "x.npy", x)
    monkeypatch.setattr(_cli_chunks, "CHUNK_BYTES", 7 * DIM * 4)  # 7 rows a chunk: 15 chunks per 100-row batch
    monkeypatch.setattr(_cli_chunks, "available_cores", lambda: cores)
    readers: set[str] = set()
    read_rows = NpySource.read_rows

    def spy(self: NpySource, start: int, out: np.ndarray) -> None:
        assert out.shape[0] <= 7
        readers.add(threading.current_thread().name.split("_")[0])
        read_rows(self, start, out)

    monkeypatch.setattr(NpySource, "read_rows", spy)
    got, sizes = run_chunks(tmp_path / "x.npy", batch_rows=100, threads=threads)
    assert sizes == [100] * 10 + [1]
    ref = q2key.encode(x)
    np.testing.assert_array_equal(got["codes"], ref.codes)
    np.testing.assert_array_equal(got["keys"], ref.keys)
    np.testing.assert_array_equal(got["transitions"], ref.transitions)
    # A core left free by the encoders reads ahead of them; otherwise each encoder reads its own chunk.
    assert readers == ({"q2key-read"} if cores > threads else {"q2key-encode"})


@pytest.mark.parametrize("dtype", [">f4", "<f2", "<f8", "i1"])
def test_any_stored_dtype_gives_the_in_memory_result(tmp_path: Path, x: np.ndarray, dtype: str) -> None:
    a = (x * 40).astype(dtype) if dtype == "i1" else x.astype(dtype)
    np.save(tmp_path / "x.npy", a)
    got, _ = run_chunks(tmp_path / "x.npy", batch_rows=333, threads=2)
    np.testing.assert_array_equal(got["codes"], q2key.encode(a).codes)


def test_thresholds_reach_every_chunk(tmp_path: Path, x: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    np.save(tmp_path / "x.npy", x)
    monkeypatch.setattr(_cli_chunks, "CHUNK_BYTES", 50 * DIM * 4)
    th = q2key.calibrate(x, method="per_dim")
    got, _ = run_chunks(tmp_path / "x.npy", batch_rows=300, threads=2, threshold=th)
    np.testing.assert_array_equal(got["codes"], q2key.encode(x, threshold=th).codes)


def test_the_first_bad_row_in_file_order_is_reported(
    tmp_path: Path, x: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    x[923, 5] = np.inf  # in a later batch
    x[517, 0] = np.nan  # in a later chunk of the same batch as the next one
    x[503, 1] = np.nan
    np.save(tmp_path / "x.npy", x)
    monkeypatch.setattr(_cli_chunks, "CHUNK_BYTES", 10 * DIM * 4)
    for _ in range(5):  # chunks finish in any order; the report is always the first row
        with pytest.raises(CliError, match=r"x\.npy: row 503\b"):
            run_chunks(tmp_path / "x.npy", batch_rows=400, threads=2)


def test_a_file_that_shrinks_while_read_is_an_error(tmp_path: Path, x: np.ndarray) -> None:
    np.save(tmp_path / "x.npy", x)
    with open_source(str(tmp_path / "x.npy")) as src:
        assert isinstance(src, NpySource)
        os.truncate(tmp_path / "x.npy", 128 + 10 * DIM * 4)
        buf = np.empty((20, DIM), np.float32)
        src.read_rows(0, buf[:10])
        np.testing.assert_array_equal(buf[:10], x[:10])
        with pytest.raises(CliError, match="truncated while reading"):
            src.read_rows(5, buf)


def test_fortran_order_and_empty_files_take_the_batch_path(tmp_path: Path, x: np.ndarray) -> None:
    np.save(tmp_path / "f.npy", np.asfortranarray(x))
    np.save(tmp_path / "e.npy", np.zeros((0, DIM), np.float32))
    for name in ("f.npy", "e.npy"):
        with open_source(str(tmp_path / name)) as src:
            assert isinstance(src, NpySource) and not src.preadable
