"""Deploying the protocol's contracts and the deployment file every other command reads."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from web3 import AsyncWeb3
from web3.contract.async_contract import AsyncContract

from contracts import artifact

from .errors import ConfigError
from .transactions import Transactor
from .units import to_wei_open

__all__ = [
    "CONTRACT_NAMES",
    "OPEN_AMOUNT_PARAMETERS",
    "ContractAddresses",
    "Deployment",
    "DeploymentConfig",
    "DisputeParameters",
    "deploy",
    "load_deployment",
]

_HOUR = 3600
_DAY = 24 * _HOUR
_BPS = 10_000
#: The parameters that are amounts of OPEN (by dotted path): wei in :class:`DeploymentConfig`, decimal OPEN in a
#: ``[deployment]`` table, where people write them.
OPEN_AMOUNT_PARAMETERS = frozenset(
    {"min_agent_stake", "min_validator_stake", "disputes.challenge_bond", "disputes.inclusion_bond"}
)


def _checksummed(value: str) -> str:
    if not AsyncWeb3.is_address(value):
        raise ValueError(f"not an address: {value!r}")
    return str(AsyncWeb3.to_checksum_address(value))


Address = Annotated[str, AfterValidator(_checksummed)]


class DisputeParameters(BaseModel):
    """DisputeManager's parameters (``IDisputeManager.Parameters``); bounds mirror ``parameterBounds``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    challenge_window: int = Field(
        _DAY, ge=_HOUR, le=30 * _DAY, description="seconds after an epoch's commit during which it can be challenged"
    )
    response_window: int = Field(
        _DAY, ge=_HOUR, le=7 * _DAY, description="seconds an agent has to prove a challenged receipt's inclusion"
    )
    voting_period: int = Field(
        2 * _DAY,
        ge=_HOUR,
        le=14 * _DAY,
        description="seconds validators have to vote on an output or attribution dispute",
    )
    quorum_bps: int = Field(
        3_334,
        ge=1_000,
        le=_BPS,
        description="share of all validator stake that must vote for a decision (basis points)",
    )
    equivocation_slash_bps: int = Field(
        5_000, ge=100, le=_BPS, description="share of the stake slashed for two receipts of one request"
    )
    withholding_slash_bps: int = Field(
        2_000, ge=100, le=_BPS, description="share slashed for a receipt not shown in its committed epoch"
    )
    output_slash_bps: int = Field(
        1_000, ge=100, le=_BPS, description="share slashed for an upheld output, attribution or totals dispute"
    )
    prover_reward_bps: int = Field(
        1_000, ge=0, le=5_000, description="share of an equivocation or withholding slash paid to its prover"
    )
    challenger_reward_bps: int = Field(
        1_000, ge=0, le=5_000, description="share of an upheld dispute's slash paid to the challenger"
    )
    challenge_bond: int = Field(
        to_wei_open(100),
        ge=to_wei_open(1),
        le=to_wei_open(1_000_000),
        description="bond of an output, attribution or totals challenge; the agent's when the challenge fails",
    )
    inclusion_bond: int = Field(
        to_wei_open(10),
        ge=0,
        le=to_wei_open(1_000_000),
        description="bond of an inclusion challenge; the agent's when it proves inclusion",
    )

    @property
    def min_unbonding_period(self) -> int:
        """What AgentStaking's unbonding period must cover: a whole dispute after a commit."""
        return self.challenge_window + self.response_window + self.voting_period

    def as_tuple(self) -> tuple[int, ...]:
        """The Solidity struct, in field order."""
        return tuple(self.model_dump().values())


class DeploymentConfig(BaseModel):
    """Parameters of a deployment. Bounds mirror the contracts', so a bad value fails here, naming the field.

    Amounts are OPEN wei; durations are seconds of block time.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    unbonding_period: int = Field(
        7 * _DAY,
        ge=_HOUR,
        le=365 * _DAY,
        description="seconds unstaked OPEN stays slashable; at least challenge + response + voting",
    )
    min_agent_stake: int = Field(to_wei_open(1_000), ge=0, description="the least stake an agent serves with")
    min_validator_stake: int = Field(
        to_wei_open(1_000), ge=0, description="the least stake a validator challenges and votes with"
    )
    withdraw_delay: int = Field(
        _DAY, ge=_HOUR, le=30 * _DAY, description="seconds a payer waits to leave a channel; the agent can still claim"
    )
    token_holder: Address | None = Field(None, description="receives the whole OPEN supply; the deployer when omitted")
    treasury: Address | None = Field(
        None, description="receives slashed stake that is not paid out; the deployer when omitted"
    )
    attribution_bps: int = Field(
        2_000, ge=0, le=_BPS, description="share of an epoch's fees its agent must fund as contributor rewards"
    )
    disputes: DisputeParameters = DisputeParameters()

    @model_validator(mode="after")
    def _unbonding_covers_disputes(self) -> Self:
        if self.unbonding_period < self.disputes.min_unbonding_period:
            raise ValueError(
                f"unbonding_period {self.unbonding_period} s is shorter than a dispute "
                f"(challenge + response + voting = {self.disputes.min_unbonding_period} s)"
            )
        return self


class ContractAddresses(BaseModel):
    """Where each contract of the suite lives."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    open_token: Address
    agent_staking: Address
    payment_channels: Address
    receipt_registry: Address
    dispute_manager: Address
    datanet_registry: Address


class Deployment(BaseModel):
    """A deployed suite: what every command needs to find and check it.

    Example:
        >>> deployment = load_deployment("deployment.json")            # doctest: +SKIP
        >>> w3 = await connect(rpc_url, expected_chain_id=deployment.chain_id)  # doctest: +SKIP
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    chain_id: int = Field(gt=0)
    block: int = Field(ge=0, description="block of the first deployment transaction; event scans start here")
    deployer: Address
    contracts: ContractAddresses
    parameters: DeploymentConfig

    def contract(self, w3: AsyncWeb3[Any], name: str) -> AsyncContract:
        """The deployed contract ``name`` ("OpenToken", "AgentStaking", ...) bound to ``w3``."""
        field = _FIELD_OF_CONTRACT.get(name)
        if field is None:
            raise ConfigError(f"no contract {name!r} in this deployment; known: {', '.join(_FIELD_OF_CONTRACT)}")
        contract: AsyncContract = w3.eth.contract(address=getattr(self.contracts, field), abi=artifact(name).abi)
        return contract

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")


_FIELD_OF_CONTRACT = {
    "OpenToken": "open_token",
    "AgentStaking": "agent_staking",
    "PaymentChannels": "payment_channels",
    "ReceiptRegistry": "receipt_registry",
    "DisputeManager": "dispute_manager",
    "DatanetRegistry": "datanet_registry",
}


#: Every contract of a deployment, in deployment order.
CONTRACT_NAMES: tuple[str, ...] = tuple(_FIELD_OF_CONTRACT)


def load_deployment(path: str | Path) -> Deployment:
    """Reads a deployment file.

    Raises:
        ConfigError: the file is missing or invalid (the message names the field).
    """
    try:
        return Deployment.model_validate_json(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"deployment file {path} not found: run `staked devnet` or deploy first") from exc
    except ValueError as exc:
        raise ConfigError(f"deployment file {path} is invalid: {exc}") from exc


async def deploy(deployer: Transactor, config: DeploymentConfig | None = None) -> Deployment:
    """Deploys and wires the suite from ``deployer``'s account; waits for every receipt.

    Raises:
        ContractRevertedError: a constructor or wiring call reverted.
    """
    config = config or DeploymentConfig()
    holder = config.token_holder or deployer.address
    treasury = config.treasury or deployer.address
    start_block = await deployer.w3.eth.block_number + 1
    token, _ = await deployer.deploy("OpenToken", holder)
    staking, _ = await deployer.deploy(
        "AgentStaking",
        token.address,
        deployer.address,
        treasury,
        config.unbonding_period,
        config.min_agent_stake,
        config.min_validator_stake,
    )
    channels, _ = await deployer.deploy("PaymentChannels", token.address, config.withdraw_delay)
    receipts, _ = await deployer.deploy("ReceiptRegistry", staking.address, deployer.address, config.attribution_bps)
    disputes, _ = await deployer.deploy(
        "DisputeManager", staking.address, receipts.address, deployer.address, config.disputes.as_tuple()
    )
    datanets, _ = await deployer.deploy("DatanetRegistry")
    # Wiring: the dispute manager becomes the only slasher and the registry's source of open disputes.
    await deployer.send(staking.functions.setDisputeManager(disputes.address), action="AgentStaking.setDisputeManager")
    await deployer.send(
        receipts.functions.setDisputeManager(disputes.address), action="ReceiptRegistry.setDisputeManager"
    )
    return Deployment(
        chain_id=await deployer.w3.eth.chain_id,
        block=start_block,
        deployer=deployer.address,
        contracts=ContractAddresses(
            open_token=token.address,
            agent_staking=staking.address,
            payment_channels=channels.address,
            receipt_registry=receipts.address,
            dispute_manager=disputes.address,
            datanet_registry=datanets.address,
        ),
        parameters=config,
    )
