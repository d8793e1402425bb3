"""The paying client against a real agent host (anvil + vLLM CPU + examples/summarizer.py): both schemes, receipts
verified and stored, idempotent retries charged once, a restarted client, a stock x402 client, the openai SDK and
LangChain through the paying transport, and tampered answers caught."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, JsonValue
from x402 import x402Client
from x402.http.clients import x402HttpxClient
from x402.mechanisms.evm.exact import ExactEvmScheme
from x402.mechanisms.evm.signers import EthAccountSigner

from agents.record import SignedReceiptDocument, output_hash, request_hash
from runtime.api import RECEIPT_HEADER
from runtime.client import AgentClient
from runtime.errors import (
    AgentUnavailableError,
    PaymentDeclinedError,
    ReceiptVerificationError,
    UntrustedAgentError,
)
from runtime.journal import AcceptedAuthorization, AcceptedVoucher
from runtime.protocol import (
    PAYMENT_REQUIRED_HEADER,
    PAYMENT_SIGNATURE_HEADER,
    Scheme,
    decode_payment_required,
    encode_header,
)
from runtime.serve import AgentService
from staking import ChannelState, StakingClient, recover, sign, to_wei_open

from .conftest import OTHER_PAYER, PAYER

pytestmark = pytest.mark.chain

PRICE = to_wei_open("0.01")
TEXT: dict[str, JsonValue] = {"text": "The for statement iterates over the items of any sequence.", "max_words": 8}
#: keys[4] pays with the stock x402 client, so its balance is its own.
X402_PAYER = 4


class SummarizeIn(BaseModel):
    """The summarizer's input, as a caller's own model of it."""

    text: str
    max_words: int


def payer_client(
    service: AgentService,
    keys: list[LocalAccount],
    clients: list[StakingClient],
    store: Path,
    *,
    deposit: int = 100 * PRICE,
    http_transport: httpx.AsyncBaseTransport | None = None,
) -> AgentClient:
    return AgentClient(
        service.url, keys[PAYER], chain=clients[PAYER], store=store, deposit=deposit, http_transport=http_transport
    )


def rid(request_id: str) -> bytes:
    return bytes.fromhex(request_id[2:])


async def test_a_channel_call_is_paid_verified_and_stored_and_the_channel_topped_up(
    agent_service: AgentService, keys: list[LocalAccount], clients: list[StakingClient], tmp_path: Path
) -> None:
    async with payer_client(agent_service, keys, clients, tmp_path / "store.sqlite", deposit=PRICE) as client:
        first = await client.call("summarize", TEXT)
        opened = await client.channel_account()
        second = await client.call("summarize", SummarizeIn(text="A list is a mutable sequence.", max_words=8))
        account = await client.channel_account()
        stored = await client.receipts()

    assert first.scheme is Scheme.CHANNEL
    assert (first.price, second.price) == (PRICE, PRICE)
    assert isinstance(first.output, dict)
    assert isinstance(first.output["summary"], str)
    assert first.receipt.request_hash == "0x" + request_hash("summarize", TEXT).hex()
    assert opened is not None
    assert account is not None
    assert (opened.paid, opened.signed, opened.deposit) == (PRICE, PRICE, PRICE)
    # The second voucher would have exceeded the deposit: the client topped the channel up by its deposit first.
    assert (account.channel_id, account.paid, account.signed, account.deposit) == (
        opened.channel_id,
        2 * PRICE,
        2 * PRICE,
        2 * PRICE,
    )
    on_chain = await clients[PAYER].channel(account.channel_id)
    assert (on_chain.state, on_chain.deposit, on_chain.receiver) == (
        ChannelState.OPEN,
        2 * PRICE,
        agent_service.client.address,
    )
    assert first.settlement.extra is not None
    assert (first.settlement.extra.channel_id, first.settlement.extra.cumulative_amount) == (opened.channel_id, PRICE)

    for paid, cumulative in ((first, PRICE), (second, 2 * PRICE)):
        entry = await agent_service.host.journal.lookup(rid(paid.request_id))
        assert entry is not None
        assert entry.answer is not None
        assert isinstance(entry.payment, AcceptedVoucher)
        assert entry.payment.voucher.cumulative_amount == cumulative
        assert entry.answer.receipt.signature == paid.receipt.signature_bytes

    assert [(r.request_id, r.skill, r.scheme, r.verified) for r in stored] == [
        (first.request_id, "summarize", Scheme.CHANNEL, True),
        (second.request_id, "summarize", Scheme.CHANNEL, True),
    ]
    assert stored[0].receipt == first.receipt
    assert json.loads(stored[0].request) == TEXT
    assert json.loads(stored[0].response)["output"] == first.output


async def test_an_idempotent_retry_returns_the_same_receipt_and_charges_once(
    agent_service: AgentService, keys: list[LocalAccount], clients: list[StakingClient], tmp_path: Path
) -> None:
    async with payer_client(agent_service, keys, clients, tmp_path / "store.sqlite") as client:
        first = await client.call("summarize", TEXT, idempotency_key="order-42")
        again = await client.call("summarize", TEXT, idempotency_key="order-42")
        account = await client.channel_account()
        stored = await client.receipts()

    assert again.receipt == first.receipt
    assert again.output == first.output
    assert account is not None
    # The retry resent the voucher of the first call: nothing more was signed, nothing more accepted.
    assert (account.paid, account.signed) == (PRICE, PRICE)
    newest = {voucher.voucher.channel_id: voucher for voucher in await agent_service.host.journal.claimable_vouchers()}
    assert newest[account.channel_id].voucher.cumulative_amount == PRICE
    assert [r.request_id for r in stored] == [first.request_id]


async def test_a_lost_answer_is_fetched_again_with_its_key_and_the_channel_resynchronises(
    agent_service: AgentService, keys: list[LocalAccount], clients: list[StakingClient], tmp_path: Path
) -> None:
    network = LosingNetwork(httpx.AsyncHTTPTransport())
    async with payer_client(agent_service, keys, clients, tmp_path / "store.sqlite", http_transport=network) as client:
        await client.call("summarize", TEXT)
        network.losing = True
        with pytest.raises(AgentUnavailableError):
            await client.call("summarize", {"text": "Tuples are immutable.", "max_words": 8}, idempotency_key="lost")
        network.losing = False
        after_loss = await client.channel_account()
        # A new call signs the voucher the agent already holds, hears it is replayed and what comes next.
        resynced = await client.call("summarize", TEXT)
        resynced_account = await client.channel_account()
        # The lost call, again with its key: the stored voucher is resent and the journaled answer comes back.
        recovered = await client.call(
            "summarize", {"text": "Tuples are immutable.", "max_words": 8}, idempotency_key="lost"
        )
        final = await client.channel_account()
        stored = await client.receipts()

    assert network.forwarded_while_losing == 1  # the agent got the lost call once; the retries never reached it
    assert after_loss is not None
    assert (after_loss.paid, after_loss.signed) == (PRICE, 2 * PRICE)
    assert resynced.receipt.price == PRICE
    assert resynced_account is not None
    assert resynced_account.paid == 3 * PRICE
    assert final is not None
    assert (final.paid, final.signed) == (3 * PRICE, 3 * PRICE)
    lost = await agent_service.host.journal.lookup(rid(recovered.request_id))
    assert lost is not None
    assert isinstance(lost.payment, AcceptedVoucher)
    assert lost.payment.voucher.cumulative_amount == 2 * PRICE
    assert recovered.settlement.extra is not None
    assert recovered.settlement.extra.cumulative_amount == 2 * PRICE
    assert len(stored) == 3
    assert all(receipt.verified for receipt in stored)


async def test_a_restarted_client_keeps_paying_the_same_channel(
    agent_service: AgentService, keys: list[LocalAccount], clients: list[StakingClient], tmp_path: Path
) -> None:
    store = tmp_path / "store.sqlite"
    async with payer_client(agent_service, keys, clients, store) as client:
        await client.call("summarize", TEXT)
        before = await client.channel_account()
    async with payer_client(agent_service, keys, clients, store) as client:
        again = await client.call("summarize", TEXT)
        after = await client.channel_account()
        stored = await client.receipts()

    assert before is not None
    assert after is not None
    assert after.channel_id == before.channel_id
    assert (before.paid, after.paid) == (PRICE, 2 * PRICE)
    entry = await agent_service.host.journal.lookup(rid(again.request_id))
    assert entry is not None
    assert isinstance(entry.payment, AcceptedVoucher)
    assert entry.payment.voucher == type(entry.payment.voucher)(before.channel_id, 2 * PRICE)
    assert len(stored) == 2


async def test_concurrent_calls_of_one_client_pay_the_channel_one_voucher_after_another(
    agent_service: AgentService, keys: list[LocalAccount], clients: list[StakingClient], tmp_path: Path
) -> None:
    texts = [{"text": f"Sentence number {n} about sequences.", "max_words": 8} for n in range(4)]
    async with payer_client(agent_service, keys, clients, tmp_path / "store.sqlite") as client:
        paid = await asyncio.gather(*(client.call("summarize", text) for text in texts))
        account = await client.channel_account()
        stored = await client.receipts()

    assert account is not None
    assert (account.paid, account.signed) == (4 * PRICE, 4 * PRICE)
    cumulative = []
    for call in paid:
        entry = await agent_service.host.journal.lookup(rid(call.request_id))
        assert entry is not None
        assert isinstance(entry.payment, AcceptedVoucher)
        cumulative.append(entry.payment.voucher.cumulative_amount)
    assert sorted(cumulative) == [PRICE, 2 * PRICE, 3 * PRICE, 4 * PRICE]
    assert len(stored) == 4
    assert all(receipt.verified for receipt in stored)


async def test_an_exact_call_is_paid_once_by_an_authorization_the_agent_settles(
    agent_service: AgentService, keys: list[LocalAccount], clients: list[StakingClient], tmp_path: Path
) -> None:
    payer = clients[OTHER_PAYER]
    balance = await payer.balance_of(payer.address)
    async with AgentClient(
        agent_service.url, keys[OTHER_PAYER], chain=payer, scheme="exact", store=tmp_path / "store.sqlite"
    ) as client:
        paid = await client.call("summarize", TEXT, idempotency_key="exact-1")
        again = await client.call("summarize", TEXT, idempotency_key="exact-1")
        assert await client.channel_account() is None

    assert paid.scheme is Scheme.EXACT
    assert again.receipt == paid.receipt
    entry = await agent_service.host.journal.lookup(rid(paid.request_id))
    assert entry is not None
    assert isinstance(entry.payment, AcceptedAuthorization)
    assert entry.payment.authorization.value == PRICE
    await agent_service.jobs.settle_authorizations()
    assert await payer.balance_of(payer.address) == balance - PRICE


async def test_a_stock_x402_client_pays_the_exact_scheme(
    agent_service: AgentService, keys: list[LocalAccount], signer: LocalAccount
) -> None:
    wallet = keys[X402_PAYER]
    x402 = x402Client().register("eip155:31337", ExactEvmScheme(EthAccountSigner(wallet)))
    x402.set_spend_controls(
        {
            "allowed_assets": [
                {
                    "network": "eip155:31337",
                    "asset": agent_service.client.token.address,
                    "max_amount_per_payment": str(PRICE),
                }
            ]
        }
    )
    async with x402HttpxClient(x402, base_url=agent_service.url, timeout=300) as http:
        response = await http.post("/v1/skills/summarize", json=TEXT)
    assert response.status_code == 200, response.text
    receipt = SignedReceiptDocument.model_validate_json(base64.b64decode(response.headers[RECEIPT_HEADER]))
    body = response.json()
    assert recover(agent_service.client.receipt_domain(), receipt.receipt, receipt.signature_bytes) == signer.address
    assert (receipt.payer, receipt.price) == (wallet.address, PRICE)
    assert receipt.output_hash == "0x" + output_hash(body["output"]).hex()
    entry = await agent_service.host.journal.lookup(rid(body["requestId"]))
    assert entry is not None
    assert isinstance(entry.payment, AcceptedAuthorization)


async def test_the_openai_sdk_pays_through_the_transport(
    agent_service: AgentService, keys: list[LocalAccount], clients: list[StakingClient], tmp_path: Path
) -> None:
    async with payer_client(agent_service, keys, clients, tmp_path / "store.sqlite") as client:
        async with httpx.AsyncClient(transport=client.transport(), timeout=300) as http:
            llm = openai.AsyncOpenAI(
                base_url=agent_service.url + "/v1",
                api_key="x402",
                http_client=http,  # type: ignore[arg-type]  # openai 3 also takes an httpx (not httpx2) client
            )
            chat = await llm.chat.completions.create(
                model="summarizer", messages=[{"role": "user", "content": "What is a list?"}], max_tokens=8
            )
            skill = await llm.chat.completions.create(
                model="summarize", messages=[{"role": "user", "content": json.dumps(TEXT)}]
            )
        stored = await client.receipts()
        account = await client.channel_account()

    assert isinstance(chat.choices[0].message.content, str)
    assert isinstance(json.loads(skill.choices[0].message.content or "")["summary"], str)
    assert [(r.skill, r.verified, r.request_id) for r in stored] == [
        ("chat", True, "0x" + chat.id.removeprefix("chatcmpl-")),
        ("summarize", True, "0x" + skill.id.removeprefix("chatcmpl-")),
    ]
    # A skill called as a model: the client checked the receipt's requestHash against the input it sent.
    assert stored[1].receipt.request_hash == "0x" + request_hash("summarize", TEXT).hex()
    assert account is not None
    assert account.paid == 2 * PRICE


async def test_langchain_chat_openai_pays_through_the_transport(
    agent_service: AgentService, keys: list[LocalAccount], clients: list[StakingClient], tmp_path: Path
) -> None:
    async with payer_client(agent_service, keys, clients, tmp_path / "store.sqlite") as client:
        async with httpx.AsyncClient(transport=client.transport(), timeout=300) as http:
            llm = ChatOpenAI(
                model="summarizer",
                base_url=agent_service.url + "/v1",
                api_key="x402",
                http_async_client=http,
                max_tokens=8,
                temperature=0,
            )
            message = await llm.ainvoke("What does yield do?")
        stored = await client.receipts()

    assert isinstance(message.content, str)
    assert [(r.skill, r.verified) for r in stored] == [("chat", True)]
    assert json.loads(stored[0].response)["choices"][0]["message"]["content"] == message.content


@pytest.mark.parametrize(
    ("tampered", "problem"),
    [("output", "outputHash"), ("signature", "not by the agent's registered signer")],
)
async def test_a_tampered_answer_fails_verification_and_the_agent_is_paid_no_more(
    agent_service: AgentService,
    keys: list[LocalAccount],
    clients: list[StakingClient],
    tmp_path: Path,
    tampered: str,
    problem: str,
) -> None:
    stranger = Account.from_key(keccak(text="not the agent's signer"))

    def tamper(body: dict[str, Any]) -> None:
        if tampered == "output":
            body["output"] = {"summary": "something the agent never said"}
            return
        receipt = SignedReceiptDocument.model_validate(body["receipt"])
        signature = sign(stranger, agent_service.client.receipt_domain(), receipt.receipt)
        body["receipt"] = receipt.model_copy(update={"signature": "0x" + signature.hex()}).model_dump(by_alias=True)

    network = TamperingNetwork(httpx.AsyncHTTPTransport(), answer=tamper)
    async with payer_client(agent_service, keys, clients, tmp_path / "store.sqlite", http_transport=network) as client:
        with pytest.raises(ReceiptVerificationError) as raised:
            await client.call("summarize", TEXT)
        stored = await client.receipts()
        with pytest.raises(UntrustedAgentError):
            await client.call("summarize", TEXT)
        account = await client.channel_account()

    assert any(problem in line for line in raised.value.problems)
    assert [(r.request_id, r.verified) for r in stored] == [(raised.value.request_id, False)]
    assert any(problem in line for line in stored[0].problems)
    assert account is not None
    assert account.signed == PRICE  # the refused second call signed nothing


async def test_a_price_above_the_card_is_declined_before_anything_is_signed(
    agent_service: AgentService, keys: list[LocalAccount], clients: list[StakingClient], tmp_path: Path
) -> None:
    network = TamperingNetwork(httpx.AsyncHTTPTransport(), required=lambda price: 2 * price)
    async with payer_client(agent_service, keys, clients, tmp_path / "store.sqlite", http_transport=network) as client:
        with pytest.raises(PaymentDeclinedError, match="above the"):
            await client.call("summarize", TEXT)
        assert await client.channel_account() is None
        assert await client.receipts() == []
    assert network.paid_requests == 0


async def test_the_record_is_read_checked_and_proven_in_the_committed_epoch(
    agent_service: AgentService, keys: list[LocalAccount], clients: list[StakingClient], tmp_path: Path
) -> None:
    async with payer_client(agent_service, keys, clients, tmp_path / "store.sqlite") as client:
        paid = await client.call("summarize", TEXT)
        uncommitted = await client.fetch_record(paid.request_id)
        await agent_service.jobs.commit_epochs(force=True)
        committed = await client.fetch_record(paid.request_id)
        (stored,) = await client.receipts()

    assert uncommitted.inclusion is None
    assert uncommitted.record.input == TEXT
    assert uncommitted.record.payment.payer == keys[PAYER].address
    assert committed.inclusion is not None  # and the client checked it against the root committed on chain
    epoch = await clients[PAYER].epoch(agent_service.client.address, paid.receipt.epoch)
    assert "0x" + epoch.receipts_root.hex() == committed.inclusion.receipts_root
    assert stored.record is not None
    assert json.loads(stored.record)["requestId"] == paid.request_id


# -- networks between the client and the real agent ----------------------------------------------------------------


class LosingNetwork(httpx.AsyncBaseTransport):
    """While ``losing``, delivers the first paid request and loses its answer, then fails to connect at all."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.losing = False
        self.forwarded_while_losing = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not self.losing or PAYMENT_SIGNATURE_HEADER not in request.headers:
            return await self.inner.handle_async_request(request)
        if self.forwarded_while_losing:
            raise httpx.ConnectError("the network is down", request=request)
        self.forwarded_while_losing += 1
        response = await self.inner.handle_async_request(request)
        await response.aread()
        raise httpx.ReadError("the connection dropped before the answer arrived", request=request)

    async def aclose(self) -> None:
        await self.inner.aclose()


class TamperingNetwork(httpx.AsyncBaseTransport):
    """Rewrites the agent's paid answers (``answer``) or the prices it asks (``required``)."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        *,
        answer: Callable[[dict[str, Any]], None] | None = None,
        required: Callable[[int], int] | None = None,
    ) -> None:
        self.inner = inner
        self.answer = answer
        self.required = required
        self.paid_requests = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        paid = PAYMENT_SIGNATURE_HEADER in request.headers
        self.paid_requests += paid
        response = await self.inner.handle_async_request(request)
        body = await response.aread()
        headers = httpx.Headers(response.headers)
        if self.required is not None and PAYMENT_REQUIRED_HEADER in headers:
            required = decode_payment_required(headers[PAYMENT_REQUIRED_HEADER])
            accepts = tuple(item.model_copy(update={"amount": self.required(item.amount)}) for item in required.accepts)
            headers[PAYMENT_REQUIRED_HEADER] = encode_header(required.model_copy(update={"accepts": accepts}))
        if self.answer is not None and paid and response.status_code == 200:
            document = json.loads(body)
            self.answer(document)
            body = json.dumps(document).encode()
            del headers["content-length"]
        return httpx.Response(response.status_code, headers=headers, content=body)

    async def aclose(self) -> None:
        await self.inner.aclose()
