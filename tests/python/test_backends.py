"""Every SIMD backend (selected with Q2KEY_SIMD in a fresh process) gives byte-identical results."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import q2key
from conftest import ref_lee_matrix

# Backend requested through Q2KEY_SIMD → name simd_backend() reports, in increasing order.
BACKENDS = {"scalar": "scalar", "avx2": "avx2", "avx512": "avx512-vpopcntdq"}
RANK = {reported: i for i, reported in enumerate(BACKENDS.values())}

SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import q2key

    out = {}
    rng = np.random.default_rng(12345)
    for dim in (1, 3, 4, 5, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 127, 128, 129, 384, 1000, 1023):
        x = rng.normal(size=(41, dim))
        x[1] = 0.0
        x[2, ::2] *= 1e5
        x[3] = np.repeat(rng.normal(size=-(-dim // 5)), 5)[:dim]
        x[4] = np.sort(x[4])
        x[5] *= 1e300
        x[6] *= 1e-300
        for dtype in (np.float16, np.float32, np.float64):
            with np.errstate(over="ignore"):
                xd = x.astype(dtype)
            xd = xd[np.isfinite(xd).all(axis=1)]
            enc = q2key.encode(xd)
            tag = f"{np.dtype(dtype).name}_{dim}"
            out[f"codes_{tag}"] = enc.codes
            out[f"keys_{tag}"] = enc.keys
            out[f"trans_{tag}"] = enc.transitions
            out[f"symbols_{tag}"] = q2key.symbols(xd)
            out[f"thr_{tag}"] = q2key.encode(xd, threshold=0.1).codes
    try:
        q2key.encode(np.array([[1.0, 2.0], [np.nan, 1.0]], np.float32))
    except q2key.NonFiniteError as e:
        out["nan_message"] = np.array(str(e))
    for width in (1, 3, 8, 13, 24, 32, 48, 64, 96, 100, 128, 256):
        db = rng.integers(0, 256, size=(1100, width), dtype=np.uint8)
        db[500:600] = db[:100]  # exact duplicates: ties
        q = np.concatenate([rng.integers(0, 256, size=(30, width), dtype=np.uint8), db[:5]])
        out[f"lee_{width}"] = q2key.lee(q[:1], db)
        out[f"leepair_{width}"] = q2key.lee(db[:550], db[550:])
        out[f"leematrix_{width}"] = q2key.lee_matrix(q, db)
        out[f"wlee_{width}"] = q2key.weighted_lee(db[:550], db[550:], weights=(0.5, 1.25, 3.0))
        out[f"comp_{width}"] = q2key.complement(db, 4 * width - 1)
        for k in (1, 10, 300, 1100):
            d, i = q2key.search(q, db, k)
            out[f"sd_{width}_{k}"] = d
            out[f"si_{width}_{k}"] = i
    out["backend"] = np.array(q2key.simd_backend())
    np.savez(sys.argv[1], **out)
    """
)


def _run(tmp_path: Path, simd: str | None) -> dict[str, np.ndarray]:
    env = {k: v for k, v in os.environ.items() if k != "Q2KEY_SIMD"}
    if simd is not None:
        env["Q2KEY_SIMD"] = simd
    out = tmp_path / f"out_{simd or 'default'}.npz"
    script = tmp_path / "backend_script.py"
    script.write_text(SCRIPT)
    proc = subprocess.run(
        [sys.executable, str(script), str(out)],
        env=env,
        cwd=str(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"Q2KEY_SIMD={simd}: {proc.stderr}"
    with np.load(out) as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, np.ndarray]]:
    tmp = tmp_path_factory.mktemp("backends")
    res = {"default": _run(tmp, None)}
    best = str(res["default"]["backend"])
    assert best in RANK, f"unknown backend {best!r}"
    for name, reported in BACKENDS.items():
        if RANK[reported] <= RANK[best]:
            res[name] = _run(tmp, name)
    return res


def test_default_is_the_best_backend(results: dict[str, dict[str, np.ndarray]]) -> None:
    best = str(results["default"]["backend"])
    if "Q2KEY_SIMD" not in os.environ:
        assert q2key.simd_backend() == best
    assert best in BACKENDS.values()


@pytest.mark.parametrize("simd", list(BACKENDS))
def test_requested_backend_is_used(results: dict[str, dict[str, np.ndarray]], simd: str) -> None:
    if simd not in results:
        pytest.skip(f"this CPU does not support {simd}")
    assert str(results[simd]["backend"]) == BACKENDS[simd]


@pytest.mark.parametrize("simd", list(BACKENDS))
def test_outputs_are_byte_identical_across_backends(results: dict[str, dict[str, np.ndarray]], simd: str) -> None:
    if simd not in results:
        pytest.skip(f"this CPU does not support {simd}")
    ref, got = results["default"], results[simd]
    assert set(got) == set(ref)
    assert len(ref) > 400
    for key in sorted(ref):
        if key == "backend":
            continue
        a, b = got[key], ref[key]
        assert a.dtype == b.dtype and a.shape == b.shape, f"{simd}: {key} {a.dtype}{a.shape} vs {b.dtype}{b.shape}"
        assert a.tobytes() == b.tobytes(), f"{simd}: {key} differs from the default backend"


def test_backend_outputs_are_correct(results: dict[str, dict[str, np.ndarray]]) -> None:
    """The shared outputs are not just equal but right (spot checks against numpy)."""
    out = results.get("scalar", results["default"])
    assert "row 1" in str(out["nan_message"])
    rng = np.random.default_rng(0)
    db = rng.integers(0, 256, size=(20, 8), dtype=np.uint8)
    assert np.array_equal(q2key.lee_matrix(db, db), ref_lee_matrix(db, db))
    # search outputs are sorted and consistent with lee_matrix outputs.
    for width in (1, 48, 256):
        d, i = out[f"sd_{width}_10"], out[f"si_{width}_10"]
        full = out[f"leematrix_{width}"]
        assert np.array_equal(np.take_along_axis(full, i, axis=1), d)
        assert (np.diff(d.astype(np.int64), axis=1) >= 0).all()
        assert (i >= 0).all()
