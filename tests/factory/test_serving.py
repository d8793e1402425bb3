"""The trained model directory serves on vLLM CPU as is, and its greedy answers draw on its datanet."""

from __future__ import annotations

import asyncio

from agents import SamplingParams, VLLMServer
from agents.attribution import AttributionIndex, Datanet, load_tokenizer
from agents.factory import TrainingResult

MODEL = "statements"


async def test_vllm_serves_the_trained_model_and_its_greedy_answers_are_attributed(
    trained: TrainingResult, datanet: Datanet
) -> None:
    index = AttributionIndex.open(trained.directory.parent / "index", trained.directory)
    tokenizer = load_tokenizer(trained.directory)
    greedy = SamplingParams(max_tokens=32, temperature=0)
    async with (
        VLLMServer(trained.directory, name=MODEL, kv_cache_gib=1, ready_timeout=900) as server,
        server.backend(timeout=120) as backend,
    ):
        for contribution in datanet:
            prompt = contribution.text.splitlines()[0]  # a topic's title: 'The "while" statement'
            call = await backend.complete(MODEL, prompt, greedy)
            assert list(call.prompt_token_ids) == tokenizer.encode(prompt).ids  # the same tokenizer, BOS and all
            attribution = await asyncio.to_thread(index.attribute, call.output_token_ids)
            assert attribution.spans, f"{prompt!r} -> {call.output!r} matches nothing in the datanet"
            assert sum(weight.bps for weight in attribution.weights) == 10_000
