"""Exceptions of the validator, under :class:`staking.errors.StakedError`.

An audit that finds a cheating agent does not raise: its faults are findings in the report. These errors say that
the validator itself cannot audit as configured.

The tree::

    StakedError
    └── ValidatorError
        ├── ValidatorConfigError (ValueError)      the validator's configuration is unusable: an agent class that
        │   │                                      cannot be imported, a tolerance out of range, no chain to read
        │   └── IndexRootMismatchError             the validator's attribution index is not the one registered
        │                                          for the model on chain
        └── EvidenceError (ValueError)             an evidence document cannot be made for a dispute the report
                                                   does not support
"""

from __future__ import annotations

from staking.errors import StakedError

__all__ = ["EvidenceError", "IndexRootMismatchError", "ValidatorConfigError", "ValidatorError"]


class ValidatorError(StakedError):
    """Root of the validator's errors."""


class ValidatorConfigError(ValidatorError, ValueError):
    """The validator's configuration is unusable: ``reason`` says how."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class IndexRootMismatchError(ValidatorConfigError):
    """The attribution index at ``directory`` has root ``local``; model ``model_id`` is registered with ``registered``.

    Auditing attributions with another index would accuse honest agents: rebuild the index from the registered
    datanets, or point the validator at the right one.
    """

    def __init__(self, directory: str, model_id: str, local: str, registered: str) -> None:
        super().__init__(
            f"attribution index {directory} has root {local}, model {model_id} is registered with {registered}"
        )
        self.directory = directory
        self.model_id = model_id
        self.local = local
        self.registered = registered


class EvidenceError(ValidatorError, ValueError):
    """No evidence for a ``kind`` dispute can be made from this audit: ``reason`` says why."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(f"no {kind} evidence: {reason}")
        self.kind = kind
        self.reason = reason
