"""Datanets on disk: adding from files, JSONL and Python; duplicates; the inputs users get wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from pydantic import ValidationError

from agents.attribution import (
    Contribution,
    ContributionError,
    ContributionTooLargeError,
    Datanet,
    DatanetFormatError,
    NotUtf8Error,
    Registration,
    contributions_from_files,
    contributions_from_jsonl,
)

ALICE, BOB = ("0x" + digit * 40 for digit in "12")
MIXED_CASE = "0xabcdef0123456789abcdef0123456789abcdef01"


def test_create_add_and_open_round_trip_in_order(tmp_path: Path) -> None:
    net = Datanet.create(tmp_path / "net", name="docs")
    assert net.metadata_uri == "staked:datanet/docs"
    result = net.add([Contribution(text="first", contributor=ALICE), Contribution(text="second", contributor=BOB)])
    assert [c.text for c in result.added] == ["first", "second"]
    reopened = Datanet.open(tmp_path / "net")
    assert [(c.text, c.contributor) for c in reopened] == [("first", ALICE), ("second", BOB)]
    assert reopened.contributions[0].content_hash == keccak(b"first")
    assert (
        reopened.digest
        == net.digest
        == keccak(keccak(b"first") + bytes(20 * [0x11]) + keccak(b"second") + bytes(20 * [0x22]))
    )


def test_contributors_are_checksummed_and_the_zero_address_is_refused() -> None:
    assert Contribution(text="x", contributor=MIXED_CASE.upper().replace("0X", "0x")).contributor == (
        to_checksum_address(MIXED_CASE)
    )
    with pytest.raises(ValidationError):
        Contribution(text="x", contributor="0x" + "00" * 20)
    with pytest.raises(ValidationError):
        Contribution(text="x", contributor="alice")


def test_files_and_directories_become_one_contribution_each(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "b.txt").write_text("bee", encoding="utf-8")
    (docs / "sub" / "a.txt").write_text("ay", encoding="utf-8")
    (docs / ".hidden").write_text("skipped", encoding="utf-8")
    single = tmp_path / "single.md"
    single.write_text("single", encoding="utf-8")
    contributions = contributions_from_files([docs, single], contributor=ALICE)
    assert [(c.text, Path(c.source).name) for c in contributions] == [
        ("bee", "b.txt"),
        ("ay", "a.txt"),
        ("single", "single.md"),
    ]


def test_jsonl_lines_name_their_contributor_or_take_the_default(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    lines = [{"text": "one", "contributor": BOB}, {"text": "two"}, {}]
    path.write_text("\n".join(json.dumps(line) for line in lines[:2]) + "\n\n", encoding="utf-8")
    contributions = contributions_from_jsonl(path, contributor=ALICE)
    assert [(c.text, c.contributor, c.source) for c in contributions] == [
        ("one", BOB, f"{path}:1"),
        ("two", ALICE, f"{path}:2"),
    ]
    with pytest.raises(ContributionError, match=r"data.jsonl:2: no contributor"):
        contributions_from_jsonl(path)
    path.write_text(json.dumps(lines[2]) + "\n", encoding="utf-8")
    with pytest.raises(ContributionError, match="expected an object"):
        contributions_from_jsonl(path, contributor=ALICE)
    path.write_text('{"text": "x", "contributor": "0x12"}\n', encoding="utf-8")
    with pytest.raises(ContributionError, match="not an address"):
        contributions_from_jsonl(path)


def test_a_duplicate_is_skipped_and_the_first_contributor_keeps_the_credit(tmp_path: Path) -> None:
    net = Datanet.create(tmp_path / "net", name="docs")
    net.add([Contribution(text="same", contributor=ALICE, source="a.txt")])
    result = net.add(
        [
            Contribution(text="same", contributor=BOB, source="b.txt"),
            Contribution(text="new", contributor=BOB),
            Contribution(text="new", contributor=ALICE),
        ]
    )
    assert [c.text for c in result.added] == ["new"]
    assert [(d.contribution.source, d.existing_index, d.existing_contributor) for d in result.duplicates] == [
        ("b.txt", 0, ALICE),
        ("", 1, BOB),
    ]
    assert [(c.text, c.contributor) for c in Datanet.open(tmp_path / "net")] == [("same", ALICE), ("new", BOB)]


def test_non_utf8_input_is_refused_naming_the_file_or_line_and_the_offset(tmp_path: Path) -> None:
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("café".encode("latin-1"))
    with pytest.raises(NotUtf8Error) as refused:
        contributions_from_files([latin1], contributor=ALICE)
    assert (refused.value.source, refused.value.offset) == (str(latin1), 3)
    lines = tmp_path / "data.jsonl"
    lines.write_bytes(b'{"text": "ok"}\n{"text": "caf\xe9"}\n')
    with pytest.raises(NotUtf8Error, match=r"data.jsonl:2"):
        contributions_from_jsonl(lines, contributor=ALICE)
    lines.write_text('{"text": "lone \\ud800 surrogate"}\n', encoding="utf-8")
    with pytest.raises(NotUtf8Error):
        contributions_from_jsonl(lines, contributor=ALICE)


def test_a_huge_contribution_is_refused_before_it_is_read_and_nothing_is_added(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_bytes(b"x" * 2_000)
    with pytest.raises(ContributionTooLargeError) as refused:
        contributions_from_files([big], contributor=ALICE, max_bytes=1_000)
    assert (refused.value.size, refused.value.limit) == (2_000, 1_000)
    net = Datanet.create(tmp_path / "net", name="small", max_contribution_bytes=10)
    with pytest.raises(ContributionTooLargeError, match="split it up"):
        net.add([Contribution(text="fits", contributor=ALICE), Contribution(text="y" * 11, contributor=ALICE)])
    assert len(Datanet.open(tmp_path / "net")) == 0


def test_datanet_directories_are_checked(tmp_path: Path) -> None:
    with pytest.raises(DatanetFormatError, match="missing"):
        Datanet.open(tmp_path / "nowhere")
    net = Datanet.create(tmp_path / "net", name="docs")
    with pytest.raises(DatanetFormatError, match="not an empty directory"):
        Datanet.create(tmp_path / "net", name="again")
    with pytest.raises(DatanetFormatError, match="metadata_uri"):
        Datanet.create(tmp_path / "other", name="x", metadata_uri="u" * 2049)
    net.add([Contribution(text="original", contributor=ALICE)])
    path = tmp_path / "net" / "contributions.jsonl"
    path.write_text(path.read_text(encoding="utf-8").replace("original", "edited"), encoding="utf-8")
    with pytest.raises(DatanetFormatError, match="does not match its hash"):
        Datanet.open(tmp_path / "net")


def test_the_registration_is_recorded(tmp_path: Path) -> None:
    net = Datanet.create(tmp_path / "net", name="docs")
    net.set_registration(Registration(chain_id=31337, registry=BOB, datanet_id=4))
    assert Datanet.open(tmp_path / "net").registration == Registration(chain_id=31337, registry=BOB, datanet_id=4)
