"""The examples in the gateway's docstrings hold: each module showing one (a `>>>` line) is run through doctest."""

from __future__ import annotations

import doctest
import importlib

import pytest

from tests.test_imports import ROOT, modules

WITH_EXAMPLES = sorted(name for name, path in modules(ROOT).items() if ">>> " in path.read_text())


@pytest.mark.parametrize("name", WITH_EXAMPLES)
def test_the_examples_of_the_docstrings_hold(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted, f"{name} shows `>>>` lines that doctest does not run (not in a docstring?)"
    assert not result.failed, f"{result.failed} of {result.attempted} examples of {name} fail (doctest's report above)"
