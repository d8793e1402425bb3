"""The README's deployment on a real L2, run as written against anvil: its ``deploy.toml`` and its command.

The one liberty taken is the RPC port, remapped to an anvil that mines a block every 0.2 s besides its
transactions, like an L2 (the example waits for confirmations); the deployer's key is anvil's first development
key, in the variable the example's ``private_key_env`` names.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from staking import Anvil, DeploymentConfig, Role, StakingClient, connect, dev_accounts, load_deployment, to_wei_open
from tests.docs.readme import readme_blocks


@pytest.fixture
async def live_chain() -> AsyncIterator[Anvil]:
    async with Anvil(block_time=0.2) as anvil:
        yield anvil


@pytest.mark.chain
async def test_the_deployment_example_deploys_what_its_config_says(live_chain: Anvil, tmp_path: Path) -> None:
    w3 = await connect(live_chain.url)
    (config,) = [block for block in readme_blocks() if block.file == "deploy.toml"]
    (command,) = [block for block in readme_blocks() if block.language == "sh" and "deploy" in block.words]
    (tmp_path / "deploy.toml").write_text(re.sub(r"\b8545\b", str(live_chain.port), config.text))
    settings = tomllib.loads(config.text)
    key_variable = settings["chain"]["private_key_env"]
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        key_variable: dev_accounts(1)[0].key.hex(),
    }

    result = await asyncio.to_thread(
        subprocess.run, ["bash", "-euo", "pipefail", "-c", command.text], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert key_variable not in result.stdout + result.stderr
    assert dev_accounts(1)[0].key.hex() not in result.stdout + result.stderr

    deployment = load_deployment(tmp_path / settings["chain"]["deployment_file"])
    assert deployment.chain_id == await w3.eth.chain_id
    client = StakingClient(w3, deployment)
    parameters = settings["deployment"]
    assert await client.minimum_stake(Role.AGENT) == to_wei_open(parameters["min_agent_stake"])
    assert await client.minimum_stake(Role.VALIDATOR) == to_wei_open(parameters["min_validator_stake"])
    assert await client.staking.functions.unbondingPeriod().call() == parameters["unbonding_period"]
    assert await client.channels.functions.withdrawDelay().call() == parameters["withdraw_delay"]
    assert await client.receipts.functions.attributionBps().call() == parameters["attribution_bps"]
    disputes = await client.disputes.functions.parameters().call()
    expected = DeploymentConfig(disputes=parameters["disputes"]).disputes
    assert tuple(disputes) == expected.as_tuple()
