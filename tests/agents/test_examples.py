"""The example agents run as their docstrings say, against the session's real vLLM server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from agents import VLLMServer

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_summarizer_example_answers_and_records_its_model_call(vllm_server: VLLMServer) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "summarizer.py"), vllm_server.url, "The for statement iterates."],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    summary, accounting = result.stdout.strip().splitlines()[-2:]
    assert summary  # greedy text from the tiny model
    assert accounting == "price 10000000000000000 wei; 1 recorded model call(s)"
