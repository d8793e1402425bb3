"""The OpenAPI 3.1 document of an agent's API, generated from its skills' pydantic models and the wire models."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from agents import Agent
from agents.record import ReceiptDocument

from .api import RECEIPT_HEADER, AgentCard, ChatCompletion, ChatCompletionRequest, ErrorBody, Health, SkillResponse
from .protocol import PAYMENT_REQUIRED_HEADER, PAYMENT_RESPONSE_HEADER, PAYMENT_SIGNATURE_HEADER, PaymentRequired

__all__ = ["openapi_document"]

_REF = "#/components/schemas/{model}"


def openapi_document(agent: Agent, url: str) -> dict[str, Any]:
    """The document served at ``/openapi.json``: every route, each skill with its own input and output schemas."""
    models: list[type[BaseModel]] = [
        AgentCard, ChatCompletion, ChatCompletionRequest, ErrorBody, Health, PaymentRequired, ReceiptDocument,
        SkillResponse,
    ]  # fmt: skip
    for spec in agent.skills.values():
        models += [spec.input_model, spec.output_model]
    refs, definitions = models_json_schema(
        [
            (model, "validation" if model is ChatCompletionRequest else "serialization")
            for model in dict.fromkeys(models)
        ],
        ref_template=_REF,
    )
    ref = {model: refs[(model, mode)] for (model, mode) in refs}
    paths: dict[str, Any] = {
        "/.well-known/agent-card.json": {"get": _get("The agent card", ref[AgentCard])},
        "/v1/chat/completions": {
            "post": _paid(
                "OpenAI-compatible chat; model is the agent's name or a skill's",
                ref[ChatCompletionRequest],
                ref[ChatCompletion],
            )
        },
        "/v1/receipts/{requestId}": {
            "get": _get(
                "A receipt, its record and inclusion proof (the payer or a staked validator; signed Authorization)",
                ref[ReceiptDocument],
                parameters=[_path("requestId", {"type": "string", "pattern": "^0x[0-9a-fA-F]{64}$"})],
            )
        },
        "/v1/epochs/{epoch}/receipts/{seq}": {
            "get": _get(
                "A receipt by its position in an epoch (staked validators; signed Authorization)",
                ref[ReceiptDocument],
                parameters=[_path("epoch", {"type": "integer"}), _path("seq", {"type": "integer"})],
            )
        },
        "/healthz": {"get": _get("Whether the model, the chain and the journal answer", ref[Health])},
        "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "text format"}}}},
    }
    for spec in agent.skills.values():
        response = {
            "allOf": [ref[SkillResponse]],
            "properties": {"output": ref[spec.output_model]},
        }
        paths[f"/v1/skills/{spec.name}"] = {
            "post": _paid(
                spec.description or spec.name, ref[spec.input_model], response, price=agent.price_of(spec.name)
            )
        }
    return {
        "openapi": "3.1.0",
        "info": {"title": f"{agent.name} (staked agent)", "version": "1", "description": type(agent).__doc__ or ""},
        "servers": [{"url": url}],
        "paths": paths,
        "components": {
            "schemas": definitions.get("$defs", {}),
            "securitySchemes": {
                "x402": {"type": "apiKey", "in": "header", "name": PAYMENT_SIGNATURE_HEADER},
                "receiptAccess": {"type": "http", "scheme": "Staked-EIP191"},
            },
        },
    }


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _get(summary: str, schema: dict[str, Any], parameters: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "responses": {"200": {"description": "OK", "content": _json(schema)}},
    }
    if parameters:
        operation["parameters"] = parameters
    return operation


def _path(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _paid(summary: str, body: dict[str, Any], result: dict[str, Any], price: int | None = None) -> dict[str, Any]:
    error = {"description": "error", "content": _json({"$ref": _REF.format(model="ErrorBody")})}
    return {
        "summary": summary,
        "description": "" if price is None else f"Costs {price} wei per request.",
        "security": [{"x402": []}],
        "requestBody": {"required": True, "content": _json(body)},
        "responses": {
            "200": {
                "description": "the answer, paid; the signed receipt is in the body and the headers",
                "headers": {
                    PAYMENT_RESPONSE_HEADER: {"schema": {"type": "string"}, "description": "base64 settlement"},
                    RECEIPT_HEADER: {"schema": {"type": "string"}, "description": "base64 signed receipt"},
                },
                "content": _json(result),
            },
            "402": {
                "description": "payment required or refused; error.code says why",
                "headers": {PAYMENT_REQUIRED_HEADER: {"schema": {"type": "string"}, "description": "base64 JSON"}},
                "content": _json({"$ref": _REF.format(model="ErrorBody")}),
            },
            "409": error,
            "422": error,
            "503": error,
        },
    }
