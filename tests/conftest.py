"""Shared fixtures: one anvil chain and one deployed suite per test module (anvil starts in well under 2 s)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from web3 import AsyncWeb3

from staking import Anvil, Deployment, DeploymentConfig, Transactor, connect, deploy, dev_accounts

ACCOUNTS = 8


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
