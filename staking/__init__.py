"""Typed async access to the staked contracts: transactions, EIP-712 messages, deployment and a local devnet."""

from .anvil import ANVIL_CHAIN_ID, Anvil, advance_time, anvil_binary, dev_accounts
from .deploy import ContractAddresses, Deployment, DeploymentConfig, DisputeParameters, deploy, load_deployment
from .eip712 import (
    CancelAuthorization,
    Domain,
    Permit,
    Receipt,
    ReceiveWithAuthorization,
    TransferWithAuthorization,
    TypedMessage,
    Voucher,
    digest,
    recover,
    sign,
    struct_hash,
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
from .keys import KEYSTORE_PASSWORD_ENV, account_from_env, create_keystore, load_keystore
from .settings import ChainSettings
from .transactions import Transactor, connect, decode_revert
from .units import OPEN_DECIMALS, WEI_PER_OPEN, format_open, to_wei_open

__all__ = [
    "ANVIL_CHAIN_ID",
    "KEYSTORE_PASSWORD_ENV",
    "OPEN_DECIMALS",
    "WEI_PER_OPEN",
    "Anvil",
    "CancelAuthorization",
    "ChainError",
    "ChainSettings",
    "ChainUnavailableError",
    "ConfigError",
    "ContractAddresses",
    "ContractRevertedError",
    "CustomError",
    "Deployment",
    "DeploymentConfig",
    "DisputeParameters",
    "Domain",
    "Permit",
    "Receipt",
    "ReceiveWithAuthorization",
    "StakedError",
    "TransactionTimeoutError",
    "Transactor",
    "TransferWithAuthorization",
    "TypedMessage",
    "Voucher",
    "WrongChainError",
    "account_from_env",
    "advance_time",
    "anvil_binary",
    "connect",
    "create_keystore",
    "decode_revert",
    "deploy",
    "dev_accounts",
    "digest",
    "format_open",
    "load_deployment",
    "load_keystore",
    "recover",
    "sign",
    "struct_hash",
    "to_wei_open",
]
