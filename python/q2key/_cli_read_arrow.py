"""The Parquet / Arrow IPC reader of the command line (see :mod:`._cli_read`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

from ._cli_io import CliError, first_line, import_pyarrow
from ._cli_source import Source, rebatch


class ArrowSource(Source):
    """A list-of-floats column of a Parquet file or an Arrow IPC file/stream, one record batch at a time.

    Fixed-size lists give the dimension in the schema; variable-size lists (``list``/``large_list``,
    what pandas and most dataset tools write) are accepted when every row has the length of the
    first one, checked batch by batch from the list offsets.
    """

    def __init__(self, path: str, column: str | None, *, parquet: bool) -> None:
        self.path = path
        self._pa = pa = import_pyarrow("reading Parquet/Arrow files")
        self._parquet = parquet
        self._file: Any = None
        self._reader: Any = None
        self._peeked: list[Any] = []  # record batches of an IPC stream read to find the dimension
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
            raise CliError(f"{path}: cannot read ({first_line(e)})") from None
        self.column = self._pick(schema, column)
        t = schema.field(self.column).type
        self._fixed = bool(pa.types.is_fixed_size_list(t))
        self.dim = int(t.list_size) if self._fixed else self._first_row_length()
        self.dtype = pa.array([], type=t.value_type).to_numpy(zero_copy_only=False).dtype  # no pandas needed

    def _pick(self, schema: Any, column: str | None) -> str:
        pa = self._pa

        def usable(t: Any) -> bool:
            lists = pa.types.is_fixed_size_list(t) or pa.types.is_list(t) or pa.types.is_large_list(t)
            return bool(lists) and (pa.types.is_floating(t.value_type) or pa.types.is_integer(t.value_type))

        if column is None:
            found = [f.name for f in schema if usable(f.type)]
            if len(found) != 1:
                fields = ", ".join(f"{f.name} ({f.type})" for f in schema) or "none"
                which = "no" if not found else f"{len(found)}"
                raise CliError(
                    f"{self.path}: {which} list-of-floats columns; choose one with --column NAME (columns: {fields})"
                )
            return str(found[0])
        if column not in schema.names:
            raise CliError(f"{self.path}: no column {column!r} (columns: {', '.join(schema.names)})")
        t = schema.field(column).type
        if not usable(t):
            raise CliError(f"{self.path}: column {column!r} is {t}; expected a list of floats")
        return column

    def _first_row_length(self) -> int:
        """The length of the first non-null row of a variable-size list column: the dimension."""
        try:
            for rb in self._record_batches(1024, peek=True):
                arr = rb.column(0)
                if len(arr) > arr.null_count:
                    first = int(np.argmin(arr.is_null().to_numpy(zero_copy_only=False)))
                    return len(arr[first].values)
        except self._pa.ArrowException as e:
            self.close()
            raise CliError(f"{self.path}: cannot read ({first_line(e)})") from None
        self.close()
        raise CliError(f"{self.path}: column {self.column!r} has no rows to tell the dimension of its lists")

    def _record_batches(self, batch_rows: int, *, peek: bool = False) -> Iterator[Any]:
        """The column's record batches; ``peek`` on an IPC stream keeps those read for the next call."""
        if self._parquet:
            yield from self._reader.iter_batches(batch_size=batch_rows, columns=[self.column])
        elif hasattr(self._reader, "num_record_batches"):
            for i in range(self._reader.num_record_batches):
                yield self._reader.get_batch(i).select([self.column])
        else:
            if not peek:
                yield from self._peeked
                self._peeked = []
            for rb in self._reader:
                rb = rb.select([self.column])
                if peek:
                    self._peeked.append(rb)
                yield rb

    def _matrices(self, batch_rows: int) -> Iterator[npt.NDArray[Any]]:
        start = 0
        try:
            for rb in self._record_batches(batch_rows):
                arr = rb.column(0)
                yield self._to_matrix(arr, start)
                start += len(arr)
        except self._pa.ArrowException as e:
            raise CliError(f"{self.path}: cannot read ({first_line(e)})") from None

    def _to_matrix(self, arr: Any, start: int) -> npt.NDArray[Any]:
        if arr.null_count:
            row = start + int(np.argmax(arr.is_null().to_numpy(zero_copy_only=False)))
            raise CliError(f"{self.path}: column {self.column!r}: row {row} is null")
        if not self._fixed:
            lengths = np.diff(np.asarray(arr.offsets.to_numpy(zero_copy_only=False), dtype=np.int64))
            bad = np.nonzero((lengths != self.dim) & ~arr.is_null().to_numpy(zero_copy_only=False))[0]
            if len(bad):
                row = int(bad[0])
                raise CliError(
                    f"{self.path}: column {self.column!r}: row {start + row} holds {int(lengths[row])} values, "
                    f"the first row {self.dim}; every vector needs the same dimension"
                )
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
