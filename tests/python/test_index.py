"""q2key.Index from Python: ids, search (filters, rescoring, complement), range search, windows, threads."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import q2key

DATA = Path(__file__).parents[2] / "data"


def brute(index_codes: dict[int, np.ndarray], q: np.ndarray, k: int) -> list[tuple[int, int]]:
    """(distance, id) of the k nearest stored codes, ties to the lower id."""
    ids = np.array(sorted(index_codes))
    if len(ids) == 0:
        return []
    d = q2key.lee(np.stack([index_codes[int(i)] for i in ids]), q)
    order = np.lexsort((ids, d))[:k]
    return [(int(d[i]), int(ids[i])) for i in order]


def test_search_matches_brute_force_with_user_ids_and_removals(rng: np.random.Generator) -> None:
    x = rng.normal(size=(600, 48)).astype(np.float32)
    ids = rng.permutation(10_000)[:600].astype(np.uint64)
    index = q2key.Index(48)
    assert index.add(x, ids).tolist() == ids.tolist()
    codes = q2key.encode(x).codes
    stored = {int(i): c for i, c in zip(ids, codes)}
    gone = ids[rng.random(600) < 0.1]
    assert index.remove(gone) == len(gone)
    for g in gone:
        del stored[int(g)]
    q = rng.normal(size=(6, 48)).astype(np.float32)
    qc = q2key.encode(q).codes
    for k in (1, 10, 1000):
        dist, found = index.search(q, k, scoring="lee")
        assert dist.dtype == np.uint32 and found.dtype == np.uint64
        assert found.shape == (6, min(k, len(stored)))
        for row in range(6):
            assert list(zip(dist[row].tolist(), found[row].tolist())) == brute(stored, qc[row], k)
    # Codes as queries give the same answer as the floats they came from.
    assert np.array_equal(index.search(qc, 10)[1], index.search(q, 10, scoring="lee")[1])


def test_filters_restrict_results_and_never_pad(rng: np.random.Generator) -> None:
    x = rng.normal(size=(300, 32))
    index = q2key.Index(32)
    index.add(x)
    allowed = np.array([3, 10, 299, 5000])
    _, found = index.search(x[:4], k=10, filter=allowed)
    assert found.shape == (4, 3) and set(found.ravel().tolist()) <= {3, 10, 299}
    mask = np.zeros(300, dtype=bool)
    mask[::7] = True
    _, found = index.search(x[:2], k=5, filter=mask)
    assert found.shape == (2, 5) and (found % 7 == 0).all()
    _, none = index.search(x[:2], k=5, filter=np.array([], dtype=np.int64))
    assert none.shape == (2, 0)


def test_rescoring_reranks_by_exact_cosine(rng: np.random.Generator) -> None:
    x = rng.normal(size=(2000, 64)).astype(np.float32)
    index = q2key.Index(64)
    index.add(x)
    q = x[:20] + 0.3 * rng.normal(size=(20, 64)).astype(np.float32)
    dist, found = index.search(q, k=10, rescore=x, oversample=8)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    qu = q / np.linalg.norm(q, axis=1, keepdims=True)
    cos = qu @ unit.T
    assert dist.dtype == np.float64
    assert np.allclose(dist, 1 - np.take_along_axis(cos, found.astype(np.intp), axis=1), atol=1e-6)
    assert (np.diff(dist, axis=1) >= 0).all()
    assert (found[:, 0] == np.arange(20)).all()
    # A callable from ids to vectors gives the same.
    same = index.search(q, k=10, rescore=lambda ids: x[ids.astype(np.intp)], oversample=8)
    assert np.array_equal(same[1], found)
    with pytest.raises(q2key.Q2KeyError, match="float queries"):
        index.search(q2key.encode(q).codes, k=3, rescore=x)


@pytest.mark.slow
def test_rescored_search_on_real_embeddings_reaches_high_recall() -> None:
    d = np.load(DATA / "wordnet-minilm-dev.npz")
    db, queries, gt = d["database"].astype(np.float32), d["queries"][:300].astype(np.float32), d["gt_ids"][:300]
    index = q2key.Index(384, threshold=q2key.calibrate(db, method="fidelity"))
    index.add(db)
    _, found = index.search(queries, k=10, rescore=db, oversample=10)
    recall = np.mean([len(np.intersect1d(f, g[:10])) / 10 for f, g in zip(found, gt)])
    assert recall >= 0.97


def test_complement_search_on_the_antonym_pairs() -> None:
    """The design predicts complemented queries (θ on every symbol) land near antonyms. Measured on the
    208 WordNet antonym pairs of the bundled MiniLM embeddings, it does not: sentence embeddings put an
    antonym close to its word (plain search finds it in the top 100 for 84 % of pairs), so the complement
    — which maps every Lee distance d to 2n − d — puts it among the farthest rows.
    """
    d = np.load(DATA / "wordnet-minilm-dev.npz")
    db = d["database"].astype(np.float32)
    pairs = np.array(json.loads((DATA / "wordnet-minilm-dev.antonyms.json").read_text()))
    index = q2key.Index(384)
    index.add(db)
    hits = {}
    for complement in (False, True):
        _, found = index.search(db[pairs[:, 0]], k=100, complement=complement)
        hits[complement] = np.mean([b in row for b, row in zip(pairs[:, 1], found)])
    assert hits[False] > 0.8
    assert hits[True] < 0.01
    codes = q2key.encode(db[pairs[:, 0]]).codes
    other = q2key.encode(db[pairs[:, 1]]).codes
    assert np.array_equal(
        q2key.lee(codes, other) + q2key.lee(q2key.complement(codes, 384), other), np.full(len(pairs), 768)
    )


def test_range_search_layout_and_windows(rng: np.random.Generator) -> None:
    x = rng.normal(size=(500, 40))
    index = q2key.Index(40, threshold=0.1)
    index.add(x, np.arange(500, 0, -1))  # decreasing ids
    lims, dist, ids = index.range_search(x[:3], 30)
    assert lims.dtype == np.int64 and lims.shape == (4,) and lims[0] == 0
    codes = q2key.encode(x, threshold=0.1).codes
    all_ids = np.arange(500, 0, -1)
    for qi in range(3):
        d = q2key.lee(codes, codes[qi])
        want = sorted((int(dd), int(i)) for dd, i in zip(d, all_ids) if dd <= 30)
        got = list(zip(dist[lims[qi] : lims[qi + 1]].tolist(), ids[lims[qi] : lims[qi + 1]].tolist()))
        assert got == want
    keys = q2key.encode(x, threshold=0.1).keys
    k0 = int(keys[0])
    win = index.window(k0, 1 << 50)
    inside = [(int(k), int(i)) for k, i in zip(keys, all_ids) if abs(int(k) - k0) <= 1 << 50]
    assert win.tolist() == [i for _, i in sorted(inside)]
    assert int(all_ids[0]) in index.prefix(k0, 32).tolist()
    with pytest.raises(q2key.Q2KeyError, match="depth"):
        index.prefix(k0, 33)


def test_batches_are_all_or_nothing() -> None:
    index = q2key.Index(8)
    index.add(np.ones((3, 8)))
    bad = np.ones((4, 8))
    bad[2, 5] = np.nan
    with pytest.raises(q2key.NonFiniteError, match="row 2"):
        index.add(bad)
    with pytest.raises(q2key.Q2KeyError, match="already in the index"):
        index.add(np.ones((2, 8)), ids=[7, 1])
    with pytest.raises(q2key.Q2KeyError, match="twice"):
        index.add(np.ones((2, 8)), ids=[9, 9])
    with pytest.raises(q2key.ShapeError, match="dimension 8"):
        index.add(np.ones((2, 9)))
    with pytest.raises(q2key.ShapeError, match="2 bytes"):
        index.add_codes(np.zeros((1, 3), dtype=np.uint8))
    with pytest.raises(q2key.Q2KeyError, match="unsigned"):
        index.add(np.ones((1, 8)), ids=[-1])
    assert len(index) == 3 and index.stats().alive == 3
    assert index.add(np.ones((1, 8))).tolist() == [3]


def test_removal_compacts_and_arrays_are_read_only(rng: np.random.Generator) -> None:
    index = q2key.Index(16)
    index.add(rng.normal(size=(100, 16)))
    assert index.remove(np.arange(10)) == 10 and index.stats().dead == 10
    assert index.remove(np.arange(10, 40)) == 30 and index.stats().dead == 0  # > 25 % dead: compacted
    assert index.remove([12345]) == 0
    codes, keys, ids = index.arrays()
    assert ids.tolist() == list(range(40, 100)) and codes.shape == (60, 4) and keys.shape == (60,)
    with pytest.raises(ValueError):
        codes[0, 0] = 1
    assert np.array_equal(index.codes([41, 40]), codes[[1, 0]])
    with pytest.raises(q2key.Q2KeyError, match="id 3"):
        index.codes([3])
    assert 40 in index and 3 not in index and "x" not in index


def test_weighted_index_returns_float_distances(rng: np.random.Generator) -> None:
    x = rng.normal(size=(200, 20))
    w = (1.0, 2.0, 0.5)
    index = q2key.Index(20, weights=w)
    index.add(x)
    dist, found = index.search(x[:3], k=4)
    codes = q2key.encode(x).codes
    assert dist.dtype == np.float64
    for row in range(3):
        d = q2key.weighted_lee(codes, codes[row], weights=w)
        order = np.lexsort((np.arange(200), d))[:4]
        assert found[row].tolist() == order.tolist() and np.allclose(dist[row], d[order])


def test_concurrent_searches_and_writes_stay_consistent(rng: np.random.Generator) -> None:
    """8 threads search while 2 add and remove: every result is one a serial run could give."""
    dim = 64
    base = rng.normal(size=(3000, dim)).astype(np.float32)
    index = q2key.Index(dim)
    index.add(base)  # ids 0..2999 never removed
    queries = base[:16]
    expected = index.search(queries, 5, scoring="lee")
    stop = time.monotonic() + 3.0
    errors: list[BaseException] = []
    counts = [0, 0]

    def searcher() -> None:
        try:
            while time.monotonic() < stop:
                # Added rows are far (random) and removed before long; the stored queries' own rows
                # are never removed, so the nearest neighbour of each query is itself.
                dist, found = index.search(queries, 5, scoring="lee")
                assert (found[:, 0] == np.arange(16)).all() and (dist[:, 0] == 0).all()
                counts[0] += 1
        except BaseException as e:
            errors.append(e)

    def writer(seed: int) -> None:
        try:
            local = np.random.default_rng(seed)
            while time.monotonic() < stop:
                ids = index.add(local.normal(size=(50, dim)).astype(np.float32))
                index.remove(ids[local.random(50) < 0.8])
                counts[1] += 1
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=searcher) for _ in range(8)]
    threads += [threading.Thread(target=writer, args=(s,)) for s in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads), "deadlock"
    assert not errors, errors[0]
    assert counts[0] > 8 and counts[1] > 2
    assert np.array_equal(index.search(queries, 1)[1][:, 0], expected[1][:, 0])


def test_thresholds_travel_with_the_index(rng: np.random.Generator) -> None:
    x = rng.normal(size=(500, 24)) + 1.0
    th = q2key.calibrate(x, method="per_dim")
    index = q2key.Index(24, threshold=th)
    index.add(x)
    assert index.thresholds == th
    assert np.array_equal(index.arrays()[0], q2key.encode(x, threshold=th).codes)
    assert q2key.Index(24, threshold=0.2).thresholds == q2key.Thresholds.global_(0.2, dim=24)
    with pytest.raises(q2key.ShapeError):
        q2key.Index(25, threshold=th)


def test_save_load_and_mmap_round_trip(tmp_path: Path, rng: np.random.Generator) -> None:
    x = rng.normal(size=(400, 36)) + 0.5
    th = q2key.calibrate(x, method="per_dim")
    index = q2key.Index(36, threshold=th, weights=(1.0, 1.5, 2.0))
    index.add(x, rng.permutation(5000)[:400])
    index.remove(index.arrays()[2][:30])
    path = tmp_path / "corpus.q2"
    index.save(path)
    q = rng.normal(size=(5, 36)) + 0.5
    want = index.search(q, 7)
    for mmap in (False, True):
        loaded = q2key.Index.load(path, mmap=mmap)
        assert loaded.mapped is mmap and len(loaded) == 370
        assert loaded.thresholds == th and loaded.weights == (1.0, 1.5, 2.0)
        got = loaded.search(q, 7)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
        for a, b in zip(loaded.arrays(), index.arrays()):
            assert np.array_equal(a, b)
        key = int(index.arrays()[1][0])
        assert np.array_equal(loaded.window(key, 1 << 40), index.window(key, 1 << 40))
    mapped = q2key.Index.load(path, mmap=True)
    for write in (lambda: mapped.add(x[:1]), lambda: mapped.remove([1]), mapped.compact):
        with pytest.raises(q2key.Q2KeyError, match="read-only"):
            write()
    # Saving over the file a mapped index reads from is safe: the map keeps the old contents.
    index.add(x[:5] * 2)
    index.save(path)
    assert len(mapped) == 370 and len(q2key.Index.load(path)) == 375
    mapped.save(tmp_path / "copy.q2")
    assert len(q2key.Index.load(tmp_path / "copy.q2")) == 370


def test_bad_files_raise_format_error_naming_the_path(tmp_path: Path) -> None:
    index = q2key.Index(16)
    index.add(np.random.default_rng(1).normal(size=(20, 16)))
    path = tmp_path / "small.q2"
    index.save(path)
    data = path.read_bytes()
    for name, content in [("empty", b""), ("foreign", b"PK\x03\x04" + data[4:]), ("cut", data[:-7])]:
        bad = tmp_path / name
        bad.write_bytes(content)
        with pytest.raises(q2key.FormatError, match=name):
            q2key.Index.load(bad)
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x10
    (tmp_path / "flip").write_bytes(bytes(flipped))
    with pytest.raises(q2key.FormatError):
        q2key.Index.load(tmp_path / "flip", mmap=True)
    assert issubclass(q2key.FormatError, ValueError)
    with pytest.raises(FileNotFoundError):
        q2key.Index.load(tmp_path / "missing.q2")
    with pytest.raises(OSError):
        index.save(tmp_path / "no-such-dir" / "x.q2")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut", "empty", "flip", "foreign", "small.q2"]


def test_truncated_bytes_are_a_format_error(rng: np.random.Generator) -> None:
    # Pickling (which goes through these bytes) is tested in test_pickling.py.
    index = q2key.Index(20, threshold=0.05)
    index.add(rng.normal(size=(50, 20)), np.arange(100, 150))
    with pytest.raises(q2key.FormatError):
        q2key.Index.from_bytes(index.to_bytes()[:-1])


def test_views_are_zero_copy_read_only_and_block_writes_while_alive(tmp_path: Path) -> None:
    import gc

    index = q2key.Index(16)
    index.add(np.random.default_rng(2).normal(size=(50, 16)))
    index.remove([0])
    codes, keys, ids = index.views()  # compacts first
    assert ids.tolist() == list(range(1, 50)) and codes.shape == (49, 4)
    again = index.views()[0]
    assert np.shares_memory(codes, again)  # both look at the index's own memory
    assert np.array_equal(codes, index.arrays()[0]) and not np.shares_memory(codes, index.arrays()[0])
    with pytest.raises(ValueError):
        codes[0, 0] = 0
    with pytest.raises(BufferError, match="view"):
        index.add(np.ones((1, 16)))
    with pytest.raises(BufferError):
        index.remove([3])
    index.save(tmp_path / "ok.q2")  # saving a compact index moves nothing: allowed
    assert len(index.search(np.ones((1, 16)), 3)[1][0]) == 3  # reading is fine
    del codes, keys, ids, again
    gc.collect()
    assert index.add(np.ones((1, 16))).tolist() == [50]
    mapped = q2key.Index.load(tmp_path / "ok.q2", mmap=True)
    view = mapped.views()[0]
    del mapped  # the view keeps the index (and its file map) alive
    gc.collect()
    assert view.shape == (49, 4) and int(view.sum()) > 0


def test_ids_above_two_to_the_63_from_a_plain_list() -> None:
    index = q2key.Index(8)
    big = 2**64 - 1
    assert index.add(np.ones((2, 8)), ids=[1, big]).tolist() == [1, big]
    assert big in index and index.remove([big]) == 1
    with pytest.raises(q2key.Q2KeyError, match="unsigned"):
        index.add(np.ones((2, 8)), ids=[-1, 2**63])
    with pytest.raises(TypeError):
        index.add(np.ones((1, 8)), ids=[1.5])


def test_search_results_are_named_tuples_with_documented_dtypes(rng: np.random.Generator) -> None:
    x = rng.normal(size=(40, 16)).astype(np.float32)
    index = q2key.Index(16)
    index.add(x, ids=np.arange(100, 140, dtype=np.uint64))
    plain = index.search(x[:2], k=3, scoring="lee")
    assert isinstance(plain, q2key.SearchResult)
    assert plain.distances.dtype == np.uint32 and plain.ids.dtype == np.uint64
    assert plain.ids[:, 0].tolist() == [100, 101]
    asymmetric = index.search(x[:2], k=3)  # float queries: asymmetric by default
    assert asymmetric.distances.dtype == np.float32 and asymmetric.ids.dtype == np.uint64
    assert asymmetric.ids[:, 0].tolist() == [100, 101]
    rescored = index.search(x[:2], k=3, rescore=lambda ids: x[(ids - 100).astype(np.intp)])
    assert isinstance(rescored, q2key.SearchResult) and rescored.distances.dtype == np.float64
    assert rescored.ids[:, 0].tolist() == [100, 101]
    weighted = q2key.Index(16, weights=(1.0, 1.0, 2.0))
    weighted.add(x)
    assert weighted.search(x[:1], k=2).distances.dtype == np.float64
    hits = index.range_search(x[:2], radius=0)
    assert isinstance(hits, q2key.RangeSearchResult) and hits._fields == ("lims", "distances", "ids")
    lims, dist, ids = hits  # faiss's order, unpacked as before
    assert lims is hits.lims and dist is hits.distances and ids is hits.ids
    assert hits.lims.dtype == np.int64 and hits.lims.tolist()[0] == 0
    assert hits.distances.dtype == np.uint32 and hits.ids.dtype == np.uint64
    assert 100 in hits.ids[hits.lims[0] : hits.lims[1]].tolist()
