"""Shared test setup: the ``slow`` marker (selected by default; ``-m "not slow"`` skips it)."""
from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes seconds; runs in CI, skip locally with "
                                       "-m 'not slow'")


@pytest.fixture
def float64_default():
    """``cr.set_default_dtype(np.float64)`` for one test, restored afterwards."""
    before = cr.default_dtype()
    cr.set_default_dtype(np.float64)
    try:
        yield
    finally:
        cr.set_default_dtype(before)
