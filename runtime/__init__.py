"""The paid serving loop of an agent: x402 payments, the receipts journal, the HTTP host, its epoch jobs, and the
paying client.

Light to import: ``import runtime`` and :mod:`runtime.protocol` need pydantic and a keccak only, so a paying client
reads and writes the wire format without web3 or aiohttp. The names that need the staking client (errors,
verification, the journal) are loaded on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .protocol import (
    MAX_HEADER_BYTES,
    PAYMENT_REQUIRED_HEADER,
    PAYMENT_RESPONSE_HEADER,
    PAYMENT_SIGNATURE_HEADER,
    X402_VERSION,
    ChannelExtra,
    ChannelPaymentPayload,
    ChannelRequirements,
    Eip3009Authorization,
    Eip3009Payload,
    ExactExtra,
    ExactPaymentPayload,
    ExactRequirements,
    FailureReason,
    HeaderError,
    PaymentPayload,
    PaymentRequired,
    PaymentRequirements,
    ResourceInfo,
    Scheme,
    SettlementExtra,
    SettlementResponse,
    VoucherPayload,
    decode_payment_payload,
    decode_payment_required,
    decode_settlement_response,
    encode_header,
)

if TYPE_CHECKING:
    from .api import (
        IDEMPOTENCY_KEY_HEADER,
        RECEIPT_HEADER,
        AgentCard,
        ChatCompletion,
        ChatCompletionRequest,
        ErrorBody,
        SkillResponse,
    )
    from .app import create_app
    from .client import AgentClient, PaidCall, PayingTransport
    from .config import AgentSettings
    from .epochs import (
        ClaimResult,
        EpochCommitError,
        EpochJobError,
        EpochJobs,
        SettlementResult,
    )
    from .errors import (
        AgentClientError,
        AgentHTTPError,
        AgentUnavailableError,
        ChannelStateError,
        InsufficientFundsError,
        InvalidSignatureError,
        JournalError,
        MalformedPaymentError,
        PaymentAmountError,
        PaymentDeclinedError,
        PaymentError,
        PaymentMismatchError,
        PaymentRefusedError,
        PaymentWindowError,
        ReceiptStoreError,
        ReceiptVerificationError,
        ReplayedPaymentError,
        RequestConflictError,
        StaleVoucherError,
        UnknownRequestError,
        UntrustedAgentError,
    )
    from .host import (
        AgentHost,
        PaidAnswer,
    )
    from .journal import (
        AcceptedAuthorization,
        AcceptedPayment,
        AcceptedVoucher,
        Answer,
        EpochCommit,
        Journal,
        JournalEntry,
        ReceiptInclusion,
        SignedAnswer,
        SignedReceipt,
    )
    from .metrics import (
        RuntimeMetrics,
    )
    from .payments import (
        PaymentChain,
        PaymentVerifier,
        StakingPaymentChain,
        channel_payment_payload,
        exact_payment_payload,
    )
    from .receipt_store import ChannelAccount, StoredReceipt
    from .serve import (
        AgentService,
    )

__all__ = [
    "IDEMPOTENCY_KEY_HEADER",
    "MAX_HEADER_BYTES",
    "PAYMENT_REQUIRED_HEADER",
    "PAYMENT_RESPONSE_HEADER",
    "PAYMENT_SIGNATURE_HEADER",
    "RECEIPT_HEADER",
    "X402_VERSION",
    "AcceptedAuthorization",
    "AcceptedPayment",
    "AcceptedVoucher",
    "AgentCard",
    "AgentClient",
    "AgentClientError",
    "AgentHTTPError",
    "AgentHost",
    "AgentService",
    "AgentSettings",
    "AgentUnavailableError",
    "Answer",
    "ChannelAccount",
    "ChannelExtra",
    "ChannelPaymentPayload",
    "ChannelRequirements",
    "ChannelStateError",
    "ChatCompletion",
    "ChatCompletionRequest",
    "ClaimResult",
    "Eip3009Authorization",
    "Eip3009Payload",
    "EpochCommit",
    "EpochCommitError",
    "EpochJobError",
    "EpochJobs",
    "ErrorBody",
    "ExactExtra",
    "ExactPaymentPayload",
    "ExactRequirements",
    "FailureReason",
    "HeaderError",
    "InsufficientFundsError",
    "InvalidSignatureError",
    "Journal",
    "JournalEntry",
    "JournalError",
    "MalformedPaymentError",
    "PaidAnswer",
    "PaidCall",
    "PayingTransport",
    "PaymentAmountError",
    "PaymentChain",
    "PaymentDeclinedError",
    "PaymentError",
    "PaymentMismatchError",
    "PaymentPayload",
    "PaymentRefusedError",
    "PaymentRequired",
    "PaymentRequirements",
    "PaymentVerifier",
    "PaymentWindowError",
    "ReceiptInclusion",
    "ReceiptStoreError",
    "ReceiptVerificationError",
    "ReplayedPaymentError",
    "RequestConflictError",
    "ResourceInfo",
    "RuntimeMetrics",
    "Scheme",
    "SettlementExtra",
    "SettlementResponse",
    "SettlementResult",
    "SignedAnswer",
    "SignedReceipt",
    "SkillResponse",
    "StakingPaymentChain",
    "StaleVoucherError",
    "StoredReceipt",
    "UnknownRequestError",
    "UntrustedAgentError",
    "VoucherPayload",
    "channel_payment_payload",
    "create_app",
    "decode_payment_payload",
    "decode_payment_required",
    "decode_settlement_response",
    "encode_header",
    "exact_payment_payload",
]

# The modules behind the names that pull in the staking client (web3, aiohttp); imported on first use (PEP 562).
_HEAVY_MODULES = (
    ".errors", ".journal", ".payments", ".api", ".app", ".client", ".config", ".epochs", ".host", ".metrics",
    ".receipt_store", ".serve",
)  # fmt: skip


def __getattr__(name: str) -> Any:
    if name in __all__:
        for module_name in _HEAVY_MODULES:
            module = importlib.import_module(module_name, __name__)
            globals().update({public: getattr(module, public) for public in module.__all__})
        if name in globals():
            return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
