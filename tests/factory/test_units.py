"""The pieces of the factory that need no training: the modelId's definition, the recipe, the training windows."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import rfc8785
from eth_utils.crypto import keccak
from pydantic import ValidationError

from agents.factory import LlamaShape, ModelDirectoryError, TrainingDataError, TrainingRecipe, model_id
from agents.factory._data import TokenStream


def test_the_model_id_is_keccak_of_the_canonical_json_of_the_weight_files_sha256(tmp_path: Path) -> None:
    (tmp_path / "model-00002-of-00002.safetensors").write_bytes(b"second shard")
    (tmp_path / "model-00001-of-00002.safetensors").write_bytes(b"first shard")
    (tmp_path / "config.json").write_text("{}")
    by_hand = keccak(
        b'{"format":"staked-model-id/1","weights":{'
        + b'"model-00001-of-00002.safetensors":"0x'
        + hashlib.sha256(b"first shard").hexdigest().encode()
        + b'",'
        + b'"model-00002-of-00002.safetensors":"0x'
        + hashlib.sha256(b"second shard").hexdigest().encode()
        + b'"}}'
    )
    assert model_id(tmp_path) == by_hand
    (tmp_path / "config.json").write_text('{"edited": true}')  # not a weight file: the id stays
    assert model_id(tmp_path) == by_hand
    (tmp_path / "model-00002-of-00002.safetensors").write_bytes(b"second shard!")
    assert model_id(tmp_path) != by_hand
    weights = {"model-00001-of-00002.safetensors": "0x" + hashlib.sha256(b"first shard").hexdigest()}
    weights["model-00002-of-00002.safetensors"] = "0x" + hashlib.sha256(b"second shard!").hexdigest()
    assert model_id(tmp_path) == keccak(rfc8785.dumps({"format": "staked-model-id/1", "weights": weights}))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelDirectoryError, match=r"no \*\.safetensors"):
        model_id(tmp_path / "empty")


def test_the_tiny_model_has_the_shape_the_config_states(tiny_model_dir: Path) -> None:
    config = json.loads((tiny_model_dir / "config.json").read_text())
    assert config == LlamaShape().config(initializer_range=0.02)


def test_the_learning_rate_warms_up_then_decays_along_a_cosine() -> None:
    recipe = TrainingRecipe(steps=110, warmup_steps=10, learning_rate=1e-3, final_learning_rate=1e-4)
    assert recipe.learning_rate_at(0) == pytest.approx(1e-4)
    assert recipe.learning_rate_at(9) == pytest.approx(1e-3)
    assert recipe.learning_rate_at(10) == pytest.approx(1e-3)
    assert recipe.learning_rate_at(109) == pytest.approx(1e-4)
    rates = [recipe.learning_rate_at(step) for step in range(10, 110)]
    assert rates == sorted(rates, reverse=True)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"sequence_length": 2048}, "exceeds context_length"),
        ({"final_learning_rate": 1.0}, "exceeds learning_rate"),
        ({"size": "huge"}, "tiny"),
        ({"learning_rte": 0.1}, "Extra inputs"),
    ],
)
def test_a_bad_recipe_is_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TrainingRecipe.model_validate(fields)


def test_both_sizes_have_head_dim_64() -> None:
    assert {TrainingRecipe(size=size).shape(2048).head_dim for size in ("tiny", "small")} == {64}
    assert TrainingRecipe(size="small").shape(2048).parameters > 4 * TrainingRecipe().shape(2048).parameters


def test_the_windows_of_a_step_depend_on_the_seed_and_the_step_only() -> None:
    stream = TokenStream(np.arange(1000, dtype=np.int64))
    batch = stream.batch(seed=1, step=5, batch_size=4, length=16)
    assert batch.shape == (4, 17)
    assert (np.diff(batch, axis=1) == 1).all()  # consecutive tokens of the stream
    assert (stream.batch(seed=1, step=5, batch_size=4, length=16) == batch).all()
    assert not (stream.batch(seed=1, step=6, batch_size=4, length=16) == batch).all()
    windows = stream.windows(100)
    assert windows.shape == (9, 101)
    assert (windows[1:, 0] == windows[:-1, -1]).all()  # each window predicts the next one's first token
    with pytest.raises(TrainingDataError, match="not more than one training window"):
        TokenStream(np.arange(16, dtype=np.int64)).batch(seed=0, step=0, batch_size=1, length=16)
