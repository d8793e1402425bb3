"""The committed artifacts are exactly what the committed sources compile to, and the loader reads them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from contracts import Artifact, UnknownArtifactError, artifact, artifact_names

ROOT = Path(__file__).resolve().parents[2]
DEPLOYABLE = {"OpenToken", "AgentStaking", "PaymentChannels", "ReceiptRegistry", "DisputeManager", "DatanetRegistry"}


def test_committed_artifacts_match_a_fresh_compile() -> None:
    node = shutil.which("node")
    assert node, "node is needed to run solc-js"
    result = subprocess.run(
        [node, "contracts/build.mjs", "--check"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert "match their sources" in result.stdout


def test_every_deployable_contract_has_an_artifact() -> None:
    assert set(artifact_names()) >= DEPLOYABLE
    sources = {path.stem for path in (ROOT / "contracts" / "src").glob("*.sol")}
    assert set(artifact_names()) == sources


@pytest.mark.parametrize("name", sorted(DEPLOYABLE))
def test_artifact_carries_abi_and_bytecode(name: str) -> None:
    compiled = artifact(name)
    assert isinstance(compiled, Artifact)
    assert compiled.name == name
    assert compiled.compiler["version"].startswith("0.8.30+")
    assert compiled.bytecode.startswith("0x")
    assert len(compiled.bytecode) > 1_000
    assert any(entry["type"] == "function" for entry in compiled.abi)
    assert all(entry["type"] != "error" or entry["name"] for entry in compiled.abi)


def test_unknown_artifact_names_the_available_ones() -> None:
    with pytest.raises(UnknownArtifactError) as caught:
        artifact("NoSuchContract")
    assert caught.value.name == "NoSuchContract"
    assert "OpenToken" in caught.value.available
    assert "OpenToken" in str(caught.value)
