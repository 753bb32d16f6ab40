"""q2key.stats against a plain-Python reference (lists and loops), edge cases and SPEC §5 null values."""

from __future__ import annotations

import doctest
import itertools
import math

import numpy as np
import numpy.typing as npt
import pytest
import q2key
from hypothesis import given, settings
from hypothesis import strategies as st
from q2key import _native, stats
from q2key.stats import KeyCollisions, Ragged

# ---- the reference: Python lists and loops only ----


def ref_theta(s: int) -> int:
    return (s + 2) % 4


def ref_reduce(seq: list[int]) -> list[int]:
    out: list[int] = []
    for s in seq:
        if not out or out[-1] != s:
            out.append(s)
    return out


def ref_share(hits: int, den: int) -> float:
    return math.nan if den == 0 else hits / den


def ref_density(seq: list[int]) -> float:
    return ref_share(len(ref_reduce(seq)), len(seq))


def ref_complement_bigram(seq: list[int]) -> float:
    r = ref_reduce(seq)
    hits = 0
    for i in range(len(r) - 1):
        if r[i + 1] == ref_theta(r[i]):
            hits += 1
    return ref_share(hits, max(len(r) - 1, 0))


def ref_hairpin(seq: list[int]) -> float:
    r = ref_reduce(seq)
    hits = 0
    for i in range(len(r) - 2):
        if r[i + 1] == ref_theta(r[i]) and r[i + 2] == r[i]:
            hits += 1
    return ref_share(hits, max(len(r) - 2, 0))


def ref_bigrams(seq: list[int]) -> list[list[int]]:
    r = ref_reduce(seq)
    t = [[0] * 4 for _ in range(4)]
    for i in range(len(r) - 1):
        t[r[i]][r[i + 1]] += 1
    return t


def ref_triplets(seq: list[int]) -> list[list[list[int]]]:
    r = ref_reduce(seq)
    t = [[[0] * 4 for _ in range(4)] for _ in range(4)]
    for i in range(len(r) - 2):
        t[r[i]][r[i + 1]][r[i + 2]] += 1
    return t


def ref_reverse_complement(seq: list[int]) -> list[int]:
    return [ref_theta(s) for s in reversed(seq)]


def ref_collisions(keys: list[int]) -> tuple[int, int, int]:
    groups: dict[int, int] = {}
    for k in keys:
        groups[k] = groups.get(k, 0) + 1
    pairs = 0
    for c in groups.values():
        pairs += c * (c - 1) // 2
    return len(keys), len(groups), pairs


def same(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all((math.isnan(x) and math.isnan(y)) or x == y for x, y in zip(a, b))


def add(a: list, b: list) -> list:  # type: ignore[type-arg]
    """Element-wise sum of nested lists."""
    return [add(x, y) if isinstance(x, list) else x + y for x, y in zip(a, b)]


def zeros_like(t: list) -> list:  # type: ignore[type-arg]
    return [zeros_like(x) if isinstance(x, list) else 0 for x in t]


def check_against_reference(batch: Ragged | npt.NDArray[np.integer], rows: list[list[int]]) -> None:
    """Every statistic of ``batch`` (an array or a Ragged holding ``rows``) against the reference."""
    reduced = stats.run_reduce_rows(batch)
    assert isinstance(reduced, Ragged)
    assert reduced.values.dtype == np.uint8 and reduced.offsets.dtype == np.int64
    assert reduced.to_list() == [ref_reduce(r) for r in rows]
    assert stats.transition_counts(batch).tolist() == [len(ref_reduce(r)) for r in rows]
    assert same(stats.transition_density(batch).tolist(), [ref_density(r) for r in rows])
    got = stats.complement_bigram_frequency(batch).tolist()
    assert same(got, [ref_complement_bigram(r) for r in rows])
    assert same(stats.hairpin_density(batch).tolist(), [ref_hairpin(r) for r in rows])
    bi = [ref_bigrams(r) for r in rows]
    tri = [ref_triplets(r) for r in rows]
    assert stats.bigram_counts(batch).tolist() == bi
    assert stats.triplet_counts(batch).tolist() == tri
    bi_total, tri_total = zeros_like(ref_bigrams([])), zeros_like(ref_triplets([]))
    for b, t in zip(bi, tri):
        bi_total, tri_total = add(bi_total, b), add(tri_total, t)
    assert stats.bigram_counts(batch, total=True).tolist() == bi_total
    assert stats.triplet_counts(batch, total=True).tolist() == tri_total
    rc = stats.reverse_complement(batch)
    rc_rows = rc.to_list() if isinstance(rc, Ragged) else rc.tolist()
    assert rc_rows == [ref_reverse_complement(r) for r in rows]


symbol = st.integers(0, 3)
# Rows with runs, so run-reduction has something to do.
runny_row = st.lists(st.tuples(symbol, st.integers(1, 4)), max_size=10).map(
    lambda runs: [s for s, n in runs for _ in range(n)]
)


@st.composite
def dense_rows(draw: st.DrawFn) -> list[list[int]]:
    n = draw(st.integers(1, 30))
    rows = draw(st.integers(0, 8))
    row = st.one_of(st.lists(symbol, min_size=n, max_size=n), runny_row.map(lambda r: ((r or [0]) * n)[:n]))
    return [draw(row) for _ in range(rows)]


@settings(max_examples=150, deadline=None)
@given(dense_rows(), st.sampled_from([np.uint8, np.int64, np.int8, np.uint16]))
def test_dense_rows_match_the_reference(rows: list[list[int]], dtype: type) -> None:
    if rows:
        a: npt.NDArray[np.integer] = np.array(rows, dtype=dtype)
        check_against_reference(a, rows)
        # The same rows as a Ragged batch give the same results.
        check_against_reference(Ragged.from_sequences(rows), rows)


@settings(max_examples=150, deadline=None)
@given(st.lists(runny_row, max_size=10))
def test_ragged_rows_match_the_reference(rows: list[list[int]]) -> None:
    check_against_reference(Ragged.from_sequences(rows), rows)


@settings(max_examples=100, deadline=None)
@given(st.lists(symbol, min_size=1, max_size=60))
def test_one_sequence_gives_scalars_and_single_tables(seq: list[int]) -> None:
    assert stats.transition_counts(seq).shape == ()
    assert int(stats.transition_counts(seq)) == len(ref_reduce(seq))
    assert same([float(stats.hairpin_density(seq))], [ref_hairpin(seq)])
    assert same([float(stats.complement_bigram_frequency(seq))], [ref_complement_bigram(seq)])
    assert stats.bigram_counts(seq).tolist() == ref_bigrams(seq)
    assert stats.triplet_counts(seq).tolist() == ref_triplets(seq)
    rc = stats.reverse_complement(np.array(seq, dtype=np.uint8))
    assert rc.shape == (len(seq),) and rc.tolist() == ref_reverse_complement(seq)
    assert stats.run_reduce_rows(seq).to_list() == [ref_reduce(seq)]


def test_run_reduce_is_a_deprecated_name_of_run_reduce_rows() -> None:
    # q2key.run_reduce reduces one sequence to an array; the batch form has its own name.
    batch = [[1, 1, 3, 3, 0], [2, 2, 2, 2, 2]]
    with pytest.warns(DeprecationWarning, match=r"use q2key\.stats\.run_reduce_rows"):
        old = stats.run_reduce(batch, threads=1)
    assert old.to_list() == stats.run_reduce_rows(batch).to_list() == [[1, 3, 0], [2]]
    assert "run_reduce" not in stats.__all__ and "run_reduce_rows" in stats.__all__


@settings(max_examples=100, deadline=None)
@given(st.lists(runny_row, max_size=8))
def test_laws(rows: list[list[int]]) -> None:
    batch = Ragged.from_sequences(rows)
    reduced = stats.run_reduce_rows(batch)
    # Reducing twice changes nothing; statistics of R equal those of the row.
    again = stats.run_reduce_rows(reduced)
    assert again.to_list() == reduced.to_list() and again.offsets.tolist() == reduced.offsets.tolist()
    assert same(stats.hairpin_density(reduced).tolist(), stats.hairpin_density(batch).tolist())
    assert np.array_equal(stats.triplet_counts(reduced), stats.triplet_counts(batch))
    # Reverse complement is an involution, keeps the offsets, and preserves complement pairs and hairpins.
    rc = stats.reverse_complement(batch)
    assert rc.offsets.tolist() == batch.offsets.tolist()
    assert stats.reverse_complement(rc).to_list() == rows
    assert same(stats.complement_bigram_frequency(rc).tolist(), stats.complement_bigram_frequency(batch).tolist())
    assert same(stats.hairpin_density(rc).tolist(), stats.hairpin_density(batch).tolist())
    # Only off-diagonal bigrams and the 36 admissible triplets occur.
    bt = stats.bigram_counts(batch, total=True)
    assert np.trace(bt) == 0
    tt = stats.triplet_counts(batch, total=True)
    for a, b, c in itertools.product(range(4), repeat=3):
        if a == b or b == c:
            assert tt[a, b, c] == 0
    assert int(bt.sum()) == sum(max(len(ref_reduce(r)) - 1, 0) for r in rows)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.one_of(st.integers(0, 5), st.integers(0, 2**64 - 1)), max_size=80),
)
def test_key_collisions_match_the_reference(keys: list[int]) -> None:
    got = stats.key_collisions(np.array(keys, dtype=np.uint64))
    n, distinct, pairs = ref_collisions(keys)
    assert isinstance(got, KeyCollisions)
    assert (got.n, got.distinct, got.colliding_pairs) == (n, distinct, pairs)
    assert got.expected_pairs == pytest.approx(n * (n - 1) / 2**65, rel=1e-12, abs=0.0)
    # The same bits as signed int64 (the reference kernel's key type) give the same counts.
    signed = np.array(keys, dtype=np.uint64).view(np.int64)
    assert stats.key_collisions(signed)[:3] == (n, distinct, pairs)


def test_key_collisions_of_encoded_keys_and_shapes() -> None:
    x = np.random.default_rng(3).normal(size=(500, 16))
    keys = q2key.encode(x).keys
    got = stats.key_collisions(keys.reshape(20, 25))
    assert got[:3] == ref_collisions([int(k) for k in keys])
    assert stats.key_collisions(np.zeros(0, np.uint64)) == KeyCollisions(0, 0, 0, 0.0)
    assert stats.key_collisions([5, 5, 5, 5]) == KeyCollisions(4, 1, 6, 12 / 2**65)
    with pytest.raises(q2key.DTypeError, match="keys"):
        stats.key_collisions(np.array([1.0, 2.0]))
    with pytest.raises(q2key.DTypeError, match="keys"):
        stats.key_collisions(np.array([True, False]))


def test_admissible_sequences() -> None:
    for k in range(7):
        brute = sum(1 for seq in itertools.product(range(4), repeat=k) if all(a != b for a, b in zip(seq, seq[1:])))
        assert stats.admissible_sequences(k) == brute
    assert stats.admissible_sequences(32) == 4 * 3**31
    top = stats.admissible_sequences(stats.MAX_ADMISSIBLE_K)
    assert isinstance(top, int) and top == 4 * 3**79 < 2**128
    with pytest.raises(q2key.Q2KeyError, match=r"^k: must be at most 80"):
        stats.admissible_sequences(stats.MAX_ADMISSIBLE_K + 1)
    assert stats.admissible_sequences(np.int64(3)) == 36
    with pytest.raises(q2key.Q2KeyError, match="k"):
        stats.admissible_sequences(-1)
    with pytest.raises(q2key.DTypeError, match="k"):
        stats.admissible_sequences(2.0)  # type: ignore[arg-type]
    with pytest.raises(q2key.DTypeError, match="k"):
        stats.admissible_sequences(True)


# ---- edge cases ----


def test_n_equal_one_and_constant_rows() -> None:
    one = np.array([[2], [0], [3]], dtype=np.uint8)
    assert stats.transition_counts(one).tolist() == [1, 1, 1]
    assert stats.transition_density(one).tolist() == [1.0, 1.0, 1.0]
    assert np.isnan(stats.complement_bigram_frequency(one)).all()
    assert np.isnan(stats.hairpin_density(one)).all()
    assert not stats.bigram_counts(one).any() and not stats.triplet_counts(one).any()
    assert stats.reverse_complement(one).tolist() == [[0], [2], [1]]
    const = np.full((2, 50), 1, np.uint8)
    assert stats.transition_density(const).tolist() == [0.02, 0.02]
    assert stats.run_reduce_rows(const).to_list() == [[1], [1]]
    assert stats.reverse_complement(const).tolist() == np.full((2, 50), 3).tolist()
    alternating = np.array([[0, 2] * 10], dtype=np.uint8)
    assert stats.complement_bigram_frequency(alternating).tolist() == [1.0]
    assert stats.hairpin_density(alternating).tolist() == [1.0]


def test_empty_batches_have_the_right_shapes_and_dtypes() -> None:
    for batch in (np.zeros((0, 7), np.uint8), Ragged.from_sequences([])):
        r = stats.run_reduce_rows(batch)
        assert len(r) == 0 and r.values.shape == (0,) and r.offsets.tolist() == [0]
        assert r.values.dtype == np.uint8 and r.offsets.dtype == np.int64
        for f, dtype in [
            (stats.transition_counts, np.uint64),
            (stats.transition_density, np.float64),
            (stats.complement_bigram_frequency, np.float64),
            (stats.hairpin_density, np.float64),
        ]:
            out = f(batch)
            assert out.shape == (0,) and out.dtype == dtype, f.__name__
        assert stats.bigram_counts(batch).shape == (0, 4, 4)
        assert stats.triplet_counts(batch).shape == (0, 4, 4, 4)
        assert stats.bigram_counts(batch, total=True).tolist() == np.zeros((4, 4), int).tolist()
        assert stats.triplet_counts(batch, total=True).dtype == np.uint64
    rc = stats.reverse_complement(np.zeros((0, 7), np.uint8))
    assert rc.shape == (0, 7) and rc.dtype == np.uint8
    empty_rows = Ragged.from_sequences([[], [1, 1], []])
    assert np.isnan(stats.transition_density(empty_rows)[[0, 2]]).all()
    assert stats.transition_counts(empty_rows).tolist() == [0, 1, 0]
    assert stats.run_reduce_rows(empty_rows).offsets.tolist() == [0, 0, 1, 1]


def test_leading_axes_and_strided_input() -> None:
    rng = np.random.default_rng(5)
    s = rng.integers(0, 4, size=(2, 3, 11), dtype=np.uint8)
    flat = s.reshape(6, 11).tolist()
    assert stats.hairpin_density(s).shape == (2, 3)
    assert same(stats.hairpin_density(s).ravel().tolist(), [ref_hairpin(r) for r in flat])
    assert stats.bigram_counts(s).shape == (2, 3, 4, 4)
    assert stats.triplet_counts(s).shape == (2, 3, 4, 4, 4)
    assert stats.reverse_complement(s).shape == (2, 3, 11)
    assert len(stats.run_reduce_rows(s)) == 6
    strided = s.reshape(6, 11)[::2, ::3]  # not contiguous
    check_against_reference(strided, strided.tolist())


def test_invalid_symbols_name_the_argument_row_and_column() -> None:
    bad = np.zeros((3, 5), np.uint8)
    bad[2, 4] = 7
    for f in (stats.run_reduce_rows, stats.transition_density, stats.hairpin_density, stats.reverse_complement):
        with pytest.raises(q2key.Q2KeyError, match=r"symbols: row 2 column 4 holds 7"):
            f(bad)
    with pytest.raises(q2key.Q2KeyError, match=r"row 0 column 1 holds -1"):
        stats.bigram_counts(np.array([[0, -1, 2]]))
    # A uint8 Ragged is checked by the core, naming the ragged row and column.
    r = Ragged(np.array([0, 1, 2, 9], np.uint8), np.array([0, 2, 2, 4]))
    with pytest.raises(q2key.Q2KeyError, match=r"row 2 column 1 holds 9"):
        stats.triplet_counts(r)
    with pytest.raises(q2key.Q2KeyError, match=r"values: row 1 column 0 holds 5"):
        Ragged(np.array([0, 5]), np.array([0, 1, 2]))


def test_wrong_dtypes_and_shapes_are_errors() -> None:
    with pytest.raises(q2key.DTypeError, match="symbols"):
        stats.transition_density(np.zeros((2, 3), np.float32))
    with pytest.raises(TypeError):
        stats.hairpin_density(np.array([["a", "b"]]))
    with pytest.raises(q2key.ShapeError, match="symbols"):
        stats.run_reduce_rows(np.zeros((3, 0), np.uint8))
    with pytest.raises(q2key.ShapeError, match="symbols"):
        stats.bigram_counts(np.uint8(2))
    with pytest.raises(q2key.DTypeError, match="offsets"):
        Ragged(np.zeros(2, np.uint8), np.array([0.0, 2.0]))
    with pytest.raises(q2key.DTypeError, match="values"):
        Ragged(np.zeros(2, np.float64), np.array([0, 2]))
    with pytest.raises(q2key.Q2KeyError, match="threads"):
        stats.transition_counts([[0, 1]], threads=0)


@pytest.mark.parametrize(
    ("offsets", "exc", "match"),
    [
        ([], q2key.ShapeError, "offsets"),
        ([1, 3], q2key.Q2KeyError, r"offsets\[0\]"),
        ([0, 2, 1, 3], q2key.Q2KeyError, r"offsets\[2\] = 1 is less than"),
        ([0, 2], q2key.ShapeError, "last offset"),
        ([0, 4], q2key.ShapeError, "last offset"),
    ],
)
def test_bad_offsets_are_errors(offsets: list[int], exc: type[Exception], match: str) -> None:
    values = np.array([0, 1, 2], np.uint8)
    with pytest.raises(exc, match=match):
        Ragged(values, np.array(offsets, dtype=np.int64))
    # The core checks them too (the native functions are reachable without Ragged).
    with pytest.raises(exc, match="offsets"):
        _native.stats.hairpin_density(values, np.array(offsets, dtype=np.int64))


def test_native_rejects_negative_offsets() -> None:
    with pytest.raises(q2key.Q2KeyError, match=r"offsets\[1\] = -1 is negative"):
        _native.stats.run_reduce(np.zeros(0, np.uint8), np.array([0, -1], np.int64))


def test_ragged_helpers() -> None:
    r = Ragged.from_sequences([np.array([3, 3, 1]), [], (2,)])
    assert len(r) == 3 and r.lengths.tolist() == [3, 0, 1]
    assert r.row(0).tolist() == [3, 3, 1] and r.row(-1).tolist() == [2] and r.row(1).tolist() == []
    with pytest.raises(IndexError):
        r.row(3)
    with pytest.raises(AttributeError):
        r.values = np.zeros(4, np.uint8)  # type: ignore[misc]


def test_many_rows_across_parallel_tasks_match_the_reference() -> None:
    rng = np.random.default_rng(17)
    lengths = rng.integers(0, 160, size=3000)
    rows = [[int(v) for v in rng.integers(0, 4, size=int(n)) // rng.integers(1, 3)] for n in lengths]
    batch = Ragged.from_sequences(rows)
    assert batch.values.size > 2 * 65536
    check_against_reference(batch, rows)
    one = stats.complement_bigram_frequency(batch, threads=1)
    assert same(one.tolist(), stats.complement_bigram_frequency(batch, threads=3).tolist())


def test_null_values_on_iid_symbols() -> None:
    # R of i.i.d. uniform symbols picks each next element among the 3 others:
    # complement bigrams ≈ 1/3, hairpins ≈ 1/9, |R|/n ≈ 3/4 (SPEC §5).
    s = np.random.default_rng(20240601).integers(0, 4, size=(200, 2000), dtype=np.uint8)
    assert abs(stats.complement_bigram_frequency(s).mean() - 1 / 3) < 0.005
    assert abs(stats.hairpin_density(s).mean() - 1 / 9) < 0.004
    assert abs(stats.transition_density(s).mean() - 0.75) < 0.005
    bt = stats.bigram_counts(s, total=True).astype(np.float64)
    complement_share = sum(bt[a, (a + 2) % 4] for a in range(4)) / bt.sum()
    assert abs(complement_share - 1 / 3) < 0.005
    tt = stats.triplet_counts(s, total=True)
    assert np.count_nonzero(tt) == 36
    # Every admissible triplet is about equally likely: 1/36 each.
    shares = tt[tt > 0] / tt.sum()
    assert np.abs(shares - 1 / 36).max() < 0.003


def test_docstring_examples() -> None:
    result = doctest.testmod(stats, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 10 and result.failed == 0
