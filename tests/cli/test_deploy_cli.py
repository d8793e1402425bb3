"""``staked deploy`` on a fresh anvil: the file it writes is a valid deployment of the committed contracts with the
``[deployment]`` parameters, an existing file is kept, and a bad parameter stops it before anything is sent.

The command runs through click's runner in a worker thread: it runs its own event loop, the test's loop reads the
chain.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from eth_account.signers.local import LocalAccount
from web3 import AsyncWeb3

from contracts import artifact
from staked.chain_cli import deploy_command
from staking import CONTRACT_NAMES, Anvil, Deployment, Role, StakingClient, load_deployment, to_wei_open

pytestmark = pytest.mark.chain

#: keys[0] deploys; its key reaches the command through this variable, as [chain] private_key_env says.
KEY_VARIABLE = "STAKED_TEST_DEPLOYER_KEY"
TREASURY = 6
PARAMETERS = """
[deployment]
unbonding_period = 345600
min_agent_stake = "500"
min_validator_stake = 250
treasury = "{treasury}"

[deployment.disputes]
challenge_bond = "50.5"
quorum_bps = 5000
"""


def write_config(path: Path, chain: Anvil, deployment: str) -> Path:
    """A config deploying from keys[0] to ``chain``, with ``deployment`` after [chain] (or before, when it is not a
    table)."""
    chain_table = (
        f'[chain]\nrpc_url = "{chain.url}"\ndeployment_file = "{path.parent / "deployment.json"}"\n'
        f'private_key_env = "{KEY_VARIABLE}"\npoll_interval = 0.02\n'
    )
    before = deployment.startswith("deployment =")
    path.write_text(deployment + chain_table if before else chain_table + deployment)
    return path


async def staked_deploy(keys: list[LocalAccount], *args: str) -> Result:
    env = {KEY_VARIABLE: keys[0].key.hex()}
    return await asyncio.to_thread(CliRunner().invoke, deploy_command, list(args), env=env)


async def test_deploy_writes_the_deployment_of_the_committed_contracts_with_the_parameters(
    chain: Anvil, w3: AsyncWeb3[Any], keys: list[LocalAccount], tmp_path: Path
) -> None:
    config = write_config(tmp_path / "deploy.toml", chain, PARAMETERS.format(treasury=keys[TREASURY].address))
    result = await staked_deploy(keys, "--config", str(config))
    assert result.exit_code == 0, result.output

    deployment = load_deployment(tmp_path / "deployment.json")  # [chain] deployment_file, by default
    summary = r"^deployed to chain 31337 from block (\d+) by (0x\w{40}) \(gas ([\d,]+)\); wrote (.+)$"
    header = re.search(summary, result.stdout, re.MULTILINE)
    assert header is not None, result.stdout
    written = str(tmp_path / "deployment.json")
    assert (int(header[1]), header[2], header[4]) == (deployment.block, keys[0].address, written)
    assert int(header[3].replace(",", "")) > 1_000_000
    for name, address in deployment.contracts.model_dump().items():
        assert f"  {name:<18} {address}\n" in result.stdout
    assert f"deploying to chain 31337 at {chain.url} from {keys[0].address} ..." in result.stderr

    parameters = deployment.parameters
    assert (parameters.unbonding_period, parameters.min_agent_stake, parameters.min_validator_stake) == (
        345600, to_wei_open(500), to_wei_open(250)
    )  # fmt: skip
    assert (parameters.treasury, parameters.withdraw_delay) == (keys[TREASURY].address, 86400)
    assert (parameters.disputes.challenge_bond, parameters.disputes.quorum_bps) == (to_wei_open("50.5"), 5000)
    await assert_on_chain(w3, deployment)


async def test_deploy_keeps_an_existing_deployment_file_unless_forced(
    chain: Anvil, w3: AsyncWeb3[Any], keys: list[LocalAccount], tmp_path: Path
) -> None:
    config = write_config(tmp_path / "deploy.toml", chain, "")
    existing = tmp_path / "existing.json"
    existing.write_text("{}")
    block = await w3.eth.block_number
    kept = await staked_deploy(keys, "--config", str(config), "--out", str(existing))
    assert kept.exit_code == 1
    assert f"Error: {existing} exists: pass --force to replace it, or --out to write elsewhere" in kept.output
    assert (existing.read_text(), await w3.eth.block_number) == ("{}", block)  # nothing sent

    forced = await staked_deploy(keys, "--config", str(config), "--out", str(existing), "--force", "--json")
    assert forced.exit_code == 0, forced.output
    document = json.loads(forced.stdout)
    deployment = Deployment.model_validate(document["deployment"])
    assert load_deployment(existing) == deployment
    assert document["file"] == str(existing)
    assert document["gas_used"] > 1_000_000
    assert deployment.block > block
    await assert_on_chain(w3, deployment)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("[deployment.disputes]\nquorum_bps = 5", "disputes.quorum_bps: Input should be greater than or equal to 1000"),
        ('[deployment.disputes]\nchallenge_bond = "0.5"', "disputes.challenge_bond: must be at least 1 OPEN"),
        ("[deployment]\nmin_agent_stake = 0.5", 'min_agent_stake: write OPEN as a string or an integer ("0.5", 1000)'),
        ('[deployment]\nmin_agent_stake = "-1"', "min_agent_stake: '-1' OPEN is negative"),
        ('[deployment]\nunbonding_period = "a week"', "unbonding_period: Input should be a valid integer"),
        ("[deployment]\nmin_stake = 1", "min_stake: no such parameter"),
        ("[deployment]\nunbonding_period = 7200", "unbonding_period 7200 s is shorter than a dispute"),
        ('[deployment]\ntreasury = "0x12"', "treasury: not an address: '0x12'"),
        ("deployment = 3\n", "it must be a table"),
    ],
)
async def test_deploy_refuses_a_bad_parameter_naming_it_before_sending_anything(
    chain: Anvil, w3: AsyncWeb3[Any], keys: list[LocalAccount], tmp_path: Path, table: str, message: str
) -> None:
    config = write_config(tmp_path / "deploy.toml", chain, table)
    block = await w3.eth.block_number
    result = await staked_deploy(keys, "--config", str(config))
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: invalid [deployment] in {config}: "), result.output
    assert message.format(config=config) in result.output
    assert len(result.output.splitlines()) == 1
    assert await w3.eth.block_number == block
    assert not (tmp_path / "deployment.json").exists()


async def test_deploy_needs_the_deployers_key(chain: Anvil, keys: list[LocalAccount], tmp_path: Path) -> None:
    config = tmp_path / "deploy.toml"
    config.write_text(f'[chain]\nrpc_url = "{chain.url}"\ndeployment_file = "{tmp_path / "d.json"}"\n')
    result = await staked_deploy(keys, "--config", str(config))
    assert result.exit_code == 1
    assert "Error: deploying needs the deployer's key: set keystore (or private_key_env) in [chain]" in result.output


async def assert_on_chain(w3: AsyncWeb3[Any], deployment: Deployment) -> None:
    """Every address holds its committed runtime code (immutables filled in where solc leaves zeros), wired and
    parameterised as the file says."""
    fields = deployment.contracts.model_dump()
    for name, address in zip(CONTRACT_NAMES, fields.values(), strict=True):
        code = bytes(await w3.eth.get_code(address))
        committed = bytes.fromhex(artifact(name).deployed_bytecode.removeprefix("0x"))
        assert len(code) == len(committed), name
        assert all(a == b or b == 0 for a, b in zip(code, committed, strict=True)), name
    client = StakingClient(w3, deployment, None)
    parameters = deployment.parameters
    assert await client.staking.functions.minimumStake(Role.AGENT).call() == parameters.min_agent_stake
    assert await client.staking.functions.minimumStake(Role.VALIDATOR).call() == parameters.min_validator_stake
    assert await client.staking.functions.unbondingPeriod().call() == parameters.unbonding_period
    assert await client.staking.functions.disputeManager().call() == deployment.contracts.dispute_manager
    assert await client.receipts.functions.disputeManager().call() == deployment.contracts.dispute_manager
    assert tuple(await client.disputes.functions.parameters().call()) == parameters.disputes.as_tuple()
