"""What auditing an answer costs a validator, against what generating it cost the agent, on the same vLLM.

Run: ``python -m bench.validator`` (or ``python -m bench --only validator``). It builds the tiny model and an
attribution index over CPython's reference topics, starts one vLLM CPU server, and has the example agent
(examples/summarizer.py) answer greedy summaries and seeded sampled chats. The baseline is that generation, measured
in the same run. Then, for the same outputs:

- ``score``: :meth:`~agents.Backend.score`, the teacher-forced re-scoring alone (one prefill, no sampling);
- ``audit``: :meth:`validator.Auditor.audit` whole: signature, hashes and Merkle proof, tokenizing the prompt,
  re-scoring, the replay of the agent's class and the attribution recomputed from the index (chain facts given,
  as read once per epoch; the chain reads of a live daemon add a few RPCs per audit).

Audits per second are measured one at a time and ``CONCURRENCY`` at a time, beside answers per second generated
at the same concurrency.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import secrets
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from pydoc_data.topics import topics
from typing import Any, TypeVar

from eth_account import Account

from agents import Agent, Backend, SkillResult, VLLMServer, build_tiny_model, load_agent_class
from agents.attribution import AttributionIndex, Contribution, Datanet
from agents.record import (
    AnswerRecord,
    InclusionProof,
    PaymentProof,
    ReceiptDocument,
    SignedReceiptDocument,
    attributed_tokens,
)
from bench.report import BarChart, Baseline, Better, Figure, Headline, Section, Table
from bench.runner import run_alone
from staking import Domain, MerkleTree, Receipt, sign
from staking.types import AgentInfo, EpochCommitment, EpochStatus, Role, StakeInfo
from validator import Auditor, ChainFacts, ServedModel

SUITE = "validator"
MODEL = "tiny-docs"  # the example agent's model name
ANSWERS = 24  # half greedy summaries, half sampled chats
OUTPUT_TOKENS = 32
CONCURRENCY = 4
WARMUP = 3
TOPICS = 80  # reference topics in the datanet
PRICE = 10**16
_T = TypeVar("_T")


def _requests() -> list[tuple[str, dict[str, Any]]]:
    requests: list[tuple[str, dict[str, Any]]] = []
    for n in range(ANSWERS):
        if n % 2:
            text = f"Request {n}: the for statement iterates over the items of any sequence, in order."
            requests.append(("summarize", {"text": text, "max_words": OUTPUT_TOKENS}))
        else:
            message = {"role": "user", "content": f"Tell me about Python lists ({n})."}
            requests.append(
                ("chat", {"messages": [message], "max_tokens": OUTPUT_TOKENS, "temperature": 1.0, "seed": n})
            )
    return requests


def _index(root: Path, model_dir: Path) -> AttributionIndex:
    contributors = [Account.create().address for _ in range(3)]
    net = Datanet.create(root / "datanet", name="python-docs")
    net.add(
        Contribution(text=topics[key], contributor=contributor)
        for key, contributor in zip(sorted(topics)[:TOPICS], itertools.cycle(contributors), strict=False)
    )
    return AttributionIndex.build(root / "index", [net], model_dir)


def _publish(
    answers: Sequence[tuple[str, dict[str, Any], SkillResult]], index: AttributionIndex, model_id: bytes
) -> tuple[list[ReceiptDocument], ChainFacts]:
    """Records, signed receipts and inclusion proofs of one committed epoch, as an agent host makes them."""
    operator, signer, payer = Account.create().address, Account.create(), Account.create().address
    domain = Domain("ReceiptRegistry", "1", 31337, "0x" + "52" * 20)
    records, receipts = [], []
    for seq, (skill_name, payload, result) in enumerate(answers):
        record = AnswerRecord(
            agent=operator,
            agent_name="summarizer",
            request_id="0x" + secrets.token_bytes(32).hex(),
            skill=skill_name,
            input=payload,
            output=result.output.model_dump(mode="json"),
            calls=result.calls,
            attribution=index.attribute(attributed_tokens(result.calls)),
            payment=PaymentProof(scheme="channel", payer=payer, amount=PRICE, payload={}),
        )
        records.append(record)
        receipts.append(
            Receipt(
                agent=operator,
                request_id=bytes.fromhex(record.request_id[2:]),
                request_hash=record.request_hash(),
                output_hash=record.output_hash(),
                model_id=model_id,
                engine_hash=record.engine_hash(),
                attribution_hash=record.attribution_hash(),
                payer=payer,
                price=PRICE,
                epoch=1,
                seq=seq,
            )
        )
    tree = MerkleTree([receipt.leaf(domain) for receipt in receipts])
    documents = [
        ReceiptDocument(
            receipt=SignedReceiptDocument.of(receipt, sign(signer, domain, receipt)),
            record=record,
            inclusion=InclusionProof(
                receipts_root="0x" + tree.root.hex(),
                receipt_count=len(receipts),
                proof=tuple("0x" + node.hex() for node in tree.proof(seq)),
            ),
        )
        for seq, (receipt, record) in enumerate(zip(receipts, records, strict=True))
    ]
    facts = ChainFacts(
        domain=domain,
        operators={signer.address: operator},
        agent=AgentInfo(operator, signer.address, model_id, PRICE, "http://agent.bench", True),
        stake=StakeInfo(operator, Role.AGENT, 10**21, 0, 10**21, ()),
        epoch=EpochCommitment(
            agent=operator,
            epoch=1,
            status=EpochStatus.COMMITTED,
            receipts_root=tree.root,
            rewards_root=b"\x00" * 32,
            receipt_count=len(receipts),
            committed_at=0,
            challenge_deadline=0,
            fee_total=0,
            rewards_total=0,
            rewards_claimed=0,
        ),
        index_root=index.root,
    )
    return documents, facts


async def _timed(call: Callable[[], Awaitable[_T]]) -> tuple[float, _T]:
    started = time.perf_counter()
    result = await call()
    return time.perf_counter() - started, result


async def _rate(calls: Sequence[Callable[[], Awaitable[object]]], concurrency: int) -> float:
    """Calls per second, ``concurrency`` at a time."""
    gate = asyncio.Semaphore(concurrency)

    async def one(call: Callable[[], Awaitable[object]]) -> None:
        async with gate:
            await call()

    started = time.perf_counter()
    await asyncio.gather(*(one(call) for call in calls))
    return len(calls) / (time.perf_counter() - started)


async def measure(backend: Backend, model_dir: Path, index: AttributionIndex) -> dict[str, Any]:
    """Generation, score and audit times per answer, and the rates one at a time and concurrently."""
    agent_class: type[Agent] = load_agent_class(
        f"{Path(__file__).parents[1] / 'examples' / 'summarizer.py'}:Summarizer"
    )
    agent = agent_class(backend)
    requests = _requests()
    for skill_name, payload in requests[:WARMUP]:
        await agent.invoke(skill_name, payload)
    generated: list[float] = []
    answers = []
    for skill_name, payload in requests:
        seconds, result = await _timed(functools.partial(agent.invoke, skill_name, payload))
        generated.append(seconds)
        answers.append((skill_name, payload, result))
    generation_rate = await _rate([functools.partial(agent.invoke, s, p) for s, p in requests], CONCURRENCY)

    model_id = b"\x42" * 32
    documents, facts = _publish(answers, index, model_id)
    served = ServedModel(model_id=model_id, name=MODEL, tokenizer=model_dir, index=index.directory)
    auditor = Auditor(backend=backend, models=[served], agents={"summarizer": agent_class})
    for document in documents[:WARMUP]:  # the first opens the tokenizer and verifies the index
        await auditor.audit(document, facts=facts)
    scored = []
    for _, _, result in answers:
        (call,) = result.calls
        seconds, _ = await _timed(functools.partial(backend.score, MODEL, call.prompt_token_ids, call.output_token_ids))
        scored.append(seconds)
    audited = []
    for document in documents:
        seconds, report = await _timed(functools.partial(auditor.audit, document, facts=facts))
        if not report.passed:
            raise AssertionError(f"an honest answer failed its audit: {report}")
        audited.append(seconds)
    audit_rate = await _rate([functools.partial(auditor.audit, d, facts=facts) for d in documents], CONCURRENCY)
    return {
        "generate": generated,
        "score": scored,
        "audit": audited,
        "generation_rate": generation_rate,
        "audit_rate": audit_rate,
        "tokens": [len(result.calls[0].output_token_ids) for _, _, result in answers],
    }


async def main() -> Section:
    with tempfile.TemporaryDirectory(prefix="bench-validator-") as directory:
        root = Path(directory)
        model_dir = build_tiny_model(root / "model", seed=0)
        index = await asyncio.to_thread(_index, root, model_dir)
        async with VLLMServer(model_dir, name=MODEL, kv_cache_gib=1) as server, server.backend() as backend:
            measured = await measure(backend, model_dir, index)

    generate, score, audit = measured["generate"], measured["score"], measured["audit"]
    generate_p50 = statistics.median(generate)
    generation = Baseline(name="generating the answer (Agent.invoke), p50", value=generate_p50 * 1e3)
    figures = [
        Figure(
            name="audit of one answer (Auditor.audit, whole), p50",
            value=statistics.median(audit) * 1e3,
            unit="ms",
            baseline=generation,
            better=Better.LOWER,
            headline=Headline.AUDIT_COST,
        ),
        Figure(
            name="re-scoring one answer by teacher forcing (score), p50",
            value=statistics.median(score) * 1e3,
            unit="ms",
            baseline=generation,
            better=Better.LOWER,
        ),
        Figure(
            name=f"audits per second, {CONCURRENCY} at a time",
            value=measured["audit_rate"],
            unit="/s",
            baseline=Baseline(
                name=f"answers generated per second, {CONCURRENCY} at a time", value=measured["generation_rate"]
            ),
            better=Better.HIGHER,
        ),
    ]
    ratios = [a / g for a, g in zip(audit, generate, strict=True)]
    per_answer = Table(
        title=f"Per answer ({ANSWERS} answers, greedy and sampled, median {statistics.median(measured['tokens']):.0f} "
        "output tokens)",
        columns=("step", "p50 ms", "max ms", "p50 / generate p50"),
        rows=[
            (name, statistics.median(samples) * 1e3, max(samples) * 1e3, statistics.median(samples) / generate_p50)
            for name, samples in (
                ("generate (Agent.invoke, baseline)", generate),
                ("score (teacher forcing)", score),
                ("audit (Auditor.audit, whole)", audit),
            )
        ],
    )
    rates = Table(
        title="Rates",
        columns=("rate", "per second"),
        rows=[
            (f"answers generated, {CONCURRENCY} at a time (baseline)", measured["generation_rate"]),
            (f"audits, {CONCURRENCY} at a time", measured["audit_rate"]),
            ("audits, one at a time", 1 / statistics.mean(audit)),
        ],
    )
    return Section(
        suite=SUITE,
        title="What auditing an answer costs a validator, against generating it",
        description=(
            "The tiny model on one vLLM CPU server and an attribution index of CPython's reference topics; the "
            f"example summarizer agent answers {ANSWERS} requests (greedy summaries and seeded sampled chats, "
            f"{OUTPUT_TOKENS} tokens at most), timed as the baseline, and the answers are published as one committed "
            "epoch (records, signed receipts, inclusion proofs). A validator then audits each: signature, hashes and "
            "Merkle proof, the prompt tokenized, the output re-scored by teacher forcing, the agent's class replayed "
            "and the attribution recomputed (chain facts given, as read once per epoch). score alone is timed too."
        ),
        figures=figures,
        tables=[
            per_answer,
            Table(
                title="Audit / generate, paired per answer",
                columns=("p50", "max"),
                rows=[(statistics.median(ratios), max(ratios))],
            ),
            rates,
        ],
        charts=[BarChart.of("per-answer", "Audit and score of one answer against generating it (p50)", figures[:2])],
    )


if __name__ == "__main__":
    run_alone(SUITE, main)
