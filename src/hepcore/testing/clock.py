from __future__ import annotations


class FakeClock:
    """A clock for tests: call it for the time, ``advance`` it by seconds."""

    def __init__(self, start: float = 1_780_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
