"""Fixtures of the validator tests: real answers of real agents on the session's vLLM, and an agent host in miniature
that turns them into signed receipt documents of one committed epoch, the way ``runtime.host`` does.

A cheating agent is the same host signing a record it edited: every hash, signature and inclusion proof is then
consistent, so a test shows that the audit catches the cheat by the check it is about and by no other.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from pydoc_data.topics import topics
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak
from pydantic import BaseModel, Field

from agents import Agent, SkillResult, VLLMBackend, VLLMServer, load_agent_class, skill
from agents.attribution import AttributionIndex, Contribution, Datanet, IndexParameters
from agents.record import (
    AnswerRecord,
    InclusionProof,
    PaymentProof,
    ReceiptDocument,
    SignedReceiptDocument,
    attributed_tokens,
)
from staking import Domain, MerkleTree, Receipt, sign
from staking.types import AgentInfo, EpochCommitment, EpochStatus, Role, StakeInfo
from validator import ChainFacts, ServedModel

MODEL = "tiny-docs"  # the session server's model (tests/conftest.py)
#: The agent of the docs, examples/summarizer.py: a greedy skill and ChatAgent's chat.
Summarizer = load_agent_class(f"{Path(__file__).parents[2] / 'examples' / 'summarizer.py'}:Summarizer")
#: The modelId the agents register (keccak256 over the weights, in production).
MODEL_ID = keccak(b"tiny-docs weights, seed 0")
PRICE = 10**16
STAKE = 10**21
CONTRIBUTORS = tuple(Account.from_key(keccak(f"contributor {n}".encode())).address for n in range(3))
#: Texts of the greedy requests: each is summarized by the tiny model, whose text echoes the Python docs.
TEXTS = (
    "The for statement iterates over the items of a sequence.",
    "Exceptions are raised with the raise statement.",
    "The with statement wraps a block with methods of a context manager.",
    "A function definition defines a user-defined function object.",
    "Assignment statements bind names to values.",
    "The import statement finds and loads a module.",
)


class SampleIn(BaseModel):
    topic: str = Field(min_length=1)
    # Explicit: agents.record's engineHash cannot hash a seed of 2**53 or more, and LLM draws 63-bit ones.
    seed: int = Field(0, ge=0, lt=2**53)
    temperature: float = 0.8
    top_k: int = 50
    top_p: float = 1.0
    min_p: float = 0.0


class SampleOut(BaseModel):
    text: str


class Sampler(Agent):
    """An agent that samples: its outputs are checked for support (top-k, top-p, min-p), not for arg-maxes."""

    name = "sampler"
    price = PRICE
    model = MODEL

    @skill
    async def write(self, req: SampleIn) -> SampleOut:
        text = await self.llm.complete(
            f"About {req.topic}:",
            max_tokens=24,
            seed=req.seed,
            temperature=req.temperature,
            top_k=req.top_k,
            top_p=req.top_p,
            min_p=req.min_p,
        )
        return SampleOut(text=text)


#: Sampled requests; the first one is the top-k 50 of test_audit's support test.
SAMPLED: tuple[dict[str, Any], ...] = (
    *({"topic": topic, "seed": seed} for seed, topic in enumerate(("loops", "classes", "modules"))),
    {"topic": "functions", "seed": 3, "temperature": 1.0, "top_k": 0, "top_p": 0.8},
    {"topic": "strings", "seed": 4, "temperature": 0.7, "top_k": 0, "min_p": 0.05},
    {"topic": "numbers", "seed": 5, "temperature": 1.3, "top_k": 0},
    *({"topic": "exceptions", "seed": seed, "temperature": 1.0, "top_k": 0} for seed in (6, 7)),
)


@dataclass(frozen=True)
class Answer:
    """One real answer: which agent and skill, the request body as the payer sent it, and what the agent returned
    (the record keeps the body as sent, as ``runtime.host`` does; the replay validates it like the agent did)."""

    agent: type[Agent]
    skill: str
    input: dict[str, Any]
    result: SkillResult


@pytest.fixture(scope="module")
async def module_backend(vllm_server: VLLMServer) -> AsyncIterator[VLLMBackend]:
    async with vllm_server.backend(timeout=120) as client:
        yield client


@pytest.fixture(scope="module")
async def answers(module_backend: VLLMBackend) -> list[Answer]:
    """Greedy summaries, a greedy and a seeded sampled chat (``ChatAgent``'s skill), and sampled texts."""
    requests: list[tuple[type[Agent], str, dict[str, Any]]] = [
        *((Summarizer, "summarize", {"text": text}) for text in TEXTS),
        (Summarizer, "chat", {"messages": [{"role": "user", "content": "The while statement"}], "max_tokens": 24}),
        (
            Summarizer,
            "chat",
            {"messages": [{"role": "user", "content": "Lists"}], "temperature": 1.0, "top_p": 0.9, "seed": 7},
        ),
        *((Sampler, "write", payload) for payload in SAMPLED),
    ]
    answers = []
    for agent_class, skill_name, payload in requests:
        result = await agent_class(module_backend).invoke(skill_name, payload)
        answers.append(Answer(agent=agent_class, skill=skill_name, input=payload, result=result))
    return answers


@pytest.fixture(scope="session")
def index(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> AttributionIndex:
    """The registered index: a datanet of Python reference topics from three contributors."""
    root = tmp_path_factory.mktemp("validator-index")
    net = Datanet.create(root / "datanet", name="python-docs")
    net.add(
        Contribution(text=topics[key], contributor=contributor)
        for key, contributor in zip(sorted(topics)[:80], itertools.cycle(CONTRIBUTORS), strict=False)
    )
    return AttributionIndex.build(root / "index", [net], tiny_model_dir, parameters=IndexParameters(min_span=4))


@pytest.fixture(scope="session")
def served(tiny_model_dir: Path, index: AttributionIndex) -> ServedModel:
    return ServedModel(model_id=MODEL_ID, name=MODEL, tokenizer=tiny_model_dir, index=index.directory)


@dataclass
class Host:
    """An agent host in miniature: makes records of answers, signs their receipts and commits them as an epoch."""

    operator: str
    signer: LocalAccount
    domain: Domain
    index: AttributionIndex
    payer: str = CONTRIBUTORS[0]

    def record(self, answer: Answer) -> AnswerRecord:
        result = answer.result
        return AnswerRecord(
            agent=self.operator,
            agent_name=answer.agent.name,
            request_id="0x" + secrets.token_bytes(32).hex(),
            skill=answer.skill,
            input=answer.input,
            output=result.output.model_dump(mode="json"),
            calls=result.calls,
            attribution=self.index.attribute(attributed_tokens(result.calls)),
            payment=PaymentProof(scheme="channel", payer=self.payer, amount=result.price, payload={}),
        )

    def receipt(self, record: AnswerRecord, seq: int, *, epoch: int = 1) -> Receipt:
        return Receipt(
            agent=self.operator,
            request_id=bytes.fromhex(record.request_id[2:]),
            request_hash=record.request_hash(),
            output_hash=record.output_hash(),
            model_id=MODEL_ID,
            engine_hash=record.engine_hash(),
            attribution_hash=record.attribution_hash(),
            payer=self.payer,
            price=PRICE,
            epoch=epoch,
            seq=seq,
        )

    def publish(
        self, records: Sequence[AnswerRecord], *, signer: LocalAccount | None = None
    ) -> tuple[list[ReceiptDocument], MerkleTree]:
        """Signs one receipt per record (seq in order) and serves each with its proof in the epoch's tree."""
        receipts = [self.receipt(record, seq) for seq, record in enumerate(records)]
        tree = MerkleTree([receipt.leaf(self.domain) for receipt in receipts])
        documents = [
            ReceiptDocument(
                receipt=SignedReceiptDocument.of(receipt, sign(signer or self.signer, self.domain, receipt)),
                record=record,
                inclusion=InclusionProof(
                    receipts_root="0x" + tree.root.hex(),
                    receipt_count=len(receipts),
                    proof=tuple("0x" + node.hex() for node in tree.proof(seq)),
                ),
            )
            for seq, (receipt, record) in enumerate(zip(receipts, records, strict=True))
        ]
        return documents, tree

    def facts(self, tree: MerkleTree, *, status: EpochStatus = EpochStatus.COMMITTED, stake: int = STAKE) -> ChainFacts:
        """What the chain says once the agent, staked and registered, committed ``tree`` as epoch 1."""
        committed = status is EpochStatus.COMMITTED
        return ChainFacts(
            domain=self.domain,
            operators={self.signer.address: self.operator},
            agent=AgentInfo(self.operator, self.signer.address, MODEL_ID, PRICE, "http://agent", stake > 0),
            stake=StakeInfo(self.operator, Role.AGENT, stake, 0, stake, ()),
            epoch=EpochCommitment(
                agent=self.operator,
                epoch=1,
                status=status,
                receipts_root=tree.root if committed else b"\x00" * 32,
                rewards_root=b"\x00" * 32,
                receipt_count=len(tree) if committed else 0,
                committed_at=0,
                challenge_deadline=0,
                fee_total=0,
                rewards_total=0,
                rewards_claimed=0,
            ),
            index_root=self.index.root,
        )


@pytest.fixture(scope="session")
def host(index: AttributionIndex) -> Host:
    """An agent host signing under a fixed domain, for tests that pass the chain's facts in."""
    domain = Domain("ReceiptRegistry", "1", 31337, "0x" + "52" * 20)
    return Host(operator=Account.create().address, signer=Account.create(), domain=domain, index=index)
