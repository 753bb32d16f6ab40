"""Smoke test of the inverted-file speed benchmark (benches/ivf_speed.py) on a few thousand rows."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHES = Path(__file__).resolve().parents[2] / "benches"
sys.path.insert(0, str(BENCHES))

import ivf_data  # noqa: E402  (benches/ is not a package)
import ivf_speed  # noqa: E402

pytest.importorskip("faiss")


def test_smoke_run_measures_every_method_and_writes_json(tmp_path: Path) -> None:
    with np.load(ivf_data.DEFAULT_DATA) as z:
        np.savez(tmp_path / "real.npz", database=z["database"][:1500], queries=z["queries"][:40])
    out = tmp_path / "ivf.json"
    status = ivf_speed.main(
        [
            "--rows", "4000", "--queries", "40", "--lists", "16", "--nprobe", "1,4,16", "--rounds", "1",
            "--calibration", "per_dim", "--data", str(tmp_path / "real.npz"), "--out", str(tmp_path / "data"),
            "--json", str(out), "--check",
        ]
    )  # fmt: skip
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert status == (1 if doc["targets_missed"] else 0)
    assert [b["method"] for b in doc["built"]] == list(ivf_speed.ALL_METHODS)
    points = {(p["method"], p["nprobe"]): p for p in doc["points"]}
    assert set(points) == {(m, None) for m in ("exhaustive", "exhaustive_lee")} | {
        (m, p) for m in ivf_speed.SWEPT for p in (1, 4, 16)
    }
    for p in doc["points"]:
        assert p["queries_per_s"] > 0 and 0 <= p["recall_cosine"] <= 1
    # Probing every list is the exhaustive search: the same top-10.
    assert points[("ivf", 16)]["recall_exhaustive"] == 1.0
    assert points[("ivf", 16)]["recall_cosine"] == points[("exhaustive", None)]["recall_cosine"]
    assert points[("ivf", 1)]["recall_exhaustive"] <= points[("ivf", 4)]["recall_exhaustive"] <= 1.0
    assert {"speedup_over_exhaustive", "build_over_rabitq"} <= set(doc["targets"])
    assert doc["data"]["settings"]["rows"] == 4000 and doc["machine"]["q2key_simd_backend"]


def test_qps_at_interpolates_log_qps_between_the_points_around_a_recall() -> None:
    pts = [
        ivf_speed.Point("ivf", 1, 1000.0, 1000.0, [], 0.5, 0.6),
        ivf_speed.Point("ivf", 2, 100.0, 100.0, [], 0.7, 1.0),
    ]
    q, how = ivf_speed.qps_at(pts, "ivf", 0.8, "recall_exhaustive")
    assert how == "interpolated" and q == pytest.approx(10 ** (3 - 0.5))
    assert ivf_speed.qps_at(pts, "ivf", 0.5, "recall_exhaustive")[0] == 1000.0  # below the curve: its fastest point
    assert ivf_speed.qps_at(pts, "ivf", 1.01, "recall_exhaustive")[0] is None


def test_paired_speedup_is_the_median_of_per_round_ratios() -> None:
    slow = ivf_speed.Point("exhaustive", None, 1.0, 1.0, [2.0, 1.0, 3.0], 0.6, 1.0)
    fast = ivf_speed.Point("ivf", 24, 1.0, 1.0, [0.1, 0.1, 0.1], 0.6, 0.95)
    assert ivf_speed.paired_speedup(slow, fast) == 20.0  # ratios 20, 10, 30; medians of times give 20 too
    drift = ivf_speed.Point("ivf", 24, 1.0, 1.0, [0.1, 0.05, 0.15], 0.6, 0.95)  # drifts with the machine
    assert ivf_speed.paired_speedup(slow, drift) == 20.0  # each round's ratio is 20
    assert ivf_speed.paired_speedup(slow, ivf_speed.Point("ivf", 24, 1.0, 1.0, [], 0.6, 0.95)) is None


def test_unknown_method_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        ivf_speed.main(["--methods", "ivf,hnsw"])
    assert e.value.code == 2 and "unknown hnsw" in capsys.readouterr().err
