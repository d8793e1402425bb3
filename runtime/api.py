"""The JSON documents of an agent's HTTP API besides the x402 headers: what the OpenAPI document describes.

Payment headers are :mod:`runtime.protocol`; the signed receipt and the answer record are :mod:`agents.record`.
"""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue
from pydantic.alias_generators import to_camel

from agents.protocol import ChatMessage
from agents.record import SignedReceiptDocument

__all__ = [
    "IDEMPOTENCY_KEY_HEADER",
    "RECEIPT_HEADER",
    "AgentCard",
    "CardSkill",
    "ChatChoice",
    "ChatCompletion",
    "ChatCompletionRequest",
    "ChatUsage",
    "ErrorBody",
    "ErrorDetail",
    "Health",
    "SkillResponse",
    "StakedExtension",
]

#: The signed receipt of a paid answer, base64 JSON of a :class:`~agents.record.SignedReceiptDocument`.
RECEIPT_HEADER: Final = "STAKED-RECEIPT"
#: The client's key for a request (IETF draft "The Idempotency-Key HTTP Header Field").
IDEMPOTENCY_KEY_HEADER: Final = "Idempotency-Key"


class _Doc(BaseModel):
    model_config = ConfigDict(frozen=True, alias_generator=to_camel, populate_by_name=True)


class ErrorDetail(_Doc):
    """What went wrong: ``code`` is stable for programs, ``message`` for people."""

    code: str
    message: str
    details: dict[str, str] = Field(default_factory=dict)


class ErrorBody(_Doc):
    """The body of every error answer (OpenAI clients read ``error.message``)."""

    error: ErrorDetail


class SkillResponse(_Doc):
    """``POST /v1/skills/{name}``: the skill's output and the signed receipt that commits to it."""

    request_id: str = Field(pattern=r"^0x[0-9a-f]{64}$")
    skill: str
    output: JsonValue
    receipt: SignedReceiptDocument


class ChatCompletionRequest(BaseModel):
    """The part of OpenAI's chat completion request an agent serves.

    ``model`` is the agent's name (plain chat, the agent's ``chat`` skill) or the name of one of its skills (the
    last user message is then the skill's JSON input, and the reply its JSON output). Fields OpenAI clients send
    that do not change the answer (``user``, ``metadata``) are ignored; streaming and ``n > 1`` are refused.
    """

    model_config = ConfigDict(extra="ignore")

    model: str
    messages: tuple[ChatMessage, ...] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    seed: int | None = Field(None, ge=0, lt=2**53)
    stop: str | list[str] | None = None
    stream: bool = False
    n: int = 1


class ChatUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatChoice(BaseModel):
    index: int
    message: ChatMessage
    finish_reason: str


class ChatCompletion(BaseModel):
    """OpenAI's chat completion object, with the signed ``receipt`` beside the standard fields."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: tuple[ChatChoice, ...]
    usage: ChatUsage
    receipt: SignedReceiptDocument | None = None


class CardSkill(_Doc):
    """A skill on the agent card (A2A ``AgentSkill`` plus its price and schemas)."""

    id: str
    name: str
    description: str
    price: str = Field(description="wei per request, decimal")
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]


class StakedExtension(_Doc):
    """What a payer or a validator checks on chain before trusting the card."""

    operator: str
    signer: str
    model_id: str
    active_stake: str
    chain_id: int
    network: str
    contracts: dict[str, str]
    schemes: tuple[str, ...]
    receipt_domain: dict[str, Any]


class AgentCard(_Doc):
    """``GET /.well-known/agent-card.json``: an A2A-style card with the agent's stake, price, chain and contracts."""

    name: str
    description: str
    url: str
    version: str
    default_input_modes: tuple[str, ...] = ("application/json",)
    default_output_modes: tuple[str, ...] = ("application/json",)
    skills: tuple[CardSkill, ...]
    staked: StakedExtension


class Health(_Doc):
    """``GET /healthz``: ``ok`` when the model, the chain and the journal answer."""

    status: Literal["ok", "degraded"]
    checks: dict[str, str]
