"""The validator daemon: follows the chain, audits sampled receipts, challenges cheats, votes and resolves.

:class:`ValidatorDaemon` is what ``staked validator run`` runs, and what tests and the demo run in-process::

    async with ValidatorDaemon.start(validator_settings, chain_settings) as daemon:
        print(daemon.url)             # receipts intake, evidence and metrics; jobs running
    # stopped: running jobs finished, server closed, state closed

Start-up refuses to run, with a message that says what to do, when the key is missing, when the validator's stake
is under the minimum (and ``stake`` is not configured to top it up), when its vLLM does not serve a configured
model, or when a configured attribution index is not the one registered with its model.

Jobs (APScheduler on the running loop; each is also a public coroutine that tests and ``--once`` call directly):

``follow_events``
    reads ``EpochCommitted``, ``DisputeOpened``, ``EquivocationProven``, ``Voted`` and ``DisputeResolved`` from a
    cursor kept in the state file (:class:`staking.events.EventStream`: reorg-safe, at least once; every state write
    is idempotent, and a reorg's removed events are undone).
``audit``
    plans the sample of each newly committed epoch (:class:`~validator.AuditSampler` at ``sample_rate``, seeded by
    the hash of the block ``seed_delay_blocks`` after the commit, which the agent could not know when it
    committed), then audits every due position: reads it from the agent's registered endpoint as this validator,
    runs :meth:`Auditor.audit <validator.Auditor.audit>`, keeps the verdict, and opens the challenge each fault
    supports (*Withholding* as ``challengeInclusion``; *Output* and *Attribution* as bonded ``challenge`` with the
    evidence document's hash, the document kept and served at ``GET /v1/evidence/{hash}``). A record the agent
    does not serve after ``fetch_attempts`` runs (or by the epoch's challenge deadline less ``inclusion_margin``) is
    challenged as withheld when the validator holds a signed receipt of that position; otherwise it is logged and
    counted: without the agent's signature there is nothing to prove on chain.
``check_reports``
    follows up the receipts payers post to ``POST /v1/receipts``: reads the agent's receipt of the same request
    (two different receipts for one request are proven as equivocation at once), and once the epoch is committed
    audits the agent's document like a sampled one, so a receipt left out of its epoch is challenged as withheld.
    An agent that does not serve the record at all is challenged once the epoch's challenge deadline less
    ``inclusion_margin`` is reached (it may only be down until then).
``vote``
    for every open voted dispute it is not a party to: reads the disputed receipt by position from the agent,
    checks it is the disputed one, re-audits it and votes to uphold exactly when its own audit finds a fault of the
    dispute's kind. It abstains when a check of that kind could not run here (no model, no index, no class). An
    agent that refuses a staked validator the disputed record after ``fetch_attempts`` runs (or by the deadline
    less ``vote_margin``), or serves another receipt at that position, is presumed guilty: the vote upholds.
``resolve``
    resolves every open dispute past its deadline (block time), whoever opened it, so none stays pending.

Equivocation is checked whenever a receipt is held: two receipts signed by an agent's signers for one request
with different contents are proven on chain at once. Every decision is logged with what led to it: the agent,
epoch, position, finding codes, the dispute.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, Final, Self

from aiohttp import web
from eth_account.signers.local import LocalAccount
from pydantic import TypeAdapter, ValidationError

from agents import Backend, VLLMBackend, load_agent_class
from agents.attribution import AttributionIndex
from agents.attribution.errors import AttributionError
from agents.errors import BackendError
from agents.record import ReceiptDocument, SignedReceiptDocument
from staking.client import StakingClient
from staking.eip712 import Domain, recover, struct_hash
from staking.errors import ConfigError, ContractRevertedError, StakedError
from staking.events import ChainEvent, EventStream, Reorg, SqliteEventCursor
from staking.service import interval_scheduler, listen
from staking.settings import ChainSettings
from staking.types import Dispute, DisputeKind, DisputeState, EpochStatus, Role
from staking.units import format_open

from .agents_api import AgentsApi, RecordUnavailableError
from .audit import AgentFactory, Auditor, AuditReport, Check, Finding, ServedModel
from .config import ValidatorSettings
from .errors import IndexRootMismatchError, ValidatorConfigError, ValidatorError
from .metrics import CONTENT_TYPE_LATEST, ValidatorMetrics
from .sampling import AuditSampler
from .state import (
    AuditOutcome,
    AuditRecord,
    AuditStatus,
    ChallengeRecord,
    DisputeRecord,
    EpochRecord,
    ReportRecord,
    ReportStatus,
    ResolutionRecord,
    ValidatorState,
    VoteDecision,
    VoteRecord,
)

__all__ = ["JOB_NAMES", "ReceiptRejectedError", "ValidatorDaemon", "ensure_validator_stake"]

_log = logging.getLogger(__name__)

#: The jobs, in the order :meth:`ValidatorDaemon.run_once` runs them.
JOB_NAMES: Final = ("follow_events", "audit", "check_reports", "vote", "resolve")
_ZERO_HASH: Final = b"\x00" * 32
_ZERO_ADDRESS: Final = "0x" + "00" * 20
_VOTED_KINDS: Final = frozenset({DisputeKind.OUTPUT, DisputeKind.ATTRIBUTION, DisputeKind.TOTALS})
#: The checks whose findings can show a fault of each audited kind: when one of them did not run, no finding is
#: not evidence of innocence.
_RELEVANT_CHECKS: Final[Mapping[DisputeKind, frozenset[Check]]] = {
    DisputeKind.OUTPUT: frozenset({Check.RECORD, Check.OUTPUT, Check.REPLAY}),
    DisputeKind.ATTRIBUTION: frozenset({Check.RECORD, Check.ATTRIBUTION}),
}
_FINDINGS: Final = TypeAdapter(tuple[Finding, ...])
_MAX_DOUBLINGS: Final = 16  # of the retry delay; the margins cap it long before
_AGENT: Final = "agent"  # a held receipt's source: served by the agent
_PAYER: Final = "payer"  # posted to POST /v1/receipts


class ReceiptRejectedError(ValidatorError, ValueError):
    """A posted receipt is not signed by a signer bound to its agent: ``reason`` says how."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ValidatorDaemon:
    """A running validator (see the module docstring). Build it with :meth:`start`.

    Example:
        >>> async with ValidatorDaemon.start(settings, chain, scheduled=False) as daemon:    # doctest: +SKIP
        ...     await daemon.run_once()           # every job once, in JOB_NAMES order
        ...     await daemon.state.audits()       # what was audited, with verdicts

    Args:
        settings: the ``[validator]`` settings.
        client: the validator's staking client (its account signs reads, seeds, challenges and votes).
        auditor: audits receipt documents.
        state: the persistent state.
        api: reads records from agents.
        metrics: the daemon's metrics.
        confirmations: blocks an event (and a seed block) must have on top before it counts.

    Raises:
        ValidatorConfigError: the client has no account, or a margin does not fit the deployment's windows.
    """

    def __init__(
        self,
        settings: ValidatorSettings,
        *,
        client: StakingClient,
        auditor: Auditor,
        state: ValidatorState,
        api: AgentsApi,
        metrics: ValidatorMetrics,
        confirmations: int = 0,
    ) -> None:
        if client.account is None:
            raise ValidatorConfigError("the validator needs its key: set keystore (or private_key_env) in [chain]")
        disputes = client.deployment.parameters.disputes
        for name, margin, window, what in (
            ("inclusion_margin", settings.inclusion_margin, disputes.challenge_window, "the challenge window"),
            ("vote_margin", settings.vote_margin, disputes.voting_period, "the voting period"),
        ):
            if margin >= window:
                raise ValidatorConfigError(f"{name} ({margin} s) must be below {what} ({window} s)")
        self.settings = settings
        self.client = client
        self.account: LocalAccount = client.account
        self.address = client.account.address
        self.auditor = auditor
        self.state = state
        self.api = api
        self.metrics = metrics
        self.confirmations = confirmations
        self.sampler = AuditSampler(client.account, rate=settings.sample_rate)
        self.domain = client.receipt_domain()
        #: the URL of the receipts, evidence and metrics server, once it serves
        self.url = ""
        self.intervals = {
            "follow_events": settings.events_seconds,
            "audit": settings.audit_seconds,
            "check_reports": settings.audit_seconds,
            "vote": settings.vote_seconds,
            "resolve": settings.resolve_seconds,
        }
        self._max_delay = max(settings.retry_seconds, min(settings.inclusion_margin, settings.vote_margin) / 2)
        self.runs = dict.fromkeys(JOB_NAMES, 0)
        self.failures = dict.fromkeys(JOB_NAMES, 0)
        # A run started by hand and one started by the scheduler never overlap.
        self._locks = {name: asyncio.Lock() for name in JOB_NAMES}
        # Bonded transactions approve their bond first: two at once could spend each other's allowance.
        self._bonds = asyncio.Lock()
        self._operators: dict[str, str] = {}  # signer -> operator: a binding is for good once made
        self._scheduler: Any = None
        self._tasks: set[asyncio.Task[bool]] = set()

    def __repr__(self) -> str:
        counters = " ".join(f"{name}={self.runs[name]}/{self.failures[name]}" for name in JOB_NAMES)
        return f"<ValidatorDaemon {self.address} rate={self.settings.sample_rate:g} runs/failures: {counters}>"

    # -- start-up --------------------------------------------------------------------------------------------------

    @classmethod
    @contextlib.asynccontextmanager
    async def start(
        cls,
        settings: ValidatorSettings,
        chain: ChainSettings,
        *,
        account: LocalAccount | None = None,
        backend: Backend | None = None,
        scheduled: bool = True,
    ) -> AsyncIterator[Self]:
        """Checks everything, serves the intake and runs the jobs until the block exits (see the module docstring).

        Args:
            settings: the ``[validator]`` settings.
            chain: the ``[chain]`` settings; their key is the validator's.
            account: the validator's key, instead of the one ``chain`` names.
            backend: the inference engine, instead of the vLLM server ``settings`` names (closed on exit).
            scheduled: run the jobs on their intervals; ``False`` leaves them to the caller (tests, ``--once``).

        Raises:
            ValidatorConfigError: a setting, the key, the stake, a model or an index is not right; the message says
                what to do (``IndexRootMismatchError`` for an index that is not the registered one).
            ConfigError: the deployment file or key cannot be read.
            ChainUnavailableError / WrongChainError: the chain cannot be used.
        """
        client = await StakingClient.from_settings(chain, account)
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(client.w3.provider.disconnect)
            if client.account is None:
                raise ValidatorConfigError("the validator needs its key: set keystore (or private_key_env) in [chain]")
            await ensure_validator_stake(client, settings.stake_wei)
            agents = _load_agents(settings.agents)
            backend = await stack.enter_async_context(backend or VLLMBackend(settings.vllm_url, dtype=settings.dtype))
            models = settings.served_models()
            await _check_models(client, backend, models, settings.vllm_url)
            state = await stack.enter_async_context(ValidatorState(settings.state))
            api = await stack.enter_async_context(
                AgentsApi(
                    client.account,
                    timeout=settings.fetch_timeout,
                    retries=settings.fetch_retries,
                    backoff=settings.fetch_backoff,
                )
            )
            auditor = Auditor(
                backend=backend, models=models, chain=client, agents=agents, tolerances=settings.tolerances
            )
            daemon = cls(
                settings,
                client=client,
                auditor=auditor,
                state=state,
                api=api,
                metrics=ValidatorMetrics(),
                confirmations=chain.confirmations,
            )
            listener = stack.enter_context(listen(settings.host, settings.port))
            runner = web.AppRunner(_create_app(daemon), access_log=None)
            await runner.setup()
            stack.push_async_callback(runner.cleanup)
            await web.SockSite(runner, listener).start()
            daemon.url = f"http://{settings.host}:{listener.getsockname()[1]}"
            if scheduled:
                await daemon.start_jobs()
                stack.push_async_callback(daemon.stop_jobs)
            _log.info(
                "validator %s serving at %s: %d model(s), %d agent class(es), sample rate %g, state %s",
                daemon.address, daemon.url, len(models), len(agents), settings.sample_rate, settings.state,
            )  # fmt: skip
            yield daemon
            _log.info("validator %s stopping: %r", daemon.address, daemon)

    # -- the scheduler ---------------------------------------------------------------------------------------------

    async def start_jobs(self) -> None:
        """Runs every job now and then at its interval, on an APScheduler in the running loop."""
        if self._scheduler is not None:
            return
        self._scheduler = interval_scheduler(self.intervals, self._scheduled)
        _log.info("validator jobs started: %s", self.intervals)

    async def stop_jobs(self) -> None:
        """Stops scheduling runs and gives running ones ``shutdown_grace`` seconds to finish, then cancels them."""
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is None:
            return
        scheduler.pause()
        if self._tasks:
            _done, running = await asyncio.wait(set(self._tasks), timeout=self.settings.shutdown_grace)
            for task in running:
                _log.warning(
                    "job %s still running after %g s: cancelled", task.get_name(), self.settings.shutdown_grace
                )
                task.cancel()
            if running:
                await asyncio.wait(running)
        scheduler.shutdown(wait=False)
        _log.info("validator jobs stopped: %r", self)

    async def run_once(self) -> tuple[str, ...]:
        """Runs every job once, in :data:`JOB_NAMES` order, as the scheduler would; returns the jobs that failed."""
        jobs = self._jobs()
        failed = [name for name in JOB_NAMES if not await self._guarded(name, jobs[name])]
        return tuple(failed)

    def _jobs(self) -> dict[str, Callable[[], Awaitable[object]]]:
        return {
            "follow_events": self.follow_events,
            "audit": self.audit,
            "check_reports": self.check_reports,
            "vote": self.vote,
            "resolve": self.resolve,
        }

    async def _scheduled(self, name: str) -> None:
        if self._scheduler is None:
            return
        # Our own task, shielded: a cancelled scheduler task must not cut a run between a transaction and its record.
        task = asyncio.create_task(self._guarded(name, self._jobs()[name]), name=f"validator-job-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        await asyncio.shield(task)

    async def _guarded(self, name: str, job: Callable[[], Awaitable[object]]) -> bool:
        """Runs ``job``; a failure is logged and counted, never raised. Returns whether it succeeded."""
        self.runs[name] += 1
        try:
            await job()
        except Exception:
            self.failures[name] += 1
            self.metrics.job_failures.labels(name).inc()
            _log.exception("validator job %s failed; it runs again in %g s", name, self.intervals[name])
            return False
        return True

    # -- following the chain ---------------------------------------------------------------------------------------

    async def follow_events(self) -> int:
        """Reads new events from the persisted cursor up to the head and records them; returns how many.

        Raises:
            ChainError: the chain could not be read.
            StateError / EventCursorError: the state file could not be written.
        """
        async with self._locks["follow_events"]:
            client = self.client
            stream = EventStream(
                client.w3,
                {"ReceiptRegistry": client.receipts, "DisputeManager": client.disputes},
                from_block=client.deployment.block if self.settings.from_block is None else self.settings.from_block,
                cursor=SqliteEventCursor(self.settings.state, f"validator:{self.address}"),
                confirmations=self.confirmations,
                follow=False,
            )
            count = 0
            async with stream:
                async for item in stream:
                    if isinstance(item, Reorg):
                        await self._undo(item)
                    else:
                        await self._apply(item)
                    await stream.ack(item)
                    count += 1
            stake, balance = await asyncio.gather(
                client.stake_info(self.address, Role.VALIDATOR), client.balance_of(self.address)
            )
            self.metrics.stake.set(stake.active)
            self.metrics.balance.set(balance)
            return count

    async def _apply(self, event: ChainEvent) -> None:
        args = event.args
        if event.event == "EpochCommitted":
            epoch = EpochRecord(
                agent=args["agent"],
                epoch=int(args["epoch"]),
                receipts_root=bytes(args["receiptsRoot"]),
                receipt_count=int(args["receiptCount"]),
                commit_block=event.block_number,
                challenge_deadline=int(args["challengeDeadline"]),
                seen_at=time.time(),
            )
            if await self.state.add_epoch(epoch):
                _log.info(
                    "agent %s committed epoch %d (%d receipts, challenge deadline %d) in block %d; its sample is "
                    "seeded by block %d",
                    epoch.agent, epoch.epoch, epoch.receipt_count, epoch.challenge_deadline, epoch.commit_block,
                    epoch.commit_block + self.settings.seed_delay_blocks,
                )  # fmt: skip
        elif event.event == "DisputeOpened":
            dispute = DisputeRecord(
                dispute_id=int(args["disputeId"]),
                kind=DisputeKind(args["kind"]),
                agent=args["agent"],
                challenger=args["challenger"],
                epoch=int(args["epoch"]),
                receipt_hash=bytes(args["receiptHash"]),
                evidence_hash=None if bytes(args["evidenceHash"]) == _ZERO_HASH else bytes(args["evidenceHash"]),
                deadline=int(args["deadline"]),
                state=DisputeState.OPEN,
            )
            await self.state.upsert_dispute(dispute)
            _log.info(
                "dispute %d opened: %s against agent %s (epoch %d, receipt 0x%s) by %s, evidence %s, deadline %d",
                dispute.dispute_id, dispute.kind.name, dispute.agent, dispute.epoch, dispute.receipt_hash.hex(),
                dispute.challenger, _show(dispute.evidence_hash), dispute.deadline,
            )  # fmt: skip
        elif event.event == "EquivocationProven":
            dispute_id, slashed = int(args["disputeId"]), int(args["slashed"])
            on_chain = await self.client.dispute(dispute_id)
            await self.state.upsert_dispute(
                DisputeRecord(
                    dispute_id=dispute_id,
                    kind=DisputeKind.EQUIVOCATION,
                    agent=args["agent"],
                    challenger=args["prover"],
                    epoch=on_chain.epoch,
                    receipt_hash=bytes(args["receiptHashA"]),
                    evidence_hash=None,
                    deadline=0,
                    state=DisputeState.UPHELD,
                )
            )
            by_us = _same(args["prover"], self.address)
            await self._resolved(dispute_id, DisputeState.UPHELD, slashed, event.tx_hash, by_us=by_us)
        elif event.event == "Voted" and _same(args["voter"], self.address):
            decision = VoteDecision.UPHOLD if args["uphold"] else VoteDecision.REJECT
            vote = VoteRecord(
                dispute_id=int(args["disputeId"]),
                decision=decision,
                reason="cast by this validator, found on chain",
                tx_hash=event.tx_hash,
                decided_at=time.time(),
            )
            await self.state.record_vote(vote)
        elif event.event == "DisputeResolved":
            state = DisputeState(args["state"])
            await self._resolved(int(args["disputeId"]), state, int(args["slashed"]), event.tx_hash, by_us=False)

    async def _undo(self, reorg: Reorg) -> None:
        _log.warning(
            "reorg back to block %d: undoing %d event(s); the new chain's events follow",
            reorg.ancestor,
            len(reorg.removed),
        )
        for event in reversed(reorg.removed):
            args = event.args
            if event.event == "EpochCommitted":
                await self.state.remove_epoch(args["agent"], int(args["epoch"]))
            elif event.event == "DisputeOpened":
                await self.state.remove_dispute(int(args["disputeId"]))
            elif event.event == "Voted" and _same(args["voter"], self.address):
                await self.state.forget_vote(int(args["disputeId"]))
            elif event.event in ("DisputeResolved", "EquivocationProven"):
                await self.state.forget_resolution(int(args["disputeId"]))

    async def _resolved(self, dispute_id: int, state: DisputeState, slashed: int, tx_hash: str, *, by_us: bool) -> bool:
        resolution = ResolutionRecord(
            dispute_id=dispute_id,
            state=state,
            slashed=slashed,
            resolved_by_us=by_us,
            tx_hash=tx_hash,
            resolved_at=time.time(),
        )
        new = await self.state.record_resolution(resolution)
        if new:
            self.metrics.resolutions.labels(state.name.lower(), str(by_us).lower()).inc()
            _log.info(
                "dispute %d resolved %s%s: %s OPEN slashed (%s)",
                dispute_id, state.name, " by this validator" if by_us else "", format_open(slashed), tx_hash,
            )  # fmt: skip
        return new

    # -- sampled audits --------------------------------------------------------------------------------------------

    async def plan_audits(self) -> int:
        """Draws the sample of every committed epoch whose seed block is mined; returns the positions planned.

        Raises:
            ChainError: the chain could not be read.
        """
        head = await self.client.w3.eth.block_number - self.confirmations
        now = await self._block_time()
        planned = 0
        for epoch in await self.state.unplanned_epochs():
            seed_block = epoch.commit_block + self.settings.seed_delay_blocks
            if seed_block > head:
                continue
            if now > epoch.challenge_deadline:
                await self.state.plan_epoch(epoch.agent, epoch.epoch, seed_block, (), epoch.seen_at)
                _log.warning(
                    "epoch %d of agent %s is not audited: its challenge window closed at %d, before it was seen",
                    epoch.epoch, epoch.agent, epoch.challenge_deadline,
                )  # fmt: skip
                continue
            block_hash = bytes((await self.client.w3.eth.get_block(seed_block))["hash"])
            positions = await asyncio.to_thread(
                self.sampler.positions, epoch.agent, epoch.epoch, block_hash, epoch.receipt_count
            )
            not_before = epoch.seen_at + self.settings.audit_delay
            await self.state.plan_epoch(epoch.agent, epoch.epoch, seed_block, positions, not_before)
            planned += len(positions)
            _log.info(
                "sampled %d of the %d receipts of agent %s epoch %d (rate %g, seed block %d 0x%s)",
                len(positions), epoch.receipt_count, epoch.agent, epoch.epoch, self.settings.sample_rate, seed_block,
                block_hash.hex(),
            )  # fmt: skip
        return planned

    async def audit(self) -> tuple[AuditRecord, ...]:
        """Plans new samples, then audits every due position, ``audit_concurrency`` at a time.

        Returns:
            The audits this run concluded (done, not served, or expired); retried ones are not among them.

        Raises:
            ChainError: the chain could not be read or written (the other audits of the run finished first).
        """
        async with self._locks["audit"]:
            await self.plan_audits()
            due = await self.state.due_audits(time.time())
            if due:
                now = await self._block_time()
                gate = asyncio.Semaphore(self.settings.audit_concurrency)

                async def audit_one(planned: AuditRecord) -> AuditRecord | None:
                    async with gate:
                        return await self._audit_position(planned, now)

                outcomes = await asyncio.gather(*(audit_one(planned) for planned in due), return_exceptions=True)
            else:
                outcomes = []
            self.metrics.pending_audits.set(await self.state.pending_audits())
            failures = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
            if failures:
                raise failures[0]
            return tuple(outcome for outcome in outcomes if isinstance(outcome, AuditRecord))

    async def _audit_position(self, planned: AuditRecord, now: int) -> AuditRecord | None:
        agent, epoch_number, seq = planned.agent, planned.epoch, planned.seq
        epoch = await self.state.epoch(agent, epoch_number)
        if epoch is None:  # a reorg removed the commit
            return None
        if now > epoch.challenge_deadline:
            self.metrics.audits.labels("expired").inc()
            _log.warning(
                "receipt %d of agent %s epoch %d expires unaudited: the challenge window closed at %d (%s)",
                seq, agent, epoch_number, epoch.challenge_deadline, planned.last_error or "no attempt yet",
            )  # fmt: skip
            return await self.state.finish_audit(
                agent, epoch_number, seq, AuditStatus.EXPIRED, error="the challenge window closed"
            )
        info = await self.client.agent_info(agent)
        try:
            document = await self.api.receipt_at(info.endpoint, agent, epoch_number, seq)
            served = document.receipt
            if not (_same(served.agent, agent) and (served.epoch, served.seq) == (epoch_number, seq)):
                raise RecordUnavailableError(
                    f"{info.endpoint}/v1/epochs/{epoch_number}/receipts/{seq}",
                    200,
                    f"it served receipt {served.seq} of agent {served.agent} epoch {served.epoch} instead",
                )
        except RecordUnavailableError as exc:
            return await self._not_served(planned, epoch, exc, now)
        await self._hold(document.receipt, _AGENT)
        report = await self._audit_document(document)
        if report is None:
            await self.state.retry_audit(
                agent,
                epoch_number,
                seq,
                "the audit failed on this validator",
                time.time() + self._delay(planned.attempts),
            )
            return None
        if report.passed:
            _log.debug("receipt %d of agent %s epoch %d passed its audit", seq, agent, epoch_number)
        else:
            _log.warning(
                "receipt %d of agent %s epoch %d (request %s) failed its audit [%s]: %s",
                seq, agent, epoch_number, document.receipt.request_id, _codes(report), _findings(report),
            )  # fmt: skip
            # Before the audit is recorded done: should a challenge fail to go out, the next run audits again.
            await self._act_on(report)
        outcome = _outcome(report)
        self._count(outcome, report)
        return await self.state.finish_audit(
            agent,
            epoch_number,
            seq,
            AuditStatus.DONE,
            request_id=document.receipt.request_id,
            outcome=outcome,
            findings=_FINDINGS.dump_json(report.findings).decode(),
        )

    async def _audit_document(self, document: ReceiptDocument) -> AuditReport | None:
        """Audits ``document``; ``None`` when the audit failed on this validator's side (to be retried)."""
        started = time.perf_counter()
        try:
            report = await self.auditor.audit(document)
        except IndexRootMismatchError:
            raise  # the validator's configuration is wrong: every audit would fail the same way
        except Exception:  # the engine, the chain: the agent's document is parsed already, so never the agent's fault
            receipt = document.receipt
            _log.exception(
                "the audit of receipt %d of agent %s epoch %d failed on this validator; it is tried again",
                receipt.seq, receipt.agent, receipt.epoch,
            )  # fmt: skip
            return None
        self.metrics.audit_seconds.observe(time.perf_counter() - started)
        return report

    def _count(self, outcome: AuditOutcome, report: AuditReport) -> None:
        self.metrics.audits.labels(outcome.value).inc()
        for finding in report.findings:
            self.metrics.findings.labels(finding.code).inc()

    async def _not_served(
        self, planned: AuditRecord, epoch: EpochRecord, failure: RecordUnavailableError, now: int
    ) -> AuditRecord | None:
        """A sampled record the agent did not serve: retried, then challenged as withheld if a receipt is held."""
        agent, epoch_number, seq = planned.agent, planned.epoch, planned.seq
        where = f"receipt {seq} of agent {agent} epoch {epoch_number}"
        if failure.unauthorized and not await self.client.is_active(self.address, Role.VALIDATOR):
            _log.error("%s: the agent refused this validator, which is not an active validator: %s", where, failure)
            await self.state.retry_audit(agent, epoch_number, seq, str(failure), time.time() + self._delay(0))
            return None
        attempts = planned.attempts + 1
        last_chance = now >= epoch.challenge_deadline - self.settings.inclusion_margin
        if attempts < self.settings.fetch_attempts and not last_chance:
            delay = self._delay(planned.attempts)
            await self.state.retry_audit(agent, epoch_number, seq, str(failure), time.time() + delay)
            _log.warning(
                "%s not served (attempt %d of %d): %s; tried again in %g s",
                where, attempts, self.settings.fetch_attempts, failure, delay,
            )  # fmt: skip
            return None
        held = await self.state.receipts_at(agent, epoch_number, seq)
        if held:
            _log.error(
                "%s was not served after %d attempt(s) (last: %s): challenging the inclusion of the signed receipt "
                "held from the %s (receipt 0x%s)",
                where, attempts, failure, held[0].source, held[0].struct_hash.hex(),
            )  # fmt: skip
            await self._challenge_inclusion(held[0].document, f"the agent did not serve it: {failure}")
        else:
            _log.error(
                "%s was not served after %d attempt(s) (last: %s); no signed receipt of that position is held, so "
                "nothing can be proven on chain",
                where, attempts, failure,
            )  # fmt: skip
        self.metrics.audits.labels("unserved").inc()
        self.metrics.unserved.labels(str(bool(held)).lower()).inc()
        return await self.state.finish_audit(agent, epoch_number, seq, AuditStatus.UNSERVED, error=str(failure))

    def _delay(self, attempts: int) -> float:
        """Wall-clock seconds before the next attempt after ``attempts`` failed ones: doubling from retry_seconds,
        up to half the shorter margin, so that a record still missing is looked for again within each margin."""
        return min(self.settings.retry_seconds * float(2 ** min(attempts, _MAX_DOUBLINGS)), self._max_delay)

    # -- receipts from payers --------------------------------------------------------------------------------------

    async def submit_receipt(self, receipt: SignedReceiptDocument) -> bool:
        """Takes a signed receipt a payer holds (what ``POST /v1/receipts`` calls): keeps it, proves equivocation
        at once if it contradicts one held for the same request, and schedules its follow-up.

        Returns:
            Whether the receipt is new.

        Raises:
            ReceiptRejectedError: it is not signed by a signer bound to its agent.
            ChainError: the chain could not be read.
        """
        signer = await asyncio.to_thread(_recover, self.domain, receipt)
        operator = await self._operator_of(signer) if signer is not None else _ZERO_ADDRESS
        if not _same(operator, receipt.agent):
            self.metrics.receipts_received.labels("rejected").inc()
            raise ReceiptRejectedError(
                f"the receipt is signed by {signer}, which is bound to {operator}, not to agent {receipt.agent}"
            )
        digest = struct_hash(self.domain, receipt.receipt)
        new = await self.state.hold_receipt(receipt, digest, _PAYER)
        if new:
            await self.state.add_report(digest)
            _log.info(
                "payer %s reported receipt %d of agent %s epoch %d (request %s); it is followed up",
                receipt.payer, receipt.seq, receipt.agent, receipt.epoch, receipt.request_id,
            )  # fmt: skip
        self.metrics.receipts_received.labels("accepted" if new else "known").inc()
        try:
            await self._check_equivocation(receipt.agent, receipt.request_id)
        except StakedError:  # check_reports looks again: the payer's receipt is kept either way
            _log.exception("proving equivocation on request %s failed; it is tried again", receipt.request_id)
        return new

    async def check_reports(self) -> tuple[ReportRecord, ...]:
        """Follows up every due receipt payers reported (see the module docstring).

        Returns:
            The reports this run concluded.

        Raises:
            ChainError: the chain could not be read or written.
        """
        async with self._locks["check_reports"]:
            finished = []
            for report in await self.state.due_reports(time.time()):
                if await self._follow_report(report):
                    finished.append(report.struct_hash)
            if not finished:
                return ()
            done = {report.struct_hash: report for report in await self.state.reports()}
            return tuple(done[struct] for struct in finished)

    async def _follow_report(self, report: ReportRecord) -> bool:
        """One look at a payer's receipt; returns whether its follow-up is over."""
        receipt, digest = report.receipt, report.struct_hash
        agent, epoch_number = receipt.agent, receipt.epoch
        where = f"reported receipt {receipt.seq} of agent {agent} epoch {epoch_number} (request {receipt.request_id})"
        await self._check_equivocation(agent, receipt.request_id)
        status, deadline = await self._epoch_status(agent, epoch_number)
        now = await self._block_time()
        if status is not EpochStatus.PENDING and now > deadline:
            await self.state.finish_report(digest, ReportStatus.EXPIRED, f"the challenge window closed at {deadline}")
            _log.warning("%s: the challenge window closed at %d before it could be followed up", where, deadline)
            return True
        info = await self.client.agent_info(agent)
        url = f"{info.endpoint}/v1/receipts/{receipt.request_id}"
        try:
            document = await self.api.receipt_of(info.endpoint, agent, receipt.request_id)
            served = await self._hold(document.receipt, _AGENT)
            if served is None:
                raise RecordUnavailableError(url, 200, "it served a receipt none of its signers signed")
        except RecordUnavailableError as exc:
            if status is not EpochStatus.PENDING and now >= deadline - self.settings.inclusion_margin:
                _log.error("%s: the agent does not serve its record by the deadline margin (%s)", where, exc)
                await self._challenge_inclusion(receipt, f"the agent does not serve the record: {exc}")
                await self.state.finish_report(digest, ReportStatus.DONE, "challenged: the agent does not serve it")
                return True
            attempts = await self.state.retry_report(digest, str(exc), time.time() + self._delay(report.attempts))
            _log.warning("%s: not served by the agent (attempt %d): %s", where, attempts, exc)
            return False
        if served != digest:
            # Another receipt for the same request, signed for the agent: proven as equivocation by _hold.
            await self.state.finish_report(digest, ReportStatus.DONE, "equivocation: the agent serves another receipt")
            return True
        if status is EpochStatus.PENDING:
            await self.state.retry_report(
                digest, f"epoch {epoch_number} is not committed yet", time.time() + self._delay(0), count=False
            )
            return False
        if status is EpochStatus.COMMITTED:
            commit = await self.state.epoch(agent, epoch_number)
            ready = None if commit is None else commit.seen_at + self.settings.audit_delay
            if ready is None or ready > time.time():
                # Give the agent the time to journal its commit, as for sampled audits.
                await self.state.retry_report(
                    digest, "waiting for the commit to be followed", ready or time.time() + self._delay(0), count=False
                )
                return False
        audited = await self._audit_document(document)
        if audited is None:
            await self.state.retry_report(digest, "the audit failed on this validator", time.time() + self._delay(0))
            return False
        if audited.passed:
            _log.info("%s passed its audit", where)
        else:
            _log.warning("%s failed its audit [%s]: %s", where, _codes(audited), _findings(audited))
            await self._act_on(audited)  # first: should a challenge fail to go out, the next run looks again
        outcome = _outcome(audited)
        self._count(outcome, audited)
        findings = _FINDINGS.dump_json(audited.findings).decode()
        await self.state.finish_report(digest, ReportStatus.DONE, outcome.value, findings)
        return True

    # -- holding receipts, equivocation ----------------------------------------------------------------------------

    async def _hold(self, receipt: SignedReceiptDocument, source: str) -> bytes | None:
        """Keeps a receipt signed for its agent and proves equivocation if it contradicts another one held; returns
        its struct hash (``None``: not signed by a signer bound to its agent, so not kept)."""
        signer = await asyncio.to_thread(_recover, self.domain, receipt)
        if signer is None or not _same(await self._operator_of(signer), receipt.agent):
            return None
        digest = struct_hash(self.domain, receipt.receipt)
        await self.state.hold_receipt(receipt, digest, source)
        await self._check_equivocation(receipt.agent, receipt.request_id)
        return digest

    async def _check_equivocation(self, agent: str, request_id: str) -> ChallengeRecord | None:
        """Proves equivocation when two different receipts of ``agent``'s request are held and it is not proven."""
        held = await self.state.receipts_of_request(agent, request_id)
        if len(held) < 2:
            return None
        subject = bytes.fromhex(request_id[2:])
        known = await self.state.challenge(DisputeKind.EQUIVOCATION, subject)
        if known is not None:
            return known
        first, second = held[0], held[1]
        reason = (
            f"two receipts signed for request {request_id}: 0x{first.struct_hash.hex()} (from the {first.source}) "
            f"and 0x{second.struct_hash.hex()} (from the {second.source})"
        )
        _log.warning("agent %s equivocated: %s", agent, reason)
        return await self._open(
            DisputeKind.EQUIVOCATION,
            first.document,
            subject,
            reason,
            lambda: self.client.prove_equivocation(
                first.document.receipt,
                first.document.signature_bytes,
                second.document.receipt,
                second.document.signature_bytes,
            ),
        )

    async def _operator_of(self, signer: str) -> str:
        operator = self._operators.get(signer)
        if operator is None:
            operator = await self.client.operator_of_signer(signer)
            if not _same(operator, _ZERO_ADDRESS):
                self._operators[signer] = operator
        return operator

    # -- challenges ------------------------------------------------------------------------------------------------

    async def _act_on(self, report: AuditReport) -> None:
        """Opens the challenge each dispute kind the report supports calls for."""
        receipt = report.document.receipt
        for kind in report.disputes:
            reason = "; ".join(str(finding) for finding in report.findings if finding.dispute == kind)
            if kind is DisputeKind.WITHHOLDING:
                await self._challenge_inclusion(receipt, reason)
            else:
                evidence = report.evidence(kind)
                document = evidence.canonical_json()
                await self.state.put_evidence(evidence.evidence_hash, evidence.kind, document)
                send = functools.partial(
                    self.client.challenge, receipt.receipt, receipt.signature_bytes, kind, evidence.evidence_hash
                )
                subject = struct_hash(self.domain, receipt.receipt)
                await self._open(kind, receipt, subject, reason, send, evidence_hash=evidence.evidence_hash)

    async def _challenge_inclusion(self, receipt: SignedReceiptDocument, reason: str) -> ChallengeRecord | None:
        return await self._open(
            DisputeKind.WITHHOLDING,
            receipt,
            struct_hash(self.domain, receipt.receipt),
            reason,
            lambda: self.client.challenge_inclusion(receipt.receipt, receipt.signature_bytes),
        )

    async def _open(
        self,
        kind: DisputeKind,
        receipt: SignedReceiptDocument,
        subject: bytes,
        reason: str,
        send: Callable[[], Awaitable[int]],
        *,
        evidence_hash: bytes | None = None,
    ) -> ChallengeRecord | None:
        """Opens (or proves) a ``kind`` dispute once per subject, ever: the state and the chain are asked first, so
        a run that sent it and stopped before recording it finds it again."""
        known = await self.state.challenge(kind, subject)
        if known is not None:
            return known
        where = f"receipt {receipt.seq} of agent {receipt.agent} epoch {receipt.epoch}"
        async with self._bonds:
            existing = await self._dispute_id_of(kind, receipt)
            if existing:
                return await self._adopt(existing, kind, receipt, subject, reason, evidence_hash)
            bond = _bond(self.client, kind)
            balance = await self.client.balance_of(self.address)
            if balance < bond:
                _log.error(
                    "cannot open the %s challenge of %s: the bond is %s OPEN, this validator holds %s (%s)",
                    kind.name, where, format_open(bond), format_open(balance), reason,
                )  # fmt: skip
                return None
            try:
                dispute_id = await send()
            except ContractRevertedError as exc:
                name = exc.error.name if exc.error is not None else None
                if name == "DisputeManagerAlreadyDisputed" and exc.error is not None:
                    return await self._adopt(
                        int(exc.error.args["disputeId"]), kind, receipt, subject, reason, evidence_hash
                    )
                _log.error("the %s challenge of %s was refused on chain: %s (%s)", kind.name, where, exc, reason)
                return None
        challenge = ChallengeRecord(
            kind=kind,
            subject=subject,
            agent=receipt.agent,
            dispute_id=dispute_id,
            epoch=receipt.epoch,
            seq=receipt.seq,
            evidence_hash=evidence_hash,
            reason=reason,
            opened_at=time.time(),
        )
        await self.state.record_challenge(challenge)
        self.metrics.challenges.labels(kind.name.lower()).inc()
        _log.warning(
            "%s dispute %d against agent %s about receipt %d of epoch %d (evidence %s): %s",
            "proved equivocation as" if kind is DisputeKind.EQUIVOCATION else f"opened {kind.name} challenge as",
            dispute_id, receipt.agent, receipt.seq, receipt.epoch, _show(evidence_hash), reason,
        )  # fmt: skip
        return challenge

    async def _adopt(
        self,
        dispute_id: int,
        kind: DisputeKind,
        receipt: SignedReceiptDocument,
        subject: bytes,
        reason: str,
        evidence_hash: bytes | None,
    ) -> ChallengeRecord | None:
        """A dispute found on chain for what we were about to dispute: ours (sent before a crash) or another's."""
        dispute = await self.client.dispute(dispute_id)
        if not _same(dispute.challenger, self.address):
            _log.info(
                "%s of receipt %d of agent %s epoch %d is already disputed as %d by %s",
                kind.name, receipt.seq, receipt.agent, receipt.epoch, dispute_id, dispute.challenger,
            )  # fmt: skip
            return None
        challenge = ChallengeRecord(
            kind=kind,
            subject=subject,
            agent=receipt.agent,
            dispute_id=dispute_id,
            epoch=receipt.epoch,
            seq=receipt.seq,
            evidence_hash=evidence_hash,
            reason=reason,
            opened_at=time.time(),
        )
        await self.state.record_challenge(challenge)
        _log.warning(
            "found this validator's own %s dispute %d on chain, unrecorded: recorded now", kind.name, dispute_id
        )
        return challenge

    async def _dispute_id_of(self, kind: DisputeKind, receipt: SignedReceiptDocument) -> int:
        return int(await self.client.disputes.functions.disputeIdOf(kind, receipt.receipt.as_tuple()).call())

    # -- votes -----------------------------------------------------------------------------------------------------

    async def vote(self) -> tuple[VoteRecord, ...]:
        """Decides every open voted dispute this validator has not decided yet (see the module docstring).

        Returns:
            The decisions of this run: votes cast, and why none was on the others.

        Raises:
            ChainError: the chain could not be read or written.
        """
        async with self._locks["vote"]:
            decided = []
            now = await self._block_time()
            for dispute in await self.state.disputes(DisputeState.OPEN):
                if dispute.kind not in _VOTED_KINDS or dispute.vote_next > time.time():
                    continue
                if await self.state.vote(dispute.dispute_id) is not None:
                    continue
                decision = await self._decide(dispute, now)
                if decision is not None:
                    decided.append(decision)
            return tuple(decided)

    async def _decide(self, record: DisputeRecord, now: int) -> VoteRecord | None:
        dispute_id = record.dispute_id
        if _same(record.challenger, self.address) or _same(record.agent, self.address):
            return await self._record(record, VoteDecision.INELIGIBLE, "a party to the dispute cannot vote")
        dispute = await self.client.dispute(dispute_id)
        if dispute.state is not DisputeState.OPEN:
            await self.state.set_dispute_state(dispute_id, dispute.state)
            return None
        if await self.client.disputes.functions.hasVoted(dispute_id, self.address).call():
            return await self._found_vote(record)
        if now > dispute.deadline:
            return await self._record(record, VoteDecision.MISSED, f"the voting period ended at {dispute.deadline}")
        weight = await self.client.staking.functions.activeStakeAt(
            self.address, Role.VALIDATOR, dispute.snapshot_block
        ).call()
        if not weight:
            reason = f"no validator stake at the snapshot block {dispute.snapshot_block}"
            return await self._record(record, VoteDecision.INELIGIBLE, reason)
        if _same(await self.client.operator_of_signer(self.address), dispute.agent):
            return await self._record(record, VoteDecision.INELIGIBLE, "this key signs for the accused agent")
        if dispute.kind is DisputeKind.TOTALS:
            reason = "Totals challenges are about an epoch's sums, which this validator does not audit"
            return await self._record(record, VoteDecision.ABSTAIN, reason)
        where = (
            f"dispute {dispute_id} ({dispute.kind.name}, receipt {dispute.seq} of agent {dispute.agent} "
            f"epoch {dispute.epoch})"
        )
        info = await self.client.agent_info(dispute.agent)
        try:
            document = await self.api.receipt_at(info.endpoint, dispute.agent, dispute.epoch, dispute.seq)
        except RecordUnavailableError as exc:
            if exc.unauthorized and not await self.client.is_active(self.address, Role.VALIDATOR):
                _log.error("%s: the agent refused this validator, which is not an active validator: %s", where, exc)
                return None
            attempts = await self.state.retry_vote(dispute_id, time.time() + self._delay(record.vote_attempts))
            if attempts >= self.settings.fetch_attempts or now >= dispute.deadline - self.settings.vote_margin:
                reason = f"presumed guilty: the agent does not serve the disputed record to a staked validator ({exc})"
                return await self._cast(dispute, True, reason)
            _log.warning("%s: the agent did not serve the disputed record (attempt %d): %s", where, attempts, exc)
            return None
        served = struct_hash(self.domain, document.receipt.receipt)
        if served != dispute.receipt_hash:
            reason = (
                f"the agent serves receipt 0x{served.hex()} at the disputed position, not the disputed "
                f"0x{dispute.receipt_hash.hex()}: it signed two receipts for one position"
            )
            return await self._cast(dispute, True, reason)
        await self._hold(document.receipt, _AGENT)
        report = await self._audit_document(document)
        if report is None:
            await self.state.retry_vote(dispute_id, time.time() + self._delay(0))
            return None
        faults = [finding for finding in report.findings if finding.dispute == dispute.kind]
        if faults:
            codes = ", ".join(sorted({finding.code for finding in faults}))
            return await self._cast(dispute, True, f"re-audited: {codes}: " + "; ".join(map(str, faults)))
        unchecked = sorted(
            {skipped.check.value for skipped in report.skipped}
            & {check.value for check in _RELEVANT_CHECKS[dispute.kind]}
        )
        if unchecked:
            reasons = "; ".join(skipped.reason for skipped in report.skipped if skipped.check.value in unchecked)
            return await self._record(
                record, VoteDecision.ABSTAIN, f"could not check {', '.join(unchecked)}: {reasons}"
            )
        return await self._cast(dispute, False, f"re-audited: no {dispute.kind.name} fault ({report})")

    async def _cast(self, dispute: Dispute, uphold: bool, reason: str) -> VoteRecord | None:
        dispute_id = dispute.dispute_id
        record = await self.state.dispute(dispute_id)
        if record is None:
            return None
        try:
            receipt = await self.client.vote(dispute_id, uphold)
        except ContractRevertedError as exc:
            name = exc.error.name if exc.error is not None else None
            if name == "DisputeManagerAlreadyVoted":
                return await self._found_vote(record)
            if name == "DisputeManagerDeadlinePassed":
                return await self._record(record, VoteDecision.MISSED, f"the vote landed too late: {exc.error}")
            if name in ("DisputeManagerPartyCannotVote", "DisputeManagerNoVotingWeight"):
                return await self._record(record, VoteDecision.INELIGIBLE, str(exc.error))
            if name == "DisputeManagerUnexpectedState":
                await self.state.set_dispute_state(dispute_id, (await self.client.dispute(dispute_id)).state)
                return None
            raise
        decision = VoteDecision.UPHOLD if uphold else VoteDecision.REJECT
        return await self._record(record, decision, reason, receipt["transactionHash"].to_0x_hex())

    async def _found_vote(self, record: DisputeRecord) -> VoteRecord | None:
        """Records a vote this validator cast before it could record it (a crash), as the chain has it."""
        logs = await self.client.disputes.events.Voted().get_logs(
            argument_filters={"disputeId": record.dispute_id, "voter": self.address},
            from_block=self.client.deployment.block,
        )
        if not logs:
            return None
        log = logs[-1]
        decision = VoteDecision.UPHOLD if log["args"]["uphold"] else VoteDecision.REJECT
        return await self._record(
            record, decision, "cast before a restart, found on chain", log["transactionHash"].to_0x_hex()
        )

    async def _record(
        self, dispute: DisputeRecord, decision: VoteDecision, reason: str, tx_hash: str | None = None
    ) -> VoteRecord:
        vote = VoteRecord(
            dispute_id=dispute.dispute_id, decision=decision, reason=reason, tx_hash=tx_hash, decided_at=time.time()
        )
        if await self.state.record_vote(vote):
            self.metrics.votes.labels(decision.value).inc()
            _log.log(
                logging.WARNING if decision is VoteDecision.UPHOLD else logging.INFO,
                "dispute %d (%s against agent %s, epoch %d): %s: %s",
                dispute.dispute_id, dispute.kind.name, dispute.agent, dispute.epoch,
                f"voted to {decision.value}" if decision.voted else decision.value, reason,
            )  # fmt: skip
        return vote

    # -- resolutions -----------------------------------------------------------------------------------------------

    async def resolve(self) -> tuple[ResolutionRecord, ...]:
        """Resolves every open dispute whose deadline has passed in block time, whoever opened it.

        Returns:
            The resolutions this run sent.

        Raises:
            ChainError: the chain could not be read or written.
        """
        async with self._locks["resolve"]:
            now = await self._block_time()
            resolved = []
            for dispute in await self.state.disputes(DisputeState.OPEN):
                if dispute.kind is DisputeKind.EQUIVOCATION or now <= dispute.deadline:
                    continue
                try:
                    state = await self.client.resolve(dispute.dispute_id)
                except ContractRevertedError as exc:
                    if exc.error is not None and exc.error.name == "DisputeManagerUnexpectedState":
                        # Resolved by someone else: the DisputeResolved event records how.
                        await self.state.set_dispute_state(
                            dispute.dispute_id, (await self.client.dispute(dispute.dispute_id)).state
                        )
                        continue
                    raise
                logs = await self.client.disputes.events.DisputeResolved().get_logs(
                    argument_filters={"disputeId": dispute.dispute_id}, from_block=self.client.deployment.block
                )
                slashed = int(logs[-1]["args"]["slashed"]) if logs else 0
                tx_hash = logs[-1]["transactionHash"].to_0x_hex() if logs else None
                record = ResolutionRecord(
                    dispute_id=dispute.dispute_id,
                    state=state,
                    slashed=slashed,
                    resolved_by_us=True,
                    tx_hash=tx_hash,
                    resolved_at=time.time(),
                )
                if await self.state.record_resolution(record):
                    self.metrics.resolutions.labels(state.name.lower(), "true").inc()
                _log.info(
                    "resolved dispute %d (%s against agent %s, epoch %d) after its deadline %d: %s, %s OPEN slashed",
                    dispute.dispute_id, dispute.kind.name, dispute.agent, dispute.epoch, dispute.deadline,
                    state.name, format_open(slashed),
                )  # fmt: skip
                resolved.append(record)
            return tuple(resolved)

    # -- chain helpers ---------------------------------------------------------------------------------------------

    async def _block_time(self) -> int:
        return int((await self.client.w3.eth.get_block("latest"))["timestamp"])

    async def _epoch_status(self, agent: str, epoch: int) -> tuple[EpochStatus, int]:
        """The epoch's status and the last block time a dispute on it may be opened (for skipped ones too)."""
        status, deadline = await self.client.receipts.functions.epochStatus(agent, epoch).call()
        return EpochStatus(status), int(deadline)


# -- start-up checks -------------------------------------------------------------------------------------------------


async def ensure_validator_stake(client: StakingClient, target: int | None) -> int:
    """Stakes up to ``target`` wei as a validator when configured, then checks the stake is active.

    Returns:
        The active Validator stake.

    Raises:
        ValidatorConfigError: the stake is under the minimum (or cannot be raised); the message says what to do.
    """
    operator = client.address
    stake = await client.stake_info(operator, Role.VALIDATOR)
    if target is not None and stake.active < target:
        _log.info("staking %s OPEN as validator %s", format_open(target - stake.active), operator)
        try:
            await client.stake(Role.VALIDATOR, target - stake.active)
        except ContractRevertedError as exc:
            raise ValidatorConfigError(
                f"validator {operator} cannot stake {format_open(target - stake.active)} OPEN: {exc}"
            ) from exc
        stake = await client.stake_info(operator, Role.VALIDATOR)
    if not await client.is_active(operator, Role.VALIDATOR):
        minimum = await client.minimum_stake(Role.VALIDATOR)
        raise ValidatorConfigError(
            f"validator {operator} has {format_open(stake.active)} OPEN staked, under the minimum of "
            f"{format_open(minimum)} OPEN: stake more (staked stake validator AMOUNT) or set stake in [validator]"
        )
    return stake.active


def _load_agents(classes: Mapping[str, str]) -> dict[str, AgentFactory]:
    agents: dict[str, AgentFactory] = {}
    for key, path in classes.items():
        try:
            agents[key] = load_agent_class(path)
        except ConfigError as exc:
            raise ValidatorConfigError(f"[validator.agents] {key}: {exc}") from exc
    return agents


async def _check_models(client: StakingClient, backend: Backend, models: Sequence[ServedModel], url: str) -> None:
    """Each model is served by the validator's engine, registered on chain, and its index is the registered one."""
    for model in models:
        model_id = "0x" + model.model_id.hex()
        try:
            await backend.engine(model.name)
        except BackendError as exc:
            raise ValidatorConfigError(
                f"vLLM at {url} does not serve model {model.name!r} ({model_id}): {exc}"
            ) from exc
        if model.index is None:
            _log.warning("no attribution index for model %s: attributions of its answers go unchecked", model_id)
            continue
        try:
            registered = (await client.model(model.model_id)).index_root
        except Exception as exc:  # web3 raises the contract's custom error for an unknown model
            raise ValidatorConfigError(f"model {model_id} is not registered in the DatanetRegistry: {exc}") from exc
        try:
            index = await asyncio.to_thread(AttributionIndex.open, model.index, model.tokenizer, verify=False)
        except AttributionError as exc:
            raise ValidatorConfigError(f"the attribution index of model {model_id} cannot be opened: {exc}") from exc
        if index.root != registered:
            raise IndexRootMismatchError(str(model.index), model_id, "0x" + index.root.hex(), "0x" + registered.hex())


# -- the HTTP server: receipts intake, evidence, metrics -------------------------------------------------------------


_DAEMON_KEY: Final = web.AppKey("validator", ValidatorDaemon)


def _create_app(daemon: ValidatorDaemon) -> web.Application:
    """``POST /v1/receipts``, ``GET /v1/evidence/{hash}``, ``GET /metrics`` and ``GET /healthz``."""
    app = web.Application(client_max_size=daemon.settings.max_body_bytes, middlewares=[_errors])
    app[_DAEMON_KEY] = daemon
    app.add_routes(
        [
            web.post("/v1/receipts", _receive_receipt),
            web.get("/v1/evidence/{hash}", _evidence),
            web.get("/metrics", _metrics),
            web.get("/healthz", _health),
        ]
    )
    return app


class _HttpError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@web.middleware
async def _errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except _HttpError as exc:
        return _error(exc.status, exc.code, str(exc))
    except web.HTTPRequestEntityTooLarge as exc:
        return _error(413, "body_too_large", exc.text or "the body is too large")
    except web.HTTPException as exc:
        return _error(exc.status, exc.reason.lower().replace(" ", "_"), exc.text or exc.reason)
    except Exception:
        _log.exception("unexpected failure serving %s %s", request.method, request.path)
        return _error(500, "internal", "the validator failed; try again")


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


async def _receive_receipt(request: web.Request) -> web.Response:
    daemon = request.app[_DAEMON_KEY]
    try:
        receipt = SignedReceiptDocument.model_validate_json(await request.read())
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise _HttpError(400, "invalid_receipt", f"not a signed receipt: {where}: {first['msg']}") from exc
    try:
        new = await daemon.submit_receipt(receipt)
    except ReceiptRejectedError as exc:
        raise _HttpError(422, "not_the_agents_receipt", exc.reason) from exc
    digest = struct_hash(daemon.domain, receipt.receipt)
    body = {"status": "accepted" if new else "known", "receiptHash": "0x" + digest.hex()}
    return web.json_response(body, status=202 if new else 200)


async def _evidence(request: web.Request) -> web.Response:
    daemon = request.app[_DAEMON_KEY]
    text = request.match_info["hash"]
    try:
        if len(text) != 66 or not text.startswith("0x"):
            raise ValueError(text)
        evidence_hash = bytes.fromhex(text[2:])
    except ValueError as exc:
        raise _HttpError(400, "invalid_hash", "an evidence hash is 0x and 64 hex digits") from exc
    document = await daemon.state.evidence(evidence_hash)
    if document is None:
        raise _HttpError(404, "unknown_evidence", "this validator holds no evidence document with that hash")
    return web.Response(body=document, content_type="application/json")


async def _metrics(request: web.Request) -> web.Response:
    daemon = request.app[_DAEMON_KEY]
    daemon.metrics.pending_audits.set(await daemon.state.pending_audits())
    response = web.Response(body=daemon.metrics.exposition())
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


async def _health(request: web.Request) -> web.Response:
    daemon = request.app[_DAEMON_KEY]
    checks: dict[str, str] = {}
    try:
        checks["chain"] = f"ok, block {await daemon.client.w3.eth.block_number}"
    except Exception as exc:  # any transport failure means the same: the chain does not answer
        checks["chain"] = f"failing: {type(exc).__name__}"
    healthy = all(value.startswith("ok") for value in checks.values())
    body = {
        "status": "ok" if healthy else "degraded",
        "validator": daemon.address,
        "checks": checks,
        "jobs": repr(daemon),
    }
    return web.json_response(body, status=200 if healthy else 503)


# -- helpers ---------------------------------------------------------------------------------------------------------


def _same(a: str, b: str) -> bool:
    """Whether two addresses are the same, whatever their case."""
    return int(a, 16) == int(b, 16)


def _show(digest: bytes | None) -> str:
    return "none" if digest is None else "0x" + digest.hex()


def _codes(report: AuditReport) -> str:
    return ", ".join(finding.code for finding in report.findings)


def _findings(report: AuditReport) -> str:
    return "; ".join(str(finding) for finding in report.findings)


def _outcome(report: AuditReport) -> AuditOutcome:
    if report.passed:
        return AuditOutcome.PASSED
    return AuditOutcome.FAILED if report.valid else AuditOutcome.INVALID


def _bond(client: StakingClient, kind: DisputeKind) -> int:
    disputes = client.deployment.parameters.disputes
    if kind is DisputeKind.EQUIVOCATION:
        return 0
    return disputes.inclusion_bond if kind is DisputeKind.WITHHOLDING else disputes.challenge_bond


def _recover(domain: Domain, receipt: SignedReceiptDocument) -> str | None:
    try:
        return recover(domain, receipt.receipt, receipt.signature_bytes)
    except Exception:  # eth-keys raises several types for a signature that recovers to no key
        return None
