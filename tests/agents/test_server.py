"""VLLMServer without starting vLLM: its command line and its refusal of a directory that holds no model.

The real start and stop run once per session in conftest.py (one vLLM at a time on this machine).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agents import ServerStartError, VLLMServer


def test_the_command_carries_the_cpu_flags(tmp_path: Path) -> None:
    server = VLLMServer(tmp_path, name="m", port=8123, max_model_len=512, extra_args=("--seed", "1"))
    command = server.command()
    assert command[1:3] == ["-m", "vllm.entrypoints.openai.api_server"]
    for flag, value in [("--model", str(tmp_path)), ("--served-model-name", "m"), ("--dtype", "float32")]:
        assert command[command.index(flag) + 1] == value
    assert "--enforce-eager" in command
    assert command[-4:] == ["--max-model-len", "512", "--seed", "1"]
    assert server.url == "http://127.0.0.1:8123"


async def test_a_directory_without_a_model_is_refused_before_vllm_starts(tmp_path: Path) -> None:
    server = VLLMServer(tmp_path, name="m")
    with pytest.raises(ServerStartError, match=r"no config\.json"):
        await server.start()
    assert "stopped" in repr(server)


def test_a_session_server_is_running(vllm_server: VLLMServer) -> None:
    assert "running" in repr(vllm_server)
    assert "vLLM API server" in vllm_server.log_tail() or "Application startup complete" in vllm_server.log_tail()
