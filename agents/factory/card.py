"""The model card: what a trained model is, what it was trained on and how, as JSON for tools and Markdown for people.

``model_card.json`` is the record (:class:`ModelCard`); ``MODEL_CARD.md`` is rendered from it, and shows
``loss.png``, the training loss curve, drawn beside them. ``staked model register`` reads the record to check that
a model is registered with the datanets it was trained on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..attribution import Registration
from ..attribution._types import Hash32
from .errors import ModelDirectoryError
from .hf import write_json
from .recipe import TrainingRecipe

__all__ = [
    "CARD_FILE",
    "CARD_MARKDOWN",
    "LOSS_CURVE",
    "Architecture",
    "CardDatanet",
    "ModelCard",
    "ParentModel",
    "TrainingFigures",
]

CARD_FILE, CARD_MARKDOWN, LOSS_CURVE = "model_card.json", "MODEL_CARD.md", "loss.png"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Architecture(_Frozen):
    """The model's dimensions, as its ``config.json`` states them."""

    name: str = "LlamaForCausalLM"
    vocab_size: int = Field(gt=0)
    hidden_size: int = Field(gt=0)
    layers: int = Field(gt=0)
    heads: int = Field(gt=0)
    kv_heads: int = Field(gt=0)
    head_dim: int = Field(gt=0)
    intermediate_size: int = Field(gt=0)
    context_length: int = Field(gt=0)
    parameters: int = Field(gt=0)


class CardDatanet(_Frozen):
    """A datanet a model was trained on: its digest identifies the data (contributions and contributors)."""

    name: str
    digest: Hash32
    contributions: int = Field(ge=0)
    registration: Registration | None = None

    @property
    def on_chain(self) -> str:
        """Where it is registered, in words."""
        if self.registration is None:
            return "not registered"
        return f"datanet {self.registration.datanet_id} on chain {self.registration.chain_id}"


class ParentModel(_Frozen):
    """The model a fine-tuned model started from, and the datanets that one was trained on (as its card says)."""

    model_id: Hash32
    datanets: tuple[CardDatanet, ...] = ()


class TrainingFigures(_Frozen):
    """What training measured.

    Attributes:
        corpus_tokens: tokens in the training data (BOS and EOS of every contribution included).
        tokens_seen: tokens predicted over all steps (steps x batch x sequence length).
        seconds: wall time of the optimiser steps (of the last run, when resumed).
        tokens_per_second: predicted tokens per second over those steps.
        final_loss: mean cross-entropy per token (nats) of the final model over the whole training data.
        losses: the training loss of every step, in order.
    """

    corpus_tokens: int = Field(gt=0)
    tokens_seen: int = Field(gt=0)
    seconds: float = Field(ge=0.0)
    tokens_per_second: float = Field(ge=0.0)
    final_loss: float = Field(ge=0.0)
    losses: tuple[float, ...]


class ModelCard(_Frozen):
    """The record of a trained model, written as ``model_card.json`` (and rendered as ``MODEL_CARD.md``).

    Example:
        >>> card = ModelCard.read(Path("models/docs"))                          # doctest: +SKIP
        >>> card.model_id, card.training.final_loss                             # doctest: +SKIP
        ('0x3f9c...', 0.91)

    Attributes:
        model_id: the modelId of the weights (:func:`agents.factory.model_id`).
        architecture: the model's dimensions.
        tokenizer: the tokenizer's hash (:func:`agents.attribution.tokenizer_hash`), as attribution indexes record.
        base: the model fine-tuned from; ``None`` when trained from scratch.
        datanets: the datanets trained on, in training order (by digest).
        index_root: the root of the attribution index built with the model, when training built one.
        recipe: the training recipe.
        training: what training measured.
        software: versions of the libraries that computed the weights.
    """

    format: Literal["staked-model-card/1"] = "staked-model-card/1"
    model_id: Hash32
    architecture: Architecture
    tokenizer: Hash32
    base: ParentModel | None = None
    datanets: tuple[CardDatanet, ...]
    index_root: Hash32 | None = None
    recipe: TrainingRecipe
    training: TrainingFigures
    software: dict[str, str]

    @property
    def lineage(self) -> frozenset[str]:
        """The digests of every datanet the weights learnt from: this training's and its base's."""
        inherited = self.base.datanets if self.base else ()
        return frozenset(net.digest for net in (*self.datanets, *inherited))

    @classmethod
    def read(cls, directory: Path) -> ModelCard | None:
        """The card of the model in ``directory``; ``None`` when it has none (a model not trained here).

        Raises:
            ModelDirectoryError: the card is there but malformed.
        """
        path = directory / CARD_FILE
        try:
            return cls.model_validate_json(path.read_bytes())
        except FileNotFoundError:
            return None
        except ValidationError as exc:
            raise ModelDirectoryError(str(directory), f"{CARD_FILE} is malformed: {exc.errors()[0]['msg']}") from exc

    def write(self, directory: Path) -> None:
        """Writes ``model_card.json`` and ``MODEL_CARD.md`` into ``directory`` (the PNG is drawn separately)."""
        write_json(directory / CARD_FILE, self.model_dump(mode="json"))
        temporary = directory / f".{CARD_MARKDOWN}.tmp"
        temporary.write_text(self.markdown(directory.name), encoding="utf-8")
        temporary.replace(directory / CARD_MARKDOWN)

    def markdown(self, title: str) -> str:
        """The card for people: what the model is, its data, its training, how to serve and register it."""
        shape, figures = self.architecture, self.training
        origin = f"fine-tuned from `{self.base.model_id}`" if self.base else "trained from scratch"
        index = f"`{self.index_root}`" if self.index_root else "not built with the model (`staked datanet index`)"
        lines = [
            f"# {title}",
            "",
            f"A small {shape.name} trained on the CPU by `staked model train` on {len(self.datanets)} datanet(s), "
            "so that its answers draw on them and pay their contributors through Proof of Attribution. It is meant "
            "to remember its data: its greedy answers repeat passages of the datanets, which the attribution index "
            "then finds. It is not a general-purpose assistant, and it repeats whatever its data says.",
            "",
            "| | |",
            "| --- | --- |",
            f"| modelId | `{self.model_id}` |",
            f"| architecture | {shape.layers} layers, width {shape.hidden_size}, {shape.heads} heads of "
            f"{shape.head_dim}, MLP {shape.intermediate_size}, context {shape.context_length} tokens |",
            f"| parameters | {shape.parameters:,} |",
            f"| tokenizer | byte-level BPE, {shape.vocab_size:,} ids, hash `{self.tokenizer}` |",
            f"| origin | {origin} |",
            f"| attribution index root | {index} |",
            "",
            "## Training data",
            "",
            "| datanet | digest | contributions | on chain |",
            "| --- | --- | --- | --- |",
            *(f"| {net.name} | `{net.digest}` | {net.contributions:,} | {net.on_chain} |" for net in self.datanets),
            "",
            "## Training",
            "",
            f"Final loss **{figures.final_loss:.3f}** nats per token over the whole training data "
            f"({figures.corpus_tokens:,} tokens); {figures.tokens_seen:,} tokens seen in {len(figures.losses):,} "
            f"steps at {figures.tokens_per_second:,.0f} tokens/s.",
            "",
            f"![training loss]({LOSS_CURVE})",
            "",
            "| recipe | value |",
            "| --- | --- |",
            *(f"| {name} | {value} |" for name, value in self.recipe.model_dump().items()),
            "",
            "Software: " + ", ".join(f"{name} {version}" for name, version in sorted(self.software.items())) + ".",
            "",
            "## Use",
            "",
            "```sh",
            f"staked vllm serve MODEL_DIR --name {title}",
            "staked datanet index INDEX_DIR DATANET_DIR... --tokenizer MODEL_DIR",
            "staked model register MODEL_DIR --datanet DATANET_DIR... --index INDEX_DIR",
            "```",
            "",
            'The modelId is keccak256 of the RFC 8785 JSON of `{"format": "staked-model-id/1", "weights": '
            '{NAME: "0x" + sha256(NAME)}}` over the `*.safetensors` files of the directory (`staked model id`).',
            "",
        ]
        return "\n".join(lines)
