"""Thresholds: the rule that cuts normalised coordinates into the four Z4 cells (SPEC §1, §6)."""

from __future__ import annotations

import json
import math
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from . import _args
from ._errors import DTypeError, Q2KeyError, ShapeError
from ._inputs import rust_float
from ._native import gaussian_threshold
from ._report import CalibrationReport

Kind = Literal["gaussian", "global", "per_dim"]
_KINDS: tuple[Kind, ...] = ("gaussian", "global", "per_dim")

# Binary layout (little-endian): magic, version, kind, 2 reserved bytes, dim (0 = any),
# tau (NaN for per_dim), then 3·dim float64 cuts for per_dim, then crc32 of all before.
_MAGIC = b"Q2TH"
_VERSION = 1
_HEADER = struct.Struct("<4sBBHQd")
_JSON_FORMAT = "q2key.thresholds"


class Thresholds:
    """Immutable threshold rule for :func:`q2key.encode` and friends.

    Three kinds:

    - ``Thresholds.gaussian(dim)``: ``τ = 0.6745/√dim`` (the default);
    - ``Thresholds.global_(tau, dim=None)``: one ``τ`` for every dimension
      (cuts ``−τ, 0, τ``);
    - ``Thresholds.per_dim(cuts)``: three cut points per dimension, shape
      ``(3, n)`` (low, middle, high); the middle one replaces 0.

    All values are in units of the L2-normalised vector. Codes are only
    comparable when made with equal thresholds. :func:`q2key.calibrate` fits
    them to a sample and attaches a ``.report``.

    >>> import numpy as np, q2key
    >>> th = q2key.Thresholds.global_(0.05)
    >>> q2key.Thresholds.from_json(th.to_json()) == th
    True
    >>> cuts = np.array([[-0.5, -0.1], [0.0, 0.0], [0.5, 0.1]])
    >>> q2key.symbols(np.array([0.3, 0.9]), threshold=q2key.Thresholds.per_dim(cuts)).tolist()
    [2, 3]
    """

    __slots__ = ("_cuts", "_dim", "_kind", "_report", "_tau")

    _kind: Kind
    _dim: int | None
    _tau: float | None
    _cuts: npt.NDArray[np.float64] | None
    _report: CalibrationReport | None

    def __init__(self) -> None:
        raise TypeError(
            "use Thresholds.gaussian(dim), Thresholds.global_(tau), Thresholds.per_dim(cuts), "
            "Thresholds.from_json(...) or Thresholds.from_bytes(...)"
        )

    @classmethod
    def _make(
        cls,
        kind: Kind,
        dim: int | None,
        tau: float | None,
        cuts: npt.NDArray[np.float64] | None,
        report: CalibrationReport | None = None,
    ) -> Thresholds:
        self = object.__new__(cls)
        for name, value in (("_kind", kind), ("_dim", dim), ("_tau", tau), ("_cuts", cuts), ("_report", report)):
            object.__setattr__(self, name, value)
        return self

    # -- constructors ---------------------------------------------------------------------------------------

    @classmethod
    def gaussian(cls, dim: int) -> Thresholds:
        """The Gaussian quartile rule ``τ = 0.6745/√dim`` for vectors of dimension ``dim``."""
        d = _args.dim(dim)
        return cls._make("gaussian", d, gaussian_threshold(d), None)

    @classmethod
    def global_(cls, tau: float, dim: int | None = None) -> Thresholds:
        """One threshold ``τ ≥ 0`` for every dimension; ``dim`` optionally pins the dimension (``1..=MAX_DIM``)."""
        return global_thresholds(tau, dim, "tau")

    @classmethod
    def per_dim(cls, cuts: Any) -> Thresholds:
        """Per-dimension cut points, shape ``(3, n)``: low ≤ middle ≤ high in every dimension, finite."""
        return cls._make("per_dim", *_check_cuts(cuts), report=None)

    def with_report(self, report: CalibrationReport | None) -> Thresholds:
        """The same thresholds carrying ``report``."""
        return Thresholds._make(self._kind, self._dim, self._tau, self._cuts, report)

    # -- properties -----------------------------------------------------------------------------------------

    @property
    def kind(self) -> Kind:
        """``"gaussian"``, ``"global"`` or ``"per_dim"``."""
        return self._kind

    @property
    def dim(self) -> int | None:
        """The dimension these thresholds are for (``None``: a global ``τ`` for any dimension)."""
        return self._dim

    @property
    def tau(self) -> float | None:
        """``τ`` of the gaussian and global kinds (``None`` for per_dim)."""
        return self._tau

    @property
    def cuts(self) -> npt.NDArray[np.float64] | None:
        """Read-only ``(3, dim)`` cut points (for gaussian/global: ``−τ, 0, τ``); ``None`` when ``dim`` is unknown."""
        if self._cuts is not None:
            return self._cuts
        if self._dim is None or self._tau is None:
            return None
        return _frozen(np.array([[-self._tau], [0.0], [self._tau]]).repeat(self._dim, axis=1))

    @property
    def report(self) -> CalibrationReport | None:
        """What :func:`q2key.calibrate` measured, when these thresholds came from it."""
        return self._report

    # -- use by the encoders --------------------------------------------------------------------------------

    def resolve(self, dim: int, arg: str = "threshold") -> tuple[float | None, npt.NDArray[np.float64] | None]:
        """``(tau, None)`` or ``(None, cuts)`` for vectors of dimension ``dim``, checking the dimension."""
        if self._dim is not None and self._dim != dim:
            raise ShapeError(f"thresholds are for dimension {self._dim}, the vectors have {dim}", arg=arg)
        return (self._tau, None) if self._cuts is None else (None, self._cuts)

    # -- serialisation --------------------------------------------------------------------------------------

    def to_json(self) -> str:
        """A JSON text that :meth:`from_json` reads back exactly (the report is not included)."""
        doc: dict[str, Any] = {"format": _JSON_FORMAT, "version": _VERSION, "kind": self._kind, "dim": self._dim}
        if self._cuts is None:
            doc["tau"] = self._tau
        else:
            doc["cuts"] = self._cuts.tolist()
        return json.dumps(doc)

    @classmethod
    def from_json(cls, text: str | bytes) -> Thresholds:
        """Thresholds from :meth:`to_json` output; anything else raises a q2key error naming ``text``."""
        if not isinstance(text, (str, bytes, bytearray)):
            raise DTypeError(f"expected a JSON str or bytes, got {type(text).__name__}", arg="text")
        try:
            doc = json.loads(text)
        except RecursionError:
            # json recurses once per nesting level; thresholds nest two levels deep.
            raise Q2KeyError("thresholds JSON nests too deeply to be thresholds", arg="text") from None
        except (ValueError, TypeError) as e:
            raise Q2KeyError(f"thresholds JSON: not valid JSON ({e})", arg="text") from None
        if not isinstance(doc, dict) or doc.get("format") != _JSON_FORMAT:
            raise Q2KeyError(f"thresholds JSON: expected an object with format {_JSON_FORMAT!r}", arg="text")
        if doc.get("version") != _VERSION:
            version = doc.get("version")
            raise Q2KeyError(
                f"thresholds JSON: unsupported version {version!r} (this q2key reads {_VERSION})", arg="text"
            )
        kind, dim = doc.get("kind"), doc.get("dim")
        with _fields_of("text"):
            if kind == "gaussian":
                return cls.gaussian(dim)  # type: ignore[arg-type]  # validated by gaussian()
            if kind == "global":
                return cls.global_(doc.get("tau"), dim)  # type: ignore[arg-type]  # validated by global_()
            if kind == "per_dim":
                th = cls.per_dim(doc.get("cuts"))
                if dim is not None and th.dim != dim:
                    raise Q2KeyError(f"thresholds JSON: dim {dim} does not match the cuts' {th.dim} columns")
                return th
        raise Q2KeyError(f"thresholds JSON: unknown kind {kind!r} (expected one of {', '.join(_KINDS)})", arg="text")

    def to_bytes(self) -> bytes:
        """A compact little-endian binary form with a CRC-32 (the report is not included)."""
        tau = math.nan if self._tau is None else self._tau
        body = _HEADER.pack(_MAGIC, _VERSION, _KINDS.index(self._kind), 0, self._dim or 0, tau)
        if self._cuts is not None:
            body += self._cuts.astype("<f8").tobytes()
        return body + struct.pack("<I", zlib.crc32(body))

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> Thresholds:
        """Thresholds from :meth:`to_bytes` output; anything else raises a q2key error naming ``data``."""
        raw = _args.buffer("data", data)
        if len(raw) < _HEADER.size + 4:
            raise Q2KeyError(
                f"thresholds bytes: {len(raw)} bytes is too short for the {_HEADER.size + 4}-byte minimum", arg="data"
            )
        magic, version, kind_code, _, dim, tau = _HEADER.unpack_from(raw)
        if magic != _MAGIC:
            raise Q2KeyError(f"thresholds bytes: bad magic {magic!r} (expected {_MAGIC!r})", arg="data")
        if version != _VERSION:
            raise Q2KeyError(
                f"thresholds bytes: unsupported version {version} (this q2key reads {_VERSION})", arg="data"
            )
        if kind_code >= len(_KINDS):
            raise Q2KeyError(f"thresholds bytes: unknown kind code {kind_code}", arg="data")
        kind = _KINDS[kind_code]
        cut_bytes = 24 * dim if kind == "per_dim" else 0
        if len(raw) != _HEADER.size + cut_bytes + 4:
            raise Q2KeyError(
                f"thresholds bytes: length {len(raw)} does not match a {kind} header with dim {dim} "
                f"({_HEADER.size + cut_bytes + 4} bytes)",
                arg="data",
            )
        (crc,) = struct.unpack_from("<I", raw, len(raw) - 4)
        if crc != zlib.crc32(raw[:-4]):
            raise Q2KeyError("thresholds bytes: checksum mismatch (corrupted data)", arg="data")
        with _fields_of("data"):
            if kind == "gaussian":
                th = cls.gaussian(dim)
                if th.tau != tau:
                    raise Q2KeyError(f"thresholds bytes: stored tau {tau} is not the Gaussian tau of dimension {dim}")
                return th
            if kind == "global":
                return cls.global_(tau, dim or None)
            cuts = np.frombuffer(raw, dtype="<f8", count=3 * dim, offset=_HEADER.size).reshape(3, dim)
            return cls.per_dim(cuts)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_unpickle, (self.to_bytes(), self._report))

    # -- value semantics ------------------------------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Thresholds):
            return NotImplemented
        same_cuts = self._cuts is other._cuts or (
            self._cuts is not None and other._cuts is not None and bool(np.array_equal(self._cuts, other._cuts))
        )
        return (self._kind, self._dim, self._tau) == (other._kind, other._dim, other._tau) and same_cuts

    def __hash__(self) -> int:
        return hash(self.to_bytes())

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Thresholds are immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Thresholds are immutable")

    def __repr__(self) -> str:
        if self._kind == "gaussian":
            return f"Thresholds.gaussian(dim={self._dim})  # tau={self._tau:.6g}"
        if self._kind == "global":
            dim = "" if self._dim is None else f", dim={self._dim}"
            return f"Thresholds.global_(tau={self._tau!r}{dim})"
        assert self._cuts is not None
        parts = ", ".join(
            f"{name} {row.min():.4g}…{row.max():.4g}" for name, row in zip(("low", "mid", "high"), self._cuts)
        )
        return f"<Thresholds per_dim dim={self._dim}: {parts}>"


def _unpickle(data: bytes, report: CalibrationReport | None) -> Thresholds:
    return Thresholds.from_bytes(data).with_report(report)


def _frozen(a: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    a.flags.writeable = False
    return a


def global_thresholds(tau: Any, dim: Any, arg: str) -> Thresholds:
    """``Thresholds.global_(tau, dim)`` for a caller whose parameter for ``tau`` is ``arg``."""
    d = None if dim is None else _args.dim(dim)
    return Thresholds._make("global", d, _check_tau(tau, arg), None)


@contextmanager
def _fields_of(arg: str) -> Iterator[None]:
    """Errors about the fields of a serialised form, prefixed with the parameter that held it."""
    try:
        yield
    except (Q2KeyError, DTypeError) as e:
        raise type(e)(f"{arg}: {e}", arg=arg) from None


def _check_tau(tau: Any, arg: str) -> float:
    """τ in the words the core uses for ``threshold=`` (the same mistake reads the same)."""
    t = _args.real(arg, tau)
    if not (math.isfinite(t) and t >= 0.0):
        raise Q2KeyError(f"{arg}: must be a finite number ≥ 0 (in units of the normalised vector), got {rust_float(t)}")
    return t


def _check_cuts(cuts: Any) -> tuple[int, None, npt.NDArray[np.float64]]:
    try:
        a = np.asarray(cuts)
    except ValueError:  # ragged nested lists: numpy cannot make one array of them
        raise ShapeError(
            "cuts: expected shape (3, n) with n ≥ 1 (low, middle, high per dimension), got ragged rows"
        ) from None
    if a.dtype.kind not in "iuf":
        raise DTypeError(f"cuts: expected real numbers, got dtype {a.dtype}")
    if a.ndim != 2 or a.shape[0] != 3 or a.shape[1] < 1:
        raise ShapeError(f"cuts: expected shape (3, n) with n ≥ 1 (low, middle, high per dimension), got {a.shape}")
    a = np.array(a, dtype=np.float64, order="C")
    bad = ~np.isfinite(a)
    if bad.any():
        which, d = (int(v[0]) for v in np.nonzero(bad))
        raise Q2KeyError(f"cuts: cut {which} of dimension {d} is {a[which, d]}; cuts must be finite")
    unordered = (a[0] > a[1]) | (a[1] > a[2])
    if unordered.any():
        d = int(np.argmax(unordered))
        raise Q2KeyError(f"cuts: dimension {d}: need low ≤ mid ≤ high, got {tuple(a[:, d].tolist())}")
    return int(a.shape[1]), None, _frozen(a)
