"""Pins each package's public surface: a change here is a change users see."""

from __future__ import annotations

import importlib

import pytest

PUBLIC = {
    "contracts": ["Artifact", "UnknownArtifactError", "artifact", "artifact_names"],
}


@pytest.mark.parametrize("package", ["contracts", "staking"])
def test_all_is_sorted_and_every_name_exists(package: str) -> None:
    module = importlib.import_module(package)
    assert module.__all__ == sorted(module.__all__, key=lambda name: (not name.isupper(), name))
    for name in module.__all__:
        assert hasattr(module, name), name


def test_contracts_surface() -> None:
    assert importlib.import_module("contracts").__all__ == PUBLIC["contracts"]
