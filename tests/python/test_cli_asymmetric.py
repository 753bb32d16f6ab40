"""The command line and asymmetric scoring: `calibrate --method lloyd_max`, `index search --scoring`."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import q2key
from q2key import _index
from q2key.cli import SCORINGS, main

DIM = 48
ROWS = 700


def run(*argv: Any) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    rc = main([str(a) for a in argv], stdout=out, stderr=err)
    return rc, out.getvalue(), err.getvalue()


def assert_one_line_error(rc: int, err: str, code: int, *fragments: str) -> None:
    assert rc == code, err
    assert err.startswith("q2key: error: ") and err.endswith("\n") and err.count("\n") == 1, err
    for f in fragments:
        assert f in err, (f, err)


@pytest.fixture
def x() -> np.ndarray:
    rng = np.random.default_rng(11)
    return (rng.standard_normal((ROWS, DIM)) * rng.uniform(0.3, 2.0, DIM) + rng.normal(0, 0.3, DIM)).astype(np.float32)


@pytest.fixture
def built(tmp_path: Path, x: np.ndarray) -> tuple[Path, Path, q2key.Thresholds]:
    """(index file, queries file, thresholds): calibrate → index build through the command line."""
    np.save(tmp_path / "x.npy", x)
    rc, out, err = run("calibrate", tmp_path / "x.npy", "--method", "lloyd_max", "-o", tmp_path / "th.json", "-q")
    assert rc == 0, err
    assert "suits asymmetric scoring" in out and "reconstruction table" in out
    th = q2key.Thresholds.from_json((tmp_path / "th.json").read_text(encoding="utf-8"))
    rc, _, err = run(
        "index", "build", tmp_path / "x.npy", "-o", tmp_path / "i.q2", "--thresholds", tmp_path / "th.json"
    )
    assert rc == 0, err
    np.save(tmp_path / "q.npy", x[:25] + np.float32(0.1))
    return tmp_path / "i.q2", tmp_path / "q.npy", th


def test_calibrate_writes_the_fitted_table(tmp_path: Path, x: np.ndarray) -> None:
    np.save(tmp_path / "x.npy", x)
    for method in ("per_dim", "lloyd_max"):
        out = tmp_path / f"{method}.json"
        rc, text, err = run("calibrate", tmp_path / "x.npy", "--method", method, "-o", out, "-q")
        assert rc == 0, err
        th = q2key.Thresholds.from_json(out.read_text(encoding="utf-8"))
        # The file holds fewer rows than the sample size: the sample is every row, so the API's answer.
        want = q2key.calibrate(x, method=method)
        assert th == want and th.reconstruction is not None
        np.testing.assert_array_equal(th.reconstruction, want.reconstruction)
        assert f"wrote {out} (per_dim thresholds and their reconstruction table, dimension {DIM})" in text


def test_calibrate_then_encode_then_index_search_asymmetric(
    tmp_path: Path, x: np.ndarray, built: tuple[Path, Path, q2key.Thresholds]
) -> None:
    index_path, queries_path, th = built
    queries = np.load(queries_path)
    rc, _, err = run("encode", tmp_path / "x.npy", "--codes", tmp_path / "c.npy", "--thresholds", tmp_path / "th.json")
    assert rc == 0, err
    codes = np.load(tmp_path / "c.npy")
    np.testing.assert_array_equal(codes, q2key.encode(x, threshold=th).codes)
    index = q2key.Index.load(index_path)
    assert index.thresholds == th
    np.testing.assert_array_equal(index.thresholds.reconstruction, th.reconstruction)

    want_d, want_rows = q2key.asymmetric_search(queries, codes, 7, threshold=th)
    for scoring in ("asymmetric", "auto"):  # auto: float queries are scored asymmetrically
        out = tmp_path / f"{scoring}.npz"
        rc, _, err = run("index", "search", index_path, queries_path, "-k", 7, "--scoring", scoring, "-o", out, "-q")
        assert rc == 0, err
        with np.load(out) as r:
            assert r["distances"].dtype == np.float32
            np.testing.assert_array_equal(r["ids"], want_rows.astype(np.uint64))  # default ids: the rows
            np.testing.assert_array_equal(r["distances"], want_d)
    rc, _, err = run("index", "search", index_path, queries_path, "-k", 7, "--scoring", "lee", "-o", tmp_path / "l.npz")
    assert rc == 0, err
    with np.load(tmp_path / "l.npz") as r:
        d, i = index.search(queries, 7, scoring="lee")
        assert r["distances"].dtype == np.uint32
        np.testing.assert_array_equal(r["ids"], i)
        np.testing.assert_array_equal(r["distances"], d)


def test_asymmetric_scoring_of_code_queries_is_a_one_line_error(
    tmp_path: Path, built: tuple[Path, Path, q2key.Thresholds]
) -> None:
    index_path, queries_path, th = built
    np.save(tmp_path / "qc.npy", q2key.encode(np.load(queries_path), threshold=th).codes)
    rc, _, err = run("index", "search", index_path, tmp_path / "qc.npy", "--scoring", "asymmetric")
    # The API's words, about the option that asked for it.
    with pytest.raises(q2key.Q2KeyError) as api:
        q2key.Index.load(index_path).search(np.load(tmp_path / "qc.npy"), 10, scoring="asymmetric")
    assert api.value.arg == "scoring"
    words = str(api.value).removeprefix("scoring: ")
    assert_one_line_error(rc, err, 1, f"--scoring asymmetric: {words}")
    # auto: codes are compared by Lee distance.
    rc, out, err = run("index", "search", index_path, tmp_path / "qc.npy", "-k", 2)
    assert rc == 0, err
    assert out.splitlines()[1].split("\t")[3].isdigit()


def test_unknown_scoring_is_a_usage_error(built: tuple[Path, Path, q2key.Thresholds]) -> None:
    index_path, queries_path, _ = built
    rc, _, err = run("index", "search", index_path, queries_path, "--scoring", "cosine")
    assert_one_line_error(rc, err, 2, "--scoring", "invalid choice: 'cosine'", "'auto', 'asymmetric', 'lee'")


def test_scoring_choices_are_the_apis() -> None:
    assert SCORINGS == _index._SCORINGS


def test_scoring_help_says_what_each_choice_does(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["index", "search", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--scoring {auto,asymmetric,lee}" in text and "(default: auto)" in text
    assert "1 − cosine" in text and "Lee distance between codes" in text
    assert main(["calibrate", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "lloyd_max: per-dimension cuts and values with the least reconstruction error" in text


@pytest.mark.parametrize(("scoring", "dtype"), [("auto", np.float32), ("asymmetric", np.float32), ("lee", np.uint32)])
def test_no_queries_give_the_distances_dtype_of_the_scoring(
    tmp_path: Path, built: tuple[Path, Path, q2key.Thresholds], scoring: str, dtype: type
) -> None:
    index_path, _, _ = built
    np.save(tmp_path / "none.npy", np.zeros((0, DIM), np.float32))
    rc, _, err = run(
        "index", "search", index_path, tmp_path / "none.npy", "--scoring", scoring, "-o", tmp_path / "r.npz"
    )
    assert rc == 0, err
    with np.load(tmp_path / "r.npz") as r:
        assert r["distances"].dtype == dtype and r["distances"].shape == (0, 10) and r["ids"].shape == (0, 10)


def test_index_info_says_whether_the_table_is_fitted(tmp_path: Path, x: np.ndarray, built: Any) -> None:
    index_path = built[0]
    rc, out, _ = run("index", "info", index_path)
    assert rc == 0 and "table       fitted reconstruction" in out
    assert json.loads(run("index", "info", index_path, "--json")[1])["reconstruction"] == "fitted"
    np.save(tmp_path / "x.npy", x)
    assert run("index", "build", tmp_path / "x.npy", "-o", tmp_path / "g.q2", "-q")[0] == 0
    rc, out, _ = run("index", "info", tmp_path / "g.q2")
    assert rc == 0 and "table       gaussian default reconstruction" in out
