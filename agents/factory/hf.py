"""The Hugging Face model directory that the project's model builders write and vLLM serves as is, and its modelId.

Both builders, the offline tiny model (:func:`agents.build_tiny_model`) and the trainer
(:func:`agents.factory.train_model`), write the same layout through this module, so that a trained model is a drop-in
replacement for the tiny one::

    config.json               LlamaForCausalLM, head_dim 64 or 128 (vLLM's CPU attention takes nothing else), float32
    generation_config.json    BOS, and EOS or end-of-turn as the end of a generation
    model.safetensors         the weights, tensors sorted by name
    tokenizer.json            byte-level BPE with the special tokens below, BOS added to every encoded text
    tokenizer_config.json     the special tokens and a minimal chat template
    special_tokens_map.json

**modelId.** What DatanetRegistry records and every receipt carries is a hash of the weight files::

    modelId = keccak256(RFC 8785 JSON of {"format": "staked-model-id/1",
                                          "weights": {NAME: "0x" + sha256(bytes of NAME), ...}})

over every ``*.safetensors`` file directly in the directory (one, or the shards of a large model), keyed by file
name. It covers the weights bit for bit and nothing else: configuration, tokenizer and model card may be edited
without changing it (the attribution index root, registered beside it, binds the tokenizer). Light to compute:
one streaming SHA-256 per file; no tensor is loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import rfc8785
from eth_utils.crypto import keccak
from safetensors.numpy import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from .errors import ModelDirectoryError

__all__ = [
    "BOS",
    "END_OF_TURN",
    "EOS",
    "SPECIAL_TOKENS",
    "LlamaShape",
    "model_id",
    "train_tokenizer",
    "weight_files",
    "write_json",
    "write_model_files",
    "write_weights",
]

BOS, EOS, PAD, END_OF_TURN = "<s>", "</s>", "<|pad|>", "<|end|>"
_ROLES = ("system", "user", "assistant")
#: Special tokens, trained first: their ids are their positions here.
SPECIAL_TOKENS = (BOS, EOS, PAD, END_OF_TURN, *(f"<|{role}|>" for role in _ROLES))
# A minimal chat format: a role marker, the content, an end-of-turn marker. vLLM renders it for /v1/chat/completions.
_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}<|end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
_HEAD_DIMS = (64, 128)  # what vLLM's CPU attention accepts (it refuses 16)
_BYTES = 256  # the byte-level alphabet every BPE vocabulary starts from
_MODEL_ID_FORMAT = "staked-model-id/1"
_WEIGHTS = "model.safetensors"


@dataclass(frozen=True, kw_only=True)
class LlamaShape:
    """The shape of a Llama model; the defaults are the tiny model's, which load in seconds on a CPU.

    Example:
        >>> LlamaShape(hidden_size=256, heads=4).head_dim
        64

    Attributes:
        vocab_size: tokenizer and embedding size, special tokens included.
        hidden_size: width of the residual stream.
        heads: attention heads; ``hidden_size / heads`` must be 64 or 128 (vLLM's CPU attention refuses 16).
        layers: transformer blocks.
        intermediate_size: width of each MLP.
        context_length: ``max_position_embeddings``, the longest prompt plus output vLLM accepts.
    """

    vocab_size: int = 2048
    hidden_size: int = 128
    heads: int = 2
    layers: int = 2
    intermediate_size: int = 256
    context_length: int = 1024

    def __post_init__(self) -> None:
        if self.hidden_size % self.heads or self.head_dim not in _HEAD_DIMS:
            raise ValueError(f"hidden_size / heads must be 64 or 128 for vLLM's CPU attention, got {self.head_dim}")
        if self.vocab_size <= len(SPECIAL_TOKENS) + _BYTES:
            raise ValueError(f"vocab_size {self.vocab_size} leaves no room for merges over the 256 bytes")
        if min(self.layers, self.intermediate_size, self.context_length) < 1:
            raise ValueError("layers, intermediate_size and context_length must be positive")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.heads

    @property
    def parameters(self) -> int:
        """Weights in the model: embeddings, output head, and per layer attention, MLP and two norms."""
        hidden, inner = self.hidden_size, self.intermediate_size
        per_layer = 4 * hidden * hidden + 3 * hidden * inner + 2 * hidden
        return 2 * self.vocab_size * hidden + self.layers * per_layer + hidden

    def config(self, *, initializer_range: float) -> dict[str, object]:
        """The ``config.json`` of a model of this shape (``initializer_range``: the std of its random weights)."""
        bos, eos = SPECIAL_TOKENS.index(BOS), SPECIAL_TOKENS.index(EOS)
        return {
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.layers,
            "num_attention_heads": self.heads,
            "num_key_value_heads": self.heads,
            "head_dim": self.head_dim,
            "hidden_act": "silu",
            "max_position_embeddings": self.context_length,
            "rms_norm_eps": 1e-6,
            "rope_parameters": {"rope_theta": 10000.0, "rope_type": "default"},
            "attention_bias": False,
            "attention_dropout": 0.0,
            "mlp_bias": False,
            "initializer_range": initializer_range,
            "tie_word_embeddings": False,
            "use_cache": True,
            "bos_token_id": bos,
            "eos_token_id": eos,
            "dtype": "float32",
        }


def train_tokenizer(texts: Sequence[str], vocab_size: int) -> Tokenizer:
    """A byte-level BPE tokenizer of at most ``vocab_size`` ids trained on ``texts``, the special tokens first; it
    adds BOS in front of every text it encodes (as vLLM's prompts get it).

    A corpus with fewer distinct merges than asked for gives a smaller vocabulary: read the size back from the
    tokenizer.
    """
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer, length=len(texts))
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, SPECIAL_TOKENS.index(BOS))]
    )
    return tokenizer


def write_model_files(
    directory: Path,
    *,
    shape: LlamaShape,
    tokenizer: Tokenizer,
    weights: Mapping[str, npt.NDArray[np.float32]],
    initializer_range: float,
) -> None:
    """Writes a complete model directory: tokenizer, weights, configuration (files of the same names are replaced).

    Raises:
        ModelDirectoryError: the tokenizer's vocabulary is not ``shape.vocab_size``, or it lacks the special tokens.
    """
    if tokenizer.get_vocab_size(with_added_tokens=True) != shape.vocab_size:
        reason = f"the tokenizer has {tokenizer.get_vocab_size()} ids, the shape {shape.vocab_size}"
        raise ModelDirectoryError(str(directory), reason)
    if [tokenizer.token_to_id(token) for token in SPECIAL_TOKENS] != list(range(len(SPECIAL_TOKENS))):
        raise ModelDirectoryError(str(directory), "the tokenizer's first ids are not the special tokens")
    directory.mkdir(parents=True, exist_ok=True)
    _replace(directory / "tokenizer.json", tokenizer.to_str(pretty=True).encode("utf-8"))
    write_weights(directory, weights)
    bos, eos, end_of_turn = (SPECIAL_TOKENS.index(token) for token in (BOS, EOS, END_OF_TURN))
    write_json(directory / "config.json", shape.config(initializer_range=initializer_range))
    write_json(directory / "generation_config.json", {"bos_token_id": bos, "eos_token_id": [eos, end_of_turn]})
    write_json(
        directory / "tokenizer_config.json",
        {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "bos_token": BOS,
            "eos_token": EOS,
            "pad_token": PAD,
            "model_max_length": shape.context_length,
            "clean_up_tokenization_spaces": False,
            "chat_template": _CHAT_TEMPLATE,
        },
    )
    write_json(directory / "special_tokens_map.json", {"bos_token": BOS, "eos_token": EOS, "pad_token": PAD})


def write_weights(directory: Path, weights: Mapping[str, npt.NDArray[np.float32]]) -> Path:
    """Writes ``weights`` (sorted by name, contiguous float32) to ``model.safetensors`` atomically; returns its path.

    The same tensors always give the same bytes, hence the same :func:`model_id`.
    """
    path = directory / _WEIGHTS
    temporary = path.with_name(f".{_WEIGHTS}.tmp")
    tensors = {name: np.ascontiguousarray(weights[name], dtype=np.float32) for name in sorted(weights)}
    save_file(tensors, str(temporary), metadata={"format": "pt"})
    temporary.chmod(0o644)  # safetensors writes owner-only; a model directory is shared
    _fsync(temporary)
    temporary.replace(path)
    return path


def weight_files(directory: Path) -> list[Path]:
    """The ``*.safetensors`` files directly in ``directory``, sorted by name: what :func:`model_id` covers.

    Raises:
        ModelDirectoryError: there is none.
    """
    files = sorted(directory.glob("*.safetensors"), key=lambda path: path.name.encode("utf-8"))
    if not files:
        raise ModelDirectoryError(str(directory), "holds no *.safetensors weights")
    return files


def model_id(directory: Path) -> bytes:
    """The modelId of the model in ``directory`` (the module docstring defines it).

    Example:
        >>> "0x" + model_id(Path("models/docs")).hex()            # doctest: +SKIP
        '0x3f9c...'

    Raises:
        ModelDirectoryError: the directory holds no ``*.safetensors`` file.
    """
    weights = {}
    for path in weight_files(directory):
        with path.open("rb") as file:
            weights[path.name] = "0x" + hashlib.file_digest(file, "sha256").hexdigest()
    return keccak(rfc8785.dumps({"format": _MODEL_ID_FORMAT, "weights": weights}))


def write_json(path: Path, value: Any) -> None:
    """Writes ``value`` as indented, key-sorted JSON, atomically."""
    _replace(path, (json.dumps(value, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def _replace(path: Path, data: bytes) -> None:
    """Writes ``data`` to ``path`` through a temporary file and a rename: a crash leaves the old file or the new."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    _fsync(temporary)
    temporary.replace(path)


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
