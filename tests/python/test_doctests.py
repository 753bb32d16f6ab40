"""The examples in the package's docstrings run and print what they show: every module of the
installed package, and every `>>>` line in its source is one that doctest runs."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import re
from pathlib import Path

import pytest
import q2key

# Modules that need an optional dependency to import (they are tested where it is installed).
OPTIONAL = {"q2key.dask": "dask", "q2key.plot": "matplotlib"}

MODULES = sorted(
    info.name
    for info in pkgutil.iter_modules(q2key.__path__, "q2key.")
    # _native has no Python source; __main__ runs the CLI when imported.
    if info.name not in ("q2key._native", "q2key.__main__")
)


def _examples_in_source(module: object) -> int:
    path = getattr(module, "__file__", None)
    if path is None or not path.endswith(".py"):
        return 0
    return len(re.findall(r"^\s*>>> ", Path(path).read_text(encoding="utf-8"), flags=re.MULTILINE))


@pytest.mark.parametrize("name", ["q2key", *MODULES])
def test_docstring_examples(name: str) -> None:
    if name in OPTIONAL:
        pytest.importorskip(OPTIONAL[name])
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    tests = finder.find(module)
    found = sum(len(t.examples) for t in tests)
    # An example doctest cannot see (a docstring of an object imported from elsewhere, in a
    # comment, a nested function) would never run: every `>>>` in the file must be found.
    assert found == _examples_in_source(module), f"{name}: doctest finds {found} examples"
    for test in tests:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{name}: {result.failed} of {result.attempted} examples failed"


def test_the_public_classes_have_examples_that_run() -> None:
    """Thresholds, calibrate, Calibrator and Index documented by example (they once had none that ran)."""
    finder = doctest.DocTestFinder()
    for obj in (q2key.Thresholds, q2key.calibrate, q2key.Calibrator, q2key.Index, q2key.encode, q2key.search):
        tests = finder.find(obj)
        assert sum(len(t.examples) for t in tests) > 0, f"{obj.__qualname__} has no examples"
