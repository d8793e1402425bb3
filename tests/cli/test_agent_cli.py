"""``staked call`` paying a real agent host (anvil + vLLM CPU + examples/summarizer.py), and ``staked agent serve``
refusing a bad config with a message that says what is wrong.

The commands run through click's runner in a worker thread: each runs its own event loop (``asyncio.run``), while
the test's loop serves the agent.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from eth_account.signers.local import LocalAccount

from agents.record import SignedReceiptDocument
from runtime.serve import AgentService
from staked.agent_cli import agent, call
from staking import ChainSettings, recover, to_wei_open

# The runtime's agent host fixtures, shared with this module (one chain per module, the session's vLLM).
from tests.runtime.conftest import (  # noqa: F401
    agent_service,
    agent_settings,
    chain_settings,
    clients,
    docs_index,
    model_id,
    signer,
)

PRICE = to_wei_open("0.01")
TEXT = json.dumps({"text": "The for statement iterates over the items of any sequence.", "max_words": 8})
#: keys[5] pays from the shell; its key reaches the command through this variable, as [chain] private_key_env says.
PAYER, KEY_VARIABLE = 5, "STAKED_TEST_PAYER_KEY"


@pytest.fixture(scope="module")
def payer_config(chain_settings: ChainSettings, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: F811
    path = tmp_path_factory.mktemp("payer") / "payer.toml"
    path.write_text(
        f'[chain]\nrpc_url = "{chain_settings.rpc_url}"\ndeployment_file = "{chain_settings.deployment_file}"\n'
        f'private_key_env = "{KEY_VARIABLE}"\npoll_interval = 0.02\n'
    )
    return path


async def staked_call(keys: list[LocalAccount], *args: str) -> Result:
    env = {KEY_VARIABLE: keys[PAYER].key.hex()}
    return await asyncio.to_thread(CliRunner().invoke, call, list(args), env=env)


@pytest.mark.chain
async def test_staked_call_pays_and_prints_the_output_receipt_and_price(
    agent_service: AgentService,  # noqa: F811
    keys: list[LocalAccount],
    signer: LocalAccount,  # noqa: F811
    payer_config: Path,
    tmp_path: Path,
) -> None:
    store = str(tmp_path / "receipts.sqlite")
    common = ("--config", str(payer_config), "--store", store)
    result = await staked_call(keys, agent_service.url, "summarize", TEXT, *common, "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert isinstance(document["output"]["summary"], str)
    assert (document["price"], document["scheme"], document["channel"]["paid"]) == (str(PRICE), "channel", str(PRICE))
    receipt = SignedReceiptDocument.model_validate(document["receipt"])
    assert recover(agent_service.client.receipt_domain(), receipt.receipt, receipt.signature_bytes) == signer.address
    assert (receipt.payer, receipt.price, receipt.request_id) == (keys[PAYER].address, PRICE, document["request_id"])

    again = await staked_call(keys, agent_service.url, "summarize", TEXT, *common)
    assert again.exit_code == 0, again.output
    channel = document["channel"]["id"]
    assert f"price: 0.01 OPEN, paid by channel {channel} (0.98 of 1 OPEN left)" in again.output
    assert "receipt (verified, stored in" in again.output

    exact = await staked_call(keys, agent_service.url, "summarize", TEXT, *common, "--scheme", "exact")
    assert exact.exit_code == 0, exact.output
    assert "price: 0.01 OPEN, paid by exact" in exact.output


@pytest.mark.chain
async def test_staked_call_reports_the_agents_refusal_and_bad_arguments(
    agent_service: AgentService,  # noqa: F811
    keys: list[LocalAccount],
    payer_config: Path,
    tmp_path: Path,
) -> None:
    common = ("--config", str(payer_config), "--store", str(tmp_path / "receipts.sqlite"))
    unknown = await staked_call(keys, agent_service.url, "translate", TEXT, *common)
    assert unknown.exit_code == 1
    assert "404 unknown_skill: no skill 'translate'" in unknown.output
    invalid = await staked_call(keys, agent_service.url, "summarize", '{"text": ""}', *common)
    assert invalid.exit_code == 1
    assert "422 invalid_input" in invalid.output
    not_json = await staked_call(keys, agent_service.url, "summarize", "{text", *common)
    assert not_json.exit_code == 2
    assert "Invalid value for JSON: not JSON" in not_json.output


def test_staked_agent_serve_refuses_a_bad_config_with_a_clear_message(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(agent, ["serve", "--config", str(tmp_path / "nowhere.toml")])
    assert missing.exit_code == 2
    assert "does not exist" in missing.output

    incomplete = tmp_path / "incomplete.toml"
    incomplete.write_text('[agent]\nvllm_url = "http://127.0.0.1:8000"\n')
    result = runner.invoke(agent, ["serve", "--config", str(incomplete)])
    assert result.exit_code == 1
    assert "Error: invalid [agent] settings" in result.output
    assert re.search(r"^agent\n\s+Field required", result.output, re.MULTILINE)

    no_such_agent = tmp_path / "no-such-agent.toml"
    no_such_agent.write_text(
        '[agent]\nagent = "no_such_module:Agent"\nindex = "index"\ntokenizer = "model"\nsigner_key_env = "UNSET"\n'
    )
    result = runner.invoke(agent, ["serve", "--config", str(no_such_agent)])
    assert result.exit_code == 1
    assert "Error: agent 'no_such_module:Agent': cannot import no_such_module" in result.output
