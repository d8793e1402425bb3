"""The ``staked`` command through its installed entry point."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from staking import to_wei_open

pytestmark = pytest.mark.chain


def _executable() -> str:
    executable = shutil.which("staked", path=str(Path(sys.executable).parent))
    assert executable, "the staked console script is installed with the package"
    return executable


def staked(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_executable(), *args], capture_output=True, text=True, timeout=180, check=False)


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


def test_devnet_then_stake_unstake_withdraw_and_status(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "STAKED_RPC_URL": f"http://127.0.0.1:{port}"}
    devnet = subprocess.Popen(
        [_executable(), "devnet", "--port", str(port)], cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / ".staked" / "devnet.json").exists():
            assert devnet.poll() is None, "staked devnet exited early"
            assert time.monotonic() < deadline, "staked devnet did not write its files"
            time.sleep(0.2)
        devnet_file = json.loads((tmp_path / ".staked" / "devnet.json").read_text())
        names = {account["name"] for account in devnet_file["accounts"]}
        assert {"treasury", "agent-1", "validator-2", "payer-1", "contributor-3"} <= names

        def run(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [_executable(), *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False
            )

        staked = run("stake", "agent", "1000", "--account", "agent-1")
        assert staked.returncode == 0, staked.stderr
        assert "done in block" in staked.stdout
        status = json.loads(run("status", "--json").stdout)
        assert status["stakes"] == [
            {"operator": devnet_file["accounts"][1]["address"], "role": "agent", "active": to_wei_open(1000),
             "unbonding": 0}
        ]  # fmt: skip
        assert run("unstake", "agent", "1000", "--account", "agent-1").returncode == 0
        early = run("withdraw", "agent", "--account", "agent-1")
        assert early.returncode == 1
        assert "StakingNothingToWithdraw" in early.stderr
        bad = run("stake", "agent", "0.0000000000000000001", "--account", "agent-1")
        assert bad.returncode == 2
        assert "finer than one wei" in bad.stderr
        assert "chain 31337" in run("status").stdout
    finally:
        devnet.send_signal(signal.SIGINT)
        devnet.wait(timeout=30)
    assert devnet.returncode == 130


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
