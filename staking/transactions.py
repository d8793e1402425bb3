"""Sending transactions a daemon can trust, and translating chain failures into our errors.

:class:`Transactor` owns one local account: it hands out nonces under a lock (concurrent sends never collide),
estimates gas with a margin, prices EIP-1559 fees from the latest block, waits for the receipt (and optional
confirmations) and checks its status. A revert, before sending or on chain, becomes a
:class:`~staking.errors.ContractRevertedError` carrying the decoded custom error. This module is the one
boundary where web3.py and aiohttp exceptions are translated.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from functools import cache
from typing import Any, cast

import aiohttp
from eth_abi.abi import decode as abi_decode
from eth_account.signers.local import LocalAccount
from eth_utils.abi import function_signature_to_4byte_selector
from eth_utils.address import to_checksum_address
from hexbytes import HexBytes
from web3 import AsyncHTTPProvider, AsyncWeb3
from web3.contract.async_contract import AsyncContract, AsyncContractFunction
from web3.exceptions import ContractLogicError, TimeExhausted, TransactionNotFound, Web3RPCError
from web3.providers.rpc.utils import ExceptionRetryConfiguration
from web3.types import Nonce, TxParams, TxReceipt, Wei

from contracts import artifact, artifact_names

from .errors import (
    ChainError,
    ChainUnavailableError,
    ContractRevertedError,
    CustomError,
    TransactionTimeoutError,
    WrongChainError,
)

__all__ = ["Transactor", "connect", "decode_revert"]

_RPC_TIMEOUT = 30.0
_RPC_RETRIES = 3
_ERROR_STRING_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)
_PANIC_SELECTOR = bytes.fromhex("4e487b71")  # Panic(uint256)


@cache
def _error_abis() -> Mapping[bytes, tuple[str, tuple[str, ...], tuple[str, ...]]]:
    """Selector -> (name, argument names, argument types) for every custom error in our artifacts."""
    errors: dict[bytes, tuple[str, tuple[str, ...], tuple[str, ...]]] = {}
    for name in artifact_names():
        for entry in artifact(name).abi:
            if entry["type"] != "error":
                continue
            types = tuple(_abi_type(arg) for arg in entry["inputs"])
            selector = function_signature_to_4byte_selector(f"{entry['name']}({','.join(types)})")
            errors[selector] = (entry["name"], tuple(arg["name"] for arg in entry["inputs"]), types)
    return errors


def _abi_type(arg: Mapping[str, Any]) -> str:
    """The canonical ABI type of an argument, expanding tuples (structs)."""
    kind = str(arg["type"])
    if kind.startswith("tuple"):
        inner = ",".join(_abi_type(component) for component in arg["components"])
        return f"({inner}){kind.removeprefix('tuple')}"
    return kind


def decode_revert(data: bytes) -> CustomError | None:
    """Decodes revert data into a custom error of our contracts, ``Error(string)`` or ``Panic(uint256)``."""
    selector, payload = bytes(data[:4]), bytes(data[4:])
    try:
        if selector == _ERROR_STRING_SELECTOR:
            return CustomError("Error", {"message": abi_decode(["string"], payload)[0]})
        if selector == _PANIC_SELECTOR:
            return CustomError("Panic", {"code": abi_decode(["uint256"], payload)[0]})
        known = _error_abis().get(selector)
        if known is None:
            return None
        name, arg_names, arg_types = known
        values = abi_decode(list(arg_types), payload)
        return CustomError(
            name,
            {
                arg: to_checksum_address(value) if kind == "address" else value
                for arg, kind, value in zip(arg_names, arg_types, values, strict=True)
            },
        )
    except Exception:  # malformed payload behind a known selector: report it raw
        return None


def _revert_data(exc: ContractLogicError) -> bytes:
    data = exc.data
    if isinstance(data, Mapping):  # some nodes nest it: {"data": "0x..."}
        data = data.get("data")
    return bytes(HexBytes(data)) if isinstance(data, str) else b""


def _reverted(action: str, exc: ContractLogicError, tx_hash: str | None = None) -> ContractRevertedError:
    data = _revert_data(exc)
    return ContractRevertedError(action, decode_revert(data), data, tx_hash)


async def connect(url: str, *, expected_chain_id: int | None = None) -> AsyncWeb3[AsyncHTTPProvider]:
    """An AsyncWeb3 on ``url`` that has answered once, on the expected chain.

    Raises:
        ChainUnavailableError: the endpoint does not answer.
        WrongChainError: it serves another chain than ``expected_chain_id``.
    """
    provider = AsyncHTTPProvider(
        url,
        request_kwargs={"timeout": aiohttp.ClientTimeout(total=_RPC_TIMEOUT)},
        # Retries cover web3's allow-list of idempotent methods only: reads, and eth_sendRawTransaction, whose
        # re-broadcast of the same signed bytes cannot double-spend.
        exception_retry_configuration=ExceptionRetryConfiguration(
            errors=(aiohttp.ClientError, OSError, TimeoutError), retries=_RPC_RETRIES, backoff_factor=0.25
        ),
    )
    w3 = AsyncWeb3(provider)
    try:
        chain_id = await w3.eth.chain_id
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        await provider.disconnect()
        raise ChainUnavailableError(url, str(exc) or type(exc).__name__) from exc
    if expected_chain_id is not None and chain_id != expected_chain_id:
        await provider.disconnect()
        raise WrongChainError(expected_chain_id, chain_id)
    return w3


class Transactor:
    """Signs and sends transactions for one local account.

    Example:
        >>> sender = Transactor(w3, account)                                     # doctest: +SKIP
        >>> receipt = await sender.send(token.functions.transfer(to, 10**18))    # doctest: +SKIP

    Args:
        w3: connection to the chain.
        account: the signing account; its key never leaves eth-account.
        gas_margin: factor over the node's gas estimate, for state that moves between estimate and inclusion.
        confirmations: blocks to wait for after the one that includes the transaction (0: inclusion suffices).
        poll_interval: seconds between receipt polls; web3's default of 0.1 s costs 100 ms per transaction on
            an instant-mining devnet.
        receipt_timeout: seconds to wait for inclusion before giving up.
        fee_refresh: seconds a fee quote is reused; its two base fees of headroom outlast many blocks, so
            re-reading the chain before every transaction buys nothing but two RPC calls.
    """

    def __init__(
        self,
        w3: AsyncWeb3[Any],
        account: LocalAccount,
        *,
        gas_margin: float = 1.2,
        confirmations: int = 0,
        poll_interval: float = 0.02,
        receipt_timeout: float = 120.0,
        fee_refresh: float = 2.0,
    ) -> None:
        self.w3 = w3
        self.account = account
        self.gas_margin = gas_margin
        self.confirmations = confirmations
        self.poll_interval = poll_interval
        self.receipt_timeout = receipt_timeout
        self.fee_refresh = fee_refresh
        self._nonce_lock = asyncio.Lock()
        self._next_nonce: int | None = None
        self._chain_id: int | None = None
        self._fee_quote: tuple[float, TxParams] | None = None
        self.sent = 0

    def __repr__(self) -> str:
        return f"<Transactor {self.account.address} sent={self.sent}>"

    @property
    def address(self) -> str:
        return str(self.account.address)

    def reset_nonce(self) -> None:
        """Forgets the cached nonce, so the next send asks the node (after a reorg or a dropped transaction)."""
        self._next_nonce = None

    async def send(self, call: AsyncContractFunction, *, value: int = 0, action: str | None = None) -> TxReceipt:
        """Sends ``call`` as a transaction and returns its successful receipt.

        Raises:
            ContractRevertedError: the call reverts at estimation or on chain.
            TransactionTimeoutError: it was sent but not included in time.
        """
        action = action or f"{call.address}.{call.fn_name}"
        params: TxParams = {"from": self.account.address, "value": Wei(value)}
        # Estimate against the pending block: a write keyed by block number (a stake checkpoint) costs a fresh
        # storage slot in the next block but only an update in the latest one.
        try:
            gas = await call.estimate_gas(params, block_identifier="pending")
        except ContractLogicError as exc:
            raise _reverted(action, exc) from exc
        tx = await call.build_transaction(await self._complete(params, gas))
        return await self._sign_and_send(tx, action)

    async def deploy(self, name: str, *args: Any) -> tuple[AsyncContract, TxReceipt]:
        """Deploys the committed artifact ``name`` with constructor ``args``; returns the bound contract."""
        compiled = artifact(name)
        factory = self.w3.eth.contract(abi=compiled.abi, bytecode=compiled.bytecode)
        constructor = factory.constructor(*args)
        action = f"deploy {name}"
        params: TxParams = {"from": self.account.address}
        try:
            gas = await constructor.estimate_gas(params, block_identifier="pending")
        except ContractLogicError as exc:
            raise _reverted(action, exc) from exc
        receipt = await self._sign_and_send(
            await constructor.build_transaction(await self._complete(params, gas)), action
        )
        address = receipt["contractAddress"]
        if address is None:
            raise ChainError(f"{action}: the node returned a creation receipt without a contract address")
        return self.w3.eth.contract(address=address, abi=compiled.abi), receipt

    async def _complete(self, params: TxParams, gas: int) -> TxParams:
        """Adds chain id, gas with its margin and EIP-1559 fees, so web3 asks the node for nothing more; the
        nonce is set under the lock when signing."""
        if self._chain_id is None:
            self._chain_id = await self.w3.eth.chain_id
        return {
            **params,
            **await self._fees(),
            "chainId": self._chain_id,
            "gas": int(gas * self.gas_margin),
            "nonce": Nonce(0),
        }

    async def _sign_and_send(self, tx: TxParams, action: str) -> TxReceipt:
        async with self._nonce_lock:
            if self._next_nonce is None:
                self._next_nonce = await self.w3.eth.get_transaction_count(self.account.address, "pending")
            tx["nonce"] = Nonce(self._next_nonce)
            signed = self.account.sign_transaction(cast(dict[str, Any], tx))
            tx_hash = HexBytes(signed.hash)
            try:
                await self.w3.eth.send_raw_transaction(signed.raw_transaction)
            except Web3RPCError as exc:
                # A retried broadcast may find the node already holds these exact bytes: that is success.
                if "already known" not in str(exc).lower():
                    self._next_nonce = None  # resynchronise from the node on the next send
                    raise
            except Exception:
                self._next_nonce = None
                raise
            self._next_nonce += 1
        self.sent += 1
        return await self._wait(tx_hash, tx, action)

    async def _fees(self) -> TxParams:
        now = asyncio.get_running_loop().time()
        if self._fee_quote is not None and now - self._fee_quote[0] < self.fee_refresh:
            return self._fee_quote[1]
        latest = await self.w3.eth.get_block("latest")
        tip = await self.w3.eth.max_priority_fee
        base = int(latest.get("baseFeePerGas", 0))
        # Two base fees of headroom survive six full blocks of 12.5 % increases.
        fees: TxParams = {"maxFeePerGas": Wei(2 * base + tip), "maxPriorityFeePerGas": tip, "type": 2}
        self._fee_quote = (now, fees)
        return fees

    async def _wait(self, tx_hash: HexBytes, tx: TxParams, action: str) -> TxReceipt:
        try:
            receipt = await self.w3.eth.wait_for_transaction_receipt(
                tx_hash, timeout=self.receipt_timeout, poll_latency=self.poll_interval
            )
        except TimeExhausted as exc:
            # The node may have dropped it (a reorg, a restart): take the nonce from the node next time.
            self.reset_nonce()
            raise TransactionTimeoutError(action, tx_hash.to_0x_hex(), self.receipt_timeout) from exc
        if receipt["status"] != 1:
            raise await self._explain_failure(tx, receipt, action)
        if self.confirmations:
            receipt = await self._confirmed(tx_hash, tx, receipt, action)
        return receipt

    async def _confirmed(self, tx_hash: HexBytes, tx: TxParams, receipt: TxReceipt, action: str) -> TxReceipt:
        """Waits until ``confirmations`` blocks sit on the receipt's block, then reads the receipt again: a reorg
        meanwhile may have moved the transaction to another block (then it waits for that one) or reverted it.

        Raises:
            TransactionTimeoutError: not confirmed within ``receipt_timeout`` (a chain that mines no blocks).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.receipt_timeout
        # Over HTTP, polling is the only way to learn of new blocks.
        while True:
            if await self.w3.eth.block_number >= receipt["blockNumber"] + self.confirmations:
                try:
                    current: TxReceipt | None = await self.w3.eth.get_transaction_receipt(tx_hash)
                except TransactionNotFound:  # reorged out, back in the mempool: wait until it is mined again
                    current = None
                if current is not None and current["blockHash"] == receipt["blockHash"]:
                    return current
                if current is not None:
                    if current["status"] != 1:
                        raise await self._explain_failure(tx, current, action)
                    receipt = current
            if loop.time() > deadline:
                raise TransactionTimeoutError(action, tx_hash.to_0x_hex(), self.receipt_timeout, self.confirmations)
            await asyncio.sleep(self.poll_interval)

    async def _explain_failure(self, tx: TxParams, receipt: TxReceipt, action: str) -> ContractRevertedError:
        """Replays a failed transaction at its block to recover the revert data the receipt does not carry."""
        tx_hash = receipt["transactionHash"].to_0x_hex()
        replay = cast(TxParams, {key: tx[key] for key in ("from", "to", "data", "value") if key in tx})
        try:
            await self.w3.eth.call(replay, block_identifier=receipt["blockNumber"])
        except ContractLogicError as exc:
            return _reverted(action, exc, tx_hash)
        return ContractRevertedError(action, None, b"", tx_hash)
