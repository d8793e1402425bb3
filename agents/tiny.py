"""A tiny Llama-architecture model and its tokenizer, built offline and deterministically, that vLLM serves.

No weights can be downloaded here, and tests and demos still need a real model. :func:`build_tiny_model` trains a
byte-level BPE tokenizer on CPython's own documentation (``pydoc_data.topics``, shipped with every Python) and
writes a ``LlamaForCausalLM`` in the standard Hugging Face layout (``config.json``, ``model.safetensors``,
``tokenizer.json``, ...). Its weights are not random noise: the token embeddings and the output head are a low-rank
factorisation of the corpus' bigram log-probabilities, so the model's next-token distributions are peaked and its
text echoes the corpus (which the attribution index later finds again); attention and MLP weights are small random
perturbations, so the context still matters. Everything comes from a seeded PCG64 generator and fixed-order
computations: the same seed writes byte-identical files.

The build needs numpy, safetensors and tokenizers (all brought by vLLM) and neither torch nor transformers.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from pydoc_data.topics import topics

import numpy as np
import numpy.typing as npt
from safetensors.numpy import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

__all__ = ["TinyModelSpec", "build_tiny_model"]

BOS, EOS, END_OF_TURN = "<s>", "</s>", "<|end|>"
_ROLES = ("system", "user", "assistant")
_SPECIAL_TOKENS = (BOS, EOS, "<|pad|>", END_OF_TURN, *(f"<|{role}|>" for role in _ROLES))
# A minimal chat format: a role marker, the content, an end-of-turn marker. vLLM renders it for /v1/chat/completions.
_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}<|end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
_SMOOTHING = 0.1  # add-k smoothing of bigram counts: unseen pairs get a low but finite log-probability
_PERTURBATION_STD = 0.02  # scale of the random attention/MLP weights next to the unit-scale bigram embedding
# Scale of the logits: it minimises the corpus cross-entropy of the rank-128 bigram approximation (measured: 1 gives
# 5.8 nats per token, 2 gives 5.1, 4 gives 6.3).
_SHARPENING = 2.0
_OVERSAMPLING, _POWER_ITERATIONS = 16, 2  # the usual settings of a randomized SVD
_EIGEN_FLOOR = 1e-12  # guards the inverse square root against a numerically zero direction


@dataclass(frozen=True, kw_only=True)
class TinyModelSpec:
    """The shape of the tiny model. The defaults load in seconds on a CPU and leave vLLM's CPU attention happy.

    Example:
        >>> TinyModelSpec(layers=1).head_dim
        64

    Attributes:
        vocab_size: tokenizer and embedding size, special tokens included.
        hidden_size: width of the residual stream; also the rank of the bigram factorisation.
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
        if self.hidden_size % self.heads or self.head_dim not in (64, 128):
            raise ValueError(f"hidden_size / heads must be 64 or 128 for vLLM's CPU attention, got {self.head_dim}")
        if self.vocab_size <= len(_SPECIAL_TOKENS) + 256:
            raise ValueError(f"vocab_size {self.vocab_size} leaves no room for merges over the 256 bytes")
        if self.hidden_size > self.vocab_size:
            raise ValueError("hidden_size cannot exceed vocab_size: it is the rank of the bigram factorisation")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.heads


def build_tiny_model(directory: Path, *, seed: int = 0, spec: TinyModelSpec | None = None) -> Path:
    """Writes the tokenizer and model files into ``directory`` (created if missing) and returns it.

    Args:
        directory: where to write; existing files of the same names are replaced.
        seed: seeds every random draw; the same seed and spec give byte-identical files.
        spec: the model's shape; :class:`TinyModelSpec` defaults when omitted.

    Raises:
        ValueError: the seed is negative.
    """
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    spec = spec or TinyModelSpec()
    directory.mkdir(parents=True, exist_ok=True)
    corpus = _corpus()
    tokenizer = _train_tokenizer(corpus, spec.vocab_size)
    tokenizer.save(str(directory / "tokenizer.json"))
    ids = np.fromiter(
        (token for text in corpus for token in tokenizer.encode(text).ids), dtype=np.int64
    )  # BOS-prefixed per document, so the first token of a document follows BOS like a prompt's does
    weights = _weights(ids, spec, np.random.Generator(np.random.PCG64(seed)))
    save_file(weights, str(directory / "model.safetensors"), metadata={"format": "pt"})
    (directory / "model.safetensors").chmod(0o644)  # safetensors writes owner-only; a model directory is shared
    bos, eos, end_of_turn = (_SPECIAL_TOKENS.index(token) for token in (BOS, EOS, END_OF_TURN))  # trained first
    _write_json(directory / "config.json", _config(spec, bos, eos))
    _write_json(directory / "generation_config.json", {"bos_token_id": bos, "eos_token_id": [eos, end_of_turn]})
    _write_json(
        directory / "tokenizer_config.json",
        {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "bos_token": BOS,
            "eos_token": EOS,
            "pad_token": "<|pad|>",
            "model_max_length": spec.context_length,
            "clean_up_tokenization_spaces": False,
            "chat_template": _CHAT_TEMPLATE,
        },
    )
    _write_json(directory / "special_tokens_map.json", {"bos_token": BOS, "eos_token": EOS, "pad_token": "<|pad|>"})
    return directory


def _corpus() -> list[str]:
    """The Python reference topics in a fixed order, whitespace runs collapsed (the tiny context is precious; and
    blank lines would make "newline after newline" the likeliest bigram, a fixed point of greedy decoding)."""
    return [re.sub(r"\s*\n\s*", "\n", re.sub(r"[ \t]+", " ", topics[key])).strip() for key in sorted(topics)]


def _train_tokenizer(corpus: list[str], vocab_size: int) -> Tokenizer:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(_SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus, trainer=trainer, length=len(corpus))
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, _SPECIAL_TOKENS.index(BOS))]
    )
    return tokenizer


def _weights(
    ids: npt.NDArray[np.int64], spec: TinyModelSpec, rng: np.random.Generator
) -> dict[str, npt.NDArray[np.float32]]:
    vocab, hidden = spec.vocab_size, spec.hidden_size
    counts = np.full((vocab, vocab), _SMOOTHING, dtype=np.float64)
    np.add.at(counts, (ids[:-1], ids[1:]), 1.0)
    log_probs = np.log(counts / counts.sum(axis=1, keepdims=True))
    # Centre each row: a softmax ignores a per-row constant, and the centred matrix has a better low-rank fit.
    log_probs -= log_probs.mean(axis=1, keepdims=True)
    left, singular, right = _truncated_svd(log_probs, hidden, rng)
    root = np.sqrt(singular)
    embed = left * root
    # The final RMSNorm rescales each hidden state to unit RMS; scaling the head by the typical embedding RMS brings
    # the logits back to the bigram log-probabilities, and the sharpening makes up for the rank truncation.
    head = right.T * root * float(np.sqrt(np.mean(embed**2))) * _SHARPENING
    weights = {"model.embed_tokens.weight": embed, "lm_head.weight": head, "model.norm.weight": np.ones(hidden)}

    def perturbation(rows: int, columns: int) -> npt.NDArray[np.float64]:
        return rng.normal(0.0, _PERTURBATION_STD, size=(rows, columns))

    for layer in range(spec.layers):
        prefix = f"model.layers.{layer}"
        for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
            weights[f"{prefix}.self_attn.{name}.weight"] = perturbation(hidden, hidden)
        weights[f"{prefix}.mlp.gate_proj.weight"] = perturbation(spec.intermediate_size, hidden)
        weights[f"{prefix}.mlp.up_proj.weight"] = perturbation(spec.intermediate_size, hidden)
        weights[f"{prefix}.mlp.down_proj.weight"] = perturbation(hidden, spec.intermediate_size)
        weights[f"{prefix}.input_layernorm.weight"] = np.ones(hidden)
        weights[f"{prefix}.post_attention_layernorm.weight"] = np.ones(hidden)
    return {name: np.ascontiguousarray(value, dtype=np.float32) for name, value in sorted(weights.items())}


def _truncated_svd(
    matrix: npt.NDArray[np.float64], rank: int, rng: np.random.Generator
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The leading ``rank`` singular triplets by randomized subspace iteration (Halko, Martinsson, Tropp 2011).

    Only matrix products and eigen-decompositions of small Gram matrices: LAPACK's QR and SVD of the
    vocabulary-sized matrices take tens of seconds on two busy cores (OpenBLAS threads spin), these take well under
    one. The precision is far beyond what a toy model's weights need.
    """
    basis = _orthonormal(matrix @ rng.standard_normal((matrix.shape[1], rank + _OVERSAMPLING)))
    for _ in range(_POWER_ITERATIONS):  # sharpen the basis toward the leading singular vectors
        basis = _orthonormal(matrix @ _orthonormal(matrix.T @ basis))
    projected = basis.T @ matrix  # (rank + oversampling) x columns; its SVD gives the matrix's leading triplets
    squares, small_left = np.linalg.eigh(projected @ projected.T)
    order = np.argsort(squares)[::-1][:rank]
    singular = np.sqrt(np.maximum(squares[order], 0.0))
    left = basis @ small_left[:, order]
    right = (small_left[:, order].T @ projected) / singular[:, None]
    return left, singular, right


def _orthonormal(columns: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """An orthonormal basis of the column span, through the eigen-decomposition of the small Gram matrix."""
    values, vectors = np.linalg.eigh(columns.T @ columns)
    result: npt.NDArray[np.float64] = columns @ (vectors / np.sqrt(np.maximum(values, _EIGEN_FLOOR)))
    return result


def _config(spec: TinyModelSpec, bos_id: int, eos_id: int) -> dict[str, object]:
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": spec.vocab_size,
        "hidden_size": spec.hidden_size,
        "intermediate_size": spec.intermediate_size,
        "num_hidden_layers": spec.layers,
        "num_attention_heads": spec.heads,
        "num_key_value_heads": spec.heads,
        "head_dim": spec.head_dim,
        "hidden_act": "silu",
        "max_position_embeddings": spec.context_length,
        "rms_norm_eps": 1e-6,
        "rope_parameters": {"rope_theta": 10000.0, "rope_type": "default"},
        "attention_bias": False,
        "attention_dropout": 0.0,
        "mlp_bias": False,
        "initializer_range": _PERTURBATION_STD,
        "tie_word_embeddings": False,
        "use_cache": True,
        "bos_token_id": bos_id,
        "eos_token_id": eos_id,
        "dtype": "float32",
    }


def _write_json(path: Path, value: object) -> None:
    path.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n", encoding="utf-8")
