"""q2key.IVFIndex: an inverted file of Q² codes — a search reads only the lists nearest the query."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from . import _args, _native
from ._args import threads as check_threads
from ._encode import ThresholdLike
from ._errors import DTypeError, Q2KeyError, ShapeError
from ._index import _thresholds_for
from ._index_args import Rescore, filter_arrays, id_array, id_list, index_codes, index_floats, rescore_candidates
from ._results import SearchResult
from ._thresholds import Thresholds

#: How :meth:`IVFIndex.search` scores: ``"auto"``, ``"asymmetric"`` or ``"lee"``.
IVFScoring = Literal["auto", "asymmetric", "lee"]
_SCORINGS: tuple[str, ...] = ("auto", "asymmetric", "lee")
#: The first bytes of an inverted-file index file (docs/FORMAT.md), told apart from an Index file by them.
IVF_MAGIC = b"Q2KEYIVF"
#: Lists :meth:`IVFIndex.search` scans when ``nprobe`` is not given (at most all of them).
DEFAULT_NPROBE = 32


@dataclass(frozen=True)
class IVFStats:
    """What :meth:`IVFIndex.stats` reports.

    ``imbalance`` is faiss's imbalance factor ``lists · Σ size² / rows²``: 1 when every list holds
    as many rows, larger when rows pile into few lists (a search at the same ``nprobe`` then
    scans more rows). Rows added after training go to the nearest existing centroid and nothing
    is retrained: when new data drifts away from the training sample, ``imbalance`` and
    ``max_list`` grow — build a new index then.
    """

    rows: int
    removed: int
    lists: int
    min_list: int
    max_list: int
    mean_list: float
    imbalance: float
    memory_bytes: int
    mapped: bool

    @property
    def bytes_per_row(self) -> float:
        """Memory per live row: codes, ids, norms, liveness, the centroids' share and the id map once built."""
        return self.memory_bytes / self.rows if self.rows else 0.0


class IVFIndex:
    """An inverted-file index of Q² codes with 64-bit ids, for 10⁶–10⁹ vectors.

    Spherical k-means on a training sample splits the space into ``lists`` cells; each added
    vector's Q² code (the code of the vector itself, as :class:`q2key.Index` stores it) goes to the
    list of its nearest centroid. A search scans the ``nprobe`` lists nearest the query and merges
    them into one top-k; with ``nprobe`` = every list it returns exactly what :class:`q2key.Index`
    returns for the same rows (ids, scores, ties by id).

    >>> import numpy as np, q2key
    >>> rng = np.random.default_rng(0)
    >>> centres = rng.normal(size=(20, 64))
    >>> x = (centres[rng.integers(0, 20, 4000)] + 0.3 * rng.normal(size=(4000, 64))).astype(np.float32)
    >>> index = q2key.IVFIndex(64)
    >>> index.train(x, lists=20, seed=0)
    >>> ids = index.add(x)                      # sequential ids 0..3999
    >>> dist, found = index.search(x[:3], k=5, nprobe=4)
    >>> found[:, 0].tolist(), len(index), 7 in index
    ([0, 1, 2], 4000, True)
    >>> s = index.stats()
    >>> s.lists, s.rows, round(s.imbalance, 1) < 2
    (20, 4000, True)
    """

    def __init__(self, dim: int, *, threshold: ThresholdLike = None) -> None:
        dim = _args.dim(dim)
        th = _thresholds_for(threshold, dim)
        self._native = _native.IvfIndex(dim, th._rule)
        self._thresholds = th

    @classmethod
    def _wrap(cls, native: _native.IvfIndex) -> IVFIndex:
        self = object.__new__(cls)
        self._native = native
        self._thresholds = Thresholds._wrap(native.thresholds)
        return self

    # -- properties -----------------------------------------------------------------------------------------

    @property
    def dim(self) -> int:
        return self._native.dim

    @property
    def code_bytes(self) -> int:
        """Bytes per code: ``ceil(dim / 4)``."""
        return (self.dim + 3) // 4

    @property
    def thresholds(self) -> Thresholds:
        """The thresholds vectors are encoded with (part of the index and of its file)."""
        return self._thresholds

    @property
    def lists(self) -> int:
        """Number of lists (0 before :meth:`train`)."""
        return self._native.lists

    @property
    def is_trained(self) -> bool:
        return self._native.is_trained

    @property
    def centroids(self) -> npt.NDArray[np.float32]:
        """The ``(lists, dim)`` unit centroids (a copy)."""
        return self._native.centroids()

    @property
    def mapped(self) -> bool:
        """Whether the lists are memory-mapped from a file (the index is then read-only)."""
        return self._native.mapped

    def __len__(self) -> int:
        return len(self._native)

    def ids(self) -> npt.NDArray[np.uint64]:
        """The stored (not removed) ids, uint64, in storage order: list by list, each in row order."""
        return self._native.ids()

    def __contains__(self, id: object) -> bool:
        """Whether a live row has this id. The first call (or :meth:`remove`) builds an id map,
        ≈ 20–39 bytes per row, that later calls, removals and adds use (O(1) per id); an index that
        is only searched never builds it.

        >>> import numpy as np, q2key
        >>> x = np.random.default_rng(0).normal(size=(200, 16)).astype(np.float32)
        >>> index = q2key.IVFIndex(16)
        >>> index.train(x, lists=4, seed=0)
        >>> ids = index.add(x)
        >>> 3 in index, 10**9 in index
        (True, False)
        """
        if isinstance(id, bool) or not isinstance(id, (int, np.integer)) or not 0 <= int(id) < 2**64:
            return False
        return self._native.contains(int(id))

    def __repr__(self) -> str:
        s = self.stats()
        mapped = " mapped" if s.mapped else ""
        th = self._thresholds.kind
        return f"<q2key.IVFIndex dim={self.dim} lists={s.lists} rows={s.rows} thresholds={th}{mapped}>"

    # -- writing --------------------------------------------------------------------------------------------

    def train(
        self,
        vectors: Any,
        *,
        lists: int | None = None,
        points_per_list: int | None = None,
        iterations: int | None = None,
        seed: int = 0,
        threads: int | None = None,
    ) -> None:
        """Fits the centroids by spherical k-means on ``vectors`` (``(N, dim)`` floats, normalised here).

        - ``lists``: number of lists; default ``round(4·√N)`` of the ``N`` rows given (give it
          explicitly when ``vectors`` is a sample of a larger set: ≈ 4·√rows of the full set).
        - ``points_per_list``: k-means runs on ``lists · points_per_list`` rows drawn from ``vectors``
          by ``seed`` (all of them if there are fewer); default 64.
        - ``iterations``: k-means iterations, default 10. The same ``seed`` gives the same centroids.

        Only an empty, untrained index trains; to re-partition, build a new index.
        """
        x = index_floats(vectors, self.dim, "vectors")
        self._native.train(
            x,
            _args.optional_size("lists", lists),
            _args.optional_size("points_per_list", points_per_list),
            _args.optional_size("iterations", iterations),
            _args.u64("seed", seed),
            check_threads(threads),
        )

    def add(
        self, vectors: Any, ids: Any = None, *, lists: Any = None, threads: int | None = None
    ) -> npt.NDArray[np.uint64]:
        """Encodes ``vectors`` (``(N, dim)`` or ``(dim,)``) and appends each to its nearest list.

        Returns their ids (sequential from the next free id when ``ids`` is None). All or nothing:
        a NaN row, a wrong width, or a duplicate or present id raises before anything is stored.
        Needs a trained index. ``lists``: the rows' lists as :meth:`assign` gave them (one per row),
        to skip finding them again; any list numbers below :attr:`lists` are stored as given, and a
        search finds a row only in its list.
        """
        rows = index_floats(vectors, self.dim, "vectors")
        n = int(rows.shape[0])
        where = None if lists is None else _unsigned(lists, "lists", np.uint32, "list numbers", n)
        return self._native.add(rows, id_array(ids, n), check_threads(threads), where)

    def assign(self, vectors: Any, *, threads: int | None = None) -> npt.NDArray[np.uint32]:
        """The list :meth:`add` would put each row of ``vectors`` in (its nearest centroid), uint32.

        With :meth:`reserve`, a streamed build counts its rows per list first and sizes every list
        once (``index.reserve(np.bincount(lists, minlength=index.lists))``), then adds with
        ``add(rows, lists=...)``: the lists never reallocate while they fill.
        """
        rows = index_floats(vectors, self.dim, "vectors")
        return self._native.assign(rows, check_threads(threads))

    def reserve(self, rows_per_list: Any) -> None:
        """Makes room for ``rows_per_list[l]`` more rows in each list ``l`` (one count per list).

        Only capacity changes (memory is taken as the rows arrive); a count the memory cannot
        hold raises ``MemoryError``.
        """
        self._native.reserve(_unsigned(rows_per_list, "rows_per_list", np.uint64, "row counts", self.lists))

    def remove(self, ids: Any) -> int:
        """Removes ``ids`` (unknown ones are ignored) and returns how many were removed.

        O(1) per id through the id map (built by the first call, as by ``in``). A list is compacted
        by itself once more than a quarter of its rows are removed.
        """
        return self._native.remove(id_list(ids))

    def compact(self) -> None:
        """Drops removed rows from every list and frees their memory."""
        self._native.compact()

    # -- reading --------------------------------------------------------------------------------------------

    def search(
        self,
        queries: Any,
        k: int = 10,
        *,
        nprobe: int | None = None,
        filter: Any = None,
        rescore: Rescore | None = None,
        oversample: int = 4,
        threads: int | None = None,
        scoring: IVFScoring = "auto",
    ) -> SearchResult:
        """The ``k`` nearest stored vectors of each query among the ``nprobe`` lists nearest it.

        A :class:`q2key.SearchResult` ``(distances, ids)``, ascending, ties to the lower id; every
        argument but ``nprobe`` is :meth:`q2key.Index.search`'s. ``nprobe`` (default
        ``min(32, lists)``; more than ``lists`` means all) trades speed for recall: the lists are
        ranked by the query's dot product with their centroids, computed exactly in integers from
        both rounded to levels (±63 for the query, ±127 for a centroid), so every CPU routes alike
        (up to 131 072 dimensions; float dot products above). 99 % of the lists are those of the
        float dot products, the rest at the cut-off. ``columns = min(k, rows allowed)``;
        when the probed lists of a query hold fewer than that, its row is padded at the end with
        distance ``inf`` (asymmetric; ``2**32 − 1`` for Lee) and id ``2**64 − 1``.

        - ``scoring="auto"`` scores float queries asymmetrically and uint8 codes by Lee distance
          (code queries are routed by their reconstruction); ``"lee"`` encodes float queries.
        - ``filter``, ``rescore=``/``oversample``: as in :meth:`q2key.Index.search`.

        >>> import numpy as np, q2key
        >>> x = np.random.default_rng(1).normal(size=(500, 32)).astype(np.float32)
        >>> index = q2key.IVFIndex(32)
        >>> index.train(x, lists=8)
        >>> _ = index.add(x)
        >>> exact = q2key.Index(32)
        >>> _ = exact.add(x)
        >>> a, b = index.search(x[:4], 5, nprobe=8), exact.search(x[:4], 5)
        >>> np.array_equal(a.ids, b.ids) and np.array_equal(a.distances, b.distances)
        True
        """
        k = _args.size("k", k)
        probe = min(DEFAULT_NPROBE, max(1, self.lists)) if nprobe is None else _args.size("nprobe", nprobe)
        if scoring not in _SCORINGS:
            raise Q2KeyError(f"expected one of {', '.join(map(repr, _SCORINGS))}, got {scoring!r}", arg="scoring")
        is_codes = np.asarray(queries).dtype == np.uint8
        if scoring == "asymmetric" and is_codes:
            raise Q2KeyError("asymmetric scoring needs float queries, got codes (uint8)", arg="scoring")
        n = check_threads(threads)
        ids_f, mask_f = filter_arrays(filter)
        if is_codes:
            if rescore is not None:
                raise Q2KeyError("needs float queries (cosine is computed on the vectors), got codes", arg="rescore")
            codes = index_codes(queries, self.dim, self.code_bytes, "queries")
            return SearchResult(*self._native.search_lee(codes, k, probe, ids_f, mask_f, n))
        vectors = index_floats(queries, self.dim, "queries")
        scan = self._native.search_asym if scoring != "lee" else self._native.search_lee_floats
        if rescore is None:
            return SearchResult(*scan(vectors, k, probe, ids_f, mask_f, n))
        wider = min(k * _args.size("oversample", oversample), _args.SIZE_MAX)
        _, candidates = scan(vectors, wider, probe, ids_f, mask_f, n)
        return rescore_candidates(vectors, candidates, rescore, k)

    def stats(self) -> IVFStats:
        return IVFStats(*self._native.stats())

    # -- persistence ----------------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> None:
        """Saves to one file atomically (temp file, fsync, rename); see docs/FORMAT.md."""
        self._native.save(_args.path("path", path))

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, mmap: bool = False) -> IVFIndex:
        """Loads a saved index; with ``mmap=True`` the lists stay in the file, mapped read-only.

        A truncated, corrupted, foreign or newer-version file raises :class:`q2key.FormatError`.
        """
        return cls._wrap(_native.IvfIndex.load(_args.path("path", path), bool(mmap)))

    def to_bytes(self) -> bytes:
        """The bytes :meth:`save` would write."""
        return self._native.to_bytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> IVFIndex:
        """An index from :meth:`to_bytes` output; bad bytes raise :class:`q2key.FormatError`."""
        return cls._wrap(_native.IvfIndex.from_bytes(_args.buffer("data", data)))

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled as its saved form (checked on arrival), as Index is.
        return (IVFIndex.from_bytes, (self.to_bytes(),))


def _unsigned(values: Any, arg: str, dtype: type[np.unsignedinteger[Any]], what: str, length: int) -> Any:
    """``values`` as a contiguous 1-D array of ``dtype`` of ``length`` elements; errors name ``arg``."""
    top = int(np.iinfo(dtype).max)
    a = np.asarray(values)
    if a.dtype.kind in "fO" and a.ndim == 1 and not isinstance(values, np.ndarray):
        # A list of ints past 2^63 becomes float64 or object in numpy: check them as Python ints.
        ints = list(np.asarray(values, dtype=object))
        if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in ints):
            bad = next((int(v) for v in ints if not 0 <= int(v) <= top), None)
            if bad is not None:
                raise Q2KeyError(f"{what} are integers from 0 to {top}, got {bad}", arg=arg)
            a = np.array([int(v) for v in ints], dtype=dtype)
    if a.dtype.kind not in "iu" and not (a.size == 0 and a.dtype.kind == "f"):
        raise DTypeError(f"expected integer {what}, got dtype {a.dtype}", arg=arg)
    if a.ndim != 1:
        raise ShapeError(f"expected a 1-D array, got shape {a.shape}", arg=arg)
    if a.size and (int(a.min()) < 0 or int(a.max()) > top):
        bad = int(a.min()) if int(a.min()) < 0 else int(a.max())
        raise Q2KeyError(f"{what} are integers from 0 to {top}, got {bad}", arg=arg)
    if a.shape[0] != length:
        raise ShapeError(f"expected {length} {what}, got {a.shape[0]}", arg=arg)
    return np.require(a, dtype=dtype, requirements=["C", "A"])
