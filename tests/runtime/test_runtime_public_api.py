"""Pins the runtime's public surface, and keeps its wire format light to import.

Both run in a fresh interpreter: what a module pulls in shows only there, and ``import runtime`` must run the
package's own ``__init__`` from the project root.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import runtime.errors
from staking import StakedError

PROJECT = Path(__file__).resolve().parents[2]

PUBLIC = [
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


def python(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT, capture_output=True, text=True, check=True, timeout=120
    )
    return result.stdout.strip()


def test_runtime_surface_is_pinned_sorted_and_complete() -> None:
    names = json.loads(
        python(
            "import json, runtime; [getattr(runtime, n) for n in runtime.__all__]; print(json.dumps(runtime.__all__))"
        )
    )
    assert names == PUBLIC
    assert names == sorted(names, key=lambda name: (not name.isupper(), name))


def test_the_wire_format_imports_without_web3_aiohttp_or_the_staking_client() -> None:
    probe = "import sys, runtime, runtime.protocol; print(sorted({'web3', 'aiohttp', 'staking'} & set(sys.modules)))"
    assert python(probe) == "[]"
    loaded = "import sys, runtime; runtime.Journal; print('staking' in sys.modules)"  # the rest loads on first use
    assert python(loaded) == "True"


def test_every_runtime_error_is_a_staked_error() -> None:
    errors = [getattr(runtime.errors, name) for name in runtime.errors.__all__]
    assert all(issubclass(error, StakedError) for error in errors)
    assert issubclass(runtime.errors.MalformedPaymentError, ValueError)
