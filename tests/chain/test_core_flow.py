"""The core contracts on a real anvil chain, driven from Python: staking, channels, EIP-3009 and permit.

Every signature here is made by eth-account in Python and verified by the contracts, so these tests also prove
that the Python EIP-712 encoding matches Solidity's.
"""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from web3 import AsyncWeb3

from staking import (
    ChainUnavailableError,
    ContractRevertedError,
    Deployment,
    Domain,
    Permit,
    Transactor,
    TransferWithAuthorization,
    Voucher,
    WrongChainError,
    advance_time,
    connect,
    digest,
    sign,
    to_wei_open,
)

pytestmark = pytest.mark.chain

AGENT = 0
PRICE = to_wei_open("0.01")


@pytest.fixture(scope="module")
async def funded(
    w3: AsyncWeb3[Any], keys: list[LocalAccount], deployer: Transactor, deployment: Deployment
) -> list[Transactor]:
    """Transactors for keys[1:], each holding 10,000 OPEN."""
    token = deployment.contract(w3, "OpenToken")
    senders = [Transactor(w3, key) for key in keys[1:]]
    for sender in senders:
        await deployer.send(token.functions.transfer(sender.address, to_wei_open(10_000)))
    return senders


async def balance(w3: AsyncWeb3[Any], deployment: Deployment, address: str) -> int:
    return int(await deployment.contract(w3, "OpenToken").functions.balanceOf(address).call())


async def test_stake_then_unstake_then_withdraw_after_unbonding(
    w3: AsyncWeb3[Any], deployment: Deployment, funded: list[Transactor], keys: list[LocalAccount]
) -> None:
    operator, signer = funded[0], keys[7]
    staking = deployment.contract(w3, "AgentStaking")
    amount = deployment.parameters.min_agent_stake
    before = await balance(w3, deployment, operator.address)

    await operator.send(deployment.contract(w3, "OpenToken").functions.approve(staking.address, amount))
    await operator.send(staking.functions.stake(AGENT, amount))
    await operator.send(staking.functions.registerAgent(signer.address, b"\x01" * 32, PRICE, "http://agent"))
    assert await staking.functions.isActiveAgent(operator.address).call()
    assert await staking.functions.operatorOfSigner(signer.address).call() == operator.address

    await operator.send(staking.functions.requestUnstake(AGENT, amount))
    assert not await staking.functions.isActiveAgent(operator.address).call()
    assert await staking.functions.slashableStake(operator.address, AGENT).call() == amount

    with pytest.raises(ContractRevertedError) as early:
        await operator.send(staking.functions.withdraw(AGENT))
    assert early.value.error is not None
    assert early.value.error.name == "StakingNothingToWithdraw"
    assert early.value.error.args["operator"] == operator.address

    await advance_time(w3, deployment.parameters.unbonding_period)
    await operator.send(staking.functions.withdraw(AGENT))
    assert await balance(w3, deployment, operator.address) == before
    assert await staking.functions.slashableStake(operator.address, AGENT).call() == 0


async def test_channel_open_vouchers_claim_and_payer_withdraws(
    w3: AsyncWeb3[Any], deployment: Deployment, funded: list[Transactor], keys: list[LocalAccount]
) -> None:
    agent, payer, payer_key = funded[1], funded[2], keys[3]
    token = deployment.contract(w3, "OpenToken")
    channels = deployment.contract(w3, "PaymentChannels")
    deposit = to_wei_open(1)
    payer_before = await balance(w3, deployment, payer.address)
    agent_before = await balance(w3, deployment, agent.address)

    salt = secrets.token_bytes(32)
    await payer.send(token.functions.approve(channels.address, deposit))
    await payer.send(channels.functions.open(agent.address, deposit, salt))
    channel_id = await channels.functions.channelIdOf(payer.address, agent.address, salt).call()

    domain = Domain("PaymentChannels", "1", deployment.chain_id, channels.address)
    vouchers = [Voucher(channel_id=channel_id, cumulative_amount=PRICE * n) for n in range(1, 4)]
    for voucher in vouchers:  # Python's digest is the contract's
        on_chain = await channels.functions.voucherDigest((voucher.channel_id, voucher.cumulative_amount)).call()
        assert bytes(on_chain) == digest(domain, voucher)
    signatures = [sign(payer_key, domain, voucher) for voucher in vouchers]

    await agent.send(channels.functions.claim([(channel_id, PRICE * 3)], [signatures[2]]))
    with pytest.raises(ContractRevertedError) as stale:  # an older voucher is worth nothing any more
        await agent.send(channels.functions.claim([(channel_id, PRICE)], [signatures[0]]))
    assert stale.value.error is not None
    assert stale.value.error.name == "PaymentChannelsStaleVoucher"

    await payer.send(channels.functions.initiateWithdraw(channel_id))
    with pytest.raises(ContractRevertedError) as locked:
        await payer.send(channels.functions.withdraw(channel_id))
    assert locked.value.error is not None
    assert locked.value.error.name == "PaymentChannelsWithdrawalLocked"

    await advance_time(w3, deployment.parameters.withdraw_delay)
    await payer.send(channels.functions.withdraw(channel_id))
    assert await balance(w3, deployment, payer.address) == payer_before - PRICE * 3
    assert await balance(w3, deployment, agent.address) == agent_before + PRICE * 3


async def test_voucher_signed_for_another_chain_is_rejected(
    w3: AsyncWeb3[Any], deployment: Deployment, funded: list[Transactor], keys: list[LocalAccount]
) -> None:
    agent, payer, payer_key = funded[1], funded[2], keys[3]
    channels = deployment.contract(w3, "PaymentChannels")
    salt = secrets.token_bytes(32)
    await payer.send(deployment.contract(w3, "OpenToken").functions.approve(channels.address, PRICE))
    await payer.send(channels.functions.open(agent.address, PRICE, salt))
    channel_id = await channels.functions.channelIdOf(payer.address, agent.address, salt).call()

    foreign = Domain("PaymentChannels", "1", deployment.chain_id + 1, channels.address)
    signature = sign(payer_key, foreign, Voucher(channel_id=channel_id, cumulative_amount=PRICE))
    with pytest.raises(ContractRevertedError) as caught:
        await agent.send(channels.functions.claim([(channel_id, PRICE)], [signature]))
    assert caught.value.error is not None
    assert caught.value.error.name == "PaymentChannelsInvalidSignature"


async def test_python_signed_transfer_with_authorization_settles_once(
    w3: AsyncWeb3[Any], deployment: Deployment, funded: list[Transactor], keys: list[LocalAccount]
) -> None:
    agent, payer_key = funded[1], keys[4]
    token = deployment.contract(w3, "OpenToken")
    now = int((await w3.eth.get_block("latest"))["timestamp"])
    authorization = TransferWithAuthorization(
        from_=payer_key.address,
        to=agent.address,
        value=PRICE,
        valid_after=now - 1,
        valid_before=now + 300,
        nonce=secrets.token_bytes(32),
    )
    signature = sign(payer_key, Domain("Open", "1", deployment.chain_id, token.address), authorization)
    call = token.functions.transferWithAuthorization(*authorization.as_tuple(), signature)
    before = await balance(w3, deployment, agent.address)
    await agent.send(call)
    assert await balance(w3, deployment, agent.address) == before + PRICE
    assert await token.functions.authorizationState(payer_key.address, authorization.nonce).call()

    with pytest.raises(ContractRevertedError) as replay:
        await agent.send(call)
    assert replay.value.error is not None
    assert replay.value.error.name == "ERC3009AuthorizationUsedOrCanceled"


async def test_python_signed_permit_sets_the_allowance(
    w3: AsyncWeb3[Any], deployment: Deployment, funded: list[Transactor], keys: list[LocalAccount]
) -> None:
    relayer, owner = funded[1], keys[5]
    token = deployment.contract(w3, "OpenToken")
    now = int((await w3.eth.get_block("latest"))["timestamp"])
    permit = Permit(
        owner=owner.address,
        spender=relayer.address,
        value=PRICE,
        nonce=await token.functions.nonces(owner.address).call(),
        deadline=now + 300,
    )
    signature = sign(owner, Domain("Open", "1", deployment.chain_id, token.address), permit)
    r, s, v = signature[:32], signature[32:64], signature[64]
    await relayer.send(token.functions.permit(owner.address, relayer.address, PRICE, permit.deadline, v, r, s))
    assert await token.functions.allowance(owner.address, relayer.address).call() == PRICE


async def test_connect_refuses_a_chain_of_another_id(chain: Any) -> None:
    with pytest.raises(WrongChainError) as caught:
        await connect(chain.url, expected_chain_id=1)
    assert (caught.value.expected, caught.value.actual) == (1, 31337)


async def test_connect_to_a_dead_endpoint_fails_clearly() -> None:
    with pytest.raises(ChainUnavailableError) as caught:
        await connect("http://127.0.0.1:9")  # the discard port: nothing listens
    assert "127.0.0.1:9" in str(caught.value)
