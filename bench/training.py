"""The model factory's default recipe: training throughput, time and final loss, and how much of the trained model's
greedy output attribution finds in its data, against the offline tiny model in the same run.

Run: ``python -m bench.training`` (or ``python -m bench --only training``). Training takes most of the time: 900
steps of 2,048 tokens, 16 minutes at the 1,900 tokens/s measured on a two-core machine busy with other test suites
(a few minutes on free cores); then two vLLM servers start one after the other. It is what ``staked model train
--datanet DIR --out MODEL_DIR`` does on the demo datanet: CPython's reference topics (``pydoc_data.topics``)
credited in turn to three contributors, as the runtime's tests build it.

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
import sys
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
from agents.factory import ModelCard, Progress, TrainingRecipe, train_model
from bench.report import BarChart, Baseline, Better, Cell, Figure, LineChart, Section, Series, Table
from bench.runner import run_alone

SUITE = "training"
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
    """Training's progress on stderr: it takes minutes, and the section comes only at the end."""
    if progress.step % 50 == 0 or progress.step == progress.steps:
        print(
            f"  training step {progress.step}/{progress.steps}  loss {progress.loss:.3f}  "
            f"{progress.tokens_per_second:,.0f} tokens/s  left {progress.remaining_s:.0f} s",
            file=sys.stderr,
            flush=True,
        )


async def main() -> Section:
    recipe = TrainingRecipe()
    with tempfile.TemporaryDirectory(prefix="bench-training-") as temporary:
        root = Path(temporary)
        net = await asyncio.to_thread(demo_datanet, root / "datanet")
        started = time.perf_counter()
        result = await asyncio.to_thread(
            train_model, [net], root / "model", recipe, index=root / "index", progress=report_progress
        )
        total = time.perf_counter() - started
        prompts = held_out_prompts(net)
        index = AttributionIndex.open(root / "index", root / "model")
        tiny = await asyncio.to_thread(build_tiny_model, root / "tiny")
        tiny_index = await asyncio.to_thread(AttributionIndex.build, root / "tiny-index", [net], tiny)
        trained = await attribute_answers("trained", root / "model", index, prompts)
        untrained = await attribute_answers("tiny (baseline)", tiny, tiny_index, prompts)
    return _section(
        recipe=recipe,
        card=result.card,
        total_s=total,
        contributions=len(net),
        prompts=len(prompts),
        min_span=index.parameters.min_span,
        trained=trained,
        untrained=untrained,
    )


def _section(
    *,
    recipe: TrainingRecipe,
    card: ModelCard,
    total_s: float,
    contributions: int,
    prompts: int,
    min_span: int,
    trained: Answers,
    untrained: Answers,
) -> Section:
    run = card.training
    tiny = "the untrained tiny model (bigram statistics), same prompts"
    figures = [
        Figure(
            name=f"greedy answers with an attributed span, of {prompts} held-out prompts",
            value=trained.attributed * 100,
            unit="%",
            baseline=Baseline(name=tiny, value=untrained.attributed * 100),
            better=Better.HIGHER,
        ),
        Figure(
            name="share of output tokens inside an attributed span",
            value=trained.coverage * 100,
            unit="%",
            baseline=Baseline(name=tiny, value=untrained.coverage * 100),
            better=Better.HIGHER,
        ),
        Figure(
            name="final loss over the whole data",
            value=run.final_loss,
            unit="nats/token",
            baseline=Baseline(name="training loss of the first step", value=run.losses[0]),
            better=Better.LOWER,
        ),
    ]
    training = Table(
        title=f"Training the default recipe on {contributions} contributions ({CONTRIBUTORS} contributors)",
        columns=("quantity", "value"),
        rows=[
            ("tokens/s", run.tokens_per_second),
            ("steps", recipe.steps),
            ("tokens per step", recipe.tokens_per_step),
            ("seconds of steps", run.seconds),
            ("seconds in all (tokenizer, steps, final loss, index)", total_s),
            ("corpus tokens", run.corpus_tokens),
            ("final loss, nats/token", run.final_loss),
            ("first step's loss, nats/token", run.losses[0]),
            ("modelId", card.model_id),
        ],
    )
    answers = Table(
        title=f"Greedy answers ({OUTPUT_TOKENS} tokens) to {prompts} held-out prompts (the first {PROMPT_WORDS} words "
        f"of passages), attributed with min_span {min_span}",
        columns=("model", "attributed %", "token coverage %", "longest span, tokens"),
        rows=[(row.name, row.attributed * 100, row.coverage * 100, row.longest) for row in (trained, untrained)],
    )
    loss = LineChart(
        name="loss",
        title="Training loss per step (default recipe)",
        x_label="step",
        y_label="loss, nats/token",
        x=list(range(1, len(run.losses) + 1)),
        series=[Series(name="training loss", values=run.losses)],
    )
    return Section(
        suite=SUITE,
        title="The model factory's default recipe: throughput, loss, and how much of its output attribution finds",
        description=(
            "What `staked model train` does on the demo datanet: CPython's reference topics credited in turn to "
            f"{CONTRIBUTORS} contributors, trained with the default recipe ({recipe.steps} steps of "
            f"{recipe.tokens_per_step:,} tokens). The trained model, served by vLLM CPU, then answers "
            f"{prompts} held-out prompts greedily (the first words of passages drawn with a fixed seed) and "
            "attribution looks for spans of the data in the answers. The baseline is the offline tiny model "
            "(bigram statistics of the same corpus, no training), asked the same prompts and attributed with an "
            "index built with its own tokenizer."
        ),
        figures=figures,
        tables=[
            training,
            Table(
                title="Default recipe",
                columns=("parameter", "value"),
                rows=[(name, _cell(value)) for name, value in recipe.model_dump(mode="json").items()],
            ),
            answers,
        ],
        charts=[
            BarChart.of("attribution", "Trained model against the untrained tiny model", figures[:2]),
            loss,
        ],
    )


def _cell(value: object) -> Cell:
    return value if isinstance(value, str | int | float) else str(value)


if __name__ == "__main__":
    run_alone(SUITE, main)
