"""Datanets on disk: contributions (text, contributor, content hash), added from files, JSONL or Python.

A datanet is a directory::

    datanet.json          name, metadata URI, size limit, and where it is registered on chain (once it is)
    contributions.jsonl   one contribution per line, in the order they were added (their on-chain order)

A contribution's content hash is keccak256 of its text's UTF-8 bytes, exactly as given (no normalisation), which is
what DatanetRegistry records. A text present twice is kept once: the first contribution stays and is credited; a
later copy, whoever offers it, is reported as a duplicate and not added (the registry itself refuses a content hash
twice in a datanet). Texts must be UTF-8 and at most ``max_contribution_bytes`` long (1 MiB unless chosen at
creation): a contribution is the unit that gets credit, so a huge one would take the credit for everything in it.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from eth_utils.crypto import keccak
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ._types import Address, Hash32, hex32
from .errors import ContributionError, ContributionTooLargeError, DatanetFormatError, NotUtf8Error

__all__ = [
    "DEFAULT_MAX_CONTRIBUTION_BYTES",
    "AddResult",
    "Contribution",
    "Datanet",
    "Duplicate",
    "Registration",
    "contributions_from_files",
    "contributions_from_jsonl",
]

logger = logging.getLogger(__name__)

DEFAULT_MAX_CONTRIBUTION_BYTES = 2**20
_MANIFEST, _CONTRIBUTIONS = "datanet.json", "contributions.jsonl"
_PYTHON_SOURCE = "<python>"


class Contribution(BaseModel):
    """One piece of content and the address to pay when an answer draws on it.

    Example:
        >>> c = Contribution(text="The for statement iterates.", contributor="0x" + "11" * 20)
        >>> c.content_hash.hex()[:8]
        '9512aec7'

    Attributes:
        text: the content; its UTF-8 bytes are hashed as they are.
        contributor: who is paid (checksummed on the way in; not the zero address).
        source: where it came from (a path, ``file.jsonl:LINE``); informative only, neither hashed nor on chain.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str = Field(min_length=1)
    contributor: Address
    source: str = ""

    @field_validator("text")
    @classmethod
    def _utf8(cls, text: str) -> str:
        _utf8_bytes(text, "<text>")  # a lone surrogate (possible in a Python str) has no UTF-8 encoding
        return text

    @property
    def content_hash(self) -> bytes:
        """keccak256 of the text's UTF-8 bytes: the contribution's identity on chain and in the index."""
        return keccak(self.text.encode("utf-8"))

    @property
    def size(self) -> int:
        """The text's length in UTF-8 bytes."""
        return len(self.text.encode("utf-8"))


class Registration(BaseModel):
    """Where a datanet lives on chain, recorded by ``staked datanet register``.

    Example:
        >>> Registration(chain_id=31337, registry="0x" + "22" * 20, datanet_id=1).datanet_id
        1
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    chain_id: int = Field(gt=0)
    registry: Address
    datanet_id: int = Field(gt=0)


class _Manifest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["staked-datanet/1"] = "staked-datanet/1"
    name: str = Field(min_length=1)
    metadata_uri: str = Field(min_length=1, max_length=2048)  # DatanetRegistry's bounds
    max_contribution_bytes: int = Field(gt=0)
    registration: Registration | None = None


class _Record(BaseModel):
    """A line of ``contributions.jsonl``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    content_hash: Hash32
    contributor: Address
    source: str
    text: str


@dataclass(frozen=True)
class Duplicate:
    """A contribution that was not added because its text is already contribution ``existing_index``."""

    contribution: Contribution
    existing_index: int
    existing_contributor: str


@dataclass(frozen=True)
class AddResult:
    """What :meth:`Datanet.add` did: the contributions appended (in order) and the duplicates it skipped."""

    added: tuple[Contribution, ...]
    duplicates: tuple[Duplicate, ...]


class Datanet:
    """A datanet directory: create it, add contributions, read them back in order.

    Not safe for two writers at once (one curator adds at a time). Reading and adding are plain file I/O: async
    code calls them through ``asyncio.to_thread``.

    Example:
        >>> net = Datanet.create(Path("docs-net"), name="python-docs")                          # doctest: +SKIP
        >>> net.add(contributions_from_files([Path("docs/")], contributor=alice)).added        # doctest: +SKIP
        >>> len(Datanet.open(Path("docs-net")))                                                 # doctest: +SKIP
    """

    def __init__(self, directory: Path, manifest: _Manifest, contributions: Sequence[Contribution]) -> None:
        self.directory = directory
        self._manifest = manifest
        self._contributions = list(contributions)
        self._index_of = {c.content_hash: i for i, c in enumerate(self._contributions)}

    def __repr__(self) -> str:
        return f"<Datanet {self.name!r} contributions={len(self)} at {self.directory}>"

    def __len__(self) -> int:
        return len(self._contributions)

    def __iter__(self) -> Iterator[Contribution]:
        return iter(self._contributions)

    @classmethod
    def create(
        cls,
        directory: Path,
        *,
        name: str,
        metadata_uri: str | None = None,
        max_contribution_bytes: int = DEFAULT_MAX_CONTRIBUTION_BYTES,
    ) -> Datanet:
        """Creates an empty datanet in ``directory`` (new, or an empty directory).

        Args:
            name: a human name, also the default metadata URI's tail.
            metadata_uri: what DatanetRegistry records (1 to 2048 bytes); ``staked:datanet/<name>`` by default.
            max_contribution_bytes: the largest contribution accepted, in UTF-8 bytes.

        Raises:
            DatanetFormatError: the directory holds files already, or a value is out of bounds.
        """
        if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
            raise DatanetFormatError(str(directory), "exists and is not an empty directory")
        try:
            manifest = _Manifest(
                name=name,
                metadata_uri=metadata_uri or f"staked:datanet/{name}",
                max_contribution_bytes=max_contribution_bytes,
            )
        except ValidationError as exc:
            raise DatanetFormatError(str(directory), _first_error(exc)) from exc
        directory.mkdir(parents=True, exist_ok=True)
        (directory / _CONTRIBUTIONS).touch()
        datanet = cls(directory, manifest, ())
        datanet._write_manifest()
        return datanet

    @classmethod
    def open(cls, directory: Path) -> Datanet:
        """Reads the datanet in ``directory``, checking every content hash against its text.

        Raises:
            DatanetFormatError: it is missing, malformed, or a text no longer matches its hash (edited by hand).
        """
        where = str(directory)
        try:
            manifest = _Manifest.model_validate_json((directory / _MANIFEST).read_bytes())
            lines = (directory / _CONTRIBUTIONS).read_bytes().splitlines()
        except FileNotFoundError as exc:
            raise DatanetFormatError(where, f"{exc.filename} is missing: create the datanet first") from exc
        except ValidationError as exc:
            raise DatanetFormatError(where, f"{_MANIFEST}: {_first_error(exc)}") from exc
        contributions = []
        for number, line in enumerate(lines, start=1):
            try:
                record = _Record.model_validate_json(line)
            except ValidationError as exc:
                raise DatanetFormatError(where, f"{_CONTRIBUTIONS}:{number}: {_first_error(exc)}") from exc
            contribution = Contribution(text=record.text, contributor=record.contributor, source=record.source)
            if hex32(contribution.content_hash) != record.content_hash:
                raise DatanetFormatError(where, f"{_CONTRIBUTIONS}:{number}: the text does not match its hash")
            contributions.append(contribution)
        return cls(directory, manifest, contributions)

    @property
    def name(self) -> str:
        return self._manifest.name

    @property
    def metadata_uri(self) -> str:
        return self._manifest.metadata_uri

    @property
    def max_contribution_bytes(self) -> int:
        return self._manifest.max_contribution_bytes

    @property
    def registration(self) -> Registration | None:
        return self._manifest.registration

    @property
    def contributions(self) -> tuple[Contribution, ...]:
        return tuple(self._contributions)

    @property
    def digest(self) -> bytes:
        """keccak256 over every ``(contentHash, contributor)`` pair in order, packed as 32 + 20 bytes: what an
        attribution index records of each datanet it covers."""
        return keccak(b"".join(c.content_hash + bytes.fromhex(c.contributor[2:]) for c in self._contributions))

    def add(self, contributions: Iterable[Contribution]) -> AddResult:
        """Appends ``contributions`` in order, skipping texts already present (the first contributor keeps them).

        Either every new contribution is appended or, when one is refused, none is.

        Raises:
            ContributionTooLargeError: a contribution exceeds :attr:`max_contribution_bytes`.
        """
        added: list[Contribution] = []
        duplicates: list[Duplicate] = []
        index_of = dict(self._index_of)
        for contribution in contributions:
            _check_size(contribution.source or _PYTHON_SOURCE, contribution.size, self.max_contribution_bytes)
            existing = index_of.get(contribution.content_hash)
            if existing is not None:
                first = self._contributions[existing] if existing < len(self) else added[existing - len(self)]
                duplicates.append(Duplicate(contribution, existing, first.contributor))
                logger.info(
                    "datanet %s: %s duplicates contribution %d, kept for %s",
                    self.name,
                    contribution.source or _PYTHON_SOURCE,
                    existing,
                    first.contributor,
                )
                continue
            index_of[contribution.content_hash] = len(self) + len(added)
            added.append(contribution)
        if added:
            self._append(added)
            self._contributions.extend(added)
            self._index_of = index_of
        return AddResult(tuple(added), tuple(duplicates))

    def set_registration(self, registration: Registration) -> None:
        """Records where the datanet was created on chain."""
        self._manifest = self._manifest.model_copy(update={"registration": registration})
        self._write_manifest()

    def _append(self, contributions: Sequence[Contribution]) -> None:
        lines = "".join(
            _Record(
                content_hash=hex32(c.content_hash), contributor=c.contributor, source=c.source, text=c.text
            ).model_dump_json()
            + "\n"
            for c in contributions
        )
        with (self.directory / _CONTRIBUTIONS).open("a", encoding="utf-8") as file:
            file.write(lines)
            file.flush()
            os.fsync(file.fileno())

    def _write_manifest(self) -> None:
        path = self.directory / _MANIFEST
        temporary = path.with_suffix(".tmp")
        temporary.write_text(self._manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")
        temporary.replace(path)  # atomic: a crash leaves the old manifest or the new one


def contributions_from_files(
    paths: Iterable[Path], *, contributor: str, max_bytes: int = DEFAULT_MAX_CONTRIBUTION_BYTES
) -> list[Contribution]:
    """One contribution per file, all credited to ``contributor``; directories are walked (sorted, recursively,
    skipping hidden entries).

    Raises:
        ContributionError: a file is empty, or ``contributor`` is not a payable address.
        NotUtf8Error: a file is not UTF-8.
        ContributionTooLargeError: a file is larger than ``max_bytes`` (checked before reading it).
    """
    contributions = []
    for path in _walk(paths):
        _check_size(str(path), path.stat().st_size, max_bytes)
        data = path.read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NotUtf8Error(str(path), exc.start) from exc
        contributions.append(_contribution(str(path), text, contributor))
    return contributions


def contributions_from_jsonl(
    path: Path, *, contributor: str | None = None, max_bytes: int = DEFAULT_MAX_CONTRIBUTION_BYTES
) -> list[Contribution]:
    """One contribution per line of ``path``: an object ``{"text": ..., "contributor": ...}``.

    Args:
        contributor: credited for lines without a ``contributor``; without it, every line must name one.
        max_bytes: the largest text accepted, in UTF-8 bytes.

    Raises:
        ContributionError: a line is not such an object, or has no usable contributor (``source`` names the line).
        NotUtf8Error: a line is not UTF-8.
        ContributionTooLargeError: a text is larger than ``max_bytes``.
    """
    contributions = []
    for number, raw in enumerate(path.read_bytes().splitlines(), start=1):
        source = f"{path}:{number}"
        if not raw.strip():
            continue
        try:
            entry = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise NotUtf8Error(source, exc.start) from exc
        except json.JSONDecodeError as exc:
            raise ContributionError(source, f"not JSON: {exc.msg}") from exc
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("text"), str)
            or set(entry) - {"text", "contributor"}
        ):
            raise ContributionError(source, 'expected an object {"text": str, "contributor": address (optional)}')
        text, credited = entry["text"], entry.get("contributor", contributor)
        if not isinstance(credited, str):
            raise ContributionError(source, "no contributor: give one on the line or for the whole file")
        _check_size(source, len(text.encode("utf-8", errors="surrogatepass")), max_bytes)
        contributions.append(_contribution(source, text, credited))
    return contributions


def _check_size(source: str, size: int, limit: int) -> None:
    """Raises :class:`ContributionTooLargeError` when ``size`` bytes exceed ``limit``."""
    if size > limit:
        raise ContributionTooLargeError(source, size, limit)


def _contribution(source: str, text: str, contributor: str) -> Contribution:
    """A :class:`Contribution`, pydantic's complaints turned into our errors naming ``source``."""
    _utf8_bytes(text, source)
    try:
        return Contribution(text=text, contributor=contributor, source=source)
    except ValidationError as exc:
        raise ContributionError(source, _first_error(exc)) from exc


def _utf8_bytes(text: str, source: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise NotUtf8Error(source, exc.start) from exc


def _walk(paths: Iterable[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(
                p
                for p in path.rglob("*")
                if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        else:
            yield path


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else str(error["msg"])
