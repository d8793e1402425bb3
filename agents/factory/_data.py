"""The training set: the datanets' contributions tokenized into one stream, and the windows each step trains on.

Every contribution is encoded with the model's tokenizer (BOS in front, as a prompt gets it) and closed with EOS,
so the model learns where a text starts and where it ends. The windows of a step are drawn by a generator seeded
with ``(seed, step)``: the batches are a pure function of the step, so a run resumed at any step sees exactly the
batches an uninterrupted run sees, without any data-loader state in the checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from tokenizers import Tokenizer

from ..attribution import Datanet
from .errors import TrainingDataError

__all__ = ["TokenStream", "ordered", "texts_of"]

_ENCODE_BATCH = 1024  # contributions per tokenizer call: the Rust tokenizer parallelises within a batch


def ordered(datanets: Sequence[Datanet]) -> list[Datanet]:
    """The datanets in the order of their digests (as an attribution index takes them): the order they are given
    in changes neither the tokenizer nor the weights.

    Raises:
        TrainingDataError: there is no datanet, one is given twice, or they hold no contribution.
    """
    if not datanets:
        raise TrainingDataError("no datanet to train on")
    by_digest = sorted(datanets, key=lambda net: net.digest)
    if len({net.digest for net in by_digest}) != len(by_digest):
        raise TrainingDataError("a datanet is given twice")
    if not any(len(net) for net in by_digest):
        raise TrainingDataError("the datanets hold no contribution")
    return by_digest


def texts_of(datanets: Sequence[Datanet]) -> list[str]:
    """Every contribution's text, datanet after datanet, each in its order."""
    return [contribution.text for net in datanets for contribution in net]


@dataclass(frozen=True)
class TokenStream:
    """The training corpus as one array of token ids, and the seeded draw of training windows from it."""

    ids: npt.NDArray[np.int64]

    @classmethod
    def encode(cls, texts: Sequence[str], tokenizer: Tokenizer, eos_id: int) -> TokenStream:
        """Every text encoded (the tokenizer's special tokens included, BOS for ours) and followed by ``eos_id``."""
        pieces: list[npt.NDArray[np.int64]] = []
        for first in range(0, len(texts), _ENCODE_BATCH):
            for encoding in tokenizer.encode_batch(list(texts[first : first + _ENCODE_BATCH])):
                pieces.append(np.asarray([*encoding.ids, eos_id], dtype=np.int64))
        return cls(np.concatenate(pieces))

    def __len__(self) -> int:
        return len(self.ids)

    def batch(self, *, seed: int, step: int, batch_size: int, length: int) -> npt.NDArray[np.int64]:
        """``batch_size`` windows of ``length + 1`` tokens (inputs and their next tokens) for step ``step``.

        Raises:
            TrainingDataError: the corpus is not longer than one window.
        """
        if len(self.ids) <= length:
            raise TrainingDataError(
                f"the datanets hold {len(self.ids)} tokens, not more than one training window of {length}: "
                "lower the sequence length or add data"
            )
        generator = np.random.Generator(np.random.PCG64([seed, step]))
        starts = generator.integers(0, len(self.ids) - length, size=batch_size)
        windows: npt.NDArray[np.int64] = self.ids[starts[:, None] + np.arange(length + 1)]
        return windows

    def windows(self, length: int) -> npt.NDArray[np.int64]:
        """The corpus cut into consecutive windows of ``length + 1`` tokens overlapping by one (the last partial
        window dropped): every token is predicted once, for the loss over the whole data."""
        count = (len(self.ids) - 1) // length
        starts = np.arange(count) * length
        windows: npt.NDArray[np.int64] = self.ids[starts[:, None] + np.arange(length + 1)]
        return windows
