"""The examples in the package's docstrings run and print what they show."""

import doctest
import importlib

import pytest

MODULES = ["q2key", "q2key._encode", "q2key._codes", "q2key._distance"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
