"""The agent SDK's cost on top of vLLM, against calling vLLM's HTTP API directly with aiohttp in the same run.

Run: ``python -m bench.agents_backend`` (or ``python -m bench --only agents_backend``). It builds the tiny model,
starts one vLLM CPU server and measures, call by call and interleaved (so drift of a shared machine hits every
variant alike):

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
from bench.report import BarChart, Baseline, Better, Figure, Section, Table
from bench.runner import percentiles, run_alone

SUITE = "agents_backend"
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


async def main() -> Section:
    with tempfile.TemporaryDirectory(prefix="bench-tiny-") as directory:
        model_dir = build_tiny_model(Path(directory), seed=0)
        async with VLLMServer(model_dir, name=MODEL, kv_cache_gib=1) as server:
            overhead = await measure_overhead(server)
            scores = await measure_score(server)

    baseline_name = "raw aiohttp, same body"
    baseline_p50 = percentiles(overhead[baseline_name])[0]
    latency = Table(
        title=f"Per-call latency against vLLM on the CPU ({CALLS} interleaved calls, {OUTPUT_TOKENS} tokens)",
        columns=("variant", "p50 ms", "p99 ms", "p50 over same-body raw ms"),
        rows=[
            (name, p50 * 1e3, p99 * 1e3, (p50 - baseline_p50) * 1e3)
            for name, (p50, p99) in ((name, percentiles(samples)) for name, samples in overhead.items())
        ],
    )
    paired = [ours - raw for ours, raw in zip(overhead["VLLMBackend.complete"], overhead[baseline_name], strict=True)]
    generation = [generated for generated, _ in scores]
    scoring = [scored for _, scored in scores]
    ratios = [scored / generated for generated, scored in scores]
    verifier = Table(
        title=f"Verifier's cost: score() against generating the same {SCORED_TOKENS} tokens ({SCORE_PAIRS} outputs)",
        columns=("generate p50 ms", "score p50 ms", "score / generate p50", "score / generate max"),
        rows=[
            (
                statistics.median(generation) * 1e3,
                statistics.median(scoring) * 1e3,
                statistics.median(ratios),
                max(ratios),
            )
        ],
    )
    raw = Baseline(name=f"{baseline_name}, p50", value=baseline_p50 * 1e3)
    figures = [
        *(
            Figure(
                name=f"{variant}, p50 ({OUTPUT_TOKENS} tokens)",
                value=percentiles(overhead[variant])[0] * 1e3,
                unit="ms",
                baseline=raw,
                better=Better.LOWER,
            )
            for variant in ("VLLMBackend.complete", "Agent.invoke (1 call)")
        ),
        Figure(
            name=f"score() of a {SCORED_TOKENS}-token output, p50",
            value=statistics.median(scoring) * 1e3,
            unit="ms",
            baseline=Baseline(name="generating it, p50", value=statistics.median(generation) * 1e3),
            better=Better.LOWER,
        ),
    ]
    return Section(
        suite=SUITE,
        title="The agent SDK's cost on top of vLLM, and the verifier's score() against generation",
        description=(
            "One vLLM CPU server of the tiny model. Calls of each variant are interleaved, so that drift of a "
            "shared machine hits every variant alike: a bare OpenAI completion request decoded with aiohttp, the "
            "exact body VLLMBackend sends (token ids, logprobs by id; the baseline), VLLMBackend.complete (that "
            "request plus parsing and the ModelCall record) and Agent.invoke of a one-call skill (input validation, "
            f"the recorded self.llm, output check). Then score(), the teacher-forced re-scoring of {SCORED_TOKENS} "
            "sampled tokens a verifier runs, against generating them."
        ),
        figures=figures,
        tables=[
            latency,
            Table(
                title="VLLMBackend.complete minus raw same-body call, paired per call",
                columns=("p50 ms",),
                rows=[(statistics.median(paired) * 1e3,)],
            ),
            verifier,
        ],
        charts=[BarChart.of("latency", "Latency p50 beside its baseline in the same run", figures)],
    )


if __name__ == "__main__":
    run_alone(SUITE, main)
