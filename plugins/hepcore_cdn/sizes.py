"""Sizes in upstream's human-readable form (spec 4.4): ``1023 Bytes``, ``1.18 MB``, ``10 MB``."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

UNITS = ("KB", "MB", "GB", "TB")


def human_size(nbytes: int) -> str:
    """Base 1024; whole bytes below 1024 (``Byte`` for exactly 1); otherwise the
    value rounded half-up to 3 significant digits, trailing zeros removed."""
    if nbytes < 1024:
        return f"{nbytes} {'Byte' if nbytes == 1 else 'Bytes'}"
    exponent = 1
    while exponent < len(UNITS) and nbytes >= 1024 ** (exponent + 1):
        exponent += 1
    value = Decimal(nbytes) / Decimal(1024 ** exponent)
    # Three significant digits: quantize at the place of the third digit.
    digits = value.adjusted() + 1
    rounded = value.quantize(Decimal(1).scaleb(digits - 3), rounding=ROUND_HALF_UP)
    text = f"{rounded:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text} {UNITS[exponent - 1]}"
