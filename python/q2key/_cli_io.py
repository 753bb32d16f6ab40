"""Readers and atomic writers of the command line: .npy (memory-mapped), .npz members, Parquet and Arrow files.

Inputs are read in row batches so memory stays bounded whatever the file size:

- ``.npy``: memory-mapped; each batch is a view of the mapping; a helper thread asks the kernel
  to read the next batch ahead and drops the pages of finished batches from the process
  (``madvise(MADV_DONTNEED)``; they stay in the page cache): at most two batches are resident;
- ``.npz``: one member (``--column NAME`` or ``FILE.npz:NAME``; the only member by default),
  streamed out of the zip archive, compressed or not;
- Parquet / Arrow IPC: a fixed-size-list column of floats, read one record batch at a time
  (pyarrow is imported only for these).

Outputs are written to a temporary file next to the final one, fsynced and renamed into place;
on any error (or Ctrl-C) the temporary files are removed, so no half-written output remains.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import queue
import re
import secrets
import sys
import threading
import zipfile
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO, Any, BinaryIO

import numpy as np
import numpy.typing as npt
from numpy.lib import format as npy_format

#: Bytes of input aimed at per batch when ``--batch-rows`` is not given.
DEFAULT_BATCH_BYTES = 64 << 20
#: Total size of the .npy headers written here (room for any shape; rewritten in place at the end).
NPY_HEADER_BYTES = 128
ARROW_INSTALL_HINT = "pip install 'q2key[arrow]' (or pip install pyarrow)"

_PARQUET_SUFFIXES = (".parquet", ".pq")
_ARROW_SUFFIXES = (".arrow", ".feather", ".ipc", ".arrows")


class CliError(Exception):
    """A runtime error of the command line, reported as one line (exit code 1)."""


def import_pyarrow(what: str) -> Any:
    """``pyarrow`` (with ``pyarrow.parquet`` and ``pyarrow.ipc`` loaded), or a one-line error naming the extra."""
    try:
        import pyarrow  # type: ignore[import-untyped,import-not-found,unused-ignore]
        import pyarrow.ipc  # type: ignore[import-untyped,import-not-found,unused-ignore]
        import pyarrow.parquet  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        raise CliError(f"{what} needs pyarrow: {ARROW_INSTALL_HINT}") from None
    return pyarrow


def default_batch_rows(dim: int, itemsize: int) -> int:
    """Rows per batch: about :data:`DEFAULT_BATCH_BYTES` of input."""
    return max(1, DEFAULT_BATCH_BYTES // max(dim * itemsize, 1))


# -- inputs ---------------------------------------------------------------------------------------------------


class Source:
    """A matrix of vectors ``(rows, dim)`` in a file, read in batches.

    ``rows`` is ``None`` when the file does not say (an Arrow IPC stream).
    """

    path: str
    rows: int | None
    dim: int
    dtype: np.dtype[Any]

    def batches(self, batch_rows: int) -> Iterator[npt.NDArray[Any]]:
        """Consecutive ``(≤ batch_rows, dim)`` arrays; every one but the last has exactly ``batch_rows`` rows.

        A batch is valid until the next one is asked for (it may be a view of a mapping or buffer
        that is then released or reused).
        """
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read_all(self) -> npt.NDArray[Any]:
        """Every row in one array (memory: the whole matrix)."""
        parts = [np.array(b) for b in self.batches(default_batch_rows(self.dim, self.dtype.itemsize))]
        return np.concatenate(parts) if parts else np.zeros((0, self.dim), self.dtype)

    def sample(self, n: int | None, seed: int | None) -> npt.NDArray[Any]:
        """All rows (``n`` None), the first ``n`` (``seed`` None), or ``n`` distinct rows drawn with ``seed``
        (kept in file order)."""
        if n is None:
            return self.read_all()
        if seed is None:
            return self._first(n)
        rows = self.rows
        if rows is None:
            every = self.read_all()
            rows = int(every.shape[0])
            pick = np.sort(np.random.default_rng(seed).choice(rows, size=min(n, rows), replace=False))
            return np.asarray(every[pick])
        pick = np.sort(np.random.default_rng(seed).choice(rows, size=min(n, rows), replace=False))
        return self.take(pick)

    def take(self, rows: npt.NDArray[np.int64]) -> npt.NDArray[Any]:
        """The given rows (sorted, distinct), streaming through the file."""
        out = np.empty((len(rows), self.dim), self.dtype)
        start, got = 0, 0
        for b in self.batches(default_batch_rows(self.dim, self.dtype.itemsize)):
            stop = start + b.shape[0]
            hi = int(np.searchsorted(rows, stop))
            if hi > got:
                out[got:hi] = b[rows[got:hi] - start]
                got = hi
            start = stop
            if got == len(rows):
                break
        return out

    def _first(self, n: int) -> npt.NDArray[Any]:
        parts, got = [], 0
        for b in self.batches(min(n, default_batch_rows(self.dim, self.dtype.itemsize))):
            parts.append(np.array(b[: n - got]))
            got += parts[-1].shape[0]
            if got >= n:
                break
        return np.concatenate(parts) if parts else np.zeros((0, self.dim), self.dtype)


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
    for suffixes, kind in ((".npy",), "npy"), ((".npz",), "npz"), (_PARQUET_SUFFIXES, "parquet"):
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

    def take(self, rows: npt.NDArray[np.int64]) -> npt.NDArray[Any]:
        return np.array(self.array()[rows])

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


class ArrowSource(Source):
    """A fixed-size-list float column of a Parquet file or an Arrow IPC file/stream, one record batch at a time."""

    def __init__(self, path: str, column: str | None, *, parquet: bool) -> None:
        self.path = path
        self._pa = pa = import_pyarrow("reading Parquet/Arrow files")
        self._parquet = parquet
        self._file: Any = None
        self._reader: Any = None
        try:
            if parquet:
                self._reader = pa.parquet.ParquetFile(path)
                schema = self._reader.schema_arrow
                self.rows = int(self._reader.metadata.num_rows)
            else:
                self._file = pa.OSFile(path, "rb")
                try:
                    self._reader = pa.ipc.open_file(self._file)
                    self.rows = int(self._reader.count_rows()) if hasattr(self._reader, "count_rows") else None
                except pa.ArrowInvalid:
                    self._file.seek(0)
                    self._reader = pa.ipc.open_stream(self._file)
                    self.rows = None
                schema = self._reader.schema
        except pa.ArrowException as e:
            self.close()
            raise CliError(f"{path}: cannot read ({_first_line(e)})") from None
        self.column = self._pick(schema, column)
        t = schema.field(self.column).type
        self.dim = int(t.list_size)
        self.dtype = pa.array([], type=t.value_type).to_numpy(zero_copy_only=False).dtype  # no pandas needed

    def _pick(self, schema: Any, column: str | None) -> str:
        pa = self._pa

        def usable(t: Any) -> bool:
            return bool(pa.types.is_fixed_size_list(t)) and (
                pa.types.is_floating(t.value_type) or pa.types.is_integer(t.value_type)
            )

        if column is None:
            found = [f.name for f in schema if usable(f.type)]
            if len(found) != 1:
                fields = ", ".join(f"{f.name} ({f.type})" for f in schema) or "none"
                which = "no" if not found else f"{len(found)}"
                raise CliError(
                    f"{self.path}: {which} fixed-size-list float columns; choose one with --column NAME "
                    f"(columns: {fields})"
                )
            return str(found[0])
        if column not in schema.names:
            raise CliError(f"{self.path}: no column {column!r} (columns: {', '.join(schema.names)})")
        t = schema.field(column).type
        if not usable(t):
            raise CliError(f"{self.path}: column {column!r} is {t}; expected a fixed-size list of floats")
        return column

    def _record_batches(self, batch_rows: int) -> Iterator[Any]:
        if self._parquet:
            yield from self._reader.iter_batches(batch_size=batch_rows, columns=[self.column])
        elif hasattr(self._reader, "num_record_batches"):
            for i in range(self._reader.num_record_batches):
                yield self._reader.get_batch(i).select([self.column])
        else:
            for rb in self._reader:
                yield rb.select([self.column])

    def _matrices(self, batch_rows: int) -> Iterator[npt.NDArray[Any]]:
        start = 0
        try:
            for rb in self._record_batches(batch_rows):
                arr = rb.column(0)
                yield self._to_matrix(arr, start)
                start += len(arr)
        except self._pa.ArrowException as e:
            raise CliError(f"{self.path}: cannot read ({_first_line(e)})") from None

    def _to_matrix(self, arr: Any, start: int) -> npt.NDArray[Any]:
        if arr.null_count:
            row = start + int(np.argmax(arr.is_null().to_numpy(zero_copy_only=False)))
            raise CliError(f"{self.path}: column {self.column!r}: row {row} is null")
        values = arr.flatten()
        if values.null_count:
            row = start + int(np.argmax(values.is_null().to_numpy(zero_copy_only=False))) // self.dim
            raise CliError(f"{self.path}: column {self.column!r}: row {row} holds a null value")
        flat = values.to_numpy(zero_copy_only=False)  # zero-copy for primitive values without nulls
        return np.asarray(flat).reshape(len(arr), self.dim)

    def batches(self, batch_rows: int) -> Iterator[npt.NDArray[Any]]:
        return rebatch(self._matrices(batch_rows), batch_rows)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._parquet and self._reader is not None and hasattr(self._reader, "close"):
            self._reader.close()
        self._reader = None


def rebatch(chunks: Iterable[npt.NDArray[Any]], batch_rows: int) -> Iterator[npt.NDArray[Any]]:
    """Chunks of any sizes regrouped into batches of exactly ``batch_rows`` rows (the last may be shorter)."""
    pending: list[npt.NDArray[Any]] = []
    have = 0
    for chunk in chunks:
        c = chunk
        while c.shape[0]:
            if not have and c.shape[0] >= batch_rows:
                yield c[:batch_rows]
                c = c[batch_rows:]
                continue
            take = min(batch_rows - have, c.shape[0])
            pending.append(c[:take])
            have += take
            c = c[take:]
            if have == batch_rows:
                yield np.concatenate(pending)
                pending, have = [], 0
    if have:
        yield np.concatenate(pending)


def located(err: Exception, path: str, start: int) -> CliError:
    """A kernel error about a batch (``x: row 3 …``) restated about the file (``FILE: row start+3 …``)."""
    msg = re.sub(r"^(x|vectors|queries|ids): ", "", str(err).strip())
    msg = re.sub(r"\brow (\d+)( of the batch)?", lambda m: f"row {int(m.group(1)) + start}", msg, count=1)
    return CliError(f"{path}: {msg}")


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


# -- atomic outputs -------------------------------------------------------------------------------------------
#
# Every output is written to a temporary file ``.<name>.tmp-<pid>-<random>`` next to it, which its
# writer holds an exclusive ``flock`` on until it is renamed into place. Several outputs of one run
# are committed through a roll-forward journal (``.q2key-commit-<run>.journal``, one copy in each
# directory holding an output): once every temporary file is synced, the journal naming the renames
# is written and synced, the renames are done, then the journal is removed. A run interrupted after
# the journal was written is completed by the next q2key command that writes or reads one of its
# outputs (which says so on stderr); one interrupted before leaves the old outputs and temporary
# files that the next command removes (their writer's pid is no longer alive and their lock is
# free). So the outputs of a run are all old or all new, or a journal says which run is half done.

#: The Parquet/Arrow schema metadata key holding the id of the run that wrote the file.
RUN_ID_KEY = "q2key.run"
JOURNAL_PREFIX = ".q2key-commit-"
JOURNAL_SUFFIX = ".journal"
_JOURNAL_FORMAT = "q2key-commit-journal/1"


def _temp_name(name: str) -> str:
    return f".{name}.tmp-{os.getpid()}-{secrets.token_hex(8)}"


def _temp_pattern(name_pattern: str) -> re.Pattern[str]:
    """The temporary files of the files whose names match ``name_pattern`` (group 1: the writer's pid)."""
    return re.compile(rf"\.{name_pattern}\.tmp-(\d+)-[0-9a-f]+")


_JOURNAL_TEMPS = _temp_pattern(rf"{re.escape(JOURNAL_PREFIX)}[0-9a-f]+{re.escape(JOURNAL_SUFFIX)}")


def _lock(fd: int, *, wait: bool) -> bool:
    """An exclusive ``flock`` on ``fd`` (released when every descriptor of the file is closed); ``False``
    if another process holds it and ``wait`` is false. Where there is no ``flock``, always ``True``."""
    if sys.platform == "win32":  # pragma: no cover (no flock: liveness is judged by pid only)
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    return True


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    if sys.platform == "win32":  # pragma: no cover (os.kill(pid, 0) would end the process there)
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _remove_if_abandoned(path: str, pid: int) -> bool:
    """Removes ``path`` if the process ``pid`` that wrote it is gone and nobody holds its lock (a live
    writer holds it from creation to rename, so a reused pid or another pid namespace is safe too)."""
    if _pid_alive(pid):
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        if not _lock(fd, wait=False):
            return False
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return True
    finally:
        os.close(fd)


def remove_stale_temps(path: str) -> int:
    """Removes the temporary files of ``path`` left by q2key writers that died; returns how many."""
    folder, name = os.path.split(os.path.abspath(path))
    return _remove_abandoned(folder, _temp_pattern(re.escape(name)))


def _remove_abandoned(folder: str, pattern: re.Pattern[str]) -> int:
    removed = 0
    with contextlib.suppress(OSError):
        for entry in os.listdir(folder):
            m = pattern.fullmatch(entry)
            if m and _remove_if_abandoned(os.path.join(folder, entry), int(m.group(1))):
                removed += 1
    return removed


def _notice(text: str) -> None:
    print(f"q2key: {text}", file=sys.stderr)


def _read_journal(path: str) -> dict[str, Any]:
    with open(path, "rb") as f:
        data = f.read()
    try:
        journal = json.loads(data)
        if not isinstance(journal, dict) or journal.get("format") != _JOURNAL_FORMAT:
            raise ValueError("not a q2key commit journal")
        renames = [(str(a), str(b)) for a, b in journal["renames"]]
        journals = [str(j) for j in journal["journals"]]
        if not journals or not renames:
            raise ValueError("no journals or no renames listed")
        return {"run": str(journal["run"]), "pid": int(journal["pid"]), "renames": renames, "journals": journals}
    except (ValueError, KeyError, TypeError) as e:
        raise CliError(f"{path}: damaged commit journal ({e}); remove it and run the command again") from None


def _finish(journal: dict[str, Any]) -> str:
    """Completes (or undoes) the commit ``journal`` describes; returns what was done.

    The first journal is written first and removed first: if it is there but another copy is
    missing, the run died while writing the journals, before any rename (undo: remove the
    temporary files); if it is missing, the run died while removing them, after every rename.
    """
    journals: list[str] = journal["journals"]
    renames: list[tuple[str, str]] = journal["renames"]
    finals = ", ".join(b for _, b in renames)
    if not os.path.exists(journals[0]):
        outcome = "already complete"
    elif all(os.path.exists(j) for j in journals):
        for tmp, final in renames:
            if os.path.exists(tmp):
                os.replace(tmp, final)
        _fsync_dirs(final for _, final in renames)
        outcome = f"completed the interrupted write of run {journal['run']} ({finals})"
    else:
        for tmp, _ in renames:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        journals = journals[1:] + journals[:1]  # the first one last, as when writing
        outcome = f"undid the interrupted write of run {journal['run']}: the previous {finals} are kept"
    for j in journals:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(j)
    _fsync_dirs(journals)
    return outcome


def recover_interrupted_writes(path: str) -> list[str]:
    """Completes every commit journal in the directory of ``path`` whose writer is gone (rolling its
    renames forward) and returns what was done, one line each (also printed on stderr).

    A journal whose writer is alive (it holds its lock) is an error naming the pid: its outputs are
    being replaced right now.
    """
    folder = os.path.dirname(os.path.abspath(path))
    try:
        entries = sorted(e for e in os.listdir(folder) if e.startswith(JOURNAL_PREFIX) and e.endswith(JOURNAL_SUFFIX))
    except OSError:
        return []
    done = []
    for entry in entries:
        jpath = os.path.join(folder, entry)
        try:
            fd = os.open(jpath, os.O_RDONLY)
        except FileNotFoundError:  # completed meanwhile (through another copy)
            continue
        try:
            if not _lock(fd, wait=False):
                raise CliError(
                    f"{path}: another q2key process is replacing files here (journal {jpath}); "
                    "try again when it has finished"
                )
            journal = _read_journal(jpath)
            if sys.platform == "win32" and _pid_alive(journal["pid"]):  # pragma: no cover (no flock)
                raise CliError(
                    f"{path}: q2key process {journal['pid']} is replacing files here (journal {jpath}); "
                    "try again when it has finished"
                )
            # Lock every copy so that a second recoverer waits rather than racing this one.
            others = []
            for other in journal["journals"]:
                if other != jpath:
                    with contextlib.suppress(FileNotFoundError):
                        ofd = os.open(other, os.O_RDONLY)
                        others.append(ofd)
                        _lock(ofd, wait=True)
            try:
                outcome = _finish(journal)
            finally:
                for ofd in others:
                    os.close(ofd)
        finally:
            os.close(fd)
        if outcome != "already complete":
            _notice(outcome)
            done.append(outcome)
    _remove_abandoned(folder, _JOURNAL_TEMPS)  # journals whose writer died before renaming them into place
    return done


class AtomicFile:
    """A temporary file next to ``path``; :meth:`sync` fsyncs it, :meth:`rename` moves it into place.

    Created in two steps (name, then :meth:`open`) so that whoever tracks it knows the temporary
    name before the file exists: an interruption between the two cannot leave it behind. The
    temporary file is locked (``flock``) from creation until it is renamed and closed, and its
    name carries the pid, so that later commands can tell abandoned temporary files from live ones.
    """

    file: BinaryIO

    def __init__(self, path: str) -> None:
        self.path = path
        folder, name = os.path.split(os.path.abspath(path))
        if os.path.isdir(path):
            raise CliError(f"{path}: is a directory")
        if not os.path.isdir(folder):
            raise CliError(f"{path}: directory {folder} does not exist")
        self.tmp: str | None = os.path.join(folder, _temp_name(name))
        self.done = False
        self._lock_fd: int | None = None

    def open(self) -> AtomicFile:
        assert self.tmp is not None
        try:
            fd = os.open(self.tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:  # pragma: no cover (a 64-bit random collision): not ours to remove
            self.tmp = None
            raise
        self._lock_fd = os.dup(fd)  # keeps the lock when ``file`` is closed by a writer
        _lock(self._lock_fd, wait=True)
        self.file = os.fdopen(fd, "w+b")
        return self

    def sync(self) -> None:
        """Flushes and fsyncs the temporary file, and closes it."""
        assert self.tmp is not None
        if not self.file.closed:
            self.file.flush()
            os.fsync(self.file.fileno())
            self.file.close()
        else:
            fd = os.open(self.tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def rename(self) -> None:
        """Renames the (synced) temporary file into place."""
        assert self.tmp is not None
        os.replace(self.tmp, self.path)
        self.done = True

    def release(self) -> None:
        """Closes the file and drops its lock (after the rename, or once it is removed)."""
        f = getattr(self, "file", None)
        if f is not None and not f.closed:
            f.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def discard(self) -> None:
        f = getattr(self, "file", None)
        if f is not None and not f.closed:
            f.close()
        if not self.done and self.tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.tmp)
        self.done = True
        self.release()


def _fsync_dir(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover (platforms without directory fds)
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _fsync_dirs(paths: Iterable[str]) -> None:
    for folder in dict.fromkeys(os.path.dirname(os.path.abspath(p)) for p in paths):
        _fsync_dir(folder)


class Outputs:
    """Every file a command writes: created as temporary files, all renamed into place by :meth:`commit`,
    all removed if the ``with`` block raises (including ``KeyboardInterrupt``).

    ``run_id`` names this run; Parquet/Arrow outputs carry it in their metadata (``q2key.run``) and
    the commit journal names it. Creating an output first completes interrupted commits in its
    directory and removes temporary files of dead writers for it.
    """

    def __init__(self) -> None:
        self._files: list[AtomicFile] = []
        self.run_id = secrets.token_hex(8)

    def new(self, path: str) -> AtomicFile:
        f = AtomicFile(path)
        recover_interrupted_writes(path)
        remove_stale_temps(path)
        self._files.append(f)
        return f.open()

    def commit(self) -> None:
        if len(self._files) > 1:
            # fsyncs issued together share the file system's journal commits.
            with ThreadPoolExecutor(len(self._files), thread_name_prefix="q2key-fsync") as pool:
                for synced in [pool.submit(f.sync) for f in self._files]:
                    synced.result()
        else:
            for f in self._files:
                f.sync()
        if len(self._files) <= 1:  # one rename is atomic by itself
            for f in self._files:
                f.rename()
                f.release()
            _fsync_dirs(f.path for f in self._files)
            return
        journal = self._write_journals()
        for f in self._files:
            f.done = True  # from here on the journal owns the temporary files: never discarded
        try:
            try:
                for f in self._files:
                    os.replace(f.tmp or "", f.path)
                _fsync_dirs(f.path for f in self._files)
            except BaseException:
                # Interrupted (Ctrl-C, SIGTERM) or failed between renames: never leave a mix. Finish
                # the renames; if that fails too, the journal stays for the next command.
                with contextlib.suppress(BaseException):
                    _finish(journal["content"])
                raise
            _finish_journals(journal["content"]["journals"])
        finally:  # the locks go last: a journal seen unlocked is one whose writer is gone
            for f in self._files:
                f.release()
            for fd in journal["fds"]:
                os.close(fd)

    def _write_journals(self) -> dict[str, Any]:
        """Writes, syncs and locks one journal per output directory (the first one first)."""
        folders = list(dict.fromkeys(os.path.dirname(os.path.abspath(f.path)) for f in self._files))
        name = f"{JOURNAL_PREFIX}{self.run_id}{JOURNAL_SUFFIX}"
        paths = [os.path.join(folder, name) for folder in folders]
        renames = [(f.tmp or "", os.path.abspath(f.path)) for f in self._files]
        content: dict[str, Any] = {
            "format": _JOURNAL_FORMAT,
            "run": self.run_id,
            "pid": os.getpid(),
            "journals": paths,
            "renames": renames,
        }
        text = json.dumps(content, indent=1).encode()
        fds: list[int] = []
        try:
            for jpath in paths:
                tmp = os.path.join(os.path.dirname(jpath), _temp_name(name))
                fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
                fds.append(fd)
                _lock(fd, wait=True)
                try:
                    os.write(fd, text)
                    os.fsync(fd)
                    os.replace(tmp, jpath)
                except BaseException:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(tmp)
                    raise
                _fsync_dir(os.path.dirname(jpath))
        except BaseException:
            # No rename of an output has happened: undo the journals (the first one last).
            for jpath in paths[1:] + paths[:1]:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(jpath)
            for fd in fds:
                os.close(fd)
            raise
        return {"content": content, "fds": fds}

    def discard(self) -> None:
        for f in self._files:
            f.discard()

    def __enter__(self) -> Outputs:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is not None:
            self.discard()
            return
        try:
            self.commit()
        except BaseException:
            self.discard()  # a sync or rename failed: nothing not yet renamed stays behind
            raise


def _finish_journals(journals: list[str]) -> None:
    """Removes a completed commit's journals, the first one first (see :func:`_finish`)."""
    for j in journals:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(j)
    _fsync_dirs(journals)


def write_bytes_atomic(path: str, data: bytes) -> None:
    with Outputs() as out:
        out.new(path).file.write(data)


# -- column writers -------------------------------------------------------------------------------------------

#: The output columns of ``encode``: name in Parquet/Arrow files, numpy dtype, is it a (rows, width) matrix.
COLUMNS: dict[str, tuple[str, np.dtype[Any], bool]] = {
    "codes": ("code", np.dtype("<u1"), True),
    "keys": ("key", np.dtype("<u8"), False),
    "transitions": ("transitions", np.dtype("<u4"), False),
}


class ColumnWriter:
    """Appends batches of some of the ``encode`` outputs to one file."""

    fields: tuple[str, ...]
    _out: AtomicFile

    def append(self, batch: dict[str, npt.NDArray[Any]]) -> None:
        raise NotImplementedError

    def sync(self) -> None:
        """Pushes what was written so far to the disk (so the final fsync has little left to do)."""
        f = self._out.file
        f.flush()
        getattr(os, "fdatasync", os.fsync)(f.fileno())

    def finish(self) -> None:
        pass

    def abort(self) -> None:
        """Releases the writer after a failure (the file itself is discarded by :class:`Outputs`)."""


class WriterThread:
    """Appends batches to column writers on a background thread, so writing and syncing overlap encoding.

    At most ``depth`` batches wait in the queue (memory stays bounded); every ``sync_bytes``
    written the files are synced to disk. A failure of the thread is raised by the next
    :meth:`put` or by :meth:`close`.
    """

    def __init__(self, writers: Sequence[ColumnWriter], *, depth: int = 2, sync_bytes: int = 8 << 20) -> None:
        self._writers = list(writers)
        self._queue: queue.Queue[dict[str, npt.NDArray[Any]] | None] = queue.Queue(maxsize=depth)
        self._sync_bytes = sync_bytes
        self._error: BaseException | None = None
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="q2key-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        pending = 0
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._stop or self._error is not None:
                continue
            try:
                for w in self._writers:
                    w.append(item)
                pending += sum(int(a.nbytes) for a in item.values())
                if pending >= self._sync_bytes:
                    for w in self._writers:
                        w.sync()
                    pending = 0
            except BaseException as e:  # re-raised on the main thread
                self._error = e

    def _raise(self) -> None:
        if self._error is not None:
            err, self._error = self._error, None
            raise err

    def put(self, batch: dict[str, npt.NDArray[Any]]) -> None:
        self._raise()
        self._queue.put(batch)

    def close(self) -> None:
        """Waits for every queued batch to be written; raises the thread's error if it had one."""
        self._queue.put(None)
        self._thread.join()
        self._raise()

    def abort(self) -> None:
        """Drops queued batches and waits for the thread to stop (a write under way completes)."""
        self._stop = True
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._queue.put(None)
        self._thread.join()


def npy_header(dtype: np.dtype[Any], shape: tuple[int, ...]) -> bytes:
    """A version 1.0 .npy header of exactly :data:`NPY_HEADER_BYTES` bytes (C order)."""
    text = repr({"descr": npy_format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape})
    room = NPY_HEADER_BYTES - 10
    if len(text) + 1 > room:  # pragma: no cover (needs a shape with > 40-digit numbers)
        raise CliError(f"shape {shape} does not fit a .npy header")
    body = (text + " " * (room - 1 - len(text)) + "\n").encode("latin1")
    return bytes(npy_format.magic(1, 0)) + len(body).to_bytes(2, "little") + body


class NpyWriter(ColumnWriter):
    """One output as a .npy file, streamed: header placeholder, row batches, final header."""

    def __init__(self, out: AtomicFile, field: str, width: int) -> None:
        self.fields = (field,)
        self._out = out
        self._dtype = COLUMNS[field][1]
        self._width = width if COLUMNS[field][2] else None
        self.rows = 0
        out.file.write(npy_header(self._dtype, self._shape()))

    def _shape(self) -> tuple[int, ...]:
        return (self.rows,) if self._width is None else (self.rows, self._width)

    def append(self, batch: dict[str, npt.NDArray[Any]]) -> None:
        a = np.ascontiguousarray(batch[self.fields[0]], dtype=self._dtype)
        self._out.file.write(a.data)
        self.rows += int(a.shape[0])

    def finish(self) -> None:
        f = self._out.file
        f.flush()
        f.seek(0)
        f.write(npy_header(self._dtype, self._shape()))
        f.seek(0, os.SEEK_END)


class ArrowWriter(ColumnWriter):
    """Several outputs as the columns of one Parquet or Arrow IPC file."""

    def __init__(self, out: AtomicFile, fields: Sequence[str], width: int, *, parquet: bool, run_id: str) -> None:
        pa = import_pyarrow("writing Parquet/Arrow files")
        self._pa = pa
        self.fields = tuple(fields)
        self._width = width
        types = {"codes": pa.binary(width), "keys": pa.uint64(), "transitions": pa.uint32()}
        # The run id shared by every output of one ``encode`` (also named by its commit journal).
        self._schema = pa.schema([(COLUMNS[f][0], types[f]) for f in self.fields], metadata={RUN_ID_KEY: run_id})
        self._sink = pa.PythonFile(out.file, mode="w")
        if parquet:
            self._writer = pa.parquet.ParquetWriter(self._sink, self._schema, use_dictionary=False)
        else:
            self._writer = pa.ipc.new_file(self._sink, self._schema)
        self._out = out

    def append(self, batch: dict[str, npt.NDArray[Any]]) -> None:
        pa = self._pa
        arrays = []
        for f in self.fields:
            a = np.ascontiguousarray(batch[f], dtype=COLUMNS[f][1])
            if f == "codes":
                buffers = [None, pa.py_buffer(a)]
                arrays.append(pa.FixedSizeBinaryArray.from_buffers(pa.binary(self._width), len(a), buffers))
            else:
                arrays.append(pa.array(a))
        self._writer.write_batch(pa.record_batch(arrays, schema=self._schema))

    def finish(self) -> None:
        self._writer.close()
        self._out.file.flush()

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self._writer.close()


def column_writers(outputs: Outputs, paths: dict[str, str | None], width: int) -> list[ColumnWriter]:
    """One writer per distinct output path; outputs sharing a Parquet/Arrow path become its columns."""
    by_path: dict[str, list[str]] = {}
    names: dict[str, str] = {}
    for field, path in paths.items():
        if path is None:
            continue
        key = os.path.abspath(path)
        by_path.setdefault(key, []).append(field)
        names[key] = path
    writers: list[ColumnWriter] = []
    for key, fields in by_path.items():
        path = names[key]
        lower = path.lower()
        if lower.endswith(_PARQUET_SUFFIXES) or lower.endswith(_ARROW_SUFFIXES):
            import_pyarrow(f"writing {path}")
            parquet = lower.endswith(_PARQUET_SUFFIXES)
            writers.append(ArrowWriter(outputs.new(path), fields, width, parquet=parquet, run_id=outputs.run_id))
        elif len(fields) > 1:
            flags = " and ".join(f"--{f}" for f in fields)
            raise CliError(f"{flags} name the same file {path}; only Parquet/Arrow outputs hold several columns")
        else:
            writers.append(NpyWriter(outputs.new(path), fields[0], width))
    return writers
