"""Typed async access to the staked contracts: transactions, EIP-712 messages, deployment and a local devnet."""

from .anvil import ANVIL_CHAIN_ID, Anvil, advance_time, anvil_binary, dev_accounts
from .deploy import ContractAddresses, Deployment, DeploymentConfig, deploy, load_deployment
from .eip712 import (
    CancelAuthorization,
    Domain,
    Permit,
    ReceiveWithAuthorization,
    TransferWithAuthorization,
    TypedMessage,
    Voucher,
    digest,
    recover,
    sign,
)
from .errors import (
    ChainError,
    ChainUnavailableError,
    ConfigError,
    ContractRevertedError,
    CustomError,
    StakedError,
    TransactionTimeoutError,
    WrongChainError,
)
from .transactions import Transactor, connect, decode_revert
from .units import OPEN_DECIMALS, WEI_PER_OPEN, format_open, to_wei_open

__all__ = [
    "ANVIL_CHAIN_ID",
    "OPEN_DECIMALS",
    "WEI_PER_OPEN",
    "Anvil",
    "CancelAuthorization",
    "ChainError",
    "ChainUnavailableError",
    "ConfigError",
    "ContractAddresses",
    "ContractRevertedError",
    "CustomError",
    "Deployment",
    "DeploymentConfig",
    "Domain",
    "Permit",
    "ReceiveWithAuthorization",
    "StakedError",
    "TransactionTimeoutError",
    "Transactor",
    "TransferWithAuthorization",
    "TypedMessage",
    "Voucher",
    "WrongChainError",
    "advance_time",
    "anvil_binary",
    "connect",
    "decode_revert",
    "deploy",
    "dev_accounts",
    "digest",
    "format_open",
    "load_deployment",
    "recover",
    "sign",
    "to_wei_open",
]
