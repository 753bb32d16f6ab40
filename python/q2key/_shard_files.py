"""A sharded index on disk: shard files, the manifest naming them, and the merge of shard results.

No Dask here: ``q2key.dask.build_index`` / ``q2key.dask.ShardedIndex`` (``_shard_build.py``, ``_sharded.py``) run the
work on a cluster; this module says what the directory holds and how results combine.

A directory holds ``manifest.json`` and one ordinary saved index per shard
(``shard-<number>.<generation>.q2``, opened alone by ``q2key.Index.load``). The manifest is the
only truth: a shard file it does not name is ignored (and removed by the next writer), so every
change — build, append, removal — writes new shard files first and the manifest LAST, atomically
(temp file, fsync, rename, fsync of the directory). Killed anywhere, the directory reads as the
old manifest or the new one. A removal never rewrites a shard file in place: it writes the next
generation under a new name, so the old manifest stays valid until the new one replaces it.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, Callable, NamedTuple

import numpy as np
import numpy.typing as npt

from ._errors import FormatError, Q2KeyError, ShapeError
from ._index import Index
from ._ivf import IVFIndex
from ._results import SearchResult
from ._thresholds import Thresholds

MANIFEST = "manifest.json"
#: Written by the directory's single writer: a manifest temp ``manifest.json.tmp-<pid>-<hex>``.
_TEMP_PREFIX = MANIFEST + ".tmp-"
_LOCK = ".q2key-lock"
_FORMAT = "q2key-sharded-index"
#: Manifest version this code writes and the newest it reads.
VERSION = 1


# -- index kinds --------------------------------------------------------------------------------------------


class ShardKind(NamedTuple):
    """How one kind of index is made, opened and readied: a kind is a name in the manifest.

    ``empty(dim, thresholds, weights, sample, options)`` makes the build's *template*: an empty
    index with everything fitted once (thresholds; an inverted file's centroids, trained on
    ``sample()``), saved as ``template.q2`` beside the shards. Every shard starts as a copy of it:
    ``load(path, mmap)`` opens a file of the kind, ``warm(index)`` readies an opened shard,
    ``ids(index)`` are the ids it stores (uint64, any order).
    """

    empty: Callable[[int, Thresholds, tuple[float, float, float] | None, Callable[[], Any], dict[str, Any]], Any]
    load: Callable[[str, bool], Any]
    warm: Callable[[Any], None]
    ids: Callable[[Any], npt.NDArray[np.uint64]]


def _warm_asymmetric(index: Any) -> None:
    if getattr(index, "weights", None) is None and len(index):
        # The first asymmetric search computes ‖x̂‖ of every row; do it now, once per open, not in a batch.
        index.search(np.ones((1, index.dim), dtype=np.float32), k=1, scoring="asymmetric", threads=1)


#: What ``kind_options`` an ``"ivf"`` build takes: :meth:`q2key.IVFIndex.train`'s arguments.
_IVF_OPTIONS = ("lists", "points_per_list", "iterations", "seed")


def _empty_ivf(
    dim: int,
    th: Thresholds,
    weights: tuple[float, float, float] | None,
    sample: Callable[[], Any],
    options: dict[str, Any],
) -> IVFIndex:
    """The inverted-file template: centroids trained once on the build sample; every shard starts from them."""
    if weights is not None:
        raise Q2KeyError("inverted-file shards take no weights (weighted Lee is for kind='flat')", arg="weights")
    unknown = sorted(set(options) - set(_IVF_OPTIONS))
    if unknown:
        raise Q2KeyError(f"expected options among {', '.join(_IVF_OPTIONS)}, got {unknown}", arg="kind_options")
    index = IVFIndex(dim, threshold=th)
    index.train(sample(), **options)
    return index


KINDS: dict[str, ShardKind] = {
    "flat": ShardKind(
        empty=lambda dim, th, w, sample, options: Index(dim, threshold=th, weights=w),
        load=lambda path, mmap: Index.load(path, mmap=mmap),
        warm=_warm_asymmetric,
        ids=lambda index: index.views()[2],
    ),
    "ivf": ShardKind(
        empty=_empty_ivf,
        load=lambda path, mmap: IVFIndex.load(path, mmap=mmap),
        warm=_warm_asymmetric,
        ids=lambda index: index.ids(),
    ),
}
#: The template's file name in the directory.
TEMPLATE = "template.q2"


# -- the manifest -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShardInfo:
    """One shard of the manifest: its file, live rows and the smallest and largest id (``None`` when empty)."""

    file: str
    rows: int
    min_id: int | None
    max_id: int | None

    def covers(self, ids: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
        """The ids of a sorted array that fall in this shard's id range."""
        if self.min_id is None or self.max_id is None:
            return ids[:0]
        lo, hi = np.searchsorted(ids, np.uint64(self.min_id)), np.searchsorted(ids, np.uint64(self.max_id), "right")
        return ids[lo:hi]


@dataclass(frozen=True)
class Manifest:
    """What ``manifest.json`` says: format version, index kind, dimension, thresholds, shards."""

    build: str  # a random id of the build: futures of two builds at one path never share a key
    kind: str
    dim: int
    thresholds: Thresholds
    weights: tuple[float, float, float] | None
    next_id: int  # ids assigned by add() start here
    next_shard: int  # shard numbers are never reused
    shards: tuple[ShardInfo, ...]

    @staticmethod
    def new(kind: str, dim: int, thresholds: Thresholds, weights: tuple[float, float, float] | None) -> Manifest:
        return Manifest(uuid.uuid4().hex, kind, dim, thresholds, weights, 0, 0, ())

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.shards)

    def with_shards(self, shards: Sequence[ShardInfo], next_shard: int) -> Manifest:
        top = max((s.max_id for s in shards if s.max_id is not None), default=-1)
        return replace(self, shards=tuple(shards), next_shard=next_shard, next_id=max(self.next_id, top + 1))

    def to_json(self) -> str:
        doc = {
            "format": _FORMAT,
            "version": VERSION,
            "build": self.build,
            "kind": self.kind,
            "dim": self.dim,
            "thresholds": json.loads(self.thresholds.to_json()),
            "weights": None if self.weights is None else list(self.weights),
            "next_id": self.next_id,
            "next_shard": self.next_shard,
            "shards": [vars(s) for s in self.shards],
        }
        return json.dumps(doc, indent=1)

    @staticmethod
    def from_json(text: str, where: str) -> Manifest:
        try:
            doc = json.loads(text)
            if doc.get("format") != _FORMAT:
                raise FormatError(f"{where} is not a q2key sharded-index manifest", arg="directory")
            if not isinstance(doc["version"], int) or doc["version"] > VERSION:
                raise FormatError(
                    f"{where} has manifest version {doc['version']}; this q2key reads up to {VERSION}", arg="directory"
                )
            if doc["kind"] not in KINDS:
                raise FormatError(f"{where} holds shards of unknown kind {doc['kind']!r}", arg="directory")
            shards = tuple(ShardInfo(str(s["file"]), int(s["rows"]), s["min_id"], s["max_id"]) for s in doc["shards"])
            w = doc["weights"]
            return Manifest(
                str(doc["build"]),
                str(doc["kind"]),
                int(doc["dim"]),
                Thresholds.from_json(json.dumps(doc["thresholds"])),
                None if w is None else (float(w[0]), float(w[1]), float(w[2])),
                int(doc["next_id"]),
                int(doc["next_shard"]),
                shards,
            )
        except FormatError:
            raise
        except (ValueError, KeyError, TypeError, IndexError) as e:
            raise FormatError(f"{where} is not a valid manifest: {e}", arg="directory") from e


def shard_file(number: int, generation: int = 0) -> str:
    return f"shard-{number:05d}.{generation}.q2"


def next_generation(file: str) -> str:
    """``shard-00003.1.q2`` → ``shard-00003.2.q2``."""
    stem, gen, ext = file.rsplit(".", 2)
    return f"{stem}.{int(gen) + 1}.{ext}"


def read_manifest(directory: str) -> Manifest:
    path = os.path.join(directory, MANIFEST)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise FormatError(
            f"no {MANIFEST} in {directory!r}: not a sharded index (or its build never finished)", arg="directory"
        ) from None
    return Manifest.from_json(text, path)


def _fsync_directory(directory: str) -> None:
    if os.name == "nt":  # directories cannot be opened for fsync on Windows; rename is durable there
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_manifest(directory: str, manifest: Manifest) -> None:
    """Replaces the manifest atomically: temp file, fsync, rename, fsync of the directory."""
    temp = os.path.join(directory, f"{_TEMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        with open(temp, "w", encoding="utf-8") as f:
            f.write(manifest.to_json())
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, os.path.join(directory, MANIFEST))
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temp)
        raise
    _fsync_directory(directory)


def remove_files(directory: str, files: Sequence[str]) -> None:
    for f in files:
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(directory, f))


def clean_up(directory: str, manifest: Manifest | None) -> list[str]:
    """Removes what an interrupted writer left: manifest temps, and shard files no manifest names.

    Only called with the writer's lock held (see :func:`writer_lock`): no live writer's files are removed.
    """
    named = set() if manifest is None else {s.file for s in manifest.shards}
    gone = [
        name
        for name in os.listdir(directory)
        if name.startswith(_TEMP_PREFIX) or (name.startswith("shard-") and ".q2" in name and name not in named)
    ]
    remove_files(directory, gone)
    return gone


@contextlib.contextmanager
def writer_lock(directory: str, *, wait: bool = True) -> Iterator[bool]:
    """One writer per directory (an advisory ``flock`` on ``.q2key-lock``); yields whether it was taken.

    ``wait=False`` yields False at once when another writer holds it. Without ``fcntl`` (Windows)
    it yields True: one writer at a time is then the caller's promise.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield True
        return
    fd = os.open(os.path.join(directory, _LOCK), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # closing drops the lock


# -- routing and merging ------------------------------------------------------------------------------------


def check_disjoint(shards: Sequence[ShardInfo], ids_of: Callable[[int, int], npt.NDArray[np.uint64]]) -> None:
    """Raises naming ``ids`` when two shards hold the same id.

    Shards whose id ranges do not overlap cannot share one; ``ids_of(i, j)`` gives the ids common
    to shards ``i`` and ``j`` (computed where the shards are) for the pairs whose ranges overlap.
    """
    spans = sorted((s.min_id, s.max_id, i) for i, s in enumerate(shards) if s.min_id is not None)
    for a in range(len(spans)):
        for b in range(a + 1, len(spans)):
            if spans[b][0] > spans[a][1]:  # type: ignore[operator]
                break
            i, j = sorted((spans[a][2], spans[b][2]))
            common = ids_of(i, j)
            if common.size:
                raise Q2KeyError(
                    f"id {int(common[0])} is in two shards ({shards[i].file} and {shards[j].file}); "
                    "ids must be unique across the whole index",
                    arg="ids",
                )


def merge(results: Sequence[SearchResult], k: int) -> SearchResult:
    """The best ``k`` of each query over several shards' top-k lists, by (distance, id).

    ``results``: one :class:`q2key.SearchResult` per shard for the same queries (each shard's own
    best ``k``, as :meth:`q2key.Index.search` returns them); ids must be unique across shards.
    Equals one index over the same rows because each shard's list is its own best by the same
    order (a single ``Index`` breaks ties by the lower id too), so the global best ``k`` are among
    the shards' best ``k`` and sort the same way.
    """
    if not results:
        raise Q2KeyError("expected the results of at least one shard, got none", arg="results")
    rows = results[0].ids.shape[0] if results[0].ids.ndim else -1
    for n, r in enumerate(results):
        # A result of another shape (a shard searched with other queries, a 1-D result) would make
        # the concatenation below raise a bare IndexError (numpy's AxisError) or merge wrong rows.
        if r.ids.ndim != 2 or r.distances.shape != r.ids.shape or r.ids.shape[0] != rows:
            raise ShapeError(
                f"result {n} has ids of shape {r.ids.shape} and distances of shape {r.distances.shape}; "
                f"expected both (queries, columns) with the {rows} query rows of result 0",
                arg="results",
            )
    dist = np.concatenate([r.distances for r in results], axis=1)
    ids = np.concatenate([r.ids for r in results], axis=1)
    order = np.lexsort((ids, dist), axis=1)[:, :k]  # the last key is the primary one
    return SearchResult(np.take_along_axis(dist, order, axis=1), np.take_along_axis(ids, order, axis=1))
