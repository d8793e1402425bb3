"""``staked demo``: the whole story on a throw-away local chain, with real inference.

anvil starts and the contracts are deployed; a datanet of CPython's reference topics is built for three
contributors and registered with the demo model and its attribution index; vLLM serves the model on the CPU; an
honest agent and a cheating one (it edits its answers after the model wrote them) stake and serve over paid HTTP;
two validators stake. A payer opens a channel to each agent and pays for real requests, and gets answers with signed
receipts and attributions. The agents commit their epochs; the validators audit every receipt, one challenges the
cheater, the other re-audits and votes; after the voting period the cheater is slashed, the payer refunded and the
challenger rewarded; after the challenge window the contributors claim their share of the honest agent's fees.
Every process the demo starts stops with it, also on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pydoc_data.topics
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak
from rich.console import Console
from rich.progress import Progress, TextColumn
from rich.table import Table

from agents import VLLMServer, build_tiny_model
from agents.attribution import AttributionIndex, Contribution, Datanet
from agents.attribution._types import hex32
from agents.factory import model_id as model_id_of
from runtime import AgentClient, AgentService, AgentSettings
from staking import (
    Anvil,
    ChainSettings,
    DeploymentConfig,
    Role,
    StakingClient,
    Transactor,
    advance_time,
    connect,
    deploy,
    dev_accounts,
    format_open,
    to_wei_open,
)
from validator import ModelSettings, ValidatorDaemon, ValidatorSettings

if TYPE_CHECKING:
    from agents.factory import Progress as TrainingProgress

__all__ = ["DEMO_DIRECTORY", "prepare_demo_model", "run_demo"]

_EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
_HONEST = f"{_EXAMPLES / 'summarizer.py'}:Summarizer"
_CHEATER = f"{_EXAMPLES / 'cheaters.py'}:EditingSummarizer"
_MODEL_NAME = "tiny-docs"
# anvil's development accounts, by role.
_DEPLOYER, _HONEST_OPERATOR, _CHEATER_OPERATOR, _PAYER, _VALIDATOR_1, _VALIDATOR_2, _CURATOR = range(7)
_CONTRIBUTORS = (7, 8, 9)
_ACCOUNTS = 10
_QUESTIONS = (
    "The for statement is used to iterate over the elements of a sequence.",
    "The with statement is used to wrap the execution of a block with methods defined by a context manager.",
    "The yield expression is used when defining a generator function.",
    "A class definition defines a class object.",
    "The try statement specifies exception handlers and cleanup code for a group of statements.",
    "The while statement is used for repeated execution as long as an expression is true.",
)


@dataclass
class _Report:
    """What the demo shows at the end, and prints with ``--json``."""

    chain: dict[str, Any] = field(default_factory=dict)
    answers: list[dict[str, Any]] = field(default_factory=list)
    epochs: list[dict[str, Any]] = field(default_factory=list)
    audits: dict[str, Any] = field(default_factory=dict)
    dispute: dict[str, Any] = field(default_factory=dict)
    rewards: dict[str, int] = field(default_factory=dict)
    balances_before: dict[str, int] = field(default_factory=dict)
    balances_after: dict[str, int] = field(default_factory=dict)
    stakes_before: dict[str, int] = field(default_factory=dict)
    stakes_after: dict[str, int] = field(default_factory=dict)
    gas: dict[str, float] = field(default_factory=dict)


#: Where the demo keeps its datanet and trained model between runs (training takes minutes; the rest is quick).
DEMO_DIRECTORY = Path(".staked") / "demo"


def prepare_demo_model(
    console: Console | None = None, *, quick: bool = False, directory: Path = DEMO_DIRECTORY
) -> tuple[Path, Path]:
    """The demo's datanet and a model trained on it (ModelFactory's default recipe), made once and then reused.

    Runs in the main thread, before the demo's event loop: training takes minutes on a CPU, and a Ctrl-C during it
    checkpoints the run (the next demo resumes it) instead of waiting for a worker thread.

    Args:
        console: where to show progress.
        quick: build the untrained tiny model instead (seconds; its answers rarely quote the data).
        directory: the cache.

    Returns:
        The datanet directory and the model directory.
    """
    from agents.factory import CHECKPOINT, ModelCard, TrainingRecipe, train_model  # torch loads only here

    say = console or Console(quiet=True)
    net = _demo_datanet(directory / "datanet")
    if quick:
        return net.directory, build_tiny_model(directory / "tiny", seed=0)
    model = directory / "model"
    card = ModelCard.read(model) if (model / "model.safetensors").exists() else None
    if (
        card is not None
        and card.recipe == TrainingRecipe()
        and [d.digest for d in card.datanets] == [hex32(net.digest)]
    ):
        say.print(f"[bold]model[/] trained on the datanet earlier (loss {card.training.final_loss:.2f}), from {model}")
        return net.directory, model
    if model.exists() and not (model / CHECKPOINT).exists():
        shutil.rmtree(model)  # a model of another recipe or datanet: train afresh
    with Progress(*Progress.get_default_columns(), TextColumn("{task.fields[figures]}"), console=say) as bar:
        task = bar.add_task("training the demo model on the datanet", total=TrainingRecipe().steps, figures="")

        def report(progress: TrainingProgress) -> None:
            figures = f"loss {progress.loss:.2f}, {progress.tokens_per_second:,.0f} tokens/s"
            bar.update(task, completed=progress.step, figures=figures)

        result = train_model([net], model, progress=report)
    say.print(f"[bold]model[/] trained: loss {result.card.training.final_loss:.2f}, modelId 0x{result.model_id.hex()}")
    return net.directory, model


def _demo_datanet(directory: Path) -> Datanet:
    """CPython's reference topics, contributed in turn by the demo chain's three contributor accounts."""
    if directory.exists():
        return Datanet.open(directory)
    accounts = dev_accounts(_ACCOUNTS)
    contributors = [accounts[n].address for n in _CONTRIBUTORS]
    net = Datanet.create(directory, name="python-docs")
    topics = sorted(pydoc_data.topics.topics.items())
    net.add(Contribution(text=text, contributor=contributors[n % 3]) for n, (_, text) in enumerate(topics))
    return net


async def run_demo(
    console: Console | None = None,
    *,
    model_dir: Path | None = None,
    vllm_url: str | None = None,
    datanet_dir: Path | None = None,
) -> dict[str, Any]:
    """Runs the story and returns its report.

    Args:
        console: where to narrate it; ``None`` stays quiet.
        model_dir: the model to serve (its served name must be ``tiny-docs``); the untrained tiny model otherwise.
        vllm_url: a vLLM server already serving ``model_dir``; the demo starts one otherwise.
        datanet_dir: the datanet the model was trained on (:func:`prepare_demo_model`); built afresh otherwise.
    """
    say = console or Console(quiet=True)
    # The demo narrates every decision itself; the daemons' and hosts' own logs would repeat it.
    for name in ("validator", "runtime", "agents"):
        logging.getLogger(name).setLevel(logging.ERROR)
    report = _Report()
    with tempfile.TemporaryDirectory(prefix="staked-demo-") as directory:
        work = Path(directory)
        async with _chain(say, report) as (chain, clients, keys):
            model_dir = model_dir or _build_model(say, work)
            net = Datanet.open(datanet_dir) if datanet_dir is not None else _demo_datanet(work / "datanet")
            model_id, index_dir = await _datanet(say, work, clients, model_dir, net)
            async with _vllm(say, model_dir, vllm_url) as url:
                await _story(say, report, work, chain, clients, keys, model_dir, model_id, index_dir, url)
    _summary(say, report)
    return report.__dict__


@contextlib.asynccontextmanager
async def _chain(say: Console, report: _Report) -> AsyncIterator[tuple[Anvil, list[StakingClient], list[LocalAccount]]]:
    async with Anvil(accounts=_ACCOUNTS) as chain:
        w3 = await connect(chain.url)
        try:
            with say.status("starting anvil and deploying the contracts"):
                keys = dev_accounts(_ACCOUNTS)
                deployment = await deploy(Transactor(w3, keys[_DEPLOYER]), DeploymentConfig())
                clients = [StakingClient(w3, deployment, key) for key in keys]
                for client in clients[1:]:
                    await clients[_DEPLOYER].transfer(client.address, to_wei_open(10_000))
            report.chain = {"url": chain.url, "chain_id": deployment.chain_id, **deployment.contracts.model_dump()}
            say.print(f"[bold]chain[/] anvil at {chain.url}, contracts deployed")
            yield chain, clients, keys
        finally:
            await w3.provider.disconnect()


def _build_model(say: Console, work: Path) -> Path:
    with say.status("building the demo model"):
        directory = build_tiny_model(work / "model", seed=0)
    say.print(f"[bold]model[/] built at {directory}")
    return directory


async def _datanet(
    say: Console, work: Path, clients: list[StakingClient], model_dir: Path, net: Datanet
) -> tuple[bytes, Path]:
    """The datanet indexed with the model's tokenizer, registered on chain with its contributions and the model."""
    contributors = sorted({contribution.contributor for contribution in net})
    with say.status("indexing the datanet for attribution and registering it with the model"):
        index = await asyncio.to_thread(AttributionIndex.build, work / "index", [net], model_dir)
        curator = clients[_CURATOR]
        datanet_id = await curator.create_datanet("python-docs")
        await curator.add_contributions(datanet_id, [c.content_hash for c in net], [c.contributor for c in net])
        model_id = model_id_of(model_dir)
        await curator.register_model(model_id, [datanet_id], index.root, _MODEL_NAME)
    say.print(
        f"[bold]datanet[/] {len(net)} contributions by {len(contributors)} contributors, index root "
        f"0x{index.root.hex()[:16]}..., model 0x{model_id.hex()[:16]}... registered"
    )
    return model_id, work / "index"


@contextlib.asynccontextmanager
async def _vllm(say: Console, model_dir: Path, url: str | None) -> AsyncIterator[str]:
    if url is not None:
        yield url
        return
    async with contextlib.AsyncExitStack() as stack:
        with say.status("starting vLLM on the CPU (about a minute)"):
            server = await stack.enter_async_context(
                VLLMServer(model_dir, name=_MODEL_NAME, kv_cache_gib=1, ready_timeout=900)
            )
        say.print(f"[bold]vLLM[/] serving {_MODEL_NAME} at {server.url}")
        yield server.url


async def _story(
    say: Console,
    report: _Report,
    work: Path,
    chain: Anvil,
    clients: list[StakingClient],
    keys: list[LocalAccount],
    model_dir: Path,
    model_id: bytes,
    index_dir: Path,
    vllm_url: str,
) -> None:
    deployment_file = work / "deployment.json"
    deployment_file.write_text(clients[0].deployment.model_dump_json())
    chain_settings = ChainSettings(rpc_url=chain.url, deployment_file=deployment_file, poll_interval=0.02)

    def agent(cls: str, name: str) -> AgentSettings:
        return AgentSettings(
            agent=cls, port=0, vllm_url=vllm_url, index=index_dir, tokenizer=model_dir,
            model_id="0x" + model_id.hex(), journal=work / f"{name}.sqlite", stake="1000",
        )  # fmt: skip

    def validator(name: str, sample_rate: float) -> ValidatorSettings:
        return ValidatorSettings(
            vllm_url=vllm_url,
            models={"0x" + model_id.hex(): ModelSettings(name=_MODEL_NAME, tokenizer=model_dir, index=index_dir)},
            agents={"summarizer": _HONEST},  # the published class the validators replay
            state=work / f"{name}.sqlite", port=0, stake="1000", sample_rate=sample_rate,
            audit_delay=0.0, retry_seconds=0.0, fetch_attempts=2,
        )  # fmt: skip

    who = _who(clients)
    report.balances_before = await _balances(clients, who)
    signers = [Account.from_key(keccak(text=f"staked demo signer {n}")) for n in range(2)]
    async with contextlib.AsyncExitStack() as services:
        with say.status("staking and starting the agents and the validators"):
            honest = await services.enter_async_context(
                AgentService.start(
                    agent(_HONEST, "honest"), chain_settings, operator=keys[_HONEST_OPERATOR], signer=signers[0]
                )
            )
            cheater = await services.enter_async_context(
                AgentService.start(
                    agent(_CHEATER, "cheater"), chain_settings, operator=keys[_CHEATER_OPERATOR], signer=signers[1]
                )
            )
            auditor = await services.enter_async_context(
                ValidatorDaemon.start(
                    validator("validator-1", 1.0), chain_settings, account=keys[_VALIDATOR_1], scheduled=False
                )
            )
            voter = await services.enter_async_context(
                ValidatorDaemon.start(
                    validator("validator-2", 0.0), chain_settings, account=keys[_VALIDATOR_2], scheduled=False
                )
            )
        report.stakes_before = await _stakes(clients)
        say.print(
            f"[bold]agents[/] honest at {honest.url}, cheater at {cheater.url}; two validators staked "
            f"({format_open(report.stakes_before['validator-1'])} OPEN each)"
        )
        await _pay(say, report, work, clients, keys, honest, cheater)
        await _commit(say, report, clients, honest, cheater)
        await _audit_and_slash(say, report, chain, clients, auditor, voter)
        await _claim_rewards(say, report, chain, clients, honest)
        report.stakes_after = await _stakes(clients)
        report.balances_after = await _balances(clients, who)


async def _pay(
    say: Console,
    report: _Report,
    work: Path,
    clients: list[StakingClient],
    keys: list[LocalAccount],
    honest: AgentService,
    cheater: AgentService,
) -> None:
    say.rule("a payer pays both agents through payment channels")
    payer = clients[_PAYER]
    for service, label, questions in ((honest, "honest", _QUESTIONS), (cheater, "cheater", _QUESTIONS[:2])):
        store = work / f"payer-{label}.sqlite"
        async with AgentClient(service.url, keys[_PAYER], chain=payer, deposit=to_wei_open(1), store=store) as client:
            for question in questions:
                paid = await client.call("summarize", {"text": question, "max_words": 24})
                record = (await client.fetch_record(paid.request_id)).record
                weights = {w.contributor: w.bps for w in record.attribution.weights}
                output = paid.output if isinstance(paid.output, dict) else {}
                report.answers.append(
                    {
                        "agent": label,
                        "question": question,
                        "summary": output.get("summary"),
                        "request_id": paid.request_id,
                        "receipt": {"epoch": paid.receipt.epoch, "seq": paid.receipt.seq, "price": paid.price},
                        "attribution": {"spans": len(record.attribution.spans), "bps": weights},
                    }
                )
                credited = ", ".join(f"{_short(a)} {bps / 100:.0f}%" for a, bps in weights.items()) or "no data"
                say.print(
                    f"  [cyan]{label}[/] #{paid.receipt.seq} {format_open(paid.price)} OPEN: "
                    f"{str(output.get('summary'))[:60]!r} [dim]receipt signed, drew on {credited}[/]"
                )


async def _commit(
    say: Console, report: _Report, clients: list[StakingClient], honest: AgentService, cheater: AgentService
) -> None:
    say.rule("the agents commit their epochs")
    for label, service in (("honest", honest), ("cheater", cheater)):
        before = await service.client.w3.eth.get_block_number()
        await service.jobs.claim_vouchers()
        (commit,) = await service.jobs.commit_epochs(force=True)
        gas = await _gas_since(service.client, before)
        requests = commit.receipt_count
        report.epochs.append(
            {
                "agent": label,
                "epoch": commit.epoch,
                "receipts": requests,
                "fees": commit.fee_total,
                "rewards": commit.rewards_total,
                "root": "0x" + commit.receipts_root.hex(),
            }
        )
        report.gas[f"{label}_per_paid_request"] = gas / requests
        say.print(
            f"  {label}: epoch {commit.epoch}, {requests} receipts, fees {format_open(commit.fee_total)} OPEN, "
            f"{format_open(commit.rewards_total)} OPEN funded for contributors; "
            f"claim + commit gas {gas / requests:,.0f} per paid request"
        )


async def _audit_and_slash(
    say: Console,
    report: _Report,
    chain: Anvil,
    clients: list[StakingClient],
    auditor: ValidatorDaemon,
    voter: ValidatorDaemon,
) -> None:
    say.rule("the validators audit every receipt")
    w3 = clients[0].w3
    await advance_time(w3, 1)  # mines the block whose hash seeds the sample
    with say.status("re-scoring outputs by teacher forcing, replaying skills, recomputing attributions"):
        await auditor.run_once()
    audits = await auditor.state.audits()
    failed = [audit for audit in audits if audit.codes]
    report.audits = {
        "audited": len(audits),
        "failed": len(failed),
        "codes": sorted({c for a in failed for c in a.codes}),
    }
    say.print(f"  {len(audits)} receipts audited, {len(failed)} failed: {', '.join(report.audits['codes']) or '-'}")
    challenges = await auditor.state.challenges()
    if not challenges:
        say.print("  [red]no challenge was opened[/]")
        return
    challenge = challenges[0]
    say.print(f"  validator-1 opens dispute {challenge.dispute_id} ({challenge.kind.name}) with its evidence")
    await voter.run_once()
    votes = await voter.state.votes()
    say.print("  validator-2 re-audits it: " + ", ".join(f"{v.decision.name} ({v.reason})" for v in votes))
    parameters = clients[0].deployment.parameters.disputes
    await advance_time(w3, parameters.voting_period + 1)
    resolutions = await voter.resolve()
    for resolution in resolutions:
        report.dispute = {
            "id": resolution.dispute_id,
            "kind": challenge.kind.name,
            "state": resolution.state.name,
            "slashed": resolution.slashed,
        }
        say.print(
            f"  dispute {resolution.dispute_id} {resolution.state.name}: cheater slashed "
            f"{format_open(resolution.slashed)} OPEN, payer refunded, challenger rewarded"
        )


async def _claim_rewards(
    say: Console, report: _Report, chain: Anvil, clients: list[StakingClient], honest: AgentService
) -> None:
    say.rule("contributors claim their share of the honest agent's fees")
    w3 = clients[0].w3
    await advance_time(w3, clients[0].deployment.parameters.disputes.challenge_window + 1)
    for n in (*_CONTRIBUTORS, _CURATOR):
        contributor = clients[n]
        claims = await honest.jobs.reward_claims(contributor.address)
        if claims:
            amount = await contributor.claim_rewards(contributor.address, claims)
            report.rewards[contributor.address] = amount
            role = "curator" if n == _CURATOR else "contributor"
            say.print(f"  {role} {_short(contributor.address)} claims {format_open(amount)} OPEN")


def _who(clients: list[StakingClient]) -> dict[str, str]:
    names = {
        "honest agent": _HONEST_OPERATOR, "cheater": _CHEATER_OPERATOR, "payer": _PAYER,
        "validator-1": _VALIDATOR_1, "validator-2": _VALIDATOR_2, "curator": _CURATOR,
    }  # fmt: skip
    names.update({f"contributor-{i + 1}": n for i, n in enumerate(_CONTRIBUTORS)})
    return {name: clients[n].address for name, n in names.items()}


async def _balances(clients: list[StakingClient], who: dict[str, str]) -> dict[str, int]:
    return {name: await clients[0].balance_of(address) for name, address in who.items()}


async def _stakes(clients: list[StakingClient]) -> dict[str, int]:
    stakes = {}
    for name, n, role in (
        ("honest agent", _HONEST_OPERATOR, Role.AGENT),
        ("cheater", _CHEATER_OPERATOR, Role.AGENT),
        ("validator-1", _VALIDATOR_1, Role.VALIDATOR),
        ("validator-2", _VALIDATOR_2, Role.VALIDATOR),
    ):
        stakes[name] = (await clients[0].stake_info(clients[n].address, role)).active
    return stakes


async def _gas_since(client: StakingClient, block: int) -> int:
    """Gas of the transactions ``client``'s account sent after ``block``."""
    w3, total = client.w3, 0
    for number in range(block + 1, await w3.eth.get_block_number() + 1):
        for tx_hash in (await w3.eth.get_block(number))["transactions"]:
            receipt = await w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]  # hashes, not full txs
            if receipt["from"] == client.address:
                total += int(receipt["gasUsed"])
    return total


def _short(address: str) -> str:
    return address[:8] + "…"


def _summary(say: Console, report: _Report) -> None:
    table = Table(title="before and after (OPEN)")
    for column in ("", "balance before", "balance after", "stake before", "stake after"):
        table.add_column(column, justify="right" if column else "left")
    for name in report.balances_before:
        table.add_row(
            name,
            format_open(report.balances_before[name]),
            format_open(report.balances_after.get(name, 0)),
            format_open(report.stakes_before[name]) if name in report.stakes_before else "",
            format_open(report.stakes_after[name]) if name in report.stakes_after else "",
        )
    say.print(table)
