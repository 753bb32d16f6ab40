"""q2key.Index: codes with ids, exact (filtered, rescored) search, key windows, persistence."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np
import numpy.typing as npt

from . import _args, _native
from ._args import threads as check_threads
from ._codes import complement as complement_codes
from ._encode import ThresholdLike, encode_as
from ._errors import Q2KeyError
from ._index_args import (
    Rescore,
    filter_arrays,
    id_array,
    id_list,
    index_codes,
    index_floats,
    rescore_candidates,
)
from ._inputs import Float32, Float64
from ._results import RangeSearchResult, SearchResult
from ._thresholds import Thresholds, global_thresholds

#: How :meth:`Index.search` scores: ``"auto"``, ``"asymmetric"`` or ``"lee"``.
Scoring = Literal["auto", "asymmetric", "lee"]
_SCORINGS: tuple[str, ...] = ("auto", "asymmetric", "lee")


@dataclass(frozen=True)
class IndexStats:
    """What :meth:`Index.stats` reports: live and removed rows, bytes per code and per stored row."""

    alive: int
    dead: int
    dim: int
    code_bytes: int
    bytes_per_row: int
    mapped: bool


class Index:
    """An exact index of Q² codes with 64-bit ids: float queries scored asymmetrically, codes by Lee distance.

    >>> import numpy as np, q2key
    >>> x = np.random.default_rng(0).normal(size=(1000, 64)).astype(np.float32)
    >>> index = q2key.Index(64)
    >>> ids = index.add(x)                      # sequential ids 0..999
    >>> dist, found = index.search(x[:3], k=5)
    >>> found[:, 0].tolist(), len(index), 7 in index
    ([0, 1, 2], 1000, True)
    >>> index.remove([0, 1])
    2
    >>> index.search(x[:1], k=1, filter=np.array([5, 6]))[1].tolist()
    [[5]]
    """

    def __init__(
        self, dim: int, *, threshold: ThresholdLike = None, weights: tuple[float, float, float] | None = None
    ) -> None:
        dim = _args.dim(dim)
        th = _thresholds_for(threshold, dim)
        w = None if weights is None else _args.weights(weights)
        self._native = _native.Index(dim, th._rule, w)
        self._thresholds = th

    @classmethod
    def _wrap(cls, native: _native.Index) -> Index:
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
        return self._native.width

    @property
    def thresholds(self) -> Thresholds:
        """The thresholds vectors are encoded with (part of the index and of its file)."""
        return self._thresholds

    @property
    def weights(self) -> tuple[float, float, float] | None:
        """``(w_mag, w_sign, w_both)`` of weighted Lee search, or ``None`` for plain Lee."""
        return self._native.weights

    @property
    def mapped(self) -> bool:
        """Whether the codes are memory-mapped from a file (the index is then read-only)."""
        return self._native.mapped

    def __len__(self) -> int:
        return len(self._native)

    def __contains__(self, id: object) -> bool:
        if isinstance(id, bool) or not isinstance(id, (int, np.integer)) or not 0 <= int(id) < 2**64:
            return False
        return self._native.contains(int(id))

    def __repr__(self) -> str:
        s = self.stats()
        mapped = " mapped" if s.mapped else ""
        return f"<q2key.Index dim={s.dim} rows={s.alive} thresholds={self._thresholds.kind}{mapped}>"

    # -- writing --------------------------------------------------------------------------------------------

    def add(self, vectors: Any, ids: Any = None, *, threads: int | None = None) -> npt.NDArray[np.uint64]:
        """Encodes ``vectors`` (``(N, dim)`` or ``(dim,)``) with the index's thresholds and stores them.

        Returns their ids (sequential from the next free id when ``ids`` is None). All or nothing:
        a NaN row, a wrong width, or a duplicate or present id raises before anything is stored.
        """
        rows = index_floats(vectors, self.dim, "vectors")
        id_arr = id_array(ids, int(rows.shape[0]))
        return self._native.add(rows, id_arr, check_threads(threads))

    def add_codes(self, codes: Any, ids: Any = None) -> npt.NDArray[np.uint64]:
        """Stores ready-made codes (uint8 ``(N, code_bytes)``); like :meth:`add` otherwise."""
        c = self._codes(codes, "codes")
        return self._native.add_codes(c, id_array(ids, int(c.shape[0])))

    def remove(self, ids: Any) -> int:
        """Removes ``ids`` (unknown ones are ignored) and returns how many were removed.

        O(1) per id; memory is reclaimed by :meth:`compact`, which runs by itself once more than
        a quarter of the rows are removed.
        """
        return self._native.remove(id_list(ids))

    def compact(self) -> None:
        """Drops removed rows and frees their memory (insertion order of the rest is kept)."""
        self._native.compact()

    # -- reading --------------------------------------------------------------------------------------------

    def search(
        self,
        queries: Any,
        k: int = 10,
        *,
        filter: Any = None,
        rescore: Rescore | None = None,
        oversample: int = 4,
        complement: bool = False,
        threads: int | None = None,
        scoring: Scoring = "auto",
    ) -> SearchResult:
        """The ``k`` nearest stored vectors of each query: a :class:`q2key.SearchResult` ``(distances, ids)``.

        ``queries`` are float vectors or uint8 codes. Both arrays are ``(Q, columns)``,
        ``columns = min(k, rows allowed)``: never a ``-1`` placeholder. Ties go to the lower id.

        - ``scoring``: ``"auto"`` (the default) scores float queries asymmetrically and codes by Lee
          distance; an index with ``weights`` (weighted Lee) and ``complement=True`` use Lee for float
          queries too. ``"asymmetric"``: the cosine between the float query and each stored code's
          reconstruction under the index's thresholds' table in effect (fitted, else the Gaussian
          default; SPEC §8); needs float queries. ``"lee"``: float queries are encoded with the
          index's thresholds and compared by Lee distance (the behaviour before asymmetric scoring).

        - ``filter``: an array of allowed ids, or a boolean mask over ids (``mask[id]``; as numpy reads
          a bool, any non-zero byte allows). Both are copied: other threads may change them meanwhile.
        - ``rescore``: float vectors of the stored ids — an array or ``np.memmap`` indexed by id
          (with the default sequential ids: in insertion order), or a callable from an array of
          ids to their vectors. The best ``k · oversample`` by the scoring in use are re-ranked by
          exact cosine; distances are then ``1 − cosine`` (float64). Needs float queries.
        - ``complement``: search with complemented queries (SPEC §3: the design's antonym
          prediction, ``θ`` applied to every symbol).

        Distances: asymmetric scoring gives float32 ``1 − cosine(query, x̂)`` (in ``[0, 2]``); Lee
        gives uint32 Lee distances, or float64 for an index with ``weights``; ids are uint64.
        """
        k = _args.size("k", k)
        if scoring not in _SCORINGS:
            raise Q2KeyError(f"expected one of {', '.join(map(repr, _SCORINGS))}, got {scoring!r}", arg="scoring")
        is_codes = np.asarray(queries).dtype == np.uint8
        if scoring == "asymmetric" and is_codes:
            raise Q2KeyError("asymmetric scoring needs float queries, got codes (uint8)", arg="scoring")
        if scoring == "asymmetric" and complement:
            raise Q2KeyError("complement applies to codes: use scoring='lee' with it", arg="scoring")
        asymmetric = not is_codes and (
            scoring == "asymmetric" or (scoring == "auto" and self.weights is None and not complement)
        )
        n = check_threads(threads)
        ids_f, mask_f = filter_arrays(filter)
        if asymmetric:
            vectors = self._float_queries(queries)
            if rescore is None:
                return SearchResult(*self._native.search_asym(vectors, k, ids_f, mask_f, n))
            wider = min(k * _args.size("oversample", oversample), _args.SIZE_MAX)
            _, candidates = self._native.search_asym(vectors, wider, ids_f, mask_f, n)
            return rescore_candidates(vectors, candidates, rescore, k)
        floats, codes = self._queries(queries, complement)
        if rescore is None:
            dist, weighted, ids = self._native.search(codes, k, ids_f, mask_f, n)
            return SearchResult(dist if self.weights is None else weighted, ids)
        if floats is None:
            raise Q2KeyError("needs float queries (cosine is computed on the vectors), got codes", arg="rescore")
        wider = min(k * _args.size("oversample", oversample), _args.SIZE_MAX)
        _, _, candidates = self._native.search(codes, wider, ids_f, mask_f, n)
        return rescore_candidates(floats, candidates, rescore, k)

    def range_search(
        self, queries: Any, radius: int, *, filter: Any = None, complement: bool = False, threads: int | None = None
    ) -> RangeSearchResult:
        """Every stored vector within Lee distance ``radius`` (inclusive) of each query.

        A :class:`q2key.RangeSearchResult` ``(lims, distances, ids)`` in faiss's layout: the hits of
        query ``q`` are ``distances[lims[q]:lims[q+1]]`` and ``ids[lims[q]:lims[q+1]]``, ordered by
        (distance, id).
        """
        # No Lee distance exceeds 2·dim < 2^32: a larger radius means every row.
        r = min(_args.size("radius", radius, minimum=0), 2**32 - 1)
        _, codes = self._queries(queries, complement)
        ids_f, mask_f = filter_arrays(filter)
        return RangeSearchResult(*self._native.range_search(codes, r, ids_f, mask_f, check_threads(threads)))

    def window(self, key: int, delta: int) -> npt.NDArray[np.uint64]:
        """Ids whose key lies in ``[key − delta, key + delta]`` (saturating), in key order (SPEC §4)."""
        # A delta beyond 64 bits saturates like key ± delta does.
        return self._native.window(_args.u64("key", key), min(_args.size("delta", delta, minimum=0), _args.U64_MAX))

    def prefix(self, key: int, depth: int) -> npt.NDArray[np.uint64]:
        """Ids whose first ``depth`` transitions (0..32) equal ``key``'s, in key order."""
        d = _args.integer("depth", depth)
        _args.size("depth", d, minimum=0)
        if d > 32:
            raise Q2KeyError(f"must be at most 32 transitions, got {d}", arg="depth")
        return self._native.prefix(_args.u64("key", key), d)

    def codes(self, ids: Any) -> npt.NDArray[np.uint8]:
        """The stored codes of ``ids``, in that order; an unknown id raises naming it."""
        return self._native.codes_of(id_list(ids))

    def arrays(self) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
        """``(codes, keys, ids)`` of every stored row in insertion order (read-only copies; compacts first).

        One state of the index: rows other threads add or remove meanwhile are either all in or all out.
        """
        codes, keys, ids = self._native.arrays()
        for a in (codes, keys, ids):
            a.flags.writeable = False
        return codes, keys, ids

    def views(self) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
        """Zero-copy, read-only ``(codes, keys, ids)`` of every stored row in insertion order.

        Compacts first if rows were removed. While any of these arrays is alive, changing the
        index (``add``, ``remove``, ``compact``) raises ``BufferError``, as resizing a
        ``bytearray`` with live exports does; use :meth:`arrays` for copies.
        """
        return self._native.views()

    def stats(self) -> IndexStats:
        return IndexStats(*self._native.stats())

    # -- persistence ----------------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> None:
        """Saves to one file atomically (temp file, fsync, rename); see docs/FORMAT.md."""
        self._native.save(_args.path("path", path))

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, mmap: bool = False) -> Index:
        """Loads a saved index; with ``mmap=True`` the codes stay in the file, mapped read-only.

        A truncated, corrupted, foreign or newer-version file raises :class:`q2key.FormatError`.
        """
        return cls._wrap(_native.Index.load(_args.path("path", path), bool(mmap)))

    def to_bytes(self) -> bytes:
        """The bytes :meth:`save` would write (compacts first)."""
        return self._native.to_bytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> Index:
        """An index from :meth:`to_bytes` output; bad bytes raise :class:`q2key.FormatError`."""
        return cls._wrap(_native.Index.from_bytes(_args.buffer("data", data)))

    def to_faiss(self) -> Any:
        """Deprecated: use :func:`q2key.faiss.to_faiss` (``q2key.faiss.to_faiss(index)``), which this calls."""
        warnings.warn(
            "Index.to_faiss() is deprecated; use q2key.faiss.to_faiss(index)", DeprecationWarning, stacklevel=2
        )
        from .faiss import to_faiss  # faiss interop lives outside the index; imported only when used

        return to_faiss(self)

    def __reduce__(self) -> tuple[Any, ...]:
        # Distributed engines ship indexes to workers by pickling: the saved form, checked on arrival.
        return (Index.from_bytes, (self.to_bytes(),))

    # -- helpers --------------------------------------------------------------------------------------------

    def _codes(self, codes: Any, arg: str) -> npt.NDArray[np.uint8]:
        return index_codes(codes, self.dim, self.code_bytes, arg)

    def _float_queries(self, queries: Any) -> Float32 | Float64:
        return index_floats(queries, self.dim, "queries")

    def _queries(self, queries: Any, complement: bool) -> tuple[Float32 | Float64 | None, npt.NDArray[np.uint8]]:
        """Float queries (or None for codes) and their codes, complemented if asked."""
        a = np.asarray(queries)
        if a.dtype == np.uint8:
            floats, codes = None, self._codes(a, "queries")
        else:
            floats = self._float_queries(a)
            codes = encode_as(floats, "queries", threshold=self._thresholds).codes
        if complement:
            codes = complement_codes(codes, self.dim)
        return floats, np.ascontiguousarray(codes)


def _thresholds_for(threshold: ThresholdLike, dim: int) -> Thresholds:
    if threshold is None:
        return Thresholds.gaussian(int(dim))
    if isinstance(threshold, Thresholds):
        threshold.resolve(int(dim))  # checks the dimension
        if threshold.kind == "global" and threshold.dim is None:  # (a fitted table pins the dimension)
            return Thresholds.global_(cast(float, threshold.tau), dim=int(dim)).with_report(threshold.report)
        return threshold
    return global_thresholds(_args.threshold(threshold), dim, "threshold")
