"""Starting and stopping an agent host: the checks before serving, the server, the epoch jobs, a clean drain.

:class:`AgentService` is what ``staked agent serve`` runs, and what tests and the demo run in-process::

    async with AgentService.start(agent_settings, chain_settings) as service:
        print(service.url)            # serving; epoch jobs running
    # drained: in-flight requests finished, jobs stopped, journal closed

Start-up refuses to serve, with a message that says what to do, when the vLLM server does not serve the agent's
model, when the operator is not registered with this signer (and ``stake`` is not configured to register it), or
when its stake is under the minimum.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Self

from aiohttp import web
from eth_account.signers.local import LocalAccount

from agents import Agent, Backend, VLLMBackend, load_agent_class
from agents.attribution import AttributionIndex
from agents.errors import BackendError
from agents.factory import ModelDirectoryError
from agents.factory import model_id as model_id_of
from staking.client import StakingClient
from staking.errors import ConfigError
from staking.keys import account_from_env, load_keystore
from staking.service import listen
from staking.settings import ChainSettings
from staking.types import Role
from staking.units import format_open

from .app import create_app
from .config import AgentSettings
from .epochs import DEFAULT_COMMIT_CHECK_SECONDS, EpochJobs
from .host import AgentHost
from .journal import Journal
from .metrics import RuntimeMetrics
from .payments import PaymentVerifier, StakingPaymentChain

__all__ = ["AgentService", "ensure_registered"]

_log = logging.getLogger(__name__)
_ZERO_ADDRESS = "0x" + "00" * 20


@dataclass
class AgentService:
    """A running agent host (see the module docstring)."""

    settings: AgentSettings
    client: StakingClient
    agent: Agent
    host: AgentHost
    jobs: EpochJobs
    runner: web.AppRunner
    url: str

    @classmethod
    @contextlib.asynccontextmanager
    async def start(
        cls,
        settings: AgentSettings,
        chain: ChainSettings,
        *,
        operator: LocalAccount | None = None,
        signer: LocalAccount | None = None,
        backend: Backend | None = None,
        host_class: type[AgentHost] = AgentHost,
        jobs_class: type[EpochJobs] = EpochJobs,
    ) -> AsyncIterator[Self]:
        """Checks everything, then serves until the block exits (see the module docstring).

        Args:
            settings: the ``[agent]`` settings.
            chain: the ``[chain]`` settings; their key is the operator's.
            operator: the operator account, instead of the one ``chain`` names.
            signer: the receipt signer, instead of the one ``settings`` names.
            backend: the inference backend, instead of the vLLM server ``settings`` names (it is closed on exit).
            host_class, jobs_class: subclasses that change how requests are answered or epochs run (the cheating
                agents of ``examples/cheaters.py`` are built this way, to show validators catching them).

        Raises:
            ConfigError: a setting, key, the model or the registration is not right; the message says what to do.
            ChainUnavailableError / WrongChainError: the chain cannot be used.
        """
        agent_cls = load_agent_class(settings.agent)
        signer = signer or await _signer(settings)
        client = await StakingClient.from_settings(chain, operator)
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(client.w3.provider.disconnect)
            backend = backend or VLLMBackend(settings.vllm_url, dtype=settings.dtype)
            agent = agent_cls(await stack.enter_async_context(backend))
            await _check_model(agent, settings)
            index = await asyncio.to_thread(AttributionIndex.open, settings.index, settings.tokenizer)
            # Bound now, so that with port 0 the registered endpoint names the port actually served.
            listener = stack.enter_context(listen(settings.host, settings.port))
            endpoint = settings.public_url or f"http://{settings.host}:{listener.getsockname()[1]}"
            model_id = await ensure_registered(client, agent, signer, settings, endpoint)
            await stack.enter_async_context(agent)
            journal = await stack.enter_async_context(Journal(settings.journal, agent=client.address))
            metrics = RuntimeMetrics()
            verifier = PaymentVerifier(chain=StakingPaymentChain(client), journal=journal, payee=client.address)
            host = host_class(
                agent,
                verifier=verifier,
                journal=journal,
                index=index,
                signer=signer,
                receipt_domain=client.receipt_domain(),
                model_id=model_id,
                metrics=metrics,
            )
            jobs = jobs_class(
                client,
                journal,
                metrics,
                epoch_seconds=settings.epoch_seconds,
                # A due epoch waits at most a quarter of an epoch (and never over a minute) for its commit.
                commit_check_seconds=min(DEFAULT_COMMIT_CHECK_SECONDS, settings.epoch_seconds / 4),
                claim_seconds=settings.claim_seconds,
                settle_seconds=settings.settle_seconds,
                challenge_seconds=settings.challenge_seconds,
            )
            app = create_app(
                host,
                chain=client,
                inclusion=journal.inclusion,
                endpoint=endpoint,
                max_body_bytes=settings.max_body_bytes,
                max_concurrency=settings.max_concurrency,
            )
            # Jobs first: they align the journal's epoch with the chain before the first receipt is signed.
            await jobs.start()
            stack.push_async_callback(jobs.shutdown)
            runner = web.AppRunner(app, shutdown_timeout=settings.shutdown_grace, access_log=None)
            await runner.setup()
            stack.push_async_callback(runner.cleanup)  # drains in-flight requests before jobs and journal stop
            await web.SockSite(runner, listener).start()
            url = f"http://{settings.host}:{listener.getsockname()[1]}"
            _log.info("agent %s serving at %s as %s (signer %s)", agent.name, url, client.address, signer.address)
            yield cls(settings, client, agent, host, jobs, runner, url)
            _log.info("agent %s stopping: draining requests, stopping jobs, closing the journal", agent.name)


async def ensure_registered(
    client: StakingClient, agent: Agent, signer: LocalAccount, settings: AgentSettings, endpoint: str
) -> bytes:
    """Makes sure the operator is an active agent with this signer, model, price and ``endpoint``, registering,
    updating and staking when configured to.

    Returns:
        The modelId the agent's receipts carry.

    Raises:
        ConfigError: not registered, registered with another signer or model, or under the minimum stake, and the
            settings do not allow fixing it; the message says how.
    """
    operator = client.address
    info = await client.agent_info(operator)
    wanted_model = bytes.fromhex(settings.model_id[2:]) if settings.model_id else None
    registered = info.signer != _ZERO_ADDRESS
    model_id = wanted_model or (info.model_id if registered else await _served_model_id(settings))
    target = settings.stake_wei
    if target is not None:
        stake = await client.stake_info(operator, Role.AGENT)
        if stake.active < target:
            _log.info("staking %s OPEN as agent %s", format_open(target - stake.active), operator)
            await client.stake(Role.AGENT, target - stake.active)
    registration = (signer.address, model_id, agent.price, endpoint)
    current = (info.signer, info.model_id, info.price, info.endpoint)
    if not registered:
        if target is None:
            raise ConfigError(f"agent {operator} is not registered: set stake in [agent] to register it at start-up")
        await client.register_agent(*registration)
    elif current != registration:
        if info.signer != signer.address:
            raise ConfigError(
                f"agent {operator} is registered with signer {info.signer}, not {signer.address}: a signer is bound to "
                "its operator for good; use the registered signer's key"
            )
        if target is None:
            raise ConfigError(
                f"agent {operator}'s registration (model, price, endpoint) differs from this host's: set stake in "
                "[agent] to update it at start-up"
            )
        await client.update_agent(*registration)
    if not await client.is_active(operator, Role.AGENT):
        stake = await client.stake_info(operator, Role.AGENT)
        minimum = await client.minimum_stake(Role.AGENT)
        raise ConfigError(
            f"agent {operator} has {format_open(stake.active)} OPEN staked, under the minimum of "
            f"{format_open(minimum)}: stake more (staked stake agent AMOUNT) or set stake in [agent]"
        )
    return model_id


async def _served_model_id(settings: AgentSettings) -> bytes:
    """The modelId of the weights in ``tokenizer`` (the model directory, as ``staked model id`` computes it): what a
    first registration names when ``model_id`` is not set."""
    try:
        return await asyncio.to_thread(model_id_of, settings.tokenizer)  # hashes every weight file
    except ModelDirectoryError as exc:
        raise ConfigError(
            f"the agent is not registered and its modelId is unknown: {exc}; set model_id in [agent] "
            "(staked model id MODEL_DIR prints it)"
        ) from exc


async def _signer(settings: AgentSettings) -> LocalAccount:
    if settings.signer_keystore is not None:
        return await asyncio.to_thread(load_keystore, settings.signer_keystore)  # scrypt: keep it off the loop
    if settings.signer_key_env is not None:
        return account_from_env(settings.signer_key_env)
    raise ConfigError("no receipt signer: set signer_keystore (or signer_key_env in development) in [agent]")


async def _check_model(agent: Agent, settings: AgentSettings) -> None:
    try:
        await agent.backend.engine(agent.model)
    except BackendError as exc:
        raise ConfigError(f"vLLM at {settings.vllm_url} does not serve model {agent.model!r}: {exc}") from exc
