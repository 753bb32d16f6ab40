"""q2key: Q² codes (2-bit Gray-coded quaternary quantization), 64-bit transition keys, Lee-distance search.

>>> import numpy as np, q2key
>>> x = np.random.default_rng(0).normal(size=(1000, 384)).astype(np.float32)
>>> enc = q2key.encode(x)
>>> enc.codes.shape, enc.keys.shape
((1000, 96), (1000,))
>>> dist, idx = q2key.search(enc.codes[:5], enc.codes, k=10)
>>> idx[:, 0].tolist()
[0, 1, 2, 3, 4]
"""

from . import faiss, stats
from ._asymmetric import asymmetric_search, decode, rerank
from ._calibrate import calibrate
from ._calibrator import Calibrator, Drift
from ._codes import complement, keys_from_symbols, pack, run_reduce, unpack
from ._distance import lee, lee_matrix, search, weighted_lee
from ._encode import Encoded, encode, gaussian_threshold, symbols
from ._errors import DTypeError, FormatError, NonFiniteError, Q2KeyError, ShapeError
from ._index import Index, IndexStats
from ._ivf import IVFIndex, IVFStats
from ._native import __version__
from ._report import CalibrationReport, Candidate
from ._results import RangeSearchResult, SearchResult
from ._thresholds import Thresholds


def simd_backend() -> str:
    """The SIMD kernel family in use: ``"avx512-vpopcntdq"``, ``"avx2"`` or ``"scalar"``.

    Chosen once from the CPU at import; the environment variable ``Q2KEY_SIMD``
    (``scalar``, ``avx2``, ``avx512``) can lower the choice.
    """
    from . import _native

    return _native.simd_backend()


__all__ = [
    "CalibrationReport",
    "Calibrator",
    "Candidate",
    "DTypeError",
    "Drift",
    "Encoded",
    "FormatError",
    "IVFIndex",
    "IVFStats",
    "Index",
    "IndexStats",
    "NonFiniteError",
    "Q2KeyError",
    "RangeSearchResult",
    "SearchResult",
    "ShapeError",
    "Thresholds",
    "__version__",
    "asymmetric_search",
    "calibrate",
    "complement",
    "decode",
    "encode",
    "faiss",
    "gaussian_threshold",
    "keys_from_symbols",
    "lee",
    "lee_matrix",
    "pack",
    "rerank",
    "run_reduce",
    "search",
    "simd_backend",
    "stats",
    "symbols",
    "unpack",
    "weighted_lee",
]
