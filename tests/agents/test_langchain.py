"""LangChain on the agent's backend: chains through self.chat_model are recorded, runnables become skills."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda
from pydantic import BaseModel

from agents import Agent, RecordedChatModel, VLLMBackend, record_calls, runnable_skill
from staking import to_wei_open

MODEL = "tiny-docs"
PROMPT = ChatPromptTemplate.from_messages([("system", "You explain Python."), ("human", "Explain {topic}.")])


class Topic(BaseModel):
    topic: str


class Explanation(BaseModel):
    text: str


class Docs(Agent):
    name = "docs"
    price = to_wei_open("0.02")
    model = MODEL

    explain = runnable_skill(
        lambda agent: PROMPT | agent.chat_model.bind(temperature=0, max_tokens=12) | StrOutputParser(),
        input_model=Topic,
        output_model=Explanation,
        description="Explains a Python topic.",
    )
    echo = runnable_skill(
        RunnableLambda(lambda request: {"text": request["topic"] * 2}),
        input_model=Topic,
        output_model=Explanation,
        name="echo-twice",
        price=0,
    )


async def test_a_chain_through_chat_model_is_a_recorded_skill(backend: VLLMBackend) -> None:
    assert Docs.skills["explain"].description == "Explains a Python topic."
    result = await Docs(backend).invoke("explain", {"topic": "decorators"})
    assert isinstance(result.output, Explanation)
    (call,) = result.calls
    assert call.kind == "chat"
    assert [(message.role, message.content) for message in call.messages] == [
        ("system", "You explain Python."),
        ("user", "Explain decorators."),
    ]
    assert call.output == result.output.text
    assert call.sampling.greedy
    assert call.sampling.max_tokens == 12


async def test_a_plain_runnable_is_a_skill_too(backend: VLLMBackend) -> None:
    agent = Docs(backend)
    result = await agent.invoke("echo-twice", {"topic": "ab"})
    assert result.output == Explanation(text="abab")
    assert result.calls == ()
    assert agent.price_of("echo-twice") == 0


async def test_chat_model_messages_metadata_and_streaming(backend: VLLMBackend) -> None:
    agent = Docs(backend)
    model = agent.chat_model
    assert isinstance(model, RecordedChatModel)
    assert agent.chat_model is model
    with record_calls() as log:
        answer = await model.ainvoke([HumanMessage("What is a list?")], temperature=0, max_tokens=6)
        pieces = [chunk.text async for chunk in model.astream("What is a list?", temperature=0, max_tokens=6)]
    assert isinstance(answer, AIMessage)
    assert answer.response_metadata["finish_reason"] == "length"
    assert answer.usage_metadata is not None
    assert answer.usage_metadata["output_tokens"] == 6
    assert "".join(pieces) == answer.text
    whole, streamed = log.calls
    assert streamed.streamed
    assert not whole.streamed
    assert streamed.output_token_ids == whole.output_token_ids


async def test_unknown_options_and_sync_calls_are_refused(backend: VLLMBackend) -> None:
    model = Docs(backend).chat_model
    with record_calls(), pytest.raises(TypeError, match="temprature"):
        await model.ainvoke("hi", temprature=0)
    with pytest.raises(NotImplementedError, match="async only"):
        model.invoke("hi")
