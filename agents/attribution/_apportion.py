"""Integer shares of a total in proportion to exact weights: the one rounding rule of attribution and rewards."""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction

__all__ = ["apportion"]


def apportion(total: int, weights: Mapping[str, Fraction | int]) -> dict[str, int]:
    """Splits ``total`` units among addresses in proportion to ``weights``, in integers that add up to ``total``.

    The largest remainder method (Hamilton's): each address gets the floor of its exact share, and the units left
    over (fewer than there are addresses) go one each to the largest fractional remainders; equal remainders go to
    the numerically lower address first. All arithmetic is exact (integers and fractions), so every machine gets the
    same split. An address of weight 0 gets 0.

    Args:
        total: units to split (basis points, wei), at least 0.
        weights: non-negative weight per address (hex, any case); at least one positive.

    Raises:
        ValueError: a negative total or weight, or no positive weight.
    """
    if total < 0 or any(weight < 0 for weight in weights.values()):
        raise ValueError("apportion needs a non-negative total and weights")
    whole = sum(weights.values(), Fraction(0))
    if whole == 0:
        raise ValueError("apportion needs at least one positive weight")
    shares = {address: Fraction(weight) * total / whole for address, weight in weights.items()}
    amounts = {address: share.numerator // share.denominator for address, share in shares.items()}
    left = total - sum(amounts.values())
    by_remainder = sorted(shares, key=lambda address: (amounts[address] - shares[address], int(address, 16)))
    for address in by_remainder[:left]:
        amounts[address] += 1
    return amounts
