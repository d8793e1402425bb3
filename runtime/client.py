"""The paying client of an agent: x402 payments, receipt verification, and a local store of receipts.

:class:`AgentClient` talks to one agent for one payer. It reads the agent card, checks on chain that the card's
operator is an active agent whose registered receipt signer is the card's, then pays every call the way the agent's
``402 PAYMENT-REQUIRED`` asks, in the scheme chosen::

    async with AgentClient(url, wallet, chain=payer_client, store=".staked/receipts.sqlite") as client:
        paid = await client.call("summarize", {"text": "The for statement iterates over a sequence."})
        paid.output, paid.receipt.price

The same client pays for the ``openai`` SDK and LangChain's ``ChatOpenAI``, as an httpx transport::

    http = httpx.AsyncClient(transport=client.transport())
    llm = openai.AsyncOpenAI(base_url=url + "/v1", api_key="x402", http_client=http)
    await llm.chat.completions.create(model="summarizer", messages=[...])   # model: the agent, or one of its skills

How it pays
    Nothing is signed before the requirement is checked: the network, token, channels contract and payee must be
    the deployment's and the card's operator, and the price no more than the card advertises for the skill.
    ``channel`` (default): one PaymentChannels deposit per (payer, agent), opened on first use with ``deposit`` and
    topped up when the next voucher would exceed it; each call signs ``Voucher(channelId, cumulativeAmount)`` one
    price above the amount the agent accepted last. The store keeps that amount, and the largest amount ever signed,
    so a restarted client continues the same channel. When the agent answers that a voucher is stale, replayed or
    off by an amount, and names the cumulative amount it ``expected``, the client resynchronises once and retries,
    but never above what it has signed: an agent can only hold vouchers the payer signed, so a claim of more is a
    lie. Channel calls of one client go one at a time, since each voucher must reach the agent after the one before.
    ``exact``: a fresh EIP-3009 authorization per call, valid for the requirements' ``maxTimeoutSeconds`` from the
    later of the chain's and this machine's clock (an idle devnet's latest block can be minutes old).

Never charged twice
    Every logical call has an ``Idempotency-Key`` (the caller's, or a random one), and the payment sent for it is
    written to the store before it is sent. A network failure is retried with the same key and the same payment,
    and a later call with the same key resends that same payment, so the agent returns its journaled answer and no
    second authorization or voucher is handed over.

What a receipt must say
    It is signed under ReceiptRegistry's EIP-712 domain by the signer registered on chain for the card's operator;
    ``agent`` is that operator, ``payer`` this wallet, ``price`` what was paid, ``requestId`` the answer's,
    ``outputHash`` the hash of the output received and ``requestHash`` that of the skill and input sent. For chat
    completions the output is the reply (``{content, finish_reason}`` for plain chat, the JSON reply of a skill
    called as a model); ``requestHash`` is checked when a skill is called as a model (its input is the last user
    message) and not for plain chat, whose input the agent normalises from the OpenAI request (the record read with
    :meth:`AgentClient.fetch_record` holds it). A receipt that fails a check is stored all the same, since it is
    evidence for a dispute, then :class:`ReceiptVerificationError` is raised and the client pays that agent no more.

For another HTTP client (``curl``, a stock x402 client), :func:`sign_exact_payment` signs one ``exact`` payment of a
skill's price after the same card checks, and stores nothing.

Errors: :class:`~runtime.errors.AgentClientError` and its subclasses (see :mod:`runtime.errors`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Final, Literal, Self, TypeVar
from urllib.parse import unquote

import httpx
from eth_account.signers.local import LocalAccount
from eth_keys.exceptions import BadSignature
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from pydantic import BaseModel, JsonValue, ValidationError

from agents.record import (
    InclusionProof,
    ReceiptDocument,
    SignedReceiptDocument,
    output_hash,
    receipt_access_header,
    request_hash,
)
from staking import merkle
from staking.client import StakingClient
from staking.eip712 import Domain, Voucher, recover
from staking.errors import ConfigError
from staking.types import ChannelState
from staking.units import to_wei_open

from .api import IDEMPOTENCY_KEY_HEADER, RECEIPT_HEADER, AgentCard, ChatCompletion, ErrorBody, SkillResponse
from .errors import (
    AgentClientError,
    AgentHTTPError,
    AgentUnavailableError,
    PaymentDeclinedError,
    PaymentRefusedError,
    ReceiptVerificationError,
    UntrustedAgentError,
)
from .payments import DEFAULT_MAX_TIMEOUT_SECONDS, channel_payment_payload, exact_payment_payload
from .protocol import (
    PAYMENT_REQUIRED_HEADER,
    PAYMENT_RESPONSE_HEADER,
    PAYMENT_SIGNATURE_HEADER,
    ChannelRequirements,
    ExactExtra,
    ExactPaymentPayload,
    ExactRequirements,
    FailureReason,
    HeaderError,
    PaymentRequired,
    ResourceInfo,
    Scheme,
    SettlementResponse,
    decode_payment_required,
    decode_settlement_response,
    encode_header,
)
from .receipt_store import ChannelAccount, ReceiptStore, SentPayment, StoredReceipt

__all__ = [
    "DEFAULT_DEPOSIT",
    "DEFAULT_STORE",
    "AgentClient",
    "PaidCall",
    "PayingTransport",
    "sign_exact_payment",
]

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

#: What a new channel is opened with (wei), unless the client is told otherwise: a hundred calls at 0.01 OPEN.
DEFAULT_DEPOSIT: Final = to_wei_open(1)
#: Where receipts and channel state are kept, unless the client is told otherwise.
DEFAULT_STORE: Final = Path(".staked/receipts.sqlite")
#: Seconds an answer may take: a skill runs a model, and on a CPU that takes a while.
DEFAULT_TIMEOUT: Final = 300.0
#: Sends of one paid request, with the same key and payment, when the network fails; and the first pause between.
_NETWORK_ATTEMPTS: Final = 3
_NETWORK_BACKOFF: Final = 0.5
#: 402 codes after which a channel's next voucher is resynchronised to the agent's ``expected`` cumulative amount.
_RESYNC_CODES: Final = frozenset(
    {
        FailureReason.STALE_VOUCHER,
        FailureReason.REPLAYED,
        FailureReason.AMOUNT_MISMATCH,
        FailureReason.INSUFFICIENT_AMOUNT,
    }
)
#: 402 codes after which an ``exact`` payment is signed afresh (a reused authorization that is spent or too old).
_RESIGN_CODES: Final = frozenset({FailureReason.REPLAYED, FailureReason.EXPIRED, FailureReason.NOT_YET_VALID})
#: 402 codes of a payment that is not the price, which a changed price explains.
_PRICE_CODES: Final = frozenset({FailureReason.INSUFFICIENT_AMOUNT, FailureReason.AMOUNT_MISMATCH})
_CHAT_PATH: Final = "/v1/chat/completions"
_SKILLS_PATH: Final = "/v1/skills/"
_CHAT_SKILL: Final = "chat"


# -- results ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PaidCall:
    """A paid skill call: the skill's output and the verified receipt that commits to it.

    Attributes:
        request_id: the receipt's ``requestId`` (``0x`` hex).
        skill: the skill that answered.
        output: the skill's output (JSON).
        receipt: the agent's signed receipt.
        settlement: the ``PAYMENT-RESPONSE`` document (for a channel, the cumulative amount it now stands at).
        scheme: how the call was paid.
    """

    request_id: str
    skill: str
    output: JsonValue
    receipt: SignedReceiptDocument
    settlement: SettlementResponse
    scheme: Scheme

    @property
    def price(self) -> int:
        """What the call cost (wei)."""
        return self.receipt.price


@dataclass(frozen=True)
class _Exchange:
    """The agent's last answer to a paid request, and the payment it answered."""

    response: httpx.Response
    sent: SentPayment


@dataclass(frozen=True)
class _Call:
    """What a paid request asks for, as far as the client can tell from the request it sends."""

    skill: str
    key: str
    body: bytes
    request_hash: bytes | None  # None: the agent normalises the input (plain chat)
    chat: bool = False  # sent to the chat completions endpoint


_Send = Callable[[dict[str, str]], Awaitable[httpx.Response]]


# -- the client -------------------------------------------------------------------------------------------------


class AgentClient:
    """Pays one agent from one wallet, verifies and stores its receipts (see the module docstring).

    Example:
        >>> async with AgentClient(url, wallet, chain=client, deposit=to_wei_open(1)) as agent:   # doctest: +SKIP
        ...     paid = await agent.call("summarize", {"text": "..."})
        ...     print(paid.output, paid.price)

    Args:
        url: the agent's base URL (the card is at ``/.well-known/agent-card.json`` under it).
        wallet: the payer.
        chain: the payer's staking client (its account must be ``wallet``): opens and tops up channels, signs, and
            reads the agent's registration.
        scheme: ``channel`` or ``exact``.
        deposit: what a new channel is opened with, and topped up by, in wei.
        store: the SQLite file of receipts and channel state, created when missing.
        timeout: seconds a request may take.
        http_transport: the transport of the client's own requests (httpx's default when ``None``).

    Raises:
        ConfigError: ``chain`` signs for another account than ``wallet``, or ``deposit`` is not positive.
    """

    def __init__(
        self,
        url: str,
        wallet: LocalAccount,
        *,
        chain: StakingClient,
        scheme: Literal["channel", "exact"] | Scheme = Scheme.CHANNEL,
        deposit: int = DEFAULT_DEPOSIT,
        store: str | Path = DEFAULT_STORE,
        timeout: float = DEFAULT_TIMEOUT,
        http_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if chain.account is None or chain.account.address != wallet.address:
            raise ConfigError(f"the staking client must sign for the wallet {wallet.address}")
        if deposit <= 0:
            raise ConfigError(f"a channel deposit must be positive, not {deposit} wei")
        self.url = url.rstrip("/")
        self.wallet = wallet
        self.chain = chain
        self.scheme = Scheme(scheme)
        self.deposit = deposit
        self._store = ReceiptStore(Path(store))
        self._timeout = timeout
        self._http_transport = http_transport
        self._base = httpx.URL(self.url)
        self._stack = AsyncExitStack()
        self._http: httpx.AsyncClient | None = None
        self._card: AgentCard | None = None
        self._signer = ""
        self._receipt_domain = chain.receipt_domain()
        self._channel_id: bytes | None = None
        # One voucher at a time: the agent accepts a channel's vouchers only in order.
        self._channel_lock = asyncio.Lock()
        self._distrust: str | None = None

    def __repr__(self) -> str:
        return f"<AgentClient {self.url} payer={self.wallet.address} scheme={self.scheme.value}>"

    async def __aenter__(self) -> Self:
        try:
            await self._store.open()
            self._stack.push_async_callback(self._store.close)
            self._http = await self._stack.enter_async_context(
                httpx.AsyncClient(base_url=self.url, timeout=self._timeout, transport=self._http_transport)
            )
            self._card = await _read_card(self._client(), self.url)
            self._signer = await _check_registration(self.chain, self._card)
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._stack.aclose()

    @property
    def card(self) -> AgentCard:
        """The agent card read (and checked against the chain) on entry."""
        if self._card is None:
            raise AgentClientError("use the client inside 'async with'")
        return self._card

    @property
    def operator(self) -> str:
        """The agent's operator, the ``agent`` of its receipts and the payee of every payment."""
        return to_checksum_address(self.card.staked.operator)

    # -- calls -----------------------------------------------------------------------------------------------------

    async def call(self, skill: str, input: JsonValue | BaseModel, *, idempotency_key: str | None = None) -> PaidCall:
        """Calls ``skill`` with ``input``, paying as the agent asks, and verifies and stores the receipt.

        Args:
            skill: the skill's name, as on the card.
            input: the skill's input, as JSON or as its pydantic model.
            idempotency_key: names this logical call; the same key later returns the same answer and receipt and
                charges nothing more. A random key when ``None``.

        Raises:
            AgentHTTPError: the agent refused the call (unknown skill, invalid input, model down, ...).
            PaymentRefusedError: the agent refused the payment for a reason the client cannot fix.
            PaymentDeclinedError: the agent asks for a payment the client will not make.
            UntrustedAgentError: a receipt of this agent failed verification before, or it claims unsigned money.
            ReceiptVerificationError: the receipt does not commit to this call (it is stored all the same).
            AgentUnavailableError: the agent did not answer.
            ChainError: opening or topping up the channel failed.
        """
        payload: JsonValue = input.model_dump(mode="json", by_alias=True) if isinstance(input, BaseModel) else input
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        call = _Call(skill, idempotency_key or _new_key(), body, request_hash(skill, payload))
        path = _SKILLS_PATH + skill

        async def send(headers: dict[str, str]) -> httpx.Response:
            return await self._client().post(
                path, content=body, headers={"Content-Type": "application/json", **headers}
            )

        try:
            first = await _with_retries(send, {})
            if first.status_code != 402:
                raise _http_error(first)
            exchange = await self._pay(send, _payment_required(first), call)
        except httpx.TransportError as exc:
            raise AgentUnavailableError(self.url, str(exc) or type(exc).__name__) from exc
        response = exchange.response
        if response.status_code != 200:
            raise _http_error(response)
        try:
            answer = SkillResponse.model_validate_json(response.content)
        except ValidationError as exc:
            raise self._unreadable(call, "the paid answer is not a skill response") from exc
        await self._keep(call, exchange, answer.receipt, answer.request_id, answer.output)
        return PaidCall(answer.request_id, skill, answer.output, answer.receipt, _settlement(response), self.scheme)

    def transport(self, inner: httpx.AsyncBaseTransport | None = None) -> PayingTransport:
        """An httpx transport that pays this agent's ``402`` answers as :meth:`call` does (see
        :class:`PayingTransport`).

        Args:
            inner: the transport that sends the requests (httpx's default when ``None``).
        """
        return PayingTransport(self, inner or httpx.AsyncHTTPTransport())

    # -- receipts --------------------------------------------------------------------------------------------------

    async def receipts(self) -> list[StoredReceipt]:
        """Every receipt this wallet holds from this agent, oldest first."""
        return await self._store.receipts(self.operator, self.wallet.address)

    async def fetch_record(self, request_id: str) -> ReceiptDocument:
        """Reads a paid answer's record and inclusion proof from the agent (``GET /v1/receipts/{requestId}``, signed
        by the wallet), checks them and keeps the record beside the receipt in the store.

        Checked: the receipt is signed by the agent's signer and paid by this wallet; the record's hashes are the
        receipt's; once the epoch is committed, the Merkle proof leads from the receipt to the root committed on
        chain.

        Raises:
            AgentHTTPError: the agent refused (``404`` unknown request, ``403`` not the payer, ...).
            ReceiptVerificationError: a check failed.
            AgentUnavailableError: the agent did not answer.
        """
        path = f"{self._base.path.rstrip('/')}/v1/receipts/{request_id}"
        authorization = receipt_access_header(self.wallet, self.operator, path, int(time.time()))

        async def send(headers: dict[str, str]) -> httpx.Response:
            return await self._client().get(path, headers={"Authorization": authorization})

        try:
            response = await _with_retries(send, {})
        except httpx.TransportError as exc:
            raise AgentUnavailableError(self.url, str(exc) or type(exc).__name__) from exc
        if response.status_code != 200:
            raise _http_error(response)
        try:
            document = ReceiptDocument.model_validate_json(response.content)
        except ValidationError as exc:
            raise ReceiptVerificationError(request_id, ("the answer is not a receipt document",), None) from exc
        problems = list(self._signature_problems(document.receipt))
        receipt, record = document.receipt, document.record
        if receipt.request_id != request_id:
            problems.append(f"it is the receipt of request {receipt.request_id}")
        if receipt.payer != self.wallet.address:
            problems.append(f"the receipt's payer is {receipt.payer}, not {self.wallet.address}")
        for name, recorded, signed in (
            ("requestHash", record.request_hash(), receipt.request_hash),
            ("outputHash", record.output_hash(), receipt.output_hash),
            ("engineHash", record.engine_hash(), receipt.engine_hash),
            ("attributionHash", record.attribution_hash(), receipt.attribution_hash),
        ):
            if "0x" + recorded.hex() != signed:
                problems.append(f"the record's {name} is 0x{recorded.hex()}, the receipt signs {signed}")
        if document.inclusion is not None:
            problems += await self._inclusion_problems(receipt, document.inclusion)
        if problems:
            raise ReceiptVerificationError(request_id, tuple(problems), receipt)
        await self._store.keep_record(self.operator, request_id, record.to_json())
        return document

    async def channel_account(self) -> ChannelAccount | None:
        """The channel this wallet pays the agent through, as the store knows it; ``None`` before the first one."""
        return await self._store.find_channel(self._channel_key())

    # -- paying ------------------------------------------------------------------------------------------------

    async def _pay(self, send: _Send, required: PaymentRequired, call: _Call) -> _Exchange:
        """Pays ``call`` as ``required`` asks and sends it, fixing what a ``402`` says can be fixed, each once.

        Returns the agent's last answer to the paid request, whatever its status (a ``402`` the client cannot fix
        included: :meth:`call` raises it, the transport hands it to the SDK).
        """
        if self._distrust is not None:
            raise UntrustedAgentError(f"not paying agent {self.operator} any more: {self._distrust}")
        requirements = self._requirements(required, call.skill)
        fingerprint = keccak(call.body)
        sent = await self._store.sent_payment(self.wallet.address, self.operator, call.key, fingerprint, self.scheme)
        fixed: set[str] = set()
        async with self._channel_lock if self.scheme is Scheme.CHANNEL else contextlib.nullcontext():
            while True:
                if sent is None:
                    sent = await self._new_payment(requirements, required.resource)
                    await self._store.remember_payment(self.wallet.address, self.operator, call.key, fingerprint, sent)
                headers = {PAYMENT_SIGNATURE_HEADER: sent.header, IDEMPOTENCY_KEY_HEADER: call.key}
                response = await _with_retries(send, headers)
                if response.status_code == 200 and sent.voucher is not None:
                    await self._settled(response, sent.voucher)
                if response.status_code != 402:
                    return _Exchange(response, sent)
                await response.aread()
                fix = await self._fix(response, requirements, call.skill, sent, fixed)
                if fix is None:
                    return _Exchange(response, sent)
                requirements, sent = fix, None

    async def _settled(self, response: httpx.Response, voucher: Voucher) -> None:
        """Records where the channel stands after a paid answer: at the voucher sent, or at an older one when the
        agent answered the call before (then the voucher sent was not used)."""
        try:
            settled = _settlement(response).extra
        except AgentHTTPError:
            return  # without it the next voucher may be refused as stale, and is resynchronised then
        if settled is not None and settled.channel_id == voucher.channel_id:
            await self._store.accepted(settled.channel_id, settled.cumulative_amount)

    def _requirements(self, required: PaymentRequired, skill: str) -> ExactRequirements | ChannelRequirements:
        """The requirement of the client's scheme, checked against the chain and the card.

        Raises:
            PaymentDeclinedError: none of this scheme, or it pays another chain, token, contract or payee, or more
                than the card's price of ``skill``.
        """
        chosen = next((item for item in required.accepts if item.scheme == self.scheme.value), None)
        if chosen is None:
            offered = sorted({item.scheme for item in required.accepts})
            raise PaymentDeclinedError(f"the agent takes {offered}, not {self.scheme.value}")
        token = self.chain.token_domain()
        expected = {
            "network": f"eip155:{self.chain.deployment.chain_id}",
            "asset": to_checksum_address(token.verifying_contract),
            "payTo": self.operator,
        }
        actual = {"network": chosen.network, "asset": chosen.asset, "payTo": chosen.pay_to}
        if isinstance(chosen, ChannelRequirements):
            channels = self.chain.channel_domain()
            expected |= {"channels": to_checksum_address(channels.verifying_contract), "domain": _named(channels)}
            actual |= {"channels": chosen.extra.channels, "domain": f"{chosen.extra.name} {chosen.extra.version}"}
        else:
            expected["domain"] = _named(token)
            actual["domain"] = f"{chosen.extra.name} {chosen.extra.version}"
        for name, value in expected.items():
            if actual[name] != value:
                raise PaymentDeclinedError(f"the agent asks to pay {name} {actual[name]}, the client pays {value}")
        price = _card_price(self.card, skill)
        if chosen.amount > price:
            raise PaymentDeclinedError(
                f"the agent asks {chosen.amount} wei for {skill!r}, above the {price} wei its card advertises"
            )
        return chosen

    async def _new_payment(
        self, requirements: ExactRequirements | ChannelRequirements, resource: ResourceInfo
    ) -> SentPayment:
        if isinstance(requirements, ChannelRequirements):
            channel_id = await self._open_channel(requirements.amount)
            cumulative = await self._store.reserve(channel_id, requirements.amount)
            if cumulative is None:  # the next voucher would exceed the deposit
                account = await self._store.channel(channel_id)
                top_up = max(self.deposit, account.paid + requirements.amount - account.deposit)
                _log.info("topping up channel 0x%s by %d wei", channel_id.hex(), top_up)
                await self.chain.top_up(channel_id, top_up)
                await self._store.sync(channel_id, await self.chain.channel(channel_id))
                cumulative = await self._store.reserve(channel_id, requirements.amount)
                if cumulative is None:
                    raise AgentClientError(f"channel 0x{channel_id.hex()} still lacks a deposit after a top-up")
            voucher = Voucher(channel_id, cumulative)
            signature = self.chain.sign_voucher(channel_id, cumulative)
            document: BaseModel = channel_payment_payload(requirements, voucher, signature, resource)
            return SentPayment(encode_header(document), requirements.amount, voucher)
        document = await _exact_payload(self.chain, requirements, resource)
        return SentPayment(encode_header(document), requirements.amount, None)

    async def _open_channel(self, price: int) -> bytes:
        """The open channel to the agent: the one in the store once checked on chain, or a new one."""
        if self._channel_id is not None:
            return self._channel_id
        key = self._channel_key()
        account = await self._store.find_channel(key)
        if account is not None:
            on_chain = await self.chain.channel(account.channel_id)
            if on_chain.state is ChannelState.OPEN and on_chain.receiver == self.operator:
                await self._store.sync(account.channel_id, on_chain)
                self._channel_id = account.channel_id
                return account.channel_id
            _log.info("channel 0x%s is %s: opening another", account.channel_id.hex(), on_chain.state.name)
            await self._store.close_channel(account.channel_id)
        deposit = max(self.deposit, price)
        channel_id = await self.chain.open_channel(self.operator, deposit)
        _log.info("opened channel 0x%s to %s with %d wei", channel_id.hex(), self.operator, deposit)
        await self._store.add_channel(key, channel_id, deposit)
        self._channel_id = channel_id
        return channel_id

    def _channel_key(self) -> tuple[int, str, str, str]:
        channels = to_checksum_address(self.chain.channel_domain().verifying_contract)
        return self.chain.deployment.chain_id, channels, self.wallet.address, self.operator

    async def _fix(
        self,
        response: httpx.Response,
        requirements: ExactRequirements | ChannelRequirements,
        skill: str,
        sent: SentPayment,
        fixed: set[str],
    ) -> ExactRequirements | ChannelRequirements | None:
        """What to pay after the ``402`` ``response`` to ``sent``; ``None`` when the client cannot fix it (or did
        once already)."""
        error = _error_body(response).error
        code, details = error.code, error.details
        header = response.headers.get(PAYMENT_REQUIRED_HEADER)
        if header is not None:
            requirements = self._requirements(_decode_required(header), skill)
        voucher = sent.voucher
        if voucher is None:
            fix = "authorization" if code in _RESIGN_CODES else None
        elif code in _RESYNC_CODES and "expected" in details:
            fix = "resync"
        elif code == FailureReason.EXCEEDS_DEPOSIT:
            fix = "deposit"
        elif code in (FailureReason.UNKNOWN_CHANNEL, FailureReason.CHANNEL_CLOSED):
            fix = "channel"
        else:
            fix = None
        if fix is None and code in _PRICE_CODES and requirements.amount != sent.amount:
            fix = "price"  # the price changed since the payment was signed: pay the new one
        if fix is None or fix in fixed:
            return None
        fixed.add(fix)
        if voucher is not None and fix == "resync":
            paid = int(details["expected"]) - requirements.amount
            if not await self._store.resync(voucher.channel_id, paid):
                self._distrust = f"it claims channel 0x{voucher.channel_id.hex()} paid {paid} wei, more than signed"
                raise UntrustedAgentError(self._distrust)
            _log.info("channel 0x%s resynchronised at %d wei (%s)", voucher.channel_id.hex(), paid, code)
        elif voucher is not None and fix == "deposit":
            await self._store.sync(voucher.channel_id, await self.chain.channel(voucher.channel_id))
        elif voucher is not None and fix == "channel":
            await self._store.close_channel(voucher.channel_id)
            self._channel_id = None
        return requirements

    # -- verifying ---------------------------------------------------------------------------------------------

    def _check(
        self,
        receipt: SignedReceiptDocument,
        call: _Call,
        request_id: str | None,
        output: JsonValue,
        paid: int,
        unreadable: str | None,
    ) -> list[str]:
        """The checks a paid answer's receipt fails (see the module docstring); empty when it passes."""
        problems = list(self._signature_problems(receipt))
        if receipt.agent != self.operator:
            problems.append(f"the receipt names agent {receipt.agent}, not the operator {self.operator}")
        if receipt.payer != self.wallet.address:
            problems.append(f"the receipt's payer is {receipt.payer}, not {self.wallet.address}")
        if receipt.price != paid:
            problems.append(f"the receipt's price is {receipt.price} wei, {paid} wei was paid")
        if request_id is not None and receipt.request_id != request_id:
            problems.append(f"the receipt is of request {receipt.request_id}, the answer of {request_id}")
        if call.request_hash is not None and receipt.request_hash != "0x" + call.request_hash.hex():
            problems.append(f"the receipt's requestHash {receipt.request_hash} is not that of the input sent")
        if unreadable is not None:
            problems.append(unreadable)
        elif receipt.output_hash != "0x" + output_hash(output).hex():
            problems.append(f"the receipt's outputHash {receipt.output_hash} is not that of the output received")
        return problems

    def _signature_problems(self, receipt: SignedReceiptDocument) -> tuple[str, ...]:
        try:
            signer = recover(self._receipt_domain, receipt.receipt, receipt.signature_bytes)
        except (BadSignature, ValueError):
            return ("no signer can be recovered from the receipt's signature",)
        if signer != self._signer:
            return (f"the receipt is signed by {signer}, not by the agent's registered signer {self._signer}",)
        return ()

    async def _inclusion_problems(self, receipt: SignedReceiptDocument, inclusion: InclusionProof) -> list[str]:
        root = bytes.fromhex(inclusion.receipts_root[2:])
        leaf = receipt.receipt.leaf(self._receipt_domain)
        problems = []
        if not merkle.verify(root, leaf, [bytes.fromhex(node[2:]) for node in inclusion.proof]):
            problems.append("the inclusion proof does not lead from the receipt to its root")
        committed = await self.chain.epoch(self.operator, receipt.epoch)
        if committed.receipts_root != root:
            problems.append(
                f"epoch {receipt.epoch}'s root on chain is 0x{committed.receipts_root.hex()}, "
                f"not {inclusion.receipts_root}"
            )
        return problems

    async def _keep(
        self,
        call: _Call,
        exchange: _Exchange,
        receipt: SignedReceiptDocument,
        request_id: str | None,
        output: JsonValue,
        *,
        unreadable: str | None = None,
    ) -> None:
        """Verifies a paid answer's receipt, stores it with the answer, then raises when it failed a check.

        ``unreadable`` says why the answer's output could not be read, when it could not (then it is the problem
        in place of the output check). A second, different receipt for a request id the store holds a receipt of
        is a problem too: an agent signs one receipt per request, and two are equivocation, which DisputeManager
        slashes on sight.
        """
        problems = self._check(receipt, call, request_id, output, exchange.sent.amount, unreadable)
        for held in await self._store.receipts_of(self.operator, receipt.request_id):
            if held.signature != receipt.signature:
                problems.append(f"the agent signed another receipt for this request before ({held.signature})")
                break
        await self._store.add_receipt(
            StoredReceipt(
                request_id=receipt.request_id,
                agent=self.operator,
                payer=self.wallet.address,
                skill=call.skill,
                scheme=self.scheme,
                receipt=receipt,
                request=call.body,
                response=exchange.response.content,
                problems=tuple(problems),
                record=None,
                stored_at=time.time(),
            )
        )
        if problems:
            self._distrust = f"its receipt of request {receipt.request_id} failed verification"
            raise ReceiptVerificationError(receipt.request_id, tuple(problems), receipt)

    def _unreadable(self, call: _Call, problem: str) -> ReceiptVerificationError:
        """A paid answer without a readable receipt: nothing can be stored as one, and this agent is paid no more."""
        self._distrust = "it answered a paid call without a readable receipt"
        _log.warning("agent %s answered paid call %s without a readable receipt", self.operator, call.key)
        return ReceiptVerificationError("(unknown)", (problem,), None)

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            raise AgentClientError("use the client inside 'async with'")
        return self._http

    def _paid_call(self, request: httpx.Request) -> _Call | None:
        """What a request through :class:`PayingTransport` pays for (its body read), or ``None`` when it is not a
        paid call of this agent."""
        base, url = self._base, request.url
        prefix = base.path.rstrip("/")
        if (url.scheme, url.host, url.port) != (base.scheme, base.host, base.port) or not url.path.startswith(prefix):
            return None
        path = url.path[len(prefix) :]
        key = request.headers.get(IDEMPOTENCY_KEY_HEADER) or _new_key()
        body = request.content
        if path.startswith(_SKILLS_PATH):
            skill = unquote(path[len(_SKILLS_PATH) :])
            try:
                return _Call(skill, key, body, request_hash(skill, _json(body)))
            except ValueError:
                return _Call(skill, key, body, None)  # the agent refuses it before asking for payment
        if path != _CHAT_PATH:
            return None
        try:
            completion = _json(body)
        except ValueError:
            return None
        model = completion.get("model") if isinstance(completion, dict) else None
        if not isinstance(model, str) or not isinstance(completion, dict):
            return None
        if model == self.card.name:
            return _Call(_CHAT_SKILL, key, body, None, chat=True)
        messages = completion.get("messages")
        users = (
            [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
            if isinstance(messages, list)
            else []
        )
        content = users[-1].get("content") if users else None
        try:
            return _Call(model, key, body, request_hash(model, _json(str(content).encode())), chat=True)
        except ValueError:
            return _Call(model, key, body, None, chat=True)

    async def _verify_transported(self, call: _Call, exchange: _Exchange) -> None:
        """Verifies and stores the receipt of a paid answer that went through :class:`PayingTransport`."""
        response = exchange.response
        header = response.headers.get(RECEIPT_HEADER)
        if header is None:
            raise self._unreadable(call, f"the paid answer has no {RECEIPT_HEADER} header")
        try:
            receipt = SignedReceiptDocument.model_validate_json(base64.b64decode(header, validate=True))
        except (binascii.Error, ValidationError) as exc:
            raise self._unreadable(call, f"the {RECEIPT_HEADER} header is not a receipt") from exc
        request_id: str | None = None
        output: JsonValue = None
        unreadable: str | None = None
        try:
            request_id, output = _answer_of(call, response.content)
        except ValueError as exc:
            # Still a signed receipt of a paid call: kept, as evidence of an answer that does not match it.
            unreadable = f"the paid answer cannot be read: {exc}"
        await self._keep(call, exchange, receipt, request_id, output, unreadable=unreadable)


class PayingTransport(httpx.AsyncBaseTransport):
    """An httpx transport that pays an agent's ``402`` answers with an :class:`AgentClient`.

    ``POST`` requests to the agent's ``/v1/skills/{name}`` and ``/v1/chat/completions`` are sent unpaid first; a
    ``402`` is paid as :meth:`AgentClient.call` pays (same scheme, channel, checks, store and retries; an
    ``Idempotency-Key`` header of the request is honoured, else one is made), and the paid answer's receipt (the
    ``STAKED-RECEIPT`` header) is verified and stored before the response is handed back. Everything else passes
    through untouched, as do answers the agent refuses: the SDK reports those from the error envelope.

    Example:
        >>> http = httpx.AsyncClient(transport=agent.transport())                            # doctest: +SKIP
        >>> llm = openai.AsyncOpenAI(base_url=agent.url + "/v1", api_key="x402", http_client=http)  # doctest: +SKIP
        >>> llm = ChatOpenAI(model="summarizer", base_url=agent.url + "/v1", api_key="x402",   # doctest: +SKIP
        ...                  http_async_client=http)

    A failed receipt check raises :class:`ReceiptVerificationError` from the request; the ``openai`` SDK wraps it in
    its ``APIConnectionError`` (the cause is kept) and may retry, which the client refuses: it pays that agent no more.
    """

    def __init__(self, client: AgentClient, inner: httpx.AsyncBaseTransport) -> None:
        self._agent = client
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method != "POST":
            return await self._inner.handle_async_request(request)
        await request.aread()  # sent twice when payment is asked for
        call = self._agent._paid_call(request)
        response = await self._inner.handle_async_request(request)
        if call is None or response.status_code != 402 or PAYMENT_REQUIRED_HEADER not in response.headers:
            return response
        await response.aread()
        await response.aclose()
        required = _payment_required(response)

        async def send(headers: dict[str, str]) -> httpx.Response:
            paid = httpx.Request(
                request.method,
                request.url,
                headers=[*request.headers.multi_items(), *headers.items()],
                content=request.content,
                extensions=request.extensions,
            )
            return await self._inner.handle_async_request(paid)

        exchange = await self._agent._pay(send, required, call)
        if exchange.response.status_code == 200:
            await exchange.response.aread()
            await self._agent._verify_transported(call, exchange)
        return exchange.response

    async def aclose(self) -> None:
        await self._inner.aclose()


async def sign_exact_payment(url: str, skill: str, *, chain: StakingClient) -> ExactPaymentPayload:
    """A ``PAYMENT-SIGNATURE`` document paying one call of ``skill`` of the agent at ``url``, for another HTTP client
    to send (``curl``, a stock x402 client): an EIP-3009 authorization of the card's price, nothing stored.

    The card is checked against the chain as :class:`AgentClient` checks it; the requirements are the ``exact`` ones
    the agent's ``402`` names, built from the card and the deployment, since a ``402`` is only had for a valid input.
    The authorization is valid for :data:`~runtime.payments.DEFAULT_MAX_TIMEOUT_SECONDS` (the ``maxTimeoutSeconds``
    agents advertise) from the later of the chain's and this machine's clock; the agent settles it only once it
    answers a call paid with it.

    Example:
        >>> payload = await sign_exact_payment(url, "summarize", chain=payer_client)             # doctest: +SKIP
        >>> httpx.post(url + "/v1/skills/summarize", json=..., headers={"PAYMENT-SIGNATURE": encode_header(payload)})

    Raises:
        ConfigError: ``chain`` has no account to sign with.
        PaymentDeclinedError: the card lists no such skill, takes no ``exact`` payment, or is paid in another token.
        UntrustedAgentError: the card does not match the chain (see :class:`AgentClient`).
        AgentHTTPError / AgentUnavailableError: the card could not be read.
    """
    if chain.account is None:
        raise ConfigError("signing a payment needs the payer's account")
    async with httpx.AsyncClient(base_url=url) as http:
        card = await _read_card(http, url)
    await _check_registration(chain, card)
    price = _card_price(card, skill)
    if Scheme.EXACT.value not in card.staked.schemes:
        raise PaymentDeclinedError(f"the agent takes {sorted(card.staked.schemes)}, not exact")
    token = chain.token_domain()
    asset = to_checksum_address(token.verifying_contract)
    card_token = card.staked.contracts.get("open_token")
    if card_token is None or to_checksum_address(card_token) != asset:
        raise PaymentDeclinedError(f"the agent is paid in token {card_token}, the deployment's OPEN is {asset}")
    requirements = ExactRequirements(
        network=f"eip155:{chain.deployment.chain_id}",
        amount=price,
        asset=asset,
        pay_to=card.staked.operator,
        max_timeout_seconds=DEFAULT_MAX_TIMEOUT_SECONDS,
        extra=ExactExtra(name=token.name, version=token.version),
    )
    resource = ResourceInfo(url=f"{card.url.rstrip('/')}{_SKILLS_PATH}{skill}", mime_type="application/json")
    return await _exact_payload(chain, requirements, resource)


# -- helpers ----------------------------------------------------------------------------------------------------


def _new_key() -> str:
    return uuid.uuid4().hex


async def _read_card(http: httpx.AsyncClient, url: str) -> AgentCard:
    """The agent card at ``url`` (``http``'s base URL).

    Raises:
        AgentUnavailableError / AgentHTTPError: the agent did not answer, or not with a card.
        UntrustedAgentError: it answered something that is not a card.
    """
    try:
        response = await _with_retries(lambda headers: http.get("/.well-known/agent-card.json"), {})
    except httpx.TransportError as exc:
        raise AgentUnavailableError(url, str(exc) or type(exc).__name__) from exc
    if response.status_code != 200:
        raise _http_error(response)
    try:
        return AgentCard.model_validate_json(response.content)
    except ValidationError as exc:
        raise UntrustedAgentError(f"{url} serves no agent card: {exc.errors()[0]['msg']}") from exc


async def _check_registration(chain: StakingClient, card: AgentCard) -> str:
    """The agent's registered receipt signer, once the card is found to match ``chain``.

    Raises:
        UntrustedAgentError: another chain or receipt domain, not an active agent, or another signer or model.
    """
    staked = card.staked
    if staked.chain_id != chain.deployment.chain_id:
        raise UntrustedAgentError(
            f"the agent is on chain {staked.chain_id}, the client on chain {chain.deployment.chain_id}"
        )
    domain = chain.receipt_domain()
    expected_domain = {
        "name": domain.name,
        "version": domain.version,
        "chainId": domain.chain_id,
        "verifyingContract": to_checksum_address(domain.verifying_contract),
    }
    actual_domain = dict(staked.receipt_domain)
    if isinstance(actual_domain.get("verifyingContract"), str):
        actual_domain["verifyingContract"] = to_checksum_address(actual_domain["verifyingContract"])
    if actual_domain != expected_domain:
        raise UntrustedAgentError(f"the card's receipt domain {staked.receipt_domain} is not the deployment's")
    info = await chain.agent_info(to_checksum_address(staked.operator))
    if not info.active:
        raise UntrustedAgentError(f"{staked.operator} is not an active (registered and staked) agent")
    if info.signer != to_checksum_address(staked.signer):
        raise UntrustedAgentError(f"the card's signer {staked.signer} is not the registered signer {info.signer}")
    if "0x" + info.model_id.hex() != staked.model_id.lower():
        raise UntrustedAgentError(f"the card's model {staked.model_id} is not the registered 0x{info.model_id.hex()}")
    return info.signer


def _card_price(card: AgentCard, skill: str) -> int:
    """What ``card`` advertises for ``skill`` (wei).

    Raises:
        PaymentDeclinedError: the card lists no such skill.
    """
    for card_skill in card.skills:
        if card_skill.id == skill:
            return int(card_skill.price)
    sold = sorted(card_skill.id for card_skill in card.skills)
    raise PaymentDeclinedError(f"the agent's card lists no skill {skill!r}: its price is unknown (it sells {sold})")


async def _exact_payload(
    chain: StakingClient, requirements: ExactRequirements, resource: ResourceInfo | None
) -> ExactPaymentPayload:
    """``chain``'s account's EIP-3009 authorization paying ``requirements``, valid for their
    ``maxTimeoutSeconds`` from the later of the chain's and this machine's clock (an idle devnet's latest block can
    be minutes old)."""
    block = await chain.w3.eth.get_block("latest")
    now = max(int(block["timestamp"]), int(time.time()))
    authorization, signature = chain.sign_transfer_authorization(
        requirements.pay_to, requirements.amount, valid_after=0, valid_before=now + requirements.max_timeout_seconds
    )
    return exact_payment_payload(requirements, authorization, signature, resource)


def _named(domain: Domain) -> str:
    return f"{domain.name} {domain.version}"


def _json(body: bytes) -> JsonValue:
    """``body`` parsed as JSON.

    Raises:
        ValueError: it is not JSON (UTF-8).
    """
    value: JsonValue = json.loads(body)
    return value


async def _with_retries(send: _Send, headers: dict[str, str]) -> httpx.Response:
    """``send(headers)``, again with the very same headers when the network fails (a paid request is idempotent
    only this way: same key, same payment)."""
    for attempt in range(_NETWORK_ATTEMPTS):
        try:
            return await send(headers)
        except httpx.TransportError as exc:
            if attempt == _NETWORK_ATTEMPTS - 1:
                raise
            pause = _NETWORK_BACKOFF * 2**attempt
            _log.info("request failed (%s); sending it again in %.1f s", type(exc).__name__, pause)
            await asyncio.sleep(pause)
    raise AssertionError("unreachable")  # the loop returns or raises


def _error_body(response: httpx.Response) -> ErrorBody:
    try:
        return ErrorBody.model_validate_json(response.content)
    except ValidationError:
        return ErrorBody.model_validate(
            {
                "error": {
                    "code": f"http_{response.status_code}",
                    "message": response.text[:200] or response.reason_phrase,
                }
            }
        )


def _http_error(response: httpx.Response) -> AgentHTTPError:
    error = _error_body(response).error
    cls = PaymentRefusedError if response.status_code == 402 else AgentHTTPError
    return cls(response.status_code, error.code, error.message, dict(error.details))


def _payment_required(response: httpx.Response) -> PaymentRequired:
    header = response.headers.get(PAYMENT_REQUIRED_HEADER)
    if header is None:
        raise _http_error(response)
    return _decode_required(header)


def _decode_required(header: str) -> PaymentRequired:
    try:
        return decode_payment_required(header)
    except HeaderError as exc:
        raise PaymentDeclinedError(f"the agent's {PAYMENT_REQUIRED_HEADER} cannot be read: {exc}") from exc


def _settlement(response: httpx.Response) -> SettlementResponse:
    header = response.headers.get(PAYMENT_RESPONSE_HEADER)
    if header is None:
        raise AgentHTTPError(response.status_code, "no_settlement", f"a paid answer without {PAYMENT_RESPONSE_HEADER}")
    try:
        return decode_settlement_response(header)
    except HeaderError as exc:
        raise AgentHTTPError(response.status_code, "no_settlement", str(exc)) from exc


def _answer_of(call: _Call, body: bytes) -> tuple[str, JsonValue]:
    """The request id and the skill's output in the paid answer to ``call``, from either endpoint.

    Raises:
        ValueError: the answer cannot be read (pydantic's ``ValidationError`` is one).
    """
    if not call.chat:
        answer = SkillResponse.model_validate_json(body)
        return answer.request_id, answer.output
    completion = ChatCompletion.model_validate_json(body)
    if len(completion.choices) != 1:
        raise ValueError(f"{len(completion.choices)} choices, where an agent answers one")
    request_id = "0x" + completion.id.removeprefix("chatcmpl-")
    choice = completion.choices[0]
    if call.skill == _CHAT_SKILL:
        return request_id, {"content": choice.message.content, "finish_reason": choice.finish_reason}
    return request_id, _json(choice.message.content.encode())  # a skill's reply is its JSON output
