"""The :class:`Agent` base class: writing an agent is writing a Python class."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType, TracebackType
from typing import Any, ClassVar, Self

from pydantic import BaseModel

from .backend import Backend
from .errors import AgentDefinitionError, SkillOutputError, UnknownSkillError
from .langchain import RecordedChatModel
from .protocol import ModelCall, SamplingParams
from .recording import LLM, record_calls
from .skills import Skill, collect_skills

__all__ = ["Agent", "SkillResult"]


@dataclass(frozen=True, kw_only=True)
class SkillResult:
    """One answered request: the output, and every model call it drew on (what the receipt is built from).

    Example:
        >>> result = await agent.invoke("summarize", b'{"text": "..."}')      # doctest: +SKIP
        >>> result.output.summary, [call.output_token_ids for call in result.calls], result.price

    Attributes:
        skill: the skill's name.
        output: the skill's output model instance.
        calls: the recorded model calls, in the order they finished.
        price: what the request costs, in wei.
    """

    skill: str
    output: BaseModel
    calls: tuple[ModelCall, ...]
    price: int


class Agent:
    """Base class of agents: set ``name``, ``price`` (wei) and ``model``, and mark ``async`` methods with ``@skill``.

    Skills are collected and their signatures checked when the subclass is created. Inside a skill, ``self.llm``
    and ``self.chat_model`` (LangChain) reach the model; each of their calls is recorded for the request's receipt.

    Example:
        >>> class Summarizer(Agent):
        ...     name = "summarizer"
        ...     price = to_wei_open("0.01")          # per request
        ...     model = "tiny-docs"                   # served by the configured vLLM
        ...
        ...     @skill
        ...     async def summarize(self, req: SummarizeIn) -> SummarizeOut:
        ...         text = await self.llm.complete(prompt(req), max_tokens=128, temperature=0)
        ...         return SummarizeOut(summary=text)
        >>> async with Summarizer(backend) as agent:                         # doctest: +SKIP
        ...     result = await agent.invoke("summarize", b'{"text": "..."}')

    Args:
        backend: the inference backend the agent's model runs on.
        sampling: default sampling parameters of ``self.llm`` and ``self.chat_model``.

    Attributes:
        skills: the class's skills by name, inherited ones included.
    """

    name: ClassVar[str]
    price: ClassVar[int]
    model: ClassVar[str]
    skills: ClassVar[Mapping[str, Skill]] = MappingProxyType({})

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _check_attributes(cls)
        skills: dict[str, Skill] = {}
        for base in reversed(cls.__mro__[1:]):
            skills.update(getattr(base, "skills", {}))
        skills.update(collect_skills(cls))
        cls.skills = MappingProxyType(skills)

    def __init__(self, backend: Backend, *, sampling: SamplingParams | None = None) -> None:
        missing = [attribute for attribute in ("name", "price", "model") if not hasattr(type(self), attribute)]
        if missing:
            raise AgentDefinitionError(type(self).__qualname__, missing[0], "must be set on the class")
        self.backend = backend
        self.llm = LLM(backend, self.model, defaults=sampling)
        self._chat_model: RecordedChatModel | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__qualname__} {self.name!r} model={self.model!r} skills={sorted(self.skills)}>"

    @property
    def chat_model(self) -> RecordedChatModel:
        """A LangChain chat model on this agent's backend; its calls are recorded like those of ``self.llm``."""
        if self._chat_model is None:
            self._chat_model = RecordedChatModel(llm=self.llm, sampling=self.llm.defaults)
        return self._chat_model

    async def startup(self) -> None:
        """Hook run once before the agent serves (load an index, warm a cache). Model calls here are not recorded:
        use ``self.backend`` directly, or ``record_calls()``."""

    async def shutdown(self) -> None:
        """Hook run once after the agent has served its last request."""

    async def __aenter__(self) -> Self:
        await self.startup()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.shutdown()

    def price_of(self, skill_name: str) -> int:
        """The price of one request to ``skill_name`` in wei: its override, else the agent's price.

        Raises:
            UnknownSkillError: the agent has no such skill.
        """
        spec = self._skill(skill_name)
        return self.price if spec.price is None else spec.price

    async def invoke(self, skill_name: str, payload: bytes | str | Mapping[str, Any] | BaseModel) -> SkillResult:
        """Runs one request: validates ``payload``, calls the skill with every model call recorded, checks the output.

        Concurrent invocations each get their own record.

        Args:
            skill_name: the skill's public name.
            payload: the request body as JSON, a mapping or an input model instance.

        Raises:
            UnknownSkillError: the agent has no such skill.
            SkillInputError: the payload does not validate.
            SkillOutputError: the skill returned something other than its output model.
            BackendError: a model call failed.
        """
        spec = self._skill(skill_name)
        request = spec.parse_input(payload)
        with record_calls() as log:
            output = await getattr(self, spec.method)(request)
        if not isinstance(output, spec.output_model):
            raise SkillOutputError(spec.name, spec.output_model.__name__, type(output).__name__)
        return SkillResult(skill=spec.name, output=output, calls=log.calls, price=self.price_of(skill_name))

    def _skill(self, skill_name: str) -> Skill:
        spec = self.skills.get(skill_name)
        if spec is None:
            raise UnknownSkillError(self.name, skill_name, tuple(sorted(self.skills)))
        return spec


def _check_attributes(cls: type[Agent]) -> None:
    """Checks the class attributes a subclass sets; missing ones are only an error when it is instantiated."""
    owner = cls.__qualname__
    for attribute in ("name", "model"):
        value = vars(cls).get(attribute)
        if value is not None and (not isinstance(value, str) or not value):
            raise AgentDefinitionError(owner, attribute, f"must be a non-empty str, got {value!r}")
    price = vars(cls).get("price")
    if price is not None and (isinstance(price, bool) or not isinstance(price, int) or price < 0):
        raise AgentDefinitionError(owner, "price", f"must be a non-negative int in wei (to_wei_open), got {price!r}")
