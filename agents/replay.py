"""Replaying an answer: the agent's own skill code run again on the model calls its record holds.

Teacher forcing shows that every recorded call's tokens came from the registered model; it says nothing about what
the skill made of them. A record whose calls are honest but whose final output was edited afterwards passes every
token check. Replaying closes that gap: the validator runs the agent's published class on a
:class:`ReplayBackend` that answers each model call with the recorded one, and the skill must ask exactly what the
record says it asked and give back exactly the recorded output.

A replay never generates, so it costs nothing but the skill's own Python. It needs the skill to be deterministic
given its input and its model outputs (no clock, no randomness, no outside state in prompts or output), which is
what makes an answer auditable in the first place.

Example:
    >>> replayed = await replay(Summarizer, record)                 # doctest: +SKIP
    >>> output_hash(replayed.output) == record.output_hash()         # doctest: +SKIP
    True
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import JsonValue

from .agent import Agent
from .backend import Backend, Prompt
from .errors import AgentError, SkillInputError, UnknownModelError
from .protocol import ChatMessage, EngineInfo, ModelCall, SamplingParams, Score, StreamDelta
from .record import AnswerRecord

__all__ = ["Difference", "Replay", "ReplayBackend", "ReplayError", "ReplayMismatchError", "replay"]

_URL = "replay"  # how a BackendError names this backend
_SHOWN_CHARS = 300  # a prompt can be long: a difference shows this much of each side


class ReplayError(AgentError):
    """A replay cannot go on: the skill asked for something a record never holds (scoring, tokenizing, a model
    call outside the skill), or the agent cannot be run on the record at all."""


@dataclass(frozen=True, kw_only=True)
class Difference:
    """One field of a model call in which the replayed request and the recorded call differ.

    Attributes:
        field: ``kind``, ``model``, ``prompt``, ``prompt_token_ids``, ``messages``, ``streamed``,
            ``sampling.<name>``, or ``calls`` when one side has no such call at all.
        recorded: the record's value, as text (long values are cut).
        requested: the replayed skill's value, as text.
    """

    field: str
    recorded: str
    requested: str


class ReplayMismatchError(ReplayError, ValueError):
    """Model call number ``index`` (from 0) of the replay asked for something the record does not hold.

    ``differences`` compares the request with the closest recorded call not yet served (the first of those that
    differ in the fewest fields), or says that the record has no call left, or that the skill left calls unused.
    """

    def __init__(self, index: int, differences: Sequence[Difference]) -> None:
        details = "; ".join(f"{d.field}: recorded {d.recorded}, requested {d.requested}" for d in differences)
        super().__init__(f"replayed model call {index} does not match the record: {details}")
        self.index = index
        self.differences = tuple(differences)


@dataclass(frozen=True, kw_only=True)
class _Request:
    """A model call as the skill asks for it, before any engine answers."""

    kind: Literal["completion", "chat"]
    model: str
    prompt: str
    prompt_token_ids: tuple[int, ...] | None  # given only when the prompt was token ids
    messages: tuple[ChatMessage, ...]
    sampling: SamplingParams
    streamed: bool

    @classmethod
    def completion(cls, model: str, prompt: Prompt, params: SamplingParams, *, streamed: bool) -> _Request:
        text, ids = (prompt, None) if isinstance(prompt, str) else ("", tuple(prompt))
        return cls(
            kind="completion",
            model=model,
            prompt=text,
            prompt_token_ids=ids,
            messages=(),
            sampling=params,
            streamed=streamed,
        )

    @classmethod
    def chat(cls, model: str, messages: Sequence[ChatMessage], params: SamplingParams, *, streamed: bool) -> _Request:
        return cls(
            kind="chat",
            model=model,
            prompt="",
            prompt_token_ids=None,
            messages=tuple(messages),
            sampling=params,
            streamed=streamed,
        )

    def differences(self, call: ModelCall) -> list[Difference]:
        """Where ``call`` is not the answer to this request. The seed is left out: see :class:`ReplayBackend`."""
        pairs: list[tuple[str, object, object]] = [
            ("kind", call.kind, self.kind),
            ("model", call.engine.model, self.model),
            ("streamed", call.streamed, self.streamed),
            ("messages", call.messages, self.messages),
        ]
        if self.kind == "completion":
            if self.prompt_token_ids is None:
                pairs.append(("prompt", call.prompt, self.prompt))
            else:  # a prompt of token ids leaves the recorded text empty
                pairs += [
                    ("prompt", call.prompt, ""),
                    ("prompt_token_ids", call.prompt_token_ids, self.prompt_token_ids),
                ]
        recorded, requested = call.sampling.model_dump(exclude={"seed"}), self.sampling.model_dump(exclude={"seed"})
        pairs += [(f"sampling.{name}", recorded[name], requested[name]) for name in recorded]
        return [
            Difference(field=name, recorded=_show(old), requested=_show(new)) for name, old, new in pairs if old != new
        ]


class ReplayBackend(Backend):
    """A backend that answers a skill's model calls with the calls of a record, and never generates.

    Each request (kind, model, prompt text or token ids, chat messages, sampling parameters, streamed or not) must
    equal a recorded call that has not been served yet; the first such call in record order answers it. Calls are
    recorded in the order they finished, so a skill that runs calls concurrently is matched call by call, not by
    position. The seed is not compared: :class:`~agents.recording.LLM` draws a fresh one for every sampled call the
    skill leaves unseeded, so a replay cannot ask for the recorded seed; a recorded call with the requested seed is
    preferred when there is one. When several recorded calls could answer one request with different outputs,
    :attr:`ambiguous` becomes true: the replay may then pair them differently than the original run did.

    Model calls are served only inside :meth:`serving` (:func:`replay` opens it around the skill): a model call in
    an agent's ``startup`` hook is no part of any record.

    Example:
        >>> backend = ReplayBackend(record.calls)                        # doctest: +SKIP
        >>> with backend.serving():                                      # doctest: +SKIP
        ...     result = await Summarizer(backend).invoke(record.skill, record.input)
        >>> backend.check_all_served()                                   # doctest: +SKIP

    Args:
        calls: the recorded model calls, in record order.
    """

    def __init__(self, calls: Sequence[ModelCall]) -> None:
        self._calls = tuple(calls)
        self._served = [False] * len(self._calls)
        self._requests = 0
        self._serving = False
        self.ambiguous = False

    def __repr__(self) -> str:
        return f"<ReplayBackend calls={len(self._calls)} served={sum(self._served)} ambiguous={self.ambiguous}>"

    @contextlib.contextmanager
    def serving(self) -> Iterator[None]:
        """Serves recorded calls inside the block; outside it every model call raises :class:`ReplayError`."""
        self._serving = True
        try:
            yield
        finally:
            self._serving = False

    def check_all_served(self) -> None:
        """Raises :class:`ReplayMismatchError` when the skill left recorded calls unasked for.

        Raises:
            ReplayMismatchError: the record holds calls the replayed skill did not make.
        """
        unused = [call for call, served in zip(self._calls, self._served, strict=True) if not served]
        if unused:
            difference = Difference(
                field="calls",
                recorded=f"{len(self._calls)} calls",
                requested=f"{self._requests} calls (first one left: {_show(unused[0].prompt or unused[0].messages)})",
            )
            raise ReplayMismatchError(self._requests, [difference])

    async def engine(self, model: str) -> EngineInfo:
        engines = {call.engine.model: call.engine for call in self._calls}
        if model not in engines:
            raise UnknownModelError(_URL, model, tuple(sorted(engines)))
        return engines[model]

    async def complete(self, model: str, prompt: Prompt, params: SamplingParams) -> ModelCall:
        return self._answer(_Request.completion(model, prompt, params, streamed=False))

    async def chat(self, model: str, messages: Sequence[ChatMessage], params: SamplingParams) -> ModelCall:
        return self._answer(_Request.chat(model, messages, params, streamed=False))

    async def stream_complete(
        self, model: str, prompt: Prompt, params: SamplingParams
    ) -> AsyncGenerator[StreamDelta, None]:
        call = self._answer(_Request.completion(model, prompt, params, streamed=True))
        async for delta in _stream(call):
            yield delta

    async def stream_chat(
        self, model: str, messages: Sequence[ChatMessage], params: SamplingParams
    ) -> AsyncGenerator[StreamDelta, None]:
        call = self._answer(_Request.chat(model, messages, params, streamed=True))
        async for delta in _stream(call):
            yield delta

    async def score(
        self, model: str, prompt_token_ids: Sequence[int], output_token_ids: Sequence[int], *, top: int = 1
    ) -> Score:
        raise ReplayError("a replay cannot score: a record holds no scores, and a skill's answer may not rest on any")

    async def tokenize(self, model: str, text: str, *, add_special_tokens: bool = True) -> tuple[int, ...]:
        raise ReplayError("a replay cannot tokenize: a record holds no tokenizer calls")

    async def close(self) -> None:
        """Nothing to release."""

    def _answer(self, request: _Request) -> ModelCall:
        if not self._serving:
            raise ReplayError("model call outside the replayed skill (a startup hook?): no record holds it")
        index, self._requests = self._requests, self._requests + 1
        waiting = {
            number: request.differences(self._calls[number]) for number, served in enumerate(self._served) if not served
        }
        matching = [number for number, differences in waiting.items() if not differences]
        if not matching:
            if not waiting:
                difference = Difference(
                    field="calls", recorded=f"{len(self._calls)} calls", requested=f"call number {index + 1}"
                )
                raise ReplayMismatchError(index, [difference])
            raise ReplayMismatchError(index, min(waiting.values(), key=len))  # the closest call explains best
        seeded = [number for number in matching if self._calls[number].sampling.seed == request.sampling.seed]
        chosen = (seeded or matching)[0]
        outputs = {(self._calls[number].output, self._calls[number].output_token_ids) for number in matching}
        if not seeded and len(outputs) > 1:
            self.ambiguous = True
        self._served[chosen] = True
        return self._calls[chosen]


async def _stream(call: ModelCall) -> AsyncGenerator[StreamDelta, None]:
    """A recorded call as a stream: its whole output in one piece, then the call."""
    if call.output or call.output_token_ids:
        yield StreamDelta(text=call.output, token_ids=call.output_token_ids)
    yield StreamDelta(text="", call=call)


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "..."


@dataclass(frozen=True, kw_only=True)
class Replay:
    """What the agent's skill gives when run again on its record's model calls.

    Attributes:
        output: the skill's output as JSON (what ``outputHash`` covers).
        calls: the recorded calls, in the order the replayed skill made them.
        ambiguous: some request could be answered by several recorded calls with different outputs (see
            :class:`ReplayBackend`): a differing output then proves nothing.
    """

    output: JsonValue
    calls: tuple[ModelCall, ...]
    ambiguous: bool


async def replay(agent: Callable[[Backend], Agent], record: AnswerRecord) -> Replay:
    """Runs ``record.skill`` of a fresh agent on ``record.input``, answering its model calls from ``record.calls``.

    Args:
        agent: the agent class (or any callable that makes the agent on a backend, for classes that take more).
        record: the answer record to replay.

    Raises:
        ReplayMismatchError: the skill asked for a call the record does not hold, or left recorded calls unused.
        ReplayError: the agent's name is not the record's, or it made a call a replay cannot serve.
        UnknownSkillError / SkillInputError / SkillOutputError: as :meth:`Agent.invoke` raises them.
    """
    if not isinstance(record.input, dict):  # a skill's input is a pydantic model: a JSON object
        raise SkillInputError(record.skill, [{"loc": (), "msg": f"not a JSON object: {_show(record.input)}"}])
    backend = ReplayBackend(record.calls)
    async with agent(backend) as instance:
        if instance.name != record.agent_name:
            raise ReplayError(f"the record is agent {record.agent_name!r}'s; this is agent {instance.name!r}")
        with backend.serving():
            result = await instance.invoke(record.skill, record.input)
    backend.check_all_served()
    return Replay(
        output=result.output.model_dump(mode="json"),
        calls=result.calls,
        ambiguous=backend.ambiguous,
    )
