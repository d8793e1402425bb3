from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from staking import WEI_PER_OPEN, format_open, to_wei_open


@given(st.integers(min_value=0, max_value=10**30))
def test_format_then_parse_is_the_identity_on_wei(wei: int) -> None:
    assert to_wei_open(format_open(wei)) == wei


@pytest.mark.parametrize(
    ("amount", "wei"),
    [("0.01", 10**16), (5, 5 * WEI_PER_OPEN), (Decimal("1e-18"), 1), ("1000000000", 10**27)],
)
def test_to_wei_open_is_exact(amount: str | int | Decimal, wei: int) -> None:
    assert to_wei_open(amount) == wei


@pytest.mark.parametrize("bad", ["-1", "1e-19", "abc", "NaN", "Infinity", 0.1])
def test_to_wei_open_refuses_what_is_not_a_whole_number_of_wei(bad: object) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message varies with the input
        to_wei_open(bad)  # type: ignore[arg-type]


def test_format_open_trims_trailing_zeros() -> None:
    assert format_open(10**16) == "0.01"
    assert format_open(3 * WEI_PER_OPEN) == "3"
    assert format_open(-(10**18 + 1)) == "-1.000000000000000001"
