"""The training recipe: everything that decides a trained model's weights, and nothing else.

Two runs with equal recipes on equal datanets (and the same base model, if any) write bit-identical weights, hence
the same modelId, on the same machine and software (floating-point results may differ across CPUs and torch
versions). That is why the thread count is part of the recipe: how a reduction is split between threads may change
the last bits of a sum.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .hf import LlamaShape

__all__ = ["ModelSize", "TrainingRecipe"]

#: The model sizes a recipe can ask for; :meth:`TrainingRecipe.shape` gives their dimensions.
ModelSize = Literal["tiny", "small"]

# Width, heads, layers, MLP width. head_dim is 64 for both (vLLM's CPU attention takes 64 or 128).
_SIZES: dict[str, tuple[int, int, int, int]] = {
    "tiny": (128, 2, 2, 384),  # 0.95 M weights with 2,048 token ids: a few minutes of training on two cores
    "small": (256, 4, 4, 768),  # 4.5 M weights: about five times the tiny's cost per token
}


class TrainingRecipe(BaseModel):
    """How to train: model size, tokenizer, optimiser, schedule, batches, seed, threads.

    The defaults are the demo recipe: a tiny model trained for a few minutes on two free cores on CPython's
    reference topics (about 129,000 tokens, 14 passes over them). That is the point of a demo of attribution: the
    model learns its data by heart in part, so that its greedy answers repeat spans of it (43% of its answers to
    passages' first words carry an attributed span, see ``bench/training.py``; more steps, more), and the
    attribution index finds where they come from.

    Example:
        >>> TrainingRecipe(steps=200, seed=1).tokens_per_step
        2048

    Attributes:
        size: the model's dimensions (``tiny`` or ``small``); ignored when fine-tuning, which keeps the base's.
        vocab_size: the most ids the tokenizer trained on the datanets may have (a small corpus may give fewer);
            ignored when fine-tuning, which keeps the base's tokenizer.
        context_length: the model's ``max_position_embeddings``: the longest prompt plus output vLLM accepts.
            Rotary positions have no learned table, so this may exceed ``sequence_length``, though the model has
            never seen positions beyond it.
        sequence_length: tokens per training window.
        batch_size: windows per step.
        steps: optimiser steps.
        learning_rate: the peak learning rate, reached after ``warmup_steps`` and decayed along a cosine.
        final_learning_rate: the learning rate at the last step.
        warmup_steps: steps of linear warm-up from zero.
        weight_decay: AdamW's decoupled weight decay (0 by default: the point is to remember the data).
        beta1: AdamW's first-moment decay.
        beta2: AdamW's second-moment decay.
        grad_clip: the largest gradient norm; larger gradients are scaled down to it.
        initializer_range: the standard deviation of the initial random weights.
        seed: seeds the initial weights and the choice of training windows.
        threads: torch's intra-op threads during training.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    size: ModelSize = "tiny"
    vocab_size: int = Field(default=2048, ge=512, le=65_535)
    context_length: int = Field(default=1024, ge=16)
    sequence_length: int = Field(default=256, ge=8)
    batch_size: int = Field(default=8, ge=1)
    steps: int = Field(default=900, ge=1)
    learning_rate: float = Field(default=3e-3, gt=0.0, le=1.0)
    final_learning_rate: float = Field(default=3e-4, ge=0.0, le=1.0)
    warmup_steps: int = Field(default=30, ge=0)
    weight_decay: float = Field(default=0.0, ge=0.0, lt=1.0)
    beta1: float = Field(default=0.9, ge=0.0, lt=1.0)
    beta2: float = Field(default=0.95, ge=0.0, lt=1.0)
    grad_clip: float = Field(default=1.0, gt=0.0)
    initializer_range: float = Field(default=0.02, gt=0.0)
    seed: int = Field(default=0, ge=0, lt=2**63)
    threads: int = Field(default=2, ge=1, le=256)

    @model_validator(mode="after")
    def _consistent(self) -> TrainingRecipe:
        if self.sequence_length > self.context_length:
            raise ValueError(f"sequence_length {self.sequence_length} exceeds context_length {self.context_length}")
        if self.final_learning_rate > self.learning_rate:
            raise ValueError("final_learning_rate exceeds learning_rate")
        return self

    @property
    def tokens_per_step(self) -> int:
        """Tokens predicted per optimiser step."""
        return self.batch_size * self.sequence_length

    def shape(self, vocab_size: int) -> LlamaShape:
        """The model's shape for a tokenizer of ``vocab_size`` ids (what the trained tokenizer really has)."""
        hidden, heads, layers, intermediate = _SIZES[self.size]
        return LlamaShape(
            vocab_size=vocab_size,
            hidden_size=hidden,
            heads=heads,
            layers=layers,
            intermediate_size=intermediate,
            context_length=self.context_length,
        )

    def learning_rate_at(self, step: int) -> float:
        """The learning rate of step ``step`` (0-based): linear warm-up, then a cosine down to the final rate.

        A pure function of the step, so a resumed run follows the same schedule as an uninterrupted one.
        """
        if step < self.warmup_steps:
            return self.learning_rate * (step + 1) / self.warmup_steps
        decay_steps = max(1, self.steps - self.warmup_steps - 1)
        progress = min(1.0, (step - self.warmup_steps) / decay_steps)
        cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
        return self.final_learning_rate + (self.learning_rate - self.final_learning_rate) * cosine
