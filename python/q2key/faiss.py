"""faiss interop: :func:`to_faiss` makes a faiss binary index over an :class:`q2key.Index`'s codes and ids.

faiss binary indexes rank by Hamming distance between bit strings. Q² codes are Gray-coded
(A=00, B=01, C=11, D=10), so ``popcount(a XOR b)`` — the Hamming distance of two packed codes —
is exactly their Lee distance (SPEC §2). A ``dim``-dimensional index therefore becomes a faiss
binary index of ``d = 8 · ceil(dim/4)`` bits (96 bytes, ``d = 768``, for ``dim = 384``), and
faiss finds the same neighbours at the same distances (padding bits are zero in every code).

faiss itself is imported only when :func:`to_faiss` is called (``pip install faiss-cpu``).
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from ._errors import Q2KeyError

#: Largest id faiss can hold: its ids are signed 64-bit (``idx_t``).
MAX_FAISS_ID = 2**63 - 1


class _IndexLike(Protocol):
    """What :func:`to_faiss` reads of a :class:`q2key.Index`.

    A protocol rather than an import of ``Index``: the deprecated ``Index.to_faiss()`` calls
    :func:`to_faiss`, and this module importing ``_index`` back would be an import cycle.
    """

    @property
    def weights(self) -> tuple[float, float, float] | None: ...

    @property
    def code_bytes(self) -> int: ...

    def arrays(self) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint64], npt.NDArray[np.uint64]]: ...


def _import_faiss() -> Any:
    try:
        # import_module: typed the same whether or not faiss (and its stubs) is installed
        return importlib.import_module("faiss")
    except ImportError as e:
        raise ImportError("q2key.faiss.to_faiss() needs faiss: pip install faiss-cpu") from e


def to_faiss(index: _IndexLike) -> Any:
    """A ``faiss.IndexBinaryIDMap`` over an ``IndexBinaryFlat`` with the codes and ids of a :class:`q2key.Index`.

    Its ``search`` returns the same Lee distances as :meth:`q2key.Index.search` (as int32) and the
    same ids (as int64); only the order of equal distances may differ (q2key puts the lower id
    first). ``range_search(q, r + 1)`` of faiss (strict ``<``) matches q2key's inclusive
    ``range_search(q, r)``. Query faiss with packed codes: ``q2key.encode(x, threshold=index.thresholds).codes``.

    Raises :class:`q2key.Q2KeyError` for an index with ``weights`` (faiss only counts differing
    bits) or with an id ≥ 2⁶³ (faiss ids are signed 64-bit). The faiss index is a copy: later
    changes to either index are not seen by the other.
    """
    if index.weights is not None:
        raise Q2KeyError(
            f"this index ranks by weighted Lee distance (weights={index.weights}); faiss binary indexes "
            "count differing bits, which is the plain Lee distance. Build an Index without weights= to export",
            arg="index",
        )
    codes, _, ids = index.arrays()
    if ids.size and int(ids.max()) > MAX_FAISS_ID:
        bad = int(ids[np.argmax(ids > MAX_FAISS_ID)])
        raise Q2KeyError(
            f"id {bad} cannot be represented in faiss, whose ids are signed 64-bit integers "
            f"(at most 2**63 - 1 = {MAX_FAISS_ID}); re-add the rows with smaller ids",
            arg="index",
        )
    faiss = _import_faiss()
    flat = faiss.IndexBinaryFlat(8 * index.code_bytes)
    mapped = faiss.IndexBinaryIDMap(flat)  # faiss's wrapper keeps `flat` alive with it
    if codes.shape[0]:
        mapped.add_with_ids(np.ascontiguousarray(codes), ids.astype(np.int64))
    return mapped
