"""``staked pay``: a PAYMENT-SIGNATURE header that a plain HTTP client sends to pay a real agent host (anvil + vLLM
CPU + examples/summarizer.py) for one call; and ``staked agent serve --account``, the host as a devnet account.

``--account`` names resolve through a devnet file in the working directory, written here for the module's chain:
payer-1 is keys[5], agent-2 keys[6]. The commands run through click's runner in a worker thread (each runs its own
event loop) while the test's loop serves the agent; ``staked agent serve`` runs as a process of its own.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak

from agents.record import SignedReceiptDocument
from runtime.api import ErrorBody, SkillResponse
from runtime.config import AgentSettings
from runtime.protocol import PAYMENT_SIGNATURE_HEADER, decode_payment_payload
from runtime.serve import AgentService
from staked.agent_cli import pay
from staking import ChainSettings, Deployment, recover, to_wei_open
from staking.devnet import DevnetAccount, DevnetInfo

# The runtime's agent host fixtures, shared with this module (one chain per module, the session's vLLM).
from tests.runtime.conftest import (  # noqa: F401
    OPERATOR,
    agent_service,
    agent_settings,
    chain_settings,
    clients,
    docs_index,
    model_id,
    signer,
)

pytestmark = pytest.mark.chain

PRICE = to_wei_open("0.01")
TEXT = {"text": "The for statement iterates over the items of any sequence.", "max_words": 8}
#: Devnet names of the module's development accounts (their derivation indexes are the keys' positions).
PAYER_1, AGENT_2, CONFIG_PAYER = 5, 6, 4
KEY_VARIABLE = "STAKED_TEST_PAYER_KEY"


@pytest.fixture(scope="module")
def devnet_dir(
    chain_settings: ChainSettings,  # noqa: F811
    deployment: Deployment,
    keys: list[LocalAccount],
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """A working directory whose .staked/devnet.json names the module's accounts, as `staked devnet` writes it."""
    root = tmp_path_factory.mktemp("devnet")
    named = {"agent-1": OPERATOR, "payer-1": PAYER_1, "agent-2": AGENT_2}
    accounts = tuple(DevnetAccount(name=n, address=keys[i].address, index=i) for n, i in named.items())
    (root / ".staked").mkdir()
    DevnetInfo(rpc_url=chain_settings.rpc_url, deployment=deployment, accounts=accounts).save(
        root / ".staked" / "devnet.json"
    )
    return root


@pytest.fixture
def in_devnet_dir(devnet_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(devnet_dir)
    return devnet_dir


async def staked_pay(chain_settings: ChainSettings, keys: list[LocalAccount], *args: str) -> Result:  # noqa: F811
    env = {
        "STAKED_RPC_URL": chain_settings.rpc_url,
        "STAKED_DEPLOYMENT_FILE": str(chain_settings.deployment_file),
        KEY_VARIABLE: keys[CONFIG_PAYER].key.hex(),
    }
    return await asyncio.to_thread(CliRunner().invoke, pay, list(args), env=env)


async def post(url: str, header: str, body: object) -> httpx.Response:
    async with httpx.AsyncClient(timeout=300) as http:
        return await http.post(url + "/v1/skills/summarize", json=body, headers={PAYMENT_SIGNATURE_HEADER: header})


async def test_the_header_pays_one_call_and_only_that_one(
    agent_service: AgentService,  # noqa: F811
    chain_settings: ChainSettings,  # noqa: F811
    keys: list[LocalAccount],
    signer: LocalAccount,  # noqa: F811
    in_devnet_dir: Path,
) -> None:
    result = await staked_pay(chain_settings, keys, agent_service.url, "summarize", "--account", "payer-1")
    assert result.exit_code == 0, result.output
    header = result.stdout.strip()
    assert result.stdout == header + "\n"  # only the header: $(staked pay ...) is the value
    operator = keys[OPERATOR].address
    assert re.fullmatch(rf"pays 0\.01 OPEN to {operator} for one 'summarize' call until \S+\+00:00\n", result.stderr)

    paid = await post(agent_service.url, header, TEXT)
    assert paid.status_code == 200, paid.text
    answer = SkillResponse.model_validate_json(paid.content)
    receipt = answer.receipt
    assert (receipt.payer, receipt.agent, receipt.price) == (keys[PAYER_1].address, operator, PRICE)
    assert recover(agent_service.client.receipt_domain(), receipt.receipt, receipt.signature_bytes) == signer.address

    # The same call again is the same request: its answer, charged once. Another call with it is a replay.
    again = await post(agent_service.url, header, TEXT)
    assert again.status_code == 200, again.text
    assert SkillResponse.model_validate_json(again.content).request_id == answer.request_id
    replayed = await post(agent_service.url, header, {**TEXT, "max_words": 5})
    assert replayed.status_code == 402, replayed.text
    assert ErrorBody.model_validate_json(replayed.content).error.code == "replayed"


async def test_pay_signs_with_the_configured_key_and_shows_the_payment_as_json(
    agent_service: AgentService,  # noqa: F811
    chain_settings: ChainSettings,  # noqa: F811
    keys: list[LocalAccount],
    tmp_path: Path,
) -> None:
    config = tmp_path / "payer.toml"
    config.write_text(f'[chain]\nprivate_key_env = "{KEY_VARIABLE}"\n')  # the rest from STAKED_* variables
    before = int(time.time())
    result = await staked_pay(chain_settings, keys, agent_service.url, "summarize", "--config", str(config), "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    payment = decode_payment_payload(document["header"])
    assert payment.model_dump(mode="json", by_alias=True) == document["payment"]
    accepted = document["payment"]["accepted"]
    assert (accepted["scheme"], accepted["network"], accepted["amount"]) == ("exact", "eip155:31337", str(PRICE))
    assert accepted["payTo"] == keys[OPERATOR].address
    assert document["payment"]["resource"]["url"] == agent_service.url + "/v1/skills/summarize"
    authorization = document["payment"]["payload"]["authorization"]
    assert (authorization["from"], authorization["to"], authorization["value"]) == (
        keys[CONFIG_PAYER].address, keys[OPERATOR].address, str(PRICE)
    )  # fmt: skip
    assert int(authorization["validBefore"]) >= before + accepted["maxTimeoutSeconds"]


async def test_pay_refuses_an_unknown_skill_and_a_missing_key_or_account(
    agent_service: AgentService,  # noqa: F811
    chain_settings: ChainSettings,  # noqa: F811
    keys: list[LocalAccount],
    in_devnet_dir: Path,
) -> None:
    unknown = await staked_pay(chain_settings, keys, agent_service.url, "translate", "--account", "payer-1")
    assert unknown.exit_code == 1
    assert unknown.output == (
        "Error: the agent's card lists no skill 'translate': its price is unknown (it sells ['chat', 'summarize'])\n"
    )
    no_key = await staked_pay(chain_settings, keys, agent_service.url, "summarize")
    assert no_key.exit_code == 1
    assert "Error: paying needs the payer's key: set keystore in [chain], or pass --account NAME" in no_key.output
    no_account = await staked_pay(chain_settings, keys, agent_service.url, "summarize", "--account", "payer-9")
    assert no_account.exit_code == 1
    assert "Error: no devnet account 'payer-9'; known: agent-1, payer-1, agent-2" in no_account.output


@pytest.fixture
async def host_as_agent_2(
    agent_settings: AgentSettings,  # noqa: F811
    chain_settings: ChainSettings,  # noqa: F811
    in_devnet_dir: Path,
    tmp_path: Path,
) -> AsyncIterator[str]:
    """``staked agent serve --account agent-2`` (with a receipt signer of its own); yields its URL."""
    settings = agent_settings.model_copy(
        update={"journal": tmp_path / "journal.sqlite", "signer_key_env": "STAKED_TEST_SIGNER_2"}
    )
    lines = [
        "[chain]",
        f'rpc_url = "{chain_settings.rpc_url}"',
        f'deployment_file = "{chain_settings.deployment_file}"',
    ]
    lines += ["poll_interval = 0.02", "[agent]"]
    for name, value in settings.model_dump(exclude_none=True).items():
        lines.append(f"{name} = {json.dumps(str(value) if isinstance(value, Path) else value)}")
    config = tmp_path / "agent.toml"
    config.write_text("\n".join(lines) + "\n")
    env = {**os.environ, "STAKED_TEST_SIGNER_2": Account.from_key(keccak(text="agent-2's signer")).key.hex()}
    with (tmp_path / "host.log").open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "staked", "agent", "serve", "--config", str(config), "--account", "agent-2"),
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
        )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), timeout=300)).decode()
        served = re.fullmatch(r"serving \S+ at (http://\S+) \(Ctrl-C to stop\)\n", line)
        assert served is not None, (tmp_path / "host.log").read_text()[-3000:]
        yield served[1]
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), timeout=60)
    assert process.returncode == 0, (tmp_path / "host.log").read_text()[-3000:]


async def test_agent_serve_runs_as_a_devnet_account_and_curl_style_payment_pays_it(
    host_as_agent_2: str,
    chain_settings: ChainSettings,  # noqa: F811
    keys: list[LocalAccount],
) -> None:
    result = await staked_pay(chain_settings, keys, host_as_agent_2, "summarize", "--account", "payer-1")
    assert result.exit_code == 0, result.output
    paid = await post(host_as_agent_2, result.stdout.strip(), TEXT)
    assert paid.status_code == 200, paid.text
    receipt = SignedReceiptDocument.model_validate(paid.json()["receipt"])
    assert (receipt.agent, receipt.payer) == (keys[AGENT_2].address, keys[PAYER_1].address)
