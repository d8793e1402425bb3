"""kill -9 of an agent host in the middle of 200 concurrent paid requests, then a restart: every accepted payment
is collected exactly once, every signed receipt is journaled and committed, and every retried request is answered
without a second charge.

The host runs as ``staked agent serve`` in its own process (the real CLI, the real signal), on the module's anvil
and the session's vLLM server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from eth_account.signers.local import LocalAccount

from runtime.config import AgentSettings
from runtime.epochs import EpochJobs
from runtime.journal import Journal
from runtime.metrics import RuntimeMetrics
from runtime.payments import channel_payment_payload, exact_payment_payload
from runtime.protocol import (
    PAYMENT_REQUIRED_HEADER,
    PAYMENT_SIGNATURE_HEADER,
    ChannelRequirements,
    ExactRequirements,
    decode_payment_required,
    encode_header,
)
from staking import ChainSettings, StakingClient, Voucher, sign, to_wei_open

from .conftest import OPERATOR

pytestmark = pytest.mark.chain

PRICE = to_wei_open("0.01")
EXACT_REQUESTS = 120
CHANNELS, PER_CHANNEL = 16, 5  # 80 channel requests, sequential within a channel
KILL_AFTER = 60  # answers received before the host is killed
PAYERS = (2, 3, 4, 5)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def config(
    tmp_path_factory: pytest.TempPathFactory, agent_settings: AgentSettings, chain_settings: ChainSettings
) -> Path:
    path = tmp_path_factory.mktemp("host") / "agent.toml"
    agent = agent_settings.model_copy(update={"port": _free_port(), "signer_key_env": "CRASH_TEST_SIGNER_KEY"})
    lines = ["[chain]"]
    lines += [f'rpc_url = "{chain_settings.rpc_url}"', f'deployment_file = "{chain_settings.deployment_file}"']
    lines += ['private_key_env = "CRASH_TEST_OPERATOR_KEY"', "poll_interval = 0.02", "", "[agent]"]
    for name, value in agent.model_dump(exclude_none=True).items():
        lines.append(f"{name} = {json.dumps(str(value) if isinstance(value, Path) else value)}")
    path.write_text("\n".join(lines) + "\n")
    return path


class Host:
    """``staked agent serve`` in a process of its own."""

    def __init__(self, config: Path, env: dict[str, str]) -> None:
        self.config, self.env = config, env
        self.log = config.with_suffix(".log")
        self.process: asyncio.subprocess.Process | None = None
        self.url = ""

    async def start(self) -> None:
        settings = AgentSettings.load(self.config)
        self.url = f"http://{settings.host}:{settings.port}"
        with self.log.open("ab") as log:  # a file, not a pipe: nobody reads it while the host runs
            self.process = await asyncio.create_subprocess_exec(
                *(sys.executable, "-m", "staked", "agent", "serve", "--config", str(self.config)),
                env=self.env,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
            )
        async with aiohttp.ClientSession() as session:
            for _ in range(600):
                if self.process.returncode is not None:
                    raise AssertionError(self.log.read_text())
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(self.url + "/healthz") as response:
                        if response.status == 200:
                            return
                await asyncio.sleep(0.1)
        raise AssertionError("the host did not become healthy")

    async def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(self.process.wait(), timeout=60)


@pytest.fixture
async def host(config: Path, keys: list[LocalAccount], signer: LocalAccount) -> AsyncIterator[Host]:
    env = {
        **os.environ,
        "CRASH_TEST_OPERATOR_KEY": keys[OPERATOR].key.hex(),
        "CRASH_TEST_SIGNER_KEY": signer.key.hex(),
    }
    running = Host(config, env)
    yield running
    await running.stop()


async def test_kill_9_amid_200_paid_requests_loses_nothing_and_charges_nothing_twice(
    host: Host, clients: list[StakingClient], keys: list[LocalAccount], config: Path
) -> None:
    await host.start()
    agent = clients[OPERATOR].address
    async with aiohttp.ClientSession(host.url) as http:
        async with http.post("/v1/skills/summarize", json={"text": "x"}) as response:
            exact, channel = decode_payment_required(response.headers[PAYMENT_REQUIRED_HEADER]).accepts
        assert isinstance(exact, ExactRequirements)
        assert isinstance(channel, ChannelRequirements)
        now = int((await clients[0].w3.eth.get_block("latest"))["timestamp"])
        balances = {n: await clients[n].balance_of(keys[n].address) for n in PAYERS}

        # Each request: a body, a key and a payment header, fixed so that a retry is the same request.
        requests: list[tuple[dict[str, Any], str, str]] = []
        for i in range(EXACT_REQUESTS):
            payer = clients[PAYERS[i % len(PAYERS)]]
            authorization, signature = payer.sign_transfer_authorization(
                agent, PRICE, valid_after=0, valid_before=now + 3600
            )
            header = encode_header(exact_payment_payload(exact, authorization, signature))
            requests.append(({"text": f"request {i}", "max_words": 4}, secrets.token_hex(16), header))
        channel_runs: list[list[tuple[dict[str, Any], str, str]]] = []
        for c in range(CHANNELS):
            n = PAYERS[c % len(PAYERS)]
            channel_id = await clients[n].open_channel(agent, PER_CHANNEL * PRICE)
            run = []
            for step in range(1, PER_CHANNEL + 1):
                voucher = Voucher(channel_id, step * PRICE)
                header = encode_header(
                    channel_payment_payload(channel, voucher, sign(keys[n], clients[n].channel_domain(), voucher))
                )
                run.append(({"text": f"channel {c} step {step}", "max_words": 4}, secrets.token_hex(16), header))
            channel_runs.append(run)

        answered: dict[str, dict[str, Any]] = {}
        enough = asyncio.Event()

        async def send(body: dict[str, Any], key: str, header: str) -> None:
            headers = {PAYMENT_SIGNATURE_HEADER: header, "Idempotency-Key": key}
            async with http.post("/v1/skills/summarize", json=body, headers=headers) as response:
                assert response.status == 200, await response.text()
                answered[key] = await response.json()
            if len(answered) >= KILL_AFTER:
                enough.set()

        async def in_order(run: list[tuple[dict[str, Any], str, str]]) -> None:
            for request in run:
                await send(*request)

        work = [asyncio.ensure_future(send(*request)) for request in requests]
        work += [asyncio.ensure_future(in_order(run)) for run in channel_runs]
        await asyncio.wait_for(enough.wait(), timeout=600)
        await host.kill()
        outcomes = await asyncio.gather(*work, return_exceptions=True)
        assert any(isinstance(outcome, Exception) for outcome in outcomes), "the kill interrupted nothing"
        before_restart = dict(answered)

        # Restart; every client retries what it did not get, with the same key and payment.
        await host.start()
        all_requests = requests + [request for run in channel_runs for request in run]
        await asyncio.gather(
            *(send(*request) for request in requests if request[1] not in before_restart),
            *(in_order([request for request in run if request[1] not in before_restart]) for run in channel_runs),
        )
        assert len(answered) == len(all_requests)
        for key, document in before_restart.items():
            assert answered[key] == document  # an answer given before the crash is the one journaled
        # A request answered before the crash and sent again is not charged again either.
        again = next(request for request in all_requests if request[1] in before_restart)
        await send(*again)
        assert answered[again[1]] == before_restart[again[1]]
    await host.stop()

    client = clients[OPERATOR]
    async with Journal(AgentSettings.load(config).journal, agent=agent) as journal:
        jobs = EpochJobs(client, journal, RuntimeMetrics())
        for document in answered.values():
            entry = await journal.lookup(bytes.fromhex(document["requestId"][2:]))
            assert entry is not None
            assert entry.answer is not None
            assert entry.answer.receipt.signature.hex() == document["receipt"]["signature"][2:]
        # The host's own jobs may have collected some already; between them and these runs, all is collected.
        settled = await jobs.settle_authorizations()
        assert (settled.failed, settled.pending) == ((), ())
        await jobs.claim_vouchers()
        assert await journal.pending_authorizations() == ()
        assert await journal.claimable_vouchers() == ()
        commits = await jobs.commit_epochs(force=True)
        committed = sum(commit.receipt_count for commit in commits)
        receipts = [r for commit in commits for r in await journal.receipts(commit.epoch)]
        assert committed == len(receipts) == len(all_requests)
        assert {r.receipt.request_id for r in receipts} == {
            bytes.fromhex(document["requestId"][2:]) for document in answered.values()
        }
    # Every payer paid exactly its requests' price once: exact ones settled, channels claimed in full.
    spent = {n: balances[n] - await clients[n].balance_of(keys[n].address) for n in PAYERS}
    assert sum(spent.values()) == len(all_requests) * PRICE
