"""Fixtures of the attribution tests: a word-level tokenizer for hand-checkable cases, the tiny model's for real text.

With the word tokenizer every letter a..z is one token, so ``"a b c"`` is three tokens and spans can be counted by
eye.
"""

from __future__ import annotations

import itertools
import string
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers

from agents import build_tiny_model
from agents.attribution import AttributionIndex, Contribution, Datanet, IndexParameters

BuildIndex = Callable[..., AttributionIndex]


def word_tokenizer(words: Sequence[str] = tuple(string.ascii_lowercase)) -> Tokenizer:
    vocab = {word: number for number, word in enumerate(words)}
    tokenizer = Tokenizer(models.WordLevel({**vocab, "[UNK]": len(vocab)}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return tokenizer


@pytest.fixture(scope="session")
def words() -> Tokenizer:
    return word_tokenizer()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model's directory (tokenizer.json included), built once per session."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def build_index(tmp_path_factory: pytest.TempPathFactory, words: Tokenizer) -> BuildIndex:
    """``build_index([(text, contributor), ...], min_span=3)``: one datanet of those contributions, indexed.

    Session-scoped (each call writes to fresh directories), so hypothesis tests can use it too.
    """
    tmp_path = tmp_path_factory.mktemp("indexes")
    numbers = itertools.count()

    def build(
        entries: Sequence[tuple[str, str]],
        *,
        min_span: int = 3,
        max_occurrences: int = 1000,
        tokenizer: Tokenizer = words,
    ) -> AttributionIndex:
        number = next(numbers)
        net = Datanet.create(tmp_path / f"datanet-{number}", name=f"net-{number}")
        net.add(Contribution(text=text, contributor=contributor) for text, contributor in entries)
        parameters = IndexParameters(min_span=min_span, max_occurrences=max_occurrences)
        return AttributionIndex.build(tmp_path / f"index-{number}", [net], tokenizer, parameters=parameters)

    return build


@pytest.fixture(scope="session")
def encode(words: Tokenizer) -> Callable[[str], list[int]]:
    return lambda text: words.encode(text, add_special_tokens=False).ids
