"""The structured data generator of the inverted-file benchmark (benches/ivf_data.py), on a small real sample."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHES = Path(__file__).resolve().parents[2] / "benches"
sys.path.insert(0, str(BENCHES))

import ivf_data  # noqa: E402  (benches/ is not a package)


@pytest.fixture(scope="module")
def small_npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 1 500 bundled database rows and 60 queries, in the bundled file's layout."""
    with np.load(ivf_data.DEFAULT_DATA) as z:
        db, queries = z["database"][:1500], z["queries"][:60]
    path = tmp_path_factory.mktemp("real") / "small.npz"
    np.savez(path, database=db, queries=queries)
    return path


def test_rows_are_unit_deterministic_and_a_prefix_of_a_longer_file(
    small_npz: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ivf_data, "CHUNK", 1024)  # small chunks, so that a few thousand rows are several
    rows = 2 * ivf_data.CHUNK + 500
    a = ivf_data.dataset(rows, tmp_path / "a", data=small_npz)
    b = ivf_data.dataset(rows + 1700, tmp_path / "b", data=small_npz)
    assert a.database.shape == (rows, ivf_data.DIM) and a.database.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(np.asarray(a.database[:2000]), axis=1), 1.0, rtol=1e-5)
    # The same seed gives the same rows: the shorter file is a prefix of the longer one.
    np.testing.assert_array_equal(np.asarray(a.database), np.asarray(b.database[:rows]))
    other = ivf_data.dataset(rows, tmp_path / "c", data=small_npz, seed=1)
    assert not np.array_equal(np.asarray(other.database[:100]), np.asarray(a.database[:100]))


def test_ground_truth_is_the_exact_cosine_top10_and_the_cache_is_reused(small_npz: Path, tmp_path: Path) -> None:
    ds = ivf_data.dataset(3000, tmp_path, data=small_npz)
    db = np.asarray(ds.database, dtype=np.float32)
    sims = ds.queries @ db.T
    want = np.argsort(-sims, axis=1, kind="stable")[:, :10]
    np.testing.assert_array_equal(ds.truth, want)
    np.testing.assert_allclose(ds.truth_cos, np.take_along_axis(sims, want, axis=1), rtol=1e-6)
    meta = json.loads(ds.path.with_suffix(".json").read_text(encoding="utf-8"))
    assert meta["settings"]["rows"] == 3000 and 0 < meta["noise_scale"] < 4
    stamp = ds.path.stat().st_mtime_ns
    again = ivf_data.dataset(3000, tmp_path, data=small_npz)  # the cached files, not a new run
    assert again.path.stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(again.truth, ds.truth)
    assert not list(tmp_path.glob("*.tmp*"))  # nothing half-written left behind


def test_fitted_noise_matches_the_real_median_neighbour_cosine(small_npz: Path, tmp_path: Path) -> None:
    ds = ivf_data.dataset(2000, tmp_path, data=small_npz)
    cos = ds.meta["neighbour_cosines"]
    real, synthetic = cos["real 1500 rows"]["top10"][1], cos["synthetic 1500 rows"]["top10"][1]
    assert synthetic == pytest.approx(real, abs=0.01)
    assert "synthetic 2000 rows" in ivf_data.describe(ds)


def test_top_k_ties_go_to_the_lower_row() -> None:
    rng = np.random.default_rng(3)
    db = ivf_data.unit(rng.normal(size=(300, 16)))
    db = np.concatenate([db, db, db])  # every row three times
    q = ivf_data.unit(rng.normal(size=(5, 16)))
    want = np.argsort(-(q @ db.T), axis=1, kind="stable")[:, :10]
    ids, _ = ivf_data.exact_top_k(q, db)
    np.testing.assert_array_equal(ids, want)
    halves = ivf_data.merge_top_k(ivf_data.top_k(q, db[:450]), ivf_data.top_k(q, db[450:], start=450))
    np.testing.assert_array_equal(halves[0], want)


def test_float16_storage_above_two_million_rows() -> None:
    assert ivf_data.storage_dtype(1_000_000, "auto") == "float32"
    assert ivf_data.storage_dtype(10_000_000, "auto") == "float16"
    with pytest.raises(ValueError, match="dtype"):
        ivf_data.storage_dtype(10, "int8")
