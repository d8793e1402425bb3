"""Receipts signed in Python are what the contracts hash and verify: digests, leaves, and an equivocation proof."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from web3 import AsyncWeb3

from staking import (
    ContractRevertedError,
    Deployment,
    Domain,
    Receipt,
    Transactor,
    digest,
    sign,
    struct_hash,
)

pytestmark = pytest.mark.chain

AGENT = 0


def random_receipt(agent: str, payer: str, *, request_id: bytes | None = None) -> Receipt:
    return Receipt(
        agent=agent,
        request_id=request_id or secrets.token_bytes(32),
        request_hash=secrets.token_bytes(32),
        output_hash=secrets.token_bytes(32),
        model_id=secrets.token_bytes(32),
        engine_hash=secrets.token_bytes(32),
        attribution_hash=secrets.token_bytes(32),
        payer=payer,
        price=secrets.randbelow(2**96),
        epoch=secrets.randbelow(2**64),
        seq=secrets.randbelow(2**64),
    )


def registry_domain(deployment: Deployment) -> Domain:
    return Domain("ReceiptRegistry", "1", deployment.chain_id, deployment.contracts.receipt_registry)


async def test_python_hashes_a_receipt_exactly_as_the_registry(
    w3: AsyncWeb3[Any], deployment: Deployment, keys: list[LocalAccount]
) -> None:
    registry = deployment.contract(w3, "ReceiptRegistry")
    domain = registry_domain(deployment)
    for _ in range(5):
        receipt = random_receipt(keys[1].address, keys[2].address)
        fields = receipt.as_tuple()
        assert bytes(await registry.functions.receiptStructHash(fields).call()) == struct_hash(domain, receipt)
        assert bytes(await registry.functions.receiptDigest(fields).call()) == digest(domain, receipt)
        assert bytes(await registry.functions.receiptLeaf(fields).call()) == receipt.leaf(domain)


async def test_two_answers_signed_for_one_request_slash_the_agent_at_once(
    w3: AsyncWeb3[Any], deployment: Deployment, deployer: Transactor, keys: list[LocalAccount]
) -> None:
    token = deployment.contract(w3, "OpenToken")
    staking = deployment.contract(w3, "AgentStaking")
    disputes = deployment.contract(w3, "DisputeManager")
    operator, signer, prover = Transactor(w3, keys[1]), keys[2], Transactor(w3, keys[3])
    stake = deployment.parameters.min_agent_stake
    await deployer.send(token.functions.transfer(operator.address, stake))
    await operator.send(token.functions.approve(staking.address, stake))
    await operator.send(staking.functions.stake(AGENT, stake))
    await operator.send(staking.functions.registerAgent(signer.address, b"\x01" * 32, 10**16, "http://agent"))

    domain = registry_domain(deployment)
    first = random_receipt(operator.address, keys[4].address)
    second = random_receipt(operator.address, keys[4].address, request_id=first.request_id)
    proof = disputes.functions.proveEquivocation(
        first.as_tuple(), sign(signer, domain, first), second.as_tuple(), sign(signer, domain, second)
    )
    prover_before = await token.functions.balanceOf(prover.address).call()
    await prover.send(proof)

    slashed = stake * deployment.parameters.disputes.equivocation_slash_bps // 10_000
    reward = slashed * deployment.parameters.disputes.prover_reward_bps // 10_000
    assert await staking.functions.activeStake(operator.address, AGENT).call() == stake - slashed
    assert await token.functions.balanceOf(prover.address).call() == prover_before + reward

    with pytest.raises(ContractRevertedError) as again:  # one fault, one slash
        await prover.send(proof)
    assert again.value.error is not None
    assert again.value.error.name == "DisputeManagerAlreadyDisputed"


async def test_a_receipt_signed_by_a_key_not_bound_to_the_agent_proves_nothing(
    w3: AsyncWeb3[Any], deployment: Deployment, keys: list[LocalAccount]
) -> None:
    disputes = deployment.contract(w3, "DisputeManager")
    domain = registry_domain(deployment)
    impostor = keys[5]
    first = random_receipt(keys[1].address, keys[4].address)
    second = random_receipt(keys[1].address, keys[4].address, request_id=first.request_id)
    with pytest.raises(ContractRevertedError) as caught:
        await Transactor(w3, keys[3]).send(
            disputes.functions.proveEquivocation(
                first.as_tuple(), sign(impostor, domain, first), second.as_tuple(), sign(impostor, domain, second)
            )
        )
    assert caught.value.error is not None
    assert caught.value.error.name == "DisputeManagerInvalidSigner"
    assert caught.value.error.args["signer"] == impostor.address
