"""Reading receipt documents from agents, signed as a staked validator.

An agent serves the record of each paid answer with its receipt and inclusion proof at
``GET /v1/receipts/{requestId}`` (to the payer and to staked validators) and, by position in a committed epoch, at
``GET /v1/epochs/{epoch}/receipts/{seq}`` (to staked validators). Each read carries
``Authorization: Staked-EIP191 ...`` (:func:`agents.record.receipt_access_header`) signed by the validator's key for
the exact path, so it opens that one record and nothing else.

Reads are idempotent, so a read that got no answer, a ``429`` or a ``5xx`` is tried again (``retries`` tries in
all, the delay doubling from ``backoff``). Any other answer is final: a ``404`` or ``403`` is the agent's word.

Example:
    >>> async with AgentsApi(account, timeout=30) as api:                            # doctest: +SKIP
    ...     document = await api.receipt_at(info.endpoint, info.operator, epoch=3, seq=17)
"""

from __future__ import annotations

import asyncio
import time
from types import TracebackType
from typing import Final, Self
from urllib.parse import urlsplit

import aiohttp
from eth_account.signers.local import LocalAccount
from pydantic import ValidationError

from agents.record import ReceiptDocument, receipt_access_header

from .errors import ValidatorError

__all__ = ["AgentsApi", "RecordUnavailableError"]

_RETRIED_STATUSES: Final = frozenset({429, 500, 502, 503, 504})
_SHOWN_BODY = 300  # characters of an error body kept in the error's reason


class RecordUnavailableError(ValidatorError):
    """The agent at ``url`` did not serve the record: ``status`` is its HTTP answer (``None``: no answer at all,
    ``200``: an answer that is not a receipt document), ``reason`` says more.

    Attributes:
        url: what was read.
        status: the HTTP status, or ``None``.
        reason: the error body or the transport failure.
    """

    def __init__(self, url: str, status: int | None, reason: str) -> None:
        said = "no answer" if status is None else f"HTTP {status}"
        super().__init__(f"{url}: {said}: {reason}")
        self.url = url
        self.status = status
        self.reason = reason

    @property
    def unauthorized(self) -> bool:
        """Whether the agent refused the reader (``401``/``403``): it may not count this validator as staked."""
        return self.status in (401, 403)


class AgentsApi:
    """Reads receipt documents from agents as ``account``, a staked validator.

    Args:
        account: the validator's key; it signs every read.
        timeout: seconds one try of a read may take, connecting included.
        retries: tries of a read in all.
        backoff: seconds before the second try; doubled for each further one.
    """

    def __init__(self, account: LocalAccount, *, timeout: float = 30.0, retries: int = 3, backoff: float = 0.5) -> None:
        if timeout <= 0 or retries < 1 or backoff < 0:
            raise ValueError(f"need timeout > 0, retries >= 1, backoff >= 0; got {timeout}, {retries}, {backoff}")
        self.account = account
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._session: aiohttp.ClientSession | None = None
        self.reads = 0
        self.failures = 0

    def __repr__(self) -> str:
        return f"<AgentsApi {self.account.address} reads={self.reads} failures={self.failures}>"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def receipt_at(self, endpoint: str, agent: str, epoch: int, seq: int) -> ReceiptDocument:
        """Receipt ``seq`` of ``agent``'s ``epoch``, from the agent's registered ``endpoint``.

        Raises:
            RecordUnavailableError: the agent did not serve it.
        """
        return await self._read(endpoint, agent, f"/v1/epochs/{epoch}/receipts/{seq}")

    async def receipt_of(self, endpoint: str, agent: str, request_id: str) -> ReceiptDocument:
        """The receipt of ``agent``'s request ``request_id`` (0x-hex), from the agent's registered ``endpoint``.

        Raises:
            RecordUnavailableError: the agent did not serve it.
        """
        return await self._read(endpoint, agent, f"/v1/receipts/{request_id}")

    async def _read(self, endpoint: str, agent: str, route: str) -> ReceiptDocument:
        base = endpoint.rstrip("/")
        url = base + route
        # The agent checks the signature against the path it serves, which includes any prefix of its endpoint.
        path = urlsplit(base).path + route
        self.reads += 1
        try:
            body = await self._get(url, agent, path)
        except RecordUnavailableError:
            self.failures += 1
            raise
        try:
            return ReceiptDocument.model_validate_json(body)
        except ValidationError as exc:
            self.failures += 1
            raise RecordUnavailableError(url, 200, f"not a receipt document: {exc.errors()[0]['msg']}") from exc

    async def _get(self, url: str, agent: str, path: str) -> bytes:
        session = self._client()
        delay = self.backoff
        failure = RecordUnavailableError(url, None, "not tried")
        for attempt in range(self.retries):
            if attempt:
                await asyncio.sleep(delay)
                delay *= 2
            # Signed per try: a signature is valid for minutes, and a retry may come later than that.
            headers = {"Authorization": receipt_access_header(self.account, agent, path, int(time.time()))}
            try:
                async with session.get(url, headers=headers) as response:
                    body = await response.read()
                    if response.status == 200:
                        return body
                    failure = RecordUnavailableError(
                        url, response.status, body[:_SHOWN_BODY].decode(errors="replace") or response.reason or ""
                    )
                    if response.status not in _RETRIED_STATUSES:
                        raise failure
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                failure = RecordUnavailableError(url, None, str(exc) or type(exc).__name__)
        raise failure

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        return self._session
