"""The model factory: train a small Llama model on datanets, on the CPU, into a directory vLLM serves as is.

:func:`train_model` trains a byte-level BPE tokenizer on the datanets and a ``LlamaForCausalLM`` with PyTorch
(:class:`TrainingRecipe` says how), resumably and deterministically, and writes a standard Hugging Face model
directory with a model card (:class:`ModelCard`, ``MODEL_CARD.md``, the loss curve as ``loss.png``).
:func:`model_id` is the modelId DatanetRegistry records for it and every receipt carries. ``staked model train`` and
``staked model register`` front them.

Light to import: torch and transformers (which take seconds to load) are imported on first use of
:func:`train_model`, :class:`TrainingResult` or :class:`Progress`; the rest needs pydantic, tokenizers and numpy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .card import Architecture, CardDatanet, ModelCard, ParentModel, TrainingFigures
from .errors import CheckpointError, FactoryError, ModelDirectoryError, TrainingDataError
from .hf import LlamaShape, model_id
from .recipe import ModelSize, TrainingRecipe

if TYPE_CHECKING:
    from .train import CHECKPOINT, Progress, TrainingResult, train_model

__all__ = [
    "CHECKPOINT",
    "Architecture",
    "CardDatanet",
    "CheckpointError",
    "FactoryError",
    "LlamaShape",
    "ModelCard",
    "ModelDirectoryError",
    "ModelSize",
    "ParentModel",
    "Progress",
    "TrainingDataError",
    "TrainingFigures",
    "TrainingRecipe",
    "TrainingResult",
    "model_id",
    "train_model",
]

_TORCH_NAMES = frozenset({"CHECKPOINT", "Progress", "TrainingResult", "train_model"})


def __getattr__(name: str) -> object:
    """Loads the torch-backed names on first use (PEP 562), so that importing the package stays cheap."""
    if name in _TORCH_NAMES:
        return getattr(importlib.import_module(".train", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
