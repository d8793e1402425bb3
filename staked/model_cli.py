"""``staked model`` and ``staked vllm``: build the tiny offline model, train a model on datanets and register it,
and serve a model directory with vLLM."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import signal
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, get_args

import click
from pydantic import ValidationError

import agents.factory as factory  # its training half loads torch on first use: `staked` itself starts fast
from agents import VLLMServer, build_tiny_model
from agents.attribution import Datanet, DatanetFormatError
from staking import StakedError

from .datanet_cli import _errors, datanet

__all__ = ["model", "vllm"]

_DIRECTORY = click.Path(exists=True, file_okay=False, path_type=Path)
_RECIPE = factory.TrainingRecipe()  # the defaults, for the help text


@click.group()
def model() -> None:
    """Build, train and register models that vLLM serves without downloading anything."""


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


@model.command()
@click.option(
    "--datanet",
    "datanet_dirs",
    multiple=True,
    required=True,
    type=_DIRECTORY,
    help="a datanet to train on (repeatable)",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="the model directory to write; one holding a checkpoint of the same run is resumed",
)
@click.option(
    "--size", type=click.Choice(get_args(factory.ModelSize)), help=f"the model's size  [default: {_RECIPE.size}]"
)
@click.option("--steps", type=click.IntRange(min=1), help=f"optimiser steps  [default: {_RECIPE.steps}]")
@click.option("--seed", type=click.IntRange(min=0), help=f"the same seed, the same weights  [default: {_RECIPE.seed}]")
@click.option(
    "--threads", type=click.IntRange(min=1), help=f"torch threads (part of the recipe)  [default: {_RECIPE.threads}]"
)
@click.option(
    "--recipe",
    "recipe_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="a training recipe as JSON (any TrainingRecipe field); the options above override it",
)
@click.option("--from", "base", type=_DIRECTORY, help="fine-tune this model directory, keeping its tokenizer")
@click.option(
    "--index",
    "index_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="also build the datanets' attribution index with the new tokenizer here (a new directory)",
)
@click.option("--json", "as_json", is_flag=True, help="print the model card as JSON")
def train(
    datanet_dirs: tuple[Path, ...],
    out: Path,
    size: str | None,
    steps: int | None,
    seed: int | None,
    threads: int | None,
    recipe_file: Path | None,
    base: Path | None,
    index_dir: Path | None,
    as_json: bool,
) -> None:
    """Train a Llama model on the --datanet directories into a Hugging Face model directory vLLM serves as is.

    Progress goes to stderr. Ctrl-C finishes the current step and writes a checkpoint; the same command resumes it.
    """
    if base is not None and size is not None:
        raise click.UsageError("--size does not apply with --from: a fine-tuned model keeps its base's shape")
    overrides = {"size": size, "steps": steps, "seed": seed, "threads": threads}
    try:
        document = json.loads(recipe_file.read_bytes()) if recipe_file else {}
        recipe = factory.TrainingRecipe.model_validate(
            {**document, **{name: value for name, value in overrides.items() if value is not None}}
        )
    except (ValueError, ValidationError) as exc:  # JSONDecodeError is a ValueError
        raise click.BadParameter(str(exc), param_hint="--recipe") from exc

    def report(progress: factory.Progress) -> None:
        click.echo(
            f"step {progress.step:>{len(str(progress.steps))}}/{progress.steps}  loss {progress.loss:.3f}  "
            f"lr {progress.learning_rate:.2e}  {progress.tokens_per_second:,.0f} tokens/s  "
            f"elapsed {_clock(progress.elapsed_s)}  left {_clock(progress.remaining_s)}",
            err=True,
        )

    if (out / factory.CHECKPOINT).is_file():
        click.echo(f"resuming the checkpoint in {out}", err=True)
    try:
        with _errors():
            nets = [Datanet.open(directory) for directory in datanet_dirs]
            result = factory.train_model(nets, out, recipe, base=base, index=index_dir, progress=report)
    except SystemExit:
        if (out / factory.CHECKPOINT).is_file():
            click.echo(f"interrupted: run the same command again to resume from {out / factory.CHECKPOINT}", err=True)
        raise
    card = result.card
    if as_json:
        click.echo(json.dumps({"directory": str(out), **card.model_dump(mode="json")}, indent=2))
        return
    figures = card.training
    click.echo(
        f"model {card.model_id} in {out}: final loss {figures.final_loss:.3f} over {figures.corpus_tokens:,} tokens, "
        f"{recipe.steps} steps at {figures.tokens_per_second:,.0f} tokens/s"
    )
    if card.index_root is not None:
        click.echo(f"attribution index {index_dir}, root {card.index_root}")


@model.command(name="id")
@click.argument("model_dir", type=_DIRECTORY)
def model_id(model_dir: Path) -> None:
    """Print the modelId of MODEL_DIR: keccak256 over its *.safetensors files (see MODEL_CARD.md)."""
    with _errors():
        click.echo("0x" + factory.model_id(model_dir).hex())


@model.command()
@click.argument("model_dir", type=_DIRECTORY)
@click.option(
    "--datanet",
    "datanet_dirs",
    multiple=True,
    required=True,
    type=_DIRECTORY,
    help="a datanet the model was trained on (repeatable)",
)
@click.option("--index", "index_dir", required=True, type=_DIRECTORY, help="their attribution index")
@click.option("--model-uri", help="the model's metadata URI  [default: staked:model/DIRECTORY-NAME]")
@click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    help="TOML file with a [chain] table; STAKED_* environment variables override it",
)
@click.option("--account", "account_name", help="a devnet account name (agent-1, ...) instead of the configured key")
@click.option("--json", "as_json", is_flag=True, help="print the registration as JSON")
@click.pass_context
def register(
    ctx: click.Context,
    model_dir: Path,
    datanet_dirs: tuple[Path, ...],
    index_dir: Path,
    model_uri: str | None,
    config: Path | None,
    account_name: str | None,
    as_json: bool,
) -> None:
    """Register MODEL_DIR in DatanetRegistry with its modelId, its datanets and their attribution index root.

    The datanets go on chain first, as `staked datanet register --index` puts them (this is that command, with the
    modelId computed from the weights and the tokenizer taken from MODEL_DIR); the index must have been built with
    the model's tokenizer. A model trained here must be registered with the datanets its card names.
    """
    with _errors():
        identity = factory.model_id(model_dir)
        card = factory.ModelCard.read(model_dir)
        if card is not None:
            given = {"0x" + Datanet.open(directory).digest.hex() for directory in datanet_dirs}
            if given != card.lineage:
                raise DatanetFormatError(
                    ", ".join(map(str, datanet_dirs)),
                    f"are not the datanets {model_dir} was trained on (its model card lists {len(card.lineage)})",
                )
    ctx.invoke(
        datanet.commands["register"],
        datanet_dirs=datanet_dirs,
        index_dir=index_dir,
        tokenizer=model_dir,
        model_id="0x" + identity.hex(),
        model_uri=model_uri or f"staked:model/{model_dir.resolve().name}",
        config=config,
        account_name=account_name,
        as_json=as_json,
    )


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


def _clock(seconds: float) -> str:
    minutes, second = divmod(round(seconds), 60)
    return f"{minutes}:{second:02d}"


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
