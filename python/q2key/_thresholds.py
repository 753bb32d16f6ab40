"""Thresholds: the rule that cuts normalised coordinates into the four Z4 cells (SPEC §1, §6)."""

from __future__ import annotations

import base64
import json
import math
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal, TypeVar, cast

import numpy as np
import numpy.typing as npt

from . import _args, _native
from ._errors import DTypeError, Q2KeyError, ShapeError
from ._report import CalibrationReport

Kind = Literal["gaussian", "global", "per_dim"]
_KINDS: tuple[Kind, ...] = ("gaussian", "global", "per_dim")

# Binary layout (little-endian): magic, version, kind, flags (u16), dim (0 = any),
# tau (NaN for per_dim), then 3·dim float64 cuts for per_dim, then (version 2, flag bit 0)
# the (dim, 4) float32 reconstruction table, then (version 2, flag bit 1) the (dim, dim)
# float32 rotation, row-major, then crc32 of all before. Version 1 (flags 0, no table)
# still loads; version 2 is written. A reader that predates the rotation refuses flag bit 1
# ("unknown flags") rather than encoding without it.
_MAGIC = b"Q2TH"
# Versions of the JSON form: 1 (the table an optional field), 2 when a rotation is present, so
# that a reader which predates rotations refuses it instead of ignoring the field.
_VERSION = 1
_ROTATION_VERSION = 2
_BYTES_VERSION = 2
_HAS_TABLE = 1
_HAS_ROTATION = 2
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

    Thresholds may also carry a fitted *reconstruction table* (SPEC §8): per dimension
    the value each symbol decodes to, used by :func:`q2key.decode` and asymmetric search
    (:meth:`with_reconstruction`, :attr:`reconstruction`, :meth:`table`). Without one,
    the analytic default applies (the Gaussian cell means of the cuts).

    And an orthogonal *rotation* ``R`` (``(dim, dim)``, :attr:`rotation`,
    :meth:`with_rotation`; :func:`q2key.calibrate` fits one with ``rotation=``): every
    normalised row ``v`` is quantised as ``v @ R``, float queries are rotated alike before
    asymmetric scoring, and :func:`q2key.decode` rotates reconstructions back to the input
    space. Cuts, table and symbol frequencies are then those of the rotated coordinates.

    >>> import numpy as np, q2key
    >>> th = q2key.Thresholds.global_(0.05)
    >>> q2key.Thresholds.from_json(th.to_json()) == th
    True
    >>> cuts = np.array([[-0.5, -0.1], [0.0, 0.0], [0.5, 0.1]])
    >>> q2key.symbols(np.array([0.3, 0.9]), threshold=q2key.Thresholds.per_dim(cuts)).tolist()
    [2, 3]
    """

    __slots__ = ("_report", "_rule")

    _rule: _native.Thresholds  # the rule and its dimension, validated by the core
    _report: CalibrationReport | None

    def __init__(self) -> None:
        raise TypeError(
            "use Thresholds.gaussian(dim), Thresholds.global_(tau), Thresholds.per_dim(cuts), "
            "Thresholds.from_json(...) or Thresholds.from_bytes(...)"
        )

    @classmethod
    def _wrap(cls, native: _native.Thresholds, report: CalibrationReport | None = None) -> Thresholds:
        self = object.__new__(cls)
        object.__setattr__(self, "_rule", native)
        object.__setattr__(self, "_report", report)
        return self

    # -- constructors ---------------------------------------------------------------------------------------

    @classmethod
    def gaussian(cls, dim: int) -> Thresholds:
        """The Gaussian quartile rule ``τ = 0.6745/√dim`` for vectors of dimension ``dim``."""
        return cls._wrap(_native.Thresholds.gaussian(_args.dim(dim)))

    @classmethod
    def global_(cls, tau: float, dim: int | None = None) -> Thresholds:
        """One threshold ``τ ≥ 0`` for every dimension; ``dim`` optionally pins the dimension (``1..=MAX_DIM``)."""
        return global_thresholds(tau, dim, "tau")

    @classmethod
    def per_dim(cls, cuts: Any) -> Thresholds:
        """Per-dimension cut points, shape ``(3, n)``: low ≤ middle ≤ high in every dimension, finite."""
        return cls._wrap(_native.Thresholds.per_dim(_cut_array(cuts)))

    def with_report(self, report: CalibrationReport | None) -> Thresholds:
        """The same thresholds carrying ``report``."""
        return Thresholds._wrap(self._rule, report)

    # -- properties -----------------------------------------------------------------------------------------

    @property
    def kind(self) -> Kind:
        """``"gaussian"``, ``"global"`` or ``"per_dim"``."""
        return cast(Kind, self._rule.kind)

    @property
    def dim(self) -> int | None:
        """The dimension these thresholds are for (``None``: a global ``τ`` for any dimension)."""
        return self._rule.dim

    @property
    def tau(self) -> float | None:
        """``τ`` of the gaussian and global kinds (``None`` for per_dim)."""
        return self._rule.tau

    @property
    def cuts(self) -> npt.NDArray[np.float64] | None:
        """Read-only ``(3, dim)`` cut points (for gaussian/global: ``−τ, 0, τ``); ``None`` when ``dim`` is unknown."""
        cuts = self._rule.cuts
        if cuts is not None:
            return _frozen(cuts)
        dim, tau = self.dim, self.tau
        if dim is None or tau is None:
            return None
        return _frozen(np.array([[-tau], [0.0], [tau]]).repeat(dim, axis=1))

    @property
    def reconstruction(self) -> npt.NDArray[np.float32] | None:
        """The fitted reconstruction table, read-only float32 ``(dim, 4)`` (x̂ of A, B, C, D), or ``None``."""
        table = self._rule.reconstruction
        return None if table is None else _frozen(table)

    def with_reconstruction(self, table: Any) -> Thresholds:
        """The same thresholds carrying the reconstruction ``table`` ``(dim, 4)`` (SPEC §8).

        Values must be finite and ordered ``A ≤ B ≤ C ≤ D`` in every dimension; the dimension
        must be the thresholds' (a global ``τ`` without one takes the table's). The report is kept.
        """
        return Thresholds._wrap(self._rule.with_reconstruction(_table_array(table)), self._report)

    def table(self, dim: int | None = None) -> npt.NDArray[np.float32]:
        """The reconstruction table in effect, read-only float32 ``(dim, 4)``: the fitted one, else the default.

        The default is the conditional means of N(0, 1/dim) in each cell of the cuts (SPEC §8).
        ``dim`` defaults to the thresholds' own; a global ``τ`` for any dimension needs it.
        """
        if dim is None:
            dim = self.dim
            if dim is None:
                raise Q2KeyError("a global threshold for any dimension needs the dimension of the table", arg="dim")
        return _frozen(self._rule.table_for(_args.dim(dim)))

    @property
    def rotation(self) -> npt.NDArray[np.float32] | None:
        """The orthogonal rotation applied before quantising, read-only float32 ``(dim, dim)``, or ``None``.

        Rows are encoded as ``(x / ‖x‖) @ rotation``; see :meth:`with_rotation`.
        """
        rotation = self._rule.rotation
        return None if rotation is None else _frozen(rotation)

    def with_rotation(self, rotation: Any) -> Thresholds:
        """The same thresholds applying the orthogonal ``rotation`` ``(dim, dim)`` first (``None``: none).

        Each normalised row ``v`` is quantised as ``v @ rotation`` with these cuts and table (which
        are then about the rotated coordinates), float queries are rotated alike, and
        :func:`q2key.decode` returns ``x̂ @ rotation.T``. A rotation keeps every cosine, so only
        how well the codes keep them changes. ``rotation`` must be finite and orthogonal
        (``max |RᵀR − I| ≤ 1e-4``), of the thresholds' dimension (a global ``τ`` without one
        takes the rotation's). The report is kept.

        >>> import numpy as np, q2key
        >>> x = np.random.default_rng(0).normal(size=(5, 8))
        >>> r, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(8, 8)))
        >>> th = q2key.Thresholds.gaussian(8)
        >>> unit = x / np.linalg.norm(x, axis=1, keepdims=True)
        >>> bool((q2key.symbols(x, threshold=th.with_rotation(r)) == q2key.symbols(unit @ r, threshold=th)).all())
        True
        """
        return Thresholds._wrap(self._rule.with_rotation(_rotation_array(rotation)), self._report)

    @property
    def report(self) -> CalibrationReport | None:
        """What :func:`q2key.calibrate` measured, when these thresholds came from it."""
        return self._report

    # -- use by the encoders --------------------------------------------------------------------------------

    def resolve(self, dim: int, arg: str = "threshold") -> tuple[float | None, npt.NDArray[np.float64] | None]:
        """``(tau, None)`` or ``(None, cuts)`` for vectors of dimension ``dim``, checking the dimension."""
        self._rule.check_dim(dim, arg)
        cuts = self._rule.cuts
        return (self.tau, None) if cuts is None else (None, _frozen(cuts))

    # -- serialisation --------------------------------------------------------------------------------------

    def to_json(self) -> str:
        """A JSON text that :meth:`from_json` reads back exactly (the report is not included).

        A rotation is stored compactly as ``{"dim": n, "float32_le_base64": …}`` (the row-major
        little-endian float32 bytes) and makes the document version 2.
        """
        rotation = self._rule.rotation
        version = _VERSION if rotation is None else _ROTATION_VERSION
        doc: dict[str, Any] = {"format": _JSON_FORMAT, "version": version, "kind": self.kind, "dim": self.dim}
        cuts = self._rule.cuts
        if cuts is None:
            doc["tau"] = self.tau
        else:
            doc["cuts"] = cuts.tolist()
        table = self._rule.reconstruction
        if table is not None:
            # float32 → float (exact) → JSON's shortest repr → float → float32: exact.
            doc["reconstruction"] = table.tolist()
        if rotation is not None:
            data = base64.b64encode(rotation.astype("<f4").tobytes()).decode("ascii")
            doc["rotation"] = {"dim": int(rotation.shape[0]), "float32_le_base64": data}
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
        version = doc.get("version")
        if isinstance(version, bool) or version not in (_VERSION, _ROTATION_VERSION):
            raise Q2KeyError(
                f"thresholds JSON: unsupported version {version!r} (this q2key reads {_VERSION} and "
                f"{_ROTATION_VERSION})",
                arg="text",
            )
        kind, dim = doc.get("kind"), doc.get("dim")
        with _fields_of("text"):
            th = cls._rule_from_json(doc, kind, dim)
            table = doc.get("reconstruction")
            if table is not None:
                th = th.with_reconstruction(table)
            if version == _VERSION:
                if "rotation" in doc:
                    raise Q2KeyError("thresholds JSON: a rotation needs version 2")
                return th
            return th.with_rotation(_rotation_from_json(doc.get("rotation")))

    @classmethod
    def _rule_from_json(cls, doc: dict[str, Any], kind: Any, dim: Any) -> Thresholds:
        """The rule of a JSON document (its fields validated by the constructors)."""
        if kind == "gaussian":
            return cls.gaussian(dim)
        if kind == "global":
            return cls.global_(doc["tau"] if "tau" in doc else None, dim)  # type: ignore[arg-type]  # validated
        if kind == "per_dim":
            th = cls.per_dim(doc.get("cuts"))
            if dim is not None and th.dim != dim:
                raise Q2KeyError(f"thresholds JSON: dim {dim} does not match the cuts' {th.dim} columns")
            return th
        raise Q2KeyError(f"thresholds JSON: unknown kind {kind!r} (expected one of {', '.join(_KINDS)})")

    def to_bytes(self) -> bytes:
        """A compact little-endian binary form with a CRC-32 (the report is not included)."""
        tau = math.nan if self.tau is None else self.tau
        table, rotation = self._rule.reconstruction, self._rule.rotation
        flags = (0 if table is None else _HAS_TABLE) | (0 if rotation is None else _HAS_ROTATION)
        body = _HEADER.pack(_MAGIC, _BYTES_VERSION, _KINDS.index(self.kind), flags, self.dim or 0, tau)
        for part, dtype in ((self._rule.cuts, "<f8"), (table, "<f4"), (rotation, "<f4")):
            if part is not None:
                body += part.astype(dtype).tobytes()
        return body + struct.pack("<I", zlib.crc32(body))

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> Thresholds:
        """Thresholds from :meth:`to_bytes` output; anything else raises a q2key error naming ``data``."""
        raw = _args.buffer("data", data)
        if len(raw) < _HEADER.size + 4:
            raise Q2KeyError(
                f"thresholds bytes: {len(raw)} bytes is too short for the {_HEADER.size + 4}-byte minimum", arg="data"
            )
        magic, version, kind_code, flags, dim, tau = _HEADER.unpack_from(raw)
        if magic != _MAGIC:
            raise Q2KeyError(f"thresholds bytes: bad magic {magic!r} (expected {_MAGIC!r})", arg="data")
        if version not in (1, _BYTES_VERSION):
            raise Q2KeyError(
                f"thresholds bytes: unsupported version {version} (this q2key reads 1 and {_BYTES_VERSION})",
                arg="data",
            )
        if kind_code >= len(_KINDS):
            raise Q2KeyError(f"thresholds bytes: unknown kind code {kind_code}", arg="data")
        if flags & ~(_HAS_TABLE | _HAS_ROTATION) or (version == 1 and flags):
            raise Q2KeyError(f"thresholds bytes: unknown flags {flags:#x} for version {version}", arg="data")
        kind = _KINDS[kind_code]
        cut_bytes = 24 * dim if kind == "per_dim" else 0
        table_bytes = 16 * dim if flags & _HAS_TABLE else 0
        rotation_bytes = 4 * dim * dim if flags & _HAS_ROTATION else 0
        expected = _HEADER.size + cut_bytes + table_bytes + rotation_bytes + 4
        if len(raw) != expected:
            parts = (("a reconstruction table", table_bytes), ("a rotation", rotation_bytes))
            note = "".join(f" and {what}" for what, size in parts if size)
            raise Q2KeyError(
                f"thresholds bytes: length {len(raw)} does not match a {kind} header with dim {dim}"
                f"{note} ({expected} bytes)",
                arg="data",
            )
        (crc,) = struct.unpack_from("<I", raw, len(raw) - 4)
        if crc != zlib.crc32(raw[:-4]):
            raise Q2KeyError("thresholds bytes: checksum mismatch (corrupted data)", arg="data")
        with _fields_of("data"):
            th = cls._rule_from_bytes(raw, kind, dim, tau)
            offset = _HEADER.size + cut_bytes
            if table_bytes:
                table = np.frombuffer(raw, dtype="<f4", count=4 * dim, offset=offset)
                th = th.with_reconstruction(table.reshape(dim, 4))
            if rotation_bytes:
                if dim == 0:
                    raise Q2KeyError("thresholds bytes: a rotation needs a dimension (dim 0 given)")
                rotation = np.frombuffer(raw, dtype="<f4", count=dim * dim, offset=offset + table_bytes)
                th = th.with_rotation(rotation.reshape(dim, dim))
            return th

    @classmethod
    def _rule_from_bytes(cls, raw: Any, kind: Kind, dim: int, tau: float) -> Thresholds:
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
        return self._rule == other._rule

    def __hash__(self) -> int:
        return hash(self.to_bytes())

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Thresholds are immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Thresholds are immutable")

    def __repr__(self) -> str:
        kind, dim, tau, cuts = self.kind, self.dim, self.tau, self._rule.cuts
        table = "" if self._rule.reconstruction is None else ".with_reconstruction(<fitted table>)"
        if self._rule.rotation is not None:
            table += ".with_rotation(<rotation>)"
        if kind == "gaussian":
            return f"Thresholds.gaussian(dim={dim}){table}  # tau={tau:.6g}"
        if kind == "global":
            pinned = "" if dim is None else f", dim={dim}"
            return f"Thresholds.global_(tau={tau!r}{pinned}){table}"
        assert cuts is not None
        parts = ", ".join(f"{name} {row.min():.4g}…{row.max():.4g}" for name, row in zip(("low", "mid", "high"), cuts))
        fitted = "" if self._rule.reconstruction is None else ", fitted reconstruction table"
        fitted += "" if self._rule.rotation is None else ", rotation"
        return f"<Thresholds per_dim dim={dim}: {parts}{fitted}>"


def _unpickle(data: bytes, report: CalibrationReport | None) -> Thresholds:
    return Thresholds.from_bytes(data).with_report(report)


_A = TypeVar("_A", bound=npt.NDArray[Any])


def _frozen(a: _A) -> _A:
    a.flags.writeable = False
    return a


def global_thresholds(tau: Any, dim: Any, arg: str) -> Thresholds:
    """``Thresholds.global_(tau, dim)`` for a caller whose parameter for ``tau`` is ``arg``."""
    d = None if dim is None else _args.dim(dim)
    return Thresholds._wrap(_native.Thresholds.global_(_args.real(arg, tau), d, arg))


@contextmanager
def _fields_of(arg: str) -> Iterator[None]:
    """Errors about the fields of a serialised form, prefixed with the parameter that held it."""
    try:
        yield
    except (Q2KeyError, DTypeError) as e:
        raise type(e)(f"{arg}: {e}", arg=arg) from None


def _table_array(table: Any) -> npt.NDArray[np.float32] | npt.NDArray[np.float64]:
    """``table`` as a C-contiguous 2-D float32 or float64 array; the core checks shape and values."""
    try:
        a = np.asarray(table)
    except ValueError:  # ragged nested lists
        raise ShapeError(
            "expected shape (dim, 4) (x̂ of A, B, C, D per dimension), got ragged rows", arg="table"
        ) from None
    if a.dtype.kind not in "iuf":
        raise DTypeError(f"expected real numbers, got dtype {a.dtype}", arg="table")
    if a.ndim != 2:
        raise ShapeError(f"expected shape (dim, 4) (x̂ of A, B, C, D per dimension), got {a.shape}", arg="table")
    dtype = np.float32 if a.dtype == np.float32 else np.float64
    return np.require(a, dtype=dtype, requirements=["C", "A"])


def _rotation_array(rotation: Any) -> npt.NDArray[np.float32] | npt.NDArray[np.float64] | None:
    """``rotation`` as ``None`` or a C-contiguous 2-D float32/float64 array; the core checks shape,
    values and orthogonality."""
    if rotation is None:
        return None
    try:
        a = np.asarray(rotation)
    except ValueError:  # ragged nested lists
        raise ShapeError("expected shape (dim, dim), got ragged rows", arg="rotation") from None
    if a.dtype.kind not in "iuf":
        raise DTypeError(f"expected real numbers, got dtype {a.dtype}", arg="rotation")
    if a.ndim != 2:
        raise ShapeError(f"expected shape (dim, dim), got {a.shape}", arg="rotation")
    dtype = np.float32 if a.dtype == np.float32 else np.float64
    return np.require(a, dtype=dtype, requirements=["C", "A"])


def _rotation_from_json(field: Any) -> npt.NDArray[np.float32]:
    """The rotation of a version-2 JSON document: ``{"dim": n, "float32_le_base64": …}``."""
    if not isinstance(field, dict) or not isinstance(field.get("float32_le_base64"), str):
        raise Q2KeyError('thresholds JSON: expected "rotation": {"dim": n, "float32_le_base64": "…"}')
    dim = field.get("dim")
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise Q2KeyError(f"thresholds JSON: rotation dim must be a positive integer, got {dim!r}")
    try:
        raw = base64.b64decode(field["float32_le_base64"], validate=True)
    except ValueError:
        raise Q2KeyError("thresholds JSON: the rotation is not valid base64") from None
    if len(raw) != 4 * dim * dim:
        raise Q2KeyError(
            f"thresholds JSON: the rotation holds {len(raw)} bytes, not the {4 * dim * dim} of a {dim} × {dim} float32"
        )
    return np.frombuffer(raw, dtype="<f4").reshape(dim, dim)


def _cut_array(cuts: Any) -> npt.NDArray[np.float64]:
    """``cuts`` as a C-contiguous float64 array of any shape; the core checks shape and values."""
    try:
        a = np.asarray(cuts)
    except ValueError:  # ragged nested lists: numpy cannot make one array of them
        raise ShapeError(
            "cuts: expected shape (3, n) with n ≥ 1 (low, middle, high per dimension), got ragged rows"
        ) from None
    if a.dtype.kind not in "iuf":
        raise DTypeError(f"expected real numbers, got dtype {a.dtype}", arg="cuts")
    return np.require(a, dtype=np.float64, requirements=["C", "A"])
