"""Replaying a skill on its record's calls: the honest record replays to its output, an edited one does not, and a
skill that asks for anything else than the record holds is stopped at the first differing call.

The records here are made by hand (a model call is plain data); test_audit.py replays records of real vLLM calls.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from pydantic import BaseModel

from agents import Agent, Backend, EngineInfo, ModelCall, SamplingParams, TokenLogprob, skill
from agents.attribution import Attribution
from agents.record import AnswerRecord, PaymentProof, output_hash
from agents.replay import Difference, ReplayBackend, ReplayError, ReplayMismatchError, replay

from .conftest import CONTRIBUTORS, MODEL, Summarizer

ENGINE = EngineInfo(version="0.32.0", model=MODEL, dtype="float32", max_model_len=1024)
GREEDY = SamplingParams(max_tokens=32, temperature=0.0)


def call(prompt: str, output: str, *, sampling: SamplingParams = GREEDY, streamed: bool = False) -> ModelCall:
    tokens = tuple(range(10, 10 + len(output.split()) + 1))
    return ModelCall(
        kind="completion",
        request_id="cmpl-1",
        engine=ENGINE,
        sampling=sampling,
        prompt=prompt,
        prompt_token_ids=(0, 1, 2),
        output=output,
        output_token_ids=tokens,
        logprobs=tuple(TokenLogprob(token_id=token, logprob=-0.5) for token in tokens),
        finish_reason="length",
        streamed=streamed,
        started_at=datetime(2026, 11, 1, tzinfo=UTC),
        duration_s=0.1,
    )


def record(agent: type[Agent], skill_name: str, payload: dict[str, object], *calls: ModelCall) -> AnswerRecord:
    """The record an honest host keeps: the output is what the skill returns on these calls."""
    return AnswerRecord(
        agent=CONTRIBUTORS[1],
        agent_name=agent.name,
        request_id="0x" + "ab" * 32,
        skill=skill_name,
        input=payload,
        output={},
        calls=calls,
        attribution=Attribution(index_root="0x" + "00" * 32, output_tokens=0),
        payment=PaymentProof(scheme="channel", payer=CONTRIBUTORS[0], amount=1, payload={}),
    )


def summary(text: str, generated: str, **update: object) -> AnswerRecord:
    made = record(Summarizer, "summarize", {"text": text, "max_words": 32}, call(f"Summary of: {text}\n", generated))
    return made.model_copy(update={"output": {"summary": generated.strip()}, **update})


class Topic(BaseModel):
    topic: str


class Texts(BaseModel):
    texts: list[str]


class Brainstorm(Agent):
    """Runs two calls at once: they finish (and are recorded) in either order."""

    name = "brainstorm"
    price = 1
    model = MODEL

    @skill
    async def ideas(self, req: Topic) -> Texts:
        first, second = await asyncio.gather(
            self.llm.complete(f"Pros of {req.topic}:", max_tokens=32, temperature=0),
            self.llm.complete(f"Cons of {req.topic}:", max_tokens=32, temperature=0),
        )
        return Texts(texts=[first, second])

    @skill
    async def samples(self, req: Topic) -> Texts:
        """Two draws of one sampled prompt: which draw was which is not in the record."""
        draws = await asyncio.gather(*(self.llm.complete(req.topic, max_tokens=32, temperature=1.0) for _ in range(2)))
        return Texts(texts=list(draws))

    @skill
    async def streamed(self, req: Topic) -> Texts:
        return Texts(
            texts=["".join([piece async for piece in self.llm.stream(req.topic, max_tokens=32, temperature=0)])]
        )


class WarmAgent(Brainstorm):
    name = "warm"

    async def startup(self) -> None:
        await self.backend.complete(MODEL, "warm-up", GREEDY)


async def test_an_honest_record_replays_to_its_own_output() -> None:
    honest = summary("The for statement", " It iterates. ")
    replayed = await replay(Summarizer, honest)
    assert replayed.output == honest.output == {"summary": "It iterates."}
    assert replayed.calls == honest.calls
    assert not replayed.ambiguous


async def test_an_output_edited_after_generation_differs_from_the_replay() -> None:
    edited = summary("The for statement", " It iterates. ", output={"summary": "It iterates, fast and safely."})
    replayed = await replay(Summarizer, edited)
    assert output_hash(replayed.output) != edited.output_hash()
    assert replayed.output == {"summary": "It iterates."}


@pytest.mark.parametrize(
    ("recorded", "field", "requested"),
    [
        (call("Summary of: The while statement\n", " x"), "prompt", "'Summary of: The for statement\\n'"),
        (call("Summary of: The for statement\n", " x", sampling=GREEDY.model_copy(update={"max_tokens": 8})),
         "sampling.max_tokens", "32"),
        (call("Summary of: The for statement\n", " x", sampling=GREEDY.model_copy(update={"temperature": 0.7})),
         "sampling.temperature", "0.0"),
        (call("Summary of: The for statement\n", " x", streamed=True), "streamed", "False"),
        (call("Summary of: The for statement\n", " x").model_copy(update={"kind": "chat"}), "kind", "'completion'"),
        (call("Summary of: The for statement\n", " x").model_copy(update={"engine": ENGINE.model_copy(
            update={"model": "cheaper"})}), "model", "'tiny-docs'"),
    ],
)  # fmt: skip
async def test_a_skill_asking_for_another_call_than_recorded_is_stopped(
    recorded: ModelCall, field: str, requested: str
) -> None:
    mismatched = record(Summarizer, "summarize", {"text": "The for statement", "max_words": 32}, recorded)
    with pytest.raises(ReplayMismatchError) as caught:
        await replay(Summarizer, mismatched)
    assert caught.value.index == 0
    assert [difference.field for difference in caught.value.differences] == [field]
    assert caught.value.differences[0].requested == requested
    assert field in str(caught.value)


async def test_a_record_with_more_or_fewer_calls_than_the_skill_makes_is_a_mismatch() -> None:
    honest = summary("The for statement", " It iterates.")
    extra = honest.model_copy(update={"calls": (*honest.calls, call("Summary of: something else\n", " y"))})
    with pytest.raises(ReplayMismatchError) as caught:
        await replay(Summarizer, extra)
    assert caught.value.differences[0].field == "calls"
    missing = honest.model_copy(update={"calls": ()})
    with pytest.raises(ReplayMismatchError, match="calls: recorded 0 calls"):
        await replay(Summarizer, missing)


async def test_concurrent_calls_match_by_content_whatever_order_they_finished_in() -> None:
    # Recorded as they finished: the second call first.
    made = record(Brainstorm, "ideas", {"topic": "tabs"}, call("Cons of tabs:", " b"), call("Pros of tabs:", " a"))
    replayed = await replay(Brainstorm, made)
    assert replayed.output == {"texts": [" a", " b"]}
    assert not replayed.ambiguous


async def test_identical_sampled_calls_with_different_outputs_make_the_replay_ambiguous() -> None:
    sampled = SamplingParams(max_tokens=32, temperature=1.0, seed=11)
    made = record(
        Brainstorm,
        "samples",
        {"topic": "x"},
        call("x", " one", sampling=sampled),
        call("x", " two", sampling=sampled.model_copy(update={"seed": 12})),
    )
    replayed = await replay(Brainstorm, made)  # the replay draws fresh seeds: either call could answer either draw
    assert replayed.ambiguous
    assert isinstance(replayed.output, dict)
    assert sorted(map(str, replayed.output["texts"])) == [" one", " two"]  # type: ignore[arg-type]


async def test_a_streamed_call_replays_as_a_stream() -> None:
    made = record(Brainstorm, "streamed", {"topic": "x"}, call("x", " streamed text", streamed=True))
    assert (await replay(Brainstorm, made)).output == {"texts": [" streamed text"]}


async def test_what_no_record_holds_cannot_be_replayed() -> None:
    made = record(Brainstorm, "ideas", {"topic": "tabs"}, call("Pros of tabs:", " a"), call("Cons of tabs:", " b"))
    with pytest.raises(ReplayError, match="outside the replayed skill"):
        await replay(WarmAgent, made)
    with pytest.raises(ReplayError, match="the record is agent 'other''s; this is agent 'brainstorm'"):
        await replay(Brainstorm, made.model_copy(update={"agent_name": "other"}))
    backend: Backend = ReplayBackend(made.calls)
    with pytest.raises(ReplayError, match="cannot score"):
        await backend.score(MODEL, (1,), (2,))
    with pytest.raises(ReplayError, match="cannot tokenize"):
        await backend.tokenize(MODEL, "x")
    assert (await backend.engine(MODEL)) == ENGINE


def test_a_mismatch_names_every_differing_field() -> None:
    error = ReplayMismatchError(2, [Difference(field="prompt", recorded="'a'", requested="'b'")])
    assert str(error).endswith("replayed model call 2 does not match the record: prompt: recorded 'a', requested 'b'")
    assert isinstance(error, ValueError)
