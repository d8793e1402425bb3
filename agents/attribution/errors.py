"""Exceptions of Proof of Attribution, under :class:`staking.errors.StakedError`.

The tree::

    StakedError
    └── AttributionError
        ├── ContributionError (ValueError)         a contribution cannot enter a datanet; ``source`` names it
        │   ├── NotUtf8Error                       its bytes are not UTF-8 (``offset`` of the first bad byte)
        │   └── ContributionTooLargeError          it is larger than the datanet's limit
        ├── DatanetFormatError (ValueError)        a datanet directory is missing, malformed or edited by hand
        ├── AttributionIndexError (ValueError)     an index cannot be built, or read back as it was built
        ├── TokenizerError (ValueError)            a tokenizer cannot be loaded, or is not the index's
        │   └── TokenizerMismatchError             the index was built with another tokenizer
        ├── OutputTokensError (ValueError)         an output holds a token id outside the index's vocabulary
        └── RewardsError (ValueError)              an epoch's rewards cannot be split as asked

Foreign errors (``UnicodeDecodeError``, ``json``, pydantic's ``ValidationError``, the ``tokenizers`` library's
``Exception``) are translated where the data comes in, with ``raise ... from exc``.
"""

from __future__ import annotations

from staking.errors import StakedError

__all__ = [
    "AttributionError",
    "AttributionIndexError",
    "ContributionError",
    "ContributionTooLargeError",
    "DatanetFormatError",
    "NotUtf8Error",
    "OutputTokensError",
    "RewardsError",
    "TokenizerError",
    "TokenizerMismatchError",
]


class AttributionError(StakedError):
    """Root of the attribution errors."""


class ContributionError(AttributionError, ValueError):
    """The contribution from ``source`` (a path, ``file.jsonl:LINE``, or ``<python>``) is refused: ``reason``."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


class NotUtf8Error(ContributionError):
    """The contribution from ``source`` is not valid UTF-8; ``offset`` is the position of the first bad byte
    (or character, for a Python string holding a lone surrogate)."""

    def __init__(self, source: str, offset: int) -> None:
        super().__init__(source, f"not valid UTF-8 text (first bad byte at offset {offset}); convert it to UTF-8")
        self.offset = offset


class ContributionTooLargeError(ContributionError):
    """The contribution from ``source`` has ``size`` bytes, more than the datanet's ``limit``.

    A contribution is the unit that is credited: one the size of a book would take the credit for every span in it.
    Split large texts into sections (chapters, files, entries) before adding them.
    """

    def __init__(self, source: str, size: int, limit: int) -> None:
        super().__init__(source, f"{size:,} bytes is over the datanet's limit of {limit:,} bytes; split it up")
        self.size = size
        self.limit = limit


class DatanetFormatError(AttributionError, ValueError):
    """The datanet at ``path`` cannot be used: ``reason``."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"datanet {path}: {reason}")
        self.path = path
        self.reason = reason


class AttributionIndexError(AttributionError, ValueError):
    """The attribution index at ``path`` cannot be built or read: ``reason``."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"attribution index {path}: {reason}")
        self.path = path
        self.reason = reason


class TokenizerError(AttributionError, ValueError):
    """A tokenizer cannot be used: ``reason``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TokenizerMismatchError(TokenizerError):
    """The index at ``path`` was built with the tokenizer hashing to ``expected``, not the one given (``actual``).

    Token ids of one tokenizer mean nothing under another: attributing with it would credit the wrong data.
    """

    def __init__(self, path: str, expected: str, actual: str) -> None:
        super().__init__(
            f"attribution index {path} was built with tokenizer {expected}, not with the given tokenizer {actual}: "
            "use the model's own tokenizer, or rebuild the index with this one"
        )
        self.path = path
        self.expected = expected
        self.actual = actual


class OutputTokensError(AttributionError, ValueError):
    """Output position ``position`` holds token id ``token_id``, outside the index's vocabulary of ``vocab_size``."""

    def __init__(self, position: int, token_id: int, vocab_size: int) -> None:
        super().__init__(f"output token {position} is id {token_id}, outside the vocabulary of {vocab_size} ids")
        self.position = position
        self.token_id = token_id
        self.vocab_size = vocab_size


class RewardsError(AttributionError, ValueError):
    """An epoch's rewards cannot be split: ``reason``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
