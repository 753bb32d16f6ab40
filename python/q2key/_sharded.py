"""A sharded index served by Dask: :class:`ShardedIndex` (built by :func:`build_index`, ``_shard_build.py``).

Serving model: persisted futures, not actors. Each shard is the result of a pure task
``open(path)`` (the file memory-mapped) held by the client as a future, so it stays resident on
one worker and searches run where it is (its ``sizeof`` is its file size, so the scheduler sends
the search to the data and not the other way). When that worker dies the scheduler recomputes the
lost future from its task — re-opening the file on another worker — and the searches waiting for
it run there: recovery for free. An actor lives and dies with its worker and is never recomputed;
we would have to notice the death and re-create it ourselves. A shard that must move anyway
(rebalancing, spilling) pickles as its path and re-opens on arrival: no codes are copied.
A batch's queries are scattered data, not a task: if a dying worker held their last copy, the
searches that needed them are cancelled, and the batch sends those again (``ShardedIndex._gather``).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from typing import Any

import numpy as np

from . import _args
from ._errors import DTypeError, Q2KeyError
from ._index import Scoring
from ._index_args import Rescore, filter_arrays, id_list, rescore_candidates
from ._inputs import float_rows
from ._results import SearchResult
from ._shard_build import dask_module, rewrite_shard, write_shards
from ._shard_files import (
    KINDS,
    TEMPLATE,
    Manifest,
    ShardInfo,
    clean_up,
    merge,
    next_generation,
    read_manifest,
    remove_files,
    write_manifest,
    writer_lock,
)
from ._thresholds import Thresholds

# -- on the workers -----------------------------------------------------------------------------------------


class ResidentShard:
    """One open shard on a worker. Pickles as its path: moving it re-opens the file (mapped), copying nothing."""

    def __init__(self, path: str, kind: str) -> None:
        _register_sizeof()  # in the worker process that holds it (a worker that joined later too)
        self.path, self.kind = path, kind
        self.index = KINDS[kind].load(path, True)
        KINDS[kind].warm(self.index)
        self.nbytes = os.path.getsize(path)

    def __reduce__(self) -> tuple[Any, ...]:
        return (ResidentShard, (self.path, self.kind))


def _register_sizeof() -> None:
    # Dask estimates an unknown object at a few dozen bytes: it would then move a shard to the
    # queries. Its file size says where the data is.
    sizeof: Any = dask_module("dask.sizeof").sizeof
    if ResidentShard not in sizeof._lookup:
        sizeof.register(ResidentShard)(lambda shard: shard.nbytes)


def _search_shard(shard: ResidentShard, queries: Any, k: int, filter: Any, options: dict[str, Any]) -> SearchResult:
    return SearchResult(*shard.index.search(queries, k, filter=filter, **options))


_RETRIES = 3  # batches re-sent after a worker took the queries with it (see ShardedIndex._gather)

# -- serving ------------------------------------------------------------------------------------------------


ShardFuture = Any  # distributed.Future of a ResidentShard


class ShardedIndex:
    """A sharded index in a directory (see :func:`build_index`), its shards open on a ``distributed.Client``'s workers.

    Opening cleans what an interrupted writer left (when no writer is at work) and opens each
    non-empty shard once, memory-mapped, on the least-loaded worker. :meth:`search` answers as one
    :class:`q2key.Index` over all the rows would, exactly; :meth:`add` and :meth:`remove` change
    the directory crash-safely; :meth:`rebalance` spreads the shards over the current workers.
    """

    def __init__(self, directory: str | os.PathLike[str], client: Any) -> None:
        distributed = dask_module("distributed")
        if not isinstance(client, distributed.Client):
            raise DTypeError(f"expected a distributed.Client, got {type(client).__name__}", arg="client")
        self._client = client
        self._directory = os.path.abspath(_args.path("directory", directory))
        with writer_lock(self._directory, wait=False) as mine:
            self._manifest = read_manifest(self._directory)
            if mine:  # a writer killed mid-way left temps or unnamed shard files behind
                clean_up(self._directory, self._manifest)
        m = self._manifest
        # The empty template: it checks every search argument, with the index's words, and gives
        # the empty answer's shape and dtypes.
        self._local = KINDS[m.kind].load(os.path.join(self._directory, TEMPLATE), False)
        self._futures: dict[str, ShardFuture] = {}
        self._place(list(m.shards))

    # -- what it is -----------------------------------------------------------------------------------------

    @property
    def directory(self) -> str:
        return self._directory

    @property
    def manifest(self) -> Manifest:
        return self._manifest

    @property
    def dim(self) -> int:
        return self._manifest.dim

    @property
    def thresholds(self) -> Thresholds:
        return self._manifest.thresholds

    def __len__(self) -> int:
        return self._manifest.rows

    def __repr__(self) -> str:
        m = self._manifest
        return f"<q2key.dask.ShardedIndex {self._directory!r} kind={m.kind} rows={m.rows} shards={len(m.shards)}>"

    # -- placement ------------------------------------------------------------------------------------------

    def _workers(self) -> list[str]:
        try:
            info = self._client.scheduler_info(n_workers=-1)  # all of them (newer distributed lists 5 by default)
        except TypeError:  # distributed before 2025 lists every worker and takes no n_workers
            info = self._client.scheduler_info()
        return sorted(info["workers"])

    def _holders(self) -> dict[str, set[str]]:
        """Shard file → the workers that hold it open now."""
        who = self._client.who_has(list(self._futures.values()))
        return {f: set(who.get(fut.key, ())) for f, fut in self._futures.items()}

    def _place(self, shards: list[ShardInfo], *, rebalance: bool = False) -> None:
        """Opens ``shards`` largest first, each on the least-loaded worker (by rows held).

        With ``rebalance``, ``shards`` are already open: one stays where it is unless another
        worker holds fewer rows, and a moved one is re-opened on its new worker from its file.
        """
        workers = self._workers()
        holders = self._holders() if self._futures else {}
        moving = {s.file for s in shards}
        load = dict.fromkeys(workers, 0)
        for s in self._manifest.shards:
            if s.file not in moving:
                for w in holders.get(s.file, ()):
                    if w in load:
                        load[w] += s.rows
        for s in sorted(shards, key=lambda s: -s.rows):
            if not s.rows:
                continue  # nothing to search: never opened
            current = holders.get(s.file, set()) if rebalance else set()
            target = min(workers, key=lambda w: (load[w], w not in current, w)) if workers else None
            if target is not None:
                load[target] += s.rows
            if target in current or (target is None and s.file in self._futures):
                continue
            old = self._futures.get(s.file)
            self._futures[s.file] = self._client.submit(
                ResidentShard,
                os.path.join(self._directory, s.file),
                self._manifest.kind,
                key=f"q2key-shard-{self._manifest.build}-{s.file}-{uuid.uuid4().hex[:8]}",
                workers=None if target is None else [target],  # no worker yet: the first to join opens it
                allow_other_workers=True,  # if its worker dies the scheduler re-opens it elsewhere
                pure=False,
            )
            if old is not None:
                dask_module("distributed").wait([self._futures[s.file]])  # the new copy is open before the old goes
                old.release()

    def rebalance(self) -> dict[str, list[str]]:
        """Spreads the shards over the current workers (one that joined later takes some); returns the placement.

        Moved shards are re-opened from their files on the new worker, then the old copies are released.
        """
        distributed = dask_module("distributed")
        distributed.wait(list(self._futures.values()))
        self._place(list(self._manifest.shards), rebalance=True)
        distributed.wait(list(self._futures.values()))
        return self.placement()

    def placement(self) -> dict[str, list[str]]:
        """Which worker holds which shard file (once every shard is open)."""
        dask_module("distributed").wait(list(self._futures.values()))
        who = self._client.who_has(list(self._futures.values()))
        out: dict[str, list[str]] = {}
        for file, fut in self._futures.items():
            for w in who.get(fut.key, ()):
                out.setdefault(w, []).append(file)
        return out

    # -- searching ------------------------------------------------------------------------------------------

    def search(
        self,
        queries: Any,
        k: int = 10,
        *,
        filter: Any = None,
        rescore: Rescore | None = None,
        oversample: int = 4,
        complement: bool = False,
        threads: int | None = 1,
        scoring: Scoring = "auto",
        timeout: float | None = None,
        nprobe: int | None = None,
    ) -> SearchResult:
        """:meth:`q2key.Index.search` over every shard: equal, ids and distances, to one index of the same rows.

        Each shard's best ``k`` (``k · oversample`` with ``rescore=``) are merged by (distance, id),
        the order a single index uses (ties to the lower id), then re-scored on the client.
        ``threads`` is each shard search's (default 1: Dask runs a task per worker thread).
        ``timeout`` (seconds, default no limit): the whole batch, including re-opening shards of a
        worker that died meanwhile; past it ``TimeoutError`` is raised — never a partial answer.
        ``nprobe``: lists each shard of kind ``"ivf"`` scans (:meth:`q2key.IVFIndex.search`; every
        shard shares the template's centroids, so the answer is one ``IVFIndex``'s over the same rows).
        """
        options: dict[str, Any] = {"threads": threads, "scoring": scoring}
        if complement:
            options["complement"] = complement
        if nprobe is not None:
            if self._manifest.kind == "flat":
                raise Q2KeyError("flat shards are searched exhaustively; nprobe is for kind='ivf'", arg="nprobe")
            options["nprobe"] = nprobe
        empty = SearchResult(
            *self._local.search(queries, k, filter=filter, rescore=rescore, oversample=oversample, **options)
        )
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))):
            raise DTypeError(f"expected a number of seconds or None, got {type(timeout).__name__}", arg="timeout")
        if timeout is not None and not timeout > 0:
            raise Q2KeyError(f"expected a positive number of seconds or None, got {timeout!r}", arg="timeout")
        k = _args.size("k", k)
        a = np.asarray(queries)
        q = a if a.dtype == np.uint8 else float_rows(a, "queries")[0]
        wide = k if rescore is None else min(k * _args.size("oversample", oversample), _args.SIZE_MAX)
        routed = self._route(filter)
        if not routed:
            return empty
        results = self._gather(routed, q, wide, options, timeout, len(empty.ids))
        merged = merge(results, wide)
        if rescore is None:
            return merged
        return rescore_candidates(q, merged.ids, rescore, k)

    def _route(self, filter: Any) -> list[tuple[ShardInfo, Any]]:
        """The shards that may hold an allowed row, each with its part of the filter (ids in its range)."""
        ids_f, mask_f = filter_arrays(filter)
        out: list[tuple[ShardInfo, Any]] = []
        if ids_f is not None:
            ids_f = np.unique(ids_f)
        for s in self._manifest.shards:
            if not s.rows or s.min_id is None or s.max_id is None:
                continue
            if ids_f is not None:
                part: Any = s.covers(ids_f)
                if not part.size:
                    continue
            elif mask_f is not None:
                if not mask_f[s.min_id : s.max_id + 1].any():
                    continue
                part = mask_f[: s.max_id + 1].view(np.bool_)
            else:
                part = None
            out.append((s, part))
        return out

    def _gather(
        self,
        routed: list[tuple[ShardInfo, Any]],
        queries: Any,
        k: int,
        options: dict[str, Any],
        timeout: float | None,
        rows: int,
    ) -> list[SearchResult]:
        """Each routed shard's top ``k`` for the ``rows`` queries, all of them or an exception.

        A worker that dies mid-batch can take the only copy of the scattered queries with it (the
        scheduler's memory manager keeps one replica once the other workers' searches are done);
        the searches that needed it are then cancelled, not rescheduled. They are sent again, with
        the queries scattered anew, while the client runs and time is left — at most
        ``_RETRIES`` times, then ``OSError``. The shards themselves are recomputed by the scheduler.
        """
        client = self._client
        deadline = None if timeout is None else time.monotonic() + timeout
        results: dict[int, SearchResult] = {}
        waiting = list(range(len(routed)))
        for attempt in range(_RETRIES + 1):
            [shared] = client.scatter([queries], broadcast=True, hash=False)  # once per try, to every worker
            futures = {
                i: client.submit(
                    _search_shard, self._futures[routed[i][0].file], shared, k, routed[i][1], options, pure=False
                )
                for i in waiting
            }
            try:
                why = self._wait(futures, routed, timeout, deadline)
                cancelled = [i for i, f in futures.items() if f.cancelled()]
                done = [i for i in futures if i not in cancelled]
                results.update(zip(done, client.gather([futures[i] for i in done])))  # one round trip
            except Q2KeyError:
                raise
            except Exception as e:
                if type(e).__name__ == "KilledWorker":
                    raise OSError(f"q2key: a shard could not be searched, its workers kept dying: {e}") from e
                raise
            finally:
                client.cancel([*futures.values(), shared])
            if not cancelled:
                break
            if client.status != "running" or attempt == _RETRIES:
                raise OSError(f"q2key: a shard search was cancelled (client or cluster closing?): {why}")
            waiting = cancelled
        out = [results[i] for i in range(len(routed))]
        for (s, _), r in zip(routed, out):
            # Never merge an answer to other queries: a shard result is (queries, ≤ k) or the batch fails.
            if not isinstance(r, SearchResult) or r.ids.shape != r.distances.shape or r.ids.shape[:1] != (rows,):
                raise OSError(f"q2key: shard {s.file} answered {type(r).__name__} of another shape, not {rows} rows")
        return out

    @staticmethod
    def _wait(
        futures: dict[int, Any], routed: list[tuple[ShardInfo, Any]], timeout: float | None, deadline: float | None
    ) -> str:
        """Waits until every future is done or past ``deadline`` (``TimeoutError``); returns why some were cancelled."""
        distributed = dask_module("distributed")
        left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
        try:
            distributed.wait(list(futures.values()), timeout=left)
        except (TimeoutError, asyncio.TimeoutError, distributed.TimeoutError) as e:
            late = [routed[i][0].file for i, f in futures.items() if not f.done()]
            raise TimeoutError(
                f"q2key: the search of {len(late)} of {len(routed)} shards ({', '.join(late[:3])}"
                f"{', …' if len(late) > 3 else ''}) did not finish within timeout={timeout} s"
            ) from e
        except (distributed.client.FutureCancelledError, distributed.client.FuturesCancelledError) as e:
            return str(e)  # wait() raises it once all are done if any was cancelled
        return ""

    # -- writing --------------------------------------------------------------------------------------------

    def add(self, vectors: Any, ids: Any = None, *, shards: int | None = None) -> tuple[ShardInfo, ...]:
        """Appends new shards from a dask (or numpy) array and rewrites the manifest; returns the new shards.

        Ids default to ``manifest.next_id, …`` (one past the largest id ever stored) in row order.
        Ids already in another shard raise naming ``ids``, and nothing is added.
        """
        with writer_lock(self._directory):
            m = read_manifest(self._directory)
            new, number = write_shards(self._directory, m, vectors, ids, shards)
            try:
                self._manifest = m.with_shards([*m.shards, *new], number)
                write_manifest(self._directory, self._manifest)
            except BaseException:
                remove_files(self._directory, [s.file for s in new])
                self._manifest = m
                raise
        self._place(new)
        return tuple(new)

    def remove(self, ids: Any) -> int:
        """Removes ``ids`` (unknown ones are ignored) from the shards whose id range holds them; returns how many.

        Each changed shard is written as its next generation (a new file), then the manifest is
        replaced, then the old files are deleted: killed anywhere, the old or the new state.
        """
        wanted = np.unique(id_list(ids))
        distributed = dask_module("distributed")
        with writer_lock(self._directory):
            m = read_manifest(self._directory)
            jobs = {}
            for s in m.shards:
                part = s.covers(wanted)
                if part.size:
                    old, new = (os.path.join(self._directory, f) for f in (s.file, next_generation(s.file)))
                    jobs[s.file] = self._client.submit(rewrite_shard, old, new, part, m.kind, pure=False)
            done = dict(zip(jobs, self._client.gather(list(jobs.values()))))
            changed = {f: r for f, r in done.items() if r[0]}
            shards = [
                ShardInfo(next_generation(s.file), *changed[s.file][1:]) if s.file in changed else s for s in m.shards
            ]
            try:
                manifest = m.with_shards(shards, m.next_shard)
                write_manifest(self._directory, manifest)
            except BaseException:
                remove_files(self._directory, [next_generation(f) for f in changed])
                raise
            self._manifest = manifest
            remove_files(self._directory, list(changed))
        for f in changed:
            old_future = self._futures.pop(f, None)
            if old_future is not None:
                old_future.release()
        self._place([s for s in manifest.shards if s.file in {next_generation(f) for f in changed}])
        distributed.wait(list(self._futures.values()))
        return sum(r[0] for r in changed.values())

    def close(self) -> None:
        """Releases the shards from the workers."""
        self._client.cancel(list(self._futures.values()))
        self._futures.clear()

    def __enter__(self) -> ShardedIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
