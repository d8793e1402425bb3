"""Payments against the deployed contracts on anvil: vouchers and EIP-3009 authorizations that verify, are claimed or
settled, and every bad payment refused with the reason a client acts on."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import AsyncWeb3

from runtime.errors import PaymentError
from runtime.journal import AcceptedAuthorization, AcceptedPayment, AcceptedVoucher, Journal
from runtime.payments import PaymentVerifier, StakingPaymentChain, channel_payment_payload, exact_payment_payload
from runtime.protocol import FailureReason, ResourceInfo, encode_header
from staking import (
    Deployment,
    Domain,
    StakingClient,
    Transactor,
    TransferWithAuthorization,
    Voucher,
    sign,
    to_wei_open,
)

pytestmark = pytest.mark.chain

PRICE = to_wei_open("0.01")
MARGIN = 120
RESOURCE = ResourceInfo(url="http://agent.test/v1/skills/echo", mime_type="application/json")


@pytest.fixture(scope="module")
async def clients(
    w3: AsyncWeb3[Any], deployment: Deployment, deployer: Transactor, keys: list[LocalAccount]
) -> list[StakingClient]:
    """A client per development account; all but the deployer get 10,000 OPEN. [1] is the agent."""
    token = deployment.contract(w3, "OpenToken")
    for key in keys[1:]:
        await deployer.send(token.functions.transfer(key.address, to_wei_open(10_000)))
    return [StakingClient(w3, deployment, key) for key in keys]


@pytest.fixture
def agent(clients: list[StakingClient]) -> StakingClient:
    return clients[1]


@pytest.fixture
async def journal(tmp_path: Path, agent: StakingClient) -> AsyncIterator[Journal]:
    async with Journal(tmp_path / "journal.sqlite", agent=agent.address) as opened:
        yield opened


@pytest.fixture
def verifier(agent: StakingClient, journal: Journal) -> PaymentVerifier:
    return PaymentVerifier(
        chain=StakingPaymentChain(agent), journal=journal, payee=agent.address, settlement_margin=MARGIN
    )


async def pay(verifier: PaymentVerifier, header: str, request_id: bytes | None = None) -> AcceptedPayment:
    return await verifier.verify(
        header, price=PRICE, request_id=request_id or secrets.token_bytes(32), request_hash=b"h" * 32
    )


async def refused(verifier: PaymentVerifier, header: str) -> FailureReason:
    with pytest.raises(PaymentError) as caught:
        await pay(verifier, header)
    return caught.value.reason


def voucher_header(
    verifier: PaymentVerifier,
    payer: LocalAccount,
    domain: Domain,
    channel_id: bytes,
    amount: int,
    network: str | None = None,
) -> str:
    _, requirements = verifier.requirements(PRICE)
    if network is not None:
        requirements = requirements.model_copy(update={"network": network})
    voucher = Voucher(channel_id, amount)
    return encode_header(channel_payment_payload(requirements, voucher, sign(payer, domain, voucher)))


def authorization_header(
    verifier: PaymentVerifier,
    payer: LocalAccount,
    domain: Domain,
    *,
    to: str | None = None,
    value: int = PRICE,
    valid_after: int = 0,
    valid_before: int,
    nonce: bytes | None = None,
    network: str | None = None,
) -> str:
    requirements, _ = verifier.requirements(PRICE)
    if network is not None:
        requirements = requirements.model_copy(update={"network": network})
    authorization = TransferWithAuthorization(
        payer.address, to or verifier.payee, value, valid_after, valid_before, nonce or secrets.token_bytes(32)
    )
    return encode_header(exact_payment_payload(requirements, authorization, sign(payer, domain, authorization)))


async def block_time(w3: AsyncWeb3[Any]) -> int:
    return int((await w3.eth.get_block("latest"))["timestamp"])


def on_chain(domain: Domain, chain_id: int) -> Domain:
    return Domain(domain.name, domain.version, chain_id, domain.verifying_contract)


async def test_vouchers_verify_then_are_claimed_in_one_transaction(
    clients: list[StakingClient], keys: list[LocalAccount], agent: StakingClient, journal: Journal,
    verifier: PaymentVerifier,
) -> None:  # fmt: skip
    payer, key = clients[2], keys[2]
    domain = payer.channel_domain()
    channel_id = await payer.open_channel(agent.address, 3 * PRICE)
    first = secrets.token_bytes(32)
    for step in (1, 2, 3):
        header = voucher_header(verifier, key, domain, channel_id, step * PRICE)
        accepted = await pay(verifier, header, first if step == 1 else None)
        assert isinstance(accepted, AcceptedVoucher)
        assert (accepted.payer, accepted.amount) == (payer.address, PRICE)
    # The first request retried, with its own voucher again: served without a second charge.
    retried = await pay(verifier, voucher_header(verifier, key, domain, channel_id, PRICE), first)
    assert retried.request_id == first
    assert await refused(verifier, voucher_header(verifier, key, domain, channel_id, 4 * PRICE)) is (
        FailureReason.EXCEEDS_DEPOSIT
    )

    (claimable,) = await journal.claimable_vouchers()
    assert claimable.voucher == Voucher(channel_id, 3 * PRICE)
    before = await agent.balance_of(agent.address)
    assert await agent.claim_vouchers([(claimable.voucher, claimable.signature)]) == 3 * PRICE
    await journal.mark_claimed(claimable)
    assert await journal.claimable_vouchers() == ()
    assert await agent.balance_of(agent.address) == before + 3 * PRICE

    await payer.top_up(channel_id, PRICE)  # a voucher above the deposit the verifier saw makes it read again
    assert isinstance(
        await pay(verifier, voucher_header(verifier, key, domain, channel_id, 4 * PRICE)), AcceptedVoucher
    )


async def test_bad_vouchers_are_refused_with_the_reason_to_act_on(
    clients: list[StakingClient], keys: list[LocalAccount], agent: StakingClient, verifier: PaymentVerifier
) -> None:
    payer, key, stranger = clients[3], keys[3], clients[4]
    domain = payer.channel_domain()
    channel_id = await payer.open_channel(agent.address, 5 * PRICE)
    await pay(verifier, voucher_header(verifier, key, domain, channel_id, PRICE))
    await pay(verifier, voucher_header(verifier, key, domain, channel_id, 2 * PRICE))

    def header(amount: int, *, signer: LocalAccount = key, on: Domain = domain, channel: bytes = channel_id) -> str:
        return voucher_header(verifier, signer, on, channel, amount)

    assert await refused(verifier, header(2 * PRICE)) is FailureReason.REPLAYED
    assert await refused(verifier, header(PRICE + 1)) is FailureReason.STALE_VOUCHER
    assert await refused(verifier, header(3 * PRICE - 1)) is FailureReason.INSUFFICIENT_AMOUNT
    assert await refused(verifier, header(4 * PRICE)) is FailureReason.AMOUNT_MISMATCH
    assert await refused(verifier, header(6 * PRICE)) is FailureReason.EXCEEDS_DEPOSIT
    assert await refused(verifier, header(3 * PRICE, signer=keys[5])) is FailureReason.INVALID_SIGNATURE
    other_chain = on_chain(domain, 1)
    assert await refused(verifier, header(3 * PRICE, on=other_chain)) is FailureReason.INVALID_SIGNATURE
    wrong_chain = voucher_header(verifier, key, other_chain, channel_id, 3 * PRICE, network="eip155:1")
    assert await refused(verifier, wrong_chain) is FailureReason.WRONG_CHAIN
    assert await refused(verifier, header(PRICE, channel=secrets.token_bytes(32))) is FailureReason.UNKNOWN_CHANNEL
    elsewhere = await payer.open_channel(stranger.address, PRICE)
    assert await refused(verifier, header(PRICE, channel=elsewhere)) is FailureReason.WRONG_PAYEE
    leaving = await payer.open_channel(agent.address, PRICE)
    await payer.initiate_channel_withdraw(leaving)
    assert await refused(verifier, header(PRICE, channel=leaving)) is FailureReason.CHANNEL_CLOSED
    # None of that moved the channel: its next voucher is still 3 * PRICE.
    assert isinstance(await pay(verifier, header(3 * PRICE)), AcceptedVoucher)


async def test_authorizations_verify_then_settle_and_are_marked_settled(
    w3: AsyncWeb3[Any], clients: list[StakingClient], keys: list[LocalAccount], agent: StakingClient,
    journal: Journal, verifier: PaymentVerifier,
) -> None:  # fmt: skip
    payer, key = clients[5], keys[5]
    domain = payer.token_domain()
    now = await block_time(w3)
    signed = authorization_header(verifier, key, domain, valid_before=now + 600)
    request_id = secrets.token_bytes(32)
    accepted = await pay(verifier, signed, request_id)
    assert isinstance(accepted, AcceptedAuthorization)
    assert (accepted.payer, accepted.amount) == (payer.address, PRICE)

    (pending,) = await journal.pending_authorizations()
    before = await agent.balance_of(agent.address)
    receipt = await agent.transfer_with_authorization(pending.authorization, pending.signature)
    await journal.mark_settled(pending, receipt["transactionHash"].to_0x_hex())
    assert await journal.pending_authorizations() == ()
    assert await agent.balance_of(agent.address) == before + PRICE

    assert await pay(verifier, signed, request_id) == accepted  # a retry after settlement is not charged again
    assert await refused(verifier, signed) is FailureReason.REPLAYED  # the nonce is spent on chain


async def test_bad_authorizations_are_refused_with_the_reason_to_act_on(
    w3: AsyncWeb3[Any], deployment: Deployment, deployer: Transactor, clients: list[StakingClient],
    keys: list[LocalAccount], verifier: PaymentVerifier,
) -> None:  # fmt: skip
    key, stranger = keys[6], clients[4]
    domain = clients[6].token_domain()
    now = await block_time(w3)

    def header(**fields: Any) -> str:
        return authorization_header(verifier, fields.pop("signer", key), fields.pop("on", domain), **fields)

    assert await refused(verifier, header(valid_before=now + MARGIN)) is FailureReason.EXPIRED
    assert await refused(verifier, header(valid_before=now - 1)) is FailureReason.EXPIRED
    assert await refused(verifier, header(valid_after=now + 60, valid_before=now + 600)) is FailureReason.NOT_YET_VALID
    assert await refused(verifier, header(value=PRICE - 1, valid_before=now + 600)) is FailureReason.INSUFFICIENT_AMOUNT
    assert await refused(verifier, header(value=PRICE + 1, valid_before=now + 600)) is FailureReason.AMOUNT_MISMATCH
    assert await refused(verifier, header(to=stranger.address, valid_before=now + 600)) is FailureReason.WRONG_PAYEE
    wrong_chain = header(on=on_chain(domain, 1), network="eip155:1", valid_before=now + 600)
    assert await refused(verifier, wrong_chain) is FailureReason.WRONG_CHAIN
    forged = authorization_header(verifier, keys[7], domain, valid_before=now + 600)
    document = json.loads(base64.b64decode(forged))
    document["payload"]["authorization"]["from"] = key.address  # claims to be from key, signed by keys[7]
    assert await refused(verifier, base64.b64encode(json.dumps(document).encode()).decode()) is (
        FailureReason.INVALID_SIGNATURE
    )

    once = header(valid_before=now + 600)
    await pay(verifier, once)
    assert await refused(verifier, once) is FailureReason.REPLAYED  # accepted here, not settled yet

    poor = Account.create()  # no OPEN at all
    assert await refused(verifier, header(signer=poor, valid_before=now + 600)) is FailureReason.INSUFFICIENT_FUNDS
    thrifty = Account.create()  # exactly one price: a second payment before the first settles is not covered
    await deployer.send(deployment.contract(w3, "OpenToken").functions.transfer(thrifty.address, PRICE))
    await pay(verifier, header(signer=thrifty, valid_before=now + 600))
    assert await refused(verifier, header(signer=thrifty, valid_before=now + 600)) is FailureReason.INSUFFICIENT_FUNDS


async def test_a_payment_built_the_way_a_stock_x402_client_builds_it_verifies(
    w3: AsyncWeb3[Any], keys: list[LocalAccount], verifier: PaymentVerifier
) -> None:
    """Built from the PAYMENT-REQUIRED document alone, as x402's exact EVM scheme says a client does: the EIP-712
    domain from ``extra`` and ``asset``, the chain id from the CAIP-2 network, every number a string."""
    key = keys[7]
    required = json.loads(base64.b64decode(encode_header(verifier.payment_required(RESOURCE, PRICE))))
    (requirements,) = [option for option in required["accepts"] if option["scheme"] == "exact"]
    now = await block_time(w3)
    authorization = {
        "from": key.address,
        "to": requirements["payTo"],
        "value": requirements["amount"],
        "validAfter": str(now - 600),
        "validBefore": str(now + requirements["maxTimeoutSeconds"]),
        "nonce": "0x" + secrets.token_bytes(32).hex(),
    }
    domain = {
        "name": requirements["extra"]["name"],
        "version": requirements["extra"]["version"],
        "chainId": int(requirements["network"].split(":")[1]),
        "verifyingContract": requirements["asset"],
    }
    types = {
        "TransferWithAuthorization": [
            {"name": "from", "type": "address"},
            {"name": "to", "type": "address"},
            {"name": "value", "type": "uint256"},
            {"name": "validAfter", "type": "uint256"},
            {"name": "validBefore", "type": "uint256"},
            {"name": "nonce", "type": "bytes32"},
        ]
    }
    message = {
        **{name: int(value) for name, value in authorization.items() if name.startswith(("value", "valid"))},
        "from": authorization["from"],
        "to": authorization["to"],
        "nonce": bytes.fromhex(authorization["nonce"][2:]),
    }
    signature = key.sign_typed_data(domain, types, message).signature
    payload = {
        "x402Version": 2,
        "resource": required["resource"],
        "accepted": requirements,
        "payload": {"signature": "0x" + bytes(signature).hex(), "authorization": authorization},
    }
    header = base64.b64encode(json.dumps(payload).encode()).decode()
    accepted = await pay(verifier, header)
    assert isinstance(accepted, AcceptedAuthorization)
    assert accepted.payer == key.address
