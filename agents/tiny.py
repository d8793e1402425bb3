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

import re
from dataclasses import dataclass
from pathlib import Path
from pydoc_data.topics import topics

import numpy as np
import numpy.typing as npt

from .factory.hf import LlamaShape, train_tokenizer, write_model_files

__all__ = ["TinyModelSpec", "build_tiny_model"]

_SMOOTHING = 0.1  # add-k smoothing of bigram counts: unseen pairs get a low but finite log-probability
_PERTURBATION_STD = 0.02  # scale of the random attention/MLP weights next to the unit-scale bigram embedding
# Scale of the logits: it minimises the corpus cross-entropy of the rank-128 bigram approximation (measured: 1 gives
# 5.8 nats per token, 2 gives 5.1, 4 gives 6.3).
_SHARPENING = 2.0
_OVERSAMPLING, _POWER_ITERATIONS = 16, 2  # the usual settings of a randomized SVD
_EIGEN_FLOOR = 1e-12  # guards the inverse square root against a numerically zero direction


@dataclass(frozen=True, kw_only=True)
class TinyModelSpec(LlamaShape):
    """The shape of the tiny model: a :class:`~agents.factory.LlamaShape` whose width is also the rank of the
    bigram factorisation its embeddings come from. The defaults load in seconds on a CPU and leave vLLM's CPU
    attention happy.

    Example:
        >>> TinyModelSpec(layers=1).head_dim
        64
    """

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.hidden_size > self.vocab_size:
            raise ValueError("hidden_size cannot exceed vocab_size: it is the rank of the bigram factorisation")


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
    corpus = _corpus()
    tokenizer = train_tokenizer(corpus, spec.vocab_size)
    ids = np.fromiter(
        (token for text in corpus for token in tokenizer.encode(text).ids), dtype=np.int64
    )  # BOS-prefixed per document, so the first token of a document follows BOS like a prompt's does
    weights = _weights(ids, spec, np.random.Generator(np.random.PCG64(seed)))
    write_model_files(directory, shape=spec, tokenizer=tokenizer, weights=weights, initializer_range=_PERTURBATION_STD)
    return directory


def _corpus() -> list[str]:
    """The Python reference topics in a fixed order, whitespace runs collapsed (the tiny context is precious; and
    blank lines would make "newline after newline" the likeliest bigram, a fixed point of greedy decoding)."""
    return [re.sub(r"\s*\n\s*", "\n", re.sub(r"[ \t]+", " ", topics[key])).strip() for key in sorted(topics)]


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
