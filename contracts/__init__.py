"""The compiled contracts of staked: ABI and bytecode, as committed under ``contracts/artifacts``.

The artifacts are produced by ``node contracts/build.mjs`` from ``contracts/src`` with the pinned solc, and a
test proves they match the sources. This module only reads them, so it imports nothing of the project.

Example:
    >>> from contracts import artifact
    >>> artifact("OpenToken").abi[0]["type"]
    'constructor'
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Artifact", "UnknownArtifactError", "artifact", "artifact_names"]

_ARTIFACTS = resources.files(__name__) / "artifacts"


class UnknownArtifactError(LookupError):
    """No artifact of that name is committed; ``available`` lists the names that are."""

    def __init__(self, name: str, available: list[str]) -> None:
        super().__init__(f"no contract artifact {name!r}; available: {', '.join(available)}")
        self.name = name
        self.available = available


class Artifact(BaseModel):
    """One compiled contract."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    name: str = Field(alias="contractName")
    source: str = Field(alias="sourceName")
    compiler: dict[str, Any]
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str = Field(alias="deployedBytecode")


def artifact_names() -> list[str]:
    """Names of every committed artifact, sorted."""
    return sorted(entry.name.removesuffix(".json") for entry in _ARTIFACTS.iterdir() if entry.name.endswith(".json"))


@cache
def artifact(name: str) -> Artifact:
    """The artifact of contract ``name`` (for instance ``"OpenToken"``).

    Raises:
        UnknownArtifactError: no artifact of that name exists.
    """
    path = _ARTIFACTS / f"{name}.json"
    if not path.is_file():
        raise UnknownArtifactError(name, artifact_names())
    return Artifact.model_validate(json.loads(path.read_text(encoding="utf-8")))
