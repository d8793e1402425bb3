"""The settings of an agent host: the ``[agent]`` table of the config file, overridden by ``STAKED_AGENT_*``.

Example ``agent.toml`` (the ``[chain]`` table is :class:`staking.ChainSettings`; its keystore is the operator's)::

    [chain]
    rpc_url = "http://127.0.0.1:8545"
    deployment_file = ".staked/deployment.json"
    keystore = "keys/operator.json"

    [agent]
    agent = "examples.summarizer:Summarizer"
    vllm_url = "http://127.0.0.1:8000"
    index = "build/index"
    tokenizer = "build/model"
    signer_keystore = "keys/signer.json"
    stake = "1000"            # OPEN to hold staked; registers and tops up when missing
    public_url = "https://agent.example"

Keys never appear in the file: keystores are encrypted (their password comes from ``STAKED_KEYSTORE_PASSWORD``
or a prompt), and ``signer_key_env`` names an environment variable for development.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from staking.settings import TomlTableSettings
from staking.units import to_wei_open

__all__ = ["AgentSettings"]


class AgentSettings(TomlTableSettings):
    """What an agent host serves, where, and how it settles."""

    model_config = SettingsConfigDict(env_prefix="STAKED_AGENT_", extra="forbid", frozen=True)
    toml_table: ClassVar[str] = "agent"

    agent: str = Field(description="the Agent subclass to serve, as 'module:Class'")
    host: str = Field("127.0.0.1", description="interface to listen on")
    port: int = Field(8080, ge=0, lt=65536, description="port to listen on (0: any free port)")
    public_url: str | None = Field(None, description="the URL registered on chain; http://host:port by default")
    vllm_url: str = Field("http://127.0.0.1:8000", pattern=r"^https?://", description="the vLLM server")
    dtype: str = Field("float32", description="the dtype vLLM was started with (part of engineHash)")
    index: Path = Field(description="the attribution index directory registered with the model")
    tokenizer: Path = Field(description="the model directory (or tokenizer.json) the index was built with")
    model_id: str | None = Field(
        None,
        pattern=r"^0x[0-9a-fA-F]{64}$",
        description="the modelId to register; the registered one by default, or at a first registration the one of "
        "the weights in the tokenizer's model directory",
    )
    journal: Path = Field(Path(".staked/journal.sqlite"), description="the receipts journal (SQLite)")
    signer_keystore: Path | None = Field(None, description="encrypted keystore of the hot receipt signer")
    signer_key_env: str | None = Field(None, description="environment variable holding the signer key (development)")
    stake: str | None = Field(None, description="OPEN to hold staked: register and top up at start when short")
    epoch_seconds: float = Field(3600.0, gt=0, description="how long an epoch runs before it is committed")
    claim_seconds: float = Field(600.0, gt=0, description="how often channel vouchers are claimed")
    settle_seconds: float = Field(30.0, gt=0, description="how often EIP-3009 authorizations are settled")
    challenge_seconds: float = Field(15.0, gt=0, description="how often inclusion challenges are looked for")
    max_body_bytes: int = Field(1 << 20, ge=1024, description="largest request body accepted")
    max_concurrency: int = Field(64, ge=1, description="requests served at once; the rest wait")
    shutdown_grace: float = Field(30.0, ge=0, description="seconds in-flight requests get to finish on shutdown")

    @field_validator("stake")
    @classmethod
    def _stake_is_open(cls, value: str | None) -> str | None:
        if value is not None:
            to_wei_open(value)
        return value

    @property
    def stake_wei(self) -> int | None:
        return None if self.stake is None else to_wei_open(self.stake)
