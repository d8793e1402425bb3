"""``staked model train``, ``id`` and ``register`` through their click entry; ``register`` against anvil."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from eth_account.signers.local import LocalAccount
from web3 import AsyncWeb3

from agents.attribution import AttributionIndex, Datanet
from agents.factory import TrainingResult
from staked.model_cli import model
from staking import Anvil, Deployment, StakingClient

from .conftest import RECIPE, make_datanet


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(model, list(args), env=env, catch_exceptions=False)


def test_train_reports_progress_and_writes_the_model_its_card_and_index(datanet: Datanet, tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.json"
    recipe.write_text(RECIPE.model_dump_json(), encoding="utf-8")
    out, index = tmp_path / "model", tmp_path / "index"
    args = ["--datanet", str(datanet.directory), "--out", str(out), "--recipe", str(recipe), "--steps", "20"]
    result = run("train", *args, "--seed", "3", "--index", str(index), "--json")
    assert result.exit_code == 0, result.output
    card = json.loads(result.stdout)
    assert (card["recipe"]["steps"], card["recipe"]["seed"], card["directory"]) == (20, 3, str(out))
    assert card["index_root"] == "0x" + AttributionIndex.open(index, out).root.hex()
    assert "step 10/20  loss " in result.stderr
    assert "tokens/s" in result.stderr
    assert "left 0:00" in result.stderr

    assert run("id", str(out)).stdout == card["model_id"] + "\n"
    again = run("train", *args)
    assert again.exit_code == 1
    assert "holds a trained model already" in again.output


def test_mistakes_end_with_a_clear_message(trained: TrainingResult, datanet: Datanet, tmp_path: Path) -> None:
    net, out = str(datanet.directory), str(tmp_path / "model")
    fine_tune = run("train", "--datanet", net, "--out", out, "--from", str(trained.directory), "--size", "small")
    assert fine_tune.exit_code == 2
    assert "--size does not apply with --from" in fine_tune.output
    recipe = tmp_path / "recipe.json"
    recipe.write_text('{"learning_rte": 0.1}', encoding="utf-8")
    typo = run("train", "--datanet", net, "--out", out, "--recipe", str(recipe))
    assert typo.exit_code == 2
    assert "learning_rte" in typo.output
    assert "holds no *.safetensors" in run("id", str(tmp_path)).output


@pytest.mark.chain
async def test_register_records_the_model_with_its_datanet_and_index_root(
    tmp_path: Path,
    chain: Anvil,
    w3: AsyncWeb3[Any],
    deployment: Deployment,
    keys: list[LocalAccount],
    trained: TrainingResult,
    datanet: Datanet,
) -> None:
    deployment_file = tmp_path / "deployment.json"
    deployment.save(deployment_file)
    env = {
        "STAKED_RPC_URL": chain.url,
        "STAKED_DEPLOYMENT_FILE": str(deployment_file),
        "STAKED_PRIVATE_KEY_ENV": "MODEL_TEST_KEY",
        "MODEL_TEST_KEY": keys[4].key.hex(),
    }
    model_dir, index = trained.directory, trained.directory.parent / "index"
    other = make_datanet(tmp_path / "other", ("return",))
    refused = await asyncio.to_thread(
        run, "register", str(model_dir), "--datanet", str(other.directory), "--index", str(index), env=env
    )
    assert refused.exit_code == 1
    assert "are not the datanets" in refused.output

    result = await asyncio.to_thread(
        run, "register", str(model_dir), "--datanet", str(datanet.directory), "--index", str(index), "--json", env=env
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    (entry,) = report["datanets"]
    assert report["model"]["model_id"] == "0x" + trained.model_id.hex()
    on_chain = await StakingClient(w3, deployment).model(trained.model_id)
    assert on_chain.index_root == AttributionIndex.open(index, model_dir).root
    assert on_chain.datanet_ids == (entry["datanet_id"],)
    assert (on_chain.owner, on_chain.metadata_uri) == (keys[4].address, f"staked:model/{model_dir.name}")
