"""``staked datanet`` through its click entry: create, add, index offline; register against anvil."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak
from web3 import AsyncWeb3

from agents.attribution import AttributionIndex, Datanet
from staked.datanet_cli import datanet
from staking import Anvil, Deployment, StakingClient

ALICE, BOB = ("0x" + digit * 40 for digit in "12")


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(datanet, list(args), env=env, catch_exceptions=False)


def test_create_add_files_and_jsonl_then_index(tmp_path: Path, tiny_model: Path) -> None:
    net = tmp_path / "net"
    assert run("create", str(net), "--name", "docs").exit_code == 0
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "for.txt").write_text("The for statement iterates over a sequence.", encoding="utf-8")
    (tmp_path / "docs" / "while.txt").write_text("The while statement repeats while true.", encoding="utf-8")
    lines = tmp_path / "more.jsonl"
    lines.write_text(
        json.dumps({"text": "The with statement manages a context.", "contributor": BOB})
        + "\n"
        + json.dumps({"text": "The for statement iterates over a sequence."})
        + "\n",
        encoding="utf-8",
    )
    added = run("add", str(net), str(tmp_path / "docs"), "--jsonl", str(lines), "--contributor", ALICE, "--json")
    assert added.exit_code == 0, added.output
    report = json.loads(added.output)
    assert [Path(entry["source"]).name for entry in report["added"]] == ["for.txt", "while.txt", "more.jsonl:1"]
    assert report["duplicates"] == [{"source": f"{lines}:2", "existing_index": 0, "kept_for": ALICE}]
    assert report["contributions"] == 3

    indexed = run("index", str(tmp_path / "index"), str(net), "--tokenizer", str(tiny_model), "--json")
    assert indexed.exit_code == 0, indexed.output
    figures = json.loads(indexed.output)
    index = AttributionIndex.open(tmp_path / "index", tiny_model)
    assert (figures["root"], figures["documents"]) == ("0x" + index.root.hex(), 3)
    again = run("index", str(tmp_path / "index2"), str(net), "--tokenizer", str(tiny_model / "tokenizer.json"))
    assert f"index root {figures['root']}" in again.output  # same inputs, same root


def test_mistakes_end_with_a_clear_message(tmp_path: Path, tiny_model: Path) -> None:
    net = tmp_path / "net"
    run("create", str(net), "--name", "docs", "--max-contribution-bytes", "8")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"caf\xe9")
    refused = run("add", str(net), str(bad), "--contributor", ALICE)
    assert refused.exit_code == 1
    assert f"{bad}: not valid UTF-8 text (first bad byte at offset 3)" in refused.output
    big = tmp_path / "big.txt"
    big.write_text("0123456789", encoding="utf-8")
    assert "over the datanet's limit of 8 bytes" in run("add", str(net), str(big), "--contributor", ALICE).output
    assert "--contributor is required" in CliRunner().invoke(datanet, ["add", str(net), str(big)]).output
    assert "no contribution" in run("index", str(tmp_path / "i"), str(net), "--tokenizer", str(tiny_model)).output
    assert "not an empty directory" in run("create", str(net), "--name", "again").output


@pytest.mark.chain
async def test_register_puts_contributions_and_the_model_on_chain_and_resumes(
    tmp_path: Path,
    chain: Anvil,
    w3: AsyncWeb3[Any],
    deployment: Deployment,
    keys: list[LocalAccount],
    tiny_model: Path,
) -> None:
    deployment_file = tmp_path / "deployment.json"
    deployment.save(deployment_file)
    env = {
        "STAKED_RPC_URL": chain.url,
        "STAKED_DEPLOYMENT_FILE": str(deployment_file),
        "STAKED_PRIVATE_KEY_ENV": "DATANET_TEST_KEY",
        "DATANET_TEST_KEY": keys[3].key.hex(),
    }
    net_dir = tmp_path / "net"
    run("create", str(net_dir), "--name", "docs")
    lines = tmp_path / "data.jsonl"
    lines.write_text("".join(json.dumps({"text": f"entry number {n}"}) + "\n" for n in range(300)), encoding="utf-8")
    run("add", str(net_dir), "--jsonl", str(lines), "--contributor", ALICE)
    run("index", str(tmp_path / "index"), str(net_dir), "--tokenizer", str(tiny_model))
    model_id = "0x" + keccak(b"tiny model weights").hex()

    async def register(*extra: str) -> dict[str, Any]:
        result = await asyncio.to_thread(run, "register", str(net_dir), "--json", *extra, env=env)
        assert result.exit_code == 0, result.output
        report: dict[str, Any] = json.loads(result.output)
        return report

    report = await register(
        "--index", str(tmp_path / "index"), "--tokenizer", str(tiny_model), "--model-id", model_id, "--model-uri", "m:1"
    )
    (entry,) = report["datanets"]
    assert (entry["added"], entry["contributions"]) == (300, 300)  # in two batches: the registry takes 256 at most
    client = StakingClient(w3, deployment)
    on_chain = await client.datanet(entry["datanet_id"])
    assert (on_chain.contribution_count, on_chain.metadata_uri) == (300, "staked:datanet/docs")
    net = Datanet.open(net_dir)
    assert (await client.contribution(entry["datanet_id"], 299)).content_hash == net.contributions[299].content_hash
    model = await client.model(bytes.fromhex(model_id[2:]))
    assert (model.index_root, model.datanet_ids) == (AttributionIndex.open(tmp_path / "index", tiny_model).root, (1,))

    net.add([net.contributions[0].model_copy(update={"text": "one more"})])
    again = await register()
    assert (again["datanets"][0]["datanet_id"], again["datanets"][0]["added"]) == (entry["datanet_id"], 1)
    assert (await client.datanet(entry["datanet_id"])).contribution_count == 301
