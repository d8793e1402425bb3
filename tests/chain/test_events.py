"""Event streams on a real anvil chain: decoding, bounded batches, confirmations, restarts and reorgs.

Reorgs are made two ways: ``evm_snapshot``/``evm_revert`` then different transactions, and ``anvil_reorg``. Both
drop the orphaned transactions, so every test sends through fresh Transactors, whose nonces come from the node.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any, cast

import pytest
from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3 import AsyncWeb3
from web3.contract.async_contract import AsyncContract
from web3.datastructures import AttributeDict
from web3.types import FilterParams, LogReceipt

from staking import ConfigError, Deployment, Transactor, to_wei_open
from staking.events import (
    AckError,
    ChainEvent,
    EventStream,
    Reorg,
    ReorgTooDeepError,
    SqliteEventCursor,
    StreamItem,
)

pytestmark = pytest.mark.chain

AGENT = 0
PRICE = to_wei_open("0.01")
MODEL_ID = b"\x42" * 32
TIMEOUT = 10.0
POLL = 0.01


@pytest.fixture(scope="module")
async def funded(w3: AsyncWeb3[Any], keys: list[LocalAccount], deployer: Transactor, deployment: Deployment) -> None:
    """keys[1:] each hold 10,000 OPEN."""
    token = deployment.contract(w3, "OpenToken")
    for key in keys[1:]:
        await deployer.send(token.functions.transfer(key.address, to_wei_open(10_000)))


@pytest.fixture
def token(w3: AsyncWeb3[Any], deployment: Deployment, funded: None) -> AsyncContract:
    return deployment.contract(w3, "OpenToken")


async def rpc(w3: AsyncWeb3[Any], method: str, *params: Any) -> Any:
    return (await w3.provider.make_request(method, list(params)))["result"]


async def transfer(w3: AsyncWeb3[Any], key: LocalAccount, token: AsyncContract, to: LocalAccount, value: int) -> int:
    """Sends OPEN from a fresh Transactor (a reorg may have rolled its nonce back); returns the block number."""
    receipt = await Transactor(w3, key).send(token.functions.transfer(to.address, value))
    return int(receipt["blockNumber"])


async def take(stream: EventStream, count: int) -> list[StreamItem]:
    return [await asyncio.wait_for(anext(stream), TIMEOUT) for _ in range(count)]


def events(items: list[StreamItem]) -> list[ChainEvent]:
    assert all(isinstance(item, ChainEvent) for item in items), items
    return [item for item in items if isinstance(item, ChainEvent)]


def record(item: StreamItem) -> Callable[[sqlite3.Connection], None]:
    """A consumer's effects: remembers each event once; a repeat would break the primary key."""

    def effects(db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE IF NOT EXISTS seen (key TEXT PRIMARY KEY)")
        if isinstance(item, ChainEvent):
            db.execute("INSERT INTO seen VALUES (?)", (item.key,))
        else:
            db.executemany("DELETE FROM seen WHERE key = ?", [(event.key,) for event in item.removed])

    return effects


async def test_events_of_every_watched_contract_arrive_decoded(
    w3: AsyncWeb3[Any], deployment: Deployment, keys: list[LocalAccount], token: AsyncContract
) -> None:
    operator, signer, receiver = keys[1], keys[7], keys[2]
    staking = deployment.contract(w3, "AgentStaking")
    channels = deployment.contract(w3, "PaymentChannels")
    amount = deployment.parameters.min_agent_stake
    salt = b"\x07" * 32
    sender = Transactor(w3, operator)
    start = await w3.eth.block_number + 1
    await sender.send(token.functions.approve(staking.address, amount))
    staked = await sender.send(staking.functions.stake(AGENT, amount))
    await sender.send(staking.functions.registerAgent(signer.address, MODEL_ID, PRICE, "http://agent"))
    await sender.send(token.functions.approve(channels.address, PRICE))
    await sender.send(channels.functions.open(receiver.address, PRICE, salt))

    watched = {"OpenToken": token, "AgentStaking": staking, "PaymentChannels": channels}
    async with EventStream(w3, watched, from_block=start, follow=False) as stream:
        received = events([item async for item in stream])

    assert [(event.contract, event.event) for event in received] == [
        ("OpenToken", "Approval"),
        ("AgentStaking", "Staked"),  # the contracts emit before they call the token
        ("OpenToken", "Transfer"),
        ("AgentStaking", "AgentRegistered"),
        ("OpenToken", "Approval"),
        ("PaymentChannels", "ChannelOpened"),
        ("OpenToken", "Transfer"),
    ]
    stake = received[1]
    assert stake.args == {"operator": operator.address, "role": AGENT, "amount": amount, "activeStake": amount}
    assert stake.address == staking.address
    assert (stake.block_number, stake.block_hash) == (staked["blockNumber"], staked["blockHash"].to_0x_hex())
    assert stake.tx_hash == staked["transactionHash"].to_0x_hex()
    assert [event.log_index for event in received[1:3]] == [0, 1]
    registered = received[3].args
    assert type(registered["modelId"]) is bytes
    assert registered == {
        "operator": operator.address,
        "signer": signer.address,
        "modelId": MODEL_ID,
        "price": PRICE,
        "endpoint": "http://agent",
    }
    opened = received[5].args
    assert (opened["payer"], opened["receiver"], opened["salt"], opened["deposit"]) == (
        operator.address,
        receiver.address,
        salt,
        PRICE,
    )


async def test_long_ranges_are_read_in_bounded_batches_covering_every_address(
    w3: AsyncWeb3[Any],
    deployment: Deployment,
    keys: list[LocalAccount],
    token: AsyncContract,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    staking = deployment.contract(w3, "AgentStaking")
    start = await w3.eth.block_number + 1
    blocks = []
    for value in (1, 2, 3):
        blocks.append(await transfer(w3, keys[1], token, keys[2], value))
        await rpc(w3, "anvil_mine", 40)
    head = await w3.eth.block_number

    ranges: list[FilterParams] = []
    get_logs = w3.eth.get_logs

    async def counted(params: FilterParams) -> list[LogReceipt]:
        ranges.append(params)
        return await get_logs(params)

    monkeypatch.setattr(w3.eth, "get_logs", counted)
    watched = {"OpenToken": token, "AgentStaking": staking}
    # history=16: the first ranges are final (one header each), the last ones recent (every header checked).
    stream = EventStream(w3, watched, from_block=start, batch_blocks=7, history=16, follow=False)
    async with stream:
        received = events([item async for item in stream])

    assert [(event.args["value"], event.block_number) for event in received] == list(
        zip((1, 2, 3), blocks, strict=True)
    )
    spans = [(int(params["fromBlock"]), int(params["toBlock"])) for params in ranges]
    assert all(1 <= last - first + 1 <= 7 for first, last in spans)
    assert [first for first, _ in spans] == [start] + [last + 1 for _, last in spans[:-1]]
    assert spans[-1][1] == head
    assert all(set(params["address"]) == {token.address, staking.address} for params in ranges)


async def test_logs_read_while_the_chain_moved_are_read_again(
    w3: AsyncWeb3[Any], keys: list[LocalAccount], token: AsyncContract, monkeypatch: pytest.MonkeyPatch
) -> None:
    mined = await transfer(w3, keys[1], token, keys[2], 7)
    get_logs = w3.eth.get_logs
    reads = 0

    async def from_another_fork_first(params: FilterParams) -> list[LogReceipt]:
        """The first answer carries a block hash the headers do not, as when a reorg lands between two reads."""
        nonlocal reads
        reads += 1
        logs = await get_logs(params)
        if reads > 1:
            return logs
        return [cast(LogReceipt, AttributeDict({**log, "blockHash": HexBytes(b"\x13" * 32)})) for log in logs]

    monkeypatch.setattr(w3.eth, "get_logs", from_another_fork_first)
    async with EventStream(w3, {"OpenToken": token}, from_block=mined, poll_interval=POLL, follow=False) as stream:
        [event] = events([item async for item in stream])
    assert reads == 2
    assert event.block_hash == (await w3.eth.get_block(mined))["hash"].to_0x_hex()


async def test_confirmations_hold_events_back_until_enough_blocks_are_on_top(
    w3: AsyncWeb3[Any], keys: list[LocalAccount], token: AsyncContract
) -> None:
    start = await w3.eth.block_number + 1
    async with EventStream(w3, {"OpenToken": token}, from_block=start, confirmations=2, poll_interval=POLL) as stream:
        mined = await transfer(w3, keys[1], token, keys[2], 11)
        for _ in range(2):
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(anext(stream), 0.3)
            await rpc(w3, "evm_mine")
        [event] = events(await take(stream, 1))
        assert (event.args["value"], event.block_number) == (11, mined)
        assert await w3.eth.block_number == mined + 2


async def test_a_restarted_stream_neither_misses_nor_repeats_events(
    w3: AsyncWeb3[Any], deployment: Deployment, keys: list[LocalAccount], token: AsyncContract, tmp_path: Path
) -> None:
    channels = deployment.contract(w3, "PaymentChannels")
    payer = Transactor(w3, keys[3])
    start = await w3.eth.block_number + 1
    await transfer(w3, keys[3], token, keys[4], 1)
    await transfer(w3, keys[3], token, keys[4], 2)
    await payer.send(token.functions.approve(channels.address, PRICE))
    opened = await payer.send(channels.functions.open(keys[4].address, PRICE, b"\x01" * 32))
    watched = {"OpenToken": token, "PaymentChannels": channels}
    path = tmp_path / "daemon.sqlite"

    first_run = EventStream(w3, watched, from_block=start, cursor=SqliteEventCursor(path, "daemon"), follow=False)
    async with first_run:
        before = events(await take(first_run, 5))
        for event in before[:4]:  # the 4th is ChannelOpened: only part of its block is processed
            await first_run.ack(event, effects=record(event))
        # the daemon stops after processing the channel's Transfer but before acknowledging it
        assert first_run.position is not None
        assert (first_run.position.block_number, first_run.position.log_index) == (opened["blockNumber"], 0)
    assert [event.event for event in before[3:]] == ["ChannelOpened", "Transfer"]

    later = await transfer(w3, keys[3], token, keys[4], 3)
    second_run = EventStream(w3, watched, from_block=start, cursor=SqliteEventCursor(path, "daemon"), follow=False)
    async with second_run:
        after = events([item async for item in second_run])
        for event in after:
            await second_run.ack(event, effects=record(event))
        assert second_run.position is not None
        assert (second_run.position.block_number, second_run.position.log_index) == (later, None)

    assert after[0] == before[4]
    assert [(event.event, event.block_number) for event in after] == [
        ("Transfer", opened["blockNumber"]),
        ("Transfer", later),
    ]
    with closing(sqlite3.connect(path)) as db:
        seen = {key for (key,) in db.execute("SELECT key FROM seen")}
    assert seen == {event.key for event in before[:4] + after}


async def test_an_ack_commits_with_the_consumers_effects_or_not_at_all(
    w3: AsyncWeb3[Any], keys: list[LocalAccount], token: AsyncContract, tmp_path: Path
) -> None:
    def failing(db: sqlite3.Connection) -> None:
        raise RuntimeError("consumer failed")

    start = await w3.eth.block_number + 1
    await transfer(w3, keys[5], token, keys[6], 1)
    await transfer(w3, keys[5], token, keys[6], 2)
    cursor = SqliteEventCursor(tmp_path / "daemon.sqlite", "daemon")
    async with EventStream(w3, {"OpenToken": token}, from_block=start, cursor=cursor, follow=False) as stream:
        first, second = await take(stream, 2)
        with pytest.raises(RuntimeError, match="consumer failed"):
            await stream.ack(first, effects=failing)
        assert stream.position is None
        await stream.ack(second)  # acknowledges the first too
        with pytest.raises(AckError):
            await stream.ack(first)
        assert stream.acknowledged == 2
        assert "acknowledged=2" in repr(stream)


async def test_a_reorg_by_revert_is_reported_then_the_new_canonical_events_follow(
    w3: AsyncWeb3[Any], keys: list[LocalAccount], token: AsyncContract
) -> None:
    kept_block = await transfer(w3, keys[1], token, keys[2], 1)
    async with EventStream(w3, {"OpenToken": token}, from_block=kept_block, poll_interval=POLL) as stream:
        [kept] = await take(stream, 1)
        snapshot = await rpc(w3, "evm_snapshot")
        await transfer(w3, keys[1], token, keys[2], 2)
        await transfer(w3, keys[1], token, keys[2], 3)
        orphaned = await take(stream, 2)
        for item in [kept, *orphaned]:
            await stream.ack(item)

        assert await rpc(w3, "evm_revert", snapshot)
        replacement_block = await transfer(w3, keys[1], token, keys[3], 5)
        reorg, replacement = await take(stream, 2)

        assert isinstance(reorg, Reorg)
        assert (reorg.ancestor, reorg.depth, reorg.removed) == (kept_block, 2, tuple(orphaned))
        assert reorg.ancestor_hash == events([kept])[0].block_hash
        [new] = events([replacement])
        assert (new.args["to"], new.args["value"], new.block_number) == (keys[3].address, 5, replacement_block)
        assert new.block_hash != events(orphaned)[0].block_hash
        await stream.ack(new)
        assert stream.reorgs == 1
        assert stream.position is not None
        assert (stream.position.block_number, stream.position.block_hash) == (new.block_number, new.block_hash)


async def test_a_reorg_while_the_daemon_was_down_is_reported_from_the_cursor(
    w3: AsyncWeb3[Any], keys: list[LocalAccount], token: AsyncContract, tmp_path: Path
) -> None:
    path = tmp_path / "daemon.sqlite"
    start = await transfer(w3, keys[5], token, keys[6], 1)
    await transfer(w3, keys[5], token, keys[6], 2)
    await transfer(w3, keys[5], token, keys[6], 3)
    first_run = EventStream(
        w3, {"OpenToken": token}, from_block=start, cursor=SqliteEventCursor(path, "d"), follow=False
    )
    async with first_run:
        delivered = [item async for item in first_run]
        for item in delivered:
            await first_run.ack(item, effects=record(item))

    replacement = {
        "from": keys[5].address,
        "to": token.address,
        "data": token.encode_abi("transfer", [keys[7].address, 9]),
    }
    await rpc(w3, "anvil_reorg", 2, [[replacement, 0]])

    second_run = EventStream(
        w3, {"OpenToken": token}, from_block=start, cursor=SqliteEventCursor(path, "d"), follow=False
    )
    async with second_run:
        reorg, *rest = [item async for item in second_run]
        for item in [reorg, *rest]:
            await second_run.ack(item, effects=record(item))

    assert isinstance(reorg, Reorg)
    assert (reorg.ancestor, reorg.depth, reorg.removed) == (start, 2, tuple(delivered[1:]))
    [new] = events(rest)
    assert (new.args["to"], new.args["value"], new.block_number) == (keys[7].address, 9, start + 1)
    with closing(sqlite3.connect(path)) as db:
        seen = {key for (key,) in db.execute("SELECT key FROM seen")}
    assert seen == {events(delivered)[0].key, new.key}


async def test_a_reorg_deeper_than_the_history_raises(
    w3: AsyncWeb3[Any], keys: list[LocalAccount], token: AsyncContract
) -> None:
    start = await w3.eth.block_number + 1
    for value in range(4):
        await transfer(w3, keys[6], token, keys[5], value)
    async with EventStream(w3, {"OpenToken": token}, from_block=start, history=2, poll_interval=POLL) as stream:
        for item in await take(stream, 4):
            await stream.ack(item)
        await rpc(w3, "anvil_reorg", 4, [])
        with pytest.raises(ReorgTooDeepError) as caught:
            await take(stream, 1)
    assert caught.value.block_number == start + 3


async def test_bad_options_are_refused(w3: AsyncWeb3[Any], token: AsyncContract) -> None:
    with pytest.raises(ConfigError, match="at least one contract"):
        EventStream(w3, {}, from_block=0)
    with pytest.raises(ConfigError, match="batch_blocks >= 1"):
        EventStream(w3, {"OpenToken": token}, from_block=0, batch_blocks=0)
