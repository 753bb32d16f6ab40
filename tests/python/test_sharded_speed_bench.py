"""Smoke test of the sharded-index speed benchmark (benches/sharded_speed.py) on a few thousand rows."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

BENCHES = Path(__file__).resolve().parents[2] / "benches"
sys.path.insert(0, str(BENCHES))

pytest.importorskip("distributed")
import sharded_speed  # noqa: E402  (benches/ is not a package)


@pytest.mark.slow
def test_smoke_run_measures_both_clusters_and_agrees_with_one_index(tmp_path: Path) -> None:
    out = tmp_path / "speed.json"
    doc = sharded_speed.main(
        ["--rows", "4000", "--dim", "32", "--shards", "3", "--queries", "40", "--rounds", "1", "--json", str(out)]
    )
    assert json.loads(out.read_text(encoding="utf-8")) == doc
    assert doc["equal"] is True  # 1 and 2 workers answer exactly as one local Index
    for name in ("qps_1w", "qps_2w", "qps_local"):
        assert doc[name] > 0
    assert doc["speedup_2w"] == pytest.approx(doc["qps_2w"] / doc["qps_1w"])
    assert doc["speedup_2w_paired"] == pytest.approx(doc["sharded_1w_all_s"][0] / doc["sharded_2w_all_s"][0])


def test_paired_speedups_take_the_median_of_each_rounds_own_ratio() -> None:
    # Round 2 is slow for every configuration (the machine's drift): its own ratios are still 2 and 1.5.
    doc = {
        "sharded_1w_all_s": [10.0, 30.0, 9.0],
        "sharded_2w_all_s": [5.0, 15.0, 10.0],
        "local_all_s": [6.0, 18.0, 6.0],
        "local_2t_all_s": [4.0, 12.0, 2.0],
    }
    assert sharded_speed.paired_speedups(doc) == {"speedup_2w_paired": 2.0, "local_speedup_2t_paired": 1.5}
