"""The agent's HTTP API end to end on anvil + vLLM CPU: paid calls, every bad payment answered with the reason to
act on, idempotent retries, receipts served only to their readers, the card, health, metrics and OpenAPI."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from eth_account.signers.local import LocalAccount
from web3 import AsyncWeb3

from agents import VLLMBackend
from agents.record import ReceiptDocument, SignedReceiptDocument, output_hash, receipt_access_header, request_hash
from runtime.api import RECEIPT_HEADER, SkillResponse
from runtime.config import AgentSettings
from runtime.payments import channel_payment_payload, exact_payment_payload
from runtime.protocol import (
    PAYMENT_REQUIRED_HEADER,
    PAYMENT_RESPONSE_HEADER,
    PAYMENT_SIGNATURE_HEADER,
    ChannelRequirements,
    ExactRequirements,
    decode_payment_required,
    decode_settlement_response,
    encode_header,
)
from runtime.serve import AgentService
from staking import ChainSettings, ConfigError, Role, StakingClient, Voucher, advance_time, recover, sign, to_wei_open

from .conftest import CURATOR, OPERATOR, OTHER_PAYER, PAYER

pytestmark = pytest.mark.chain

PRICE = to_wei_open("0.01")
TEXT = {"text": "The for statement iterates over the items of any sequence.", "max_words": 8}


@pytest.fixture(scope="module")
async def http(agent_service: AgentService) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(agent_service.url) as session:
        yield session


@pytest.fixture(scope="module")
async def requirements(http: aiohttp.ClientSession) -> tuple[ExactRequirements, ChannelRequirements]:
    async with http.post("/v1/skills/summarize", json=TEXT) as response:
        assert response.status == 402
        exact, channel = decode_payment_required(response.headers[PAYMENT_REQUIRED_HEADER]).accepts
    assert isinstance(exact, ExactRequirements)
    assert isinstance(channel, ChannelRequirements)
    return exact, channel


class Channel:
    """A payer's channel to the agent and the cumulative amount it has signed so far."""

    def __init__(
        self, payer: LocalAccount, client: StakingClient, channel_id: bytes, requirements: ChannelRequirements
    ):
        self.payer, self.client, self.channel_id, self.requirements = payer, client, channel_id, requirements
        self.paid = 0

    def header(self, cumulative: int | None = None) -> str:
        if cumulative is None:
            self.paid += PRICE
            cumulative = self.paid
        voucher = Voucher(self.channel_id, cumulative)
        signature = sign(self.payer, self.client.channel_domain(), voucher)
        return encode_header(channel_payment_payload(self.requirements, voucher, signature))


@pytest.fixture(scope="module")
async def channel(
    clients: list[StakingClient],
    keys: list[LocalAccount],
    agent_service: AgentService,
    requirements: tuple[ExactRequirements, ChannelRequirements],
) -> Channel:
    channel_id = await clients[PAYER].open_channel(agent_service.client.address, 100 * PRICE)
    return Channel(keys[PAYER], clients[PAYER], channel_id, requirements[1])


async def post(
    http: aiohttp.ClientSession, path: str, body: Any, header: str | None = None, **headers: str
) -> tuple[int, dict[str, Any], Any]:
    if header is not None:
        headers[PAYMENT_SIGNATURE_HEADER] = header
    async with http.post(path, json=body, headers=headers) as response:
        return response.status, dict(response.headers), await response.json()


async def test_an_unpaid_call_is_answered_402_with_both_schemes_at_the_price(
    requirements: tuple[ExactRequirements, ChannelRequirements], agent_service: AgentService
) -> None:
    exact, channel = requirements
    assert (exact.amount, channel.amount) == (PRICE, PRICE)
    assert exact.pay_to == channel.pay_to == agent_service.client.address
    assert exact.network == f"eip155:{agent_service.client.deployment.chain_id}"


async def test_a_channel_payment_buys_an_answer_with_a_signed_receipt_that_binds_it(
    http: aiohttp.ClientSession, channel: Channel, agent_service: AgentService, signer: LocalAccount
) -> None:
    status, headers, body = await post(http, "/v1/skills/summarize", TEXT, channel.header())
    assert status == 200, body
    answer = SkillResponse.model_validate(body)
    receipt = answer.receipt.receipt
    assert recover(agent_service.client.receipt_domain(), receipt, answer.receipt.signature_bytes) == signer.address
    assert receipt.agent == agent_service.client.address
    assert receipt.payer == channel.payer.address
    assert receipt.price == PRICE
    assert receipt.request_hash == request_hash("summarize", TEXT)
    assert receipt.output_hash == output_hash(answer.output)
    from_header = SignedReceiptDocument.model_validate_json(base64.b64decode(headers[RECEIPT_HEADER]))
    assert from_header == answer.receipt
    settlement = decode_settlement_response(headers[PAYMENT_RESPONSE_HEADER])
    assert settlement.success
    assert settlement.extra is not None
    assert settlement.extra.cumulative_amount == channel.paid
    entry = await agent_service.host.journal.lookup(receipt.request_id)
    assert entry is not None
    assert entry.answer is not None
    assert entry.answer.receipt.signature == answer.receipt.signature_bytes


async def test_an_exact_payment_buys_an_answer(
    http: aiohttp.ClientSession,
    clients: list[StakingClient],
    requirements: tuple[ExactRequirements, ChannelRequirements],
    agent_service: AgentService,
) -> None:
    payer = clients[OTHER_PAYER]
    now = int((await payer.w3.eth.get_block("latest"))["timestamp"])
    authorization, signature = payer.sign_transfer_authorization(
        agent_service.client.address, PRICE, valid_after=0, valid_before=now + 600
    )
    header = encode_header(exact_payment_payload(requirements[0], authorization, signature))
    status, _, body = await post(http, "/v1/skills/summarize", TEXT, header)
    assert status == 200, body
    assert SkillResponse.model_validate(body).receipt.payer == payer.address
    pending = await agent_service.host.journal.pending_authorizations()
    assert authorization.nonce in {payment.authorization.nonce for payment in pending}


async def test_a_retry_returns_the_journaled_answer_and_charges_once(
    http: aiohttp.ClientSession, channel: Channel, agent_service: AgentService
) -> None:
    key = secrets.token_hex(8)
    header = channel.header()
    first = await post(http, "/v1/skills/summarize", TEXT, header, **{"Idempotency-Key": key})
    # The retry carries a new voucher, as a client that lost the answer would send: it is not taken.
    second = await post(http, "/v1/skills/summarize", TEXT, channel.header(), **{"Idempotency-Key": key})
    channel.paid -= PRICE
    assert first[0] == second[0] == 200
    assert first[2] == second[2]
    # The same header without a key is the same request too.
    again = await post(http, "/v1/skills/summarize", TEXT, header, **{"Idempotency-Key": key})
    assert again[2] == first[2]
    # The same key for another request is a conflict, not a free answer.
    other = {**TEXT, "max_words": 9}
    conflict = await post(http, "/v1/skills/summarize", other, channel.header(), **{"Idempotency-Key": key})
    channel.paid -= PRICE
    assert (conflict[0], conflict[2]["error"]["code"]) == (409, "request_conflict")
    claimable = {
        v.voucher.channel_id: v.voucher.cumulative_amount for v in await agent_service.host.journal.claimable_vouchers()
    }
    assert claimable[channel.channel_id] == channel.paid


async def test_another_payer_cannot_reach_a_request_by_its_key(
    http: aiohttp.ClientSession,
    channel: Channel,
    clients: list[StakingClient],
    keys: list[LocalAccount],
    agent_service: AgentService,
    requirements: tuple[ExactRequirements, ChannelRequirements],
) -> None:
    key = secrets.token_hex(8)
    mine = await post(http, "/v1/skills/summarize", TEXT, channel.header(), **{"Idempotency-Key": key})
    theirs_id = await clients[OTHER_PAYER].open_channel(agent_service.client.address, 10 * PRICE)
    theirs = Channel(keys[OTHER_PAYER], clients[OTHER_PAYER], theirs_id, requirements[1])
    stolen = await post(http, "/v1/skills/summarize", TEXT, theirs.header(), **{"Idempotency-Key": key})
    assert mine[0] == stolen[0] == 200
    assert mine[2]["requestId"] != stolen[2]["requestId"]
    assert stolen[2]["receipt"]["payer"] == keys[OTHER_PAYER].address


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("replayed", 402, "replayed"),
        ("stale", 402, "stale_voucher"),
        ("underpaid", 402, "insufficient_amount"),
        ("overpaid", 402, "amount_mismatch"),
        ("over_deposit", 402, "exceeds_deposit"),
        ("wrong_signer", 402, "invalid_signature"),
        ("wrong_chain", 402, "wrong_chain"),
        ("unknown_channel", 402, "unknown_channel"),
        ("malformed", 400, "malformed"),
    ],
)
async def test_bad_vouchers_get_the_reason_and_leave_the_channel_as_it_was(
    http: aiohttp.ClientSession, channel: Channel, keys: list[LocalAccount], case: str, status: int, code: str
) -> None:
    paid = channel.paid
    next_amount = paid + PRICE
    voucher_for = {
        "replayed": paid,
        "stale": paid - 1,
        "underpaid": next_amount - 1,
        "overpaid": next_amount + 1,
        "over_deposit": 200 * PRICE,
    }
    if case in voucher_for:
        header = channel.header(voucher_for[case])
    elif case == "wrong_signer":
        voucher = Voucher(channel.channel_id, next_amount)
        signature = sign(keys[5], channel.client.channel_domain(), voucher)
        header = encode_header(channel_payment_payload(channel.requirements, voucher, signature))
    elif case == "wrong_chain":
        requirements = channel.requirements.model_copy(update={"network": "eip155:1"})
        voucher = Voucher(channel.channel_id, next_amount)
        signature = sign(channel.payer, channel.client.channel_domain(), voucher)
        header = encode_header(channel_payment_payload(requirements, voucher, signature))
    elif case == "unknown_channel":
        voucher = Voucher(secrets.token_bytes(32), PRICE)
        signature = sign(channel.payer, channel.client.channel_domain(), voucher)
        header = encode_header(channel_payment_payload(channel.requirements, voucher, signature))
    else:
        header = base64.b64encode(b'{"x402Version": 2, "payload": 7}').decode()
    # A fresh request each time, so only the payment can be the problem.
    got_status, headers, body = await post(http, "/v1/skills/summarize", {**TEXT, "text": secrets.token_hex(4)}, header)
    assert (got_status, body["error"]["code"]) == (status, code), body
    if status == 402:
        assert decode_payment_required(headers[PAYMENT_REQUIRED_HEADER]).error == code
    if case == "stale":
        assert body["error"]["details"]["expected"] == str(next_amount)
    ok = await post(http, "/v1/skills/summarize", TEXT, channel.header())
    assert ok[0] == 200, ok[2]


async def test_an_expired_authorization_is_refused(
    http: aiohttp.ClientSession,
    clients: list[StakingClient],
    requirements: tuple[ExactRequirements, ChannelRequirements],
    agent_service: AgentService,
) -> None:
    payer = clients[OTHER_PAYER]
    now = int((await payer.w3.eth.get_block("latest"))["timestamp"])
    authorization, signature = payer.sign_transfer_authorization(
        agent_service.client.address, PRICE, valid_after=0, valid_before=now + 30
    )
    header = encode_header(exact_payment_payload(requirements[0], authorization, signature))
    status, _, body = await post(http, "/v1/skills/summarize", TEXT, header)
    assert (status, body["error"]["code"]) == (402, "expired")
    assert body["error"]["details"]["validBefore"] == str(now + 30)


async def test_bad_requests_are_refused_before_any_payment(http: aiohttp.ClientSession, channel: Channel) -> None:
    assert (await post(http, "/v1/skills/summarize", {"text": ""}, channel.header(channel.paid + PRICE)))[0] == 422
    assert (await post(http, "/v1/skills/nope", TEXT))[0] == 404
    async with http.post(
        "/v1/skills/summarize", data=b"x" * (2 << 20), headers={"Content-Type": "application/json"}
    ) as r:
        assert r.status == 413
        assert (await r.json())["error"]["code"] == "body_too_large"
    async with http.post("/v1/skills/summarize", data=b"{not json", headers={"Content-Type": "application/json"}) as r:
        assert r.status == 422


async def test_a_dead_model_answers_503_and_gives_the_payment_back(
    http: aiohttp.ClientSession, channel: Channel, agent_service: AgentService
) -> None:
    agent = agent_service.agent
    alive = agent.llm.backend
    async with VLLMBackend("http://127.0.0.1:9", dtype="float32", timeout=2) as dead:
        agent.llm.backend = dead
        try:
            status, headers, body = await post(http, "/v1/skills/summarize", {**TEXT, "max_words": 3}, channel.header())
        finally:
            agent.llm.backend = alive
    assert (status, body["error"]["code"]) == (503, "model_unavailable")
    assert headers["Retry-After"]
    channel.paid -= PRICE  # released: the same amount pays the next request
    assert (await post(http, "/v1/skills/summarize", TEXT, channel.header()))[0] == 200


async def test_receipts_are_served_to_their_payer_and_to_staked_validators_only(
    http: aiohttp.ClientSession,
    channel: Channel,
    clients: list[StakingClient],
    keys: list[LocalAccount],
    agent_service: AgentService,
) -> None:
    _, _, body = await post(http, "/v1/skills/summarize", TEXT, channel.header())
    request_id = body["requestId"]
    path = f"/v1/receipts/{request_id}"
    operator = agent_service.client.address

    async def read(reader: LocalAccount, where: str = path) -> tuple[int, Any]:
        auth = receipt_access_header(reader, operator, where, int(time.time()))
        async with http.get(where, headers={"Authorization": auth}) as response:
            return response.status, await response.json()

    status, document = await read(channel.payer)
    assert status == 200
    receipt = ReceiptDocument.model_validate(document)
    assert receipt.receipt.request_id == request_id
    assert receipt.record.request_hash() == receipt.receipt.receipt.request_hash
    assert receipt.record.output_hash() == receipt.receipt.receipt.output_hash
    assert receipt.record.engine_hash() == receipt.receipt.receipt.engine_hash
    assert receipt.record.attribution_hash() == receipt.receipt.receipt.attribution_hash
    assert receipt.record.calls[0].output_token_ids
    assert (await read(keys[6]))[0] == 403
    async with http.get(path) as response:
        assert response.status == 401
    forged = receipt_access_header(channel.payer, operator, "/v1/receipts/" + "0x" + "00" * 32, int(time.time()))
    async with http.get(path, headers={"Authorization": forged}) as response:
        assert response.status == 401
    validator = clients[6]
    await validator.stake(Role.VALIDATOR, to_wei_open(1_000))
    assert (await read(keys[6]))[0] == 200
    seq, epoch = receipt.receipt.seq, receipt.receipt.epoch
    status, by_position = await read(keys[6], f"/v1/epochs/{epoch}/receipts/{seq}")
    assert status == 200
    assert by_position == document
    assert (await read(channel.payer, f"/v1/epochs/{epoch}/receipts/{seq}"))[0] == 403


async def test_concurrent_requests_on_separate_channels_all_get_receipts(
    http: aiohttp.ClientSession,
    clients: list[StakingClient],
    keys: list[LocalAccount],
    agent_service: AgentService,
    requirements: tuple[ExactRequirements, ChannelRequirements],
) -> None:
    channels = [
        Channel(
            keys[n],
            clients[n],
            await clients[n].open_channel(agent_service.client.address, 10 * PRICE),
            requirements[1],
        )
        for n in (4, 5, 7)
    ]
    answers = await asyncio.gather(
        *(post(http, "/v1/skills/summarize", {**TEXT, "max_words": 4 + i}, c.header()) for i, c in enumerate(channels))
    )
    assert [status for status, _, _ in answers] == [200, 200, 200]
    seqs = {(body["receipt"]["epoch"], body["receipt"]["seq"]) for _, _, body in answers}
    assert len(seqs) == 3


async def test_the_card_openapi_health_and_metrics_describe_the_agent(
    http: aiohttp.ClientSession, agent_service: AgentService, signer: LocalAccount, keys: list[LocalAccount]
) -> None:
    async with http.get("/.well-known/agent-card.json") as response:
        card = await response.json()
    assert card["name"] == "summarizer"
    assert {skill["id"] for skill in card["skills"]} == {"chat", "summarize"}
    assert card["staked"]["operator"] == keys[OPERATOR].address
    assert card["staked"]["signer"] == signer.address
    assert int(card["staked"]["activeStake"]) >= to_wei_open(1_000)
    async with http.get("/openapi.json") as response:
        document = await response.json()
    assert document["openapi"].startswith("3.")
    assert "/v1/skills/summarize" in document["paths"]
    schema_ref = document["paths"]["/v1/skills/summarize"]["post"]["requestBody"]["content"]["application/json"][
        "schema"
    ]
    assert schema_ref["$ref"].rsplit("/", 1)[1] in document["components"]["schemas"]
    async with http.get("/healthz") as response:
        assert response.status == 200
        assert (await response.json())["status"] == "ok"
    async with http.get("/metrics") as response:
        text = await response.text()
    assert 'staked_requests_total{endpoint="/v1/skills/{name}",status="200"}' in text
    assert "staked_revenue_wei_total" in text


async def test_chat_completions_with_the_agent_or_a_skill_as_the_model(
    http: aiohttp.ClientSession, channel: Channel
) -> None:
    chat = {"model": "summarizer", "messages": [{"role": "user", "content": "What does yield do?"}], "max_tokens": 8}
    status, _, body = await post(http, "/v1/chat/completions", chat, channel.header())
    assert status == 200, body
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["role"] == "assistant"
    assert body["id"] == "chatcmpl-" + body["receipt"]["requestId"][2:]
    assert body["usage"]["completion_tokens"] >= 1
    as_skill = {"model": "summarize", "messages": [{"role": "user", "content": json.dumps(TEXT)}]}
    status, _, body = await post(http, "/v1/chat/completions", as_skill, channel.header())
    assert status == 200, body
    assert "summary" in json.loads(body["choices"][0]["message"]["content"])
    unknown = {"model": "gpt-5", "messages": [{"role": "user", "content": "hi"}]}
    status, _, body = await post(http, "/v1/chat/completions", unknown, channel.header(channel.paid + PRICE))
    assert (status, body["error"]["code"]) == (404, "model_not_found")
    streaming = {**chat, "stream": True}
    status, _, body = await post(http, "/v1/chat/completions", streaming, channel.header(channel.paid + PRICE))
    assert (status, body["error"]["code"]) == (400, "unsupported")


async def test_the_epoch_is_committed_receipts_prove_inclusion_and_contributors_claim(
    http: aiohttp.ClientSession,
    w3: AsyncWeb3[Any],
    channel: Channel,
    clients: list[StakingClient],
    agent_service: AgentService,
) -> None:
    _, _, body = await post(http, "/v1/skills/summarize", TEXT, channel.header())
    epoch = body["receipt"]["epoch"]
    journal, jobs, operator = agent_service.host.journal, agent_service.jobs, agent_service.client.address
    receipts = await journal.receipts(epoch)

    (commit,) = await jobs.commit_epochs(force=True)
    assert (commit.epoch, commit.receipt_count) == (epoch, len(receipts))
    on_chain = await agent_service.client.epoch(operator, epoch)
    assert (on_chain.receipts_root, on_chain.receipt_count) == (commit.receipts_root, len(receipts))
    assert on_chain.fee_total == sum(signed.receipt.price for signed in receipts)
    assert await journal.current_epoch() == epoch + 1

    path = f"/v1/receipts/{body['requestId']}"
    auth = receipt_access_header(channel.payer, operator, path, int(time.time()))
    async with http.get(path, headers={"Authorization": auth}) as response:
        document = ReceiptDocument.model_validate(await response.json())
    assert document.inclusion is not None
    receipt = document.receipt.receipt
    registry = agent_service.client.receipts
    struct = await registry.functions.receiptStructHash(receipt.as_tuple()).call()
    proof = [bytes.fromhex(node[2:]) for node in document.inclusion.proof]
    assert await registry.functions.verifyInclusion(operator, epoch, receipt.seq, struct, proof).call()

    # The answers of a random-weight model rarely quote the docs: the curator is credited with those.
    await advance_time(w3, agent_service.client.deployment.parameters.disputes.challenge_window + 1)
    curator = clients[CURATOR]
    claims = await jobs.reward_claims(curator.address)
    owed = sum(amount for _, _, amount, _ in claims)
    assert owed > 0
    before = await curator.balance_of(curator.address)
    assert await curator.claim_rewards(curator.address, claims) == owed
    assert await curator.balance_of(curator.address) == before + owed


async def test_a_first_registration_without_model_id_needs_the_model_directory(
    agent_settings: AgentSettings, chain_settings: ChainSettings, keys: list[LocalAccount], signer: LocalAccount
) -> None:
    # keys[6] is no agent: its registration would name the modelId of the weights beside the tokenizer, and a bare
    # tokenizer.json has none, so the host stops before sending anything and says what to set.
    settings = agent_settings.model_copy(
        update={"model_id": None, "tokenizer": agent_settings.tokenizer / "tokenizer.json"}
    )
    with pytest.raises(ConfigError, match=r"modelId is unknown: .* set model_id in \[agent\]"):
        async with AgentService.start(settings, chain_settings, operator=keys[6], signer=signer):
            pass
