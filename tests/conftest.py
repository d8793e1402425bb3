"""Shared fixtures: one anvil chain and one deployed suite per test module (anvil starts in well under 2 s), and
one tiny model and one real vLLM CPU server for the whole session (vLLM takes about a minute to start).

If vLLM cannot start, every test that needs it errors with vLLM's log: nothing is skipped.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from eth_account.signers.local import LocalAccount
from web3 import AsyncWeb3

from agents import VLLMBackend, VLLMServer, build_tiny_model
from staking import Anvil, Deployment, DeploymentConfig, Transactor, connect, deploy, dev_accounts

ACCOUNTS = 8
#: The served name of the session's tiny model.
MODEL = "tiny-docs"


@pytest.fixture(scope="module")
async def chain() -> AsyncIterator[Anvil]:
    async with Anvil(accounts=ACCOUNTS) as anvil:
        yield anvil


@pytest.fixture(scope="module")
async def w3(chain: Anvil) -> AsyncIterator[AsyncWeb3[Any]]:
    web3 = await connect(chain.url)
    yield web3
    await web3.provider.disconnect()


@pytest.fixture(scope="module")
def keys() -> list[LocalAccount]:
    """anvil's funded development accounts; [0] deploys and holds the OPEN supply."""
    return dev_accounts(ACCOUNTS)


@pytest.fixture(scope="module")
async def deployer(w3: AsyncWeb3[Any], keys: list[LocalAccount]) -> Transactor:
    return Transactor(w3, keys[0])


@pytest.fixture(scope="module")
async def deployment(deployer: Transactor) -> Deployment:
    return await deploy(deployer, DeploymentConfig())


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"), seed=0)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def vllm_server(tiny_model_dir: Path) -> AsyncIterator[VLLMServer]:
    # The machine is shared: give vLLM time, and the KV cache it needs and no more (TOOLCHAIN.md).
    async with VLLMServer(tiny_model_dir, name=MODEL, kv_cache_gib=1, ready_timeout=900) as server:
        yield server


@pytest.fixture
async def backend(vllm_server: VLLMServer) -> AsyncIterator[VLLMBackend]:
    async with vllm_server.backend(timeout=120) as client:
        yield client
