"""Audits of real answers: the tiny model on the session's vLLM, a real attribution index, receipts signed like an
agent host signs them. Honest answers pass every check; each cheat is caught by the check it is about, with the
dispute kind and the evidence a challenge posts; on anvil the chain facts come from the deployed contracts."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak
from web3 import AsyncWeb3

from agents import (
    EngineInfo,
    ModelCall,
    SamplingParams,
    Score,
    ScoredToken,
    TokenLogprob,
    VLLMBackend,
    build_tiny_model,
)
from agents.attribution import (
    AttributedSpan,
    Attribution,
    AttributionIndex,
    ContributorWeight,
    epoch_rewards,
    load_tokenizer,
)
from agents.record import AnswerRecord, ReceiptDocument
from staking import Deployment, StakingClient, Transactor, to_wei_open
from staking.types import DisputeKind, EpochStatus, Role
from validator import (
    AttributionMismatch,
    Auditor,
    AuditReport,
    Check,
    Evidence,
    EvidenceError,
    HashMismatch,
    IndexRootMismatchError,
    LikelihoodMismatch,
    NotIncluded,
    NotStaked,
    RecordMismatch,
    ReplayDiffers,
    ServedModel,
    TokenViolation,
    Tolerances,
    ValidatorConfigError,
    WrongSigner,
    score_findings,
)
from validator.audit import _consistency_findings  # the text and length rules, on hand-made calls

from .conftest import MODEL, MODEL_ID, PRICE, Answer, Host, Sampler, Summarizer

ALL_CHECKS = tuple(Check)
AGENTS = {"summarizer": Summarizer, "sampler": Sampler}


def auditor(backend: VLLMBackend, served: ServedModel, **options: Any) -> Auditor:
    return Auditor(backend=backend, models=[served], agents=options.pop("agents", AGENTS), **options)


async def audit_one(host: Host, auditor: Auditor, record: AnswerRecord) -> tuple[AuditReport, ReceiptDocument]:
    """A cheating host commits and serves ``record`` as the only receipt of its epoch; the validator audits it."""
    (document,), tree = host.publish([record])
    return await auditor.audit(document, facts=host.facts(tree)), document


def greedy_summary(answers: Sequence[Answer]) -> Answer:
    return next(answer for answer in answers if answer.skill == "summarize")


def with_output(host: Host, answer: Answer, call: ModelCall, output: dict[str, object]) -> AnswerRecord:
    """``answer``'s record with its one model call replaced, its output and its attribution made consistent."""
    record = host.record(answer)
    calls = (call,)
    attribution = host.index.attribute([token for made in calls for token in made.output_token_ids])
    return record.model_copy(update={"calls": calls, "output": output, "attribution": attribution})


def check_evidence(report: AuditReport, kind: DisputeKind) -> Evidence:
    evidence = report.evidence(kind)
    assert evidence.evidence_hash == keccak(evidence.canonical_json())
    assert Evidence.model_validate_json(evidence.canonical_json()) == evidence  # voters read back what was posted
    assert all(finding.dispute == kind for finding in evidence.findings)
    return evidence


async def test_honest_answers_pass_every_check(
    answers: list[Answer], host: Host, module_backend: VLLMBackend, served: ServedModel
) -> None:
    calls = [call for answer in answers for call in answer.result.calls]
    assert {call.sampling.greedy for call in calls} == {True, False}  # greedy and sampled
    assert {call.kind for call in calls} == {"completion", "chat"}
    documents, tree = host.publish([host.record(answer) for answer in answers])
    validator = auditor(module_backend, served)
    reports = [await validator.audit(document, facts=host.facts(tree)) for document in documents]
    for report in reports:
        assert report.passed, str(report)
        assert report.checked == ALL_CHECKS
        assert report.skipped == ()
        assert report.valid
        assert report.disputes == ()
    assert repr(validator) == f"<Auditor models=1 agents=2 audits={len(answers)} failed=0>"


async def test_output_tokens_edited_after_generation_are_an_output_fault(
    answers: list[Answer], host: Host, module_backend: VLLMBackend, served: ServedModel, tiny_model_dir: Path
) -> None:
    answer = greedy_summary(answers)
    (honest,) = answer.result.calls
    tokens = list(honest.output_token_ids)
    tokens[2] = 1000 if tokens[2] != 1000 else 1001  # a token the model did not choose, claimed as likely as its own
    logprobs = list(honest.logprobs)
    logprobs[2] = TokenLogprob(token_id=tokens[2], logprob=honest.logprobs[2].logprob)
    text = load_tokenizer(tiny_model_dir).decode(tokens, skip_special_tokens=True)  # the cheat is self-consistent
    edited = honest.model_copy(update={"output_token_ids": tuple(tokens), "logprobs": tuple(logprobs), "output": text})

    report, document = await audit_one(
        host, auditor(module_backend, served), with_output(host, answer, edited, {"summary": text.strip()})
    )

    assert report.disputes == (DisputeKind.OUTPUT,)
    assert {finding.check for finding in report.findings} == {Check.OUTPUT}
    rules = {finding.rule: finding for finding in report.findings if isinstance(finding, TokenViolation)}
    assert rules["greedy"].tokens[0].position == 2
    assert rules["greedy"].tokens[0].best_token_id == honest.output_token_ids[2]
    assert rules["logprob"].tokens[0].position == 2
    evidence = check_evidence(report, DisputeKind.OUTPUT)
    assert evidence.document == document
    assert evidence.kind == "output"


async def test_an_answer_of_another_model_is_an_output_fault(
    answers: list[Answer],
    host: Host,
    module_backend: VLLMBackend,
    served: ServedModel,
    tmp_path: Path,
    tiny_model_dir: Path,
) -> None:
    # A cheaper model: the same architecture and tokenizer, other weights (another seed), run outside vLLM. The
    # agent reports that model's own log-probabilities and keeps every other part of the record consistent.
    other = await asyncio.to_thread(build_tiny_model, tmp_path / "other-model", seed=1)
    answer = greedy_summary(answers)
    (honest,) = answer.result.calls
    tokens, logprobs, finish = await asyncio.to_thread(
        generate_greedily, other, honest.prompt_token_ids, honest.sampling.max_tokens
    )
    assert tokens != honest.output_token_ids
    text = load_tokenizer(tiny_model_dir).decode(list(tokens), skip_special_tokens=True)
    forged = honest.model_copy(
        update={
            "output_token_ids": tokens,
            "logprobs": tuple(TokenLogprob(token_id=t, logprob=p) for t, p in zip(tokens, logprobs, strict=True)),
            "output": text,
            "finish_reason": finish,
        }
    )

    report, _ = await audit_one(
        host, auditor(module_backend, served), with_output(host, answer, forged, {"summary": text.strip()})
    )

    assert report.disputes == (DisputeKind.OUTPUT,)
    assert {finding.check for finding in report.findings} == {Check.OUTPUT}  # replay and attribution hold
    rules = {finding.rule for finding in report.findings if isinstance(finding, TokenViolation)}
    assert {"greedy", "logprob"} <= rules
    assert any(isinstance(finding, LikelihoodMismatch) for finding in report.findings)
    check_evidence(report, DisputeKind.OUTPUT)


def generate_greedily(
    model_dir: Path, prompt: Sequence[int], max_tokens: int
) -> tuple[tuple[int, ...], list[float], str]:
    """Greedy decoding with transformers (no second vLLM server): tokens, their log-probabilities, finish reason."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()  # type: ignore[no-untyped-call]
    stops = set(model.generation_config.eos_token_id)
    ids, tokens, logprobs = list(prompt), [], []
    with torch.no_grad():
        for _ in range(max_tokens):
            scores = torch.log_softmax(model(torch.tensor([ids])).logits[0, -1], dim=-1)
            token = int(scores.argmax())
            tokens.append(token)
            logprobs.append(float(scores[token]))
            ids.append(token)
            if token in stops:
                return tuple(tokens), logprobs, "stop"
    return tuple(tokens), logprobs, "length"


async def test_sampled_tokens_outside_top_k_are_an_output_fault_even_with_true_logprobs(
    answers: list[Answer], host: Host, module_backend: VLLMBackend, served: ServedModel, tiny_model_dir: Path
) -> None:
    answer = next(answer for answer in answers if answer.skill == "write")
    (honest,) = answer.result.calls
    assert honest.sampling.top_k == 50
    tokenizer = load_tokenizer(tiny_model_dir)
    # Put a token the sampler could never pick (outside the top 50) at position 1, and annotate the whole forged
    # output with the true model's log-probabilities: only the support rules can tell.
    for candidate in range(300, 2000, 61):
        tokens = (honest.output_token_ids[0], candidate, *honest.output_token_ids[2:])
        score = await module_backend.score(MODEL, honest.prompt_token_ids, tokens)
        if score.tokens[1].rank > 60:
            break
    else:
        pytest.fail("no candidate token ranks below 60 at position 1")
    text = tokenizer.decode(list(tokens), skip_special_tokens=True)
    forged = honest.model_copy(
        update={
            "output_token_ids": tokens,
            "logprobs": tuple(TokenLogprob(token_id=t.token_id, logprob=t.logprob) for t in score.tokens),
            "output": text,
        }
    )

    report, _ = await audit_one(
        host, auditor(module_backend, served), with_output(host, answer, forged, {"text": text})
    )

    assert report.disputes == (DisputeKind.OUTPUT,)
    (violation,) = report.findings
    assert isinstance(violation, TokenViolation)
    assert (violation.rule, violation.limit) == ("top_k", 50)
    assert violation.tokens[0].position == 1  # later tokens, honest in their old context, may now be out too


async def test_an_output_edited_after_honest_calls_is_caught_by_the_replay_alone(
    answers: list[Answer], host: Host, module_backend: VLLMBackend, served: ServedModel
) -> None:
    answer = greedy_summary(answers)
    record = host.record(answer).model_copy(update={"output": {"summary": "A far better summary, paid for."}})

    report, _ = await audit_one(host, auditor(module_backend, served), record)
    assert report.disputes == (DisputeKind.OUTPUT,)
    (finding,) = report.findings
    assert isinstance(finding, ReplayDiffers)
    assert finding.replayed == answer.result.output.model_dump(mode="json")
    check_evidence(report, DisputeKind.OUTPUT)

    # Without the agent's published class the edit goes unseen: the report says the replay was skipped.
    blind, _ = await audit_one(host, auditor(module_backend, served, agents={}), record)
    assert blind.passed
    assert [skipped.check for skipped in blind.skipped] == [Check.REPLAY]


async def test_attribution_to_the_wrong_contributors_is_an_attribution_fault(
    answers: list[Answer], host: Host, module_backend: VLLMBackend, served: ServedModel
) -> None:
    answer = next(a for a in answers if host.index.attribute(a.result.calls[0].output_token_ids).weights)
    honest = host.record(answer)
    thief = Account.from_key(keccak(b"thief")).address
    stolen = Attribution(
        index_root=honest.attribution.index_root,
        output_tokens=honest.attribution.output_tokens,
        spans=tuple(
            AttributedSpan(
                start=span.start,
                end=span.end,
                occurrences=span.occurrences,
                contributions=span.contributions,
                contributors=(thief,),
            )
            for span in honest.attribution.spans
        ),
        weights=(ContributorWeight(contributor=thief, bps=10_000),),
    )

    report, _ = await audit_one(
        host, auditor(module_backend, served), honest.model_copy(update={"attribution": stolen})
    )

    assert report.disputes == (DisputeKind.ATTRIBUTION,)
    (finding,) = report.findings
    assert isinstance(finding, AttributionMismatch)
    assert finding.recomputed == honest.attribution
    assert finding.recorded == "0x" + stolen.attribution_hash.hex()
    evidence = check_evidence(report, DisputeKind.ATTRIBUTION)
    assert evidence.kind == "attribution"
    with pytest.raises(EvidenceError, match="no such fault"):
        report.evidence(DisputeKind.OUTPUT)


async def test_a_receipt_not_signed_by_the_agents_signer_is_invalid_and_checked_no_further(
    answers: list[Answer], host: Host, module_backend: VLLMBackend, served: ServedModel
) -> None:
    impostor: LocalAccount = Account.create()
    (document,), tree = host.publish([host.record(answers[0])], signer=impostor)
    report = await auditor(module_backend, served).audit(document, facts=host.facts(tree))
    assert report.findings == (
        WrongSigner(signer=impostor.address, bound_operator="0x" + "00" * 20, agent=host.operator),
    )
    assert not report.valid
    assert report.disputes == ()
    assert report.checked == (Check.SIGNATURE, Check.REGISTRATION)
    assert {skipped.check for skipped in report.skipped} == set(ALL_CHECKS[2:])
    with pytest.raises(EvidenceError):
        report.evidence(DisputeKind.OUTPUT)


async def test_receipts_not_shown_in_the_committed_epoch_are_withholding(
    answers: list[Answer], host: Host, module_backend: VLLMBackend, served: ServedModel
) -> None:
    validator = auditor(module_backend, served, agents={})
    documents, tree = host.publish([host.record(answer) for answer in answers[:3]])
    facts = host.facts(tree)
    unproven = documents[0].model_copy(update={"inclusion": None})
    wrong_proof = documents[0].model_copy(update={"inclusion": documents[1].inclusion})

    for document, epoch_facts, reason in (
        (unproven, facts, "served no inclusion proof"),
        (wrong_proof, facts, "does not lead from the receipt's leaf"),
        (documents[1], replace(facts, epoch=replace(facts.epoch, receipt_count=0)), "lies beyond the 0 receipts"),
        (documents[2], host.facts(tree, status=EpochStatus.SKIPPED), "skipped epoch 1"),
    ):
        report = await validator.audit(document, facts=epoch_facts)
        (finding,) = report.findings
        assert isinstance(finding, NotIncluded)
        assert reason in finding.reason
        assert report.disputes == (DisputeKind.WITHHOLDING,)
        with pytest.raises(EvidenceError, match="carry an evidence hash"):
            report.evidence(DisputeKind.WITHHOLDING)

    pending = await validator.audit(documents[0], facts=host.facts(tree, status=EpochStatus.PENDING))
    assert pending.passed
    assert pending.skipped[0].check is Check.INCLUSION


async def test_a_record_that_is_not_the_receipts_and_an_unstaked_agent_are_reported(
    answers: list[Answer], host: Host, module_backend: VLLMBackend, served: ServedModel
) -> None:
    validator = auditor(module_backend, served, agents={})
    (first, second), tree = host.publish([host.record(answer) for answer in (answers[0], answers[-1])])
    swapped = first.model_copy(update={"record": second.record})  # another answer's record (a sampled one)
    report = await validator.audit(swapped, facts=host.facts(tree))
    assert {finding.field for finding in report.findings if isinstance(finding, HashMismatch)} == {
        "requestHash", "outputHash", "engineHash", "attributionHash",
    }  # fmt: skip
    assert RecordMismatch(field="requestId", receipt=first.receipt.request_id, expected=second.record.request_id) in (
        report.findings
    )
    assert report.disputes == (DisputeKind.OUTPUT, DisputeKind.ATTRIBUTION)

    broke = await validator.audit(first, facts=host.facts(tree, stake=0))
    assert broke.findings == (NotStaked(agent=host.operator, active=0, slashable=0),)
    assert broke.disputes == ()


async def test_wrong_facts_and_configurations_are_errors_and_missing_parts_are_skipped(
    answers: list[Answer], host: Host, module_backend: VLLMBackend, served: ServedModel
) -> None:
    (document,), tree = host.publish([host.record(answers[0])])
    other = Host(operator=Account.create().address, signer=host.signer, domain=host.domain, index=host.index)
    with pytest.raises(ValueError, match="chain facts are about agent"):
        await auditor(module_backend, served).audit(document, facts=other.facts(tree))
    with pytest.raises(ValidatorConfigError, match="without a chain"):
        await auditor(module_backend, served).audit(document)
    with pytest.raises(ValidatorConfigError, match="share a modelId"):
        Auditor(backend=module_backend, models=[served, served])
    with pytest.raises(IndexRootMismatchError, match="is registered with 0x0101"):
        await auditor(module_backend, served).audit(document, facts=replace(host.facts(tree), index_root=b"\x01" * 32))
    blind = await Auditor(backend=module_backend, models=[]).audit(document, facts=host.facts(tree))
    assert blind.passed
    assert [skipped.check for skipped in blind.skipped] == [Check.OUTPUT, Check.REPLAY, Check.ATTRIBUTION]


@pytest.mark.chain
async def test_on_chain_facts_from_the_deployed_contracts(
    answers: list[Answer],
    module_backend: VLLMBackend,
    served: ServedModel,
    index: AttributionIndex,
    w3: AsyncWeb3[Any],
    deployment: Deployment,
    deployer: Transactor,
    keys: list[LocalAccount],
) -> None:
    operator, signer, curator = keys[1], keys[2], keys[3]
    await deployer.send(deployment.contract(w3, "OpenToken").functions.transfer(operator.address, to_wei_open(5_000)))
    agent, owner = StakingClient(w3, deployment, operator), StakingClient(w3, deployment, curator)
    await agent.stake(Role.AGENT, deployment.parameters.min_agent_stake)
    await agent.register_agent(signer.address, MODEL_ID, PRICE, "http://agent")
    datanet = await owner.create_datanet("ipfs://python-docs")
    await owner.register_model(MODEL_ID, [datanet], index.root, "ipfs://tiny-docs")

    host = Host(operator=operator.address, signer=signer, domain=agent.receipt_domain(), index=index)
    records = [host.record(answer) for answer in answers[:3]]
    documents, tree = host.publish(records)
    rewards = epoch_rewards(
        [(PRICE, record.attribution) for record in records],
        attribution_bps=deployment.parameters.attribution_bps,
        unattributed=curator.address,
    )
    await agent.commit_epoch(1, tree.root, len(records), rewards.fee_total, rewards.root, rewards.rewards_total)

    validator = auditor(module_backend, served, chain=StakingClient(w3, deployment))
    for document in documents:
        report = await validator.audit(document)
        assert report.passed, str(report)
        assert report.checked == ALL_CHECKS

    (forged,), _ = host.publish(records[:1], signer=keys[5])  # a key the agent never bound
    report = await validator.audit(forged)
    assert report.findings == (
        WrongSigner(signer=keys[5].address, bound_operator="0x" + "00" * 20, agent=operator.address),
    )


# -- the token rules on hand-made scores (the paths above run them on vLLM's) ----------------------------------------

ENGINE = EngineInfo(version="0.32.0", model=MODEL, dtype="float32", max_model_len=1024)


def scored_call(params: SamplingParams, tokens: Sequence[tuple[float, int, float]]) -> tuple[ModelCall, Score]:
    """A call whose i-th token has log-probability, rank and arg-max log-probability ``tokens[i]``."""
    ids = tuple(range(100, 100 + len(tokens)))
    call = ModelCall(
        kind="completion",
        request_id="cmpl",
        engine=ENGINE,
        sampling=params,
        prompt="",
        prompt_token_ids=(0,),
        output="",
        output_token_ids=ids,
        logprobs=tuple(TokenLogprob(token_id=i, logprob=lp) for i, (lp, _, _) in zip(ids, tokens, strict=True)),
        finish_reason="length",
        started_at=datetime(2026, 11, 1, tzinfo=UTC),
        duration_s=0.0,
    )
    score = Score(
        engine=ENGINE,
        prompt_token_ids=(0,),
        tokens=tuple(
            ScoredToken(token_id=i, logprob=lp, rank=rank, best_token_id=7 if rank > 1 else i, best_logprob=best)
            for i, (lp, rank, best) in zip(ids, tokens, strict=True)
        ),
    )
    return call, score


def rules(params: SamplingParams, tokens: Sequence[tuple[float, int, float]]) -> dict[str, list[int]]:
    call, score = scored_call(params, tokens)
    findings, _ = score_findings(0, call, score, Tolerances())
    return {f.rule: [t.position for t in f.tokens] for f in findings if isinstance(f, TokenViolation)}


def test_support_rules_follow_vllms_order_of_temperature_min_p_top_k_top_p() -> None:
    sampled = SamplingParams(temperature=0.5, seed=1)
    # min_p 0.1 at temperature 0.5 keeps tokens within 0.5 * ln(10) = 1.15 nats of the arg-max.
    assert rules(sampled.model_copy(update={"min_p": 0.1}), [(-1.0, 2, -0.1), (-1.5, 3, -0.1)]) == {"min_p": [1]}
    # top_p 0.5 with an arg-max of probability 0.6 keeps the arg-max alone (temperature <= 1 only sharpens it).
    assert rules(sampled.model_copy(update={"top_p": 0.5}), [(-0.51, 1, -0.51), (-2.0, 2, -0.51)]) == {"top_p": [1]}
    assert rules(sampled.model_copy(update={"top_p": 0.5}), [(-2.0, 2, -0.9)]) == {}  # arg-max 0.41: not alone
    assert rules(sampled.model_copy(update={"top_k": 3}), [(-3.0, 3, -0.1), (-4.0, 4, -0.1)]) == {"top_k": [1]}
    # A token 13 nats below the arg-max at temperature 0.5 has sampling probability below e^-26.
    assert rules(sampled, [(-13.2, 900, -0.1), (-12.0, 800, -0.1)]) == {"negligible": [0]}


def test_penalties_leave_support_unchecked_but_logprobs_checked() -> None:
    penalized = SamplingParams(temperature=0.0, repetition_penalty=1.3)
    call, score = scored_call(penalized, [(-2.0, 2, -0.1)])
    findings, notes = score_findings(0, call, score, Tolerances())
    assert findings == []
    assert "penalties" in notes[0]
    lying = call.model_copy(update={"logprobs": (TokenLogprob(token_id=100, logprob=-0.1),)})
    (mismatch, likelihood), _ = score_findings(0, lying, score, Tolerances())
    assert isinstance(mismatch, TokenViolation)
    assert mismatch.rule == "logprob"
    assert isinstance(likelihood, LikelihoodMismatch)


def test_tolerances_must_be_finite_and_non_negative() -> None:
    with pytest.raises(ValidatorConfigError, match="greedy"):
        Tolerances(greedy=-1.0)
    with pytest.raises(ValidatorConfigError, match="logprob"):
        Tolerances(logprob=float("inf"))


@pytest.mark.parametrize(
    ("output", "finish_reason", "stop", "decoded", "field"),
    [
        ("x = 1", "length", (), "x = 1", None),
        ("x = 1", "stop", ("\n",), "x = 1\ny", None),  # cut where the stop string starts
        ("caf", "length", (), "caf\ufffd", None),  # cut inside a multi-byte character
        ("x = 2", "length", (), "x = 1", "output"),  # text edited, tokens kept
        ("x = 1", "stop", (), "x = 1\ny", "output"),  # a stop string the call never had
    ],
)
def test_the_output_text_must_be_what_its_tokens_decode_to(
    output: str, finish_reason: str, stop: tuple[str, ...], decoded: str, field: str | None
) -> None:
    call, _ = scored_call(SamplingParams(max_tokens=2, temperature=0.0, stop=stop), [(-0.1, 1, -0.1)] * 2)
    call = call.model_copy(update={"output": output, "finish_reason": finish_reason})
    assert [finding.field for finding in _consistency_findings(0, call, decoded)] == ([field] if field else [])


def test_an_output_cut_short_of_every_limit_cannot_claim_the_length_limit() -> None:
    call, _ = scored_call(SamplingParams(max_tokens=8, temperature=0.0), [(-0.1, 1, -0.1)] * 2)
    (finding,) = _consistency_findings(0, call, "")
    assert (finding.field, finding.recorded) == ("output_token_ids", "2 tokens, finish_reason 'length'")
    assert _consistency_findings(0, call.model_copy(update={"finish_reason": "stop"}), "") == []
