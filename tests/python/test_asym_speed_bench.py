"""Smoke test of the asymmetric speed benchmark (benches/asym_speed.py) on a few thousand rows."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHES = Path(__file__).resolve().parents[2] / "benches"
sys.path.insert(0, str(BENCHES))

import asym_speed  # noqa: E402  (benches/ is not a package)

pytest.importorskip("faiss")


def test_smoke_run_measures_every_method_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "speed.json"
    status = asym_speed.main(
        [
            "--rows", "3000", "--queries", "40", "--latency-queries", "3", "--rounds", "1",
            "--recall-queries", "40", "--calibration", "per_dim", "--json", str(out), "--check",
        ]
    )  # fmt: skip
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert [m["method"] for m in doc["methods"]] == list(asym_speed.ALL_METHODS)
    assert doc["asym_index_agree"] is True
    assert status == (1 if doc["targets_missed"] else 0)
    by = {m["method"]: m for m in doc["methods"]}
    for m in doc["methods"]:
        assert m["queries_per_s"] > 0 and m["latency_ms"] > 0 and 0 <= m["recall"] <= 1
    # The codes alone are 96 bytes at n = 384; the index adds its key, id and norm.
    assert by["asym"]["bytes_per_row"] == 96 and by["lee"]["bytes_per_row"] == 96
    assert by["index"]["bytes_per_row"] > 96
    # Asymmetric scoring finds real neighbours far better than chance (10 of 3 000).
    assert by["asym"]["recall"] > 0.5 and by["asym"]["recall"] == by["index"]["recall"]
    assert doc["ratios"]["asym/pq"] == pytest.approx(by["asym"]["queries_per_s"] / by["pq"]["queries_per_s"], abs=1e-3)
    assert doc["machine"]["q2key_simd_backend"]


def test_synthesised_rows_are_unit_and_near_their_source() -> None:
    base = asym_speed.unit(np.random.default_rng(0).normal(size=(50, 384)))
    rows = asym_speed.synthesise(base, 120, noise=0.5, seed=1)
    assert rows.shape == (120, 384) and rows.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, rtol=1e-5)
    # Row i is row i mod 50 plus noise of norm ≈ 0.5: cosine ≈ 1/√1.25 ≈ 0.89 with its source.
    cos = np.einsum("ij,ij->i", rows, base[np.arange(120) % 50])
    assert np.all(cos > 0.8) and np.all(cos < 0.97)


def test_exact_top_k_is_brute_force_with_ties_to_the_lower_row() -> None:
    rng = np.random.default_rng(2)
    db = asym_speed.unit(rng.normal(size=(250, 16)))
    db = np.concatenate([db, db])  # every row twice: ties everywhere
    q = asym_speed.unit(rng.normal(size=(7, 16)))
    want = np.argsort(-(q @ db.T), axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(asym_speed.exact_top_k(q, db, 5), want)


def test_unknown_method_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        asym_speed.main(["--methods", "asym,hnsw"])
    assert e.value.code == 2 and "unknown hnsw" in capsys.readouterr().err
