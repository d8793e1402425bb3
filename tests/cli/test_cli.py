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

from agents import VLLMServer
from staking import to_wei_open

pytestmark = pytest.mark.chain


def _executable() -> str:
    executable = shutil.which("staked", path=str(Path(sys.executable).parent))
    assert executable, "the staked console script is installed with the package"
    return executable


def staked(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_executable(), *args], capture_output=True, text=True, timeout=180, check=False)


def test_demo_tells_the_whole_story(vllm_server: VLLMServer, tiny_model_dir: Path) -> None:
    # The session's vLLM server serves the tiny model under the demo's model name.
    result = subprocess.run(
        [_executable(), "demo", "--json", "--model", str(tiny_model_dir), "--vllm-url", vllm_server.url],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["chain"]["chain_id"] == 31337
    answers = report["answers"]
    assert {answer["agent"] for answer in answers} == {"honest", "cheater"}
    assert all(answer["receipt"]["price"] == to_wei_open("0.01") for answer in answers)
    assert [epoch["receipts"] for epoch in report["epochs"]] == [
        sum(answer["agent"] == agent for answer in answers) for agent in ("honest", "cheater")
    ]
    # Every receipt audited; only the cheater's fail, by replay; the cheater is slashed, the honest agent is not.
    assert report["audits"]["audited"] == len(answers)
    assert report["audits"]["failed"] == sum(answer["agent"] == "cheater" for answer in answers)
    assert report["audits"]["codes"] == ["replay-differs"]
    assert report["dispute"]["state"] == "UPHELD"
    assert report["stakes_after"]["cheater"] < report["stakes_before"]["cheater"]
    assert report["stakes_after"]["honest agent"] == report["stakes_before"]["honest agent"]
    # The challenger got its bond back and a reward (balances were read before anyone staked).
    validator_1 = report["balances_after"]["validator-1"] + report["stakes_after"]["validator-1"]
    assert validator_1 > report["balances_before"]["validator-1"]
    assert sum(report["rewards"].values()) == report["epochs"][0]["rewards"]
    assert report["gas"]["honest_per_paid_request"] > 0


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
