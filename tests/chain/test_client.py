"""StakingClient against anvil: every contract action a user or a daemon needs, end to end."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import AsyncWeb3

from staking import (
    ChainError,
    ChainSettings,
    ChannelState,
    ContractRevertedError,
    Deployment,
    DisputeKind,
    DisputeState,
    EpochStatus,
    MerkleTree,
    Receipt,
    Role,
    StakingClient,
    Transactor,
    Voucher,
    WrongChainError,
    advance_time,
    sign,
    to_wei_open,
)
from staking.merkle import reward_leaf

pytestmark = pytest.mark.chain

PRICE = to_wei_open("0.01")


@pytest.fixture(scope="module")
async def clients(
    w3: AsyncWeb3[Any], deployment: Deployment, deployer: Transactor, keys: list[LocalAccount]
) -> list[StakingClient]:
    """A client per development account; all but the deployer get 10,000 OPEN."""
    token = deployment.contract(w3, "OpenToken")
    for key in keys[1:]:
        await deployer.send(token.functions.transfer(key.address, to_wei_open(10_000)))
    return [StakingClient(w3, deployment, key) for key in keys]


def receipt_for(agent: str, payer: str, epoch: int, seq: int) -> Receipt:
    return Receipt(
        agent=agent,
        request_id=secrets.token_bytes(32),
        request_hash=secrets.token_bytes(32),
        output_hash=secrets.token_bytes(32),
        model_id=b"\x01" * 32,
        engine_hash=secrets.token_bytes(32),
        attribution_hash=secrets.token_bytes(32),
        payer=payer,
        price=PRICE,
        epoch=epoch,
        seq=seq,
    )


async def test_token_transfer_approve_and_permit(clients: list[StakingClient], keys: list[LocalAccount]) -> None:
    alice, bob = clients[1], clients[2]
    before = await alice.balance_of(bob.address)
    await alice.transfer(bob.address, PRICE)
    assert await alice.balance_of(bob.address) == before + PRICE
    deadline = 2**40
    signature = await alice.sign_permit(keys[1], bob.address, 5 * PRICE, deadline)
    await bob.permit(alice.address, bob.address, 5 * PRICE, deadline, signature)
    assert await bob.allowance(alice.address, bob.address) == 5 * PRICE

    now = int((await alice.w3.eth.get_block("latest"))["timestamp"])
    authorization, signed = alice.sign_transfer_authorization(bob.address, PRICE, valid_after=0, valid_before=now + 60)
    before = await bob.balance_of(bob.address)
    await bob.transfer_with_authorization(authorization, signed)  # the payee settles the payer's x402 payment
    assert await bob.balance_of(bob.address) == before + PRICE
    with pytest.raises(ContractRevertedError) as replay:
        await bob.transfer_with_authorization(authorization, signed)
    assert replay.value.error is not None
    assert replay.value.error.name == "ERC3009AuthorizationUsedOrCanceled"


async def test_stake_register_update_unstake_withdraw(
    w3: AsyncWeb3[Any], deployment: Deployment, clients: list[StakingClient], keys: list[LocalAccount]
) -> None:
    validator = clients[6]
    amount = deployment.parameters.min_validator_stake
    await validator.stake(Role.VALIDATOR, amount)  # approves by itself
    info = await validator.stake_info(validator.address, Role.VALIDATOR)
    assert (info.active, info.unbonding, info.slashable) == (amount, 0, amount)

    await validator.request_unstake(Role.VALIDATOR, amount)
    info = await validator.stake_info(validator.address, Role.VALIDATOR)
    assert (info.active, info.unbonding, len(info.entries)) == (0, amount, 1)
    await advance_time(w3, deployment.parameters.unbonding_period)
    assert await validator.withdraw_stake(Role.VALIDATOR) == amount

    agent = clients[7]
    await agent.register_agent(keys[5].address, b"\x02" * 32, PRICE, "http://a")
    await agent.update_agent(keys[4].address, b"\x03" * 32, 2 * PRICE, "http://b")
    registered = await agent.agent_info(agent.address)
    assert (registered.signer, registered.price, registered.endpoint, registered.active) == (
        keys[4].address, 2 * PRICE, "http://b", False,
    )  # fmt: skip
    assert await agent.operator_of_signer(keys[5].address) == agent.address  # rotated out, still bound


async def test_channel_lifecycle(w3: AsyncWeb3[Any], deployment: Deployment, clients: list[StakingClient]) -> None:
    payer, agent = clients[3], clients[2]
    channel_id = await payer.open_channel(agent.address, to_wei_open(1))
    await payer.top_up(channel_id, to_wei_open(1))
    vouchers = [(Voucher(channel_id, PRICE * 7), payer.sign_voucher(channel_id, PRICE * 7))]
    assert await agent.claim_vouchers(vouchers) == PRICE * 7
    await payer.initiate_channel_withdraw(channel_id)
    assert (await payer.channel(channel_id)).state is ChannelState.CLOSING
    await advance_time(w3, deployment.parameters.withdraw_delay)
    assert await payer.withdraw_channel(channel_id) == to_wei_open(2) - PRICE * 7
    closed = await payer.channel(channel_id)
    assert (closed.state, closed.claimed, closed.remaining) == (
        ChannelState.CLOSED,
        PRICE * 7,
        to_wei_open(2) - PRICE * 7,
    )


async def test_epoch_commit_inclusion_challenge_voted_challenge_and_rewards(
    w3: AsyncWeb3[Any], deployment: Deployment, clients: list[StakingClient], keys: list[LocalAccount]
) -> None:
    agent, signer, payer = clients[1], keys[2], clients[3]
    validator_a, validator_b = clients[4], clients[5]
    contributors = (keys[6].address, keys[7].address)
    params = deployment.parameters
    await agent.stake(Role.AGENT, params.min_agent_stake)
    await agent.register_agent(signer.address, b"\x01" * 32, PRICE, "http://agent")
    for validator in (validator_a, validator_b):
        await validator.stake(Role.VALIDATOR, params.min_validator_stake)

    domain = agent.receipt_domain()
    receipts = [receipt_for(agent.address, payer.address, 1, seq) for seq in range(3)]
    signatures = [sign(signer, domain, receipt) for receipt in receipts]
    receipts_tree = MerkleTree([receipt.leaf(domain) for receipt in receipts])
    fees = PRICE * len(receipts)
    rewards = {contributors[0]: fees // 10, contributors[1]: fees // 10}
    rewards_tree = MerkleTree([reward_leaf(c, a) for c, a in rewards.items()])
    await agent.commit_epoch(1, receipts_tree.root, 3, fees, rewards_tree.root, sum(rewards.values()))
    epoch = await agent.epoch(agent.address, 1)
    assert (epoch.status, epoch.receipt_count, epoch.fee_total) == (EpochStatus.COMMITTED, 3, fees)

    # Withholding challenge, answered with the Merkle proof: rejected, the bond goes to the agent.
    inclusion = await payer.challenge_inclusion(receipts[1], signatures[1])
    await agent.prove_inclusion(inclusion, receipts_tree.proof(1))
    assert (await agent.dispute(inclusion)).state is DisputeState.REJECTED

    # Output challenge by validator A; B upholds it; the challenger cannot vote on its own challenge.
    disputed = await validator_a.challenge(receipts[2], signatures[2], DisputeKind.OUTPUT, b"\x09" * 32)
    with pytest.raises(ContractRevertedError) as own_vote:
        await validator_a.vote(disputed, True)
    assert own_vote.value.error is not None
    assert own_vote.value.error.name == "DisputeManagerPartyCannotVote"
    await validator_b.vote(disputed, True)
    payer_before = await payer.balance_of(payer.address)
    stake_before = (await agent.stake_info(agent.address, Role.AGENT)).active
    await advance_time(w3, params.disputes.voting_period + 1)
    assert await validator_b.resolve(disputed) is DisputeState.UPHELD
    assert (await agent.stake_info(agent.address, Role.AGENT)).active == stake_before - (
        stake_before * params.disputes.output_slash_bps // 10_000
    )
    assert await payer.balance_of(payer.address) == payer_before + PRICE  # refunded its price
    assert await agent.dispute_count() >= 2

    # After the challenge window, with no dispute open, anyone claims for the contributors in one call.
    await advance_time(w3, params.disputes.challenge_window)
    claims = [(agent.address, 1, amount, rewards_tree.proof(i)) for i, amount in enumerate(rewards.values())]
    before = await payer.balance_of(contributors[0])
    assert await payer.claim_rewards(contributors[0], claims[:1]) == rewards[contributors[0]]
    assert await payer.balance_of(contributors[0]) == before + rewards[contributors[0]]
    await payer.claim_reward(agent.address, 1, contributors[1], rewards[contributors[1]], claims[1][3])
    with pytest.raises(ContractRevertedError):  # never twice
        await payer.claim_reward(agent.address, 1, contributors[1], rewards[contributors[1]], claims[1][3])


async def test_datanets_and_models(clients: list[StakingClient]) -> None:
    owner = clients[4]
    datanet_id = await owner.create_datanet("ipfs://datanet")
    hashes = [secrets.token_bytes(32) for _ in range(3)]
    contributors = [clients[5].address, clients[6].address, clients[5].address]
    await owner.add_contributions(datanet_id, hashes, contributors)
    datanet = await owner.datanet(datanet_id)
    assert (datanet.owner, datanet.contribution_count, datanet.metadata_uri) == (owner.address, 3, "ipfs://datanet")
    second = await owner.contribution(datanet_id, 1)
    assert (second.content_hash, second.contributor) == (hashes[1], clients[6].address)
    model_id = secrets.token_bytes(32)
    await owner.register_model(model_id, [datanet_id], b"\x07" * 32, "ipfs://model")
    model = await owner.model(model_id)
    assert (model.owner, model.datanet_ids, model.index_root) == (owner.address, (datanet_id,), b"\x07" * 32)


async def test_read_only_client_refuses_to_send(w3: AsyncWeb3[Any], deployment: Deployment) -> None:
    client = StakingClient(w3, deployment)
    assert await client.total_active_stake(Role.AGENT) >= 0
    with pytest.raises(ChainError, match="read-only"):
        await client.transfer(deployment.deployer, 1)


async def test_unfunded_account_gets_a_typed_error(w3: AsyncWeb3[Any], deployment: Deployment) -> None:
    poor = StakingClient(w3, deployment, Account.create())  # no ETH and no OPEN
    with pytest.raises(ContractRevertedError) as caught:
        await poor.transfer(deployment.deployer, 1)
    assert caught.value.error is not None
    assert caught.value.error.name == "ERC20InsufficientBalance"


async def test_from_settings_checks_the_deployment_chain(
    chain: Any, deployment: Deployment, keys: list[LocalAccount], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "deployment.json"
    deployment.save(path)
    monkeypatch.setenv("DEV_KEY", keys[3].key.hex())
    settings = ChainSettings(rpc_url=chain.url, deployment_file=path, private_key_env="DEV_KEY")
    client = await StakingClient.from_settings(settings)
    assert client.address == keys[3].address

    deployment.model_copy(update={"chain_id": 1}).save(path)
    with pytest.raises(WrongChainError):
        await StakingClient.from_settings(settings)
