"""AttributionIndex.attribute on cases small enough to check by hand (one letter is one token), then properties."""

from __future__ import annotations

import string
import subprocess
import sys
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import pytest
import rfc8785
from eth_utils.crypto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer

from agents.attribution import Attribution, AttributionIndex, Datanet, OutputTokensError

ALICE, BOB, CAROL = ("0x" + digit * 40 for digit in "123")
Encode = Callable[[str], list[int]]


def weights(attribution: Attribution) -> dict[str, int]:
    return {weight.contributor: weight.bps for weight in attribution.weights}


def spans(attribution: Attribution) -> list[tuple[int, int, int]]:
    return [(span.start, span.end, span.occurrences) for span in attribution.spans]


def test_a_span_in_one_contribution_credits_its_contributor_alone(build_index, encode: Encode) -> None:
    index = build_index([("a b c d e", ALICE), ("f g h i j", BOB)])
    attribution = index.attribute(encode("z a b c y"))
    assert spans(attribution) == [(1, 4, 1)]
    assert weights(attribution) == {ALICE: 10_000}
    (span,) = attribution.spans
    assert span.contributors == (ALICE,)
    assert span.contributions == ("0x" + keccak(b"a b c d e").hex(),)


def test_a_span_in_two_contributions_of_different_contributors_is_split_evenly(build_index, encode: Encode) -> None:
    index = build_index([("a b c d", ALICE), ("q a b c r", BOB)])
    attribution = index.attribute(encode("a b c"))
    assert spans(attribution) == [(0, 3, 2)]
    assert attribution.spans[0].contributors == (ALICE, BOB)
    assert weights(attribution) == {ALICE: 5_000, BOB: 5_000}


def test_overlapping_spans_each_count_in_full(build_index, encode: Encode) -> None:
    index = build_index([("a b c d", ALICE), ("c d e f", BOB)])
    attribution = index.attribute(encode("a b c d e f"))
    assert spans(attribution) == [(0, 4, 1), (2, 6, 1)]
    assert weights(attribution) == {ALICE: 5_000, BOB: 5_000}


def test_weights_follow_length_and_rarity_with_largest_remainder_rounding(build_index, encode: Encode) -> None:
    # "a b c d" (4 tokens) is Alice's alone: weight 4. "g h i" (3 tokens) is in two contributions: weight 3/2, split
    # between Bob and Carol: 3/4 each. Of 5.5: Alice 7272.73, Bob and Carol 1363.64 bps. Floors add up to 9998; the
    # two units left go to the largest remainders: Alice (.73), then Bob before Carol (equal remainders, lower
    # address first).
    index = build_index([("a b c d e f", ALICE), ("g h i j", BOB), ("k g h i", CAROL)])
    attribution = index.attribute(encode("a b c d z g h i"))
    assert spans(attribution) == [(0, 4, 1), (5, 8, 2)]
    assert weights(attribution) == {ALICE: 7_273, BOB: 1_364, CAROL: 1_363}


def test_a_contributor_holding_a_span_twice_gets_one_share(build_index, encode: Encode) -> None:
    # "a b c" is in three contributions (weight 3/3 = 1), two of them Alice's: Alice and Bob get 1/2 each.
    index = build_index([("a b c x", ALICE), ("y a b c", ALICE), ("a b c q", BOB)])
    attribution = index.attribute(encode("a b c"))
    assert spans(attribution) == [(0, 3, 3)]
    assert weights(attribution) == {ALICE: 5_000, BOB: 5_000}


def test_matches_never_cross_from_one_contribution_into_the_next(build_index, encode: Encode) -> None:
    index = build_index([("a b", ALICE), ("c d", BOB)])
    assert index.attribute(encode("a b c d")).spans == ()


def test_spans_shorter_than_min_span_and_boilerplate_credit_nobody(build_index, encode: Encode) -> None:
    assert build_index([("a b c", ALICE)], min_span=4).attribute(encode("a b c")).spans == ()
    common = build_index([("a b c x", ALICE), ("a b c y", BOB)], max_occurrences=1)
    assert common.attribute(encode("a b c")).weights == ()


def test_no_match_and_empty_output_have_no_weights_and_a_hash_binding_root_and_length(
    build_index, encode: Encode
) -> None:
    index = build_index([("a b c d", ALICE)])
    nothing = index.attribute(encode("z y x w"))
    empty = index.attribute([])
    root = "0x" + index.root.hex()
    assert (nothing.spans, nothing.weights, nothing.output_tokens) == ((), (), 4)
    assert empty.canonical_json() == (
        b'{"index_root":"' + root.encode() + b'","output_tokens":0,"spans":[],"weights":[]}'
    )
    assert empty.attribution_hash == keccak(empty.canonical_json())
    assert nothing.attribution_hash != empty.attribution_hash


def test_the_canonical_json_is_rfc8785_of_the_record(build_index, encode: Encode) -> None:
    attribution = build_index([("a b c d", ALICE), ("q a b c", BOB)]).attribute(encode("a b c d"))
    assert attribution.canonical_json() == rfc8785.dumps(attribution.model_dump(mode="json"))
    assert Attribution.model_validate_json(attribution.canonical_json()) == attribution
    assert len(attribution.attribution_hash) == 32


def test_a_duplicate_contribution_credits_the_first_contributor(build_index, encode: Encode) -> None:
    index = build_index([("a b c d", ALICE), ("a b c d", BOB)])
    assert index.documents == 1
    assert weights(index.attribute(encode("a b c"))) == {ALICE: 10_000}


def test_token_ids_outside_the_vocabulary_are_refused(build_index, words: Tokenizer) -> None:
    index = build_index([("a b c", ALICE)])
    with pytest.raises(OutputTokensError) as refused:
        index.attribute([0, 1, words.get_vocab_size(with_added_tokens=True)])
    assert refused.value.position == 2


def test_same_inputs_same_root_and_hash_across_rebuilds_and_processes(
    tmp_path: Path, build_index, words: Tokenizer, encode: Encode
) -> None:
    entries = [("a b c d e", ALICE), ("c d e f", BOB), ("x y z a b", CAROL)]
    first, second = build_index(entries), build_index(entries)
    output = encode("x y z a b c d e f")
    assert first.root == second.root
    for name in ("tokens.npy", "suffixes.npy", "index.json"):
        assert (first.directory / name).read_bytes() == (second.directory / name).read_bytes()
    assert first.attribute(output) == second.attribute(output)
    tokenizer_file = tmp_path / "tokenizer.json"
    words.save(str(tokenizer_file))
    probe = (
        "import sys; from pathlib import Path; from agents.attribution import AttributionIndex; "
        f"index = AttributionIndex.open(Path(sys.argv[1]), Path(sys.argv[2])); "
        f"print(index.attribute({output!r}).attribution_hash.hex())"
    )
    other_process = subprocess.run(
        [sys.executable, "-c", probe, str(first.directory), str(tokenizer_file)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert other_process.stdout.strip() == first.attribute(output).attribution_hash.hex()


def test_pydoc_topics_with_the_tiny_models_tokenizer(tmp_path: Path, tiny_model: Path) -> None:
    from pydoc_data.topics import topics

    from agents.attribution import Contribution

    net = Datanet.create(tmp_path / "pydoc", name="pydoc")
    owners = [ALICE, BOB, CAROL]
    net.add(
        Contribution(text=topics[key], contributor=owners[number % 3], source=key)
        for number, key in enumerate(sorted(topics))
    )
    index = AttributionIndex.build(tmp_path / "index", [net], tiny_model)
    tokenizer = Tokenizer.from_file(str(tiny_model / "tokenizer.json"))
    passage = tokenizer.encode(topics["yield"][200:1200], add_special_tokens=False).ids
    owner = owners[sorted(topics).index("yield") % 3]
    attribution = index.attribute(passage)
    assert max(span.length for span in attribution.spans) > len(passage) // 2  # cut mid-word: the ends tokenize apart
    assert max(attribution.weights, key=lambda weight: weight.bps).contributor == owner
    assert sum(weight.bps for weight in attribution.weights) == 10_000


# -- properties -------------------------------------------------------------------------------------------------

LETTERS = "abcd"  # a small alphabet: random texts share many spans
texts = st.lists(st.sampled_from(LETTERS), min_size=1, max_size=30).map(" ".join)
contributors = st.sampled_from([ALICE, BOB, CAROL])


def naive_spans(data: list[list[int]], output: list[int], min_span: int) -> list[tuple[int, int, int]]:
    """Maximal spans by brute force: every substring of the output looked up in every document."""

    def count(pattern: list[int]) -> int:
        n = len(pattern)
        return sum(doc[i : i + n] == pattern for doc in data for i in range(len(doc) - n + 1))

    longest = []
    for start in range(len(output)):
        length = 0
        while start + length < len(output) and count(output[start : start + length + 1]):
            length += 1
        longest.append(length)
    return [
        (start, start + length, count(output[start : start + length]))
        for start, length in enumerate(longest)
        if length >= min_span and (start == 0 or length >= longest[start - 1])
    ]


@settings(max_examples=60, deadline=None)
@given(entries=st.lists(st.tuples(texts, contributors), min_size=1, max_size=6), output=texts)
def test_spans_are_the_maximal_matches_found_by_brute_force(build_index, encode: Encode, entries, output) -> None:
    index = build_index(entries, min_span=2)
    kept = {}
    for text, _ in entries:
        kept.setdefault(text, encode(text))  # duplicates are skipped
    assert spans(index.attribute(encode(output))) == naive_spans(list(kept.values()), encode(output), 2)


@settings(max_examples=60, deadline=None)
@given(entries=st.lists(st.tuples(texts, contributors), min_size=1, max_size=6), output=texts)
def test_weights_are_positive_and_sum_to_10000_whenever_anything_matched(
    build_index, encode: Encode, entries, output
) -> None:
    attribution = build_index(entries, min_span=2).attribute(encode(output))
    assert all(weight.bps > 0 for weight in attribution.weights)
    assert sum(weight.bps for weight in attribution.weights) == (10_000 if attribution.spans else 0)
    # Each weight is its exact share rounded down or up (largest remainder).
    exact: dict[str, Fraction] = {}
    for span in attribution.spans:
        for contributor in span.contributors:
            share = Fraction(span.length, len(span.contributions) * len(span.contributors))
            exact[contributor] = exact.get(contributor, Fraction(0)) + share
    total = sum(exact.values(), Fraction(0))
    for weight in attribution.weights:
        assert abs(weight.bps - exact[weight.contributor] * 10_000 / total) < 1


@settings(max_examples=40, deadline=None)
@given(
    entries=st.lists(st.tuples(texts, contributors), min_size=1, max_size=5),
    unrelated=st.lists(st.sampled_from("wxy"), min_size=1, max_size=20).map(" ".join),
    output=texts,
)
def test_adding_an_unrelated_contribution_never_changes_the_result(
    build_index, encode: Encode, entries, unrelated, output
) -> None:
    before = build_index(entries, min_span=2).attribute(encode(output))
    after = build_index([*entries, (unrelated, CAROL)], min_span=2).attribute(encode(output))
    assert (after.spans, after.weights) == (before.spans, before.weights)


def test_letters_are_single_tokens(encode: Encode) -> None:
    assert encode(" ".join(string.ascii_lowercase)) == list(range(26))


def test_attribute_accepts_a_model_calls_tuple(build_index, encode: Encode) -> None:
    index: AttributionIndex = build_index([("a b c d", ALICE)])
    assert index.attribute(tuple(encode("a b c"))) == index.attribute(encode("a b c"))
