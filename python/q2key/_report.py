"""What calibration measured: :class:`CalibrationReport` and the :class:`Candidate` rules it tried.

A leaf module (it imports nothing of q2key's) so that :class:`q2key.Thresholds`, which carries a
report, and :func:`q2key.calibrate`, which makes one, do not import each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

#: The calibration methods of :func:`q2key.calibrate`.
Method = Literal["equiprobable", "per_dim", "fidelity", "lloyd_max"]
#: The rotations :func:`q2key.calibrate` fits (``rotation=``): Haar-random, or learned on the sample.
Rotation = Literal["random", "learned"]
#: The scorings a search can use: Lee distance between codes, or a float query against the codes' reconstruction.
Scoring = Literal["lee", "asymmetric"]

#: The scoring each method's thresholds suit, measured on the bundled MiniLM dev split (see
#: :func:`q2key.calibrate`): ``fidelity`` picks its rule by Lee recall; the per-dimension methods
#: give the best asymmetric recall; ``equiprobable`` (SPEC §6's plain rule) is the best of neither.
SUITS: dict[Method, Scoring | None] = {
    "equiprobable": None,
    "per_dim": "asymmetric",
    "fidelity": "lee",
    "lloyd_max": "asymmetric",
}
#: The method and rotation measured best for each scoring (a rotation lifts asymmetric recall; Lee
#: recall moves within noise with one).
BEST: dict[Scoring, tuple[Method, Rotation | None]] = {
    "lee": ("fidelity", None),
    "asymmetric": ("lloyd_max", "learned"),
}
SCORING_WORDS: dict[Scoring, str] = {
    "lee": "Lee scoring (coded queries)",
    "asymmetric": "asymmetric scoring (float queries against the codes' reconstruction)",
}


@dataclass(frozen=True)
class Candidate:
    """One threshold rule ``method="fidelity"`` tried, and its held-out neighbour recall."""

    rule: Literal["global", "per_dim"]
    outer_share: float
    recall: float


@dataclass(frozen=True, eq=False)
class CalibrationReport:
    """What :func:`q2key.calibrate` measured on its sample.

    Attributes:
        method: the calibration method asked for.
        rule: ``"global"`` (one τ) or ``"per_dim"`` (three cuts per dimension).
        outer_share: the share of sampled values placed in A ∪ D (0.5 = equiprobable); for
            ``lloyd_max``, the share where its cuts ended (measured on the sample).
        sample_rows: nonzero rows used (all-zero rows have no direction and are skipped).
        frequencies: ``(4,)`` share of all sampled coordinates in A, B, C, D.
        per_dim_frequencies: ``(n, 4)`` the same per dimension.
        entropy_bits: mean over dimensions of the symbol entropy, in bits (at most 2).
        recall: held-out neighbour recall@``k`` of Lee search against cosine (``fidelity`` only).
        k: the ``k`` of ``recall``.
        candidates: every rule ``fidelity`` tried, in the order tried.
        reconstruction_error: mean over the sample's normalised coordinates of the squared
            difference to their reconstruction ``x̂`` (the table the thresholds carry, SPEC §8).
        rotation: the rotation asked for (``calibrate(rotation=...)``), or ``None``; the
            frequencies, shares and errors above are then those of the rotated coordinates.
        rotation_errors: the sample's reconstruction error (as above) of the per-dimension
            Lloyd–Max fit made with the rotation: after the first fit and after every learned
            round (never increasing; one value for ``"random"``).
    """

    method: Method
    rule: Literal["global", "per_dim"]
    outer_share: float
    sample_rows: int
    frequencies: npt.NDArray[np.float64]
    per_dim_frequencies: npt.NDArray[np.float64] = field(repr=False)
    entropy_bits: float
    recall: float | None = None
    k: int | None = None
    candidates: tuple[Candidate, ...] = ()
    reconstruction_error: float | None = None
    rotation: Rotation | None = None
    rotation_errors: tuple[float, ...] = ()

    @property
    def suits(self) -> Scoring | None:
        """The scoring these thresholds suit: ``"lee"`` (coded queries), ``"asymmetric"`` (float queries), or ``None``
        (``equiprobable``, the best of neither)."""
        return SUITS[self.method]

    def __str__(self) -> str:
        f = self.frequencies
        rotated = "" if self.rotation is None else f", {self.rotation} rotation"
        lines = [
            f"calibration: method {self.method}{rotated}, rule {self.rule}, {self.outer_share:.0%} of values in A ∪ D, "
            f"{self.sample_rows} sample rows",
            f"symbol frequencies A {f[0]:.3f}  B {f[1]:.3f}  C {f[2]:.3f}  D {f[3]:.3f}",
            f"entropy {self.entropy_bits:.3f} bits per dimension (max 2)",
        ]
        if self.reconstruction_error is not None:
            lines.append(f"reconstruction error {self.reconstruction_error:.4g} (mean squared, per coordinate)")
        if self.rotation_errors:
            first, last = self.rotation_errors[0], self.rotation_errors[-1]
            rounds = len(self.rotation_errors) - 1
            learned = f" → {last:.4g} over {rounds} learned round{'s' if rounds != 1 else ''}" if rounds else ""
            lines.append(f"{self.rotation} rotation: Lloyd–Max reconstruction error {first:.4g}{learned}")
        if self.recall is not None:
            lines.append(f"held-out neighbour recall@{self.k}: {self.recall:.3f}")
        for c in self.candidates:
            lines.append(f"  tried {c.rule:8s} share {c.outer_share:.2f}: recall {c.recall:.3f}")
        if self.suits is not None:
            lines.append(f"suits {SCORING_WORDS[self.suits]}")
        for scoring, (method, rotation) in BEST.items():
            if (method, rotation) != (self.method, self.rotation):
                also = "" if rotation is None else f", rotation {rotation!r}"
                lines.append(f"  best for {SCORING_WORDS[scoring]}: method {method!r}{also}")
        return "\n".join(lines)
