"""The records of model calls: light, frozen pydantic models that receipts, journals and validators exchange.

This module is the wire schema of the SDK: it imports neither aiohttp, nor torch, nor vLLM, so a validator or a
paying client can read and check a :class:`ModelCall` with nothing but pydantic installed.

A :class:`ModelCall` is what a validator needs to re-score an answer: the exact prompt and output token ids (as the
engine saw and produced them, never re-tokenized text), the sampling parameters with the seed, the engine's identity
and the per-token log-probabilities the engine reported. :class:`Score` is what teacher forcing gives back.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "Alternative",
    "ChatMessage",
    "EngineInfo",
    "ModelCall",
    "Role",
    "SamplingOptions",
    "SamplingParams",
    "Score",
    "ScoredToken",
    "StreamDelta",
    "TokenLogprob",
]

TokenId = Annotated[int, Field(ge=0)]
Role = Literal["system", "user", "assistant"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EngineInfo(_Frozen):
    """Which engine produced (or scored) an output: part of the receipt's ``engineHash``.

    Example:
        >>> EngineInfo(version="0.32.0", model="tiny-docs", dtype="float32", max_model_len=1024).engine
        'vllm'

    Attributes:
        engine: the inference engine's name.
        version: the engine's version as the server reports it.
        model: the served model name.
        dtype: the weights' dtype as the server was started with (vLLM does not report it over HTTP).
        max_model_len: the context length, prompt plus output, in tokens.
    """

    engine: str = "vllm"
    version: str
    model: str
    dtype: str
    max_model_len: int = Field(gt=0)


class SamplingParams(_Frozen):
    """Sampling parameters of one call, every field explicit so that the record hashes to the same value anywhere.

    ``temperature=0`` is greedy decoding. A sampled call (``temperature > 0``) is reproducible on the same engine
    only with a ``seed``; the recording layer draws one when the caller gives none.

    Example:
        >>> SamplingParams(max_tokens=32, temperature=0).greedy
        True

    Attributes:
        max_tokens: the most tokens to generate.
        temperature: softmax temperature; 0 is greedy.
        top_p: nucleus sampling mass; 1 disables it.
        top_k: sample among the k most likely tokens; 0 disables it.
        min_p: drop tokens below this fraction of the most likely token's probability; 0 disables it.
        seed: the per-request sampling seed.
        stop: strings that end the output (not included in it).
        top_logprobs: how many alternatives to record per output token besides the chosen one.
        repetition_penalty: vLLM's multiplicative repetition penalty; 1 disables it.
        presence_penalty: OpenAI's additive presence penalty.
        frequency_penalty: OpenAI's additive frequency penalty.
    """

    max_tokens: int = Field(default=64, ge=1)
    temperature: float = Field(default=1.0, ge=0.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    top_k: int = Field(default=0, ge=0)
    min_p: float = Field(default=0.0, ge=0.0, le=1.0)
    seed: int | None = Field(default=None, ge=0, lt=2**53)  # hashed into receipts as an exact JSON number
    stop: tuple[str, ...] = ()
    top_logprobs: int = Field(default=0, ge=0, le=20)
    repetition_penalty: float = Field(default=1.0, gt=0.0)
    presence_penalty: float = Field(default=0.0, ge=-2.0, le=2.0)
    frequency_penalty: float = Field(default=0.0, ge=-2.0, le=2.0)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


class SamplingOptions(TypedDict, total=False):
    """Keyword arguments accepted wherever :class:`SamplingParams` are built from keywords."""

    max_tokens: int
    temperature: float
    top_p: float
    top_k: int
    min_p: float
    seed: int | None
    stop: tuple[str, ...]
    top_logprobs: int
    repetition_penalty: float
    presence_penalty: float
    frequency_penalty: float


class ChatMessage(_Frozen):
    """One message of a chat prompt.

    Example:
        >>> ChatMessage(role="user", content="What does `yield` do?").role
        'user'
    """

    role: Role
    content: str


class Alternative(_Frozen):
    """One of the most likely tokens at a position, as the engine ranked them.

    Example:
        >>> Alternative(token_id=18, logprob=-1.78).token_id
        18
    """

    token_id: TokenId
    logprob: float


class TokenLogprob(_Frozen):
    """The log-probability the engine reported for one output token, and the ``top`` alternatives at its position.

    Example:
        >>> TokenLogprob(token_id=205, logprob=-0.5).probability
        0.6065306597126334
    """

    token_id: TokenId
    logprob: float
    top: tuple[Alternative, ...] = ()

    @property
    def probability(self) -> float:
        return math.exp(self.logprob)


class ModelCall(_Frozen):
    """The record of one model call, made by the backend and kept per skill invocation.

    Example:
        >>> call.output_token_ids[:3]    # doctest: +SKIP
        (205, 1397, 399)

    Attributes:
        kind: ``"completion"`` (a prompt) or ``"chat"`` (messages rendered by the model's chat template).
        request_id: the engine's id of the request.
        engine: the engine that answered.
        sampling: the sampling parameters, seed included.
        prompt: the prompt text; for chat, the text the chat template rendered; empty when the prompt was given as
            token ids.
        messages: the chat messages, for chat calls.
        prompt_token_ids: the exact token ids the engine consumed (special tokens included).
        output: the generated text.
        output_token_ids: the exact generated token ids.
        logprobs: one entry per output token, as the engine computed them (raw model log-probabilities).
        finish_reason: ``"stop"`` (end of sequence or a stop string), ``"length"`` (``max_tokens`` or the
            context) or the engine's other reasons.
        streamed: whether the output was streamed.
        started_at: when the call was sent (UTC).
        duration_s: wall time from sending to the last token.
    """

    kind: Literal["completion", "chat"]
    request_id: str
    engine: EngineInfo
    sampling: SamplingParams
    prompt: str
    messages: tuple[ChatMessage, ...] = ()
    prompt_token_ids: tuple[TokenId, ...]
    output: str
    output_token_ids: tuple[TokenId, ...]
    logprobs: tuple[TokenLogprob, ...]
    finish_reason: str
    streamed: bool = False
    started_at: datetime
    duration_s: float = Field(ge=0.0)

    @model_validator(mode="after")
    def _one_logprob_per_token(self) -> ModelCall:
        if len(self.logprobs) != len(self.output_token_ids):
            raise ValueError(f"{len(self.logprobs)} logprobs for {len(self.output_token_ids)} output tokens")
        if any(entry.token_id != token for entry, token in zip(self.logprobs, self.output_token_ids, strict=True)):
            raise ValueError("logprobs do not follow output_token_ids")
        return self

    @property
    def total_logprob(self) -> float:
        """The log-likelihood of the whole output under the engine's own numbers."""
        return sum(entry.logprob for entry in self.logprobs)


class StreamDelta(_Frozen):
    """A piece of a streamed output; the last piece carries the finished :class:`ModelCall` in ``call``.

    Example:
        >>> async for delta in backend.stream_complete("tiny", "def", params):   # doctest: +SKIP
        ...     print(delta.text, end="") if delta.call is None else calls.append(delta.call)
    """

    text: str
    token_ids: tuple[TokenId, ...] = ()
    call: ModelCall | None = None


class ScoredToken(_Frozen):
    """How the model rates one given token under teacher forcing.

    Example:
        >>> ScoredToken(token_id=7, logprob=-2.5, rank=2, best_token_id=9, best_logprob=-0.5).margin
        2.0

    Attributes:
        token_id: the token being scored.
        logprob: its log-probability given everything before it.
        rank: 1 when it is the model's arg-max, 2 for the runner-up, and so on.
        best_token_id: the arg-max token at this position.
        best_logprob: the arg-max token's log-probability.
    """

    token_id: TokenId
    logprob: float
    rank: int = Field(ge=1)
    best_token_id: TokenId
    best_logprob: float

    @property
    def margin(self) -> float:
        """How far below the arg-max this token is (0 when it is the arg-max)."""
        return self.best_logprob - self.logprob


class Score(_Frozen):
    """The teacher-forced scores of an output given its prompt: what a validator compares against a receipt.

    Example:
        >>> score.greedy_violations(tolerance=1e-3)    # doctest: +SKIP
        ()
    """

    engine: EngineInfo
    prompt_token_ids: tuple[TokenId, ...]
    tokens: tuple[ScoredToken, ...]

    @property
    def output_token_ids(self) -> tuple[int, ...]:
        return tuple(token.token_id for token in self.tokens)

    @property
    def total_logprob(self) -> float:
        return sum(token.logprob for token in self.tokens)

    def greedy_violations(self, *, tolerance: float) -> tuple[int, ...]:
        """Positions whose token is not the arg-max, beyond ``tolerance`` nats (ties and rounding pass).

        Args:
            tolerance: how far below the arg-max's log-probability a token may be and still count as greedy; it
                absorbs kernels that batch differently between generation and scoring.
        """
        return tuple(index for index, token in enumerate(self.tokens) if token.margin > tolerance)
