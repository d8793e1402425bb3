"""A local anvil chain, started from the project's npm install, for development, demos and tests."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import AsyncWeb3

from .errors import ChainUnavailableError, ConfigError

__all__ = ["ANVIL_CHAIN_ID", "Anvil", "advance_time", "anvil_binary", "dev_accounts"]

ANVIL_CHAIN_ID = 31337
#: anvil's published development mnemonic: its keys are public, so they are only good for a local devnet.
_DEV_MNEMONIC = "test test test test test test test test test test test junk"
_READY_TIMEOUT = 30.0
_STOP_GRACE = 5.0


def anvil_binary() -> str:
    """The anvil executable: ``$STAKED_ANVIL``, else the project's ``node_modules/.bin/anvil``, else PATH.

    Raises:
        ConfigError: none can be found.
    """
    configured = os.environ.get("STAKED_ANVIL")
    if configured:
        return configured
    local = Path(__file__).resolve().parent.parent / "node_modules" / ".bin" / "anvil"
    if local.exists():
        return str(local)
    found = shutil.which("anvil")
    if found is None:
        raise ConfigError("anvil not found: run `npm ci` in the project, or set STAKED_ANVIL")
    return found


def dev_accounts(count: int) -> list[LocalAccount]:
    """The first ``count`` accounts anvil funds with ETH (derived from its public development mnemonic)."""
    Account.enable_unaudited_hdwallet_features()
    return [Account.from_mnemonic(_DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}") for i in range(count)]


async def advance_time(w3: AsyncWeb3[Any], seconds: int) -> None:
    """Moves a devnet's block time forward by ``seconds`` and mines a block at the new time (anvil only)."""
    await w3.provider.make_request("evm_increaseTime", [seconds])
    await w3.provider.make_request("evm_mine", [])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Anvil:
    """Runs anvil on loopback for the duration of an ``async with`` block.

    Example:
        >>> async with Anvil(accounts=5) as chain:     # doctest: +SKIP
        ...     w3 = await connect(chain.url)

    Args:
        port: TCP port on 127.0.0.1; a free one when omitted.
        accounts: how many development accounts anvil funds with ETH.
        block_time: seconds between the blocks mined when no transaction comes, as on a live chain (transactions
            are still mined at once); ``None`` mines blocks only for transactions.
    """

    def __init__(self, *, port: int | None = None, accounts: int = 10, block_time: float | None = None) -> None:
        self.port = port or _free_port()
        self.accounts = accounts
        self.block_time = block_time
        self._process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __repr__(self) -> str:
        state = "running" if self._process and self._process.returncode is None else "stopped"
        return f"<Anvil {self.url} {state}>"

    async def start(self) -> None:
        """Starts anvil and returns once it answers JSON-RPC.

        Raises:
            ChainUnavailableError: it exited or did not answer within 30 s.
        """
        args = [
            anvil_binary(),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--accounts", str(self.accounts),
            "--chain-id", str(ANVIL_CHAIN_ID),
            "--hardfork", "prague",  # the EVM version the contracts are compiled for
        ]  # fmt: skip
        if self.block_time is not None:
            args += ["--block-time", str(self.block_time), "--mixed-mining"]
        # stderr goes to a file, not a pipe: a long-lived devnet must never block on a full pipe. anvil keeps its
        # own handle, so closing ours when start() returns changes nothing for it.
        with tempfile.TemporaryFile() as errors:
            self._process = await asyncio.create_subprocess_exec(
                *args, stdout=asyncio.subprocess.DEVNULL, stderr=errors
            )
            deadline = asyncio.get_running_loop().time() + _READY_TIMEOUT
            while not await self._answers():
                if self._process.returncode is not None:
                    errors.seek(0)
                    message = errors.read().decode(errors="replace").strip()
                    raise ChainUnavailableError(self.url, f"anvil exited: {message}")
                if asyncio.get_running_loop().time() > deadline:
                    await self.stop()
                    raise ChainUnavailableError(self.url, f"anvil did not answer within {_READY_TIMEOUT:g} s")
                await asyncio.sleep(0.05)

    async def _answers(self) -> bool:
        request = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as session,
                session.post(self.url, json=request) as response,
            ):
                return response.status == 200
        except (aiohttp.ClientError, OSError, TimeoutError):
            return False

    async def stop(self) -> None:
        """Stops anvil: SIGTERM, then SIGKILL after a grace period."""
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), _STOP_GRACE)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()

    async def __aenter__(self) -> Anvil:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
