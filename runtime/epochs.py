"""The background jobs of an agent host: commit epochs, claim vouchers, settle authorizations, answer challenges.

Four jobs turn what the journal accepted into money on chain and keep the agent clear of slashing:

``commit_epochs``
    closes the current epoch once its first receipt is ``epoch_seconds`` old, then commits every closed epoch in
    order: the receipts tree (leaves ``Receipt.leaf`` in ``seq`` order), the contributors' rewards tree
    (:func:`agents.attribution.epoch_rewards` over each receipt's price and attribution, at the registry's
    ``attributionBps``) and their funding. An empty epoch is never closed (the registry refuses it), and an epoch
    left uncommitted below a later one would let anyone prove its receipts withheld, so epochs are committed
    strictly in order and a failure stops the run until the next.
``claim_vouchers``
    claims every channel's newest voucher, ``claim_batch`` channels per transaction.
``settle_authorizations``
    submits the accepted EIP-3009 authorizations, those expiring first first.
``answer_inclusion_challenges``
    follows ``DisputeOpened`` events and answers every withholding challenge against the agent with the receipt's
    Merkle proof before its response window ends.

Every job is safe to run again after a crash at any point, because each checks the chain before acting: a commit
whose transaction landed but was not journaled is found with ``latestEpoch`` and journaled, not sent twice; a
voucher the channel already paid is marked claimed; an authorization whose nonce was spent on the transfer to the
agent is marked settled; a challenge no longer open is skipped. The event cursor of the challenges persists next
to the journal, so a restart neither misses nor re-answers one.

Each job is a public coroutine that tests and the CLI call directly, and raises what went wrong. Under the
scheduler (APScheduler on the running loop) a run that raises is logged with its exception, counted in
``staked_job_failures{job}`` and retried at the next run; it never stops the scheduler.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from pydantic import ValidationError
from web3.exceptions import ContractCustomError
from web3.logs import DISCARD

from agents.attribution.errors import RewardsError
from agents.attribution.rewards import EpochRewards, epoch_rewards
from agents.record import AnswerRecord
from staking.client import StakingClient
from staking.eip712 import Domain
from staking.errors import ConfigError, ContractRevertedError, StakedError
from staking.events import ChainEvent, EventStream, SqliteEventCursor
from staking.merkle import MerkleTree
from staking.service import interval_scheduler
from staking.types import ChannelState, DisputeKind, DisputeState, EpochStatus

from .journal import AcceptedAuthorization, AcceptedVoucher, EpochCommit, Journal, SignedReceipt
from .metrics import RuntimeMetrics
from .payments import DEFAULT_SETTLEMENT_MARGIN

__all__ = [
    "DEFAULT_CHALLENGE_SECONDS",
    "DEFAULT_CLAIM_BATCH",
    "DEFAULT_CLAIM_SECONDS",
    "DEFAULT_COMMIT_CHECK_SECONDS",
    "DEFAULT_EPOCH_SECONDS",
    "DEFAULT_SETTLE_CONCURRENCY",
    "DEFAULT_SETTLE_SECONDS",
    "JOB_NAMES",
    "ClaimResult",
    "EpochCommitError",
    "EpochJobError",
    "EpochJobs",
    "SettlementResult",
]

_log = logging.getLogger(__name__)

#: How long an epoch runs, from its first receipt: an hour of receipts per commit suits an L2's gas prices.
DEFAULT_EPOCH_SECONDS: Final = 3600.0
#: How often the commit job looks for a due epoch, and retries a commit that failed.
DEFAULT_COMMIT_CHECK_SECONDS: Final = 60.0
#: How often vouchers are claimed; far below any channel's withdraw delay (at least an hour), so a payer leaving a
#: channel cannot take back what it owes.
DEFAULT_CLAIM_SECONDS: Final = 600.0
#: How often authorizations are settled; well within the settlement margin the verifier leaves them.
DEFAULT_SETTLE_SECONDS: Final = 30.0
#: How often withholding challenges are looked for; the response window is at least an hour.
DEFAULT_CHALLENGE_SECONDS: Final = 15.0
#: Channels claimed per transaction: gas grows with each, and one bad voucher reverts its whole batch.
DEFAULT_CLAIM_BATCH: Final = 100
#: Authorizations settled at once: one transaction each, so a backlog must not wait out their validity in a queue.
DEFAULT_SETTLE_CONCURRENCY: Final = 8

#: The jobs, in the order :meth:`EpochJobs.run_once` runs them: money is collected before an epoch's rewards are
#: funded out of it.
JOB_NAMES: Final = ("settle_authorizations", "claim_vouchers", "commit_epochs", "answer_inclusion_challenges")

#: ``transferWithAuthorization`` reverts that no later attempt can cure. A short balance is not one of them: the
#: payer may top up before the authorization expires, and the attempt costs only a gas estimate.
_UNSETTLEABLE: Final = frozenset({"ERC3009AuthorizationExpired", "ERC3009InvalidSignature"})
_NONCE_SPENT: Final = "ERC3009AuthorizationUsedOrCanceled"
#: ``proveInclusion`` reverts meaning the dispute no longer takes an answer (answered by anyone, or too late).
_DISPUTE_CLOSED: Final = frozenset({"DisputeManagerUnexpectedState", "DisputeManagerDeadlinePassed"})


class EpochJobError(StakedError):
    """A background job cannot go on now; the run stops and the next one tries again."""


class EpochCommitError(EpochJobError):
    """Epoch ``epoch`` cannot be committed as journaled: ``reason`` says why. Later epochs wait for it.

    Attributes:
        epoch: the epoch.
        reason: what is wrong.
    """

    def __init__(self, epoch: int, reason: str) -> None:
        super().__init__(f"epoch {epoch} cannot be committed: {reason}")
        self.epoch = epoch
        self.reason = reason


@dataclass(frozen=True)
class ClaimResult:
    """What a run of :meth:`EpochJobs.claim_vouchers` did.

    Attributes:
        claimed: the vouchers now claimed on chain, this run or (found on chain) by an earlier one.
        amount: wei this run's transactions paid out.
        transactions: claim transactions sent.
        unclaimable: vouchers of channels the payer closed first; their amount above the claim is lost.
    """

    claimed: tuple[AcceptedVoucher, ...] = ()
    amount: int = 0
    transactions: int = 0
    unclaimable: tuple[AcceptedVoucher, ...] = ()


@dataclass(frozen=True)
class SettlementResult:
    """What a run of :meth:`EpochJobs.settle_authorizations` did.

    Attributes:
        settled: authorizations whose transfer to the agent is on chain, sent now or found there.
        failed: authorizations that can never be settled: cancelled, spent on another transfer, or expired.
        pending: authorizations left for the next run (not valid yet, or the payer's balance is short).
    """

    settled: tuple[AcceptedAuthorization, ...] = ()
    failed: tuple[AcceptedAuthorization, ...] = ()
    pending: tuple[AcceptedAuthorization, ...] = ()


@dataclass(frozen=True)
class _EpochPlan:
    """An epoch's commitment as computed from the journal, with the leaves of its two trees."""

    commit: EpochCommit
    leaves: tuple[bytes, ...]
    rewards: EpochRewards


class EpochJobs:
    """The background jobs of one agent host, on an APScheduler running in the event loop.

    Example:
        >>> jobs = EpochJobs(client, journal, metrics, epoch_seconds=3600)    # doctest: +SKIP
        >>> await jobs.start()      # aligns the journal's epoch with the chain first    # doctest: +SKIP
        >>> await jobs.shutdown()   # after serving: waits for running jobs              # doctest: +SKIP
        >>> await jobs.commit_epochs(force=True)   # a job driven by hand (CLI, tests)  # doctest: +SKIP

    Args:
        client: the agent operator's client: the payee of payments, the receiver of channels, the committer of
            epochs.
        journal: the agent's journal.
        metrics: the host's metrics.
        epoch_seconds: how long after its first receipt an epoch is closed and committed.
        commit_check_seconds: how often the commit job runs (a due epoch waits at most this much longer).
        claim_seconds: how often vouchers are claimed; below the channels' withdraw delay.
        settle_seconds: how often authorizations are settled; below ``settlement_margin``.
        challenge_seconds: how often withholding challenges are looked for; below the response window.
        claim_batch: channels claimed per transaction.
        settle_concurrency: authorizations settled at once.
        settlement_margin: seconds an accepted authorization stays valid at least (the verifier's setting).
        cursor_path: the SQLite file of the challenges' event cursor; next to the journal by default.

    Raises:
        ConfigError: the client has no account or is not the journal's agent, or an interval is out of range.
    """

    def __init__(
        self,
        client: StakingClient,
        journal: Journal,
        metrics: RuntimeMetrics,
        *,
        epoch_seconds: float = DEFAULT_EPOCH_SECONDS,
        commit_check_seconds: float = DEFAULT_COMMIT_CHECK_SECONDS,
        claim_seconds: float = DEFAULT_CLAIM_SECONDS,
        settle_seconds: float = DEFAULT_SETTLE_SECONDS,
        challenge_seconds: float = DEFAULT_CHALLENGE_SECONDS,
        claim_batch: int = DEFAULT_CLAIM_BATCH,
        settle_concurrency: int = DEFAULT_SETTLE_CONCURRENCY,
        settlement_margin: float = DEFAULT_SETTLEMENT_MARGIN,
        cursor_path: str | Path | None = None,
    ) -> None:
        if client.account is None or client.account.address != journal.agent:
            raise ConfigError(f"the epoch jobs need the client of the journal's agent {journal.agent}, got {client}")
        intervals = {
            "settle_authorizations": settle_seconds,
            "claim_vouchers": claim_seconds,
            "commit_epochs": commit_check_seconds,
            "answer_inclusion_challenges": challenge_seconds,
        }
        if epoch_seconds < 0 or any(seconds <= 0 for seconds in intervals.values()):
            raise ConfigError(f"job intervals must be positive and epoch_seconds not negative: {intervals}")
        if claim_batch < 1 or settle_concurrency < 1:
            raise ConfigError(f"claim_batch ({claim_batch}) and settle_concurrency ({settle_concurrency}) must be >= 1")
        parameters = client.deployment.parameters
        for name, seconds, limit, what in (
            ("settle_seconds", settle_seconds, settlement_margin, "the settlement margin"),
            ("claim_seconds", claim_seconds, parameters.withdraw_delay, "the channels' withdraw delay"),
            ("challenge_seconds", challenge_seconds, parameters.disputes.response_window, "the response window"),
        ):
            if seconds >= limit:
                raise ConfigError(f"{name} ({seconds:g} s) must be below {what} ({limit:g} s)")
        self.client = client
        self.journal = journal
        self.metrics = metrics
        self.epoch_seconds = epoch_seconds
        self.claim_batch = claim_batch
        self.settle_concurrency = settle_concurrency
        self.intervals = intervals
        self.cursor_path = str(cursor_path or Path(journal.path).with_suffix(".events.sqlite"))
        self.agent = journal.agent
        self.runs = dict.fromkeys(JOB_NAMES, 0)
        self.failures = dict.fromkeys(JOB_NAMES, 0)
        # A run started by hand and one started by the scheduler never overlap.
        self._locks = {name: asyncio.Lock() for name in JOB_NAMES}
        self._scheduler: Any = None
        self._tasks: set[asyncio.Task[bool]] = set()
        self._scheduled_runs = 0  # calls of _scheduled not returned yet: the scheduler's own tasks
        self._idle = asyncio.Event()
        self._idle.set()
        self._closing = False

    def __repr__(self) -> str:
        counters = " ".join(f"{name}={self.runs[name]}/{self.failures[name]}" for name in JOB_NAMES)
        return f"<EpochJobs agent={self.agent} runs/failures: {counters}>"

    # -- the scheduler -----------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Aligns the journal's epoch with the chain, then runs every job now and at its interval.

        Raises:
            ChainError: the chain could not be read (the host should not serve: see :meth:`align_epoch`).
        """
        if self._scheduler is not None:
            return
        await self.align_epoch()
        self._closing = False
        self._scheduler = interval_scheduler(self.intervals, self._scheduled)
        _log.info("epoch jobs started for agent %s: %s", self.agent, self.intervals)

    async def shutdown(self) -> None:
        """Stops scheduling runs and waits for the running ones to finish."""
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is None:
            return
        self._closing = True
        scheduler.pause()
        # The scheduler cancels the tasks it still tracks when it shuts down: it must find them all finished.
        await self._idle.wait()
        while self._tasks:
            await asyncio.gather(*self._tasks)
        scheduler.shutdown(wait=False)
        _log.info("epoch jobs stopped: %r", self)

    async def run_once(self, *, force_commit: bool = False) -> tuple[str, ...]:
        """Runs every job once, in :data:`JOB_NAMES` order, as the scheduler would; returns the jobs that failed.

        Args:
            force_commit: close the current epoch now if it has receipts, due or not.
        """
        jobs: dict[str, Callable[[], Awaitable[object]]] = {
            "settle_authorizations": self.settle_authorizations,
            "claim_vouchers": self.claim_vouchers,
            "commit_epochs": lambda: self.commit_epochs(force=force_commit),
            "answer_inclusion_challenges": self.answer_inclusion_challenges,
        }
        failed = [name for name in JOB_NAMES if not await self._guarded(name, jobs[name])]
        return tuple(failed)

    async def _scheduled(self, name: str) -> None:
        if self._closing:
            return
        job: Callable[[], Awaitable[object]] = getattr(self, name)
        # The run is a task of ours, shielded: should the scheduler cancel its task, a run must still not be cut
        # between a transaction and its journal entry.
        task = asyncio.create_task(self._guarded(name, job), name=f"epoch-job-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self._scheduled_runs += 1
        self._idle.clear()
        try:
            await asyncio.shield(task)
        finally:
            self._scheduled_runs -= 1
            if not self._scheduled_runs:
                self._idle.set()

    async def _guarded(self, name: str, job: Callable[[], Awaitable[object]]) -> bool:
        """Runs ``job``; a failure is logged and counted, never raised. Returns whether it succeeded."""
        self.runs[name] += 1
        try:
            await job()
        except Exception:
            self.failures[name] += 1
            self.metrics.job_failures.labels(name).inc()
            _log.exception("epoch job %s failed; it runs again in %g s", name, self.intervals[name])
            return False
        return True

    # -- epochs ------------------------------------------------------------------------------------------------

    async def align_epoch(self) -> int:
        """Moves the journal's current epoch above the agent's latest committed epoch on chain; returns it.

        A fresh journal for an agent that committed before would otherwise sign receipts for epochs the registry
        can no longer take, and those could be proven withheld. Call it before serving.
        """
        latest = await self.client.latest_epoch(self.agent)
        current = await self.journal.advance_epoch(latest + 1)
        self.metrics.current_epoch.set(current)
        return current

    async def commit_epochs(self, *, force: bool = False) -> tuple[EpochCommit, ...]:
        """Closes the current epoch when due, then commits every closed epoch not committed yet, in order.

        Args:
            force: close the current epoch now if it has receipts, however young.

        Returns:
            The commitments journaled by this run: sent now, or found on chain (``tx_hash`` ``None``).

        Raises:
            EpochCommitError: an epoch cannot be committed as journaled; later epochs wait.
            ContractRevertedError: the commit reverted (the agent not active, its OPEN short of the rewards...).
            ChainError: the chain could not be read or written.
        """
        async with self._locks["commit_epochs"]:
            await self.journal.close_due_epoch(0.0 if force else self.epoch_seconds)
            self.metrics.current_epoch.set(await self.journal.current_epoch())
            committed = []
            for epoch in await self.journal.uncommitted_epochs():
                commit = await self._commit(epoch)
                if commit is not None:
                    committed.append(commit)
            return tuple(committed)

    async def records_to_commit(self, epoch: int) -> Sequence[tuple[SignedReceipt, bytes]]:
        """The receipts (with their records) that ``epoch``'s commitment covers: every one the journal holds for it,
        in ``seq`` order. Leaving one out is withholding, which an inclusion challenge proves on chain
        (``examples/cheaters.py`` shows it)."""
        return await self.journal.epoch_records(epoch)

    async def _commit(self, epoch: int) -> EpochCommit | None:
        records = await self.records_to_commit(epoch)
        attribution_bps = int(await self.client.receipts.functions.attributionBps().call())
        curator = await self._curator(records[0][0].receipt.model_id) if records else None
        plan = await asyncio.to_thread(
            _plan_epoch, epoch, records, self.client.receipt_domain(), attribution_bps, curator
        )
        # A run may have sent the commit and died before journaling it: the chain says, and it is not sent again.
        if await self.client.latest_epoch(self.agent) >= epoch:
            return await self._found_on_chain(plan)
        receipt = await self.client.commit_epoch(
            epoch,
            plan.commit.receipts_root,
            plan.commit.receipt_count,
            plan.commit.fee_total,
            plan.commit.rewards_root,
            plan.commit.rewards_total,
        )
        commit = dataclasses.replace(plan.commit, tx_hash=receipt["transactionHash"].to_0x_hex())
        await self.journal.record_commitment(commit, plan.leaves, plan.rewards.amounts)
        self.metrics.epochs_committed.inc()
        _log.info(
            "committed epoch %d: %d receipts, %d wei of fees, %d wei of rewards funded, in %s",
            epoch,
            commit.receipt_count,
            commit.fee_total,
            commit.rewards_total,
            commit.tx_hash,
        )
        return commit

    async def _found_on_chain(self, plan: _EpochPlan) -> EpochCommit | None:
        """Journals an epoch the chain already holds; an epoch the chain cannot take any more is journaled lost."""
        epoch = plan.commit.epoch
        on_chain = await self.client.epoch(self.agent, epoch)
        found = EpochCommit(
            epoch,
            on_chain.receipts_root,
            on_chain.receipt_count,
            on_chain.fee_total,
            on_chain.rewards_root,
            on_chain.rewards_total,
        )
        ours = plan.commit
        same_receipts = (found.receipts_root, found.receipt_count, found.fee_total) == (
            ours.receipts_root, ours.receipt_count, ours.fee_total,
        )  # fmt: skip
        if on_chain.status is EpochStatus.COMMITTED and same_receipts:
            if (found.rewards_root, found.rewards_total) != (ours.rewards_root, ours.rewards_total):
                raise EpochCommitError(
                    epoch,
                    "it is committed with these receipts but another rewards tree (was attributionBps changed "
                    "since?): contributors' claims cannot be served until it is rebuilt",
                )
            await self.journal.record_commitment(found, plan.leaves, plan.rewards.amounts)
            _log.warning("epoch %d was committed by a run that did not journal it; journaled it now", epoch)
            return found
        # Skipped, or committed with other receipts (a journal replaced by another): these receipts can never be
        # committed. Moving on keeps the later epochs committable.
        await self.journal.record_skipped_epoch(epoch)
        _log.critical(
            "epoch %d (%d receipts) can never be committed: the chain holds it as %s with %d receipts; its receipts "
            "can be proven withheld",
            epoch,
            ours.receipt_count,
            on_chain.status.name,
            on_chain.receipt_count,
        )
        return None

    async def reward_claims(self, contributor: str) -> list[tuple[str, int, int, list[bytes]]]:
        """``contributor``'s rewards that can be claimed now: ``(agent, epoch, amount, proof)`` for
        ``StakingClient.claim_rewards``, one per committed epoch whose challenge window has passed with no dispute
        open and whose reward was not claimed yet (one bad claim reverts the whole batch).

        Raises:
            ChainError: the chain could not be read.
        """
        contributor = to_checksum_address(contributor)
        claims = await self.journal.reward_claims(contributor)
        if not claims:
            return []
        now = await self._block_time()
        receipts, disputes = self.client.receipts.functions, self.client.disputes.functions

        async def claimable(claim: tuple[str, int, int, list[bytes]]) -> bool:
            agent, epoch = claim[0], claim[1]
            commitment, claimed, open_disputes = await asyncio.gather(
                self.client.epoch(agent, epoch),
                receipts.isClaimed(agent, epoch, contributor).call(),
                disputes.openDisputeCount(agent, epoch).call(),
            )
            return now > commitment.challenge_deadline and not claimed and int(open_disputes) == 0

        ready = await asyncio.gather(*(claimable(claim) for claim in claims))
        return [claim for claim, ok in zip(claims, ready, strict=True) if ok]

    # -- channels ----------------------------------------------------------------------------------------------

    async def claim_vouchers(self) -> ClaimResult:
        """Claims the newest voucher of every channel that owes more than it paid, ``claim_batch`` per transaction.

        Raises:
            ContractRevertedError: a batch reverted; its vouchers stay claimable for the next run.
            ChainError: the chain could not be read or written.
        """
        async with self._locks["claim_vouchers"]:
            vouchers = await self.journal.claimable_vouchers()
            if not vouchers:
                return ClaimResult()
            channels = await asyncio.gather(*(self.client.channel(v.voucher.channel_id) for v in vouchers))
            claimed: list[AcceptedVoucher] = []
            unclaimable: list[AcceptedVoucher] = []
            to_claim: list[AcceptedVoucher] = []
            for accepted, channel in zip(vouchers, channels, strict=True):
                if channel.claimed >= accepted.voucher.cumulative_amount:
                    # Paid out by a run that stopped before journaling it: claiming again would revert the batch.
                    await self.journal.mark_claimed(accepted)
                    claimed.append(accepted)
                elif channel.state not in (ChannelState.OPEN, ChannelState.CLOSING):
                    failure = (
                        f"channel 0x{channel.channel_id.hex()} is {channel.state.name}: "
                        f"{accepted.voucher.cumulative_amount - channel.claimed} wei can no longer be claimed"
                    )
                    await self.journal.mark_voucher_unclaimable(accepted, failure)
                    unclaimable.append(accepted)
                    _log.error(
                        "lost the vouchers of %s (request 0x%s): %s", accepted.payer, accepted.request_id.hex(), failure
                    )
                else:
                    to_claim.append(accepted)
            amount = transactions = 0
            for start in range(0, len(to_claim), self.claim_batch):
                batch = to_claim[start : start + self.claim_batch]
                amount += await self.client.claim_vouchers([(v.voucher, v.signature) for v in batch])
                transactions += 1
                for accepted in batch:
                    await self.journal.mark_claimed(accepted)
                claimed.extend(batch)
                self.metrics.vouchers_claimed.inc(len(batch))
            if transactions:
                _log.info("claimed %d channels for %d wei in %d transactions", len(to_claim), amount, transactions)
            return ClaimResult(tuple(claimed), amount, transactions, tuple(unclaimable))

    # -- authorizations ----------------------------------------------------------------------------------------

    async def settle_authorizations(self) -> SettlementResult:
        """Submits every pending EIP-3009 authorization, ``settle_concurrency`` at a time.

        One that can never succeed (cancelled, its nonce spent on another transfer, expired, a bad signature) is
        marked failed and logged at ERROR: a payment was accepted and served but not collected. One that may still
        succeed (not valid yet, the payer's balance short) stays pending. A transport failure stops the run after
        the other authorizations were tried.

        Raises:
            ChainError: the chain could not be read or written; what failed stays pending.
        """
        async with self._locks["settle_authorizations"]:
            pending = await self.journal.pending_authorizations()
            gate = asyncio.Semaphore(self.settle_concurrency)

            async def settle(payment: AcceptedAuthorization) -> str:
                async with gate:
                    return await self._settle(payment)

            outcomes = await asyncio.gather(*(settle(payment) for payment in pending), return_exceptions=True)
            errors = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
            if errors:
                raise errors[0]
            by_outcome: dict[str, list[AcceptedAuthorization]] = {"settled": [], "failed": [], "pending": []}
            for payment, outcome in zip(pending, outcomes, strict=True):
                by_outcome[str(outcome)].append(payment)
            return SettlementResult(
                tuple(by_outcome["settled"]), tuple(by_outcome["failed"]), tuple(by_outcome["pending"])
            )

    async def _settle(self, payment: AcceptedAuthorization) -> str:
        """Settles one authorization; returns ``"settled"``, ``"failed"`` or ``"pending"``."""
        try:
            receipt = await self.client.transfer_with_authorization(payment.authorization, payment.signature)
        except ContractRevertedError as exc:
            name = exc.error.name if exc.error is not None else None
            if name == _NONCE_SPENT:
                tx_hash = await self._collected_in(payment)
                if tx_hash is not None:  # settled by a run that stopped before journaling it, or by anyone
                    return await self._settled(payment, tx_hash)
                return await self._unsettleable(payment, f"{exc.error}: cancelled, or spent on another transfer")
            if name in _UNSETTLEABLE:
                return await self._unsettleable(payment, str(exc.error))
            _log.warning(
                "settling the payment of request 0x%s reverted (%s); it is tried again next run",
                payment.request_id.hex(),
                exc.error or "no reason given",
            )
            return "pending"
        return await self._settled(payment, receipt["transactionHash"].to_0x_hex())

    async def _settled(self, payment: AcceptedAuthorization, tx_hash: str) -> str:
        await self.journal.mark_settled(payment, tx_hash)
        self.metrics.authorizations_settled.labels("settled").inc()
        _log.debug("settled the payment of request 0x%s in %s", payment.request_id.hex(), tx_hash)
        return "settled"

    async def _unsettleable(self, payment: AcceptedAuthorization, failure: str) -> str:
        await self.journal.mark_settlement_failed(payment, failure)
        self.metrics.authorizations_settled.labels("failed").inc()
        _log.error(
            "the accepted payment of request 0x%s (%d wei from %s) can never be collected: %s",
            payment.request_id.hex(),
            payment.amount,
            payment.payer,
            failure,
        )
        return "failed"

    async def _collected_in(self, payment: AcceptedAuthorization) -> str | None:
        """The transaction that spent ``payment``'s nonce on exactly its transfer to the agent, if one did.

        The nonce alone does not say: the payer may have cancelled it, or signed another authorization with it.
        """
        authorization, token = payment.authorization, self.client.token
        used = await token.events.AuthorizationUsed().get_logs(
            argument_filters={"authorizer": authorization.from_, "nonce": authorization.nonce},
            from_block=self.client.deployment.block,
        )
        for log in used:
            receipt = await self.client.w3.eth.get_transaction_receipt(log["transactionHash"])
            for transfer in token.events.Transfer().process_receipt(receipt, errors=DISCARD):
                args = transfer["args"]
                if transfer["address"] == token.address and (args["from"], args["to"], args["value"]) == (
                    authorization.from_, authorization.to, authorization.value,
                ):  # fmt: skip
                    return str(log["transactionHash"].to_0x_hex())
        return None

    # -- withholding challenges --------------------------------------------------------------------------------

    async def answer_inclusion_challenges(self) -> tuple[int, ...]:
        """Answers every new withholding challenge against the agent with its receipt's inclusion proof.

        Events are read from where the last run stopped (the cursor persists in :attr:`cursor_path`) and each is
        acknowledged once handled; a run that stops early delivers the rest again next run, and an answer is sent
        only while its dispute is open.

        Returns:
            The disputes answered by this run.

        Raises:
            EpochJobError: a challenged epoch is committed on chain but not journaled yet (the commit job will).
            ChainError: the chain could not be read or written.
        """
        async with self._locks["answer_inclusion_challenges"]:
            answered: list[int] = []
            stream = EventStream(
                self.client.w3,
                {"DisputeManager": self.client.disputes},
                from_block=self.client.deployment.block,
                cursor=SqliteEventCursor(self.cursor_path, f"withholding-challenges:{self.agent}"),
                follow=False,
            )
            async with stream:
                async for item in stream:
                    # A reorg needs no undo: a challenge it removed is gone, one it moved is delivered again.
                    if isinstance(item, ChainEvent) and self._challenges_us(item):
                        dispute_id = int(item.args["disputeId"])
                        if await self._answer(dispute_id):
                            answered.append(dispute_id)
                    await stream.ack(item)
            return tuple(answered)

    def _challenges_us(self, event: ChainEvent) -> bool:
        return (
            event.event == "DisputeOpened"
            and event.args["kind"] == DisputeKind.WITHHOLDING
            and int(event.args["agent"], 16) == int(self.agent, 16)
        )

    async def _answer(self, dispute_id: int) -> bool:
        """Proves the receipt of withholding challenge ``dispute_id``; returns whether this call answered it."""
        dispute = await self.client.dispute(dispute_id)
        if dispute.state is not DisputeState.OPEN:
            _log.info("withholding challenge %d is %s already", dispute_id, dispute.state.name)
            return False
        where = f"receipt {dispute.seq} of epoch {dispute.epoch}"
        if await self._block_time() > dispute.deadline:
            _log.error("withholding challenge %d of %s passed its deadline unanswered", dispute_id, where)
            return False
        inclusion = await self.journal.inclusion_at(dispute.epoch, dispute.seq)
        if inclusion is None:
            if await self.journal.commitment(dispute.epoch) is None:
                on_chain = await self.client.epoch(self.agent, dispute.epoch)
                if on_chain.status is EpochStatus.COMMITTED:
                    raise EpochJobError(
                        f"withholding challenge {dispute_id}: epoch {dispute.epoch} is committed on chain but not "
                        "journaled yet; answered once commit_epochs journals it"
                    )
            _log.critical(
                "withholding challenge %d: %s is not in a committed epoch; it cannot be answered", dispute_id, where
            )
            return False
        # IReceiptRegistry's receipt leaf: keccak256(bytes.concat(keccak256(abi.encode(receiptStructHash)))).
        if inclusion.leaf != keccak(keccak(dispute.receipt_hash)):
            _log.critical(
                "withholding challenge %d: the challenged receipt 0x%s is not the one journaled as %s",
                dispute_id,
                dispute.receipt_hash.hex(),
                where,
            )
            return False
        try:
            await self.client.prove_inclusion(dispute_id, inclusion.proof)
        except ContractRevertedError as exc:
            if exc.error is not None and exc.error.name in _DISPUTE_CLOSED:
                _log.info("withholding challenge %d closed before the answer landed: %s", dispute_id, exc.error)
                return False
            raise
        self.metrics.inclusion_proofs.inc()
        _log.info("answered withholding challenge %d with the inclusion proof of %s", dispute_id, where)
        return True

    async def _curator(self, model_id: bytes) -> str | None:
        """Who is credited with the rewards of answers that drew on no data: the owner of the first datanet
        registered with the model (see :func:`agents.attribution.epoch_rewards`), ``None`` for an unregistered
        model."""
        try:
            model = await self.client.model(model_id)
        except ContractCustomError:  # DatanetRegistry does not know the model
            return None
        if not model.datanet_ids:
            return None
        return (await self.client.datanet(model.datanet_ids[0])).owner

    async def _block_time(self) -> int:
        return int((await self.client.w3.eth.get_block("latest"))["timestamp"])


def _plan_epoch(
    epoch: int,
    records: Sequence[tuple[SignedReceipt, bytes]],
    domain: Domain,
    attribution_bps: int,
    curator: str | None,
) -> _EpochPlan:
    """The commitment of ``epoch`` from its journaled receipts and records (CPU only: run it off the loop).

    Raises:
        EpochCommitError: a gap in ``seq``, a record that does not parse or does not match its receipt's
            attribution hash, or rewards that cannot be split.
    """
    paid = []
    for seq, (signed, record) in enumerate(records):
        receipt = signed.receipt
        if receipt.seq != seq:
            raise EpochCommitError(epoch, f"receipt {receipt.seq} is where receipt {seq} should be")
        try:
            attribution = AnswerRecord.model_validate_json(record).attribution
        except ValidationError as exc:
            raise EpochCommitError(epoch, f"the record of receipt {seq} does not parse: {exc}") from exc
        if attribution.attribution_hash != receipt.attribution_hash:
            raise EpochCommitError(epoch, f"the record of receipt {seq} is not the attribution its receipt signs")
        paid.append((receipt.price, attribution))
    if not paid:
        raise EpochCommitError(epoch, "it has no receipts")
    leaves = tuple(signed.receipt.leaf(domain) for signed, _ in records)
    try:
        rewards = epoch_rewards(paid, attribution_bps=attribution_bps, unattributed=curator)
    except RewardsError as exc:
        raise EpochCommitError(epoch, str(exc)) from exc
    commit = EpochCommit(
        epoch, MerkleTree(leaves).root, len(leaves), rewards.fee_total, rewards.root, rewards.rewards_total
    )
    return _EpochPlan(commit, leaves, rewards)
