"""Smoke test of the streamed inverted-file benchmark (benches/ivf_stream.py) on a few thousand rows."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

BENCHES = Path(__file__).resolve().parents[2] / "benches"
sys.path.insert(0, str(BENCHES))

import ivf_data  # noqa: E402  (benches/ is not a package)
import ivf_stream  # noqa: E402


def test_smoke_run_builds_loads_and_searches(tmp_path: Path) -> None:
    with np.load(ivf_data.DEFAULT_DATA) as z:
        np.savez(tmp_path / "real.npz", database=z["database"][:1500], queries=z["queries"][:30])
    out = tmp_path / "stream.json"
    doc = ivf_stream.main(
        [
            "--rows", "3000", "--lists", "8", "--queries", "20", "--nprobe", "2,8", "--rounds", "1",
            "--calibration", "per_dim", "--data", str(tmp_path / "real.npz"), "--out", str(tmp_path / "data"),
            "--json", str(out),
        ]
    )  # fmt: skip
    assert json.loads(out.read_text(encoding="utf-8")) == doc
    assert doc["load"]["read"]["rows"] == doc["load"]["mmap"]["rows"] == 3000
    # The child's peak holds at least the index it built; the index file is the index.
    assert doc["build_peak_rss_bytes"] > doc["index_file_bytes"] > 3000 * 96
    points = {p["nprobe"]: p for p in doc["points"]}
    assert points[8]["recall_exhaustive"] == 1.0  # every list probed: the exhaustive answer
    assert points[8]["recall_cosine"] == doc["exhaustive"]["recall_cosine"]
    assert points[2]["recall_exhaustive"] <= 1.0 and points[2]["queries_per_s"] > 0
