"""The epoch jobs against the deployed contracts on anvil: epochs committed with their rewards, vouchers claimed,
authorizations settled, withholding challenges answered, and every job picking up after a crash or a restart.

Payments carry real signatures and pass the real verifier; receipts carry real AnswerRecords whose attributions
credit real contributor addresses, so the rewards trees are the ones contributors claim from on chain.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import logging
import secrets
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from pydantic import JsonValue
from web3 import AsyncHTTPProvider, AsyncWeb3

from agents.attribution import AttributedSpan, Attribution, ContributorWeight, epoch_rewards
from agents.record import AnswerRecord, PaymentProof, request_hash
from runtime.epochs import EpochJobs
from runtime.journal import AcceptedAuthorization, Answer, Journal, SignedAnswer
from runtime.metrics import RuntimeMetrics
from runtime.payments import PaymentVerifier, StakingPaymentChain, channel_payment_payload, exact_payment_payload
from runtime.protocol import encode_header
from staking import (
    CancelAuthorization,
    ChannelState,
    Deployment,
    DisputeState,
    EpochStatus,
    MerkleTree,
    Role,
    StakingClient,
    Transactor,
    TransferWithAuthorization,
    Voucher,
    advance_time,
    sign,
    to_wei_open,
)
from staking.eip712 import struct_hash
from staking.merkle import verify

pytestmark = pytest.mark.chain

PRICE = to_wei_open("0.01")
MODEL_ID = b"\x01" * 32
INDEX_ROOT = "0x" + "ab" * 32


def attribution(weights: dict[str, int]) -> Attribution:
    """An attribution crediting each contributor its basis points through one span; none for no weights."""
    chosen = sorted(weights.items(), key=lambda pair: int(pair[0], 16))
    spans = tuple(
        AttributedSpan(
            start=n * 4,
            end=n * 4 + 4,
            occurrences=1,
            contributions=("0x" + secrets.token_bytes(32).hex(),),
            contributors=(address,),
        )
        for n, (address, _) in enumerate(chosen)
    )
    weighted = tuple(ContributorWeight(contributor=address, bps=points) for address, points in chosen)
    return Attribution(index_root=INDEX_ROOT, output_tokens=4 * len(chosen) + 2, spans=spans, weights=weighted)


@dataclass
class Host:
    """An agent's journal, verifier and jobs, as the agent host wires them."""

    client: StakingClient
    signer: LocalAccount
    journal: Journal
    verifier: PaymentVerifier
    metrics: RuntimeMetrics
    jobs: EpochJobs

    @property
    def address(self) -> str:
        return self.client.address

    async def answer(self, header: str, credited: Attribution) -> SignedAnswer:
        """Verifies ``header`` as payment of a request, then journals a signed answer to it."""
        request_id = secrets.token_bytes(32)
        request: dict[str, JsonValue] = {"text": request_id.hex()}
        payment = await self.verifier.verify(
            header, price=PRICE, request_id=request_id, request_hash=request_hash("echo", request)
        )
        record = AnswerRecord(
            agent=self.address,
            agent_name="echo",
            request_id="0x" + request_id.hex(),
            skill="echo",
            input=request,
            output={"text": "an answer"},
            calls=(),
            attribution=credited,
            payment=PaymentProof(
                scheme=payment.scheme.value,
                payer=payment.payer,
                amount=payment.amount,
                payload=json.loads(base64.b64decode(header))["payload"],
            ),
        )
        answer = Answer(
            output_hash=record.output_hash(),
            model_id=MODEL_ID,
            engine_hash=record.engine_hash(),
            attribution_hash=record.attribution_hash(),
            body=b'{"text":"an answer"}',
            record=record.to_json(),
        )
        entry = await self.journal.record_answer(
            request_id, answer, functools.partial(sign, self.signer, self.client.receipt_domain())
        )
        assert entry.answer is not None
        return entry.answer

    def voucher(self, payer: StakingClient, channel_id: bytes, cumulative: int) -> str:
        _, requirements = self.verifier.requirements(PRICE)
        voucher = Voucher(channel_id, cumulative)
        return encode_header(channel_payment_payload(requirements, voucher, payer.sign_voucher(channel_id, cumulative)))

    def authorization(
        self, payer: StakingClient, valid_before: int, nonce: bytes | None = None
    ) -> tuple[str, TransferWithAuthorization, bytes]:
        requirements, _ = self.verifier.requirements(PRICE)
        authorization, signature = payer.sign_transfer_authorization(
            self.address, PRICE, valid_after=0, valid_before=valid_before, nonce=nonce
        )
        header = encode_header(exact_payment_payload(requirements, authorization, signature))
        return header, authorization, signature

    async def reopened(self, path: Path | None = None, **options: Any) -> Host:
        """The host after a restart: the journal reopened (or ``path``, a copy of it), new metrics and jobs."""
        journal = Journal(path or self.journal.path, agent=self.address)
        await journal.__aenter__()
        metrics = RuntimeMetrics()
        verifier = PaymentVerifier(chain=StakingPaymentChain(self.client), journal=journal, payee=self.address)
        jobs = EpochJobs(self.client, journal, metrics, **options)
        return Host(self.client, self.signer, journal, verifier, metrics, jobs)


@pytest.fixture(scope="module")
def fund(w3: AsyncWeb3[Any], deployment: Deployment, deployer: Transactor) -> Callable[[], Awaitable[StakingClient]]:
    """A client of a new account holding ETH for gas and 10,000 OPEN: each test gets agents and payers of its own."""
    token = deployment.contract(w3, "OpenToken")

    async def funded() -> StakingClient:
        account = Account.create()
        await w3.provider.make_request("anvil_setBalance", [account.address, hex(10**21)])
        await deployer.send(token.functions.transfer(account.address, to_wei_open(10_000)))
        return StakingClient(w3, deployment, account)

    return funded


@pytest.fixture
async def make_host(
    tmp_path: Path, deployment: Deployment, fund: Callable[[], Awaitable[StakingClient]]
) -> AsyncIterator[Callable[..., Awaitable[Host]]]:
    """Makes a staked, registered agent with a fresh journal; ``**options`` go to EpochJobs."""
    journals: list[Journal] = []

    async def make(**options: Any) -> Host:
        client = await fund()
        signer: LocalAccount = Account.create()
        await client.stake(Role.AGENT, deployment.parameters.min_agent_stake)
        await client.register_agent(signer.address, MODEL_ID, PRICE, "http://agent.test")
        journal = Journal(tmp_path / f"{client.address}.sqlite", agent=client.address)
        await journal.__aenter__()
        journals.append(journal)
        metrics = RuntimeMetrics()
        verifier = PaymentVerifier(chain=StakingPaymentChain(client), journal=journal, payee=client.address)
        return Host(client, signer, journal, verifier, metrics, EpochJobs(client, journal, metrics, **options))

    yield make
    for journal in journals:
        await journal.close()


def key(client: StakingClient) -> LocalAccount:
    assert client.account is not None
    return client.account


def sample(metrics: RuntimeMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def sent_count(w3: AsyncWeb3[Any], address: str) -> int:
    """How many transactions ``address`` has sent: unchanged means a job sent nothing."""
    return await w3.eth.get_transaction_count(to_checksum_address(address))


async def block_time(w3: AsyncWeb3[Any]) -> int:
    return int((await w3.eth.get_block("latest"))["timestamp"])


async def test_an_epoch_is_committed_with_its_rewards_and_contributors_claim_them(
    w3: AsyncWeb3[Any], deployment: Deployment, fund: Callable[[], Awaitable[StakingClient]],
    make_host: Callable[..., Awaitable[Host]],
) -> None:  # fmt: skip
    host, payer = await make_host(), await fund()
    alice, bob = Account.create().address, Account.create().address
    channel_id = await payer.open_channel(host.address, 10 * PRICE)
    credits = [attribution({alice: 7_000, bob: 3_000}), attribution({bob: 10_000}), attribution({})]
    answers = [await host.answer(host.voucher(payer, channel_id, (n + 1) * PRICE), c) for n, c in enumerate(credits)]

    assert await host.jobs.commit_epochs() == ()  # the first receipt is not an epoch old yet
    assert await host.journal.inclusion(answers[0].receipt.receipt.request_id) is None
    (commit,) = await host.jobs.commit_epochs(force=True)

    domain, bps = host.client.receipt_domain(), deployment.parameters.attribution_bps
    rewards = epoch_rewards([(PRICE, credited) for credited in credits], attribution_bps=bps)
    on_chain = await host.client.epoch(host.address, 1)
    assert on_chain.status is EpochStatus.COMMITTED
    assert on_chain.receipts_root == MerkleTree([a.receipt.receipt.leaf(domain) for a in answers]).root
    assert (on_chain.receipt_count, on_chain.fee_total) == (3, 3 * PRICE)
    assert on_chain.rewards_total == 3 * PRICE * bps // 10_000 == rewards.rewards_total
    assert on_chain.rewards_root == rewards.root
    assert await host.client.balance_of(host.client.receipts.address) >= on_chain.rewards_total
    assert commit.tx_hash is not None
    assert await host.journal.commitment(1) == commit
    assert sample(host.metrics, "staked_epochs_committed_total") == 1
    assert sample(host.metrics, "staked_epoch") == 2

    # Each receipt's inclusion proof is the one the registry checks.
    for seq, signed in enumerate(answers):
        receipt = signed.receipt.receipt
        inclusion = await host.journal.inclusion(receipt.request_id)
        assert inclusion is not None
        assert (inclusion.receipts_root, inclusion.receipt_count) == ("0x" + on_chain.receipts_root.hex(), 3)
        proof = [bytes.fromhex(node[2:]) for node in inclusion.proof]
        assert verify(on_chain.receipts_root, receipt.leaf(domain), proof)
        assert await host.client.receipts.functions.verifyInclusion(
            host.address, 1, seq, struct_hash(domain, receipt), proof
        ).call()

    assert await host.jobs.commit_epochs(force=True) == ()  # the new epoch is empty: it stays open
    assert await host.journal.current_epoch() == 2

    # Contributors claim once the challenge window has passed, with what the agent's journal gives them.
    assert await host.jobs.reward_claims(alice) == []
    await advance_time(w3, deployment.parameters.disputes.challenge_window + 1)
    for contributor in (alice, bob):
        claims = await host.jobs.reward_claims(contributor)
        assert [(agent, epoch, amount) for agent, epoch, amount, _ in claims] == [
            (host.address, 1, rewards.amount_of(contributor))
        ]
        assert await payer.claim_rewards(contributor, claims) == rewards.amount_of(contributor) > 0
        assert await payer.balance_of(contributor) == rewards.amount_of(contributor)
        assert await host.jobs.reward_claims(contributor) == []  # claimed
    assert (await host.client.epoch(host.address, 1)).rewards_claimed == rewards.rewards_total


async def test_a_commit_that_landed_but_was_not_journaled_is_not_sent_again(
    w3: AsyncWeb3[Any], tmp_path: Path, fund: Callable[[], Awaitable[StakingClient]],
    make_host: Callable[..., Awaitable[Host]], caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    host, payer = await make_host(), await fund()
    contributor = Account.create().address
    channel_id = await payer.open_channel(host.address, 10 * PRICE)
    answers = [
        await host.answer(host.voucher(payer, channel_id, n * PRICE), attribution({contributor: 10_000}))
        for n in (1, 2)
    ]
    assert await host.journal.close_due_epoch(0) == 1
    # The journal as a crash would leave it: epoch 1 closed, its commit sent but not journaled.
    await host.journal.close()
    crashed = tmp_path / "crashed.sqlite"
    shutil.copy(host.journal.path, crashed)
    host = await host.reopened()
    (sent,) = await host.jobs.commit_epochs()
    assert sent.tx_hash is not None

    restarted = await host.reopened(crashed, cursor_path=tmp_path / "crashed-events.sqlite")
    nonce = await sent_count(w3, host.address)
    (found,) = await restarted.jobs.commit_epochs()
    assert await sent_count(w3, host.address) == nonce  # nothing sent
    assert (found.tx_hash, found.receipts_root, found.receipt_count) == (None, sent.receipts_root, 2)
    assert await restarted.journal.commitment(1) == found
    assert await restarted.journal.inclusion(answers[1].receipt.receipt.request_id) == await host.journal.inclusion(
        answers[1].receipt.receipt.request_id
    )
    assert await restarted.journal.reward_claims(contributor) == await host.journal.reward_claims(contributor)
    assert await restarted.jobs.commit_epochs(force=True) == ()
    await restarted.journal.close()

    # A journal started afresh signs receipts for an epoch the chain is past: they can never be committed. The job
    # says so loudly and moves on instead of blocking every later epoch; align_epoch keeps it from happening.
    careless = await host.reopened(tmp_path / "careless.sqlite", cursor_path=tmp_path / "careless-events.sqlite")
    await careless.answer(careless.voucher(payer, channel_id, PRICE), attribution({contributor: 10_000}))
    with caplog.at_level(logging.CRITICAL, logger="runtime.epochs"):
        assert await careless.jobs.commit_epochs(force=True) == ()
    assert "epoch 1 (1 receipts) can never be committed" in caplog.text
    assert await careless.journal.commitment(1) is None
    assert await careless.journal.uncommitted_epochs() == ()
    await careless.journal.close()
    fresh = await host.reopened(tmp_path / "fresh.sqlite", cursor_path=tmp_path / "fresh-events.sqlite")
    assert await fresh.jobs.align_epoch() == 2
    assert await fresh.journal.current_epoch() == 2
    await fresh.journal.close()
    await host.journal.close()


async def test_vouchers_are_claimed_in_batches_and_a_claim_found_on_chain_is_not_repeated(
    w3: AsyncWeb3[Any], deployment: Deployment, fund: Callable[[], Awaitable[StakingClient]],
    make_host: Callable[..., Awaitable[Host]],
) -> None:  # fmt: skip
    host = await make_host(claim_batch=2)
    payers = [await fund() for _ in range(3)]
    channels = [await payer.open_channel(host.address, 10 * PRICE) for payer in payers]
    for payer, channel_id, vouchers in zip(payers, channels, (2, 1, 1), strict=True):
        for n in range(1, vouchers + 1):
            await host.verifier.verify(
                host.voucher(payer, channel_id, n * PRICE),
                price=PRICE,
                request_id=secrets.token_bytes(32),
                request_hash=b"h" * 32,
            )
    before = await host.client.balance_of(host.address)

    result = await host.jobs.claim_vouchers()
    assert (len(result.claimed), result.amount, result.transactions) == (3, 4 * PRICE, 2)
    assert [(await host.client.channel(c)).claimed for c in channels] == [2 * PRICE, PRICE, PRICE]
    assert await host.client.balance_of(host.address) == before + 4 * PRICE
    assert await host.journal.claimable_vouchers() == ()
    assert sample(host.metrics, "staked_vouchers_claimed_total") == 3
    assert await host.jobs.claim_vouchers() == type(result)()

    # Claimed by a run that stopped before journaling it: marked claimed, not claimed again (the batch would revert).
    async def pay(n: int, cumulative: int) -> None:
        await host.verifier.verify(
            host.voucher(payers[n], channels[n], cumulative),
            price=PRICE,
            request_id=secrets.token_bytes(32),
            request_hash=b"h" * 32,
        )

    await pay(0, 3 * PRICE)
    (claimable,) = await host.journal.claimable_vouchers()
    await host.client.claim_vouchers([(claimable.voucher, claimable.signature)])
    nonce = await sent_count(w3, host.address)
    result = await host.jobs.claim_vouchers()
    assert (result.claimed, result.transactions) == ((claimable,), 0)
    assert await sent_count(w3, host.address) == nonce

    # A payer that leaves before its voucher is claimed: the loss is recorded once, not retried forever.
    await pay(1, 2 * PRICE)
    await payers[1].initiate_channel_withdraw(channels[1])
    await advance_time(w3, deployment.parameters.withdraw_delay)
    await payers[1].withdraw_channel(channels[1])
    assert (await host.client.channel(channels[1])).state is ChannelState.CLOSED
    result = await host.jobs.claim_vouchers()
    assert [v.voucher for v in result.unclaimable] == [Voucher(channels[1], 2 * PRICE)]
    assert await host.journal.claimable_vouchers() == ()


async def test_authorizations_are_settled_and_those_that_never_can_be_are_marked_failed(
    w3: AsyncWeb3[Any], fund: Callable[[], Awaitable[StakingClient]], make_host: Callable[..., Awaitable[Host]],
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    host, payer, stranger = await make_host(), await fund(), await fund()
    token = payer.token

    async def accept(valid_before: int, nonce: bytes | None = None) -> AcceptedAuthorization:
        header, _, _ = host.authorization(payer, valid_before, nonce)
        accepted = await host.verifier.verify(
            header, price=PRICE, request_id=secrets.token_bytes(32), request_hash=b"h" * 32
        )
        assert isinstance(accepted, AcceptedAuthorization)
        return accepted

    expiring = await accept(await block_time(w3) + 300)
    await advance_time(w3, 300)
    valid_before = await block_time(w3) + 600
    fine, cancelled, spent_elsewhere, settled_before = [await accept(valid_before) for _ in range(4)]

    # The payer cancels one nonce, and spends another on a transfer to someone else (anyone may submit it).
    cancel = CancelAuthorization(payer.address, cancelled.authorization.nonce)
    cancel_signature = sign(key(payer), payer.token_domain(), cancel)
    await Transactor(w3, key(payer)).send(
        token.functions.cancelAuthorization(payer.address, cancel.nonce, cancel_signature)
    )
    elsewhere = TransferWithAuthorization(
        payer.address, stranger.address, PRICE, 0, valid_before, spent_elsewhere.authorization.nonce
    )
    await stranger.transfer_with_authorization(elsewhere, sign(key(payer), payer.token_domain(), elsewhere))
    # And one was settled by a run that stopped before journaling it.
    await host.client.transfer_with_authorization(settled_before.authorization, settled_before.signature)
    before = await host.client.balance_of(host.address)

    with caplog.at_level(logging.ERROR, logger="runtime.epochs"):
        result = await host.jobs.settle_authorizations()
    assert set(result.settled) == {fine, settled_before}
    assert set(result.failed) == {cancelled, spent_elsewhere, expiring}
    assert result.pending == ()
    assert await host.journal.pending_authorizations() == ()
    assert await host.client.balance_of(host.address) == before + PRICE  # only `fine` was collected by this run
    assert sample(host.metrics, "staked_authorizations_settled_total", outcome="settled") == 2
    assert sample(host.metrics, "staked_authorizations_settled_total", outcome="failed") == 3
    logged = "\n".join(record.getMessage() for record in caplog.records if record.levelno == logging.ERROR)
    for failed in (cancelled, spent_elsewhere, expiring):
        assert failed.request_id.hex() in logged
    assert "ERC3009AuthorizationUsedOrCanceled" in logged
    assert "ERC3009AuthorizationExpired" in logged
    assert await host.jobs.settle_authorizations() == type(result)()


async def test_a_withholding_challenge_is_answered_and_a_restart_does_not_answer_again(
    w3: AsyncWeb3[Any], tmp_path: Path, fund: Callable[[], Awaitable[StakingClient]],
    make_host: Callable[..., Awaitable[Host]],
) -> None:  # fmt: skip
    host, payer = await make_host(), await fund()
    channel_id = await payer.open_channel(host.address, 10 * PRICE)
    credited = attribution({Account.create().address: 10_000})
    answers = [await host.answer(host.voucher(payer, channel_id, n * PRICE), credited) for n in (1, 2, 3)]
    await host.jobs.commit_epochs(force=True)

    first = answers[1].receipt
    dispute_id = await payer.challenge_inclusion(first.receipt, first.signature)
    assert await host.jobs.answer_inclusion_challenges() == (dispute_id,)
    assert (await host.client.dispute(dispute_id)).state is DisputeState.REJECTED  # not upheld
    assert sample(host.metrics, "staked_inclusion_proofs_total") == 1
    assert await host.jobs.answer_inclusion_challenges() == ()

    # After a restart the cursor continues; a cursor lost with its file delivers the event again, harmlessly.
    await host.journal.close()
    restarted = await host.reopened()
    lost_cursor = await host.reopened(cursor_path=tmp_path / "lost-cursor.sqlite")
    nonce = await sent_count(w3, host.address)
    assert await restarted.jobs.answer_inclusion_challenges() == ()
    assert await lost_cursor.jobs.answer_inclusion_challenges() == ()
    assert await sent_count(w3, host.address) == nonce

    second = answers[2].receipt
    dispute_id = await payer.challenge_inclusion(second.receipt, second.signature)
    assert await restarted.jobs.answer_inclusion_challenges() == (dispute_id,)
    assert (await host.client.dispute(dispute_id)).state is DisputeState.REJECTED
    await restarted.journal.close()
    await lost_cursor.journal.close()


async def test_a_failed_run_is_counted_and_the_next_one_catches_up(
    w3: AsyncWeb3[Any], deployment: Deployment, fund: Callable[[], Awaitable[StakingClient]],
    make_host: Callable[..., Awaitable[Host]],
) -> None:  # fmt: skip
    host, payer = await make_host(), await fund()
    header, _, _ = host.authorization(payer, await block_time(w3) + 600)
    await host.verifier.verify(header, price=PRICE, request_id=secrets.token_bytes(32), request_hash=b"h" * 32)

    # The chain's node is down: the jobs that need it fail, are counted, and nothing is lost.
    dead = AsyncWeb3(AsyncHTTPProvider("http://127.0.0.1:9", exception_retry_configuration=None))
    offline = EpochJobs(StakingClient(dead, deployment, host.client.account), host.journal, host.metrics)
    assert await offline.run_once() == ("settle_authorizations", "answer_inclusion_challenges")
    assert sample(host.metrics, "staked_job_failures_total", job="settle_authorizations") == 1
    assert sample(host.metrics, "staked_job_failures_total", job="answer_inclusion_challenges") == 1
    assert len(await host.journal.pending_authorizations()) == 1
    await dead.provider.disconnect()

    assert await host.jobs.run_once() == ()
    assert await host.journal.pending_authorizations() == ()


async def test_the_scheduler_runs_every_job_and_shutdown_waits_for_them(
    w3: AsyncWeb3[Any], fund: Callable[[], Awaitable[StakingClient]], make_host: Callable[..., Awaitable[Host]]
) -> None:
    host, payer = await make_host(), await fund()
    header, _, _ = host.authorization(payer, await block_time(w3) + 600)
    await host.verifier.verify(header, price=PRICE, request_id=secrets.token_bytes(32), request_hash=b"h" * 32)

    await host.jobs.start()
    async with asyncio.timeout(60):
        # Nothing signals the scheduler's first runs to the outside: poll what the settle run changes.
        while await host.journal.pending_authorizations():  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    await host.jobs.shutdown()
    assert all(runs >= 1 for runs in host.jobs.runs.values()), host.jobs
    assert not any(host.jobs.failures.values()), host.jobs
