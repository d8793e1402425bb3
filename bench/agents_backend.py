"""The agent SDK's cost on top of vLLM, against calling vLLM's HTTP API directly with aiohttp in the same run.

Run: ``python -c "import asyncio; from bench import agents_backend; asyncio.run(agents_backend.main())"``. It builds
the tiny model, starts one vLLM CPU server and measures, call by call and interleaved (so drift of a shared machine
hits every variant alike):

- ``raw, plain``: a bare OpenAI completion request (no token ids, no logprobs), JSON decoded;
- ``raw, same body``: the exact body :class:`~agents.VLLMBackend` sends (token ids, logprobs by id);
- ``VLLMBackend.complete``: that request plus parsing and the :class:`~agents.ModelCall` record;
- ``Agent.invoke``: a one-call skill (input validation, the recorded ``self.llm``, output check).

Then the verifier's cost: :meth:`~agents.VLLMBackend.score` of an output against generating it.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from pydantic import BaseModel

from agents import Agent, SamplingParams, VLLMServer, build_tiny_model, skill

MODEL = "tiny-bench"
PROMPT = "The for statement is used to iterate over the elements of a sequence"
CALLS = 60  # per variant, interleaved
WARMUP = 5
OUTPUT_TOKENS = 8  # short outputs: the engine's time per call is small, so client overhead shows
SCORE_PAIRS = 15
SCORED_TOKENS = 128


class _In(BaseModel):
    text: str


class _Out(BaseModel):
    text: str


class _Echo(Agent):
    name = "bench"
    price = 0
    model = MODEL

    @skill
    async def complete(self, req: _In) -> _Out:
        return _Out(text=await self.llm.complete(req.text, max_tokens=OUTPUT_TOKENS, temperature=0.0))


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


async def _timed(call: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await call()
    return time.perf_counter() - started


async def measure_overhead(server: VLLMServer) -> dict[str, list[float]]:
    """Seconds per call of each variant, ``CALLS`` each, interleaved."""
    params = SamplingParams(max_tokens=OUTPUT_TOKENS, temperature=0.0)
    plain = {"model": MODEL, "prompt": PROMPT, "max_tokens": OUTPUT_TOKENS, "temperature": 0.0}
    same = {
        **plain,
        "top_p": 1.0,
        "top_k": 0,
        "min_p": 0.0,
        "seed": None,
        "stop": [],
        "repetition_penalty": 1.0,
        "presence_penalty": 0.0,
        "frequency_penalty": 0.0,
        "logprobs": 0,
        "return_token_ids": True,
        "return_tokens_as_token_ids": True,
    }
    url = f"{server.url}/v1/completions"
    async with aiohttp.ClientSession() as session, server.backend() as backend:
        agent = _Echo(backend)

        async def raw(body: dict[str, Any]) -> Any:
            async with session.post(url, json=body) as response:
                response.raise_for_status()
                return await response.json()

        variants: dict[str, Callable[[], Awaitable[Any]]] = {
            "raw aiohttp, plain body": lambda: raw(plain),
            "raw aiohttp, same body": lambda: raw(same),
            "VLLMBackend.complete": lambda: backend.complete(MODEL, PROMPT, params),
            "Agent.invoke (1 call)": lambda: agent.invoke("complete", {"text": PROMPT}),
        }
        for _ in range(WARMUP):
            for call in variants.values():
                await call()
        samples: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(CALLS):
            for name, call in variants.items():
                samples[name].append(await _timed(call))
    return samples


async def measure_score(server: VLLMServer) -> list[tuple[float, float]]:
    """(generation seconds, score seconds) for ``SCORE_PAIRS`` seeded samples of ``SCORED_TOKENS`` tokens."""
    pairs = []
    async with server.backend() as backend:
        for index in range(SCORE_PAIRS):
            params = SamplingParams(max_tokens=SCORED_TOKENS, temperature=0.8, seed=index)
            call = await backend.complete(MODEL, PROMPT, params)
            started = time.perf_counter()
            await backend.score(MODEL, call.prompt_token_ids, call.output_token_ids)
            pairs.append((call.duration_s, time.perf_counter() - started))
    return pairs


async def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-tiny-") as directory:
        model_dir = build_tiny_model(Path(directory), seed=0)
        async with VLLMServer(model_dir, name=MODEL, kv_cache_gib=1) as server:
            overhead = await measure_overhead(server)
            scores = await measure_score(server)

    print(f"\nagents: per-call latency against vLLM on the CPU ({CALLS} interleaved calls, {OUTPUT_TOKENS} tokens)")
    baseline_p50 = _percentiles(overhead["raw aiohttp, same body"])[0]
    print(f"  {'variant':<26} {'p50 ms':>8} {'p99 ms':>8} {'p50 over same-body raw':>24}")
    for name, samples in overhead.items():
        p50, p99 = _percentiles(samples)
        print(f"  {name:<26} {p50 * 1e3:8.2f} {p99 * 1e3:8.2f} {(p50 - baseline_p50) * 1e3:+21.2f} ms")
    paired = [
        ours - raw
        for ours, raw in zip(overhead["VLLMBackend.complete"], overhead["raw aiohttp, same body"], strict=True)
    ]
    print(f"  VLLMBackend overhead per call, paired: p50 {statistics.median(paired) * 1e3:+.2f} ms")

    generation = [pair[0] for pair in scores]
    scoring = [pair[1] for pair in scores]
    ratios = [score / generated for generated, score in scores]
    print(
        f"\nagents: verifier's cost, score() against generating the same {SCORED_TOKENS} tokens ({SCORE_PAIRS} outputs)"
    )
    print(f"  generate  p50 {statistics.median(generation) * 1e3:8.1f} ms")
    print(f"  score     p50 {statistics.median(scoring) * 1e3:8.1f} ms")
    print(f"  score / generate: p50 {statistics.median(ratios):.3f}, max {max(ratios):.3f}")
