"""The command line and the inverted-file index: `index build --lists`, `index search --nprobe`, `index info`."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import q2key
from q2key.cli import main

DIM = 32
ROWS = 1500
LISTS = 12


def run(*argv: Any, tty: bool | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    rc = main([str(a) for a in argv], stdout=out, stderr=err, tty=tty)
    return rc, out.getvalue(), err.getvalue()


def assert_one_line_error(rc: int, err: str, *fragments: str) -> None:
    assert rc == 1, err
    assert err.startswith("q2key: error: ") and err.count("\n") == 1, err
    for f in fragments:
        assert f in err, (f, err)


@pytest.fixture
def x() -> np.ndarray:
    rng = np.random.default_rng(21)
    centres = rng.normal(size=(30, DIM))
    return (centres[rng.integers(0, 30, ROWS)] + 0.3 * rng.normal(size=(ROWS, DIM))).astype(np.float32)


@pytest.fixture
def files(tmp_path: Path, x: np.ndarray) -> tuple[Path, Path]:
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "q.npy", x[:40] + np.float32(0.05))
    return tmp_path / "x.npy", tmp_path / "q.npy"


def api_index(x: np.ndarray, lists: int) -> q2key.IVFIndex:
    """What `index build --lists` builds when ``--train-rows`` ≥ rows (the sample is every row, in file order):
    k-means on all of them, seed 0."""
    index = q2key.IVFIndex(DIM)
    index.train(x, lists=lists, points_per_list=math.ceil(len(x) / lists), seed=0)
    index.add(x)
    return index


def test_build_with_lists_equals_the_api_and_search_nprobe_matches(
    tmp_path: Path, x: np.ndarray, files: tuple[Path, Path]
) -> None:
    vectors, queries = files
    rc, _, err = run(
        "index", "build", vectors, "-o", tmp_path / "i.q2", "--lists", LISTS, "--batch-rows", 100, "--train-rows", ROWS
    )  # fmt: skip
    assert rc == 0, err
    assert f"indexed {ROWS:,} vectors of dimension {DIM} in {LISTS} lists" in err
    built = q2key.IVFIndex.load(tmp_path / "i.q2")
    want = api_index(x, LISTS)
    np.testing.assert_array_equal(built.centroids, want.centroids)
    q = np.load(queries)
    for nprobe in (1, 3, LISTS):
        rc, _, err = run(
            "index", "search", tmp_path / "i.q2", queries, "-k", 5, "--nprobe", nprobe, "-o", tmp_path / "r.npz"
        )
        assert rc == 0, err
        with np.load(tmp_path / "r.npz") as r:
            d, i = want.search(q, 5, nprobe=nprobe)
            np.testing.assert_array_equal(r["ids"], i)
            np.testing.assert_array_equal(r["distances"], d)
    # Probing every list: the exhaustive index's answer.
    exact = q2key.Index(DIM)
    exact.add(x)
    np.testing.assert_array_equal(np.load(tmp_path / "r.npz")["ids"], exact.search(q, 5).ids)


def test_tsv_output_lists_and_auto(tmp_path: Path, files: tuple[Path, Path]) -> None:
    vectors, queries = files
    rc, _, err = run("index", "build", vectors, "-o", tmp_path / "a.q2", "--lists", "auto", "-q")
    assert rc == 0 and err == "", err
    assert q2key.IVFIndex.load(tmp_path / "a.q2").lists == round(4 * math.sqrt(ROWS))
    rc, out, err = run("index", "search", tmp_path / "a.q2", queries, "-k", 3)
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0] == "query\trank\tid\tdistance" and len(lines) == 1 + 40 * 3
    assert lines[1].split("\t")[:3] == ["0", "0", "0"]


def test_info_reports_lists_and_imbalance(tmp_path: Path, files: tuple[Path, Path]) -> None:
    vectors, _ = files
    assert run("index", "build", vectors, "-o", tmp_path / "i.q2", "--lists", LISTS, "-q")[0] == 0
    rc, out, err = run("index", "info", tmp_path / "i.q2", "--json")
    assert rc == 0, err
    d = json.loads(out)
    assert d["kind"] == "ivf" and d["lists"] == LISTS and d["rows"] == ROWS and d["imbalance"] >= 1
    assert d["list_rows"]["min"] <= d["list_rows"]["mean"] <= d["list_rows"]["max"]
    rc, out, _ = run("index", "info", tmp_path / "i.q2")
    assert rc == 0 and f"lists       {LISTS}" in out and "imbalance" in out


def test_training_sample_is_a_uniform_sample_streamed_from_the_file(tmp_path: Path, files: tuple[Path, Path]) -> None:
    vectors, _ = files
    rc, _, err = run(
        "index", "build", vectors, "-o", tmp_path / "i.q2", "--lists", 5, "--train-rows", 300, "--seed", 3,
        "--batch-rows", 64, tty=True,
    )  # fmt: skip
    assert rc == 0, err
    assert "sample" in err and "index" in err  # both passes drew their progress bar
    index = q2key.IVFIndex.load(tmp_path / "i.q2")
    assert len(index) == ROWS and index.lists == 5
    rc2, _, _ = run(
        "index", "build", vectors, "-o", tmp_path / "j.q2", "--lists", 5, "--train-rows", 300, "--seed", 3, "-q"
    )
    assert rc2 == 0  # the same seed, the same sample and centroids, whatever the batch size
    np.testing.assert_array_equal(q2key.IVFIndex.load(tmp_path / "j.q2").centroids, index.centroids)


def test_parquet_input_with_ids(tmp_path: Path, x: np.ndarray) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    table = pa.table({"emb": pa.array(list(x), type=pa.list_(pa.float32(), DIM))})
    pq.write_table(table, tmp_path / "x.parquet", row_group_size=256)
    ids = np.arange(ROWS, dtype=np.uint64) * 7 + 1
    np.save(tmp_path / "ids.npy", ids)
    rc, _, err = run(
        "index", "build", tmp_path / "x.parquet", "-o", tmp_path / "i.q2", "--lists", 6, "--ids", tmp_path / "ids.npy",
        "-q",
    )  # fmt: skip
    assert rc == 0, err
    index = q2key.IVFIndex.load(tmp_path / "i.q2")
    assert len(index) == ROWS and 8 in index and 2 not in index
    assert index.search(x[:3], 1, nprobe=6).ids[:, 0].tolist() == [1, 8, 15]


def test_mistakes_are_one_line_errors(tmp_path: Path, x: np.ndarray, files: tuple[Path, Path]) -> None:
    vectors, queries = files
    out = tmp_path / "i.q2"
    assert_one_line_error(*run("index", "build", vectors, "-o", out, "--lists", ROWS + 1, "-q")[::2], "--lists")
    assert_one_line_error(
        *run("index", "build", vectors, "-o", out, "--lists", 4, "--weights", "1,1,2", "-q")[::2], "--weights"
    )
    bad = x.copy()
    bad[777, 3] = np.nan
    np.save(tmp_path / "bad.npy", bad)
    assert_one_line_error(*run("index", "build", tmp_path / "bad.npy", "-o", out, "--lists", 4, "-q")[::2], "row 777")
    assert not out.exists()
    assert run("index", "build", vectors, "-o", tmp_path / "plain.q2", "-q")[0] == 0
    assert_one_line_error(
        *run("index", "search", tmp_path / "plain.q2", queries, "--nprobe", 2)[::2], "--nprobe", "--lists"
    )
    rc, _, err = run("index", "build", vectors, "-o", out, "--lists", 0)
    assert rc == 2 and "--lists" in err


def test_build_adds_in_bounded_batches_and_the_file_does_not_depend_on_them(
    tmp_path: Path, files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without --batch-rows, pass 3 adds at most ADD_BATCH_ROWS rows at a time (each batch is held several
    # times over while it is added, so its size is the build's memory above the index); the file is the
    # same whatever the batches.
    from q2key import _cli_ivf

    vectors, _ = files
    monkeypatch.setattr(_cli_ivf, "ADD_BATCH_ROWS", 256)
    sizes: list[int] = []
    add = q2key.IVFIndex.add

    def recording_add(self: q2key.IVFIndex, x: Any, *args: Any, **kw: Any) -> Any:
        sizes.append(len(x))
        return add(self, x, *args, **kw)

    monkeypatch.setattr(q2key.IVFIndex, "add", recording_add)
    rc, _, err = run("index", "build", vectors, "-o", tmp_path / "a.q2", "--lists", LISTS, "--train-rows", ROWS)
    assert rc == 0, err
    assert sum(sizes) == ROWS and max(sizes) == 256
    sizes.clear()
    rc, _, err = run(
        "index", "build", vectors, "-o", tmp_path / "b.q2", "--lists", LISTS, "--train-rows", ROWS, "--batch-rows", 700
    )  # fmt: skip
    assert rc == 0, err
    assert max(sizes) == 700  # an explicit --batch-rows is taken as given
    assert (tmp_path / "a.q2").read_bytes() == (tmp_path / "b.q2").read_bytes()
