"""`q2key demo` on the bundled data: it runs, prints its report, and its recall figures hold."""

from __future__ import annotations

import io

from q2key import demo


def test_demo_reports_speed_size_and_recall() -> None:
    out = io.StringIO()
    figures = demo.run(out=out)
    text = out.getvalue()
    assert "96-byte code + 8-byte key = 104 bytes per vector" in text and "query:" in text
    # The key is stored with every code: 1536 float32 bytes / 104 bytes, not / 96.
    assert figures["bytes_per_vector"] == 104.0 and figures["compression_vs_float32"] == 1536 / 104
    assert "14.8x smaller" in text and "16x" not in text
    # Every term the report uses is explained in it.
    assert "Lee distance" in text and "A and D" in text and "A+D" not in text
    assert "Gaussian threshold" not in text and "assumes Gaussian values" in text
    assert figures["encode_vectors_per_s"] > 0 and figures["search_queries_per_s"] > 0
    # Measured on the bundled data: Gaussian 0.53 / 0.94; calibrated 0.6+ / 0.97+.
    assert 0.45 < figures["recall_at_k"] < figures["recall_at_k_calibrated"]
    assert figures["recall_at_k_calibrated_rescored"] >= 0.95
    assert figures["recall_at_k_rescored"] >= 0.9
