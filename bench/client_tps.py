"""Transactions per second through :class:`staking.Transactor` against anvil, beside plain web3.py defaults.

Run: ``python -m bench.client_tps`` (or ``python -m bench --only client_tps``). Both sides sign locally and send
OPEN transfers on one fresh anvil; the RPC requests each transaction costs are counted at the provider.

- ours: one Transactor (nonce lock, pending-block gas estimate, EIP-1559 fees, receipt polls every 20 ms);
- baseline: web3.py's defaults: the nonce from ``eth_getTransactionCount(pending)``, ``build_transaction`` filling
  gas and fees itself, and
  ``wait_for_transaction_receipt`` polls every 100 ms. Concurrently, each send asks the node for its nonce, so
  sends collide; the failures are counted.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import AsyncHTTPProvider, AsyncWeb3
from web3.types import RPCEndpoint, RPCResponse

from bench.report import BarChart, Baseline, Better, Figure, Headline, Section, Table
from bench.runner import run_alone
from staking import Anvil, Transactor, deploy, dev_accounts

SUITE = "client_tps"
TRANSFERS = 300


class _CountingProvider(AsyncHTTPProvider):
    """Counts the JSON-RPC requests that reach the node."""

    requests = 0

    async def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        type(self).requests += 1
        return await super().make_request(method, params)


async def _ours(w3: AsyncWeb3[Any], key: LocalAccount, token: Any, recipient: str, concurrent: bool) -> int:
    sender = Transactor(w3, key)
    calls = [token.functions.transfer(recipient, 1) for _ in range(TRANSFERS)]
    if concurrent:
        await asyncio.gather(*(sender.send(call) for call in calls))
    else:
        for call in calls:
            await sender.send(call)
    return 0


async def _baseline_one(w3: AsyncWeb3[Any], key: LocalAccount, token: Any, recipient: str) -> None:
    nonce = await w3.eth.get_transaction_count(key.address, "pending")
    tx = await token.functions.transfer(recipient, 1).build_transaction({"from": key.address, "nonce": nonce})
    signed = key.sign_transaction(tx)
    tx_hash = await w3.eth.send_raw_transaction(signed.raw_transaction)
    await w3.eth.wait_for_transaction_receipt(tx_hash)


async def _baseline(w3: AsyncWeb3[Any], key: LocalAccount, token: Any, recipient: str, concurrent: bool) -> int:
    if not concurrent:
        for _ in range(TRANSFERS):
            await _baseline_one(w3, key, token, recipient)
        return 0
    results = await asyncio.gather(
        *(_baseline_one(w3, key, token, recipient) for _ in range(TRANSFERS)), return_exceptions=True
    )
    return sum(isinstance(result, BaseException) for result in results)


async def measure() -> list[tuple[str, float, float, int]]:
    """(variant, landed transactions per second, RPC requests per send, failed sends) for each variant."""
    rows = []
    async with Anvil(accounts=4) as chain:
        w3: AsyncWeb3[Any] = AsyncWeb3(_CountingProvider(chain.url))
        keys = dev_accounts(4)
        deployment = await deploy(Transactor(w3, keys[0]))
        token = deployment.contract(w3, "OpenToken")
        for name, run, key in (("ours", _ours, keys[0]), ("web3 defaults", _baseline, keys[0])):
            for concurrent in (False, True):
                _CountingProvider.requests = 0
                started = time.perf_counter()
                failed = await run(w3, key, token, keys[3].address, concurrent)
                elapsed = time.perf_counter() - started
                label = f"{name}, {'concurrent' if concurrent else 'sequential'}"
                landed = TRANSFERS - failed
                rows.append((label, landed / elapsed, _CountingProvider.requests / TRANSFERS, failed))
        await w3.provider.disconnect()
    return rows


async def main() -> Section:
    rows = await measure()
    by_label = {label: (tps, rpcs) for label, tps, rpcs, _ in rows}
    figures = [
        Figure(
            name=f"landed tx/s through Transactor, {mode}",
            value=by_label[f"ours, {mode}"][0],
            unit="tx/s",
            baseline=Baseline(name=f"web3.py defaults, {mode}", value=by_label[f"web3 defaults, {mode}"][0]),
            better=Better.HIGHER,
            headline=Headline.CLIENT_TPS if mode == "concurrent" else None,
        )
        for mode in ("sequential", "concurrent")
    ]
    rpc = Figure(
        name="RPC requests per transaction through Transactor, sequential",
        value=by_label["ours, sequential"][1],
        unit="RPC/tx",
        baseline=Baseline(name="web3.py defaults, sequential", value=by_label["web3 defaults, sequential"][1]),
        better=Better.LOWER,
    )
    return Section(
        suite=SUITE,
        title="Client transactions per second through Transactor, against web3.py's defaults",
        description=(
            f"{TRANSFERS} OPEN transfers, signed locally, sent one after the other and all at once on one fresh anvil, "
            "by one Transactor (nonce lock, pending-block gas estimate, EIP-1559 fees, receipt polls every 20 ms) "
            "and, as the baseline, by web3.py's defaults (nonce from eth_getTransactionCount(pending), "
            "build_transaction, wait_for_transaction_receipt polling every 100 ms). Landed transactions per second "
            "and the JSON-RPC requests each costs, counted at the provider; concurrent baseline sends collide on "
            "nonces and the failures are counted."
        ),
        figures=[*figures, rpc],
        tables=[
            Table(
                title=f"{TRANSFERS} OPEN transfers on anvil",
                columns=("variant", "landed tx/s", "RPC requests per send", "failed sends"),
                rows=rows,
            )
        ],
        charts=[BarChart.of("tx-per-second", "Landed transactions per second", figures)],
    )


if __name__ == "__main__":
    run_alone(SUITE, main)
