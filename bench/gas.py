"""Gas of the core contracts on anvil, against the baseline of one EIP-3009 transfer per paid request.

Run: ``python -m bench.gas`` (or ``python -m bench --only gas`` for the report files). Figures are gas units from
transaction receipts; they do not depend on the machine.
"""

from __future__ import annotations

import secrets
from typing import Any

from bench.report import BarChart, Baseline, Better, Figure, Headline, Section, Table
from bench.runner import run_alone
from staking import (
    Anvil,
    Domain,
    Transactor,
    TransferWithAuthorization,
    Voucher,
    advance_time,
    connect,
    deploy,
    dev_accounts,
    sign,
    to_wei_open,
)

SUITE = "gas"
AGENT = 0
PRICE = to_wei_open("0.01")
BATCH = 100
EPOCH_REQUESTS = 1_000


async def measure() -> dict[str, int]:
    """Runs each action once on a fresh chain and returns the gas it used."""
    gas: dict[str, int] = {}
    async with Anvil(accounts=4) as chain:
        w3 = await connect(chain.url)
        deployer_key, agent_key, payer_key, signer_key = dev_accounts(4)
        deployer, agent, payer = (Transactor(w3, key) for key in (deployer_key, agent_key, payer_key))
        deployment = await deploy(deployer)
        for name in (
            "OpenToken",
            "AgentStaking",
            "PaymentChannels",
            "ReceiptRegistry",
            "DisputeManager",
            "DatanetRegistry",
        ):
            address = deployment.contract(w3, name).address
            creation = await _creation_gas(w3, deployer.address, address, deployment.block)
            gas[f"deploy {name}"] = creation
        token = deployment.contract(w3, "OpenToken")
        staking = deployment.contract(w3, "AgentStaking")
        channels = deployment.contract(w3, "PaymentChannels")
        for account in (agent, payer):
            await deployer.send(token.functions.transfer(account.address, to_wei_open(100_000)))

        stake = deployment.parameters.min_agent_stake
        await agent.send(token.functions.approve(staking.address, 2**256 - 1))
        gas["stake"] = (await agent.send(staking.functions.stake(AGENT, stake)))["gasUsed"]
        gas["requestUnstake"] = (await agent.send(staking.functions.requestUnstake(AGENT, stake)))["gasUsed"]
        await advance_time(w3, deployment.parameters.unbonding_period)
        gas["withdraw"] = (await agent.send(staking.functions.withdraw(AGENT)))["gasUsed"]

        await payer.send(token.functions.approve(channels.address, 2**256 - 1))
        domain = Domain("PaymentChannels", "1", deployment.chain_id, channels.address)
        vouchers, signatures = [], []
        for index in range(BATCH + 1):
            salt = secrets.token_bytes(32)
            receipt = await payer.send(channels.functions.open(agent.address, to_wei_open(1), salt))
            if index == 0:
                gas["open channel"] = receipt["gasUsed"]
            channel_id = await channels.functions.channelIdOf(payer.address, agent.address, salt).call()
            vouchers.append((channel_id, PRICE))
            signatures.append(sign(payer_key, domain, Voucher(channel_id=channel_id, cumulative_amount=PRICE)))
        gas["claim 1 voucher"] = (await agent.send(channels.functions.claim(vouchers[:1], signatures[:1])))["gasUsed"]
        batch = await agent.send(channels.functions.claim(vouchers[1:], signatures[1:]))
        gas[f"claim {BATCH} vouchers"] = batch["gasUsed"]

        now = int((await w3.eth.get_block("latest"))["timestamp"])
        authorization = TransferWithAuthorization(
            payer.address, agent.address, PRICE, now - 1, now + 600, secrets.token_bytes(32)
        )
        signature = sign(payer_key, Domain("Open", "1", deployment.chain_id, token.address), authorization)
        call = token.functions.transferWithAuthorization(*authorization.as_tuple(), signature)
        gas["transferWithAuthorization"] = (await agent.send(call))["gasUsed"]

        # An epoch of EPOCH_REQUESTS paid requests: the agent commits it, funding the contributors' share, and a
        # contributor claims after the challenge window. The roots' content does not change the gas.
        registry = deployment.contract(w3, "ReceiptRegistry")
        await agent.send(staking.functions.stake(AGENT, stake))
        await agent.send(staking.functions.registerAgent(signer_key.address, b"\x01" * 32, PRICE, "http://agent"))
        fees = EPOCH_REQUESTS * PRICE
        rewards = fees * deployment.parameters.attribution_bps // 10_000
        contributor = deployer.address
        rewards_root = await registry.functions.rewardLeaf(contributor, rewards).call()  # a one-leaf tree
        await agent.send(token.functions.approve(registry.address, rewards))
        commit = registry.functions.commitEpoch(1, b"\x02" * 32, EPOCH_REQUESTS, fees, rewards_root, rewards)
        gas["commitEpoch"] = (await agent.send(commit))["gasUsed"]
        await advance_time(w3, deployment.parameters.disputes.challenge_window + 1)
        claim = registry.functions.claimReward(agent.address, 1, contributor, rewards, [])
        gas["claimReward"] = (await deployer.send(claim))["gasUsed"]
    return {name: int(used) for name, used in gas.items()}


async def _creation_gas(w3: Any, deployer: str, address: str, from_block: int) -> int:
    """Gas of the transaction that created ``address``."""
    latest = await w3.eth.block_number
    for number in range(from_block, latest + 1):
        block = await w3.eth.get_block(number, full_transactions=True)
        for tx in block["transactions"]:
            receipt = await w3.eth.get_transaction_receipt(tx["hash"])
            if receipt["contractAddress"] == address:
                return int(receipt["gasUsed"])
    raise LookupError(f"no creation transaction for {address}")


async def main() -> Section:
    gas = await measure()
    baseline = Baseline(name="one EIP-3009 transfer per request (x402 exact)", value=gas["transferWithAuthorization"])
    per_voucher = gas[f"claim {BATCH} vouchers"] / BATCH
    figures = [
        Figure(
            name=f"gas per paid request, channel vouchers claimed {BATCH} per transaction",
            value=per_voucher,
            unit="gas",
            baseline=baseline,
            better=Better.LOWER,
            headline=Headline.GAS,
        ),
        Figure(
            name=f"gas per request, epoch of {EPOCH_REQUESTS:,} requests from one payer (one claim + one commit)",
            value=(gas["claim 1 voucher"] + gas["commitEpoch"]) / EPOCH_REQUESTS,
            unit="gas",
            baseline=baseline,
            better=Better.LOWER,
        ),
        Figure(
            name=f"gas per request, epoch of {EPOCH_REQUESTS:,} requests from {EPOCH_REQUESTS:,} payers "
            "(batched claims + commit)",
            value=per_voucher + gas["commitEpoch"] / EPOCH_REQUESTS,
            unit="gas",
            baseline=baseline,
            better=Better.LOWER,
        ),
    ]
    return Section(
        suite=SUITE,
        title="Gas per contract action and per paid request",
        description=(
            "Each contract action runs once on a fresh anvil with the deployed suite and its gas is read from the "
            f"transaction receipt (machine-independent). A paid request settled through a payment channel costs "
            f"its share of a claim of {BATCH} vouchers, and an epoch adds its share of one commitEpoch; the baseline "
            "is x402's exact scheme, one EIP-3009 transferWithAuthorization per request, measured on the same chain."
        ),
        figures=figures,
        tables=[Table(title="Gas per action", columns=("action", "gas"), rows=list(gas.items()))],
        charts=[BarChart.of("per-request", "Gas per paid request", figures, log=True)],
    )


if __name__ == "__main__":
    run_alone(SUITE, main)
