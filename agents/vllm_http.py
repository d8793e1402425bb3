"""The vLLM backend over HTTP: vLLM's OpenAI-compatible server, spoken with aiohttp.

Every request asks vLLM for the exact token ids (``return_token_ids``; chat also ``return_prompt_text``) and for
log-probabilities keyed by token id (``return_tokens_as_token_ids``), so a record never depends on re-tokenizing
text. :meth:`VLLMBackend.score` teacher-forces an output with ``prompt_logprobs`` over prompt plus output ids.

This module is the one boundary where aiohttp errors and vLLM's error envelopes become
:class:`~agents.errors.BackendError` subclasses. Only requests that never reached the server (connection refused,
connect timeout) and 503 answers are retried, a bounded number of times with exponential back-off: a generation
that reached the engine is costly and a retry could sample a different answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

import aiohttp
from pydantic import BaseModel, ConfigDict, ValidationError

from .backend import Backend, Prompt
from .errors import (
    BackendError,
    BackendTimeoutError,
    BackendUnavailableError,
    ContextLengthError,
    EngineFailedError,
    RequestRejectedError,
    UnknownModelError,
)
from .protocol import (
    Alternative,
    ChatMessage,
    EngineInfo,
    ModelCall,
    SamplingParams,
    Score,
    ScoredToken,
    StreamDelta,
    TokenLogprob,
)

__all__ = ["VLLMBackend"]

_log = logging.getLogger(__name__)

_TOKEN_ID_PREFIX = "token_id:"  # how vLLM names tokens when asked for return_tokens_as_token_ids
_SSE_DATA = b"data: "
_SSE_DONE = b"[DONE]"
_CONTEXT_MARKERS = ("maximum context length", "max_model_len")  # vLLM's wording for over-long requests
_AnswerT = TypeVar("_AnswerT", bound=BaseModel)
_RETRY_STATUS = 503  # the server is up but not ready (starting, overloaded): the request was not processed


class VLLMBackend(Backend):
    """Talks to one vLLM OpenAI-compatible server.

    Example:
        >>> async with VLLMBackend("http://127.0.0.1:8000", dtype="float32") as backend:   # doctest: +SKIP
        ...     call = await backend.complete("tiny", "The for statement", SamplingParams(temperature=0))
        ...     call.output_token_ids

    Args:
        base_url: the server's root, e.g. ``http://127.0.0.1:8000`` (without ``/v1``).
        dtype: the dtype the server was started with; vLLM does not report it over HTTP, and the engine identity
            of every record carries it.
        timeout: seconds for a whole request, streamed ones included.
        connect_timeout: seconds to open a connection.
        attempts: how often a request that never reached the server, or met a 503, is tried in all.
        backoff: seconds before the first retry; doubled for each further one.
        api_key: the server's ``--api-key``, if it has one.

    Raises:
        ValueError: ``attempts`` is below 1 or a timeout is not positive.
    """

    def __init__(
        self,
        base_url: str,
        *,
        dtype: str,
        timeout: float = 300.0,
        connect_timeout: float = 5.0,
        attempts: int = 3,
        backoff: float = 0.25,
        api_key: str | None = None,
    ) -> None:
        if attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {attempts}")
        if timeout <= 0 or connect_timeout <= 0:
            raise ValueError("timeouts must be positive")
        self.url = base_url.rstrip("/")
        self.dtype = dtype
        self.timeout = timeout
        self.attempts = attempts
        self.backoff = backoff
        self._client_timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=connect_timeout)
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._session: aiohttp.ClientSession | None = None
        self._engines: dict[str, EngineInfo] = {}
        self._requests = 0
        self._retries = 0

    def __repr__(self) -> str:
        return f"<VLLMBackend {self.url} requests={self._requests} retries={self._retries}>"

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def engine(self, model: str) -> EngineInfo:
        known = self._engines.get(model)
        if known is not None:
            return known
        version = await self._request("GET", "/version", None, model)
        listing = await self._request("GET", "/v1/models", None, model)
        try:
            cards = {str(card["id"]): int(card["max_model_len"]) for card in listing["data"]}
            release = str(version["version"])
        except (KeyError, TypeError, ValueError) as exc:
            raise EngineFailedError(self.url, 0, f"unreadable model listing or version: {exc!r}") from exc
        if model not in cards:
            raise UnknownModelError(self.url, model, tuple(sorted(cards)))
        info = EngineInfo(version=release, model=model, dtype=self.dtype, max_model_len=cards[model])
        self._engines[model] = info
        return info

    async def tokenize(self, model: str, text: str, *, add_special_tokens: bool = True) -> tuple[int, ...]:
        body = {"model": model, "prompt": text, "add_special_tokens": add_special_tokens}
        answer = await self._request("POST", "/tokenize", body, model)
        try:
            return tuple(int(token) for token in answer["tokens"])
        except (KeyError, TypeError, ValueError) as exc:
            raise EngineFailedError(self.url, 0, f"unreadable tokenize answer: {exc!r}") from exc

    async def complete(self, model: str, prompt: Prompt, params: SamplingParams) -> ModelCall:
        engine = await self.engine(model)
        record = _Record.start("completion", engine, params, prompt=prompt if isinstance(prompt, str) else "")
        answer = await self._request("POST", "/v1/completions", _completion_body(model, prompt, params), model)
        response = self._parse(_CompletionResponse, answer)
        record.absorb_completion(response, self.url)
        return record.finish(self.url)

    async def chat(self, model: str, messages: Sequence[ChatMessage], params: SamplingParams) -> ModelCall:
        engine = await self.engine(model)
        record = _Record.start("chat", engine, params, messages=tuple(messages))
        answer = await self._request("POST", "/v1/chat/completions", _chat_body(model, messages, params), model)
        record.absorb_chat(self._parse(_ChatResponse, answer), self.url)
        return record.finish(self.url)

    async def stream_complete(
        self, model: str, prompt: Prompt, params: SamplingParams
    ) -> AsyncGenerator[StreamDelta, None]:
        engine = await self.engine(model)
        record = _Record.start(
            "completion", engine, params, prompt=prompt if isinstance(prompt, str) else "", streamed=True
        )
        body = {**_completion_body(model, prompt, params), "stream": True}
        async for event in self._stream("/v1/completions", body, model):
            delta = record.absorb_completion(self._parse(_CompletionResponse, event), self.url)
            if delta.text or delta.token_ids:
                yield delta
        yield StreamDelta(text="", call=record.finish(self.url))

    async def stream_chat(
        self, model: str, messages: Sequence[ChatMessage], params: SamplingParams
    ) -> AsyncGenerator[StreamDelta, None]:
        engine = await self.engine(model)
        record = _Record.start("chat", engine, params, messages=tuple(messages), streamed=True)
        body = {**_chat_body(model, messages, params), "stream": True}
        async for event in self._stream("/v1/chat/completions", body, model):
            delta = record.absorb_chat(self._parse(_ChatResponse, event), self.url)
            if delta.text or delta.token_ids:
                yield delta
        yield StreamDelta(text="", call=record.finish(self.url))

    async def score(
        self, model: str, prompt_token_ids: Sequence[int], output_token_ids: Sequence[int], *, top: int = 1
    ) -> Score:
        if top < 1:
            raise ValueError(f"top must be >= 1 to find the arg-max, got {top}")
        if not prompt_token_ids:
            raise ValueError("score needs at least one prompt token")
        engine = await self.engine(model)
        ids = [*prompt_token_ids, *output_token_ids]
        # One extra position is generated (vLLM needs max_tokens >= 1); prompt_logprobs rates every given token.
        body = {"model": model, "prompt": ids, "max_tokens": 1, "temperature": 0.0, "prompt_logprobs": top}
        response = self._parse(_CompletionResponse, await self._request("POST", "/v1/completions", body, model))
        rated = response.choices[0].prompt_logprobs if response.choices else None
        if rated is None or len(rated) != len(ids):
            raise EngineFailedError(self.url, 0, "the engine returned no prompt_logprobs for every position")
        tokens = []
        for position in range(len(prompt_token_ids), len(ids)):
            ranking = rated[position] or {}
            own = ranking.get(str(ids[position]))
            best = next((entry for entry in ranking.items() if entry[1].rank == 1), None)
            if own is None or own.rank is None or best is None:
                raise EngineFailedError(self.url, 0, f"prompt_logprobs lack the token or the arg-max at {position}")
            tokens.append(
                ScoredToken(
                    token_id=ids[position],
                    logprob=own.logprob,
                    rank=own.rank,
                    best_token_id=int(best[0]),
                    best_logprob=best[1].logprob,
                )
            )
        return Score(engine=engine, prompt_token_ids=tuple(prompt_token_ids), tokens=tuple(tokens))

    # -- the HTTP boundary ---------------------------------------------------------------------------------------

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._client_timeout, headers=self._headers)
        return self._session

    async def _request(self, method: str, path: str, body: Mapping[str, Any] | None, model: str) -> Any:
        """Sends one request (retrying only what never reached the engine) and returns the decoded JSON."""
        async with self._open(method, path, body, model) as response:
            try:
                return await response.json(content_type=None)
            except TimeoutError as exc:
                raise BackendTimeoutError(self.url, self.timeout) from exc
            except (aiohttp.ClientError, ValueError) as exc:
                raise EngineFailedError(self.url, response.status, f"unreadable answer: {exc!r}") from exc

    async def _stream(self, path: str, body: Mapping[str, Any], model: str) -> AsyncIterator[Any]:
        """Sends a streaming request and yields each server-sent event's JSON until ``[DONE]``."""
        async with self._open("POST", path, body, model) as response:
            while True:
                try:
                    line = await response.content.readline()
                except TimeoutError as exc:
                    raise BackendTimeoutError(self.url, self.timeout) from exc
                except aiohttp.ClientError as exc:
                    raise EngineFailedError(self.url, response.status, f"broken stream: {exc!r}") from exc
                if not line:
                    break
                if not line.startswith(_SSE_DATA):
                    continue
                data = line[len(_SSE_DATA) :].strip()
                if data == _SSE_DONE:
                    return
                event = _decode(data)
                if isinstance(event, dict) and "error" in event:  # vLLM reports mid-stream failures in-band
                    error = event["error"]
                    status = error.get("code") if isinstance(error, dict) else None
                    raise self._http_error(status if isinstance(status, int) else 500, event, model)
                yield event
        raise EngineFailedError(self.url, 0, "the stream ended without [DONE]")

    @contextlib.asynccontextmanager
    async def _open(
        self, method: str, path: str, body: Mapping[str, Any] | None, model: str
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """The open 200 response of :meth:`_send`, released however the block ends."""
        response = await self._send(method, path, body, model)
        try:
            yield response
        finally:
            response.release()

    async def _send(self, method: str, path: str, body: Mapping[str, Any] | None, model: str) -> aiohttp.ClientResponse:
        """Returns a 200 response, open; retries requests that never reached the engine; maps every failure."""
        reason = ""
        for attempt in range(1, self.attempts + 1):
            if attempt > 1:
                delay = self.backoff * 2 ** (attempt - 2)
                self._retries += 1
                _log.warning(
                    "vLLM at %s: %s; retrying in %.2f s (attempt %d of %d)",
                    self.url, reason, delay, attempt, self.attempts,
                )  # fmt: skip
                await asyncio.sleep(delay)
            self._requests += 1
            try:
                response = await self._client().request(method, self.url + path, json=body)
            except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
                reason = f"cannot connect ({exc.__class__.__name__}: {exc})"  # never sent: safe to retry
                continue
            except TimeoutError as exc:
                raise BackendTimeoutError(self.url, self.timeout) from exc
            except aiohttp.ClientError as exc:
                raise EngineFailedError(self.url, 0, f"{exc.__class__.__name__}: {exc}") from exc
            if response.status == 200:
                return response
            try:
                payload = await response.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise EngineFailedError(self.url, response.status, f"unreadable error answer: {exc!r}") from exc
            finally:
                response.release()
            if response.status == _RETRY_STATUS:
                reason = f"503 {payload[:200].decode(errors='replace')}"
                continue
            raise self._http_error(response.status, _decode(payload), model)
        raise BackendUnavailableError(self.url, reason, self.attempts)

    def _http_error(self, status: int, answer: Any, model: str) -> BackendError:
        """Maps one of vLLM's error envelopes (``{"error": {"message", "type", "param", "code"}}``) to our error."""
        error = answer.get("error", answer) if isinstance(answer, dict) else {}
        message = str(error.get("message", answer)) if isinstance(error, dict) else str(error)
        param = error.get("param") if isinstance(error, dict) else None
        if status == 404 and (param == "model" or "does not exist" in message):
            return UnknownModelError(self.url, model)
        if status == 400 and any(marker in message for marker in _CONTEXT_MARKERS):
            return ContextLengthError(self.url, model, message)
        if status == _RETRY_STATUS:
            return BackendUnavailableError(self.url, message, 1)
        if 400 <= status < 500:
            return RequestRejectedError(self.url, status, message)
        return EngineFailedError(self.url, status, message)

    def _parse(self, schema: type[_AnswerT], answer: Any) -> _AnswerT:
        try:
            return schema.model_validate(answer)
        except ValidationError as exc:
            raise EngineFailedError(self.url, 0, f"unexpected answer shape: {exc}") from exc


def _decode(payload: bytes) -> Any:
    """JSON of an answer; text that is no JSON becomes an error envelope (it only comes with failures)."""
    try:
        return json.loads(payload)
    except ValueError:
        return {"error": {"message": payload[:500].decode(errors="replace")}}


# -- request bodies ----------------------------------------------------------------------------------------------


def _sampling_body(params: SamplingParams) -> dict[str, Any]:
    return {
        "max_tokens": params.max_tokens,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "top_k": params.top_k,
        "min_p": params.min_p,
        "seed": params.seed,
        "stop": list(params.stop),
        "repetition_penalty": params.repetition_penalty,
        "presence_penalty": params.presence_penalty,
        "frequency_penalty": params.frequency_penalty,
        "return_token_ids": True,
        "return_tokens_as_token_ids": True,
    }


def _completion_body(model: str, prompt: Prompt, params: SamplingParams) -> dict[str, Any]:
    return {
        "model": model,
        "prompt": prompt if isinstance(prompt, str) else list(prompt),
        "logprobs": params.top_logprobs,
        **_sampling_body(params),
    }


def _chat_body(model: str, messages: Sequence[ChatMessage], params: SamplingParams) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [message.model_dump() for message in messages],
        "logprobs": True,
        "top_logprobs": params.top_logprobs,
        "return_prompt_text": True,
        **_sampling_body(params),
    }


# -- vLLM's answers, as much of them as we read ------------------------------------------------------------------


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _PromptLogprob(_Wire):
    logprob: float
    rank: int | None = None


class _CompletionLogprobs(_Wire):
    tokens: list[str]
    token_logprobs: list[float | None]
    top_logprobs: list[dict[str, float] | None]


class _CompletionChoice(_Wire):
    text: str = ""
    token_ids: list[int] | None = None
    prompt_token_ids: list[int] | None = None
    logprobs: _CompletionLogprobs | None = None
    finish_reason: str | None = None
    prompt_logprobs: list[dict[str, _PromptLogprob] | None] | None = None


class _CompletionResponse(_Wire):
    id: str
    choices: list[_CompletionChoice]


class _ChatAlternative(_Wire):
    token: str
    logprob: float


class _ChatTokenLogprob(_Wire):
    token: str
    logprob: float
    top_logprobs: list[_ChatAlternative] = []


class _ChatLogprobs(_Wire):
    content: list[_ChatTokenLogprob] | None = None


class _ChatContent(_Wire):
    content: str | None = None


class _ChatChoice(_Wire):
    message: _ChatContent | None = None  # a whole answer
    delta: _ChatContent | None = None  # a streamed chunk
    token_ids: list[int] | None = None
    logprobs: _ChatLogprobs | None = None
    finish_reason: str | None = None


class _ChatResponse(_Wire):
    id: str
    choices: list[_ChatChoice]
    prompt_token_ids: list[int] | None = None
    prompt_text: str | None = None


def _token_id(name: str) -> int:
    if not name.startswith(_TOKEN_ID_PREFIX):
        raise ValueError(f"token {name!r} is not named by id")
    return int(name[len(_TOKEN_ID_PREFIX) :])


@dataclass(kw_only=True)
class _Record:
    """Collects one call's pieces, from one answer or from many stream chunks, into a :class:`ModelCall`."""

    kind: Literal["completion", "chat"]
    engine: EngineInfo
    sampling: SamplingParams
    prompt: str
    messages: tuple[ChatMessage, ...]
    streamed: bool
    started_at: datetime
    started: float
    request_id: str = ""
    prompt_token_ids: list[int] | None = None
    text: list[str] = field(default_factory=list)
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[TokenLogprob] = field(default_factory=list)
    finish_reason: str | None = None

    @classmethod
    def start(
        cls,
        kind: Literal["completion", "chat"],
        engine: EngineInfo,
        sampling: SamplingParams,
        *,
        prompt: str = "",
        messages: tuple[ChatMessage, ...] = (),
        streamed: bool = False,
    ) -> _Record:
        return cls(
            kind=kind,
            engine=engine,
            sampling=sampling,
            prompt=prompt,
            messages=messages,
            streamed=streamed,
            started_at=datetime.now(UTC),
            started=asyncio.get_running_loop().time(),
        )

    def absorb_completion(self, response: _CompletionResponse, url: str) -> StreamDelta:
        try:
            return self._absorb_completion(response)
        except ValueError as exc:
            raise EngineFailedError(url, 0, f"unreadable completion: {exc}") from exc

    def absorb_chat(self, response: _ChatResponse, url: str) -> StreamDelta:
        try:
            return self._absorb_chat(response)
        except ValueError as exc:
            raise EngineFailedError(url, 0, f"unreadable chat answer: {exc}") from exc

    def _absorb_completion(self, response: _CompletionResponse) -> StreamDelta:
        self.request_id = response.id
        if not response.choices:  # the usage chunk of a stream
            return StreamDelta(text="")
        choice = response.choices[0]
        if choice.prompt_token_ids is not None:
            self.prompt_token_ids = choice.prompt_token_ids
        token_ids = choice.token_ids or []
        if choice.logprobs is not None:
            rows = zip(token_ids, choice.logprobs.token_logprobs, choice.logprobs.top_logprobs, strict=True)
            for token, logprob, top in rows:
                alternatives = [(_token_id(name), value) for name, value in (top or {}).items()]
                self._add_logprob(token, logprob, alternatives)
        return self._add(choice.text, token_ids, choice.finish_reason)

    def _absorb_chat(self, response: _ChatResponse) -> StreamDelta:
        self.request_id = response.id
        if response.prompt_token_ids is not None:
            self.prompt_token_ids = response.prompt_token_ids
        if response.prompt_text is not None:
            self.prompt = response.prompt_text
        if not response.choices:
            return StreamDelta(text="")
        choice = response.choices[0]
        token_ids = choice.token_ids or []
        content = choice.logprobs.content if choice.logprobs else None
        for token, entry in zip(token_ids, content or [], strict=True):
            alternatives = [(_token_id(alt.token), alt.logprob) for alt in entry.top_logprobs]
            self._add_logprob(token, entry.logprob, alternatives)
        message = choice.message or choice.delta
        return self._add(message.content or "" if message else "", token_ids, choice.finish_reason)

    def _add_logprob(self, token: int, logprob: float | None, alternatives: list[tuple[int, float]]) -> None:
        if logprob is None:
            raise ValueError(f"no logprob for output token {token}")
        alternatives.sort(key=lambda pair: -pair[1])
        top = tuple(Alternative(token_id=t, logprob=v) for t, v in alternatives[: self.sampling.top_logprobs])
        self.logprobs.append(TokenLogprob(token_id=token, logprob=logprob, top=top))

    def _add(self, text: str, token_ids: list[int], finish_reason: str | None) -> StreamDelta:
        self.text.append(text)
        self.token_ids.extend(token_ids)
        if finish_reason is not None:
            self.finish_reason = finish_reason
        return StreamDelta(text=text, token_ids=tuple(token_ids))

    def finish(self, url: str) -> ModelCall:
        if self.prompt_token_ids is None or self.finish_reason is None:
            raise EngineFailedError(url, 0, "the answer lacks prompt token ids or a finish reason")
        try:
            return ModelCall(
                kind=self.kind,
                request_id=self.request_id,
                engine=self.engine,
                sampling=self.sampling,
                prompt=self.prompt,
                messages=self.messages,
                prompt_token_ids=tuple(self.prompt_token_ids),
                output="".join(self.text),
                output_token_ids=tuple(self.token_ids),
                logprobs=tuple(self.logprobs),
                finish_reason=self.finish_reason,
                streamed=self.streamed,
                started_at=self.started_at,
                duration_s=asyncio.get_running_loop().time() - self.started,
            )
        except ValidationError as exc:
            raise EngineFailedError(url, 0, f"inconsistent answer: {exc}") from exc
