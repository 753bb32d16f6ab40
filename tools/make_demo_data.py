"""Builds the demo subset bundled in the wheel from data/ (run from the repo root).

The demo ships the first 10 000 database rows and the first 300 queries of
data/wordnet-minilm-dev.npz with their texts, and recomputes the exact cosine
top-100 over that subset (float32 from the float16 values, ties to the lower
row), so recall figures in `q2key demo` are against true ground truth.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "data"
DST = ROOT / "python" / "q2key" / "data"
N_DATABASE, N_QUERIES, TOP = 10_000, 300, 100


def exact_top(database: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    db = database.astype(np.float32)
    q = queries.astype(np.float32)
    db /= np.linalg.norm(db, axis=1, keepdims=True)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    cos = q @ db.T
    ids = np.argsort(-cos, axis=1, kind="stable")[:, :k]
    return ids.astype(np.int32), np.take_along_axis(cos, ids, axis=1).astype(np.float32)


def main() -> None:
    src = np.load(SRC / "wordnet-minilm-dev.npz")
    database, queries = src["database"][:N_DATABASE], src["queries"][:N_QUERIES]
    gt_ids, gt_cosine = exact_top(database, queries, TOP)
    DST.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        DST / "wordnet-minilm-demo.npz",
        database=database,
        queries=queries,
        gt_ids=gt_ids,
        gt_cosine=gt_cosine,
    )
    for name, count in (("texts", N_DATABASE), ("queries", N_QUERIES)):
        lines = (SRC / f"wordnet-minilm-dev.{name}.jsonl").read_text(encoding="utf-8").splitlines()[:count]
        assert all(isinstance(json.loads(line), str) for line in lines)
        (DST / f"wordnet-minilm-demo.{name}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    shutil.copy(SRC / "README.md", DST / "DATA-LICENSE.md")


if __name__ == "__main__":
    main()
