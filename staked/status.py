"""``staked status``: a readable picture of a deployment, built from its contracts' events and views."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from staking import Role, StakingClient, format_open

__all__ = ["collect_status", "render_status"]


async def collect_status(client: StakingClient) -> dict[str, list[dict[str, Any]]]:
    """Stakes, agents, channels, epochs and disputes, each as a list of plain rows."""
    since = client.deployment.block
    staked, registered, opened, committed = await asyncio.gather(
        client.staking.events.Staked.get_logs(from_block=since),
        client.staking.events.AgentRegistered.get_logs(from_block=since),
        client.channels.events.ChannelOpened.get_logs(from_block=since),
        client.receipts.events.EpochCommitted.get_logs(from_block=since),
    )
    stakes = []
    for operator, role in sorted({(e["args"]["operator"], Role(e["args"]["role"])) for e in staked}):
        info = await client.stake_info(operator, role)
        stakes.append(
            {"operator": operator, "role": role.name.lower(), "active": info.active, "unbonding": info.unbonding}
        )
    agents = []
    for operator in sorted({e["args"]["operator"] for e in registered}):
        agent = await client.agent_info(operator)
        agents.append(
            {"operator": operator, "signer": agent.signer, "price": agent.price, "endpoint": agent.endpoint,
             "active": agent.active}
        )  # fmt: skip
    channels = []
    for event in opened:
        channel = await client.channel(bytes(event["args"]["channelId"]))
        channels.append(
            {"channel": "0x" + channel.channel_id.hex(), "payer": channel.payer, "receiver": channel.receiver,
             "state": channel.state.name.lower(), "deposit": channel.deposit, "claimed": channel.claimed}
        )  # fmt: skip
    epochs = [
        {"agent": e["args"]["agent"], "epoch": e["args"]["epoch"], "receipts": e["args"]["receiptCount"],
         "fees": e["args"]["feeTotal"], "rewards": e["args"]["rewardsTotal"]}
        for e in committed
    ]  # fmt: skip
    disputes = []
    for dispute_id in range(1, await client.dispute_count() + 1):
        dispute = await client.dispute(dispute_id)
        disputes.append(
            {"id": dispute_id, "kind": dispute.kind.name.lower(), "state": dispute.state.name.lower(),
             "agent": dispute.agent, "epoch": dispute.epoch, "challenger": dispute.challenger}
        )  # fmt: skip
    return {"stakes": stakes, "agents": agents, "channels": channels, "epochs": epochs, "disputes": disputes}


_AMOUNT_COLUMNS = {"active", "unbonding", "price", "deposit", "claimed", "fees", "rewards"}


async def render_status(client: StakingClient, *, as_json: bool = False) -> str:
    """The status as aligned text tables (amounts in OPEN), or as JSON (amounts in wei)."""
    status = await collect_status(client)
    if as_json:
        return json.dumps(status, indent=2)
    sections = [f"chain {client.deployment.chain_id}, contracts from block {client.deployment.block}"]
    for title, rows in status.items():
        sections.append(f"\n{title} ({len(rows)})")
        if rows:
            sections.append(_table(rows))
    return "\n".join(sections)


def _table(rows: list[dict[str, Any]]) -> str:
    cells = [
        {key: format_open(value) if key in _AMOUNT_COLUMNS else str(value) for key, value in row.items()}
        for row in rows
    ]
    widths = {key: max(len(key), *(len(cell[key]) for cell in cells)) for key in cells[0]}
    lines = ["  " + "  ".join(key.ljust(width) for key, width in widths.items())]
    lines += ["  " + "  ".join(cell[key].ljust(width) for key, width in widths.items()) for cell in cells]
    return "\n".join(lines)
