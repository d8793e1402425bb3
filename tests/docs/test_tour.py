"""The README's five-minute tour, run as written: one shell, the real ``staked`` commands, anvil, vLLM on the CPU.

The tour's blocks become one bash script in a fresh directory. Blocks marked ``terminal`` run in the background,
each in its own process group as a terminal would run it, and the script waits for what ``waits-for`` names. The
only liberty taken is the ports: each port the tour names is replaced by a free one (and ``STAKED_RPC_URL`` points
the commands that use the default RPC at the remapped one), so the tour cannot collide with anything on the machine.
At the end every background command gets a Ctrl-C (SIGINT), as the README tells its reader to stop them.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.docs.readme import Block, readme_blocks

#: The ports the tour names: anvil, vLLM, the agent, the validator.
TOUR_PORTS = (8545, 8000, 8080, 9100)
#: The longest a background command may take to be ready (vLLM on a busy CPU is the slow one).
READY_SECONDS = 600
#: The longest the whole tour may take.
TOUR_SECONDS = 1500

_WAIT_FOR = """
wait_for() {  # $1: a URL that answers 2xx, or a path that exists; $2: the pid of the command that must stay up
  for _ in $(seq 1 %d); do
    if [[ "$1" == http* ]]; then curl -sf -o /dev/null "$1" && return 0; else [[ -e "$1" ]] && return 0; fi
    kill -0 "$2" 2>/dev/null || { echo "tour: the command waited for ($1) exited" >&2; return 1; }
    sleep 1
  done
  echo "tour: timed out waiting for $1" >&2
  return 1
}
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _remap(text: str, ports: dict[int, int]) -> str:
    for documented, free in ports.items():
        text = re.sub(rf"\b{documented}\b", str(free), text)
    return text


def tour_script(blocks: list[Block], ports: dict[int, int], logs: Path) -> str:
    """The tour's shell blocks as one bash script; background commands' pids go to ``logs/pids``, one per line."""
    lines = ["set -euo pipefail", "set -m  # a process group per background command", _WAIT_FOR % READY_SECONDS]
    for block in blocks:
        if "tour" not in block.words:
            continue
        text = _remap(block.text, ports).rstrip()
        # On a line of its own, also after an output without a final newline (curl's).
        lines.append(f"printf '\\n%s\\n' {shlex.quote(f'### README.md:{block.line}')}")
        if "terminal" in block.words:
            log = logs / f"README-{block.line}.log"
            lines.append(f"( {text} ) > {shlex.quote(str(log))} 2>&1 &")
            lines.append(f"echo $! >> {shlex.quote(str(logs / 'pids'))}")
            lines.append(f"wait_for {shlex.quote(_remap(block.options['waits-for'], ports))} $!")
        else:
            lines.append(text)
    return "\n".join(lines) + "\n"


def _stop(pids: list[int]) -> None:
    """Ctrl-C for each background command, the last started first; a kill for what outlives a minute."""
    for pid in reversed(pids):
        try:
            os.killpg(pid, signal.SIGINT)
        except ProcessLookupError:
            continue
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.2)
        else:
            os.killpg(pid, signal.SIGKILL)


@dataclass(frozen=True)
class Tour:
    """A finished run of the tour: what each of its shell blocks printed, and the directory it ran in."""

    printed: list[tuple[Block, str]]
    directory: Path

    def printed_by(self, command: str) -> str:
        """What the one block that contains ``command`` printed."""
        (text,) = [text for block, text in self.printed if command in block.text]
        return text


@pytest.fixture(scope="module")
def tour(tmp_path_factory: pytest.TempPathFactory) -> Tour:
    work = tmp_path_factory.mktemp("tour")
    logs = tmp_path_factory.mktemp("tour-logs")
    blocks = readme_blocks()
    ports = {documented: _free_port() for documented in TOUR_PORTS}
    for block in blocks:
        if block.file is not None and "deploy" not in block.words:
            (work / block.file).write_text(_remap(block.text, ports))
    script = logs / "tour.sh"
    script.write_text(tour_script(blocks, ports, logs))
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "STAKED_RPC_URL": f"http://127.0.0.1:{ports[8545]}",
    }
    env.pop("STAKED_KEYSTORE_PASSWORD", None)
    try:
        result = subprocess.run(
            ["bash", str(script)], cwd=work, env=env, capture_output=True, text=True, timeout=TOUR_SECONDS
        )
    finally:
        pid_file = logs / "pids"
        _stop([int(pid) for pid in pid_file.read_text().split()] if pid_file.exists() else [])
    if result.returncode != 0:
        background = "\n".join(f"--- {log.name}\n{log.read_text()[-3000:]}" for log in sorted(logs.glob("*.log")))
        output = f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        pytest.fail(f"the tour failed ({result.returncode}):\n{output}\n{background}")
    parts = re.split(r"^### README\.md:(\d+)\n", result.stdout, flags=re.MULTILINE)
    by_line = {block.line: block for block in blocks}
    return Tour([(by_line[int(line)], text) for line, text in zip(parts[1::2], parts[2::2], strict=True)], work)


@pytest.mark.chain
def test_the_tour_runs_as_written(tour: Tour) -> None:
    card = tour.printed_by("agent-card.json")
    assert '"name":"glossary"' in card.replace(" ", "")

    paying = tour.printed_by("curl -si")
    assert re.search(r"^HTTP/1\.1 402", paying, re.MULTILINE)
    assert re.search(r"^payment-required: ", paying, re.MULTILINE | re.IGNORECASE)
    assert '"definition"' in paying
    assert '"receipt"' in paying

    assert "receipt (verified, stored in" in tour.printed_by("staked call")
    # The store is the one `staked call` used too (.staked/receipts.sqlite): its receipt and pay.py's three.
    assert "4 receipts verified and stored" in tour.printed_by("python pay.py")

    audits = tour.printed_by("staked_validator_audits_total")
    counts = dict(re.findall(r'^staked_validator_audits_total\{outcome="(\w+)"\} ([\d.]+)$', audits, re.MULTILINE))
    assert float(counts["passed"]) >= 1
    assert all(float(count) == 0 for outcome, count in counts.items() if outcome != "passed"), counts
    assert (tour.directory / "keys/signer.json").exists()
