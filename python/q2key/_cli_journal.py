"""The commit journal of the command line's outputs, and the recovery of interrupted commits.

Every output is written to a temporary file next to it (:mod:`._cli_commit`); the helpers here
name and lock those files, and complete or undo what a killed run left behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import sys
from collections.abc import Iterable
from typing import Any

from ._cli_io import CliError

# Every output is written to a temporary file ``.<name>.tmp-<pid>-<random>`` next to it, which its
# writer holds an exclusive ``flock`` on until it is renamed into place. Several outputs of one run
# are committed through a roll-forward journal (``.q2key-commit-<run>.journal``, one copy in each
# directory holding an output): once every temporary file is synced, the journal naming the renames
# is written and synced, the renames are done, then the journal is removed. A run interrupted after
# the journal was written is completed by the next q2key command that writes or reads one of its
# outputs (which says so on stderr); one interrupted before leaves the old outputs and temporary
# files that the next command removes (their writer's pid is no longer alive and their lock is
# free). So the outputs of a run are all old or all new, or a journal says which run is half done.

JOURNAL_PREFIX = ".q2key-commit-"
JOURNAL_SUFFIX = ".journal"
JOURNAL_FORMAT = "q2key-commit-journal/1"


def temp_name(name: str) -> str:
    return f".{name}.tmp-{os.getpid()}-{secrets.token_hex(8)}"


def _temp_pattern(name_pattern: str) -> re.Pattern[str]:
    """The temporary files of the files whose names match ``name_pattern`` (group 1: the writer's pid)."""
    return re.compile(rf"\.{name_pattern}\.tmp-(\d+)-[0-9a-f]+")


_JOURNAL_TEMPS = _temp_pattern(rf"{re.escape(JOURNAL_PREFIX)}[0-9a-f]+{re.escape(JOURNAL_SUFFIX)}")


def lock(fd: int, *, wait: bool) -> bool:
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
        if not lock(fd, wait=False):
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
        if not isinstance(journal, dict) or journal.get("format") != JOURNAL_FORMAT:
            raise ValueError("not a q2key commit journal")
        renames = [(str(a), str(b)) for a, b in journal["renames"]]
        journals = [str(j) for j in journal["journals"]]
        if not journals or not renames:
            raise ValueError("no journals or no renames listed")
        return {"run": str(journal["run"]), "pid": int(journal["pid"]), "renames": renames, "journals": journals}
    except (ValueError, KeyError, TypeError) as e:
        raise CliError(f"{path}: damaged commit journal ({e}); remove it and run the command again") from None


def finish_journal(journal: dict[str, Any]) -> str:
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
        fsync_dirs(final for _, final in renames)
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
    fsync_dirs(journals)
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
            if not lock(fd, wait=False):
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
                        lock(ofd, wait=True)
            try:
                outcome = finish_journal(journal)
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


def fsync_dir(folder: str) -> None:
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


def fsync_dirs(paths: Iterable[str]) -> None:
    for folder in dict.fromkeys(os.path.dirname(os.path.abspath(p)) for p in paths):
        fsync_dir(folder)


def remove_journals(journals: list[str]) -> None:
    """Removes a completed commit's journals, the first one first (see :func:`finish_journal`)."""
    for j in journals:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(j)
    fsync_dirs(journals)
