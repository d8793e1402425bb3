"""Skills: the typed, priced methods an agent sells.

A skill is an ``async`` method taking one pydantic model and returning one. :func:`skill` only marks the method;
:class:`~agents.agent.Agent` collects the marks when the class is created and checks each signature there, so a
malformed agent fails on import with a message naming the method, not at its first paid request.
"""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypeVar, overload

from pydantic import BaseModel, ValidationError

from .errors import AgentDefinitionError, SkillInputError

__all__ = ["Skill", "skill"]

_MARK = "__staked_skill__"
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")  # a URL path segment: POST /v1/skills/{name}

_F = TypeVar("_F", bound=Callable[..., Awaitable[Any]])


@dataclass(frozen=True, kw_only=True)
class _Mark:
    name: str | None
    price: int | None
    description: str | None


@overload
def skill(method: _F, /) -> _F: ...


@overload
def skill(
    *, name: str | None = None, price: int | None = None, description: str | None = None
) -> Callable[[_F], _F]: ...


def skill(
    method: _F | None = None,
    /,
    *,
    name: str | None = None,
    price: int | None = None,
    description: str | None = None,
) -> _F | Callable[[_F], _F]:
    """Marks an ``async`` method of an :class:`~agents.agent.Agent` subclass as a skill.

    Usable bare (``@skill``) or with options (``@skill(price=to_wei_open("0.05"))``).

    Args:
        method: the method, when used bare.
        name: the skill's public name (its URL segment); the method's name by default.
        price: the price per request in wei, overriding the agent's ``price``.
        description: what the skill does, for the agent card; the docstring's first paragraph by default.
    """
    mark = _Mark(name=name, price=price, description=description)

    def decorate(function: _F) -> _F:
        setattr(function, _MARK, mark)
        return function

    return decorate(method) if method is not None else decorate


@dataclass(frozen=True, kw_only=True)
class Skill:
    """One skill of an agent class, as the runtime serves it.

    Example:
        >>> Summarizer.skills["summarize"].input_schema["title"]      # doctest: +SKIP
        'SummarizeIn'

    Attributes:
        name: the public name.
        method: the name of the method on the agent class.
        input_model: the pydantic model of the request body.
        output_model: the pydantic model of the answer.
        price: the price override in wei, or ``None`` for the agent's price.
        description: what it does.
    """

    name: str
    method: str
    input_model: type[BaseModel]
    output_model: type[BaseModel]
    price: int | None
    description: str

    @cached_property
    def input_schema(self) -> dict[str, Any]:
        """The JSON schema of the request body (for the agent card and the OpenAPI document)."""
        return self.input_model.model_json_schema()

    @cached_property
    def output_schema(self) -> dict[str, Any]:
        """The JSON schema of the answer."""
        return self.output_model.model_json_schema()

    def parse_input(self, payload: bytes | str | Mapping[str, Any] | BaseModel) -> BaseModel:
        """Validates a request body (JSON text, a mapping or a model instance) into the input model.

        Raises:
            SkillInputError: it does not validate.
        """
        try:
            if isinstance(payload, bytes | str):
                return self.input_model.model_validate_json(payload)
            if isinstance(payload, BaseModel):
                payload = payload.model_dump()
            return self.input_model.model_validate(payload)
        except ValidationError as exc:
            raise SkillInputError(self.name, [dict(error) for error in exc.errors(include_url=False)]) from exc


def collect_skills(owner: type) -> dict[str, Skill]:
    """The skills marked in ``owner``'s own namespace, checked.

    Raises:
        AgentDefinitionError: a marked method is not ``async``, does not take exactly one pydantic model, does not
            return one, has an invalid name or price, or two skills share a name.
    """
    found: dict[str, Skill] = {}
    for attribute, value in vars(owner).items():
        mark = getattr(value, _MARK, None)
        if not isinstance(mark, _Mark):
            continue
        spec = _check(owner.__qualname__, attribute, value, mark)
        if spec.name in found:
            raise AgentDefinitionError(owner.__qualname__, attribute, f"skill name {spec.name!r} is already taken")
        found[spec.name] = spec
    return found


def _check(agent: str, attribute: str, method: Callable[..., Any], mark: _Mark) -> Skill:
    def fail(reason: str) -> AgentDefinitionError:
        return AgentDefinitionError(agent, attribute, reason)

    if not inspect.iscoroutinefunction(method):
        raise fail("a skill must be an `async def` method")
    parameters = list(inspect.signature(method).parameters.values())
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if len(parameters) != 2 or any(p.kind not in positional or p.default is not p.empty for p in parameters):
        raise fail("a skill takes exactly one argument besides self: its input model, e.g. `(self, req: In)`")
    try:
        hints = typing.get_type_hints(method)
    except NameError as exc:  # a forward reference to a model defined after the agent
        raise fail(f"cannot resolve its annotations ({exc}); define the models before the agent") from exc
    input_model, output_model = hints.get(parameters[1].name), hints.get("return")
    if not _is_model(input_model):
        raise fail(f"its argument must be annotated with a pydantic model, not {input_model!r}")
    if not _is_model(output_model):
        raise fail(f"it must return a pydantic model, not {output_model!r}")
    name = mark.name or attribute
    if not _NAME.fullmatch(name):
        raise fail(f"skill name {name!r} must be a letter then up to 63 letters, digits, '_' or '-'")
    if mark.price is not None and (isinstance(mark.price, bool) or not isinstance(mark.price, int) or mark.price < 0):
        raise fail(f"price must be a non-negative int in wei (see staking.to_wei_open), got {mark.price!r}")
    description = mark.description if mark.description is not None else _first_paragraph(method)
    return Skill(
        name=name,
        method=attribute,
        input_model=input_model,
        output_model=output_model,
        price=mark.price,
        description=description,
    )


def _is_model(annotation: object) -> typing.TypeGuard[type[BaseModel]]:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _first_paragraph(method: Callable[..., Any]) -> str:
    return (inspect.getdoc(method) or "").split("\n\n", 1)[0].replace("\n", " ").strip()
