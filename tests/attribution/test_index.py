"""Building and opening attribution indexes: the root, the tokenizer guard, damaged files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer

from agents.attribution import (
    AttributionIndex,
    AttributionIndexError,
    Contribution,
    Datanet,
    IndexParameters,
    TokenizerError,
    TokenizerMismatchError,
    load_tokenizer,
    tokenizer_hash,
)

ALICE, BOB = ("0x" + digit * 40 for digit in "12")


def datanet(directory: Path, name: str, *texts: str) -> Datanet:
    net = Datanet.create(directory, name=name)
    net.add(Contribution(text=text, contributor=ALICE if n % 2 else BOB) for n, text in enumerate(texts))
    return net


def test_the_root_covers_data_and_parameters_but_not_datanet_order_or_names(tmp_path: Path, words: Tokenizer) -> None:
    first = datanet(tmp_path / "one", "one", "a b c d", "e f g")
    second = datanet(tmp_path / "two", "two", "h i j k")
    renamed = datanet(tmp_path / "three", "renamed", "h i j k")
    root = AttributionIndex.build(tmp_path / "i1", [first, second], words).root
    assert AttributionIndex.build(tmp_path / "i2", [second, first], words).root == root
    assert AttributionIndex.build(tmp_path / "i3", [first, renamed], words).root == root
    other_parameters = IndexParameters(min_span=4)
    assert AttributionIndex.build(tmp_path / "i4", [first, second], words, parameters=other_parameters).root != root
    assert AttributionIndex.build(tmp_path / "i5", [first], words).root != root


def test_the_index_files_are_memory_mapped_and_six_bytes_per_token_plus_documents(
    tmp_path: Path, words: Tokenizer
) -> None:
    index = AttributionIndex.build(tmp_path / "index", [datanet(tmp_path / "net", "net", "a b c", "d e")], words)
    assert (index.documents, index.tokens) == (2, 7)  # 5 tokens and a separator after each contribution
    assert np.load(tmp_path / "index" / "tokens.npy").dtype == np.uint16
    assert np.load(tmp_path / "index" / "suffixes.npy").tolist() == [0, 1, 2, 4, 5]  # ids are sorted letters
    manifest = json.loads((tmp_path / "index" / "index.json").read_text(encoding="utf-8"))
    assert manifest["root"] == "0x" + index.root.hex()
    assert manifest["tokenizer"] == "0x" + tokenizer_hash(words).hex()


def test_an_index_built_with_another_tokenizer_is_refused(tmp_path: Path, words: Tokenizer, tiny_model: Path) -> None:
    AttributionIndex.build(tmp_path / "index", [datanet(tmp_path / "net", "net", "a b c d")], words)
    with pytest.raises(TokenizerMismatchError) as refused:
        AttributionIndex.open(tmp_path / "index", tiny_model)
    assert refused.value.expected == "0x" + tokenizer_hash(words).hex()
    assert "rebuild the index" in str(refused.value)
    saved = tmp_path / "tokenizer.json"
    words.save(str(saved))
    assert AttributionIndex.open(tmp_path / "index", saved).root  # the same tokenizer from a file is accepted


def test_the_tokenizer_hash_ignores_formatting_and_sees_any_change(tmp_path: Path, tiny_model: Path) -> None:
    tokenizer = load_tokenizer(tiny_model)
    pretty = tmp_path / "pretty.json"
    tokenizer.save(str(pretty), pretty=True)
    assert tokenizer_hash(load_tokenizer(pretty)) == tokenizer_hash(tokenizer)
    changed = json.loads(tokenizer.to_str())
    changed["model"]["vocab"]["zzz-new"] = len(changed["model"]["vocab"])
    assert tokenizer_hash(Tokenizer.from_str(json.dumps(changed))) != tokenizer_hash(tokenizer)
    with pytest.raises(TokenizerError, match="cannot load"):
        load_tokenizer(tmp_path / "missing")


def test_a_damaged_or_edited_index_is_refused(tmp_path: Path, words: Tokenizer) -> None:
    AttributionIndex.build(tmp_path / "index", [datanet(tmp_path / "net", "net", "a b c d", "e f g h")], words)
    tokens = tmp_path / "index" / "tokens.npy"
    original = tokens.read_bytes()
    tokens.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    with pytest.raises(AttributionIndexError, match=r"tokens.npy is missing or does not match the index root"):
        AttributionIndex.open(tmp_path / "index", words)
    tokens.write_bytes(original)
    manifest = tmp_path / "index" / "index.json"
    document = json.loads(manifest.read_text(encoding="utf-8"))
    document["parameters"]["min_span"] = 1
    manifest.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(AttributionIndexError, match="edited"):
        AttributionIndex.open(tmp_path / "index", words)
    with pytest.raises(AttributionIndexError, match=r"index.json is missing"):
        AttributionIndex.open(tmp_path / "elsewhere", words)


def test_build_refuses_an_existing_directory_and_empty_or_repeated_datanets(tmp_path: Path, words: Tokenizer) -> None:
    net = datanet(tmp_path / "net", "net", "a b c")
    (tmp_path / "taken").mkdir()
    with pytest.raises(AttributionIndexError, match="exists already"):
        AttributionIndex.build(tmp_path / "taken", [net], words)
    with pytest.raises(AttributionIndexError, match="given twice"):
        AttributionIndex.build(tmp_path / "twice", [net, Datanet.open(tmp_path / "net")], words)
    with pytest.raises(AttributionIndexError, match="no contribution"):
        AttributionIndex.build(tmp_path / "empty", [Datanet.create(tmp_path / "void", name="void")], words)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["net", "taken", "void"]  # no half-built index left
