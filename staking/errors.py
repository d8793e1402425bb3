"""Exceptions of staked, rooted at :class:`StakedError`.

The tree::

    StakedError
    ├── ConfigError (ValueError)           a setting or deployment file is wrong
    ├── EventCursorError                   the event cursor's SQLite store failed (staking.events)
    ├── AckError (LookupError)             an event was acknowledged twice or by another stream
    └── ChainError                         talking to the chain failed
        ├── ChainUnavailableError          the RPC endpoint does not answer
        ├── WrongChainError                the node serves another chain id than expected
        ├── TransactionTimeoutError        a sent transaction was not included in time
        ├── ReorgTooDeepError              a reorg went deeper than an event stream remembers
        └── ContractRevertedError          a call or transaction reverted; ``error`` holds the decoded
                                           custom error when the contracts define it

Foreign errors (web3.py, aiohttp) are translated at one boundary, :mod:`staking.transactions`, with
``raise ... from exc``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ChainError",
    "ChainUnavailableError",
    "ConfigError",
    "ContractRevertedError",
    "CustomError",
    "StakedError",
    "TransactionTimeoutError",
    "WrongChainError",
]


class StakedError(Exception):
    """Root of every error staked raises on purpose."""


class ConfigError(StakedError, ValueError):
    """A setting, a deployment file or an argument is invalid."""


class ChainError(StakedError):
    """Talking to the chain failed."""


class ChainUnavailableError(ChainError, ConnectionError):
    """The JSON-RPC endpoint ``url`` did not answer."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"chain RPC {url} is unavailable: {reason}")
        self.url = url
        self.reason = reason


class WrongChainError(ChainError):
    """The node serves chain ``actual`` where ``expected`` was required (a deployment of another chain)."""

    def __init__(self, expected: int, actual: int) -> None:
        super().__init__(f"expected chain id {expected}, the node serves chain id {actual}")
        self.expected = expected
        self.actual = actual


class TransactionTimeoutError(ChainError, TimeoutError):
    """Transaction ``tx_hash`` (``action``) was sent but not included, or not buried under ``confirmations`` blocks,
    within ``timeout`` seconds.

    It may still be included later: re-broadcast the same signed transaction, never re-sign it with a new nonce.
    """

    def __init__(self, action: str, tx_hash: str, timeout: float, confirmations: int = 0) -> None:
        if confirmations:
            what = f"included but not confirmed by {confirmations} blocks after {timeout:g} s (is the chain mining?)"
        else:
            what = f"not included after {timeout:g} s"
        super().__init__(f"{action}: transaction {tx_hash} {what}")
        self.action = action
        self.tx_hash = tx_hash
        self.timeout = timeout
        self.confirmations = confirmations


@dataclass(frozen=True)
class CustomError:
    """A Solidity custom error decoded from revert data, e.g. ``StakingInsufficientStake(operator=..., ...)``."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        rendered = ", ".join(f"{key}={_render(value)}" for key, value in self.args.items())
        return f"{self.name}({rendered})"


class ContractRevertedError(ChainError):
    """A contract call or transaction reverted.

    Attributes:
        action: what was attempted, e.g. ``"AgentStaking.stake"``.
        error: the decoded custom error, or ``None`` when the revert data matched none of ours.
        data: the raw revert data.
        tx_hash: the transaction hash when the revert happened on chain, ``None`` when it was caught before.
    """

    def __init__(self, action: str, error: CustomError | None, data: bytes, tx_hash: str | None = None) -> None:
        reason = str(error) if error else (f"revert data 0x{data.hex()}" if data else "no revert data")
        where = f" in transaction {tx_hash}" if tx_hash else ""
        super().__init__(f"{action} reverted{where}: {reason}")
        self.action = action
        self.error = error
        self.data = data
        self.tx_hash = tx_hash


def _render(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return str(value)
