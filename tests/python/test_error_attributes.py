"""Errors say what they are about as attributes (.arg, .row, .col), whichever side found them."""

from __future__ import annotations

import errno
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import q2key


def test_non_finite_row_and_column_from_rust() -> None:
    x = np.zeros((4, 8), np.float32)
    x[2, 5] = np.inf
    with pytest.raises(q2key.NonFiniteError) as info:
        q2key.encode(x)
    assert (info.value.arg, info.value.row, info.value.col) == ("x", 2, 5)
    assert str(info.value).startswith("x: row 2 ")


def test_public_name_of_the_vectors_reaches_the_attribute() -> None:
    index = q2key.Index(8)
    bad = np.ones((3, 8))
    bad[1, 0] = np.nan
    with pytest.raises(q2key.NonFiniteError) as info:
        index.add(bad)
    assert (info.value.arg, info.value.row, info.value.col) == ("vectors", 1, 0)


def test_duplicate_id_row() -> None:
    index = q2key.Index(8)
    index.add(np.ones((2, 8)), ids=[5, 6])
    with pytest.raises(q2key.Q2KeyError) as info:
        index.add(np.ones((3, 8)), ids=[7, 8, 6])
    assert (info.value.arg, info.value.row) == ("ids", 2)


def test_shape_error_names_the_argument() -> None:
    with pytest.raises(q2key.ShapeError) as info:
        q2key.lee_matrix(np.zeros((2, 3), np.uint8), np.zeros((2, 4), np.uint8))
    assert info.value.arg == "b"
    assert info.value.row is None


@pytest.mark.parametrize(
    "cls", [q2key.Q2KeyError, q2key.NonFiniteError, q2key.ShapeError, q2key.FormatError, q2key.DTypeError]
)
def test_constructed_with_attributes_and_pickled(cls: type[q2key.Q2KeyError]) -> None:
    e = cls("is bad", arg="ids", row=3, col=1)
    assert str(e) == "ids: is bad"
    again = pickle.loads(pickle.dumps(e))
    assert type(again) is cls
    assert (str(again), again.arg, again.row, again.col) == ("ids: is bad", "ids", 3, 1)


def test_message_already_naming_the_argument_is_not_prefixed_twice() -> None:
    assert str(q2key.Q2KeyError("k: must be at least 1", arg="k")) == "k: must be at least 1"


def test_public_module_name_in_tracebacks() -> None:
    assert q2key.Q2KeyError.__module__ == "q2key"
    assert issubclass(q2key.Q2KeyError, ValueError) and issubclass(q2key.DTypeError, TypeError)


def test_os_errors_carry_errno_and_keep_their_message(tmp_path: Path) -> None:
    target = tmp_path / "no-such-dir" / "idx.q2k"
    with pytest.raises(FileNotFoundError) as info:
        q2key.Index(8).save(target)
    assert info.value.errno == errno.ENOENT
    assert str(info.value).startswith(f"{target}: cannot create the temporary file ")
    assert str(info.value).endswith(f"{os.strerror(errno.ENOENT)} (os error {errno.ENOENT})")
