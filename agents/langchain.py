"""LangChain on the agent's backend: a recorded chat model, and existing runnables turned into skills.

:class:`RecordedChatModel` is a LangChain ``BaseChatModel`` whose every call goes through the agent's
:class:`~agents.recording.LLM`, so prompts, chains and agent loops built with LangChain end up in the same record
as direct calls. It is async only: a synchronous call would block the event loop the agent serves from.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
)
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import SkillOutputError
from .protocol import ChatMessage, ModelCall, Role, SamplingOptions, SamplingParams
from .recording import LLM
from .skills import skill

if TYPE_CHECKING:
    from .agent import Agent

__all__ = ["RecordedChatModel", "runnable_skill"]

_ROLES: Mapping[type[BaseMessage], Role] = {SystemMessage: "system", HumanMessage: "user", AIMessage: "assistant"}


class RecordedChatModel(BaseChatModel):
    """A LangChain chat model whose calls are recorded like any other model call of the agent.

    Example:
        >>> chain = ChatPromptTemplate.from_template("Explain {topic}.") | self.chat_model | StrOutputParser()
        >>> text = await chain.ainvoke({"topic": "generators"})      # doctest: +SKIP

    Sampling options bound with ``.bind(temperature=0, max_tokens=64)`` or passed per call override ``sampling``.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    llm: LLM
    sampling: SamplingParams = SamplingParams()

    @property
    def _llm_type(self) -> str:
        return "staked-vllm"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": self.llm.model, **self.sampling.model_dump()}

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        raise NotImplementedError("RecordedChatModel is async only: use ainvoke, astream or abatch")

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        call = await self.llm.generate_chat(_convert(messages), self._params(stop, kwargs))
        message = AIMessage(
            content=call.output, response_metadata=_metadata(call), usage_metadata=_usage(call), id=call.request_id
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        async for text in self.llm.stream_chat(_convert(messages), self._params(stop, kwargs)):
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=text))
            if run_manager is not None:
                await run_manager.on_llm_new_token(text, chunk=chunk)
            yield chunk

    def _params(self, stop: list[str] | None, kwargs: Mapping[str, Any]) -> SamplingParams:
        unknown = set(kwargs) - set(SamplingParams.model_fields)
        if unknown:
            raise TypeError(f"unknown sampling options: {', '.join(sorted(unknown))}")
        options = cast(SamplingOptions, dict(kwargs))
        if stop is not None:
            options["stop"] = tuple(stop)
        return self.llm.params(self.sampling, **options)


def _convert(messages: Sequence[BaseMessage]) -> tuple[ChatMessage, ...]:
    converted = []
    for message in messages:
        role = next((role for kind, role in _ROLES.items() if isinstance(message, kind)), None)
        if role is None:
            raise TypeError(f"{type(message).__name__} is not supported: the model takes system, user and AI text")
        converted.append(ChatMessage(role=role, content=message.text))
    return tuple(converted)


def _metadata(call: ModelCall) -> dict[str, Any]:
    return {"model_name": call.engine.model, "finish_reason": call.finish_reason, "request_id": call.request_id}


def _usage(call: ModelCall) -> UsageMetadata:
    prompt, output = len(call.prompt_token_ids), len(call.output_token_ids)
    return UsageMetadata(input_tokens=prompt, output_tokens=output, total_tokens=prompt + output)


def runnable_skill(
    runnable: Runnable[Any, Any] | Callable[[Agent], Runnable[Any, Any]],
    *,
    input_model: type[BaseModel],
    output_model: type[BaseModel],
    name: str | None = None,
    price: int | None = None,
    description: str | None = None,
) -> Callable[[Agent, BaseModel], Any]:
    """Turns a LangChain runnable into a skill, to be assigned in an agent's class body.

    The runnable receives the request as a dict (``input_model.model_dump()``, what prompt templates take). Its
    result becomes the output model: an instance passes as is, a dict is validated, and text (a string or a
    message) fills the output model's only field.

    Example:
        >>> class Docs(Agent):
        ...     name, price, model = "docs", to_wei_open("0.01"), "tiny-docs"
        ...     explain = runnable_skill(
        ...         lambda agent: PROMPT | agent.chat_model | StrOutputParser(),
        ...         input_model=Topic, output_model=Explanation,
        ...     )

    Args:
        runnable: the runnable, or a function of the agent instance that builds it (to use ``agent.chat_model``,
            whose calls are recorded; a runnable over another model is not).
        input_model: the skill's input model.
        output_model: the skill's output model.
        name: the skill's public name; the attribute's name by default.
        price: a price override in wei.
        description: what it does.
    """

    async def run(self: Agent, request: BaseModel) -> BaseModel:
        chain = runnable if isinstance(runnable, Runnable) else runnable(self)
        return _to_output(await chain.ainvoke(request.model_dump()), output_model)

    # Real classes, not strings: the skill check resolves these annotations outside this module.
    run.__annotations__ = {"request": input_model, "return": output_model}
    return skill(name=name, price=price, description=description or "")(run)


def _to_output(result: Any, output_model: type[BaseModel]) -> BaseModel:
    if isinstance(result, output_model):
        return result
    text = result.text if isinstance(result, BaseMessage) else result
    fields = list(output_model.model_fields)
    try:
        if isinstance(result, Mapping):
            return output_model.model_validate(dict(result))
        if isinstance(text, str) and len(fields) == 1:
            return output_model.model_validate({fields[0]: text})
    except ValidationError as exc:
        raise SkillOutputError("runnable", output_model.__name__, f"a value that does not validate: {exc}") from exc
    raise SkillOutputError("runnable", output_model.__name__, type(result).__name__)
