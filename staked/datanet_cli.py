"""``staked datanet``: build datanets, index them for attribution, and register them on chain."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import click

from agents.attribution import (
    DEFAULT_MAX_CONTRIBUTION_BYTES,
    AttributionIndex,
    Contribution,
    Datanet,
    DatanetFormatError,
    IndexParameters,
    Registration,
    contributions_from_files,
    contributions_from_jsonl,
)
from staking import ChainSettings, StakedError, StakingClient
from staking.devnet import devnet_account, load_devnet

__all__ = ["datanet"]

_DEVNET_FILE = Path(".staked/devnet.json")
_DEFAULTS = IndexParameters()
_DIRECTORY = click.Path(exists=True, file_okay=False, path_type=Path)


@dataclass(frozen=True)
class _OnChain:
    """What ``register`` did for one datanet."""

    name: str
    datanet_id: int
    added: int
    contributions: int


@dataclass(frozen=True)
class _ModelRegistered:
    model_id: str
    index_root: str


@dataclass(frozen=True)
class _Registered:
    datanets: list[_OnChain]
    model: _ModelRegistered | None


@click.group()
def datanet() -> None:
    """Datanets: contributions on disk, their attribution index, their registration on chain."""


@datanet.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", required=True, help="the datanet's name")
@click.option("--metadata-uri", help="what DatanetRegistry records  [default: staked:datanet/NAME]")
@click.option(
    "--max-contribution-bytes",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_CONTRIBUTION_BYTES,
    show_default=True,
    help="the largest contribution accepted",
)
def create(directory: Path, name: str, metadata_uri: str | None, max_contribution_bytes: int) -> None:
    """Create an empty datanet in DIRECTORY."""
    with _errors():
        net = Datanet.create(
            directory, name=name, metadata_uri=metadata_uri, max_contribution_bytes=max_contribution_bytes
        )
    click.echo(f"datanet {net.name!r} created in {directory} (metadata URI {net.metadata_uri})")


@datanet.command()
@click.argument("directory", type=_DIRECTORY)
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--jsonl",
    "jsonl_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help='a file of {"text": ..., "contributor": ...} lines (repeatable)',
)
@click.option("--contributor", help="the address credited for PATHS, and for JSONL lines that name none")
@click.option("--json", "as_json", is_flag=True, help="print what was added as JSON")
def add(
    directory: Path, paths: tuple[Path, ...], jsonl_files: tuple[Path, ...], contributor: str | None, as_json: bool
) -> None:
    """Add PATHS (one contribution per file; directories are walked) and JSONL lines to the datanet in DIRECTORY.

    A text already in the datanet is skipped: the first contributor keeps it.
    """
    if not paths and not jsonl_files:
        raise click.UsageError("nothing to add: give files or directories, or --jsonl FILE")
    if paths and contributor is None:
        raise click.UsageError("--contributor is required to add files")
    with _errors():
        net = Datanet.open(directory)
        limit = net.max_contribution_bytes
        contributions: list[Contribution] = []
        if paths:
            contributions += contributions_from_files(paths, contributor=str(contributor), max_bytes=limit)
        for file in jsonl_files:
            contributions += contributions_from_jsonl(file, contributor=contributor, max_bytes=limit)
        result = net.add(contributions)
    if as_json:
        report = {
            "added": [{"content_hash": "0x" + c.content_hash.hex(), "source": c.source} for c in result.added],
            "duplicates": [
                {
                    "source": dup.contribution.source,
                    "existing_index": dup.existing_index,
                    "kept_for": dup.existing_contributor,
                }
                for dup in result.duplicates
            ],
            "contributions": len(net),
        }
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(f"added {len(result.added)} contribution(s); the datanet holds {len(net)}")
    for duplicate in result.duplicates:
        click.echo(
            f"  skipped {duplicate.contribution.source or 'a contribution'}: the same text is contribution "
            f"{duplicate.existing_index}, credited to {duplicate.existing_contributor}"
        )


@datanet.command()
@click.argument("index_dir", type=click.Path(file_okay=False, path_type=Path))
@click.argument("datanet_dirs", nargs=-1, required=True, type=_DIRECTORY)
@click.option(
    "--tokenizer",
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="the model's directory (as `staked model tiny` writes it) or its tokenizer.json",
)
@click.option("--min-span", type=click.IntRange(1, 4096), default=_DEFAULTS.min_span, show_default=True)
@click.option("--max-occurrences", type=click.IntRange(min=1), default=_DEFAULTS.max_occurrences, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="print the index's figures as JSON")
def index(
    index_dir: Path,
    datanet_dirs: tuple[Path, ...],
    tokenizer: Path,
    min_span: int,
    max_occurrences: int,
    as_json: bool,
) -> None:
    """Build the attribution index of DATANET_DIRS into INDEX_DIR (which must not exist) and print its root."""
    started = time.perf_counter()
    with _errors():
        nets = [Datanet.open(directory) for directory in datanet_dirs]
        parameters = IndexParameters(min_span=min_span, max_occurrences=max_occurrences)
        built = AttributionIndex.build(index_dir, nets, tokenizer, parameters=parameters)
    report = {
        "index": str(index_dir),
        "root": "0x" + built.root.hex(),
        "documents": built.documents,
        "tokens": built.tokens,
        "bytes": built.size_bytes,
        "seconds": round(time.perf_counter() - started, 3),
    }
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(
        f"indexed {built.documents} contributions, {built.tokens:,} tokens ({built.size_bytes:,} bytes) "
        f"in {report['seconds']} s"
    )
    click.echo(f"index root {report['root']}")


@datanet.command()
@click.argument("datanet_dirs", nargs=-1, required=True, type=_DIRECTORY)
@click.option("--index", "index_dir", type=_DIRECTORY, help="also register a model with this index's root")
@click.option("--tokenizer", type=click.Path(exists=True, path_type=Path), help="the model's tokenizer; with --index")
@click.option("--model-id", help="the model's id, bytes32 hex (keccak256 of its weights); with --index")
@click.option("--model-uri", help="the model's metadata URI; with --index")
@click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    help="TOML file with a [chain] table; STAKED_* environment variables override it",
)
@click.option("--account", "account_name", help="a devnet account name (agent-1, ...) instead of the configured key")
@click.option("--json", "as_json", is_flag=True, help="print the registration as JSON")
def register(
    datanet_dirs: tuple[Path, ...],
    index_dir: Path | None,
    tokenizer: Path | None,
    model_id: str | None,
    model_uri: str | None,
    config: Path | None,
    account_name: str | None,
    as_json: bool,
) -> None:
    """Put DATANET_DIRS on chain (created once, then only the contributions not yet there, in batches), and with
    --index register the model with the index root.

    Safe to run again: an interrupted registration resumes where the chain stands.
    """
    model = None
    if index_dir is not None:
        if tokenizer is None or model_id is None or model_uri is None:
            raise click.UsageError("--index needs --tokenizer, --model-id and --model-uri")
        model = (_model_id(model_id), model_uri)
    with _errors():
        nets = [Datanet.open(directory) for directory in datanet_dirs]
        built = AttributionIndex.open(index_dir, tokenizer) if index_dir and tokenizer else None
        if built is not None and set(built.datanet_digests) != {net.digest for net in nets}:
            raise DatanetFormatError(
                ", ".join(map(str, datanet_dirs)), f"the index {index_dir} was not built from exactly these datanets"
            )
        report = asyncio.run(_register(config, account_name, nets, built, model))
    if as_json:
        click.echo(json.dumps(asdict(report), indent=2))
        return
    for entry in report.datanets:
        click.echo(
            f"datanet {entry.name!r}: id {entry.datanet_id}, {entry.added} contribution(s) added, "
            f"{entry.contributions} on chain"
        )
    if report.model is not None:
        click.echo(f"model {report.model.model_id} registered with index root {report.model.index_root}")


async def _register(
    config: Path | None,
    account_name: str | None,
    nets: Sequence[Datanet],
    built: AttributionIndex | None,
    model: tuple[bytes, str] | None,
) -> _Registered:
    settings = ChainSettings.load(config)
    account = devnet_account(load_devnet(_DEVNET_FILE), account_name) if account_name else None
    client = await StakingClient.from_settings(settings, account)
    try:
        batch = int(await client.datanets.functions.MAX_CONTRIBUTIONS_PER_BATCH().call())
        entries = []
        for net in nets:
            datanet_id, added = await _sync(client, net, batch)
            entries.append(_OnChain(net.name, datanet_id, added, len(net)))
        registered = None
        if built is not None and model is not None:
            model_id, model_uri = model
            await client.register_model(model_id, [entry.datanet_id for entry in entries], built.root, model_uri)
            registered = _ModelRegistered("0x" + model_id.hex(), "0x" + built.root.hex())
        return _Registered(entries, registered)
    finally:
        await client.w3.provider.disconnect()


async def _sync(client: StakingClient, net: Datanet, batch: int) -> tuple[int, int]:
    """Creates ``net`` on chain unless it is there, then adds the contributions the chain lacks.

    Returns the datanet id and the number of contributions added.
    """
    chain_id, registry = client.deployment.chain_id, client.datanets.address
    registration = net.registration
    if registration is None or (registration.chain_id, registration.registry) != (chain_id, registry):
        datanet_id = await client.create_datanet(net.metadata_uri)
        registration = Registration(chain_id=chain_id, registry=registry, datanet_id=datanet_id)
        await asyncio.to_thread(net.set_registration, registration)
    datanet_id = registration.datanet_id
    present = (await client.datanet(datanet_id)).contribution_count
    local = net.contributions
    if present > len(local) or (
        present and (await client.contribution(datanet_id, present - 1)).content_hash != local[present - 1].content_hash
    ):
        raise DatanetFormatError(
            str(net.directory), f"datanet {datanet_id} on chain holds contributions this directory does not"
        )
    pending = local[present:]
    for first in range(0, len(pending), batch):
        chunk = pending[first : first + batch]
        await client.add_contributions(datanet_id, [c.content_hash for c in chunk], [c.contributor for c in chunk])
    return datanet_id, len(pending)


def _model_id(text: str) -> bytes:
    try:
        value = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        value = b""
    if len(value) != 32:
        raise click.BadParameter("expected 32 bytes as hex (0x and 64 hex digits)", param_hint="--model-id")
    return value


@contextmanager
def _errors() -> Iterator[None]:
    """Our errors end the command with their message; Ctrl-C ends it quietly."""
    try:
        yield
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except StakedError as exc:
        raise click.ClickException(str(exc)) from exc
