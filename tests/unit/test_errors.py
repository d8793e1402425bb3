"""Revert data decoding: our custom errors, Error(string), Panic(uint256), and what matches nothing."""

from __future__ import annotations

from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector

from staking import CustomError, decode_revert


def test_decodes_a_custom_error_of_our_contracts_with_named_arguments() -> None:
    selector = function_signature_to_4byte_selector("StakingInsufficientStake(address,uint256,uint256)")
    operator = "0xABaBaBaBABabABabAbAbABAbABabababaBaBABaB"  # decoded addresses come back checksummed
    data = selector + encode(["address", "uint256", "uint256"], [operator, 5, 10])
    error = decode_revert(data)
    assert error is not None
    assert error.name == "StakingInsufficientStake"
    assert error.args == {"operator": operator, "stake": 5, "required": 10}
    assert str(error) == f"StakingInsufficientStake(operator={operator}, stake=5, required=10)"


def test_decodes_error_string_and_panic() -> None:
    message = function_signature_to_4byte_selector("Error(string)") + encode(["string"], ["boom"])
    panic = function_signature_to_4byte_selector("Panic(uint256)") + encode(["uint256"], [0x11])
    assert decode_revert(message) == CustomError("Error", {"message": "boom"})
    assert decode_revert(panic) == CustomError("Panic", {"code": 0x11})


def test_unknown_or_truncated_data_decodes_to_none() -> None:
    assert decode_revert(b"\xde\xad\xbe\xef") is None
    assert decode_revert(b"") is None
    selector = function_signature_to_4byte_selector("StakingInsufficientStake(address,uint256,uint256)")
    assert decode_revert(selector + b"\x00" * 5) is None
