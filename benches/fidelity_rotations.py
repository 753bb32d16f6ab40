"""Does an orthogonal rotation of the input let Q² match the 2-bit thermometer code? (issue 3, an experiment)

Usage::

    python benches/fidelity_rotations.py [--data PATH]

On the data of ``fidelity.py`` (20 000 MiniLM database rows, 1 000 queries, exact cosine top-100),
fits rotations ``R`` on the database only and encodes ``X @ R`` and ``Q @ R`` (a rotation keeps
every cosine, so the ground truth is unchanged):

- identity; a Haar-random rotation (seed 0); PCA of the centred database followed by that random
  rotation (variance balancing); ITQ (iterative quantisation, 20 iterations from PCA·random,
  sign codes: ``B = sign(V R)``, ``R = U Wᵀ`` from ``svd(Vᵀ B)``, V the centred database).

For each, Q² calibrated with ``method="fidelity"`` (seed 0) and the thermometer code of
``fidelity_baselines.py`` fitted on the rotated database; recall@10 / recall@100 of the code
ranking. A diagnostic row, not at equal bytes: the same per-dimension cells (share 0.5) as a
4-level thermometer (3 bits per dimension, L1 distance), i.e. Q²'s cells without the wrap that
puts A and D one step apart. Prints a Markdown table (about 15 s on 2 cores).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt
import q2key

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fidelity as fid  # siblings: importable however this file is run
import fidelity_baselines as fb

SEED = 0
ITQ_ITERATIONS = 20
F64 = npt.NDArray[np.float64]


def haar_rotation(n: int, seed: int) -> F64:
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def itq_sign(centred: F64, start: F64, iterations: int) -> F64:
    """ITQ (Gong & Lazebnik): the rotation that best aligns the centred rows with their sign codes."""
    r = start
    for _ in range(iterations):
        u, _, wt = np.linalg.svd(centred.T @ np.sign(centred @ r))
        r = u @ wt
    return r


def rotations(x: npt.NDArray[np.float32]) -> dict[str, F64]:
    xd = x.astype(np.float64)
    centred = xd - xd.mean(0)
    _, vectors = np.linalg.eigh(np.cov(centred, rowvar=False))
    pca = vectors[:, ::-1]
    rand = haar_rotation(x.shape[1], SEED)
    return {
        "identity": np.eye(x.shape[1]),
        "random": rand,
        "PCA · random": pca @ rand,
        f"ITQ ({ITQ_ITERATIONS} it.)": itq_sign(centred, pca @ rand, ITQ_ITERATIONS),
    }


def recalls(idx: npt.NDArray[np.uint64], gt: npt.NDArray[np.int64]) -> tuple[float, float]:
    return fid.recall_at(idx, gt, 10), fid.recall_at(idx, gt, 100)


def q2_fidelity(
    x: npt.NDArray[np.float32], q: npt.NDArray[np.float32], gt: npt.NDArray[np.int64]
) -> tuple[str, float, float]:
    th = q2key.calibrate(x, method="fidelity", seed=SEED)
    _, idx = q2key.search(q2key.encode(q, threshold=th).codes, q2key.encode(x, threshold=th).codes, 100)
    return (f"{th.report.rule}, share {th.report.outer_share:g}", *recalls(idx, gt))


def thermometer(
    x: npt.NDArray[np.float32], q: npt.NDArray[np.float32], gt: npt.NDArray[np.int64]
) -> tuple[float, float]:
    code = fb.Thermometer.fit(x, fb.THERMOMETER_SIGMAS)
    _, idx = q2key.search(code.encode(q), code.encode(x), 100)
    return recalls(idx, gt)


def four_level_l1(
    x: npt.NDArray[np.float32], q: npt.NDArray[np.float32], gt: npt.NDArray[np.int64]
) -> tuple[float, float]:
    cuts = q2key.calibrate(x, method="per_dim", outer_share=0.5).cuts.astype(np.float32)

    def encode(z: npt.NDArray[np.float32]) -> npt.NDArray[np.uint8]:
        unit = z / np.linalg.norm(z, axis=1, keepdims=True)
        levels = np.stack([unit > cuts[0], unit > cuts[1], unit > cuts[2]], axis=2)  # thermometer bits
        return np.packbits(levels.reshape(len(z), -1), axis=1)

    _, idx = q2key.search(encode(q), encode(x), 100)
    return recalls(idx, gt)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=fid.DEFAULT_DATA)
    args = parser.parse_args(argv)
    data = fid.load_dataset(args.data)
    x, q, gt = data.database, data.queries, data.gt_ids
    print("| rotation | Q² fidelity (rule chosen) r@10 / r@100 | thermometer r@10 / r@100 |")
    print("|---|---|---|")
    for name, r in rotations(x).items():
        r32 = r.astype(np.float32)
        xr, qr = x @ r32, q @ r32
        rule, q10, q100 = q2_fidelity(xr, qr, gt)
        t10, t100 = thermometer(xr, qr, gt)
        print(f"| {name} | {q10:.3f} / {q100:.3f} ({rule}) | {t10:.3f} / {t100:.3f} |", flush=True)
    d10, d100 = four_level_l1(x, q, gt)
    print(f"\nDiagnostic, 144 B: Q² per_dim cells (share 0.5) as a 4-level L1 code: {d10:.3f} / {d100:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
