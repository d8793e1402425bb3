"""The ``staked`` command through its installed entry point."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from staking import to_wei_open

pytestmark = pytest.mark.chain


def staked(*args: str) -> subprocess.CompletedProcess[str]:
    executable = shutil.which("staked", path=str(Path(sys.executable).parent))
    assert executable, "the staked console script is installed with the package"
    return subprocess.run([executable, *args], capture_output=True, text=True, timeout=180, check=False)


def test_demo_runs_the_core_story_and_reports_gas_and_balances() -> None:
    result = staked("demo", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["chain_id"] == 31337
    assert {"open_token", "agent_staking", "payment_channels", "dispute_manager"} <= set(report["contracts"])
    for step in ("stake (agent)", "open channel", "claim (1 voucher)", "transferWithAuthorization"):
        assert report["gas"][step] > 21_000
    paid = report["paid_by_channel_wei"] + to_wei_open("0.01")  # five vouchers, then one authorization
    assert report["balances_wei"]["agent"] == to_wei_open(10_000) + paid
    assert report["balances_wei"]["payer"] == to_wei_open(10_000) - paid


def test_unknown_command_fails_with_usage() -> None:
    result = staked("no-such-command")
    assert result.returncode == 2
    assert "No such command" in result.stderr
