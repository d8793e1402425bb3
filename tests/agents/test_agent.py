"""The Agent base class and @skill: definitions checked at class creation, typed invocation, per-request records."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import BaseModel

from agents import (
    Agent,
    AgentDefinitionError,
    Backend,
    NotRecordingError,
    SkillInputError,
    SkillOutputError,
    UnknownSkillError,
    VLLMBackend,
    record_calls,
    skill,
)
from staking import StakedError, to_wei_open

MODEL = "tiny-docs"


class SummarizeIn(BaseModel):
    text: str
    words: int = 8


class SummarizeOut(BaseModel):
    summary: str


class Summarizer(Agent):
    name = "summarizer"
    price = to_wei_open("0.01")
    model = MODEL

    def __init__(self, backend: Backend) -> None:
        super().__init__(backend)
        self.events: list[str] = []

    async def startup(self) -> None:
        self.events.append("startup")

    async def shutdown(self) -> None:
        self.events.append("shutdown")

    @skill
    async def summarize(self, req: SummarizeIn) -> SummarizeOut:
        """Summarizes a text.

        Longer explanation that stays out of the card.
        """
        text = await self.llm.complete(f"Summary of: {req.text}\n", max_tokens=req.words, temperature=0)
        return SummarizeOut(summary=text)

    @skill(name="two-drafts", price=to_wei_open("0.05"), description="Two sampled drafts, concurrently.")
    async def drafts(self, req: SummarizeIn) -> SummarizeOut:
        first, second = await asyncio.gather(
            self.llm.complete(req.text, max_tokens=req.words, temperature=1.0),
            self.llm.chat(req.text, max_tokens=req.words, temperature=1.0),
        )
        return SummarizeOut(summary=f"{first} | {second}")

    @skill
    async def broken(self, req: SummarizeIn) -> SummarizeOut:
        return req  # type: ignore[return-value]


def test_skills_are_collected_with_schemas_prices_and_descriptions() -> None:
    assert sorted(Summarizer.skills) == ["broken", "summarize", "two-drafts"]
    summarize = Summarizer.skills["summarize"]
    assert summarize.method == "summarize"
    assert summarize.input_model is SummarizeIn
    assert summarize.output_model is SummarizeOut
    assert summarize.description == "Summarizes a text."
    assert summarize.input_schema["properties"]["text"] == {"title": "Text", "type": "string"}
    assert summarize.output_schema["required"] == ["summary"]
    drafts = Summarizer.skills["two-drafts"]
    assert drafts.method == "drafts"
    assert drafts.description == "Two sampled drafts, concurrently."
    agent = Summarizer(VLLMBackend("http://127.0.0.1:1", dtype="float32"))
    assert agent.price_of("summarize") == to_wei_open("0.01")
    assert agent.price_of("two-drafts") == to_wei_open("0.05")


def test_subclasses_inherit_and_extend_skills() -> None:
    class Extended(Summarizer):
        name = "extended"

        @skill
        async def shout(self, req: SummarizeIn) -> SummarizeOut:
            return SummarizeOut(summary=req.text.upper())

    assert sorted(Extended.skills) == ["broken", "shout", "summarize", "two-drafts"]
    assert "shout" not in Summarizer.skills


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("def run(self, req: SummarizeIn) -> SummarizeOut: ...", "async def"),
        ("async def run(self) -> SummarizeOut: ...", "exactly one argument"),
        ("async def run(self, a: SummarizeIn, b: SummarizeIn) -> SummarizeOut: ...", "exactly one argument"),
        ("async def run(self, req: SummarizeIn = None) -> SummarizeOut: ...", "exactly one argument"),
        ("async def run(self, req: dict) -> SummarizeOut: ...", "pydantic model"),
        ("async def run(self, req: SummarizeIn) -> str: ...", "return a pydantic model"),
        ("async def run(self, req: SummarizeIn): ...", "return a pydantic model"),
        ("async def run(self, req: Later) -> SummarizeOut: ...", "cannot resolve"),
    ],
)
def test_malformed_skills_fail_when_the_class_is_created(body: str, reason: str) -> None:
    namespace: dict[str, object] = {}
    exec(body, globals(), namespace)  # a fresh function per case, annotated in this module's namespace
    with pytest.raises(AgentDefinitionError, match=reason) as caught:
        type("Bad", (Agent,), {"name": "bad", "price": 1, "model": MODEL, "run": skill(namespace["run"])})  # type: ignore[call-overload]
    assert caught.value.member == "run"
    assert isinstance(caught.value, TypeError)
    assert isinstance(caught.value, StakedError)


@pytest.mark.parametrize(
    ("options", "reason"),
    [({"price": -1}, "price"), ({"price": 0.5}, "price"), ({"price": True}, "price"), ({"name": "a/b"}, "name")],
)
def test_bad_skill_options_fail_early(options: dict[str, object], reason: str) -> None:
    async def run(self: Agent, req: SummarizeIn) -> SummarizeOut:
        return SummarizeOut(summary="")

    with pytest.raises(AgentDefinitionError, match=reason):
        type("Bad", (Agent,), {"name": "bad", "price": 1, "model": MODEL, "run": skill(**options)(run)})  # type: ignore[call-overload]


def test_duplicate_skill_names_fail() -> None:
    async def one(self: Agent, req: SummarizeIn) -> SummarizeOut:
        return SummarizeOut(summary="")

    async def two(self: Agent, req: SummarizeIn) -> SummarizeOut:
        return SummarizeOut(summary="")

    with pytest.raises(AgentDefinitionError, match="already taken"):
        type("Bad", (Agent,), {"one": skill(name="same")(one), "two": skill(name="same")(two)})


@pytest.mark.parametrize(
    ("attributes", "member"), [({"price": "0.01"}, "price"), ({"price": -5}, "price"), ({"name": ""}, "name")]
)
def test_bad_class_attributes_fail_early(attributes: dict[str, object], member: str) -> None:
    with pytest.raises(AgentDefinitionError) as caught:
        type("Bad", (Agent,), attributes)
    assert caught.value.member == member


def test_an_agent_without_name_price_or_model_cannot_be_instantiated() -> None:
    class Unnamed(Agent):
        price = 1
        model = MODEL

    with pytest.raises(AgentDefinitionError, match="name"):
        Unnamed(VLLMBackend("http://127.0.0.1:1", dtype="float32"))


async def test_invoke_validates_runs_and_records(backend: VLLMBackend) -> None:
    async with Summarizer(backend) as agent:
        result = await agent.invoke("summarize", b'{"text": "Generators yield values lazily.", "words": 6}')
        assert agent.events == ["startup"]
    assert agent.events == ["startup", "shutdown"]
    assert result.skill == "summarize"
    assert result.price == to_wei_open("0.01")
    assert isinstance(result.output, SummarizeOut)
    (call,) = result.calls
    assert call.output == result.output.summary
    assert call.prompt == "Summary of: Generators yield values lazily.\n"
    assert call.sampling.max_tokens == 6
    assert call.sampling.greedy
    assert call.sampling.seed is None  # greedy needs no seed


async def test_sampled_calls_get_a_seed_and_concurrent_calls_inside_a_skill_are_all_recorded(
    backend: VLLMBackend,
) -> None:
    result = await Summarizer(backend).invoke("two-drafts", {"text": "Lists are mutable.", "words": 5})
    assert sorted(call.kind for call in result.calls) == ["chat", "completion"]
    assert all(call.sampling.seed is not None for call in result.calls)
    assert result.price == to_wei_open("0.05")


async def test_concurrent_invocations_keep_their_own_records(backend: VLLMBackend) -> None:
    agent = Summarizer(backend)
    texts = [f"Topic number {index}." for index in range(6)]
    results = await asyncio.gather(*(agent.invoke("summarize", {"text": text, "words": 3}) for text in texts))
    for text, result in zip(texts, results, strict=True):
        assert [call.prompt for call in result.calls] == [f"Summary of: {text}\n"]


async def test_model_calls_outside_an_invocation_are_refused(backend: VLLMBackend) -> None:
    agent = Summarizer(backend)
    with pytest.raises(NotRecordingError):
        await agent.llm.complete("unrecorded", max_tokens=2)
    with record_calls() as log:
        await agent.llm.complete("recorded", max_tokens=2, temperature=0)
    assert [call.prompt for call in log.calls] == ["recorded"]


async def test_invocation_errors(backend: VLLMBackend) -> None:
    agent = Summarizer(backend)
    with pytest.raises(UnknownSkillError) as unknown:
        await agent.invoke("translate", {"text": "x"})
    assert unknown.value.known == ("broken", "summarize", "two-drafts")
    with pytest.raises(SkillInputError) as invalid:
        await agent.invoke("summarize", b'{"words": "many"}')
    assert {tuple(error["loc"]) for error in invalid.value.errors} == {("text",), ("words",)}
    with pytest.raises(SkillOutputError, match="SummarizeOut"):
        await agent.invoke("broken", {"text": "x"})
