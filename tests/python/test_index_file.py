"""Saved and pickled indexes round-trip for every dimension and state (issue 10, items 6 and 7),
and a mutation fuzz of the pure-Python ``Thresholds`` parsers (bytes and JSON)."""

from __future__ import annotations

import json
import pickle
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import q2key
from hypothesis import given, settings
from hypothesis import strategies as st

KINDS = ("gaussian", "global", "per_dim")


def _index(dim: int, kind: str, state: int) -> q2key.Index:
    """Empty (state 0), one row (1), or one row added then removed (2)."""
    th: object = None
    if kind == "global":
        th = q2key.Thresholds.global_(0.1, dim=dim)
    elif kind == "per_dim":
        th = q2key.Thresholds.per_dim(np.tile([[-0.3], [0.0], [0.3]], dim))
    index = q2key.Index(dim, threshold=th)  # type: ignore[arg-type]
    if state:
        index.add(np.linspace(-1, 1, dim, dtype=np.float32)[None, :])
    if state == 2:
        assert index.remove([0]) == 1
    return index


@settings(max_examples=60, deadline=None)
@given(dim=st.integers(1, 4096), kind=st.sampled_from(KINDS), state=st.integers(0, 2))
def test_every_dimension_round_trips_through_files_bytes_and_pickle(
    tmp_path_factory: pytest.TempPathFactory, dim: int, kind: str, state: int
) -> None:
    index = _index(dim, kind, state)
    data = index.to_bytes()
    path = tmp_path_factory.mktemp("idx") / "idx.q2k"
    index.save(path)
    for back in (
        q2key.Index.load(path),
        q2key.Index.load(path, mmap=True),
        q2key.Index.from_bytes(data),
        pickle.loads(pickle.dumps(index)),
    ):
        assert (back.dim, len(back)) == (dim, int(state == 1))
        assert back.to_bytes() == data
    # The next sequential id skips every id ever given, removed ones included.
    again = pickle.loads(pickle.dumps(index))
    assert again.add(np.zeros((1, dim), np.float32)).tolist() == [int(state > 0)]


@pytest.mark.parametrize("dim", [1283, 1284, 4096])
def test_empty_indexes_at_the_old_limit(tmp_path: Path, dim: int) -> None:
    for kind in KINDS:
        for state in (0, 2):
            index = _index(dim, kind, state)
            index.save(tmp_path / "i.q2k")
            assert q2key.Index.load(tmp_path / "i.q2k").dim == dim
            assert pickle.loads(pickle.dumps(index)).dim == dim


def test_a_next_id_below_a_stored_id_is_a_format_error() -> None:
    index = q2key.Index(8)
    index.add(np.ones((3, 8), np.float32), ids=np.array([4, 9, 2], np.uint64))
    data = bytearray(index.to_bytes())
    data[40:48] = (5).to_bytes(8, "little")  # next_id
    data[256:260] = _crc32c(bytes(data[:256])).to_bytes(4, "little")
    with pytest.raises(q2key.FormatError, match="next id 5 is not above the largest stored id 9"):
        q2key.Index.from_bytes(bytes(data))


def _crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


# -- Thresholds parsers: mutated valid encodings give a Thresholds or a Q2KeyError, nothing else --------------


def _valid_thresholds() -> list[q2key.Thresholds]:
    return [
        q2key.Thresholds.gaussian(5),
        q2key.Thresholds.global_(0.2),
        q2key.Thresholds.global_(0.05, dim=7),
        q2key.Thresholds.per_dim(np.array([[-0.4, -0.1, 0.0], [0.0, 0.0, 0.1], [0.5, 0.2, 0.3]])),
        # A table and a rotation (a signed permutation: orthogonal whatever float32 makes of it).
        q2key.Thresholds.per_dim(np.array([[-0.4, -0.1, 0.0], [0.0, 0.0, 0.1], [0.5, 0.2, 0.3]]))
        .with_reconstruction([[-0.6, -0.2, 0.05, 0.7], [-0.3, -0.05, 0.0, 0.4], [-0.1, 0.05, 0.2, 0.5]])
        .with_rotation([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]),
        q2key.Thresholds.global_(0.05).with_rotation(np.eye(4)),
    ]


def mutate(rng: np.random.Generator, data: bytes) -> bytes:
    """One random structural mutation: flips, byte sets, truncation, insertion, or a spliced field value."""
    b = bytearray(data)
    op = int(rng.integers(0, 6))
    if op == 0 and b:
        for _ in range(int(rng.integers(1, 4))):
            i = int(rng.integers(0, len(b)))
            b[i] ^= 1 << int(rng.integers(0, 8))
    elif op == 1 and b:
        b[int(rng.integers(0, len(b)))] = int(rng.choice([0, 1, 0x7F, 0x80, 0xFF]))
    elif op == 2:
        del b[int(rng.integers(0, len(b) + 1)) :]
    elif op == 3:
        i = int(rng.integers(0, len(b) + 1))
        b[i:i] = bytes(rng.integers(0, 256, int(rng.integers(1, 9)), dtype=np.uint8))
    elif op == 4 and len(b) >= 8:
        i = int(rng.integers(0, len(b) - 7))
        b[i : i + 8] = struct.pack("<d", float(rng.choice([np.nan, np.inf, -np.inf, -1.0, 0.0, 1e308, -0.0])))
    elif op == 5 and len(b) >= 8:
        i = int(rng.integers(0, len(b) - 7))
        values = [0, 1, 2**31, 2**63, 2**64 - 1]
        b[i : i + 8] = struct.pack("<Q", values[int(rng.integers(0, len(values)))])
    return bytes(b)


def _refresh_crc(data: bytes) -> bytes:
    return data[:-4] + struct.pack("<I", zlib.crc32(data[:-4])) if len(data) >= 4 else data


def check_thresholds_bytes(data: bytes) -> None:
    try:
        th = q2key.Thresholds.from_bytes(data)
    except (q2key.Q2KeyError, q2key.DTypeError):  # the two q2key error classes; anything else is a bug
        return
    assert q2key.Thresholds.from_bytes(th.to_bytes()) == th


def check_thresholds_json(text: bytes) -> None:
    try:
        th = q2key.Thresholds.from_json(text)
    except (q2key.Q2KeyError, q2key.DTypeError):  # the two q2key error classes; anything else is a bug
        return
    assert q2key.Thresholds.from_json(th.to_json()) == th


def _json_mutations(rng: np.random.Generator, th: q2key.Thresholds) -> bytes:
    doc = json.loads(th.to_json())
    key = str(rng.choice(["format", "version", "kind", "dim", "tau", "cuts", "extra"]))
    values: list[object] = [None, 0, -1, 1.5, 2**70, "x", [], {}, [[1.0]], [[0.0, 1.0]] * 3, float("nan"), True]
    doc[key] = values[int(rng.integers(0, len(values)))]
    return json.dumps(doc).encode()


@settings(max_examples=300, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1))
def test_thresholds_parsers_take_any_mutation(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for th in _valid_thresholds():
        raw = mutate(rng, th.to_bytes())
        check_thresholds_bytes(raw)
        check_thresholds_bytes(_refresh_crc(raw))
        check_thresholds_json(mutate(rng, th.to_json().encode()))
        check_thresholds_json(_json_mutations(rng, th))
