"""What searches return: :class:`SearchResult` and :class:`RangeSearchResult`, named tuples of arrays.

Named tuples, so ``dist, ids = q2key.search(...)`` unpacks as before and ``result.ids`` says
which array is which. A leaf module: the free functions and :class:`q2key.Index` both return them.

>>> import numpy as np, q2key
>>> db = q2key.pack(np.array([[0, 0, 0, 0], [1, 1, 1, 1], [0, 0, 0, 1]], dtype=np.uint8))
>>> result = q2key.search(db[:1], db, k=2)
>>> result
SearchResult(distances=array([[0, 1]], dtype=uint32), ids=array([[0, 2]]))
>>> dist, ids = result  # a tuple, as before
>>> result.ids is ids
True
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt


class SearchResult(NamedTuple):
    """The ``k`` nearest neighbours of each query, ``(distances, ids)``, both of shape ``(Q, columns)``.

    Row ``q`` is ascending by distance, ties to the lower id; ``columns = min(k, candidates)``,
    never padded with ``-1``.

    Attributes:
        distances: Lee distances, uint32 (:func:`q2key.search`, :meth:`q2key.Index.search`);
            float64 for an index with ``weights`` (weighted Lee) or with ``rescore=`` (``1 − cosine``).
        ids: int64 database rows for :func:`q2key.search`; uint64 stored ids for :meth:`q2key.Index.search`.
    """

    distances: npt.NDArray[Any]
    ids: npt.NDArray[Any]


class RangeSearchResult(NamedTuple):
    """Every stored vector within a radius of each query, in faiss's layout: ``(lims, distances, ids)``.

    The hits of query ``q`` are ``distances[lims[q]:lims[q+1]]`` and ``ids[lims[q]:lims[q+1]]``,
    ordered by (distance, id).

    Attributes:
        lims: int64 ``(Q + 1,)`` offsets, ``lims[0] = 0``.
        distances: uint32 Lee distances of all hits, query after query.
        ids: uint64 stored ids of all hits, in the order of ``distances``.
    """

    lims: npt.NDArray[np.int64]
    distances: npt.NDArray[np.uint32]
    ids: npt.NDArray[np.uint64]


# Shown as ``q2key.SearchResult`` and pickled by that public name.
for _cls in (SearchResult, RangeSearchResult):
    _cls.__module__ = "q2key"
