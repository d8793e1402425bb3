"""Training on a datanet: the loss falls, the output is a standard model directory with its card, the same seed gives
the same weights, an interrupted run resumes to the same weights, and fine-tuning keeps the base's tokenizer."""

from __future__ import annotations

import json
import math
import os
import signal
from pathlib import Path

import pytest
from PIL import Image
from tokenizers import Tokenizer

from agents.attribution import AttributionIndex, Datanet, tokenizer_hash
from agents.factory import (
    CHECKPOINT,
    CheckpointError,
    ModelCard,
    ModelDirectoryError,
    Progress,
    TrainingDataError,
    TrainingResult,
    model_id,
    train_model,
)

from .conftest import CHECKPOINT_EVERY, RECIPE, TOPICS, make_datanet

FILES = {
    "MODEL_CARD.md",
    "config.json",
    "generation_config.json",
    "loss.png",
    "model.safetensors",
    "model_card.json",
    "special_tokens_map.json",
    "tokenizer.json",
    "tokenizer_config.json",
}


def weights(result: TrainingResult) -> bytes:
    return (result.directory / "model.safetensors").read_bytes()


def test_the_loss_falls_far_below_chance(trained: TrainingResult) -> None:
    losses = trained.card.training.losses
    vocab = trained.card.architecture.vocab_size
    assert len(losses) == RECIPE.steps
    assert losses[0] == pytest.approx(math.log(vocab), rel=0.1)  # random weights: about uniform over the vocabulary
    assert sum(losses[-10:]) / 10 < losses[0] / 4
    assert trained.card.training.final_loss < 1.0  # over the whole data: it has learnt the topics by heart


def test_the_output_is_a_model_directory_with_its_card(trained: TrainingResult, datanet: Datanet) -> None:
    directory = trained.directory
    assert {path.name for path in directory.iterdir()} == FILES  # the checkpoint is gone
    config = json.loads((directory / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert config["head_dim"] == config["hidden_size"] // config["num_attention_heads"] == 64
    assert config["max_position_embeddings"] == RECIPE.context_length
    tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
    assert tokenizer.get_vocab_size() == config["vocab_size"] <= RECIPE.vocab_size
    assert tokenizer.decode(tokenizer.encode(datanet.contributions[0].text).ids) == datanet.contributions[0].text

    card = ModelCard.read(directory)
    assert card == trained.card
    assert card.model_id == "0x" + model_id(directory).hex() == "0x" + trained.model_id.hex()
    assert card.tokenizer == "0x" + tokenizer_hash(tokenizer).hex()
    assert [(net.name, net.digest, net.contributions) for net in card.datanets] == [
        ("statements", "0x" + datanet.digest.hex(), len(TOPICS))
    ]
    assert card.recipe == RECIPE
    index = AttributionIndex.open(directory.parent / "index", directory)
    assert card.index_root == "0x" + index.root.hex()
    markdown = (directory / "MODEL_CARD.md").read_text()
    assert card.model_id in markdown
    assert "![training loss](loss.png)" in markdown
    with Image.open(directory / "loss.png") as image:
        assert (image.format, image.width > 0) == ("PNG", True)


def test_the_same_seed_gives_the_same_weights_and_another_seed_others(
    trained: TrainingResult, datanet: Datanet, tmp_path: Path
) -> None:
    again = train_model([datanet], tmp_path / "again", RECIPE)
    assert weights(again) == weights(trained)
    assert again.model_id == trained.model_id
    assert (tmp_path / "again" / "tokenizer.json").read_bytes() == (trained.directory / "tokenizer.json").read_bytes()
    other = train_model([datanet], tmp_path / "other", RECIPE.model_copy(update={"seed": 1, "steps": 5}))
    short = train_model([datanet], tmp_path / "short", RECIPE.model_copy(update={"steps": 5}))
    assert other.model_id != short.model_id


def test_an_interrupted_run_resumes_from_its_checkpoint_to_the_same_weights(
    trained: TrainingResult, datanet: Datanet, tmp_path: Path
) -> None:
    out = tmp_path / "model"

    def crash(progress: Progress) -> None:
        if progress.step == CHECKPOINT_EVERY + 10:
            raise RuntimeError("the machine went down")

    with pytest.raises(RuntimeError, match="went down"):
        train_model([datanet], out, RECIPE, progress=crash, checkpoint_every=CHECKPOINT_EVERY)
    assert (out / CHECKPOINT).is_file()

    def control_c(progress: Progress) -> None:
        if progress.step == 2 * CHECKPOINT_EVERY + 10:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C: the step finishes, a checkpoint is written

    with pytest.raises(KeyboardInterrupt):
        train_model([datanet], out, RECIPE, progress=control_c, checkpoint_every=CHECKPOINT_EVERY)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is restored

    resumed = train_model([datanet], out, RECIPE, checkpoint_every=CHECKPOINT_EVERY)
    assert resumed.resumed_from == 2 * CHECKPOINT_EVERY + 10
    assert weights(resumed) == weights(trained)
    assert resumed.model_id == trained.model_id
    assert resumed.card.training.losses == trained.card.training.losses  # the curve covers the whole run
    assert not (out / CHECKPOINT).exists()


def test_a_checkpoint_of_another_run_or_a_finished_model_is_not_overwritten(
    trained: TrainingResult, datanet: Datanet, tmp_path: Path
) -> None:
    out = tmp_path / "model"

    def crash(progress: Progress) -> None:
        if progress.step == 2:  # after the checkpoint of step 1
            raise RuntimeError("stop")

    with pytest.raises(RuntimeError):
        train_model([datanet], out, RECIPE, progress=crash, checkpoint_every=1, log_every=1)
    with pytest.raises(CheckpointError, match="another training run"):
        train_model([datanet], out, RECIPE.model_copy(update={"seed": 7}))
    with pytest.raises(ModelDirectoryError, match="holds a trained model already"):
        train_model([datanet], trained.directory, RECIPE)
    with pytest.raises(TrainingDataError, match="given twice"):
        train_model([datanet, datanet], tmp_path / "twice", RECIPE)


def test_fine_tuning_keeps_the_base_tokenizer_and_records_the_lineage(trained: TrainingResult, tmp_path: Path) -> None:
    extra = make_datanet(tmp_path / "extra", ("return",))
    tuned = train_model([extra], tmp_path / "tuned", RECIPE.model_copy(update={"steps": 5}), base=trained.directory)
    for name in ("tokenizer.json", "config.json", "tokenizer_config.json", "generation_config.json"):
        assert (tuned.directory / name).read_bytes() == (trained.directory / name).read_bytes(), name
    assert tuned.model_id != trained.model_id
    assert tuned.card.base is not None
    assert tuned.card.base.model_id == trained.card.model_id
    assert tuned.card.lineage == {trained.card.datanets[0].digest, "0x" + extra.digest.hex()}
