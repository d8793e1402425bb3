"""The transaction layer against anvil: nonces under concurrency, confirmations, reverts, a dead endpoint."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3 import AsyncWeb3

from staking import ContractRevertedError, Deployment, TransactionTimeoutError, Transactor, to_wei_open

pytestmark = pytest.mark.chain


async def test_fifty_concurrent_sends_from_one_account_all_land(
    w3: AsyncWeb3[Any], deployment: Deployment, deployer: Transactor, keys: list[LocalAccount]
) -> None:
    token = deployment.contract(w3, "OpenToken")
    recipient = keys[6].address
    before = await token.functions.balanceOf(recipient).call()
    receipts = await asyncio.gather(*(deployer.send(token.functions.transfer(recipient, 1)) for _ in range(50)))
    assert all(receipt["status"] == 1 for receipt in receipts)
    nonces = sorted([(await w3.eth.get_transaction(r["transactionHash"]))["nonce"] for r in receipts])
    assert nonces == list(range(nonces[0], nonces[0] + 50))
    assert await token.functions.balanceOf(recipient).call() == before + 50


async def test_a_failed_send_does_not_burn_a_nonce(
    w3: AsyncWeb3[Any], deployment: Deployment, deployer: Transactor, keys: list[LocalAccount]
) -> None:
    token = deployment.contract(w3, "OpenToken")
    poor = Transactor(w3, keys[7])  # has ETH for gas, no OPEN
    with pytest.raises(ContractRevertedError) as caught:
        await poor.send(token.functions.transfer(keys[6].address, to_wei_open(1)))
    assert caught.value.error is not None
    assert caught.value.error.name == "ERC20InsufficientBalance"
    assert caught.value.tx_hash is None  # refused at estimation: nothing was sent
    nonce = await w3.eth.get_transaction_count(poor.address)
    await deployer.send(token.functions.transfer(poor.address, to_wei_open(1)))
    receipt = await poor.send(token.functions.transfer(keys[6].address, to_wei_open(1)))
    assert (await w3.eth.get_transaction(receipt["transactionHash"]))["nonce"] == nonce


async def test_waits_for_the_configured_confirmations(
    w3: AsyncWeb3[Any], deployment: Deployment, keys: list[LocalAccount]
) -> None:
    token = deployment.contract(w3, "OpenToken")
    confirming = Transactor(w3, keys[5], confirmations=3)

    async def mine_slowly() -> None:
        for _ in range(3):
            await asyncio.sleep(0.2)
            await w3.provider.make_request("evm_mine", [])

    miner = asyncio.create_task(mine_slowly())
    receipt = await confirming.send(token.functions.approve(keys[6].address, 1))
    assert await w3.eth.block_number >= receipt["blockNumber"] + 3
    await miner


async def test_confirmations_on_a_chain_that_mines_no_blocks_time_out_with_a_clear_error(
    w3: AsyncWeb3[Any], deployment: Deployment, keys: list[LocalAccount]
) -> None:
    token = deployment.contract(w3, "OpenToken")
    confirming = Transactor(w3, keys[5], confirmations=2, receipt_timeout=0.5)
    with pytest.raises(TransactionTimeoutError, match=r"included but not confirmed by 2 blocks after 0\.5 s"):
        await confirming.send(token.functions.approve(keys[6].address, 2))


async def test_a_reorg_during_confirmations_yields_the_receipt_of_the_block_that_stayed(
    w3: AsyncWeb3[Any], deployment: Deployment, keys: list[LocalAccount]
) -> None:
    token = deployment.contract(w3, "OpenToken")
    confirming = Transactor(w3, keys[5], confirmations=2, poll_interval=0.02)
    start = await w3.eth.block_number
    sent = asyncio.create_task(confirming.send(token.functions.approve(keys[6].address, 3)))
    while await w3.eth.block_number == start:  # noqa: ASYNC110 - polling is how a client learns of blocks
        await asyncio.sleep(0.02)
    block = await w3.eth.get_block("latest")
    (tx_hash,) = block["transactions"]
    raw = (await w3.provider.make_request("eth_getRawTransactionByHash", [HexBytes(tx_hash).to_0x_hex()]))["result"]
    # The block holding it is replaced by one of another hash that holds it too (a one-block reorg).
    await w3.provider.make_request("anvil_reorg", [1, [[raw, 0]]])
    for _ in range(2):
        await w3.provider.make_request("evm_mine", [])
    receipt = await sent
    assert receipt["blockNumber"] == block["number"]
    assert receipt["blockHash"] != block["hash"]
    assert receipt["blockHash"] == (await w3.eth.get_block(block["number"]))["hash"]
