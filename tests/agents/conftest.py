"""One tiny model and one real vLLM CPU server for the whole session (vLLM takes about a minute to start).

If vLLM cannot start, every test that needs it errors with vLLM's log: nothing is skipped.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from agents import VLLMBackend, VLLMServer, build_tiny_model

MODEL = "tiny-docs"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"), seed=0)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def vllm_server(tiny_model_dir: Path) -> AsyncIterator[VLLMServer]:
    # The machine is shared: give vLLM time, and the KV cache it needs and no more (TOOLCHAIN.md).
    async with VLLMServer(tiny_model_dir, name=MODEL, kv_cache_gib=1, ready_timeout=900) as server:
        yield server


@pytest.fixture
async def backend(vllm_server: VLLMServer) -> AsyncIterator[VLLMBackend]:
    async with vllm_server.backend(timeout=120) as client:
        yield client
