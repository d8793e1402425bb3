"""The offline tiny model: deterministic from its seed, a standard Hugging Face directory, and `staked model tiny`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from tokenizers import Tokenizer

from agents import TinyModelSpec, build_tiny_model
from staked.model_cli import model

FILES = [
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "special_tokens_map.json",
    "tokenizer.json",
    "tokenizer_config.json",
]


def test_the_same_seed_writes_identical_files_and_another_seed_other_weights(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    runner = CliRunner()
    result = runner.invoke(model, ["tiny", str(tmp_path / "again"), "--seed", "0", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert sorted(report["sha256"]) == FILES
    for name in FILES:
        assert (tmp_path / "again" / name).read_bytes() == (tiny_model_dir / name).read_bytes(), name
    other = build_tiny_model(tmp_path / "other", seed=1)
    assert (other / "model.safetensors").read_bytes() != (tiny_model_dir / "model.safetensors").read_bytes()
    assert (other / "tokenizer.json").read_bytes() == (tiny_model_dir / "tokenizer.json").read_bytes()


def test_it_is_a_llama_with_head_dim_64_and_a_chat_template(tiny_model_dir: Path) -> None:
    config = json.loads((tiny_model_dir / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert config["hidden_size"] // config["num_attention_heads"] == config["head_dim"] == 64
    assert config["vocab_size"] == TinyModelSpec().vocab_size
    tokenizer_config = json.loads((tiny_model_dir / "tokenizer_config.json").read_text())
    assert "<|assistant|>" in tokenizer_config["chat_template"]
    tokenizer = Tokenizer.from_file(str(tiny_model_dir / "tokenizer.json"))
    assert tokenizer.get_vocab_size() == config["vocab_size"]
    encoding = tokenizer.encode("for item in items: yield item")
    assert encoding.ids[0] == config["bos_token_id"]
    assert tokenizer.decode(encoding.ids) == "for item in items: yield item"


@pytest.mark.parametrize(("options", "message"), [({"heads": 8}, "64 or 128"), ({"vocab_size": 100}, "room")])
def test_bad_shapes_are_refused(options: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TinyModelSpec(**options)


def test_the_cli_refuses_a_negative_seed(tmp_path: Path) -> None:
    result = CliRunner().invoke(model, ["tiny", str(tmp_path), "--seed", "-1"])
    assert result.exit_code == 2
