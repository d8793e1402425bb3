"""Exceptions of the model factory, under :class:`agents.AgentError`.

The tree::

    StakedError
    └── AgentError
        └── FactoryError
            ├── ModelDirectoryError (ValueError)    a model directory cannot be read, written, or trained into
            ├── CheckpointError (ValueError)        a checkpoint is unreadable or belongs to another training run
            └── TrainingDataError (ValueError)      the datanets cannot make a training set for the recipe

Foreign errors (``torch.load``, ``json``, pydantic's ``ValidationError``) are translated where the data comes in,
with ``raise ... from exc``.
"""

from __future__ import annotations

from ..errors import AgentError

__all__ = ["CheckpointError", "FactoryError", "ModelDirectoryError", "TrainingDataError"]


class FactoryError(AgentError):
    """Root of the model factory's errors."""


class ModelDirectoryError(FactoryError, ValueError):
    """The model directory at ``path`` cannot be used: ``reason``."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"model directory {path}: {reason}")
        self.path = path
        self.reason = reason


class CheckpointError(FactoryError, ValueError):
    """The checkpoint at ``path`` cannot be resumed from: ``reason``."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"checkpoint {path}: {reason}")
        self.path = path
        self.reason = reason


class TrainingDataError(FactoryError, ValueError):
    """The datanets cannot make a training set: ``reason``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
