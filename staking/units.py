"""OPEN amounts: integers in wei on every interface, decimal OPEN only for people."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

__all__ = ["OPEN_DECIMALS", "WEI_PER_OPEN", "format_open", "to_wei_open"]

OPEN_DECIMALS = 18
WEI_PER_OPEN = 10**OPEN_DECIMALS


def to_wei_open(amount: str | int | Decimal) -> int:
    """Converts an amount of OPEN (``"0.01"``, ``5``) to wei, exactly.

    Args:
        amount: OPEN as a decimal string, an int or a Decimal. Floats are refused: they cannot hold 0.1 exactly.

    Raises:
        ValueError: the amount is negative, not a number, a float, or finer than one wei.
    """
    if isinstance(amount, float):
        raise ValueError("pass OPEN amounts as str, int or Decimal, not float")
    try:
        value = Decimal(amount)
    except InvalidOperation as exc:
        raise ValueError(f"not an amount of OPEN: {amount!r}") from exc
    sign, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):  # NaN or infinity
        raise ValueError(f"not an amount of OPEN: {amount!r}")
    # Integer arithmetic on the decimal digits: Decimal multiplication would round past 28 digits.
    coefficient = int("".join(map(str, digits)))
    shift = exponent + OPEN_DECIMALS
    wei: int = coefficient * 10**shift if shift >= 0 else coefficient // 10**-shift
    remainder = 0 if shift >= 0 else coefficient % 10**-shift
    if remainder:
        raise ValueError(f"{amount!r} OPEN is finer than one wei")
    if sign and wei:
        raise ValueError(f"{amount!r} OPEN is negative")
    return wei


def format_open(wei: int) -> str:
    """Renders wei as OPEN without rounding, e.g. ``10**16`` -> ``"0.01"``."""
    whole, fraction = divmod(abs(wei), WEI_PER_OPEN)
    sign = "-" if wei < 0 else ""
    if not fraction:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{fraction:018d}".rstrip("0")
