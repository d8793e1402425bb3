"""The one interface every inference backend implements, so that agents, the runtime and validators never care
whether the model runs behind vLLM's HTTP server, in this process, or in a test double.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncGenerator, Sequence
from types import TracebackType
from typing import Self

from .protocol import ChatMessage, EngineInfo, ModelCall, SamplingParams, Score, StreamDelta

__all__ = ["Backend", "Prompt"]

#: A completion prompt: text (tokenized by the engine, special tokens added) or exact token ids (used as given).
Prompt = str | Sequence[int]


class Backend(abc.ABC):
    """An inference engine that generates, streams and scores, and reports a :class:`ModelCall` for every output.

    Implementations translate their own failures into :class:`~agents.errors.BackendError` subclasses at one
    boundary; callers see nothing else.

    Example:
        >>> async with VLLMBackend("http://127.0.0.1:8000", dtype="float32") as backend:   # doctest: +SKIP
        ...     call = await backend.complete("tiny", "def f():", SamplingParams(temperature=0))
        ...     score = await backend.score("tiny", call.prompt_token_ids, call.output_token_ids)
    """

    @abc.abstractmethod
    async def engine(self, model: str) -> EngineInfo:
        """The identity of the engine serving ``model``.

        Raises:
            UnknownModelError: the backend does not serve ``model``.
            BackendError: the backend failed.
        """

    @abc.abstractmethod
    async def complete(self, model: str, prompt: Prompt, params: SamplingParams) -> ModelCall:
        """Generates a completion of ``prompt``.

        Args:
            model: the served model name.
            prompt: text or token ids.
            params: sampling parameters; the call records them as given.

        Raises:
            ContextLengthError: prompt plus ``max_tokens`` exceed the model's context.
            BackendError: any other failure.
        """

    @abc.abstractmethod
    async def chat(self, model: str, messages: Sequence[ChatMessage], params: SamplingParams) -> ModelCall:
        """Generates the assistant's next message, rendering ``messages`` with the model's chat template.

        Raises:
            ContextLengthError: the rendered prompt plus ``max_tokens`` exceed the model's context.
            BackendError: any other failure.
        """

    @abc.abstractmethod
    def stream_complete(self, model: str, prompt: Prompt, params: SamplingParams) -> AsyncGenerator[StreamDelta, None]:
        """Like :meth:`complete`, piece by piece; the last delta carries the finished :class:`ModelCall`."""

    @abc.abstractmethod
    def stream_chat(
        self, model: str, messages: Sequence[ChatMessage], params: SamplingParams
    ) -> AsyncGenerator[StreamDelta, None]:
        """Like :meth:`chat`, piece by piece; the last delta carries the finished :class:`ModelCall`."""

    @abc.abstractmethod
    async def score(
        self, model: str, prompt_token_ids: Sequence[int], output_token_ids: Sequence[int], *, top: int = 1
    ) -> Score:
        """Re-scores an output by teacher forcing: the model reads prompt and output in one pass and reports, for
        every output token, its log-probability, its rank and the arg-max at that position.

        This is what a validator runs: one prefill, no sampling, so it costs a fraction of generating the output.

        Args:
            model: the served model name.
            prompt_token_ids: the exact prompt ids of the recorded call.
            output_token_ids: the exact output ids to score.
            top: how many of the most likely tokens the engine ranks per position (at least 1, for the arg-max).

        Raises:
            ContextLengthError: prompt and output together (plus one position) exceed the model's context.
            BackendError: any other failure.
        """

    @abc.abstractmethod
    async def tokenize(self, model: str, text: str, *, add_special_tokens: bool = True) -> tuple[int, ...]:
        """The token ids the engine makes of ``text``."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Releases connections or the engine."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
