"""The attribution record a receipt commits to: light, frozen pydantic models with one canonical encoding.

A receipt's ``attributionHash`` is :attr:`Attribution.attribution_hash`: keccak256 of the RFC 8785 canonical JSON
of the record. A validator recomputes the record from the same index and the receipt's output token ids and
compares the hashes bit for bit, so the record holds only integers and strings (no floats), in canonical order.
"""

from __future__ import annotations

from typing import Annotated, Self

import rfc8785
from eth_utils.crypto import keccak
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ._types import Address, Hash32

__all__ = ["BPS", "AttributedSpan", "Attribution", "ContributorWeight"]

#: Basis points in a whole: an attribution's weights add up to this when anything matched.
BPS = 10_000


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AttributedSpan(_Frozen):
    """A maximal run of output tokens that occurs in the indexed data, and who it credits.

    Example:
        >>> span = AttributedSpan(start=3, end=11, occurrences=2, contributions=("0x" + "ab" * 32,),
        ...                       contributors=("0x" + "11" * 20,))
        >>> span.length
        8

    Attributes:
        start: the output position of its first token.
        end: the output position after its last token.
        occurrences: how many times it occurs in the index.
        contributions: the content hashes of the contributions holding it, sorted.
        contributors: the addresses that contributed those contributions, sorted by address; the span's weight is
            split evenly among them.
    """

    start: int = Field(ge=0)
    end: int = Field(gt=0)
    occurrences: int = Field(ge=1)
    contributions: tuple[Hash32, ...] = Field(min_length=1)
    contributors: tuple[Address, ...] = Field(min_length=1)

    @property
    def length(self) -> int:
        return self.end - self.start

    @model_validator(mode="after")
    def _canonical(self) -> Self:
        if self.end <= self.start:
            raise ValueError(f"span [{self.start}, {self.end}) is empty")
        if list(self.contributions) != sorted(set(self.contributions)):
            raise ValueError("contributions must be sorted and distinct")
        if [int(a, 16) for a in self.contributors] != sorted({int(a, 16) for a in self.contributors}):
            raise ValueError("contributors must be sorted by address and distinct")
        return self


class ContributorWeight(_Frozen):
    """One contributor's share of an answer, in basis points.

    Example:
        >>> ContributorWeight(contributor="0x" + "11" * 20, bps=2_500).share
        0.25
    """

    contributor: Address
    bps: Annotated[int, Field(gt=0, le=BPS)]

    @property
    def share(self) -> float:
        return self.bps / BPS


class Attribution(_Frozen):
    """Which contributors an answer drew on, in basis points, with the spans that show it.

    Weights are listed by address, each above 0, and add up to exactly 10,000 whenever any span matched. An empty
    output, or one that matches nothing, has no spans and no weights; its hash is still keccak256 of its canonical
    JSON (never zero), so it binds the index root and the output length like any other.

    Example:
        >>> attribution = index.attribute(call.output_token_ids)       # doctest: +SKIP
        >>> attribution.attribution_hash.hex()                          # doctest: +SKIP
        '5f1c...'

    Attributes:
        index_root: the root of the index it was computed with (registered with the model on chain).
        output_tokens: the length of the output, in tokens.
        spans: the maximal matching spans, by position.
        weights: the contributors' basis points, by address.
    """

    index_root: Hash32
    output_tokens: int = Field(ge=0)
    spans: tuple[AttributedSpan, ...] = ()
    weights: tuple[ContributorWeight, ...] = ()

    @model_validator(mode="after")
    def _canonical(self) -> Self:
        if any(span.end > self.output_tokens for span in self.spans):
            raise ValueError("a span ends past the output")
        if [(s.start, s.end) for s in self.spans] != sorted({(s.start, s.end) for s in self.spans}):
            raise ValueError("spans must be sorted by position and distinct")
        addresses = [int(weight.contributor, 16) for weight in self.weights]
        if addresses != sorted(set(addresses)):
            raise ValueError("weights must be sorted by address and distinct")
        if bool(self.spans) != bool(self.weights):
            raise ValueError("weights and spans come together: both empty or both present")
        if self.weights and sum(weight.bps for weight in self.weights) != BPS:
            raise ValueError(f"weights add up to {sum(w.bps for w in self.weights)} basis points, not {BPS}")
        return self

    def canonical_json(self) -> bytes:
        """The RFC 8785 (JCS) encoding that :attr:`attribution_hash` hashes."""
        return rfc8785.dumps(self.model_dump(mode="json"))

    @property
    def attribution_hash(self) -> bytes:
        """keccak256 of :meth:`canonical_json`: the receipt's ``attributionHash`` (bytes32)."""
        return keccak(self.canonical_json())

    def bps_of(self, contributor: str) -> int:
        """The basis points of ``contributor`` (any case), 0 when the answer did not draw on it."""
        wanted = int(contributor, 16)
        return next((weight.bps for weight in self.weights if int(weight.contributor, 16) == wanted), 0)
