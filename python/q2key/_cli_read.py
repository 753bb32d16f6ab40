"""Readers of the command line: .npy (memory-mapped), .npz members; Parquet/Arrow in :mod:`._cli_read_arrow`.

Inputs are read in row batches so memory stays bounded whatever the file size:

- ``.npy``: memory-mapped; each batch is a view of the mapping; a helper thread asks the kernel
  to read the next batch ahead and drops the pages of finished batches from the process
  (``madvise(MADV_DONTNEED)``; they stay in the page cache): at most two batches are resident;
- ``.npz``: one member (``--column NAME`` or ``FILE.npz:NAME``; the only member by default),
  streamed out of the zip archive, compressed or not;
- Parquet / Arrow IPC: a list column of floats (fixed-size, or variable-size with the same
  length in every row, as pandas writes), read one record batch at a time (pyarrow is
  imported only for these).
"""

from __future__ import annotations

import contextlib
import mmap
import os
import re
import zipfile
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO, Any

import numpy as np
import numpy.typing as npt
from numpy.lib import format as npy_format

from ._cli_io import PARQUET_SUFFIXES, CliError
from ._cli_journal import recover_interrupted_writes
from ._cli_source import Source

# -- inputs ---------------------------------------------------------------------------------------------------


def open_source(path: str, column: str | None = None, *, what: str = "input") -> Source:
    """The vectors in ``path``: ``.npy``, ``.npz`` (member ``column`` or ``FILE.npz:MEMBER``), Parquet or Arrow."""
    member = column
    recover_interrupted_writes(path)  # an input written by an interrupted q2key run: complete it first
    if not os.path.exists(path):
        m = re.match(r"^(.*\.npz):([^/\\]+)$", path)
        if m and os.path.exists(m.group(1)):
            path, member = m.group(1), m.group(2)
    kind = _sniff(path, what)
    if kind == "npy":
        if column is not None:
            raise CliError(f"{path}: --column applies to .npz, Parquet and Arrow inputs, not to a .npy file")
        return NpySource(path)
    if kind == "npz":
        return NpzSource(path, member)
    from ._cli_read_arrow import ArrowSource  # imports pyarrow's wrappers only for these files

    return ArrowSource(path, column, parquet=kind == "parquet")


def _sniff(path: str, what: str) -> str:
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head.startswith(b"PK"):
        return "npz"
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"ARROW1") or head[:4] == b"\xff\xff\xff\xff":
        return "arrow"
    lower = path.lower()
    for suffixes, kind in ((".npy",), "npy"), ((".npz",), "npz"), (PARQUET_SUFFIXES, "parquet"):
        if lower.endswith(suffixes):
            raise CliError(f"{path}: not a valid {kind} file (unexpected leading bytes {head[:8]!r})")
    raise CliError(f"{path}: unrecognised {what} format; expected .npy, .npz, Parquet or Arrow IPC")


def _check_matrix(path: str, shape: tuple[int, ...], dtype: np.dtype[Any]) -> tuple[int, int]:
    if dtype.kind not in "fiu":
        raise CliError(f"{path}: expected real numbers (float16/32/64 or integers), got dtype {dtype}")
    if len(shape) != 2:
        raise CliError(f"{path}: expected a 2-D array (rows, dim), got shape {shape}")
    if shape[1] < 1:
        raise CliError(f"{path}: vectors need at least one dimension, got shape {shape}")
    return int(shape[0]), int(shape[1])


class NpySource(Source):
    """A memory-mapped .npy file; the pages of each batch are released after use."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            probe = np.load(path, mmap_mode="r", allow_pickle=False)
        except ValueError as e:
            if "mmap length is greater than file size" in str(e):
                raise CliError(f"{path}: truncated: the file is shorter than its header promises") from None
            raise CliError(f"{path}: {e}") from None
        if not isinstance(probe, np.memmap):
            raise CliError(f"{path}: not a .npy array")  # pragma: no cover (np.load of a .npy is a memmap)
        shape, dtype, offset = tuple(probe.shape), probe.dtype, int(probe.offset)
        fortran = probe.ndim > 1 and bool(probe.flags.f_contiguous) and not bool(probe.flags.c_contiguous)
        del probe
        rows, dim = _check_matrix(path, shape, dtype)
        self.rows, self.dim, self.dtype = rows, dim, dtype
        self._n = rows
        self.fortran = fortran
        self._offset = offset
        self._nbytes = rows * dim * dtype.itemsize
        self._mmap: mmap.mmap | None = None
        self._generators: list[Generator[npt.NDArray[Any], None, None]] = []
        if self._nbytes:
            with open(path, "rb") as f:
                self._mmap = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            size = len(self._mmap)
            if size < offset + self._nbytes:
                self.close()
                raise CliError(f"{path}: truncated: {size} bytes, the header promises {offset + self._nbytes}")

    def array(self) -> npt.NDArray[Any]:
        """The whole matrix as a read-only view of the mapping."""
        if self._mmap is None:
            return np.zeros((self._n, self.dim), self.dtype)
        flat = np.frombuffer(self._mmap, dtype=self.dtype, count=self._n * self.dim, offset=self._offset)
        return flat.reshape((self._n, self.dim), order="F" if self.fortran else "C")

    def batches(self, batch_rows: int) -> Iterator[npt.NDArray[Any]]:
        gen = self._batches(batch_rows)
        self._generators.append(gen)
        return gen

    def _batches(self, batch_rows: int) -> Generator[npt.NDArray[Any], None, None]:
        a = self.array()
        mm = self._mmap
        spans = [(s, min(s + batch_rows, self._n)) for s in range(0, self._n, batch_rows)]
        if mm is None or self.fortran:
            for start, stop in spans:
                yield a[start:stop]
                if mm is not None:  # column-major: a batch touches pages all over the file
                    _advise(mm, "MADV_DONTNEED", 0, len(mm))
            return
        row_bytes = self.dim * self.dtype.itemsize

        def advise(name: str, span: tuple[int, int]) -> None:
            _advise(mm, name, self._offset + span[0] * row_bytes, (span[1] - span[0]) * row_bytes)

        # A helper thread asks the kernel to read the next batch ahead (a no-op when the file is
        # cached) while this one is encoded, and drops each batch's pages from this process once it
        # is done with (they stay in the page cache). Batch i is handed out only after batch i − 2
        # was dropped: at most two batches are resident.
        with ThreadPoolExecutor(1, thread_name_prefix="q2key-read") as helper:
            if spans:
                helper.submit(advise, "MADV_WILLNEED", spans[0])
            released: list[Future[None]] = []
            for i, (start, stop) in enumerate(spans):
                if i + 1 < len(spans):
                    helper.submit(advise, "MADV_WILLNEED", spans[i + 1])
                if len(released) == 2:
                    released.pop(0).result()
                yield a[start:stop]
                released.append(helper.submit(advise, "MADV_DONTNEED", (start, stop)))

    def read_all(self) -> npt.NDArray[Any]:
        return np.array(self.array())

    def close(self) -> None:
        for gen in self._generators:
            gen.close()  # stops its helper thread
        self._generators.clear()
        if self._mmap is not None:
            with contextlib.suppress(BufferError):  # a batch still alive elsewhere: the GC closes it
                self._mmap.close()
            self._mmap = None


_madv_unsupported: set[str] = set()


def _advise(mm: mmap.mmap, name: str, start: int, length: int) -> None:
    """Best-effort ``madvise`` on the pages covering ``[start, start + length)``, where the platform has it."""
    flag = getattr(mmap, name, None)
    if flag is None or name in _madv_unsupported or not hasattr(mm, "madvise") or length <= 0:
        return
    page = mmap.PAGESIZE
    lo = start // page * page
    hi = min(-(-(start + length) // page) * page, len(mm))
    try:
        mm.madvise(flag, lo, hi - lo)
    except (OSError, ValueError):  # a kernel without this advice: only slower, or more resident memory
        _madv_unsupported.add(name)


class NpzSource(Source):
    """One member of a .npz archive, streamed out of the zip (compressed or stored)."""

    def __init__(self, path: str, member: str | None) -> None:
        self.path = path
        try:
            self._zip = zipfile.ZipFile(path)
        except zipfile.BadZipFile as e:
            raise CliError(f"{path}: not a valid .npz archive ({e})") from None
        names = [n[:-4] for n in self._zip.namelist() if n.endswith(".npy")]
        if member is None:
            if len(names) != 1:
                self._zip.close()
                listed = ", ".join(names) or "none"
                raise CliError(f"{path}: holds {len(names)} arrays ({listed}); choose one with --column NAME")
            member = names[0]
        if member not in names:
            self._zip.close()
            raise CliError(f"{path}: no array {member!r} (it holds: {', '.join(names) or 'none'})")
        self.member = member
        with self._open() as f:
            shape, fortran, dtype = _read_npy_header(f, f"{path}:{member}")
        self.rows, self.dim = _check_matrix(f"{path}:{member}", shape, dtype)
        self.dtype = dtype
        self.fortran = fortran

    def _open(self) -> IO[bytes]:
        return self._zip.open(self.member + ".npy")

    def batches(self, batch_rows: int) -> Iterator[npt.NDArray[Any]]:
        rows = self.rows or 0
        if self.fortran:
            # Column-major: rows are not contiguous in the stream; read the member whole.
            with self._open() as f:
                a = np.load(f, allow_pickle=False)
            for start in range(0, rows, batch_rows):
                yield a[start : start + batch_rows]
            return
        row_bytes = self.dim * self.dtype.itemsize
        with self._open() as f:
            _read_npy_header(f, self.path)
            for start in range(0, rows, batch_rows):
                n = min(batch_rows, rows - start)
                buf = f.read(n * row_bytes)
                if len(buf) != n * row_bytes:
                    raise CliError(f"{self.path}:{self.member}: truncated at row {start + len(buf) // row_bytes}")
                yield np.frombuffer(buf, dtype=self.dtype).reshape(n, self.dim)

    def close(self) -> None:
        self._zip.close()


def _read_npy_header(f: IO[bytes], name: str) -> tuple[tuple[int, ...], bool, np.dtype[Any]]:
    try:
        version = npy_format.read_magic(f)
        reader: Callable[[IO[bytes]], tuple[tuple[int, ...], bool, np.dtype[Any]]] = (
            npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
        )
        shape, fortran, dtype = reader(f)
    except ValueError as e:
        raise CliError(f"{name}: not a valid .npy array ({e})") from None
    if dtype.hasobject:
        raise CliError(f"{name}: holds Python objects; expected numbers")
    return tuple(int(s) for s in shape), bool(fortran), np.dtype(dtype)
