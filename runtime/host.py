"""The paid request pipeline of an agent, independent of the HTTP framework that fronts it.

For one request, in this order (DESIGN.md, Paying an agent over HTTP)::

    validated input -> request id -> check payment (journaled) -> run the skill -> attribute
        -> sign the receipt and journal the answer (one SQLite transaction) -> the answer leaves

so an answer never leaves without its signed receipt in the journal, and a payment is never taken without being
journaled first. A request id seen before gets its journaled answer back and is never charged again.

Request ids are scoped to the payer, whose address is recovered from the payment's signature before anything else:
with an ``Idempotency-Key`` it is ``keccak("staked/request-id" ‖ payer ‖ keccak(key))``, without one it is derived
from the request and the payment (``keccak("staked/request-id" ‖ payer ‖ requestHash ‖ keccak(signature))``), so
resending the same paid request is idempotent too. Nobody can reach another payer's request, its answer or its
payment by choosing a key.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Final

from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak
from pydantic import BaseModel, JsonValue

from agents import Agent, ModelCall, SkillResult
from agents.attribution import Attribution, AttributionIndex
from agents.record import AnswerRecord, PaymentProof, attributed_tokens, engine_hash, output_hash, request_hash
from staking.eip712 import Domain, Receipt, sign

from .journal import AcceptedAuthorization, AcceptedPayment, Answer, Journal, JournalEntry, SignedAnswer
from .metrics import RuntimeMetrics
from .payments import PaymentVerifier, channel_payment_payload, exact_payment_payload

__all__ = ["AgentHost", "PaidAnswer", "Render"]

_log = logging.getLogger(__name__)

_REQUEST_ID_DOMAIN: Final = b"staked/request-id"
#: The longest ``Idempotency-Key`` accepted.
MAX_IDEMPOTENCY_KEY: Final = 255

#: Turns a skill's result into the response body that is journaled and served (skill JSON, an OpenAI completion).
Render = Callable[[SkillResult], bytes]


@dataclass(frozen=True)
class PaidAnswer:
    """A paid request's journaled answer: what the HTTP layer sends (again, on a retry)."""

    request_id: bytes
    payment: AcceptedPayment
    answer: SignedAnswer


class AgentHost:
    """Serves one agent: prices, payment checks, skill runs, attribution, signed and journaled receipts.

    Args:
        agent: the agent, started (its ``startup`` hook ran).
        verifier: checks and journals payments to the agent's operator.
        journal: the agent's receipts journal.
        index: the attribution index registered with the agent's model.
        signer: the agent's hot receipt signer, registered on chain.
        receipt_domain: ReceiptRegistry's EIP-712 domain.
        model_id: the agent's registered modelId.
        metrics: where revenue is counted.
    """

    def __init__(
        self,
        agent: Agent,
        *,
        verifier: PaymentVerifier,
        journal: Journal,
        index: AttributionIndex,
        signer: LocalAccount,
        receipt_domain: Domain,
        model_id: bytes,
        metrics: RuntimeMetrics,
    ) -> None:
        self.agent = agent
        self.verifier = verifier
        self.journal = journal
        self.index = index
        self.model_id = model_id
        self.metrics = metrics
        self.signer_address = signer.address
        self._sign = partial(sign, signer, receipt_domain)
        # Concurrent requests with one id share one run of the skill instead of racing to the journal.
        self._running: dict[bytes, asyncio.Future[PaidAnswer]] = {}

    def __repr__(self) -> str:
        return f"<AgentHost {self.agent.name!r} operator={self.journal.agent}>"

    @property
    def operator(self) -> str:
        return self.journal.agent

    def request_hash(self, skill: str, payload: JsonValue) -> bytes:
        """The receipt's ``requestHash`` of the JSON ``payload`` sent to ``skill`` (see :mod:`agents.record`)."""
        return request_hash(skill, payload)

    def request_id(self, payment_header: str, request_hash: bytes, idempotency_key: str | None) -> bytes:
        """The request id of a paid request (see the module docstring).

        Raises:
            PaymentError: the payment header cannot be read or its signature yields no payer.
            ValueError: the idempotency key is empty or longer than :data:`MAX_IDEMPOTENCY_KEY`.
        """
        payer, signature = self.verifier.payer_of(payment_header)
        scope = _REQUEST_ID_DOMAIN + bytes.fromhex(payer[2:])
        if idempotency_key is not None:
            if not 0 < len(idempotency_key) <= MAX_IDEMPOTENCY_KEY:
                raise ValueError(f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} characters")
            return keccak(scope + keccak(idempotency_key.encode()))
        return keccak(scope + request_hash + keccak(signature))

    async def journaled(self, request_id: bytes) -> JournalEntry | None:
        """What the journal holds for ``request_id`` (what ``GET /v1/receipts`` serves)."""
        return await self.journal.lookup(request_id)

    async def attribute(self, calls: Sequence[ModelCall]) -> Attribution:
        """The attribution of an answer made of ``calls``, from the registered index (off the event loop)."""
        return await asyncio.to_thread(self.index.attribute, attributed_tokens(calls))

    def sign(self, receipt: Receipt) -> bytes:
        """The hot signer's EIP-712 signature of ``receipt`` (called by the journal inside its transaction)."""
        return self._sign(receipt)

    async def answer(
        self,
        skill: str,
        request: BaseModel,
        *,
        payload: JsonValue,
        payment_header: str,
        request_id: bytes,
        request_hash: bytes,
        render: Render,
    ) -> PaidAnswer:
        """Takes the payment, runs ``skill`` and journals the signed answer, or returns the one journaled before.

        Args:
            skill: the skill's name.
            request: its validated input.
            payload: the input as the client sent it (JSON), which the request hash and the record hold.
            payment_header: the ``PAYMENT-SIGNATURE`` value.
            request_id: from :meth:`request_id`.
            request_hash: from :meth:`request_hash`.
            render: builds the response body from the skill's result.

        Raises:
            PaymentError: the payment was refused; nothing was journaled.
            RequestConflictError: the request id was used for another request.
            ChainUnavailableError: the chain could not be read to check the payment.
            BackendError: the model failed; the payment was released when nothing depends on it.
            JournalError: SQLite failed.
        """
        running = self._running.get(request_id)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[PaidAnswer] = asyncio.get_running_loop().create_future()
        self._running[request_id] = future
        try:
            # Shielded: a client that hangs up must not abandon a payment between journal and answer.
            task = asyncio.ensure_future(
                self._answer(skill, request, payload, payment_header, request_id, request_hash, render)
            )
            result = await asyncio.shield(task)
        except BaseException as exc:
            if not future.done():
                future.set_exception(exc)
                future.exception()  # retrieved: followers re-raise it, nobody must be warned about it
            raise
        else:
            future.set_result(result)
            return result
        finally:
            del self._running[request_id]

    async def _answer(
        self,
        skill: str,
        request: BaseModel,
        payload: JsonValue,
        payment_header: str,
        request_id: bytes,
        request_hash: bytes,
        render: Render,
    ) -> PaidAnswer:
        price = self.agent.price_of(skill)
        payment = await self.verifier.verify(
            payment_header, price=price, request_id=request_id, request_hash=request_hash
        )
        entry = await self.journal.lookup(request_id)
        if entry is not None and entry.answer is not None:
            return PaidAnswer(request_id, entry.payment, entry.answer)
        try:
            result = await self.agent.invoke(skill, request)
        except BaseException:
            released = await asyncio.shield(self.journal.release(request_id))
            _log.warning("skill %s failed for request 0x%s (payment released: %s)", skill, request_id.hex(), released)
            raise
        output = result.output.model_dump(mode="json")
        attribution = await self.attribute(result.calls)
        record = AnswerRecord(
            agent=self.operator,
            agent_name=self.agent.name,
            request_id="0x" + request_id.hex(),
            skill=skill,
            input=payload,
            output=output,
            calls=result.calls,
            attribution=attribution,
            payment=_proof(self.verifier, payment),
        )
        answer = Answer(
            output_hash=output_hash(output),
            model_id=self.model_id,
            engine_hash=engine_hash(result.calls),
            attribution_hash=attribution.attribution_hash,
            body=render(result),
            record=record.to_json(),
        )
        entry = await self.journal.record_answer(request_id, answer, self.sign)
        assert entry.answer is not None  # record_answer always returns the answer it journaled
        if entry.answer.body is answer.body:  # answered now, not by a concurrent twin: count the revenue once
            self.metrics.revenue.labels(payment.scheme.value).inc(payment.amount)
        return PaidAnswer(request_id, entry.payment, entry.answer)


def _proof(verifier: PaymentVerifier, payment: AcceptedPayment) -> PaymentProof:
    """The record's copy of the payment: the x402 payload the payer signed, as the payer's evidence."""
    exact, channel = verifier.requirements(payment.amount)
    document: BaseModel
    if isinstance(payment, AcceptedAuthorization):
        document = exact_payment_payload(exact, payment.authorization, payment.signature).payload
    else:
        document = channel_payment_payload(channel, payment.voucher, payment.signature).payload
    return PaymentProof(
        scheme=payment.scheme.value,
        payer=payment.payer,
        amount=payment.amount,
        payload=document.model_dump(mode="json", by_alias=True),
    )
