"""Exceptions of the agent SDK, under :class:`staking.errors.StakedError`.

The tree::

    StakedError
    └── AgentError
        ├── AgentDefinitionError (TypeError)       an Agent subclass or one of its skills is malformed; raised
        │                                          when the class is created, not at the first request
        ├── UnknownSkillError (LookupError)        no skill of that name
        ├── SkillInputError (ValueError)           the payload does not validate against the skill's input model
        ├── SkillOutputError (TypeError)           a skill returned something other than its output model
        ├── NotRecordingError (RuntimeError)       a model call outside a skill invocation or ``record_calls()``
        ├── ServerStartError                       a vLLM server did not become ready; ``log`` holds its tail
        ├── ReplayError                            a replay asked for something its record does not hold
        │   └── ReplayMismatchError (ValueError)       a model call differs from the recorded one
        └── BackendError                           an inference backend failed
            ├── BackendUnavailableError (ConnectionError)   the server does not answer (after bounded retries)
            ├── BackendTimeoutError (TimeoutError)          no answer within the timeout
            ├── UnknownModelError (LookupError)             the server does not serve that model
            ├── ContextLengthError (ValueError)             prompt plus output exceed the model's context
            ├── RequestRejectedError (ValueError)           any other refusal of the request (HTTP 4xx)
            └── EngineFailedError                           the engine failed or answered nonsense (HTTP 5xx)

Foreign errors (aiohttp, vLLM's error envelopes, vLLM's in-process exceptions) are translated at one boundary per
backend with ``raise ... from exc``.
"""

from __future__ import annotations

from typing import Any

from staking.errors import StakedError

__all__ = [
    "AgentDefinitionError",
    "AgentError",
    "BackendError",
    "BackendTimeoutError",
    "BackendUnavailableError",
    "ContextLengthError",
    "EngineFailedError",
    "NotRecordingError",
    "RequestRejectedError",
    "ServerStartError",
    "SkillInputError",
    "SkillOutputError",
    "UnknownModelError",
    "UnknownSkillError",
]


class AgentError(StakedError):
    """Root of the agent SDK's errors."""


class AgentDefinitionError(AgentError, TypeError):
    """Member ``member`` (a skill or a class attribute) of agent class ``agent`` is malformed: ``reason`` says how."""

    def __init__(self, agent: str, member: str, reason: str) -> None:
        super().__init__(f"{agent}.{member}: {reason}")
        self.agent = agent
        self.member = member
        self.reason = reason


class UnknownSkillError(AgentError, LookupError):
    """Agent ``agent`` has no skill ``skill``; ``known`` lists the ones it has."""

    def __init__(self, agent: str, skill: str, known: tuple[str, ...]) -> None:
        super().__init__(f"agent {agent!r} has no skill {skill!r} (skills: {', '.join(known) or 'none'})")
        self.agent = agent
        self.skill = skill
        self.known = known


class SkillInputError(AgentError, ValueError):
    """The payload for skill ``skill`` failed validation; ``errors`` is pydantic's list of problems."""

    def __init__(self, skill: str, errors: list[dict[str, Any]]) -> None:
        details = "; ".join(f"{'.'.join(map(str, e.get('loc', ()))) or '<root>'}: {e.get('msg')}" for e in errors)
        super().__init__(f"invalid input for skill {skill!r}: {details}")
        self.skill = skill
        self.errors = errors


class SkillOutputError(AgentError, TypeError):
    """Skill ``skill`` returned a ``returned`` where its signature promised an ``expected``."""

    def __init__(self, skill: str, expected: str, returned: str) -> None:
        super().__init__(f"skill {skill!r} returned {returned}, its signature promises {expected}")
        self.skill = skill
        self.expected = expected
        self.returned = returned


class NotRecordingError(AgentError, RuntimeError):
    """A model call was made where nothing records it.

    Every model call of an agent must end up in the record its receipt is built from; calls from outside a skill
    invocation (say, a warm-up in a startup hook) go through ``record_calls()`` or straight to the backend.
    """

    def __init__(self) -> None:
        super().__init__(
            "model call outside a skill invocation: use Agent.invoke, or wrap the call in record_calls(), "
            "or call the backend directly for unrecorded work such as a warm-up"
        )


class ServerStartError(AgentError):
    """The vLLM server for ``model`` did not become ready: ``reason`` says why, ``log`` holds its output's tail."""

    def __init__(self, model: str, reason: str, log: str) -> None:
        super().__init__(f"vLLM serving {model} did not start: {reason}\n--- vLLM log (tail) ---\n{log}")
        self.model = model
        self.reason = reason
        self.log = log


class BackendError(AgentError):
    """An inference backend failed; ``url`` names it (an HTTP base URL, or ``inprocess:<model>``)."""

    def __init__(self, url: str, message: str) -> None:
        super().__init__(f"{url}: {message}")
        self.url = url


class BackendUnavailableError(BackendError, ConnectionError):
    """The backend at ``url`` did not answer, or answered 503, ``attempts`` times."""

    def __init__(self, url: str, reason: str, attempts: int) -> None:
        super().__init__(url, f"inference backend unavailable after {attempts} attempt(s): {reason}")
        self.reason = reason
        self.attempts = attempts


class BackendTimeoutError(BackendError, TimeoutError):
    """The backend at ``url`` did not finish within ``timeout`` seconds.

    Not retried: the engine may still be generating, and a generation is too costly to start twice blindly.
    """

    def __init__(self, url: str, timeout: float) -> None:
        super().__init__(url, f"no answer within {timeout:g} s")
        self.timeout = timeout


class UnknownModelError(BackendError, LookupError):
    """The backend at ``url`` serves no model named ``model``; ``served`` lists the ones it does, when known."""

    def __init__(self, url: str, model: str, served: tuple[str, ...] = ()) -> None:
        known = f" (it serves: {', '.join(served)})" if served else ""
        super().__init__(url, f"model {model!r} is not served{known}")
        self.model = model
        self.served = served


class ContextLengthError(BackendError, ValueError):
    """The prompt (plus the requested output) does not fit the model's context; ``detail`` is the engine's word."""

    def __init__(self, url: str, model: str, detail: str) -> None:
        super().__init__(url, f"prompt too long for model {model!r}: {detail}")
        self.model = model
        self.detail = detail


class RequestRejectedError(BackendError, ValueError):
    """The backend refused the request with HTTP ``status``; ``detail`` is the engine's message."""

    def __init__(self, url: str, status: int, detail: str) -> None:
        super().__init__(url, f"request rejected ({status}): {detail}")
        self.status = status
        self.detail = detail


class EngineFailedError(BackendError):
    """The engine failed (HTTP ``status``, 0 when no status applies) or answered something unreadable."""

    def __init__(self, url: str, status: int, detail: str) -> None:
        super().__init__(url, f"engine failed ({status}): {detail}" if status else f"engine failed: {detail}")
        self.status = status
        self.detail = detail
