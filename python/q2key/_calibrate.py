"""Calibration (SPEC §6): fit thresholds to a sample of real vectors, and watch them drift."""

from __future__ import annotations

import dataclasses
import statistics
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from . import _args, _native
from ._distance import search
from ._encode import encode, symbols
from ._errors import Q2KeyError, ShapeError
from ._inputs import check_finite, float_rows
from ._report import CalibrationReport, Candidate, Method, Rotation
from ._thresholds import Thresholds

_METHODS: tuple[Method, ...] = ("equiprobable", "per_dim", "fidelity", "lloyd_max")
_ROTATIONS: tuple[Rotation, ...] = ("random", "learned")

#: Shares of values in the outer cells A ∪ D that ``method="fidelity"`` tries (0.5 = equiprobable).
FIDELITY_SHARES: tuple[float, ...] = (0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6)
#: Rows the fidelity search needs at least: a held-out part with queries and a database.
MIN_FIDELITY_ROWS = 64
#: Rounds ``method="lloyd_max"`` runs at most (it stops sooner once no cut moves by more than 1e-12, SPEC §8).
LLOYD_MAX_ROUNDS = 100
#: Rounds of ``rotation="learned"`` (each a Lloyd–Max fit of the rotated sample, then the orthogonal
#: Procrustes rotation that maps the rows closest to their reconstructions); 8 and 20 reach the same
#: recall on the bundled MiniLM data.
LEARNED_ROTATION_ROUNDS = 8
#: Sample rows per block when measuring the reconstruction error (bounds the temporaries).
_ERROR_BLOCK_ROWS = 4096


def calibrate(
    sample: Any,
    *,
    method: Method = "equiprobable",
    rotation: Rotation | None = None,
    outer_share: float = 0.5,
    seed: int | None = 0,
    holdout: float = 0.25,
    k: int = 10,
    threads: int | None = None,
) -> Thresholds:
    """Fit thresholds to a sample of vectors ``(N, n)``; the result carries a ``.report``.

    - ``"equiprobable"``: one global ``τ``, the median of ``|v|`` over all
      normalised coordinates, so half the values land in A ∪ D (SPEC §6; for a
      symmetric distribution ``P(v ≤ −τ) = P(v > τ) = 1/4``).
    - ``"per_dim"``: per dimension the 25th, 50th and 75th percentiles: four
      equiprobable cells in every dimension.
    - ``"fidelity"``: tries the global and per-dimension rules with
      :data:`FIDELITY_SHARES` of values in A ∪ D, fitting on ``1 − holdout`` of the
      rows and measuring neighbour recall@``k`` of Lee search against cosine on
      the held-out rows; keeps the best (the first of equals). Deterministic for a
      given ``seed``.
    - ``"lloyd_max"``: per-dimension Lloyd–Max from the ``"per_dim"`` cuts: each
      cell's value is the mean of the sample's values in it, each cut the midpoint
      of its neighbours' values, alternated (at most :data:`LLOYD_MAX_ROUNDS`
      rounds) — the cuts and table with the least squared reconstruction error
      this iteration reaches; never more than ``"per_dim"``'s (SPEC §8).

    Every method's thresholds carry a reconstruction table fitted to the sample
    (per dimension the mean of the normalised values in each cell, SPEC §8), which
    asymmetric scoring (:meth:`q2key.Index.search` with float queries,
    :func:`q2key.asymmetric_search`) scores float queries against.

    Which method for which scoring, measured on the bundled MiniLM dev split
    (``data/wordnet-minilm-dev.npz``: 20 000 × 384, 1 000 queries, exact cosine
    top-10, thresholds fitted on the database; ``benches/fidelity.py``):

    ==================  ===========================  ===================================
    method              Lee recall@10 (coded query)  asymmetric recall@10 (float query)
    ==================  ===========================  ===================================
    (Gaussian default)  0.565                        0.829 (analytic table)
    ``equiprobable``    0.562                        0.832
    ``per_dim``         0.554                        0.842
    ``fidelity``        **0.642**                    0.824
    ``lloyd_max``       0.622                        **0.848**
    ==================  ===========================  ===================================

    (faiss ``IndexRaBitQ`` 2-bit, 116 bytes a vector: 0.849 on the same split.)
    Lloyd–Max converged at 33 % of values in A ∪ D and a squared reconstruction
    error 16 % below ``per_dim``'s (2.85e-4 vs 3.39e-4 per coordinate); runs of
    it from other starting shares (0.3, 0.7) reach the same error and recalls
    within ±0.002 of each other — the noise of 1 000 queries.

    So: ``"fidelity"`` for Lee scoring, ``"lloyd_max"`` (or ``"per_dim"``) for
    asymmetric scoring; ``report.suits`` says which.

    ``rotation`` makes the thresholds rotate every normalised row by an orthogonal
    ``R`` before quantising (:attr:`Thresholds.rotation`; queries are rotated alike, so
    every cosine is kept): ``"random"`` a Haar-random ``R`` drawn from ``seed``;
    ``"learned"`` that ``R`` refined on the sample by :data:`LEARNED_ROTATION_ROUNDS`
    rounds of a per-dimension Lloyd–Max fit and the orthogonal Procrustes rotation
    mapping the rows closest to their reconstructions (each round lowers the
    reconstruction error, ``report.rotation_errors``). The method is then fitted to the
    rotated sample (``"lloyd_max"`` keeps the fit that learned the rotation). It spreads
    each direction's weight over all dimensions, which per-dimension 2-bit cells keep
    better: on the split above asymmetric recall@10 with ``"lloyd_max"`` is 0.851
    with a random rotation and **0.861** with a learned one (faiss ``IndexRaBitQ``
    2-bit: 0.849, 0.850 behind a random rotation); Lee recall moves within noise
    (``"fidelity"``: 0.650 with a random rotation). So
    ``method="lloyd_max", rotation="learned"`` suits asymmetric scoring best. The
    rotation costs ``dim²`` float32 once per set of thresholds (590 KB at 384), nothing
    per vector, and a ``dim × dim`` product per encoded row and per query.

    ``outer_share`` changes the share in A ∪ D for the first two methods (and the
    cuts ``"lloyd_max"`` starts from; with a rotation, the Gaussian cuts of that share).

    >>> import numpy as np, q2key
    >>> x = np.random.default_rng(0).normal(size=(2000, 64)) + np.linspace(-1, 1, 64)
    >>> th = q2key.calibrate(x, method="per_dim")
    >>> th.kind, th.cuts.shape, round(th.report.entropy_bits, 2)
    ('per_dim', (3, 64), 2.0)
    >>> th.reconstruction.shape, th.report.suits
    ((64, 4), 'asymmetric')
    >>> q2key.encode(x, threshold=th).codes.shape
    (2000, 16)
    >>> lm = q2key.calibrate(x, method="lloyd_max")
    >>> lm.report.reconstruction_error <= th.report.reconstruction_error
    True
    >>> rot = q2key.calibrate(x, method="lloyd_max", rotation="learned")
    >>> rot.rotation.shape, rot.report.rotation_errors[-1] <= rot.report.rotation_errors[0]
    ((64, 64), True)
    """
    if not isinstance(method, str) or method not in _METHODS:
        raise Q2KeyError(f"expected one of {', '.join(map(repr, _METHODS))}, got {method!r}", arg="method")
    rot = check_rotation(rotation)
    share = _check_share(outer_share)
    if method == "fidelity":
        # Converted before the sample is read: the same argument mistakes as everywhere else, first.
        h, kk, s, n = (
            _args.real("holdout", holdout),
            _args.size("k", k),
            _args.seed("seed", seed),
            _args.threads(threads),
        )
        v = unit_rows(sample)
        if rot is None:
            return _fidelity(v, seed=s, holdout=h, k=kk, threads=n)
        fitted = _fit_rotation(v, rot, share, s, n)
        return _rotated(_fidelity(_rotate(v, fitted), seed=s, holdout=h, k=kk, threads=n), fitted)
    s, n = _args.seed("seed", seed), _args.threads(threads)
    v = unit_rows(sample)
    if rot is not None:
        fitted = _fit_rotation(v, rot, share, s, n)
        if method == "lloyd_max":
            # The fit that learned the rotation: its cuts and table are Lloyd–Max's for the rotated rows.
            th = fitted.thresholds
            return th.with_report(measure(v, th, method, "per_dim", None, rotation=fitted))
        return _rotated(_calibrate_unit(_rotate(v, fitted), method, share), fitted)
    return _calibrate_unit(v, method, share)


def _calibrate_unit(v: npt.NDArray[np.float64], method: Method, share: float) -> Thresholds:
    """``calibrate(v, method=method)`` of unit rows ``v``, for the methods other than ``"fidelity"``."""
    if method == "lloyd_max":
        th = Thresholds._wrap(_native.lloyd_max(v, fit(v, "per_dim", share)._rule, LLOYD_MAX_ROUNDS))
        return th.with_report(measure(v, th, method, "per_dim", None))
    rule: Literal["global", "per_dim"] = "global" if method == "equiprobable" else "per_dim"
    th = with_table(v, fit(v, rule, share))
    return th.with_report(measure(v, th, method, rule, share))


def check_rotation(rotation: Any) -> Rotation | None:
    """``rotation=`` of :func:`calibrate`: ``None``, ``"random"`` or ``"learned"``."""
    if rotation is None:
        return None
    for known in _ROTATIONS:
        if isinstance(rotation, str) and rotation == known:
            return known
    # Scalars by value; anything else (an array meant for Thresholds.with_rotation, …) by type: one short line.
    shown = repr(rotation) if isinstance(rotation, (str, bytes, int, float)) else type(rotation).__name__
    raise Q2KeyError(f"expected None, 'random' or 'learned', got {shown}", arg="rotation")


@dataclasses.dataclass(frozen=True)
class _FittedRotation:
    """What :func:`_fit_rotation` returns: per-dimension Lloyd–Max thresholds carrying the rotation."""

    kind: Rotation
    thresholds: Thresholds
    errors: tuple[float, ...]

    @property
    def matrix(self) -> npt.NDArray[np.float32]:
        r = self.thresholds.rotation
        assert r is not None
        return r


def _fit_rotation(
    v: npt.NDArray[np.float64], kind: Rotation, share: float, seed: int | None, threads: int | None
) -> _FittedRotation:
    """The core's rotation fit of the unit rows ``v``; its first Lloyd–Max starts from the Gaussian cuts of share."""
    # The rotated coordinates are close to N(0, 1/n) whatever the data: start from that law's cuts.
    tau = statistics.NormalDist().inv_cdf(1.0 - share / 2) / np.sqrt(v.shape[1])
    start = Thresholds.global_(float(tau), dim=v.shape[1])._rule
    th, errors = _native.fit_rotation(
        v, start, LEARNED_ROTATION_ROUNDS, _native_seed(seed), kind, LLOYD_MAX_ROUNDS, threads
    )
    return _FittedRotation(kind, Thresholds._wrap(th), tuple(errors))


def _native_seed(seed: int | None) -> int:
    """A 64-bit seed for the core: ``seed`` itself when it fits, else drawn from it (``None``: fresh entropy)."""
    if seed is not None and seed < 2**64:
        return seed
    return int(np.random.SeedSequence(seed).generate_state(1, np.uint64)[0])


def _rotate(v: npt.NDArray[np.float64], fitted: _FittedRotation) -> npt.NDArray[np.float64]:
    """The unit rows ``v`` rotated as the thresholds will rotate them."""
    return np.asarray(v @ fitted.matrix.astype(np.float64), dtype=np.float64)


def _rotated(th: Thresholds, fitted: _FittedRotation) -> Thresholds:
    """Thresholds fitted to the rotated sample, now applying the rotation, their report saying so."""
    assert th.report is not None
    report = dataclasses.replace(th.report, rotation=fitted.kind, rotation_errors=fitted.errors)
    return th.with_rotation(fitted.matrix).with_report(report)


def unit_rows(sample: Any, arg: str = "sample") -> npt.NDArray[np.float64]:
    """The nonzero rows of ``sample`` L2-normalised in float64; NaN/Inf raise naming the row."""
    rows, _ = float_rows(sample, arg)
    if rows.shape[0] == 0:
        raise ShapeError("need at least one row to calibrate", arg=arg)
    x = np.asarray(rows, dtype=np.float64)
    check_finite(x, arg)
    # Scale each row by its largest magnitude first so the norm cannot overflow.
    peak = np.abs(x).max(axis=1)
    keep = peak > 0
    x = x[keep] / peak[keep, None]
    if x.shape[0] == 0:
        raise Q2KeyError("every row is all zeros; there is no direction to calibrate on", arg=arg)
    return np.asarray(x / np.linalg.norm(x, axis=1, keepdims=True), dtype=np.float64)


def fit(v: npt.NDArray[np.float64], rule: Literal["global", "per_dim"], share: float) -> Thresholds:
    """Thresholds placing ``share`` of the unit rows' values ``v`` in A ∪ D."""
    if rule == "global":
        return Thresholds.global_(float(np.quantile(np.abs(v), 1.0 - share)), dim=v.shape[1])
    cuts = np.quantile(v, [share / 2, 0.5, 1.0 - share / 2], axis=0)
    return Thresholds.per_dim(np.maximum.accumulate(cuts, axis=0))  # quantile rounding cannot unorder them


def with_table(v: npt.NDArray[np.float64], th: Thresholds) -> Thresholds:
    """``th`` carrying the mean of the unit rows ``v``'s values in each of its cells (SPEC §8 "Fitted")."""
    return Thresholds._wrap(_native.fit_reconstruction(v, th._rule), th.report)


def reconstruction_error(v: npt.NDArray[np.float64], th: Thresholds) -> float:
    """Mean over the unit rows ``v``'s coordinates of ``(v − x̂)²``, ``x̂`` the reconstruction ``th`` carries
    (both in ``th``'s rotated coordinates when it has a rotation: the same error, as the rotation is orthogonal)."""
    table = th.table(v.shape[1]).astype(np.float64)
    rotation = th.rotation
    columns = np.arange(v.shape[1])
    total = 0.0
    for lo in range(0, v.shape[0], _ERROR_BLOCK_ROWS):
        block = v[lo : lo + _ERROR_BLOCK_ROWS]
        target = block if rotation is None else block @ rotation.astype(np.float64)
        total += float(np.square(target - table[columns, symbols(block, threshold=th)]).sum())
    return total / v.size


def measure(
    v: npt.NDArray[np.float64],
    th: Thresholds,
    method: Method,
    rule: Literal["global", "per_dim"],
    share: float | None,
    *,
    recall: float | None = None,
    k: int | None = None,
    candidates: tuple[Candidate, ...] = (),
    rotation: _FittedRotation | None = None,
) -> CalibrationReport:
    """Symbol frequencies, entropy and reconstruction error of ``v`` under ``th``; ``share=None``: measured."""
    per_dim = symbol_frequencies(symbols(v, threshold=th))
    frequencies = per_dim.mean(axis=0)
    return CalibrationReport(
        method=method,
        rule=rule,
        outer_share=float(frequencies[0] + frequencies[3]) if share is None else share,
        sample_rows=int(v.shape[0]),
        frequencies=frequencies,
        per_dim_frequencies=per_dim,
        entropy_bits=float(entropy_bits(per_dim).mean()),
        recall=recall,
        k=k,
        candidates=candidates,
        reconstruction_error=reconstruction_error(v, th),
        rotation=None if rotation is None else rotation.kind,
        rotation_errors=() if rotation is None else rotation.errors,
    )


def symbol_frequencies(sym: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
    """``(n, 4)`` share of each symbol per column of a symbol matrix ``(N, n)``."""
    counts = np.stack([(sym == s).sum(axis=0) for s in range(4)], axis=1)
    return np.asarray(counts / max(sym.shape[0], 1), dtype=np.float64)


def entropy_bits(freq: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Entropy in bits of each row of symbol frequencies ``(..., 4)``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(freq > 0, -freq * np.log2(freq), 0.0)
    return np.asarray(terms.sum(axis=-1), dtype=np.float64)


def _fidelity(
    v: npt.NDArray[np.float64], *, seed: int | None, holdout: float, k: int, threads: int | None
) -> Thresholds:
    if not 0.0 < holdout < 1.0:
        raise Q2KeyError(f"expected a share in (0, 1), got {holdout}", arg="holdout")
    rows = int(v.shape[0])
    if rows < MIN_FIDELITY_ROWS:
        raise ShapeError(f"method 'fidelity' needs at least {MIN_FIDELITY_ROWS} nonzero rows, got {rows}", arg="sample")
    n_held = _held_out_rows(rows, holdout, k)
    order = np.random.default_rng(seed).permutation(rows)
    held, train = v[order[:n_held]], v[order[n_held:]]
    # A quarter of the held-out rows (at most 500) query the rest.
    n_queries = min(max(n_held // 4, 1), 500)
    queries, base = held[:n_queries], held[n_queries:]
    kk = min(k, base.shape[0])
    truth = _cosine_top_k(queries, base, kk)
    tried: list[Candidate] = []
    best: tuple[float, Thresholds] | None = None
    rules: tuple[Literal["global", "per_dim"], ...] = ("global", "per_dim")
    for rule in rules:
        for share in FIDELITY_SHARES:
            th = fit(train, rule, share)
            _, got = search(encode(queries, threshold=th).codes, encode(base, threshold=th).codes, kk, threads=threads)
            recall = float(np.mean([len(np.intersect1d(a, b)) for a, b in zip(got, truth)]) / kk)
            tried.append(Candidate(rule, share, recall))
            if best is None or recall > best[0]:
                best = (recall, th)
    assert best is not None
    chosen = next(c for c in tried if c.recall == best[0])
    # The chosen rule refitted on the whole sample: the held-out split only picks the rule.
    th = with_table(v, fit(v, chosen.rule, chosen.outer_share))
    report = measure(v, th, "fidelity", chosen.rule, chosen.outer_share, recall=best[0], k=kk, candidates=tuple(tried))
    return th.with_report(report)


def _held_out_rows(rows: int, holdout: float, k: int) -> int:
    """Rows held out to measure recall@``k``: ``holdout`` of them, at least ``2k + 2``, one left to fit on."""
    # The held-out rows must give queries and a database of at least k + 1 rows each.
    at_least = 2 * k + 2
    if at_least > rows - 1:
        raise Q2KeyError(
            f"method 'fidelity' holds out at least 2·k + 2 = {at_least} of the {rows} nonzero sample rows to "
            f"measure recall@k, which leaves none to fit the thresholds on; use k ≤ {(rows - 3) // 2}",
            arg="k",
        )
    held = round(rows * holdout)
    if held > rows - 1:
        raise Q2KeyError(
            f"{holdout} of the {rows} nonzero sample rows holds out {held}, which leaves none to fit "
            f"the thresholds on; use holdout < {(rows - 0.5) / rows:.6g}",
            arg="holdout",
        )
    return max(held, at_least)


def _cosine_top_k(queries: npt.NDArray[np.float64], base: npt.NDArray[np.float64], k: int) -> npt.NDArray[np.int64]:
    """Exact cosine top-``k`` rows of unit vectors, ties to the lower row."""
    sims = queries @ base.T
    return np.asarray(np.argsort(-sims, axis=1, kind="stable")[:, :k], dtype=np.int64)


def _check_share(share: Any) -> float:
    s = _args.real("outer_share", share)
    if not 0.0 < s < 1.0:
        raise Q2KeyError(f"expected a share in (0, 1), got {share!r}", arg="outer_share")
    return s
