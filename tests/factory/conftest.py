"""Fixtures of the model factory's tests: a small datanet and one model trained on it for the session.

The datanet is five short reference topics of CPython (about 800 tokens) from two contributors; the recipe trains a
tiny model with one thread for 100 steps of 512 tokens, enough to learn the topics by heart, so that its greedy
answers repeat them and attribution finds them.
"""

from __future__ import annotations

from pathlib import Path
from pydoc_data.topics import topics

import pytest

from agents.attribution import Contribution, Datanet
from agents.factory import TrainingRecipe, TrainingResult, train_model

ALICE, BOB = "0x" + "11" * 20, "0x" + "22" * 20
TOPICS = ("break", "continue", "if", "pass", "while")
RECIPE = TrainingRecipe(
    vocab_size=512,
    context_length=256,
    sequence_length=64,
    batch_size=8,
    steps=100,
    learning_rate=1e-2,
    final_learning_rate=1e-3,
    warmup_steps=10,
    threads=1,
)
#: Steps between checkpoints in the tests: a few per run.
CHECKPOINT_EVERY = 30


def make_datanet(directory: Path, names: tuple[str, ...] = TOPICS) -> Datanet:
    net = Datanet.create(directory, name="statements")
    net.add(Contribution(text=topics[name], contributor=(ALICE, BOB)[n % 2]) for n, name in enumerate(names))
    return net


@pytest.fixture(scope="session")
def datanet(tmp_path_factory: pytest.TempPathFactory) -> Datanet:
    return make_datanet(tmp_path_factory.mktemp("factory") / "datanet")


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory, datanet: Datanet) -> TrainingResult:
    """The session's model, trained without interruption, with its attribution index beside it (``index``)."""
    root = tmp_path_factory.mktemp("trained")
    return train_model(
        [datanet], root / "model", RECIPE, index=root / "index", checkpoint_every=CHECKPOINT_EVERY, log_every=10
    )
