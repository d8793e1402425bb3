"""Recorded model access: ``self.llm`` of every agent, and the per-invocation log its calls land in.

An answer is only verifiable if every model call behind it is in its record, so the record is not something an
agent author has to remember: :class:`LLM` refuses to call the model unless a log is open, and the log is a
context variable that :meth:`Agent.invoke` opens around each skill. Context variables follow asyncio tasks, so
concurrent requests never mix their records, while tasks a skill spawns itself (``asyncio.gather``) inherit its log.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Sequence
from contextvars import ContextVar
from typing import Unpack

from .backend import Backend, Prompt
from .errors import NotRecordingError
from .protocol import ChatMessage, ModelCall, SamplingOptions, SamplingParams, StreamDelta

__all__ = ["LLM", "CallLog", "record_calls"]

_SEED_BITS = 53  # vLLM takes a signed 64-bit seed; receipts hash it as an exact JSON number (RFC 8785: < 2**53)


class CallLog:
    """The model calls made while it was open, in the order they finished.

    Example:
        >>> with record_calls() as log:      # doctest: +SKIP
        ...     await agent.llm.complete("def f():", temperature=0)
        >>> len(log.calls)                    # doctest: +SKIP
        1
    """

    def __init__(self, parent: CallLog | None = None) -> None:
        self._calls: list[ModelCall] = []
        self._parent = parent

    def __repr__(self) -> str:
        return f"<CallLog calls={len(self._calls)}>"

    @property
    def calls(self) -> tuple[ModelCall, ...]:
        return tuple(self._calls)

    def add(self, call: ModelCall) -> None:
        """Keeps ``call``; an enclosing log keeps it too (a skill that invokes another accounts for its calls)."""
        self._calls.append(call)
        if self._parent is not None:
            self._parent.add(call)


_current: ContextVar[CallLog | None] = ContextVar("staked_agents_call_log", default=None)


@contextlib.contextmanager
def record_calls() -> Iterator[CallLog]:
    """Opens a :class:`CallLog` for the model calls made inside the block (in this task and the tasks it starts)."""
    log = CallLog(parent=_current.get())
    token = _current.set(log)
    try:
        yield log
    finally:
        _current.reset(token)


def _open_log() -> CallLog:
    log = _current.get()
    if log is None:
        raise NotRecordingError()
    return log


class LLM:
    """An agent's model, every call recorded: ``self.llm`` inside a skill.

    Sampled calls without a seed get a fresh random one, so that every recorded call can be regenerated exactly.

    Example:
        >>> text = await self.llm.complete(prompt, max_tokens=128, temperature=0)   # doctest: +SKIP

    Args:
        backend: the engine behind it.
        model: the served model name.
        defaults: sampling parameters that keyword arguments of each call override.
    """

    def __init__(self, backend: Backend, model: str, *, defaults: SamplingParams | None = None) -> None:
        self.backend = backend
        self.model = model
        self.defaults = defaults or SamplingParams()

    def __repr__(self) -> str:
        return f"<LLM {self.model} on {self.backend!r}>"

    def params(self, params: SamplingParams | None = None, **options: Unpack[SamplingOptions]) -> SamplingParams:
        """``params`` (else the defaults) with ``options`` applied and a seed drawn for sampled calls.

        Raises:
            pydantic.ValidationError: an option is out of range.
        """
        merged = SamplingParams.model_validate({**(params or self.defaults).model_dump(), **options})
        if merged.greedy or merged.seed is not None:
            return merged
        return merged.model_copy(update={"seed": secrets.randbits(_SEED_BITS)})

    async def complete(self, prompt: Prompt, **options: Unpack[SamplingOptions]) -> str:
        """Completes ``prompt`` and returns the text; the whole call is recorded.

        Raises:
            NotRecordingError: no skill invocation or ``record_calls()`` is open.
            BackendError: the backend failed.
        """
        return (await self.generate(prompt, **options)).output

    async def chat(self, messages: str | Sequence[ChatMessage], **options: Unpack[SamplingOptions]) -> str:
        """Answers a conversation (a string is one user message) and returns the text; the call is recorded.

        Raises:
            NotRecordingError: no skill invocation or ``record_calls()`` is open.
            BackendError: the backend failed.
        """
        return (await self.generate_chat(messages, **options)).output

    async def generate(
        self, prompt: Prompt, params: SamplingParams | None = None, **options: Unpack[SamplingOptions]
    ) -> ModelCall:
        """Like :meth:`complete`, returning the whole record."""
        log = _open_log()
        call = await self.backend.complete(self.model, prompt, self.params(params, **options))
        log.add(call)
        return call

    async def generate_chat(
        self,
        messages: str | Sequence[ChatMessage],
        params: SamplingParams | None = None,
        **options: Unpack[SamplingOptions],
    ) -> ModelCall:
        """Like :meth:`chat`, returning the whole record."""
        log = _open_log()
        call = await self.backend.chat(self.model, _messages(messages), self.params(params, **options))
        log.add(call)
        return call

    async def stream(
        self, prompt: Prompt, params: SamplingParams | None = None, **options: Unpack[SamplingOptions]
    ) -> AsyncIterator[str]:
        """Completes ``prompt`` piece by piece; the call is recorded when the stream ends.

        A stream left before its end is not recorded (the engine stops generating), so its text must not reach an
        answer.

        Raises:
            NotRecordingError: no skill invocation or ``record_calls()`` is open.
            BackendError: the backend failed.
        """
        log = _open_log()
        deltas = self.backend.stream_complete(self.model, prompt, self.params(params, **options))
        async for text in _recorded(deltas, log):
            yield text

    async def stream_chat(
        self,
        messages: str | Sequence[ChatMessage],
        params: SamplingParams | None = None,
        **options: Unpack[SamplingOptions],
    ) -> AsyncIterator[str]:
        """Like :meth:`stream`, for a conversation."""
        log = _open_log()
        deltas = self.backend.stream_chat(self.model, _messages(messages), self.params(params, **options))
        async for text in _recorded(deltas, log):
            yield text


async def _recorded(deltas: AsyncGenerator[StreamDelta, None], log: CallLog) -> AsyncIterator[str]:
    # aclosing: a consumer that stops early closes the backend's stream (and its connection) at once, not at GC.
    async with contextlib.aclosing(deltas) as stream:
        async for delta in stream:
            if delta.call is not None:
                log.add(delta.call)
            if delta.text:
                yield delta.text


def _messages(messages: str | Sequence[ChatMessage]) -> tuple[ChatMessage, ...]:
    if isinstance(messages, str):
        return (ChatMessage(role="user", content=messages),)
    return tuple(messages)
