"""The aiohttp application of an agent host: routes, error envelopes, metrics and the OpenAPI document.

Routes (DESIGN.md, Paying an agent over HTTP)::

    GET  /.well-known/agent-card.json     the A2A-style card: skills, prices, stake, chain, contracts, schemes
    POST /v1/skills/{name}                 a paid skill call (402 + PAYMENT-REQUIRED when unpaid)
    POST /v1/chat/completions              OpenAI-compatible; ``model`` is the agent or one of its skills
    GET  /v1/receipts/{requestId}          receipt, record and inclusion proof: the payer or a staked validator
    GET  /v1/epochs/{epoch}/receipts/{seq} the same by position, for auditors sampling an epoch: staked validators
    GET  /healthz, /metrics, /openapi.json

Every error is a JSON :class:`~runtime.api.ErrorBody` with a stable ``code``; a refused payment is a ``402`` whose
``PAYMENT-REQUIRED`` header says what to pay and whose ``code`` says what to change; nothing a client sends makes
a ``500``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

from aiohttp import web
from pydantic import BaseModel, JsonValue, ValidationError

from agents import Agent, SkillResult
from agents.errors import BackendError, BackendUnavailableError, ContextLengthError, SkillInputError
from agents.record import (
    InclusionProof,
    ReceiptAccessError,
    ReceiptDocument,
    SignedReceiptDocument,
    receipt_access_signer,
)
from staking.client import StakingClient
from staking.errors import ChainUnavailableError
from staking.types import Role

from .api import (
    IDEMPOTENCY_KEY_HEADER,
    RECEIPT_HEADER,
    AgentCard,
    CardSkill,
    ChatChoice,
    ChatCompletion,
    ChatCompletionRequest,
    ChatUsage,
    ErrorBody,
    ErrorDetail,
    Health,
    SkillResponse,
    StakedExtension,
)
from .errors import JournalError, MalformedPaymentError, PaymentError, RequestConflictError
from .host import AgentHost, PaidAnswer
from .metrics import CONTENT_TYPE_LATEST
from .openapi import openapi_document
from .protocol import (
    PAYMENT_REQUIRED_HEADER,
    PAYMENT_RESPONSE_HEADER,
    PAYMENT_SIGNATURE_HEADER,
    ResourceInfo,
    encode_header,
)

__all__ = ["HOST_KEY", "InclusionLookup", "create_app"]

_log = logging.getLogger(__name__)

HOST_KEY: Final = web.AppKey("host", AgentHost)
#: Finds the inclusion proof of a request's receipt once its epoch is committed (the epoch jobs know the trees).
InclusionLookup = Callable[[bytes], Awaitable[InclusionProof | None]]
_VALIDATOR_TTL: Final = 60.0  # seconds a validator's stake check is reused


class _HttpError(Exception):
    """An error answer: status, stable code, message and details."""

    def __init__(self, status: int, code: str, message: str, details: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.details = details or {}
        self.headers: dict[str, str] = {}


def create_app(
    host: AgentHost,
    *,
    chain: StakingClient,
    inclusion: InclusionLookup,
    endpoint: str,
    max_body_bytes: int = 1 << 20,
    max_concurrency: int = 64,
) -> web.Application:
    """The agent's web application.

    Args:
        host: the request pipeline.
        chain: reads stake and registration (validator checks, the card, health).
        inclusion: the inclusion proof of a committed receipt.
        endpoint: the public URL of the agent (the card's ``url``).
        max_body_bytes: the largest request body; larger ones get ``413``.
        max_concurrency: requests served at once; the rest queue.
    """
    routes = _Routes(host, chain, inclusion, endpoint, max_concurrency)
    app = web.Application(client_max_size=max_body_bytes, middlewares=[routes.errors])
    app[HOST_KEY] = host
    app.add_routes(
        [
            web.get("/.well-known/agent-card.json", routes.card),
            web.post("/v1/skills/{name}", routes.skill),
            web.post("/v1/chat/completions", routes.chat_completions),
            web.get("/v1/receipts/{request_id}", routes.receipt),
            web.get("/v1/epochs/{epoch}/receipts/{seq}", routes.receipt_at),
            web.get("/healthz", routes.health),
            web.get("/metrics", routes.metrics),
            web.get("/openapi.json", routes.openapi),
        ]
    )
    return app


class _Routes:
    def __init__(
        self, host: AgentHost, chain: StakingClient, inclusion: InclusionLookup, endpoint: str, concurrency: int
    ) -> None:
        self.host = host
        self.agent: Agent = host.agent
        self.chain = chain
        self.inclusion = inclusion
        self.endpoint = endpoint.rstrip("/")
        self.counters = host.metrics
        self._slots = asyncio.Semaphore(concurrency)
        self._validators: dict[str, float] = {}  # active validators, when last seen active
        self._openapi: bytes | None = None

    # -- middleware ------------------------------------------------------------------------------------------------

    @web.middleware
    async def errors(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        endpoint = request.match_info.route.resource.canonical if request.match_info.route.resource else "unmatched"
        started = time.perf_counter()
        self.counters.in_flight.inc()
        try:
            response = await handler(request)
        except _HttpError as exc:
            response = _error(exc.status, exc.code, str(exc), exc.details, exc.headers)
        except web.HTTPRequestEntityTooLarge as exc:
            response = _error(413, "body_too_large", exc.text or "the body is too large")
        except web.HTTPException as exc:
            response = _error(exc.status, exc.reason.lower().replace(" ", "_"), exc.text or exc.reason)
        except Exception:
            _log.exception("unexpected failure serving %s %s", request.method, request.path)
            response = _error(500, "internal", "the agent failed; the request was not charged unless it says so")
        finally:
            self.counters.in_flight.dec()
        self.counters.requests.labels(endpoint, str(response.status)).inc()
        if request.method == "POST" and response.status == 200:
            self.counters.latency.labels(endpoint).observe(time.perf_counter() - started)
        return response

    # -- paid calls ------------------------------------------------------------------------------------------------

    async def skill(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        spec = self.agent.skills.get(name)
        if spec is None:
            raise _HttpError(404, "unknown_skill", f"no skill {name!r}; the agent has {sorted(self.agent.skills)}")
        body = await _body(request)
        parsed = _parse_input(spec.name, spec.parse_input, body)

        def render(result: SkillResult) -> bytes:
            return result.output.model_dump_json().encode()

        paid = await self._paid(request, name, parsed, json.loads(body), render)
        receipt = SignedReceiptDocument.of(paid.answer.receipt.receipt, paid.answer.receipt.signature)
        document = SkillResponse(
            request_id="0x" + paid.request_id.hex(), skill=name, output=json.loads(paid.answer.body), receipt=receipt
        )
        return self._paid_response(paid, receipt, document.model_dump_json(by_alias=True).encode())

    async def chat_completions(self, request: web.Request) -> web.Response:
        try:
            completion = ChatCompletionRequest.model_validate_json(await _body(request))
        except ValidationError as exc:
            raise _invalid("chat completion request", exc) from exc
        if completion.stream or completion.n != 1:
            raise _HttpError(400, "unsupported", "streaming and n > 1 are not served: every answer is one receipt")
        skill, parsed, payload = self._chat_input(completion)
        model = completion.model

        def render(result: SkillResult) -> bytes:
            output = result.output.model_dump(mode="json")
            if skill == "chat":
                content, finish_reason = str(output["content"]), str(output["finish_reason"])
            else:
                content, finish_reason = result.output.model_dump_json(), "stop"
            prompt_tokens = sum(len(call.prompt_token_ids) for call in result.calls)
            completion_tokens = sum(len(call.output_token_ids) for call in result.calls)
            return (
                ChatCompletion(
                    id="",  # the request id, filled in when sent: it is known once the payment is
                    created=int(time.time()),
                    model=model,
                    choices=(
                        ChatChoice(
                            index=0, message={"role": "assistant", "content": content}, finish_reason=finish_reason
                        ),
                    ),
                    usage=ChatUsage(
                        prompt_tokens=prompt_tokens,
                        completion_tokens=completion_tokens,
                        total_tokens=prompt_tokens + completion_tokens,
                    ),
                )
                .model_dump_json(exclude={"receipt"})
                .encode()
            )

        paid = await self._paid(request, skill, parsed, payload, render)
        receipt = SignedReceiptDocument.of(paid.answer.receipt.receipt, paid.answer.receipt.signature)
        document = ChatCompletion.model_validate_json(paid.answer.body).model_copy(
            update={"id": "chatcmpl-" + paid.request_id.hex(), "receipt": receipt}
        )
        return self._paid_response(paid, receipt, document.model_dump_json(by_alias=True).encode())

    def _chat_input(self, completion: ChatCompletionRequest) -> tuple[str, BaseModel, JsonValue]:
        """The skill a chat completion asks for, its validated input and the input as JSON."""
        skills = self.agent.skills
        if completion.model == self.agent.name:
            spec = skills.get("chat")
            if spec is None:
                raise _HttpError(
                    404, "model_not_found", f"agent {self.agent.name!r} sells no plain chat (no 'chat' skill)"
                )
            stop: list[JsonValue] = (
                [completion.stop] if isinstance(completion.stop, str) else [*(completion.stop or ())]
            )
            messages: list[JsonValue] = [message.model_dump() for message in completion.messages]
            options: dict[str, JsonValue] = {
                "messages": messages,
                "max_tokens": completion.max_completion_tokens or completion.max_tokens,
                "temperature": completion.temperature,
                "top_p": completion.top_p,
                "seed": completion.seed,
                "stop": stop,
            }
            payload: JsonValue = {key: value for key, value in options.items() if value is not None}
            return "chat", _parse_input("chat", spec.parse_input, json.dumps(payload).encode()), payload
        spec = skills.get(completion.model)
        if spec is None:
            names = sorted([self.agent.name, *skills])
            raise _HttpError(404, "model_not_found", f"no model {completion.model!r}; this agent serves {names}")
        user = [message for message in completion.messages if message.role == "user"]
        if not user:
            raise _HttpError(422, "invalid_input", "a skill called as a model takes its JSON input as a user message")
        parsed = _parse_input(spec.name, spec.parse_input, user[-1].content.encode())
        return spec.name, parsed, json.loads(user[-1].content)

    async def _paid(
        self,
        request: web.Request,
        skill: str,
        parsed: BaseModel,
        payload: JsonValue,
        render: Callable[[SkillResult], bytes],
    ) -> PaidAnswer:
        """Runs the paid pipeline for a validated request, translating its failures into HTTP answers."""
        request_hash = self.host.request_hash(skill, payload)
        header = request.headers.get(PAYMENT_SIGNATURE_HEADER)
        if header is None:
            raise self._payment_required(request, skill, "payment_required", "this call costs money; pay and retry")
        try:
            request_id = self.host.request_id(header, request_hash, request.headers.get(IDEMPOTENCY_KEY_HEADER))
            async with self._slots:
                return await self.host.answer(
                    skill,
                    parsed,
                    payload=payload,
                    payment_header=header,
                    request_id=request_id,
                    request_hash=request_hash,
                    render=render,
                )
        except MalformedPaymentError as exc:
            self.counters.payments_refused.labels(exc.reason.value).inc()
            raise _HttpError(400, exc.reason.value, str(exc), exc.details) from exc
        except PaymentError as exc:
            self.counters.payments_refused.labels(exc.reason.value).inc()
            raise self._payment_required(request, skill, exc.reason.value, str(exc), exc.details) from exc
        except RequestConflictError as exc:
            raise _HttpError(409, "request_conflict", str(exc)) from exc
        except ValueError as exc:  # the idempotency key
            raise _HttpError(400, "invalid_idempotency_key", str(exc)) from exc
        except ChainUnavailableError as exc:
            raise _unavailable("chain_unavailable", str(exc)) from exc
        except ContextLengthError as exc:
            raise _HttpError(422, "context_length", str(exc)) from exc
        except (BackendUnavailableError, BackendError) as exc:
            raise _unavailable("model_unavailable", str(exc)) from exc
        except JournalError as exc:
            _log.error("journal failure: %s", exc)
            raise _unavailable("journal_unavailable", "the agent cannot record answers right now") from exc

    def _payment_required(
        self, request: web.Request, skill: str, code: str, message: str, details: dict[str, str] | None = None
    ) -> _HttpError:
        resource = ResourceInfo(url=self.endpoint + request.path, mime_type="application/json")
        required = self.host.verifier.payment_required(resource, self.agent.price_of(skill), error=code)
        error = _HttpError(402, code, message, details)
        error.headers[PAYMENT_REQUIRED_HEADER] = encode_header(required)
        return error

    def _paid_response(self, paid: PaidAnswer, receipt: SignedReceiptDocument, body: bytes) -> web.Response:
        settlement = self.host.verifier.settlement(paid.payment)
        headers = {
            PAYMENT_RESPONSE_HEADER: encode_header(settlement),
            RECEIPT_HEADER: base64.b64encode(receipt.model_dump_json(by_alias=True).encode()).decode(),
        }
        return web.Response(body=body, content_type="application/json", headers=headers)

    # -- receipts --------------------------------------------------------------------------------------------------

    async def receipt(self, request: web.Request) -> web.Response:
        request_id = _bytes32(request.match_info["request_id"])
        entry = await self.host.journaled(request_id)
        reader = await self._reader(request)
        if entry is None or entry.answer is None:
            raise _HttpError(404, "unknown_request", "no receipt for that request id")
        if reader != entry.payment.payer and not await self._is_validator(reader):
            raise _HttpError(403, "forbidden", "receipts are served to their payer and to staked validators")
        return await self._receipt_document(
            request_id, entry.answer.receipt.receipt, entry.answer.receipt.signature, entry.answer.record
        )

    async def receipt_at(self, request: web.Request) -> web.Response:
        try:
            epoch, seq = int(request.match_info["epoch"]), int(request.match_info["seq"])
        except ValueError as exc:
            raise _HttpError(400, "invalid_position", "epoch and seq are integers") from exc
        reader = await self._reader(request)
        if not await self._is_validator(reader):
            raise _HttpError(403, "forbidden", "receipts by position are served to staked validators")
        receipts = await self.host.journal.receipts(epoch)
        if not 0 <= seq < len(receipts):
            raise _HttpError(404, "unknown_receipt", f"epoch {epoch} holds {len(receipts)} receipts")
        request_id = receipts[seq].receipt.request_id
        entry = await self.host.journaled(request_id)
        if entry is None or entry.answer is None:  # a host that withholds what it journaled
            raise _HttpError(404, "unknown_receipt", f"receipt {seq} of epoch {epoch} is not served")
        return await self._receipt_document(
            request_id, entry.answer.receipt.receipt, entry.answer.receipt.signature, entry.answer.record
        )

    async def _receipt_document(self, request_id: bytes, receipt: Any, signature: bytes, record: bytes) -> web.Response:
        document = ReceiptDocument.model_validate(
            {
                "receipt": SignedReceiptDocument.of(receipt, signature).model_dump(by_alias=True),
                "record": json.loads(record),
                "inclusion": await self.inclusion(request_id),
            }
        )
        return web.Response(body=document.model_dump_json(by_alias=True), content_type="application/json")

    async def _reader(self, request: web.Request) -> str:
        """The address that signed the request's ``Authorization`` for this path."""
        header = request.headers.get("Authorization")
        if header is None:
            raise _HttpError(401, "unauthorized", "sign the read: see agents.record.receipt_access_header")
        try:
            return receipt_access_signer(header, self.host.operator, request.path, int(time.time()))
        except ReceiptAccessError as exc:
            raise _HttpError(401, "unauthorized", str(exc)) from exc

    async def _is_validator(self, address: str) -> bool:
        """Whether ``address`` is an active validator; a yes is reused for a minute (one that just staked is
        seen at once; one slashed below the minimum keeps reading for at most that long)."""
        now = time.monotonic()
        if now - self._validators.get(address, -_VALIDATOR_TTL) < _VALIDATOR_TTL:
            return True
        try:
            active = await self.chain.is_active(address, Role.VALIDATOR)
        except ChainUnavailableError as exc:
            raise _unavailable("chain_unavailable", str(exc)) from exc
        if active:
            self._validators[address] = now
        return active

    # -- about the agent -------------------------------------------------------------------------------------------

    async def card(self, request: web.Request) -> web.Response:
        stake = await self.chain.stake_info(self.host.operator, Role.AGENT)
        deployment = self.chain.deployment
        domain = self.chain.receipt_domain()
        skills = tuple(
            CardSkill(
                id=spec.name,
                name=spec.name,
                description=spec.description,
                price=str(self.agent.price_of(spec.name)),
                input_schema=spec.input_schema,
                output_schema=spec.output_schema,
            )
            for spec in self.agent.skills.values()
        )
        card = AgentCard(
            name=self.agent.name,
            description=(type(self.agent).__doc__ or self.agent.name).strip().split("\n\n")[0],
            url=self.endpoint,
            version="1",
            skills=skills,
            staked=StakedExtension(
                operator=self.host.operator,
                signer=self.host.signer_address,
                model_id="0x" + self.host.model_id.hex(),
                active_stake=str(stake.active),
                chain_id=deployment.chain_id,
                network=self.host.verifier.network,
                contracts={name: str(address) for name, address in deployment.contracts.model_dump().items()},
                schemes=("exact", "channel"),
                receipt_domain={
                    "name": domain.name,
                    "version": domain.version,
                    "chainId": domain.chain_id,
                    "verifyingContract": domain.verifying_contract,
                },
            ),
        )
        return web.Response(body=card.model_dump_json(by_alias=True), content_type="application/json")

    async def health(self, request: web.Request) -> web.Response:
        checks: dict[str, str] = {}
        try:
            await self.host.agent.backend.engine(self.agent.model)
            checks["model"] = "ok"
        except BackendError as exc:
            checks["model"] = f"failing: {exc}"
        try:
            await self.chain.w3.eth.block_number
            checks["chain"] = "ok"
        except Exception as exc:  # any transport failure means the same: the chain does not answer
            checks["chain"] = f"failing: {type(exc).__name__}"
        try:
            checks["journal"] = f"ok, epoch {await self.host.journal.current_epoch()}"
        except JournalError as exc:
            checks["journal"] = f"failing: {exc}"
        healthy = all(value.startswith("ok") for value in checks.values())
        document = Health(status="ok" if healthy else "degraded", checks=checks)
        return web.Response(
            status=200 if healthy else 503, body=document.model_dump_json(), content_type="application/json"
        )

    async def metrics(self, request: web.Request) -> web.Response:
        self.counters.current_epoch.set(await self.host.journal.current_epoch())
        response = web.Response(body=self.counters.exposition())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def openapi(self, request: web.Request) -> web.Response:
        if self._openapi is None:
            self._openapi = json.dumps(openapi_document(self.agent, self.endpoint)).encode()
        return web.Response(body=self._openapi, content_type="application/json")


# -- helpers ---------------------------------------------------------------------------------------------------------


async def _body(request: web.Request) -> bytes:
    if request.content_type not in ("application/json", "application/octet-stream", ""):
        raise _HttpError(415, "unsupported_media_type", "send the body as application/json")
    return await request.read()


def _parse_input(skill: str, parse: Callable[[bytes], BaseModel], body: bytes) -> BaseModel:
    try:
        return parse(body)
    except SkillInputError as exc:
        raise _HttpError(422, "invalid_input", str(exc)) from exc


def _invalid(what: str, exc: ValidationError) -> _HttpError:
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"]) or "body"
    return _HttpError(422, "invalid_input", f"invalid {what}: {where}: {first['msg']}")


def _unavailable(code: str, message: str) -> _HttpError:
    error = _HttpError(503, code, message)
    error.headers["Retry-After"] = "5"
    return error


def _bytes32(text: str) -> bytes:
    if len(text) != 66 or not text.startswith("0x"):
        raise _HttpError(400, "invalid_request_id", "a request id is 0x and 64 hex digits")
    try:
        return bytes.fromhex(text[2:])
    except ValueError as exc:
        raise _HttpError(400, "invalid_request_id", "a request id is 0x and 64 hex digits") from exc


def _error(
    status: int, code: str, message: str, details: dict[str, str] | None = None, headers: dict[str, str] | None = None
) -> web.Response:
    body = ErrorBody(error=ErrorDetail(code=code, message=message, details=details or {}))
    return web.Response(
        status=status, body=body.model_dump_json(), content_type="application/json", headers=headers or {}
    )
