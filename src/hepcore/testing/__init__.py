"""Helpers for testing hepcore and its plugins: a settable clock, real servers
on loopback, and the contract suites every backend must pass."""

from .clock import FakeClock

__all__ = ["FakeClock"]
