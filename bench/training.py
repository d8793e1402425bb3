"""The model factory's default recipe: training throughput, time and final loss, and how much of the trained model's
greedy output attribution finds in its data, against the offline tiny model in the same run.

Run: ``python -c "import asyncio; from bench import training; asyncio.run(training.main())"``. Training takes most of
the time: 900 steps of 2,048 tokens, 16 minutes at the 1,900 tokens/s measured on a two-core machine busy with other
test suites (a few minutes on free cores); then two vLLM servers start one after the other. It is what
``staked model train --datanet DIR --out MODEL_DIR`` does on the demo datanet: CPython's reference topics
(``pydoc_data.topics``) credited in turn to three contributors, as the runtime's tests build it.

Then it builds the attribution index of the datanet with the trained tokenizer, serves the model with vLLM CPU and
sends greedy completions (``OUTPUT_TOKENS`` tokens) of held-out prompts: the first ``PROMPT_WORDS`` words of
``PROMPTS`` passages (paragraphs of at least ``MIN_PASSAGE_CHARS`` characters) of the data, chosen at random with a
fixed seed. Training never sees a passage's beginning as a prompt followed by an answer: it sees the data as a
stream. For each answer it reports whether attribution found at least one span (of the index's default minimum
length) and which share of the output tokens the spans cover. The baseline is the offline tiny model
(:func:`agents.build_tiny_model`, bigram statistics of the same corpus, no training), asked the same prompts and
attributed with an index built with its own tokenizer.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from pydoc_data.topics import topics

import numpy as np
from eth_account import Account
from eth_utils.crypto import keccak

from agents import SamplingParams, VLLMServer, build_tiny_model
from agents.attribution import Attribution, AttributionIndex, Contribution, Datanet
from agents.factory import Progress, TrainingRecipe, train_model

CONTRIBUTORS = 3
PROMPTS = 100
PROMPT_WORDS = 8
MIN_PASSAGE_CHARS = 200
OUTPUT_TOKENS = 48
CONCURRENCY = 8
SEED = 0


@dataclass(frozen=True)
class Answers:
    """How attribution sees one model's greedy answers."""

    name: str
    attributed: float  # share of answers with at least one span
    coverage: float  # mean share of output tokens inside a span
    longest: float  # mean longest span, in tokens


def demo_datanet(directory: Path) -> Datanet:
    """The reference topics, in key order, credited in turn to three contributors."""
    contributors = [Account.from_key(keccak(text=f"contributor {n}")).address for n in range(CONTRIBUTORS)]
    net = Datanet.create(directory, name="python-docs")
    net.add(
        Contribution(text=text, contributor=contributor)
        for (_, text), contributor in zip(sorted(topics.items()), itertools.cycle(contributors))
    )
    return net


def held_out_prompts(net: Datanet) -> list[str]:
    """The first words of ``PROMPTS`` passages drawn at random (seeded) from the datanet's paragraphs."""
    passages = [
        paragraph.strip()
        for contribution in net
        for paragraph in re.split(r"\n\s*\n", contribution.text)
        if len(paragraph.strip()) >= MIN_PASSAGE_CHARS
    ]
    chosen = np.random.default_rng(SEED).choice(len(passages), size=min(PROMPTS, len(passages)), replace=False)
    return [" ".join(passages[n].split()[:PROMPT_WORDS]) for n in sorted(chosen)]


async def attribute_answers(name: str, model_dir: Path, index: AttributionIndex, prompts: list[str]) -> Answers:
    """Serves ``model_dir`` with vLLM, asks for greedy completions of ``prompts`` and attributes them."""
    greedy = SamplingParams(max_tokens=OUTPUT_TOKENS, temperature=0)
    slots = asyncio.Semaphore(CONCURRENCY)
    async with (
        VLLMServer(model_dir, name=name, kv_cache_gib=1, ready_timeout=900) as server,
        server.backend(timeout=300) as backend,
    ):

        async def answer(prompt: str) -> tuple[int, Attribution]:
            async with slots:
                call = await backend.complete(name, prompt, greedy)
            return len(call.output_token_ids), await asyncio.to_thread(index.attribute, call.output_token_ids)

        results = await asyncio.gather(*(answer(prompt) for prompt in prompts))
    coverage, longest = [], []
    for length, attribution in results:
        covered = {position for span in attribution.spans for position in range(span.start, span.end)}
        coverage.append(len(covered) / length if length else 0.0)
        longest.append(max((span.length for span in attribution.spans), default=0))
    return Answers(
        name=name,
        attributed=sum(bool(attribution.spans) for _, attribution in results) / len(results),
        coverage=statistics.fmean(coverage),
        longest=statistics.fmean(longest),
    )


def report_progress(progress: Progress) -> None:
    if progress.step % 50 == 0 or progress.step == progress.steps:
        print(
            f"  step {progress.step}/{progress.steps}  loss {progress.loss:.3f}  "
            f"{progress.tokens_per_second:,.0f} tokens/s  left {progress.remaining_s:.0f} s",
            flush=True,
        )


async def main() -> None:
    recipe = TrainingRecipe()
    with tempfile.TemporaryDirectory(prefix="bench-training-") as temporary:
        root = Path(temporary)
        net = await asyncio.to_thread(demo_datanet, root / "datanet")
        print(f"default recipe: {recipe.model_dump_json()}")
        print(f"datanet: {len(net)} contributions of CPython's reference topics, {CONTRIBUTORS} contributors")
        started = time.perf_counter()
        result = await asyncio.to_thread(
            train_model, [net], root / "model", recipe, index=root / "index", progress=report_progress
        )
        total = time.perf_counter() - started
        figures = result.card.training
        print(
            f"training: {figures.tokens_per_second:,.0f} tokens/s over {recipe.steps} steps of "
            f"{recipe.tokens_per_step:,} tokens ({figures.seconds:.0f} s of steps, {total:.0f} s in all with the "
            f"tokenizer, the final loss and the index)"
        )
        print(
            f"final loss {figures.final_loss:.3f} nats/token over the whole data ({figures.corpus_tokens:,} tokens; "
            f"first step {figures.losses[0]:.3f}); modelId {result.card.model_id}"
        )

        prompts = held_out_prompts(net)
        index = AttributionIndex.open(root / "index", root / "model")
        tiny = await asyncio.to_thread(build_tiny_model, root / "tiny")
        tiny_index = await asyncio.to_thread(AttributionIndex.build, root / "tiny-index", [net], tiny)
        rows = [
            await attribute_answers("trained", root / "model", index, prompts),
            await attribute_answers("tiny (baseline)", tiny, tiny_index, prompts),
        ]
    print(
        f"\ngreedy answers ({OUTPUT_TOKENS} tokens) to {len(prompts)} held-out prompts (the first {PROMPT_WORDS} "
        f"words of passages), attributed with min_span {index.parameters.min_span}:"
    )
    print(f"  {'model':<18}{'attributed':>12}{'token coverage':>16}{'longest span':>14}")
    for row in rows:
        print(f"  {row.name:<18}{row.attributed:>12.0%}{row.coverage:>16.0%}{row.longest:>14.1f}")


if __name__ == "__main__":
    asyncio.run(main())
