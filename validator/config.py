"""The settings of a validator daemon: the ``[validator]`` table of the config file, overridden by
``STAKED_VALIDATOR_*`` environment variables.

Example ``validator.toml`` (the ``[chain]`` table is :class:`staking.ChainSettings`; its key is the validator's,
whose stake and signatures are at work)::

    [chain]
    rpc_url = "http://127.0.0.1:8545"
    deployment_file = ".staked/deployment.json"
    keystore = "keys/validator.json"

    [validator]
    vllm_url = "http://127.0.0.1:8001"
    stake = "1000"                  # OPEN to hold staked as a validator; staked and topped up at start
    sample_rate = 0.1               # share of each committed epoch's receipts audited (1.0: all)
    state = ".staked/validator.sqlite"
    port = 9100                     # POST /v1/receipts, GET /v1/evidence/{hash}, GET /metrics

    [validator.models."0x5f1c...modelId"]
    name = "tiny-docs"              # the name this validator's vLLM serves the model under
    tokenizer = "build/model"
    index = "build/index"           # the attribution index registered with the model

    [validator.agents]
    summarizer = "examples/summarizer.py:Summarizer"     # agent name (or operator address) -> its class

    [validator.tolerances]
    greedy = 0.01                   # see validator.Tolerances

Durations of block time (``inclusion_margin``, ``vote_margin``) are compared with the chain's clock; the job
intervals and retry delays are wall-clock seconds of this process.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import SettingsConfigDict

from staking.settings import TomlTableSettings
from staking.units import to_wei_open

from .audit import ServedModel, Tolerances

__all__ = ["ModelSettings", "ValidatorSettings"]

_TOLERANCE_FIELDS = frozenset(field.name for field in dataclasses.fields(Tolerances))


class ModelSettings(BaseModel):
    """A model this validator audits answers of, keyed by its registered ``modelId`` in ``[validator.models]``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, description="the name this validator's vLLM serves the model under")
    tokenizer: Path = Field(description="the model directory (or its tokenizer.json)")
    index: Path | None = Field(
        None, description="the attribution index registered with the model; without it attributions go unchecked"
    )


class ValidatorSettings(TomlTableSettings):
    """What a validator audits, how often, how it acts, and where it keeps its state."""

    model_config = SettingsConfigDict(env_prefix="STAKED_VALIDATOR_", extra="forbid", frozen=True)
    toml_table: ClassVar[str] = "validator"

    vllm_url: str = Field("http://127.0.0.1:8000", pattern=r"^https?://", description="this validator's vLLM")
    dtype: str = Field("float32", description="the dtype this validator's vLLM was started with")
    models: dict[str, ModelSettings] = Field(
        min_length=1, description="the models audited, by registered modelId (0x and 64 hex digits)"
    )
    agents: dict[str, str] = Field(
        default_factory=dict,
        description="agents' published classes for replay, 'module:Class' or 'file.py:Class', by agent name or "
        "operator address; others are audited without replay",
    )
    tolerances: Tolerances = Field(default_factory=Tolerances, description="see validator.Tolerances")
    state: Path = Field(Path(".staked/validator.sqlite"), description="the state and event cursor (SQLite)")
    host: str = Field("127.0.0.1", description="interface of the receipts, evidence and metrics server")
    port: int = Field(9100, ge=0, lt=65536, description="its port (0: any free port)")
    stake: str | None = Field(None, description="OPEN to hold staked as a validator: staked or topped up at start")
    sample_rate: float = Field(0.1, ge=0.0, le=1.0, description="share of each epoch's receipts audited")
    seed_delay_blocks: int = Field(
        1, ge=0, description="blocks after an epoch's commit whose hash seeds its sample (the agent cannot know it)"
    )
    audit_delay: float = Field(
        30.0, ge=0, description="seconds after a commit is seen before its receipts are fetched (the agent journals it)"
    )
    audit_concurrency: int = Field(4, ge=1, le=256, description="audits run at once")
    events_seconds: float = Field(5.0, gt=0, description="how often chain events are read")
    audit_seconds: float = Field(10.0, gt=0, description="how often due audits and reported receipts are checked")
    vote_seconds: float = Field(30.0, gt=0, description="how often open challenges are looked at to vote")
    resolve_seconds: float = Field(60.0, gt=0, description="how often disputes past their deadline are resolved")
    fetch_timeout: float = Field(30.0, gt=0, description="seconds one read of a record from an agent may take")
    fetch_retries: int = Field(3, ge=1, le=10, description="tries of one read (no answer, 429 or 5xx retried)")
    fetch_backoff: float = Field(0.5, ge=0, description="seconds before the second try of a read; doubled after")
    fetch_attempts: int = Field(
        4, ge=1, description="job runs that try to read a record before the agent counts as not serving it"
    )
    retry_seconds: float = Field(60.0, ge=0, description="seconds before a failed read is attempted again; doubled")
    inclusion_margin: int = Field(
        3600,
        ge=0,
        description="block-time seconds before an epoch's challenge deadline at which a receipt the agent has not "
        "shown included (or a record it has not served) is challenged anyway",
    )
    vote_margin: int = Field(
        600, ge=0, description="block-time seconds before a vote's deadline at which the validator votes on what it has"
    )
    from_block: int | None = Field(None, ge=0, description="the first block whose events are read (the deployment's)")
    max_body_bytes: int = Field(1 << 16, ge=1024, description="the largest receipt accepted at POST /v1/receipts")
    shutdown_grace: float = Field(30.0, ge=0, description="seconds running jobs get to finish on shutdown")

    @field_validator("models")
    @classmethod
    def _model_ids(cls, models: dict[str, ModelSettings]) -> dict[str, ModelSettings]:
        normalised = {}
        for model_id, model in models.items():
            if len(model_id) != 66 or not model_id.startswith("0x"):
                raise ValueError(f"model {model_id!r}: a modelId is 0x and 64 hex digits")
            try:
                bytes.fromhex(model_id[2:])
            except ValueError as exc:
                raise ValueError(f"model {model_id!r}: a modelId is 0x and 64 hex digits") from exc
            normalised[model_id.lower()] = model
        return normalised

    @field_validator("tolerances", mode="before")
    @classmethod
    def _known_tolerances(cls, value: Any) -> Any:
        if isinstance(value, dict):
            unknown = sorted(set(value) - _TOLERANCE_FIELDS)
            if unknown:
                raise ValueError(f"unknown tolerances {unknown}; known: {sorted(_TOLERANCE_FIELDS)}")
        return value

    @field_validator("stake")
    @classmethod
    def _stake_is_open(cls, value: str | None) -> str | None:
        if value is not None:
            to_wei_open(value)
        return value

    @property
    def stake_wei(self) -> int | None:
        return None if self.stake is None else to_wei_open(self.stake)

    def served_models(self) -> list[ServedModel]:
        """The configured models as the auditor takes them."""
        return [
            ServedModel(
                model_id=bytes.fromhex(model_id[2:]), name=model.name, tokenizer=model.tokenizer, index=model.index
            )
            for model_id, model in self.models.items()
        ]
