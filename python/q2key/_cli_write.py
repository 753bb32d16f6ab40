"""Column writers of ``q2key encode``: .npy files, Parquet/Arrow tables, and a background writer thread."""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from numpy.lib import format as npy_format

from ._cli_commit import RUN_ID_KEY, AtomicFile, Outputs
from ._cli_io import ARROW_SUFFIXES, PARQUET_SUFFIXES, CliError, import_pyarrow

#: Total size of the .npy headers written here (room for any shape; rewritten in place at the end).
NPY_HEADER_BYTES = 128

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
        if lower.endswith(PARQUET_SUFFIXES) or lower.endswith(ARROW_SUFFIXES):
            import_pyarrow(f"writing {path}")
            parquet = lower.endswith(PARQUET_SUFFIXES)
            writers.append(ArrowWriter(outputs.new(path), fields, width, parquet=parquet, run_id=outputs.run_id))
        elif len(fields) > 1:
            flags = " and ".join(f"--{f}" for f in fields)
            raise CliError(f"{flags} name the same file {path}; only Parquet/Arrow outputs hold several columns")
        else:
            writers.append(NpyWriter(outputs.new(path), fields[0], width))
    return writers
