"""Decoded contract events from a block onward, for daemons that must neither miss nor repeat one.

:class:`EventStream` is an async iterator of :class:`ChainEvent` and :class:`Reorg` items. It reads the logs of
every watched contract with one ``eth_getLogs`` per range of at most ``batch_blocks`` blocks, then decodes each log
with the web3 event ABI its address and first topic select (``ContractEvent.process_log``). One request thus serves
every event of every contract, where ``contract.events.X.get_logs`` costs a request per event type and contract,
and the decoding is still web3's own. Once caught up it follows the head by polling.

Delivery: the consumer acknowledges each item after processing it, ``await stream.ack(item)``, and only then does
the cursor move past it; acknowledging an item acknowledges every item delivered before it. A crash between
processing and acknowledging delivers the item again after the restart: the guarantee is *at least once*. It is
*exactly once* when the consumer's effects commit together with the ack: ``ack(item, effects=...)`` runs the
consumer's own SQLite writes in the cursor's transaction. Effects outside that database (a transaction on chain, an
HTTP call) must be idempotent, keyed by :attr:`ChainEvent.key`.

Reorgs: before each poll the stream checks that the newest block it has read still has the hash it saw. If not, it
walks back through the hashes of the blocks within ``history`` of the head (kept in the cursor) to the last common
ancestor, yields a :class:`Reorg` that lists the events delivered from the orphaned blocks, and reads on from the
ancestor, delivering the new canonical events. The notification is an item of the stream rather than a callback:
it arrives in order, in the consumer's task, and is acknowledged like an event, so its ack rewinds the cursor in
the same transaction as the consumer's undo, and a crash before that ack finds the reorg again after the restart.
Within ``history`` blocks of the head every header of a range is read, and the range is read again unless the
headers chain onto each other and onto the last block read, and each log carries its block's hash; older blocks
are taken as final.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TypeAlias, TypeVar, cast

import aiohttp
from eth_abi.exceptions import DecodingError
from eth_typing import BlockNumber, ChecksumAddress
from hexbytes import HexBytes
from web3 import AsyncWeb3
from web3.contract.async_contract import AsyncContract
from web3.contract.base_contract import BaseContractEvent
from web3.exceptions import BlockNotFound, Web3Exception
from web3.types import LogReceipt

from ._cursor import (
    CursorBlock,
    CursorLog,
    CursorPosition,
    CursorState,
    Effects,
    EventCursorError,
    SqliteEventCursor,
)
from .errors import ChainError, ChainUnavailableError, ConfigError, StakedError

# The cursor's names are re-exported here: staking._cursor is private, this module is the feature's surface.
__all__ = [
    "AckError",
    "ChainEvent",
    "CursorBlock",
    "CursorLog",
    "CursorPosition",
    "CursorState",
    "Effects",
    "EventCursorError",
    "EventStream",
    "Reorg",
    "ReorgTooDeepError",
    "SqliteEventCursor",
    "StreamItem",
]

_log = logging.getLogger(__name__)
_T = TypeVar("_T")


class ReorgTooDeepError(ChainError):
    """The chain no longer holds any block the stream remembers: the reorg is deeper than its ``history``.

    The cursor is left as it was; a consumer recovers by rebuilding its state from a fresh cursor.

    Attributes:
        block_number: the newest block read, whose hash changed.
        oldest_known: the oldest block whose hash the stream kept; it changed too.
    """

    def __init__(self, block_number: int, oldest_known: int) -> None:
        super().__init__(
            f"block {block_number} was replaced and so was every remembered block down to {oldest_known}: "
            "the reorg is deeper than the stream's history"
        )
        self.block_number = block_number
        self.oldest_known = oldest_known


class AckError(StakedError, LookupError):
    """``ack`` got an item that is not awaiting acknowledgement; its effects did not run.

    The item was acknowledged already, itself or through a later item, or it comes from another stream.
    """


@dataclass(frozen=True)
class ChainEvent:
    """One decoded event of a watched contract.

    Example:
        >>> event.contract, event.event, event.args["amount"]          # doctest: +SKIP
        ('AgentStaking', 'Staked', 1000000000000000000000)

    Attributes:
        contract: the name the contract was watched under.
        address: its checksummed address.
        event: the event's name in the ABI.
        args: decoded arguments by name: int, bool, str, bytes, checksummed address str, tuples for arrays and
            dicts for structs.
        block_number: the block that holds it.
        block_hash: that block's hash, 0x-hex.
        tx_hash: the emitting transaction's hash, 0x-hex.
        log_index: the log's position in its block.
    """

    contract: str
    address: str
    event: str
    args: dict[str, Any] = field(hash=False)
    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int

    @property
    def key(self) -> str:
        """Names this event on this fork: an idempotency key. The same transaction mined into another block after
        a reorg is another event, announced after the :class:`Reorg` that removed the first."""
        return f"{self.block_hash}:{self.log_index}"


@dataclass(frozen=True)
class Reorg:
    """The chain replaced the blocks after ``ancestor``: undo ``removed``; the new canonical events follow.

    Example:
        >>> if isinstance(item, Reorg):                                          # doctest: +SKIP
        ...     await stream.ack(item, effects=lambda db: undo(db, reversed(item.removed)))

    Attributes:
        ancestor: the last block both chains share; the stream reads on from the block after it.
        ancestor_hash: its hash.
        depth: how many blocks the stream had read past ``ancestor``.
        removed: the events delivered from those blocks, in delivery order (undo them in reverse): those of this
            run, and those acknowledged before a restart.
    """

    ancestor: int
    ancestor_hash: str
    depth: int
    removed: tuple[ChainEvent, ...]


StreamItem: TypeAlias = ChainEvent | Reorg


@dataclass(frozen=True)
class _Header:
    hash: str
    parent_hash: str


@dataclass(frozen=True)
class _Pending:
    """A queued or delivered item and what the cursor holds once the consumer acknowledges it."""

    item: StreamItem
    state: CursorState


class EventStream:
    """Decoded events of some contracts from a block onward, with a cursor that survives restarts and reorgs.

    Example:
        >>> contracts = {"AgentStaking": deployment.contract(w3, "AgentStaking")}        # doctest: +SKIP
        >>> cursor = SqliteEventCursor("validator.sqlite", "disputes")                 # doctest: +SKIP
        >>> stream = EventStream(w3, contracts, from_block=deployment.block, cursor=cursor)  # doctest: +SKIP
        >>> async with stream:                                                          # doctest: +SKIP
        ...     async for item in stream:
        ...         if isinstance(item, Reorg):
        ...             await stream.ack(item, effects=lambda db: undo(db, item.removed))
        ...         else:
        ...             await stream.ack(item, effects=lambda db: apply(db, item))

    One task iterates; ``ack`` may be called from others.

    Args:
        w3: connection to the chain.
        contracts: the contracts to watch, by the name events report; only their addresses and ABIs are used.
        from_block: the first block to read when the cursor holds no position yet; a stored position wins.
        cursor: where the position persists, and is closed with the stream; ``None`` keeps it in memory only.
        confirmations: deliver a block's events only once this many blocks are on top of it.
        batch_blocks: the most blocks one ``eth_getLogs`` covers.
        poll_interval: seconds between polls once caught up with the head.
        history: how many blocks below the head may still reorg; their hashes and delivered events are kept, and
            older blocks are taken as final. A reorg deeper than that raises ReorgTooDeepError.
        follow: ``False`` ends the iteration once caught up with the head, for scans and tests.

    Raises:
        ConfigError: an argument is out of range, or a contract has no address.
    """

    def __init__(
        self,
        w3: AsyncWeb3[Any],
        contracts: Mapping[str, AsyncContract],
        *,
        from_block: int,
        cursor: SqliteEventCursor | None = None,
        confirmations: int = 0,
        batch_blocks: int = 2_000,
        poll_interval: float = 1.0,
        history: int = 64,
        follow: bool = True,
    ) -> None:
        if not contracts:
            raise ConfigError("EventStream needs at least one contract to watch")
        if from_block < 0 or confirmations < 0 or batch_blocks < 1 or history < 1 or poll_interval <= 0:
            raise ConfigError(
                "EventStream needs from_block >= 0, confirmations >= 0, batch_blocks >= 1, history >= 1 and "
                f"poll_interval > 0; got {from_block}, {confirmations}, {batch_blocks}, {history}, {poll_interval}"
            )
        self.w3 = w3
        self.from_block = from_block
        self.confirmations = confirmations
        self.batch_blocks = batch_blocks
        self.poll_interval = poll_interval
        self.history = history
        self.follow = follow
        self._events = _event_abis(contracts)
        self._addresses: list[ChecksumAddress] = sorted({contract.address for contract in contracts.values()})
        self._cursor = cursor if cursor is not None else SqliteEventCursor(":memory:", "memory")
        #: what the cursor will hold once every delivered item is acknowledged: the stream's whole position
        self._state: CursorState | None = None
        #: what the cursor holds now
        self._saved = CursorState()
        self._ready: deque[_Pending] = deque()
        self._unacked: deque[_Pending] = deque()
        self._lock = asyncio.Lock()  # orders cursor writes: acks and the stream's own
        self._closing = asyncio.Event()
        self.delivered = 0
        self.acknowledged = 0
        self.reorgs = 0

    def __repr__(self) -> str:
        position = self.position
        at = "none" if position is None else f"{position.block_number}/{position.log_index}"
        return (
            f"<EventStream position={at} delivered={self.delivered} acknowledged={self.acknowledged} "
            f"reorgs={self.reorgs}>"
        )

    @property
    def position(self) -> CursorPosition | None:
        """What the cursor holds: the last acknowledged event, or the last block processed whole."""
        return self._saved.position

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> StreamItem:
        while not self._ready:
            if self._closing.is_set():
                raise StopAsyncIteration
            if self._state is None:
                self._state = self._saved = await self._cursor.load()
            if await self._poll(self._state):
                continue
            if not self.follow:
                raise StopAsyncIteration
            await self._pause()
        pending = self._ready.popleft()
        self._unacked.append(pending)
        self.delivered += 1
        return pending.item

    async def ack(self, item: StreamItem, *, effects: Effects | None = None) -> None:
        """Records that ``item``, and every item delivered before it, is processed.

        Cancelling the caller does not interrupt a started write: the ack completes or fails as a whole.

        Args:
            item: an item this stream delivered.
            effects: the consumer's own writes on the cursor's SQLite connection, committed in the same transaction
                as the new position or not at all; they run on the cursor's thread.

        Raises:
            AckError: ``item`` is not awaiting acknowledgement.
            EventCursorError: the cursor could not be written.
            Exception: whatever ``effects`` raised; the item stays unacknowledged.
        """
        await asyncio.shield(self._ack(item, effects))

    async def close(self) -> None:
        """Ends the iteration and closes the cursor, after a write in progress."""
        self._closing.set()
        async with self._lock:
            await self._cursor.close()

    async def __aenter__(self) -> EventStream:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _ack(self, item: StreamItem, effects: Effects | None) -> None:
        async with self._lock:
            index = next((i for i, pending in enumerate(self._unacked) if pending.item is item), None)
            if index is None:
                raise AckError(f"{item!r} is not awaiting acknowledgement")
            state = self._unacked[index].state
            await self._cursor.save(state, effects)
            for _ in range(index + 1):
                self._unacked.popleft()
            self._saved = state
            self.acknowledged += index + 1

    async def _pause(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), self.poll_interval)

    async def _poll(self, state: CursorState) -> bool:
        """Checks for a reorg, then reads the next range. Returns whether there may be more to read at once."""
        last = state.position
        first = _next_block(last, self.from_block)
        head = await self._call(self.w3.eth.block_number)
        to = min(head - self.confirmations, first + self.batch_blocks - 1)
        recent_from = head - self.history + 1
        if first < recent_from <= to:
            to = recent_from - 1  # a range is wholly final or wholly recent
        # Recent ranges are checked header by header; a final one needs only its last block's hash.
        if to >= recent_from:
            wanted = set(range(first, to + 1))
        elif to >= first:
            wanted = {to}
        else:
            wanted = set()
        if last is not None:
            wanted.add(last.block_number)
        headers = await self._headers(wanted)
        if last is not None:
            seen = headers[last.block_number]
            if seen is None or seen.hash != last.block_hash:
                await self._rewind(state, last.block_number)
                return True
        if to < first:
            return False
        logs = await self._call(
            self.w3.eth.get_logs(
                {"fromBlock": BlockNumber(first), "toBlock": BlockNumber(to), "address": self._addresses}
            )
        )
        found = [_cursor_log(log) for log in logs]
        if not _consistent(state, first, to, headers, found):
            _log.debug("the chain moved while blocks %d-%d were read; reading them again", first, to)
            await self._pause()
            return True
        hashes = {number: header.hash for number, header in headers.items() if header and first <= number <= to}
        hashes.update({log.block_number: log.block_hash for log in found})
        await self._queue(state, to, hashes, found, recent_from)
        return True

    async def _queue(
        self, state: CursorState, to: int, hashes: dict[int, str], logs: list[CursorLog], recent_from: int
    ) -> None:
        """Queues the events of a range read, each with the cursor state its acknowledgement commits.

        Only blocks from ``recent_from`` on are kept: older ones are final, so a catch-up scan writes no history.
        """
        done = state.position
        events: list[tuple[CursorLog, ChainEvent]] = []
        for log in sorted(logs, key=lambda log: (log.block_number, log.log_index)):
            if (
                done
                and done.log_index is not None
                and log.block_number == done.block_number
                and log.log_index <= done.log_index
            ):
                continue  # acknowledged before a restart, with the first part of its block
            event = self._decode(log)
            if event is not None:
                events.append((log, event))
        blocks = state.blocks
        unrecorded = deque(sorted(hashes))
        queued: list[_Pending] = []
        for log, event in events:
            while unrecorded and unrecorded[0] <= event.block_number:
                number = unrecorded.popleft()
                blocks = _record(blocks, number, hashes[number], None, recent_from)
            blocks = _record(blocks, event.block_number, event.block_hash, log, recent_from)
            position = CursorPosition(event.block_number, event.block_hash, event.log_index)
            queued.append(_Pending(event, CursorState(position, blocks)))
        for number in unrecorded:
            blocks = _record(blocks, number, hashes[number], None, recent_from)
        end = CursorState(CursorPosition(to, hashes[to]), blocks)
        _log.debug("read blocks %d-%d: %d events", _next_block(done, self.from_block), to, len(queued))
        async with self._lock:
            if self._closing.is_set():
                return
            self._state = end
            self._ready.extend(queued)
            # Blocks after the last delivered event are processed once that event is: its ack covers them.
            tail = self._ready or self._unacked
            if tail:
                tail[-1] = _Pending(tail[-1].item, end)
            else:  # nothing awaits the consumer, so nothing can be lost by recording the range now
                await self._cursor.save(end)
                self._saved = end

    async def _rewind(self, state: CursorState, replaced: int) -> None:
        """Queues a Reorg back to the newest remembered block the chain still holds."""
        ancestor = await self._ancestor(state, replaced)
        orphaned = [log for block in state.blocks if block.number > ancestor.number for log in block.logs]
        removed = tuple(event for log in orphaned if (event := self._decode(log)) is not None)
        reorg = Reorg(ancestor.number, ancestor.hash, replaced - ancestor.number, removed)
        rewound = CursorState(
            CursorPosition(ancestor.number, ancestor.hash),
            tuple(block for block in state.blocks if block.number <= ancestor.number),
        )
        _log.info(
            "reorg: block %d was replaced; rewinding to block %d (%s), %d delivered events removed",
            replaced,
            ancestor.number,
            ancestor.hash,
            len(removed),
        )
        async with self._lock:
            if self._closing.is_set():
                return
            self._state = rewound
            self._ready.append(_Pending(reorg, rewound))
            self.reorgs += 1

    async def _ancestor(self, state: CursorState, replaced: int) -> CursorBlock:
        for block in reversed(state.blocks):
            if block.number < replaced:
                header = await self._header(block.number)
                if header is not None and header.hash == block.hash:
                    return block
        raise ReorgTooDeepError(replaced, state.blocks[0].number if state.blocks else replaced)

    def _decode(self, log: CursorLog) -> ChainEvent | None:
        """The event ``log`` records, or ``None`` (with a warning) when its contract's ABI has no such event.

        Raises:
            ConfigError: the log does not fit the ABI of its event: the ABI given for that address is wrong.
        """
        found = self._events.get((log.address, log.topics[0] if log.topics else ""))
        if found is None:
            _log.warning(
                "skipping log %d of block %d: no event of %s has its topic",
                log.log_index,
                log.block_number,
                log.address,
            )
            return None
        name, event = found
        receipt = {
            "address": log.address,
            "topics": [HexBytes(topic) for topic in log.topics],
            "data": HexBytes(log.data),
            "blockNumber": log.block_number,
            "blockHash": HexBytes(log.block_hash),
            "transactionHash": HexBytes(log.transaction_hash),
            "transactionIndex": log.transaction_index,
            "logIndex": log.log_index,
        }
        try:
            decoded = event.process_log(cast(LogReceipt, receipt))
        except (Web3Exception, DecodingError) as exc:
            raise ConfigError(
                f"log {log.log_index} of block {log.block_number} does not fit {name}'s ABI: {exc}"
            ) from exc
        return ChainEvent(
            contract=name,
            address=log.address,
            event=decoded["event"],
            args=_plain(decoded["args"]),
            block_number=log.block_number,
            block_hash=log.block_hash,
            tx_hash=log.transaction_hash,
            log_index=log.log_index,
        )

    async def _headers(self, numbers: Iterable[int]) -> dict[int, _Header | None]:
        ordered = sorted(numbers)
        return dict(zip(ordered, await asyncio.gather(*(self._header(n) for n in ordered)), strict=True))

    async def _header(self, number: int) -> _Header | None:
        """Block ``number``'s hashes, or ``None`` when the chain is shorter than that now."""
        try:
            block = await self._call(self.w3.eth.get_block(number))
        except BlockNotFound:
            return None
        return _Header(block["hash"].to_0x_hex(), block["parentHash"].to_0x_hex())

    async def _call(self, request: Awaitable[_T]) -> _T:
        """Awaits a JSON-RPC read, translating its failures; the provider has already retried the transient ones.

        Raises:
            ChainUnavailableError: the endpoint did not answer.
            ChainError: the node answered with an error.
        """
        try:
            return await request
        except BlockNotFound:
            raise
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            url = str(getattr(self.w3.provider, "endpoint_uri", self.w3.provider))
            raise ChainUnavailableError(url, str(exc) or type(exc).__name__) from exc
        except Web3Exception as exc:
            raise ChainError(f"reading events failed: {exc}") from exc


def _event_abis(contracts: Mapping[str, AsyncContract]) -> dict[tuple[str, str], tuple[str, BaseContractEvent]]:
    """(address, topic) -> (contract name, event) over the watched contracts."""
    events: dict[tuple[str, str], tuple[str, BaseContractEvent]] = {}
    for name, contract in contracts.items():
        if not contract.address:
            raise ConfigError(f"contract {name} has no address to watch")
        for event in contract.all_events():
            events[(contract.address, event.topic)] = (name, event)
    return events


def _next_block(done: CursorPosition | None, from_block: int) -> int:
    """The first block to read after ``done``: the same block when only part of it is processed."""
    if done is None:
        return from_block
    return done.block_number + (done.log_index is None)


def _consistent(
    state: CursorState, first: int, to: int, headers: Mapping[int, _Header | None], logs: list[CursorLog]
) -> bool:
    """Whether the headers read chain onto each other and onto the blocks known, and every log is of them."""
    if any(header is None for header in headers.values()):
        return False  # the head moved back under the read
    known = {block.number: block.hash for block in state.blocks}
    for number in range(first, to + 1):
        header = headers.get(number)
        parent = headers.get(number - 1)
        parent_hash = parent.hash if parent else known.get(number - 1)
        if header is not None and parent_hash is not None and header.parent_hash != parent_hash:
            return False
    return all((header := headers.get(log.block_number)) is None or header.hash == log.block_hash for log in logs)


def _record(
    blocks: tuple[CursorBlock, ...], number: int, hash_: str, log: CursorLog | None, keep_from: int
) -> tuple[CursorBlock, ...]:
    """``blocks`` with block ``number`` (and ``log`` delivered from it) added, keeping those from ``keep_from``."""
    if blocks and blocks[-1].number == number:
        *older, newest = blocks
        if log is not None:
            newest = CursorBlock(number, newest.hash, (*newest.logs, log))
        blocks = (*older, newest)
    else:
        blocks = (*blocks, CursorBlock(number, hash_, () if log is None else (log,)))
    return tuple(block for block in blocks if block.number >= keep_from)


def _cursor_log(log: LogReceipt) -> CursorLog:
    return CursorLog(
        address=log["address"],
        topics=tuple(HexBytes(topic).to_0x_hex() for topic in log["topics"]),
        data=HexBytes(log["data"]).to_0x_hex(),
        block_number=log["blockNumber"],
        block_hash=HexBytes(log["blockHash"]).to_0x_hex(),
        transaction_hash=HexBytes(log["transactionHash"]).to_0x_hex(),
        transaction_index=log["transactionIndex"],
        log_index=log["logIndex"],
    )


def _plain(value: Any) -> Any:
    """web3's AttributeDicts and HexBytes as plain dicts and bytes, all the way down."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_plain(item) for item in value)
    if isinstance(value, bytes):
        return bytes(value)
    return value
