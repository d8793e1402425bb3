"""``staked model`` and ``staked vllm``: build the tiny offline model, and serve a model directory with vLLM."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import signal
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import click

from agents import VLLMServer, build_tiny_model
from staking import StakedError

__all__ = ["model", "vllm"]


@click.group()
def model() -> None:
    """Build models that vLLM serves without downloading anything."""


@model.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="the same seed, the same files")
@click.option("--json", "as_json", is_flag=True, help="print the files and their SHA-256 as JSON")
def tiny(directory: Path, seed: int, as_json: bool) -> None:
    """Build the tiny Llama model and its tokenizer into DIRECTORY (a Hugging Face model directory)."""
    build_tiny_model(directory, seed=seed)
    digests = {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(directory.iterdir())}
    if as_json:
        click.echo(json.dumps({"directory": str(directory), "seed": seed, "sha256": digests}, indent=2))
        return
    click.echo(f"tiny model (seed {seed}) in {directory}")
    for name, digest in digests.items():
        click.echo(f"  {name:<24} sha256 {digest[:16]}")


@click.group()
def vllm() -> None:
    """Run vLLM (the CPU build works) for a model directory."""


@vllm.command()
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--name", help="the served model name requests use [default: the directory's name]")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--dtype", default="float32", show_default=True, help="the weights' dtype")
@click.option("--max-model-len", type=click.IntRange(min=1), help="context length [default: the model's]")
@click.option("--kv-cache-gib", type=click.IntRange(min=1), default=1, show_default=True, help="VLLM_CPU_KVCACHE_SPACE")
@click.option("--log", "log_path", type=click.Path(dir_okay=False, path_type=Path), help="write vLLM's output here")
def serve(
    model_dir: Path,
    name: str | None,
    host: str,
    port: int,
    dtype: str,
    max_model_len: int | None,
    kv_cache_gib: int,
    log_path: Path | None,
) -> None:
    """Start vLLM's OpenAI-compatible server for MODEL_DIR, wait until it serves, and stop it on Ctrl-C."""
    server = VLLMServer(
        model_dir.resolve(),
        name=name or model_dir.resolve().name,
        host=host,
        port=port,
        dtype=dtype,
        max_model_len=max_model_len,
        kv_cache_gib=kv_cache_gib,
        log_path=log_path,
    )

    async def serve_until_cancelled() -> None:
        click.echo(f"starting vLLM for {server.model_dir} (this takes a minute on a CPU)")
        async with server:
            click.echo(f"vLLM serves {server.name!r} on {server.url}/v1; Ctrl-C stops it.")
            await asyncio.Event().wait()

    async def run() -> None:
        # vLLM runs in its own process group, out of reach of the terminal's Ctrl-C and of a supervisor's SIGTERM:
        # both cancel the serving task instead, and leaving `async with` (or an unfinished start) stops vLLM.
        serving = asyncio.create_task(serve_until_cancelled())
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, serving.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await serving
        click.echo("vLLM stopped")

    _run(run())


def _run(coroutine: Coroutine[Any, Any, None]) -> None:
    """Runs a coroutine; our errors end the command with their message, Ctrl-C ends it quietly.

    On Ctrl-C, asyncio cancels the coroutine, so ``async with`` blocks in it (the server) close before this returns.
    """
    try:
        asyncio.run(coroutine)
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except StakedError as exc:
        raise click.ClickException(str(exc)) from exc
