"""The x402 v2 wire models: the shapes a stock x402 client reads and sends, and clear refusals of anything else."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest
from eth_utils.address import to_checksum_address
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter

from runtime.protocol import (
    MAX_HEADER_BYTES,
    ChannelExtra,
    ChannelPaymentPayload,
    ChannelRequirements,
    ExactExtra,
    ExactPaymentPayload,
    ExactRequirements,
    FailureReason,
    HeaderError,
    PaymentPayload,
    PaymentRequired,
    ResourceInfo,
    SettlementExtra,
    SettlementResponse,
    decode_payment_payload,
    decode_payment_required,
    decode_settlement_response,
    encode_header,
)

TOKEN = "0x" + "1a" * 20
CHANNELS = "0x" + "2b" * 20
AGENT = "0x" + "3c" * 20
PAYER = "0x" + "4d" * 20
PRICE = 10**16

EXACT = ExactRequirements(
    network="eip155:31337",
    amount=PRICE,
    asset=TOKEN,
    pay_to=AGENT,
    max_timeout_seconds=600,
    extra=ExactExtra(name="Open", version="1"),
)
CHANNEL = ChannelRequirements(
    network="eip155:31337",
    amount=PRICE,
    asset=TOKEN,
    pay_to=AGENT,
    max_timeout_seconds=600,
    extra=ChannelExtra(channels=CHANNELS, name="PaymentChannels", version="1"),
)


def header_of(document: Any) -> str:
    return base64.b64encode(json.dumps(document).encode()).decode()


def document_of(header: str) -> Any:
    return json.loads(base64.b64decode(header))


def stock_exact_payload(**authorization: str) -> dict[str, Any]:
    """A payment as the x402 v2 spec shapes it: every amount and time a string, the requirements echoed."""
    return {
        "x402Version": 2,
        "resource": {"url": "http://agent.test/v1/skills/echo", "mimeType": "application/json"},
        "accepted": {
            "scheme": "exact",
            "network": "eip155:31337",
            "amount": str(PRICE),
            "asset": TOKEN,
            "payTo": AGENT,
            "maxTimeoutSeconds": 600,
            "extra": {"name": "Open", "version": "1"},
        },
        "payload": {
            "signature": "0x" + "ab" * 64 + "1b",
            "authorization": {
                "from": PAYER,
                "to": AGENT,
                "value": str(PRICE),
                "validAfter": "1700000000",
                "validBefore": "1700000600",
                "nonce": "0x" + "5e" * 32,
            }
            | authorization,
        },
    }


def test_payment_required_has_x402_field_names_and_string_amounts() -> None:
    required = PaymentRequired(resource=ResourceInfo(url="http://agent.test/v1/skills/echo"), accepts=(EXACT, CHANNEL))
    document = document_of(encode_header(required))
    assert document == {
        "x402Version": 2,
        "resource": {"url": "http://agent.test/v1/skills/echo"},
        "accepts": [
            {
                "scheme": "exact",
                "network": "eip155:31337",
                "amount": str(PRICE),
                "asset": to_checksum_address(TOKEN),
                "payTo": to_checksum_address(AGENT),
                "maxTimeoutSeconds": 600,
                "extra": {"name": "Open", "version": "1", "assetTransferMethod": "eip3009"},
            },
            {
                "scheme": "channel",
                "network": "eip155:31337",
                "amount": str(PRICE),
                "asset": to_checksum_address(TOKEN),
                "payTo": to_checksum_address(AGENT),
                "maxTimeoutSeconds": 600,
                "extra": {"channels": to_checksum_address(CHANNELS), "name": "PaymentChannels", "version": "1"},
            },
        ],
    }
    assert decode_payment_required(encode_header(required)) == required


def test_a_stock_exact_payload_decodes_into_typed_fields() -> None:
    payment = decode_payment_payload(header_of(stock_exact_payload()))
    assert isinstance(payment, ExactPaymentPayload)
    authorization = payment.payload.authorization
    assert (authorization.from_, authorization.to) == (to_checksum_address(PAYER), to_checksum_address(AGENT))
    assert (authorization.value, authorization.valid_after, authorization.valid_before) == (
        PRICE,
        1_700_000_000,
        1_700_000_600,
    )
    assert authorization.nonce == b"\x5e" * 32
    assert payment.payload.signature == b"\xab" * 64 + b"\x1b"
    assert payment.accepted.extra.asset_transfer_method == "eip3009"  # the default when a client omits it
    assert payment.resource is not None
    assert payment.resource.mime_type == "application/json"


def test_payloads_round_trip_through_the_header() -> None:
    exact = decode_payment_payload(header_of(stock_exact_payload()))
    assert decode_payment_payload(encode_header(exact)) == exact
    channel = ChannelPaymentPayload.model_validate(
        {
            "x402Version": 2,
            "accepted": CHANNEL.model_dump(by_alias=True),
            "payload": {
                "channelId": "0x" + "07" * 32,
                "cumulativeAmount": str(3 * PRICE),
                "signature": "0x" + "cd" * 65,
            },
        }
    )
    decoded = decode_payment_payload(encode_header(channel))
    assert isinstance(decoded, ChannelPaymentPayload)
    assert decoded == channel
    assert decoded.payload.cumulative_amount == 3 * PRICE
    assert document_of(encode_header(channel))["payload"]["cumulativeAmount"] == str(3 * PRICE)


def test_unknown_fields_are_ignored_so_extensions_do_not_break_a_server() -> None:
    document = stock_exact_payload()
    document["extensions"] = {"bazaar": {"info": {}, "schema": {}}}
    document["futureField"] = True
    assert isinstance(decode_payment_payload(header_of(document)), ExactPaymentPayload)


@pytest.mark.parametrize(
    ("value", "reason", "message"),
    [
        ("not base64!", FailureReason.MALFORMED, "not base64-encoded JSON"),
        (base64.b64encode(b"\xff\xfe").decode(), FailureReason.MALFORMED, "not base64-encoded JSON"),
        (header_of([1, 2]), FailureReason.MALFORMED, "not a JSON object"),
        (header_of({**stock_exact_payload(), "x402Version": 1}), FailureReason.UNSUPPORTED_VERSION, "x402Version"),
        (header_of({"scheme": "exact", "payload": {}}), FailureReason.UNSUPPORTED_VERSION, "x402Version"),
        (
            header_of({**stock_exact_payload(), "accepted": {**stock_exact_payload()["accepted"], "scheme": "upto"}}),
            FailureReason.UNSUPPORTED_SCHEME,
            "'upto'",
        ),
        (header_of({"x402Version": 2, "payload": {}}), FailureReason.MALFORMED, "accepted.scheme must be"),
        ("A" * (MAX_HEADER_BYTES + 4), FailureReason.MALFORMED, "longer than"),
    ],
)
def test_undecodable_headers_name_the_problem(value: str, reason: FailureReason, message: str) -> None:
    with pytest.raises(HeaderError, match=message) as caught:
        decode_payment_payload(value)
    assert caught.value.reason is reason
    assert caught.value.header == "PAYMENT-SIGNATURE"
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("nonce", "0x" + "5e" * 31),  # 31 bytes
        ("nonce", "5e" * 32),  # no 0x
        ("value", "-1"),
        ("value", "1e18"),
        ("value", str(2**256)),
        ("validBefore", "soon"),
        ("from", "0x" + "4d" * 19),
        ("to", "0x" + "zz" * 20),
    ],
)
def test_malformed_authorization_fields_are_named(field: str, value: str) -> None:
    with pytest.raises(HeaderError, match=re.escape(f"payload.authorization.{field}")) as caught:
        decode_payment_payload(header_of(stock_exact_payload(**{field: value})))
    assert caught.value.reason is FailureReason.MALFORMED


def test_a_short_signature_is_malformed() -> None:
    document = stock_exact_payload()
    document["payload"]["signature"] = "0x" + "ab" * 64
    with pytest.raises(HeaderError, match=re.escape("payload.signature")) as caught:
        decode_payment_payload(header_of(document))
    assert caught.value.reason is FailureReason.MALFORMED


def test_settlement_response_leaves_out_what_is_not_set() -> None:
    response = SettlementResponse(
        success=True,
        payer=PAYER,
        network="eip155:31337",
        amount=PRICE,
        extra=SettlementExtra(channel_id=b"\x07" * 32, cumulative_amount=2 * PRICE),
    )
    document = document_of(encode_header(response))
    assert document == {
        "success": True,
        "payer": to_checksum_address(PAYER),
        "transaction": "",
        "network": "eip155:31337",
        "amount": str(PRICE),
        "extra": {"channelId": "0x" + "07" * 32, "cumulativeAmount": str(2 * PRICE)},
    }
    assert decode_settlement_response(encode_header(response)) == response
    failure = SettlementResponse(success=False, error_reason=FailureReason.EXPIRED, network="eip155:31337")
    assert document_of(encode_header(failure))["errorReason"] == "expired"


def test_encoding_refuses_a_header_no_server_would_take() -> None:
    huge = PaymentRequired(resource=ResourceInfo(url="http://agent.test/" + "x" * MAX_HEADER_BYTES), accepts=(EXACT,))
    with pytest.raises(HeaderError, match="exceed"):
        encode_header(huge)


def test_decoding_the_other_headers_fails_clearly() -> None:
    with pytest.raises(HeaderError, match="PAYMENT-REQUIRED") as required:
        decode_payment_required(header_of({"x402Version": 2, "resource": {"url": "u"}, "accepts": []}))
    assert required.value.reason is FailureReason.MALFORMED
    with pytest.raises(HeaderError, match="PAYMENT-RESPONSE"):
        decode_settlement_response("%%%")


def test_json_schemas_describe_the_wire_types() -> None:
    """The OpenAPI document is generated from these models: amounts and hashes are strings there too."""
    schema = TypeAdapter(PaymentPayload).json_schema(by_alias=True)
    definitions = schema["$defs"]
    authorization = definitions["Eip3009Authorization"]["properties"]
    assert authorization["value"]["type"] == "string"
    assert authorization["nonce"]["pattern"] == "^0x[0-9a-fA-F]{64}$"
    assert "from" in authorization
    assert PaymentRequired.model_json_schema(by_alias=True)["properties"]["x402Version"]["const"] == 2


@given(st.binary(min_size=20, max_size=20), st.booleans())
def test_addresses_are_eip55_checksummed_from_any_case(raw: bytes, upper: bool) -> None:
    text = "0x" + (raw.hex().upper() if upper else raw.hex())
    reparsed = ExactRequirements.model_validate(EXACT.model_dump(by_alias=True) | {"payTo": text})
    assert reparsed.pay_to == to_checksum_address(text)


@given(st.integers(min_value=0, max_value=2**256 - 1))
def test_uint256_amounts_round_trip_as_decimal_strings(amount: int) -> None:
    document = EXACT.model_dump(by_alias=True) | {"amount": str(amount)}
    parsed = ExactRequirements.model_validate(document)
    assert parsed.amount == amount
    assert parsed.model_dump(by_alias=True)["amount"] == str(amount)
