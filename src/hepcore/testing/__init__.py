"""Helpers for testing hepcore and its plugins: a settable clock, real servers
on loopback, and the contract suites every backend must pass
(:mod:`hepcore.testing.contracts`, which needs pytest)."""

import sys

from .clock import FakeClock

if "pytest" in sys.modules:  # readable assertion failures in the contract suites
    import pytest

    pytest.register_assert_rewrite("hepcore.testing.contracts")

__all__ = ["FakeClock"]
