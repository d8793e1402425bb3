"""A real agent host for the runtime's end-to-end tests: anvil + the deployed suite + vLLM CPU + the example agent.

``agent_service`` is module-scoped (one chain per module, conftest.py at the root); the vLLM server is the
session's. The agent is ``examples/summarizer.py``; its attribution index covers CPython's reference topics split
among three contributors.
"""

from __future__ import annotations

import itertools
import pydoc_data.topics
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak
from web3 import AsyncWeb3

from agents import VLLMServer
from agents.attribution import AttributionIndex, Contribution, Datanet
from agents.factory import model_id as model_id_of
from runtime.config import AgentSettings
from runtime.serve import AgentService
from staking import Anvil, ChainSettings, Deployment, StakingClient, Transactor, to_wei_open

EXAMPLE_AGENT = str(Path(__file__).parents[2] / "examples" / "summarizer.py") + ":Summarizer"
#: keys[1] operates the agent; keys[2], keys[3] pay it; keys[7] curates the datanet the model was trained on.
OPERATOR, PAYER, OTHER_PAYER, CURATOR = 1, 2, 3, 7


@pytest.fixture(scope="session")
def docs_index(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    """The reference topics as a datanet of three contributors, indexed with the tiny model's tokenizer."""
    root = tmp_path_factory.mktemp("docs")
    contributors = [Account.from_key(keccak(text=f"contributor {n}")).address for n in range(3)]
    net = Datanet.create(root / "datanet", name="python-docs")
    net.add(
        Contribution(text=text, contributor=contributor)
        for (_, text), contributor in zip(sorted(pydoc_data.topics.topics.items()), itertools.cycle(contributors))
    )
    AttributionIndex.build(root / "index", [net], tiny_model_dir)
    return root / "index"


@pytest.fixture(scope="module")
async def clients(
    w3: AsyncWeb3[Any], deployment: Deployment, deployer: Transactor, keys: list[LocalAccount]
) -> list[StakingClient]:
    """A client per development account; all but the deployer get 10,000 OPEN."""
    token = deployment.contract(w3, "OpenToken")
    for key in keys[1:]:
        await deployer.send(token.functions.transfer(key.address, to_wei_open(10_000)))
    return [StakingClient(w3, deployment, key) for key in keys]


@pytest.fixture(scope="module")
def chain_settings(chain: Anvil, deployment: Deployment, tmp_path_factory: pytest.TempPathFactory) -> ChainSettings:
    path = tmp_path_factory.mktemp("deployment") / "deployment.json"
    path.write_text(deployment.model_dump_json())
    return ChainSettings(rpc_url=chain.url, deployment_file=path, poll_interval=0.02)


@pytest.fixture(scope="module")
async def model_id(clients: list[StakingClient], docs_index: Path, tiny_model_dir: Path) -> bytes:
    """The tiny model, registered in DatanetRegistry with its datanet and index root by the curator."""
    curator = clients[CURATOR]
    model_id = model_id_of(tiny_model_dir)
    index = AttributionIndex.open(docs_index, tiny_model_dir)
    net = Datanet.open(docs_index.parent / "datanet")
    datanet_id = await curator.create_datanet("python-docs")
    await curator.add_contributions(datanet_id, [c.content_hash for c in net], [c.contributor for c in net])
    await curator.register_model(model_id, [datanet_id], index.root, "tiny-docs")
    return model_id


@pytest.fixture(scope="module")
def agent_settings(
    tmp_path_factory: pytest.TempPathFactory,
    vllm_server: VLLMServer,
    docs_index: Path,
    tiny_model_dir: Path,
    model_id: bytes,
) -> AgentSettings:
    return AgentSettings(
        agent=EXAMPLE_AGENT,
        port=0,
        vllm_url=vllm_server.url,
        index=docs_index,
        tokenizer=tiny_model_dir,
        model_id="0x" + model_id.hex(),
        journal=tmp_path_factory.mktemp("journal") / "journal.sqlite",
        stake="1000",
    )


@pytest.fixture(scope="module")
def signer() -> LocalAccount:
    return Account.from_key(keccak(text="the agent's hot receipt signer"))


@pytest.fixture(scope="module")
async def agent_service(
    agent_settings: AgentSettings,
    chain_settings: ChainSettings,
    clients: list[StakingClient],
    keys: list[LocalAccount],
    signer: LocalAccount,
) -> AsyncIterator[AgentService]:
    async with AgentService.start(agent_settings, chain_settings, operator=keys[OPERATOR], signer=signer) as service:
        yield service
