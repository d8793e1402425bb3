"""``staked demo``: the protocol's story on a throw-away anvil chain.

Today it covers the core contracts: an agent and a validator stake, a payer pays the agent through a channel
(vouchers, one batched claim) and once through an EIP-3009 authorization (the x402 ``exact`` scheme), and both
leave again after their delays. Later parts of the system (inference, receipts, audits) extend this story.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import AsyncWeb3
from web3.contract.async_contract import AsyncContract
from web3.types import TxReceipt

from staking import (
    Anvil,
    Deployment,
    DeploymentConfig,
    Domain,
    Transactor,
    TransferWithAuthorization,
    Voucher,
    advance_time,
    connect,
    deploy,
    dev_accounts,
    format_open,
    sign,
    to_wei_open,
)

__all__ = ["run_demo"]

_AGENT, _VALIDATOR = 0, 1  # IAgentStaking.Role
_PRICE = to_wei_open("0.01")
_REQUESTS = 5


async def run_demo(echo: Callable[[str], Any] | None = None) -> dict[str, Any]:
    """Runs the story and returns its report (deployment, gas per step, balances).

    Args:
        echo: where to narrate each step; ``None`` stays quiet.
    """
    say = echo or (lambda _: None)
    gas: dict[str, int] = {}

    def record(step: str, receipt: TxReceipt) -> None:
        gas[step] = int(receipt["gasUsed"])
        say(f"  {step:<34} gas {gas[step]:>9,}")

    async with Anvil(accounts=5) as chain:
        w3 = await connect(chain.url)
        deployer_key, operator_key, signer_key, validator_key, payer_key = dev_accounts(5)
        deployer = Transactor(w3, deployer_key)
        say(f"anvil on {chain.url}; deploying the contracts")
        deployment = await deploy(deployer, DeploymentConfig())
        for name, address in deployment.contracts.model_dump().items():
            say(f"  {name:<18} {address}")
        token = deployment.contract(w3, "OpenToken")
        staking = deployment.contract(w3, "AgentStaking")
        channels = deployment.contract(w3, "PaymentChannels")
        params = deployment.parameters

        operator, validator, payer = (Transactor(w3, k) for k in (operator_key, validator_key, payer_key))
        for account in (operator, validator, payer):
            await deployer.send(token.functions.transfer(account.address, to_wei_open(10_000)))

        say("agent and validator stake")
        await operator.send(token.functions.approve(staking.address, params.min_agent_stake))
        record("stake (agent)", await operator.send(staking.functions.stake(_AGENT, params.min_agent_stake)))
        record(
            "registerAgent",
            await operator.send(
                staking.functions.registerAgent(signer_key.address, b"\x00" * 32, _PRICE, "http://127.0.0.1:8000")
            ),
        )
        await validator.send(token.functions.approve(staking.address, params.min_validator_stake))
        record(
            "stake (validator)",
            await validator.send(staking.functions.stake(_VALIDATOR, params.min_validator_stake)),
        )

        say(f"payer opens a channel and pays {_REQUESTS} requests with vouchers")
        deposit = to_wei_open(1)
        await payer.send(token.functions.approve(channels.address, deposit))
        salt = secrets.token_bytes(32)
        record("open channel", await payer.send(channels.functions.open(operator.address, deposit, salt)))
        channel_id = await channels.functions.channelIdOf(payer.address, operator.address, salt).call()
        domain = Domain("PaymentChannels", "1", deployment.chain_id, channels.address)
        latest = Voucher(channel_id=channel_id, cumulative_amount=0)
        signature = b""
        for _ in range(_REQUESTS):  # the agent keeps only the newest voucher of a channel
            latest = Voucher(channel_id=channel_id, cumulative_amount=latest.cumulative_amount + _PRICE)
            signature = sign(payer_key, domain, latest)
        record(
            "claim (1 voucher)",
            await operator.send(channels.functions.claim([(channel_id, latest.cumulative_amount)], [signature])),
        )

        say("payer pays one request with an EIP-3009 authorization (x402 `exact`)")
        record("transferWithAuthorization", await _pay_exact(w3, deployment, token, payer_key, operator))

        say("agent unstakes, waits out the unbonding period and withdraws; payer leaves its channel")
        record(
            "requestUnstake",
            await operator.send(staking.functions.requestUnstake(_AGENT, params.min_agent_stake)),
        )
        record("initiateWithdraw", await payer.send(channels.functions.initiateWithdraw(channel_id)))
        await advance_time(w3, max(params.unbonding_period, params.withdraw_delay))
        record("withdraw (stake)", await operator.send(staking.functions.withdraw(_AGENT)))
        record("withdraw (channel)", await payer.send(channels.functions.withdraw(channel_id)))

        balances = {
            role: int(await token.functions.balanceOf(account.address).call())
            for role, account in (("agent", operator), ("validator", validator), ("payer", payer))
        }
        say("balances: " + ", ".join(f"{role} {format_open(wei)} OPEN" for role, wei in balances.items()))
        return {
            "chain_id": deployment.chain_id,
            "contracts": deployment.contracts.model_dump(),
            "gas": gas,
            "balances_wei": balances,
            "paid_by_channel_wei": latest.cumulative_amount,
        }


async def _pay_exact(
    w3: AsyncWeb3[Any], deployment: Deployment, token: AsyncContract, payer: LocalAccount, agent: Transactor
) -> TxReceipt:
    """The agent settles a payer's signed EIP-3009 authorization for one request."""
    now = int((await w3.eth.get_block("latest"))["timestamp"])
    authorization = TransferWithAuthorization(
        payer.address, agent.address, _PRICE, now - 1, now + 600, secrets.token_bytes(32)
    )
    signature = sign(payer, Domain("Open", "1", deployment.chain_id, token.address), authorization)
    return await agent.send(token.functions.transferWithAuthorization(*authorization.as_tuple(), signature))
