"""Exceptions of the runtime, under :class:`staking.errors.StakedError`.

The tree::

    StakedError
    ├── PaymentError                           a payment was refused; ``reason`` is the code the client gets
    │   ├── MalformedPaymentError (ValueError)     not a version 2 payload of a scheme we accept
    │   ├── PaymentMismatchError                   another chain, contract or payee than this agent's
    │   ├── PaymentAmountError                     not exactly the price
    │   ├── PaymentWindowError                     an authorization outside its validity window
    │   ├── InvalidSignatureError                  not signed by the payer
    │   ├── ReplayedPaymentError                   a nonce or voucher already used
    │   ├── StaleVoucherError                      a voucher below what the channel has already paid
    │   ├── InsufficientFundsError                 the payer's balance or the channel's deposit is short
    │   └── ChannelStateError                      no such channel, or it is closing or closed
    ├── RequestConflictError (ValueError)      a request id came back with a different request
    ├── JournalError                           the journal's SQLite store failed
    │   └── UnknownRequestError (LookupError)      no payment was accepted for that request id
    └── AgentClientError                       the paying client (runtime.client) failed
        ├── AgentUnavailableError (ConnectionError)   the agent did not answer, after retries with the same key
        ├── AgentHTTPError                            the agent answered an error: status, code, message, details
        │   └── PaymentRefusedError                       a 402 the client cannot fix by itself (``reason``)
        ├── PaymentDeclinedError                      the client will not pay what the agent asks
        ├── UntrustedAgentError                       the card does not match the chain, or a receipt failed before
        ├── ReceiptVerificationError (ValueError)     a receipt does not commit to the call: ``problems``
        └── ReceiptStoreError                         the payer's local SQLite store failed

Every payment error maps to one HTTP answer at the edge: ``402`` with ``reason`` and :attr:`PaymentError.details`
(``400`` for a malformed payload); nothing here is ever a ``500``. :class:`~runtime.protocol.HeaderError`, the
light wire module's own error, becomes a :class:`MalformedPaymentError` in :mod:`runtime.payments`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from staking.errors import StakedError
from staking.types import ChannelState

from .protocol import FailureReason

if TYPE_CHECKING:
    from agents.record import SignedReceiptDocument

__all__ = [
    "AgentClientError",
    "AgentHTTPError",
    "AgentUnavailableError",
    "ChannelStateError",
    "InsufficientFundsError",
    "InvalidSignatureError",
    "JournalError",
    "MalformedPaymentError",
    "PaymentAmountError",
    "PaymentDeclinedError",
    "PaymentError",
    "PaymentMismatchError",
    "PaymentRefusedError",
    "PaymentWindowError",
    "ReceiptStoreError",
    "ReceiptVerificationError",
    "ReplayedPaymentError",
    "RequestConflictError",
    "StaleVoucherError",
    "UnknownRequestError",
    "UntrustedAgentError",
]


class PaymentError(StakedError):
    """A payment was refused.

    Attributes:
        reason: the machine-readable code sent to the client.
    """

    def __init__(self, reason: FailureReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason

    @property
    def details(self) -> dict[str, str]:
        """The structured fields a client needs to act, as strings for a JSON error envelope."""
        return {}


class MalformedPaymentError(PaymentError, ValueError):
    """The ``PAYMENT-SIGNATURE`` header is not a payment we can read (``malformed``), not x402 version 2
    (``unsupported_version``) or of a scheme we do not accept (``unsupported_scheme``)."""


class PaymentMismatchError(PaymentError):
    """The payment's ``field`` is ``actual`` where this agent requires ``expected``.

    ``reason`` is ``wrong_chain``, ``wrong_contract`` or ``wrong_payee``.
    """

    def __init__(self, reason: FailureReason, field: str, expected: str, actual: str) -> None:
        super().__init__(reason, f"{field} is {actual}, expected {expected}")
        self.field = field
        self.expected = expected
        self.actual = actual

    @property
    def details(self) -> dict[str, str]:
        return {"field": self.field, "expected": self.expected, "actual": self.actual}


class PaymentAmountError(PaymentError):
    """The payment comes to ``actual`` where exactly ``expected`` is due (wei).

    For a voucher both are cumulative amounts of the channel. ``reason`` is ``insufficient_amount`` when it pays
    less and ``amount_mismatch`` when it pays more (a voucher that skips ahead would overcharge the payer).
    """

    def __init__(self, expected: int, actual: int) -> None:
        reason = FailureReason.INSUFFICIENT_AMOUNT if actual < expected else FailureReason.AMOUNT_MISMATCH
        super().__init__(reason, f"payment of {actual} wei where exactly {expected} wei is due")
        self.expected = expected
        self.actual = actual

    @property
    def details(self) -> dict[str, str]:
        return {"expected": str(self.expected), "actual": str(self.actual)}


class PaymentWindowError(PaymentError):
    """An authorization valid only strictly between ``valid_after`` and ``valid_before`` cannot be settled now.

    ``now`` is the chain's block time and ``margin`` the seconds it must stay valid for the agent to settle it.
    ``reason`` is ``not_yet_valid`` or ``expired``.
    """

    def __init__(self, valid_after: int, valid_before: int, now: int, margin: int) -> None:
        if now <= valid_after:
            reason, message = FailureReason.NOT_YET_VALID, f"valid after {valid_after}, block time is {now}"
        else:
            reason = FailureReason.EXPIRED
            message = f"valid before {valid_before}, block time is {now} and settling needs {margin} s"
        super().__init__(reason, f"authorization {message}")
        self.valid_after = valid_after
        self.valid_before = valid_before
        self.now = now
        self.margin = margin

    @property
    def details(self) -> dict[str, str]:
        return {
            "validAfter": str(self.valid_after),
            "validBefore": str(self.valid_before),
            "now": str(self.now),
            "margin": str(self.margin),
        }


class InvalidSignatureError(PaymentError, ValueError):
    """The signature is malformed, or it is not ``expected``'s (the payer of the authorization or channel)."""

    def __init__(self, expected: str, problem: str) -> None:
        super().__init__(FailureReason.INVALID_SIGNATURE, f"not a valid signature of {expected}: {problem}")
        self.expected = expected

    @property
    def details(self) -> dict[str, str]:
        return {"expected": self.expected}


class ReplayedPaymentError(PaymentError):
    """The payment was already used: ``what`` says which nonce or voucher.

    ``expected`` is, for a voucher, the cumulative amount the channel's next voucher must carry.
    """

    def __init__(self, what: str, expected: int | None = None) -> None:
        super().__init__(FailureReason.REPLAYED, f"{what} was already used")
        self.expected = expected

    @property
    def details(self) -> dict[str, str]:
        return {} if self.expected is None else {"expected": str(self.expected)}


class StaleVoucherError(PaymentError):
    """A voucher of ``channel_id`` for ``cumulative_amount``, when the channel has already paid more: its next
    voucher must carry ``expected``."""

    def __init__(self, channel_id: bytes, cumulative_amount: int, expected: int) -> None:
        super().__init__(
            FailureReason.STALE_VOUCHER,
            f"voucher of channel 0x{channel_id.hex()} for {cumulative_amount} wei is stale: the next is {expected}",
        )
        self.channel_id = channel_id
        self.cumulative_amount = cumulative_amount
        self.expected = expected

    @property
    def details(self) -> dict[str, str]:
        return {"channelId": "0x" + self.channel_id.hex(), "expected": str(self.expected)}


class InsufficientFundsError(PaymentError):
    """The payment needs ``required`` wei where only ``available`` can be paid.

    ``reason`` is ``insufficient_funds`` for a token balance (net of the payer's payments not settled yet) and
    ``exceeds_deposit`` for a channel's deposit.
    """

    def __init__(self, reason: FailureReason, available: int, required: int) -> None:
        super().__init__(reason, f"{required} wei needed, {available} wei available")
        self.available = available
        self.required = required

    @property
    def details(self) -> dict[str, str]:
        return {"available": str(self.available), "required": str(self.required)}


class ChannelStateError(PaymentError):
    """Channel ``channel_id`` is in ``state`` where ``OPEN`` is required.

    ``reason`` is ``unknown_channel`` when it does not exist and ``channel_closed`` otherwise.
    """

    def __init__(self, channel_id: bytes, state: ChannelState) -> None:
        reason = FailureReason.UNKNOWN_CHANNEL if state is ChannelState.NONE else FailureReason.CHANNEL_CLOSED
        super().__init__(reason, f"channel 0x{channel_id.hex()} is {state.name}, not OPEN")
        self.channel_id = channel_id
        self.state = state

    @property
    def details(self) -> dict[str, str]:
        return {"channelId": "0x" + self.channel_id.hex(), "state": self.state.name}


class RequestConflictError(StakedError, ValueError):
    """Request id ``request_id`` was seen before with a different request: an idempotency key names one request."""

    def __init__(self, request_id: bytes) -> None:
        super().__init__(f"request id 0x{request_id.hex()} was already used for a different request")
        self.request_id = request_id


class JournalError(StakedError):
    """The journal at ``path`` could not be read or written: ``reason`` says why."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"journal {path}: {reason}")
        self.path = path
        self.reason = reason


class UnknownRequestError(JournalError, LookupError):
    """The journal at ``path`` holds no payment for ``request_id``."""

    def __init__(self, path: str, request_id: bytes) -> None:
        super().__init__(path, f"no payment was accepted for request 0x{request_id.hex()}")
        self.request_id = request_id


# -- the paying client ----------------------------------------------------------------------------------------


class AgentClientError(StakedError):
    """The paying client failed (see the tree in the module docstring)."""


class AgentUnavailableError(AgentClientError, ConnectionError):
    """The agent at ``url`` did not answer: ``reason`` says how the last attempt failed."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"agent {url} is unavailable: {reason}")
        self.url = url
        self.reason = reason


class AgentHTTPError(AgentClientError):
    """The agent answered ``status`` with its error envelope.

    Attributes:
        status: the HTTP status.
        code: the agent's stable error code (``unknown_skill``, ``invalid_input``, ``model_unavailable``, ...).
        details: the structured fields of the error, as the agent sent them.
    """

    def __init__(self, status: int, code: str, message: str, details: dict[str, str] | None = None) -> None:
        super().__init__(f"agent answered {status} {code}: {message}")
        self.status = status
        self.code = code
        self.details = details or {}


class PaymentRefusedError(AgentHTTPError):
    """The agent refused the payment (``402``) for a reason the client cannot fix by itself, such as
    ``insufficient_funds``; :attr:`reason` is the :class:`~runtime.protocol.FailureReason` when it is one."""

    @property
    def reason(self) -> FailureReason | None:
        try:
            return FailureReason(self.code)
        except ValueError:
            return None


class PaymentDeclinedError(AgentClientError):
    """The client will not pay what the agent asks: no requirement of the chosen scheme, another chain, token,
    channels contract or payee than the card's, or a price above the card's."""


class UntrustedAgentError(AgentClientError):
    """The agent's card does not match the chain (not an active agent, another signer, chain or receipt domain),
    it claims more than the payer signed, or one of its receipts failed verification before."""


class ReceiptVerificationError(AgentClientError, ValueError):
    """A paid answer's receipt does not commit to what was asked, answered and paid.

    The receipt and the answer are in the store all the same: they are the payer's evidence.

    Attributes:
        request_id: the answer's request id (``0x`` hex).
        problems: every failed check, in words.
        receipt: the receipt as received, when one could be read.
    """

    def __init__(self, request_id: str, problems: tuple[str, ...], receipt: SignedReceiptDocument | None) -> None:
        super().__init__(f"receipt of request {request_id} failed verification: {'; '.join(problems)}")
        self.request_id = request_id
        self.problems = problems
        self.receipt = receipt


class ReceiptStoreError(AgentClientError):
    """The store at ``path`` could not be read or written: ``reason`` says why."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"receipt store {path}: {reason}")
        self.path = path
        self.reason = reason
