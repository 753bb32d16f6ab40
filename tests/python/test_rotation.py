"""Thresholds carrying an orthogonal rotation (issue 12): ``calibrate(rotation=...)``, ``Thresholds.rotation``.

Rows are quantised as ``(x / ‖x‖) @ R``, float queries rotated alike, ``decode`` rotates back. Exact
laws use signed permutation matrices (orthogonal, and ``x @ P`` is exact in floating point); Haar
rotations are compared outside a band of float rounding around the cuts.
"""

from __future__ import annotations

import base64
import io
import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import q2key
from hypothesis import given, settings
from hypothesis import strategies as st
from q2key.cli import main

#: Rounding of the core's float32 rotation, well above it: coordinates this close to a cut may fall either side.
CUT_BAND = 1e-5


def haar(n: int, seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def signed_permutation(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    p = np.zeros((n, n))
    p[np.arange(n), rng.permutation(n)] = rng.choice([-1.0, 1.0], size=n)
    return p


def unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def data(rows: int, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(rows, n)) * rng.uniform(0.3, 2.0, n) + rng.normal(0, 0.3, n)).astype(np.float32)


def thresholds(kind: str, n: int, seed: int, table: bool) -> q2key.Thresholds:
    """Unrotated thresholds of each kind, optionally with a fitted table."""
    if kind == "gaussian":
        th = q2key.Thresholds.gaussian(n)
    elif kind == "global":
        th = q2key.Thresholds.global_(0.6 / np.sqrt(n), dim=n)
    else:
        th = q2key.calibrate(data(300, n, seed), method="per_dim")
    return th.with_reconstruction(th.table() * np.float32(1.25)) if table else th


kinds = st.sampled_from(["gaussian", "global", "per_dim"])


# -- the law: a rotation is the rotated unit rows under the unrotated thresholds -----------------------------


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 70), rows=st.integers(1, 40), seed=st.integers(0, 2**16), kind=kinds)
def test_encode_with_a_signed_permutation_is_encode_of_the_permuted_unit_rows(
    n: int, rows: int, seed: int, kind: str
) -> None:
    x = data(rows, n, seed)
    p = signed_permutation(n, seed)
    th = thresholds(kind, n, seed, table=False)
    rotated = th.with_rotation(p)
    want = q2key.encode(unit(x) @ p, threshold=th)
    got = q2key.encode(x, threshold=rotated)
    np.testing.assert_array_equal(got.codes, want.codes)
    np.testing.assert_array_equal(got.keys, want.keys)
    np.testing.assert_array_equal(got.transitions, want.transitions)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(2, 70), rows=st.integers(1, 40), seed=st.integers(0, 2**16), kind=kinds)
def test_encode_with_a_rotation_is_encode_of_the_rotated_unit_rows(n: int, rows: int, seed: int, kind: str) -> None:
    x = data(rows, n, seed)
    r = haar(n, seed)
    th = thresholds(kind, n, seed, table=False)
    y = unit(x) @ r
    want = q2key.symbols(y, threshold=th)
    got = q2key.symbols(x, threshold=th.with_rotation(r))
    cuts = th.cuts
    assert cuts is not None
    near = (np.abs(y[:, :, None] - cuts.T[None, :, :]) < CUT_BAND).any(axis=2)
    np.testing.assert_array_equal(got[~near], want[~near])
    # Codes are the packed symbols: equal for every row with no coordinate near a cut.
    clear = ~near.any(axis=1)
    np.testing.assert_array_equal(
        q2key.encode(x[clear], threshold=th.with_rotation(r)).codes, q2key.encode(y[clear], threshold=th).codes
    )


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 70), seed=st.integers(0, 2**16), kind=kinds, table=st.booleans())
def test_decode_rotates_the_reconstruction_back(n: int, seed: int, kind: str, table: bool) -> None:
    th = thresholds(kind, n, seed, table)
    r = haar(n, seed)
    codes = q2key.encode(data(20, n, seed), threshold=th).codes
    plain = q2key.decode(codes, threshold=th).astype(np.float64)
    got = q2key.decode(codes, threshold=th.with_rotation(r))
    assert got.dtype == np.float32 and got.shape == plain.shape
    np.testing.assert_allclose(got, plain @ r.T, atol=1e-6)


# -- cosine invariance: rotated thresholds on the data = the same thresholds on the rotated data ------------


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("kind", ["gaussian", "per_dim"])
def test_search_results_equal_those_on_manually_rotated_data(kind: str, threads: int) -> None:
    n = 48
    x, queries = data(600, n, 1), data(30, n, 2)
    p = signed_permutation(n, 3)
    th = thresholds(kind, n, 4, table=True)
    rotated = th.with_rotation(p)
    codes = q2key.encode(x, threshold=rotated, threads=threads).codes
    np.testing.assert_array_equal(codes, q2key.encode(unit(x) @ p, threshold=th).codes)
    qp = (unit(queries) @ p).astype(np.float32)
    got = q2key.asymmetric_search(queries, codes, 10, threshold=rotated, threads=threads)
    want = q2key.asymmetric_search(qp, codes, 10, threshold=th)
    np.testing.assert_array_equal(got.ids, want.ids)
    np.testing.assert_allclose(got.distances, want.distances, atol=1e-6)
    _, lee = q2key.search(q2key.encode(queries, threshold=rotated).codes, codes, 40)
    got = q2key.rerank(queries, codes, lee, 5, threshold=rotated, threads=threads)
    want = q2key.rerank(qp, codes, lee, 5, threshold=th)
    np.testing.assert_array_equal(got.ids, want.ids)
    for scoring in ("asymmetric", "lee"):
        a, b = q2key.Index(n, threshold=rotated), q2key.Index(n, threshold=th)
        a.add(x, threads=threads)
        b.add(unit(x) @ p)
        got = a.search(queries, k=10, scoring=scoring, threads=threads)
        want = b.search(qp, k=10, scoring=scoring)
        np.testing.assert_array_equal(got.ids, want.ids)
        np.testing.assert_allclose(got.distances, want.distances, atol=1e-6)
        # Rescoring with the float vectors: exact cosine, which no rotation changes.
        got = a.search(queries, k=5, scoring=scoring, rescore=x, threads=threads)
        want = b.search(qp, k=5, scoring=scoring, rescore=(unit(x) @ p).astype(np.float32))
        np.testing.assert_array_equal(got.ids, want.ids)


def test_every_search_gives_the_same_answers_on_one_and_two_threads() -> None:
    n = 40
    x, queries = data(1_500, n, 5), data(40, n, 6)
    th = q2key.calibrate(x, method="lloyd_max", rotation="learned")
    results = []
    for threads in (1, 2):
        codes = q2key.encode(x, threshold=th, threads=threads).codes
        index = q2key.Index(n, threshold=th)
        index.add(x, threads=threads)
        _, lee = q2key.search(q2key.encode(queries, threshold=th).codes, codes, 30, threads=threads)
        results.append(
            [
                codes,
                *q2key.asymmetric_search(queries, codes, 7, threshold=th, threads=threads),
                *q2key.rerank(queries, codes, lee, 7, threshold=th, threads=threads),
                *index.search(queries, k=7, threads=threads),
                *index.search(queries, k=7, scoring="lee", threads=threads),
            ]
        )
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("method", ["equiprobable", "per_dim", "fidelity", "lloyd_max"])
@pytest.mark.parametrize("rotation", ["random", "learned"])
def test_calibrate_fits_the_same_rotation_on_one_and_two_threads(method: str, rotation: str) -> None:
    x = data(400, 24, 7)
    a = q2key.calibrate(x, method=method, rotation=rotation, threads=1)  # type: ignore[arg-type]
    b = q2key.calibrate(x, method=method, rotation=rotation, threads=2)  # type: ignore[arg-type]
    assert a == b
    assert a.rotation is not None and b.rotation is not None
    np.testing.assert_array_equal(a.rotation, b.rotation)


# -- calibrate(rotation=...) ---------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["equiprobable", "per_dim", "fidelity", "lloyd_max"])
@pytest.mark.parametrize("rotation", ["random", "learned"])
def test_calibrate_with_a_rotation(method: str, rotation: str) -> None:
    x = data(800, 32, 8)
    th = q2key.calibrate(x, method=method, rotation=rotation, seed=3)  # type: ignore[arg-type]
    r = th.rotation
    assert r is not None and r.dtype == np.float32 and r.shape == (32, 32) and not r.flags.writeable
    np.testing.assert_allclose(r.astype(np.float64) @ r.T, np.eye(32), atol=1e-5)
    report = th.report
    assert report is not None and report.method == method and report.rotation == rotation
    assert (
        report.suits
        == {"equiprobable": None, "per_dim": "asymmetric", "fidelity": "lee", "lloyd_max": "asymmetric"}[method]
    )
    errors = report.rotation_errors
    assert len(errors) == (1 if rotation == "random" else q2key._calibrate.LEARNED_ROTATION_ROUNDS + 1)
    assert all(b <= a for a, b in zip(errors, errors[1:])), errors
    # The report's error is the input-space error of decode(encode(x)): a rotation keeps squared distances.
    decoded = q2key.decode(q2key.encode(x, threshold=th).codes, threshold=th).astype(np.float64)
    assert report.reconstruction_error == pytest.approx(np.mean(np.square(unit(x) - decoded)), rel=1e-4)
    # Frequencies are those of the rotated coordinates the codes hold.
    symbols = q2key.symbols(x, threshold=th)
    np.testing.assert_allclose(report.frequencies, np.bincount(symbols.ravel(), minlength=4) / symbols.size)
    # Deterministic for a seed; another seed, another rotation.
    assert th == q2key.calibrate(x, method=method, rotation=rotation, seed=3)  # type: ignore[arg-type]
    other = q2key.calibrate(x, method=method, rotation=rotation, seed=4)  # type: ignore[arg-type]
    assert other.rotation is not None and not np.array_equal(other.rotation, r)
    text = str(report)
    assert f"{rotation} rotation" in text and "Lloyd–Max reconstruction error" in text


def test_lloyd_max_with_a_learned_rotation_is_the_recommended_asymmetric_calibration() -> None:
    x = data(1_000, 32, 9)
    plain = q2key.calibrate(x, method="lloyd_max")
    learned = q2key.calibrate(x, method="lloyd_max", rotation="learned")
    assert plain.report is not None and learned.report is not None
    assert "best for asymmetric scoring (float queries against the codes' reconstruction): method 'lloyd_max', " in (
        str(plain.report)
    )
    assert "rotation 'learned'" in str(plain.report) and "best for asymmetric" not in str(learned.report)
    assert learned.report.reconstruction_error is not None and plain.report.reconstruction_error is not None
    # Learned from a random start, it ends below the random rotation's error (its first value).
    assert learned.report.reconstruction_error < learned.report.rotation_errors[0]


def test_calibrate_without_rotation_is_unchanged() -> None:
    x = data(300, 16, 10)
    th = q2key.calibrate(x, method="per_dim", rotation=None)
    assert th.rotation is None and th.report is not None and th.report.rotation is None
    assert th.report.rotation_errors == () and "rotation" not in str(th.report).split("\n")[0]
    assert th == q2key.calibrate(x, method="per_dim")


def test_seeds_beyond_64_bits_and_none_are_accepted() -> None:
    x = data(200, 12, 11)
    big = q2key.calibrate(x, method="per_dim", rotation="random", seed=2**80)
    assert big == q2key.calibrate(x, method="per_dim", rotation="random", seed=2**80)
    assert q2key.calibrate(x, method="per_dim", rotation="random", seed=None).rotation is not None


def test_calibrator_and_drift_with_a_rotation() -> None:
    rng = np.random.default_rng(12)
    cal = q2key.Calibrator(24, reservoir=500, seed=1)
    cal.update(data(2_000, 24, 12))
    th = cal.thresholds(method="lloyd_max", rotation="learned")
    assert th.rotation is not None and th == q2key.calibrate(cal.sample, method="lloyd_max", rotation="learned", seed=1)
    assert cal.drift(data(2_000, 24, 12)).score < 0.05
    assert cal.drift(rng.normal(size=(2_000, 24)) + 3.0).score > 0.2


# -- serialisation -------------------------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 40), seed=st.integers(0, 2**16), kind=kinds, table=st.booleans())
def test_json_bytes_and_pickle_round_trips_keep_the_rotation_exactly(n: int, seed: int, kind: str, table: bool) -> None:
    th = thresholds(kind, n, seed, table).with_rotation(haar(n, seed).astype(np.float32))
    for back in (
        q2key.Thresholds.from_json(th.to_json()),
        q2key.Thresholds.from_bytes(th.to_bytes()),
        pickle.loads(pickle.dumps(th)),
    ):
        assert back == th and hash(back) == hash(th)
        assert back.rotation is not None and th.rotation is not None
        np.testing.assert_array_equal(back.rotation, th.rotation)
        np.testing.assert_array_equal(back.table(), th.table())
    assert th != th.with_rotation(None) and th.with_rotation(None).rotation is None


def test_the_json_form_is_compact_and_versioned() -> None:
    n = 384
    th = q2key.Thresholds.gaussian(n).with_rotation(haar(n, 0))
    doc = json.loads(th.to_json())
    assert doc["version"] == 2 and doc["rotation"]["dim"] == n
    raw = base64.b64decode(doc["rotation"]["float32_le_base64"])
    np.testing.assert_array_equal(np.frombuffer(raw, "<f4").reshape(n, n), th.rotation)
    assert len(th.to_json()) < 1.4 * 4 * n * n  # base64 of the float32 bytes, not a list of decimals
    # Without a rotation the document stays version 1, which every earlier q2key reads.
    assert json.loads(q2key.Thresholds.gaussian(n).to_json())["version"] == 1


def test_old_json_and_bytes_still_load_without_a_rotation() -> None:
    old_json = '{"format": "q2key.thresholds", "version": 1, "kind": "global", "dim": null, "tau": 0.25}'
    assert q2key.Thresholds.from_json(old_json).rotation is None
    old_bytes = q2key.Thresholds.per_dim(np.array([[-0.1, -0.2], [0.0, 0.0], [0.1, 0.2]])).to_bytes()
    assert q2key.Thresholds.from_bytes(old_bytes).rotation is None


def _json_with(th: q2key.Thresholds, **changes: Any) -> str:
    doc = json.loads(th.to_json())
    doc.update(changes)
    return json.dumps(doc)


ROTATED = q2key.Thresholds.gaussian(4).with_rotation(signed_permutation(4, 0))
_GOOD_ROTATION = json.loads(ROTATED.to_json())["rotation"]


@pytest.mark.parametrize(
    ("text", "error", "words"),
    [
        (_json_with(ROTATED, version=1), q2key.Q2KeyError, "a rotation needs version 2"),
        (_json_with(ROTATED, rotation=None), q2key.Q2KeyError, "expected"),
        (_json_with(ROTATED, rotation=[[1, 0], [0, 1]]), q2key.Q2KeyError, "expected"),
        (_json_with(ROTATED, rotation={**_GOOD_ROTATION, "dim": 0}), q2key.Q2KeyError, "positive integer"),
        (_json_with(ROTATED, rotation={**_GOOD_ROTATION, "dim": True}), q2key.Q2KeyError, "positive integer"),
        (_json_with(ROTATED, rotation={**_GOOD_ROTATION, "dim": 3}), q2key.Q2KeyError, "not the 36"),
        (
            _json_with(ROTATED, rotation={**_GOOD_ROTATION, "float32_le_base64": "!!"}),
            q2key.Q2KeyError,
            "not valid base64",
        ),
        (
            _json_with(
                ROTATED, rotation={"dim": 4, "float32_le_base64": base64.b64encode(np.full(16, np.nan, "<f4")).decode()}
            ),
            q2key.NonFiniteError,
            "rotation: row 0",
        ),
        (
            _json_with(
                ROTATED, rotation={"dim": 4, "float32_le_base64": base64.b64encode(np.ones(16, "<f4")).decode()}
            ),
            q2key.Q2KeyError,
            "orthogonal",
        ),
        (
            _json_with(
                ROTATED, rotation={"dim": 2, "float32_le_base64": base64.b64encode(np.eye(2, dtype="<f4")).decode()}
            ),
            q2key.ShapeError,
            "rotation: expected a (4, 4) matrix",
        ),
    ],
    ids=["version 1", "null", "list", "dim 0", "dim true", "short", "base64", "nan", "not orthogonal", "wrong dim"],
)
def test_a_bad_rotation_in_json_is_a_clear_error(text: str, error: type[Exception], words: str) -> None:
    with pytest.raises(error) as info:
        q2key.Thresholds.from_json(text)
    assert str(info.value).startswith("text: ") and words in str(info.value), str(info.value)
    assert getattr(info.value, "arg", None) == "text"


def test_a_bad_rotation_in_bytes_is_a_clear_error() -> None:
    import struct
    import zlib

    good = ROTATED.to_bytes()
    body = bytearray(good[:-4])
    body[-64:] = np.ones(16, "<f4").tobytes()  # the rotation is the last 64 bytes: no longer orthogonal
    with pytest.raises(q2key.Q2KeyError, match=r"^data: rotation: must be orthogonal") as info:
        q2key.Thresholds.from_bytes(bytes(body) + struct.pack("<I", zlib.crc32(body)))
    assert info.value.arg == "data"
    # A reader that predates rotations refuses the flag instead of ignoring it: so does this one for unknown flags.
    body = bytearray(good[:-4])
    body[6] |= 4
    with pytest.raises(q2key.Q2KeyError, match="unknown flags"):
        q2key.Thresholds.from_bytes(bytes(body) + struct.pack("<I", zlib.crc32(body)))
    with pytest.raises(q2key.Q2KeyError, match="and a rotation"):
        q2key.Thresholds.from_bytes(good[:-8] + good[-4:])


def test_repr_mentions_the_rotation() -> None:
    assert repr(ROTATED).startswith("Thresholds.gaussian(dim=4).with_rotation(<rotation>)")
    per_dim = q2key.calibrate(data(100, 8, 0), method="per_dim", rotation="random")
    assert repr(per_dim).endswith("fitted reconstruction table, rotation>")


# -- the command line ------------------------------------------------------------------------------------------


def _run(*argv: Any) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    rc = main([str(a) for a in argv], stdout=out, stderr=err)
    return rc, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("rotation", ["random", "learned"])
def test_cli_calibrate_writes_the_rotation(tmp_path: Path, rotation: str) -> None:
    x = data(500, 32, 13)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "th.json"
    rc, text, err = _run(
        "calibrate", tmp_path / "x.npy", "--method", "lloyd_max", "--rotation", rotation, "-o", out, "-q"
    )
    assert rc == 0, err
    th = q2key.Thresholds.from_json(out.read_text(encoding="utf-8"))
    # The file holds fewer rows than the sample size: the sample is every row, so the API's answer.
    want = q2key.calibrate(x, method="lloyd_max", rotation=rotation)  # type: ignore[arg-type]
    assert th == want and th.rotation is not None
    assert f"{rotation} rotation" in text and "suits asymmetric scoring" in text
    assert f"(per_dim thresholds, their reconstruction table and a {rotation} rotation, dimension 32)" in text
    rc, _, err = _run("encode", tmp_path / "x.npy", "--codes", tmp_path / "c.npy", "--thresholds", out)
    assert rc == 0, err
    np.testing.assert_array_equal(np.load(tmp_path / "c.npy"), q2key.encode(x, threshold=want).codes)


def test_cli_calibrate_refuses_an_unknown_rotation(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", data(50, 8, 0))
    rc, _, err = _run("calibrate", tmp_path / "x.npy", "--rotation", "itq", "-o", tmp_path / "th.json")
    assert rc == 2 and "--rotation" in err and "invalid choice" in err
    assert not (tmp_path / "th.json").exists()


# -- indexes: persistence keeps the rotation ----------------------------------------------------------------


def _rotated_index(n: int, seed: int, scoring_rows: int = 300) -> tuple[q2key.Index, np.ndarray]:
    x = data(scoring_rows, n, seed)
    th = thresholds("per_dim", n, seed, table=True).with_rotation(haar(n, seed))
    index = q2key.Index(n, threshold=th)
    index.add(x, ids=np.arange(1000, 1000 + len(x)))
    index.remove([1003])
    return index, x


def _same_answers(a: q2key.Index, b: q2key.Index, queries: np.ndarray) -> None:
    assert a.thresholds == b.thresholds
    assert a.thresholds.rotation is not None and b.thresholds.rotation is not None
    np.testing.assert_array_equal(a.thresholds.rotation, b.thresholds.rotation)
    for scoring in ("asymmetric", "lee"):
        got, want = a.search(queries, k=8, scoring=scoring), b.search(queries, k=8, scoring=scoring)
        np.testing.assert_array_equal(got.ids, want.ids)
        np.testing.assert_array_equal(got.distances, want.distances)


@settings(max_examples=10, deadline=None)
@given(n=st.integers(1, 40), seed=st.integers(0, 2**16))
def test_index_bytes_and_pickle_round_trips_keep_the_rotation(n: int, seed: int) -> None:
    index, x = _rotated_index(n, seed)
    queries = x[:6] + np.float32(0.05)
    _same_answers(q2key.Index.from_bytes(index.to_bytes()), index, queries)
    _same_answers(pickle.loads(pickle.dumps(index)), index, queries)


@pytest.mark.parametrize("mmap", [False, True])
def test_index_file_round_trip_keeps_the_rotation(tmp_path: Path, mmap: bool) -> None:
    index, x = _rotated_index(48, 1)
    index.save(tmp_path / "r.q2")
    loaded = q2key.Index.load(tmp_path / "r.q2", mmap=mmap)
    queries = x[:10] + np.float32(0.05)
    _same_answers(loaded, index, queries)
    got = loaded.search(queries, k=5, rescore=np.vstack([np.zeros((1000, 48), np.float32), x]))
    want = index.search(queries, k=5, rescore=np.vstack([np.zeros((1000, 48), np.float32), x]))
    np.testing.assert_array_equal(got.ids, want.ids)
    # Adding to a loaded index (read, not mapped: a mapped one is read-only) encodes with the same rotation.
    more = data(20, 48, 2)
    loaded = q2key.Index.load(tmp_path / "r.q2")
    loaded.add(more, ids=np.arange(5000, 5020))
    np.testing.assert_array_equal(
        loaded.codes(np.arange(5000, 5020)), q2key.encode(more, threshold=index.thresholds).codes
    )


def test_cli_index_build_and_search_with_a_rotation(tmp_path: Path) -> None:
    x = data(500, 32, 14)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "q.npy", x[:7] + np.float32(0.05))
    th_path = tmp_path / "th.json"
    rc, _, err = _run(
        "calibrate", tmp_path / "x.npy", "--method", "lloyd_max", "--rotation", "learned", "-o", th_path, "-q"
    )
    assert rc == 0, err
    rc, _, err = _run("index", "build", tmp_path / "x.npy", "-o", tmp_path / "i.q2", "--thresholds", th_path, "-q")
    assert rc == 0, err
    th = q2key.Thresholds.from_json(th_path.read_text(encoding="utf-8"))
    index = q2key.Index.load(tmp_path / "i.q2")
    assert index.thresholds == th and index.thresholds.rotation is not None
    rc, _, err = _run("index", "search", tmp_path / "i.q2", tmp_path / "q.npy", "-k", "4", "-o", tmp_path / "r.npz")
    assert rc == 0, err
    with np.load(tmp_path / "r.npz") as got:
        want = index.search(np.load(tmp_path / "q.npy"), k=4)
        np.testing.assert_array_equal(got["ids"], want.ids)
    rc, out, err = _run("index", "info", tmp_path / "i.q2", "--json")
    assert rc == 0 and json.loads(out)["rotation"] is True, err
    rc, out, err = _run("index", "info", tmp_path / "i.q2")
    assert rc == 0 and "rotation    yes" in out, err
