"""Atomic outputs of the command line: temp file, fsync, rename; several outputs through a journal.

Outputs are written to a temporary file next to the final one, fsynced and renamed into place;
on any error (or Ctrl-C) the temporary files are removed, so no half-written output remains.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from typing import Any, BinaryIO

from ._cli_io import CliError
from ._cli_journal import (
    JOURNAL_FORMAT,
    JOURNAL_PREFIX,
    JOURNAL_SUFFIX,
    finish_journal,
    fsync_dir,
    fsync_dirs,
    lock,
    recover_interrupted_writes,
    remove_journals,
    remove_stale_temps,
    temp_name,
)

#: The Parquet/Arrow schema metadata key holding the id of the run that wrote the file.
RUN_ID_KEY = "q2key.run"


def check_output_path(path: str) -> tuple[str, str]:
    """The directory and name of an output, checked to be writable there; a one-line error otherwise."""
    folder, name = os.path.split(os.path.abspath(path))
    if os.path.isdir(path):
        raise CliError(f"{path}: is a directory")
    if not os.path.isdir(folder):
        raise CliError(f"{path}: directory {folder} does not exist")
    return folder, name


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
        folder, name = check_output_path(path)
        self.tmp: str | None = os.path.join(folder, temp_name(name))
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
        lock(self._lock_fd, wait=True)
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
            fsync_dirs(f.path for f in self._files)
            return
        journal = self._write_journals()
        for f in self._files:
            f.done = True  # from here on the journal owns the temporary files: never discarded
        try:
            try:
                for f in self._files:
                    os.replace(f.tmp or "", f.path)
                fsync_dirs(f.path for f in self._files)
            except BaseException:
                # Interrupted (Ctrl-C, SIGTERM) or failed between renames: never leave a mix. Finish
                # the renames; if that fails too, the journal stays for the next command.
                with contextlib.suppress(BaseException):
                    finish_journal(journal["content"])
                raise
            remove_journals(journal["content"]["journals"])
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
            "format": JOURNAL_FORMAT,
            "run": self.run_id,
            "pid": os.getpid(),
            "journals": paths,
            "renames": renames,
        }
        text = json.dumps(content, indent=1).encode()
        fds: list[int] = []
        try:
            for jpath in paths:
                tmp = os.path.join(os.path.dirname(jpath), temp_name(name))
                fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
                fds.append(fd)
                lock(fd, wait=True)
                try:
                    os.write(fd, text)
                    os.fsync(fd)
                    os.replace(tmp, jpath)
                except BaseException:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(tmp)
                    raise
                fsync_dir(os.path.dirname(jpath))
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


def write_bytes_atomic(path: str, data: bytes) -> None:
    with Outputs() as out:
        out.new(path).file.write(data)
