"""Pins the model factory's public surface, and keeps it light to import (torch loads on first use of training)."""

from __future__ import annotations

import subprocess
import sys

import agents.factory
from agents import AgentError

PUBLIC = [
    "CHECKPOINT",
    "Architecture",
    "CardDatanet",
    "CheckpointError",
    "FactoryError",
    "LlamaShape",
    "ModelCard",
    "ModelDirectoryError",
    "ModelSize",
    "ParentModel",
    "Progress",
    "TrainingDataError",
    "TrainingFigures",
    "TrainingRecipe",
    "TrainingResult",
    "model_id",
    "train_model",
]


def test_the_surface_is_pinned_sorted_and_complete() -> None:
    assert agents.factory.__all__ == PUBLIC
    assert sorted(PUBLIC, key=lambda name: (not name.isupper(), name)) == PUBLIC
    for name in PUBLIC:
        assert hasattr(agents.factory, name), name
    errors = [getattr(agents.factory, name) for name in PUBLIC if name.endswith("Error")]
    assert all(issubclass(error, agents.factory.FactoryError) for error in errors)
    assert issubclass(agents.factory.FactoryError, AgentError)


def test_importing_it_or_the_cli_loads_torch_only_when_training() -> None:
    probe = (
        "import sys, agents.factory, staked.cli; before = 'torch' in sys.modules; "
        "agents.factory.train_model; print(before, 'torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    assert result.stdout.split() == ["False", "True"]
