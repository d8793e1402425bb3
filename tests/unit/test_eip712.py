"""EIP-712 encoding in Python. The same digests are checked against the contracts in tests/chain."""

from __future__ import annotations

from eth_account import Account
from eth_utils import keccak

from staking import Domain, TransferWithAuthorization, Voucher, digest, recover, sign

DOMAIN = Domain("PaymentChannels", "1", 31337, "0x" + "11" * 20)


def test_voucher_type_string_matches_the_contract() -> None:
    types = Voucher(channel_id=b"\x00" * 32, cumulative_amount=0).typed_data(DOMAIN)["types"]["Voucher"]
    assert types == [
        {"name": "channelId", "type": "bytes32"},
        {"name": "cumulativeAmount", "type": "uint256"},
    ]


def test_authorization_fields_are_the_eip3009_ones() -> None:
    message = TransferWithAuthorization("0x" + "22" * 20, "0x" + "33" * 20, 1, 2, 3, b"\x04" * 32)
    members = message.typed_data(DOMAIN)["types"]["TransferWithAuthorization"]
    type_string = "TransferWithAuthorization(" + ",".join(f"{m['type']} {m['name']}" for m in members) + ")"
    assert keccak(text=type_string).hex() == "7c7c6cdb67a18743f49ec6fa9b35f50d52ed05cbed4cc592e13b44501c1a2267"


def test_sign_then_recover_returns_the_signer_and_binds_every_field() -> None:
    account = Account.create()
    voucher = Voucher(channel_id=b"\x01" * 32, cumulative_amount=10)
    signature = sign(account, DOMAIN, voucher)
    assert len(signature) == 65
    assert recover(DOMAIN, voucher, signature) == account.address
    assert recover(DOMAIN, Voucher(channel_id=b"\x01" * 32, cumulative_amount=11), signature) != account.address
    other_chain = Domain(DOMAIN.name, DOMAIN.version, 1, DOMAIN.verifying_contract)
    assert digest(other_chain, voucher) != digest(DOMAIN, voucher)
