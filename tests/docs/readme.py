"""The README's fenced code blocks, read with what their info strings say about them.

A block's info string is its language and then words that say how a test uses it (GitHub reads only the first):

- ``file=NAME``: a file an example needs; the test writes it, as written, under ``NAME`` (files of the tour, or with
  ``deploy`` of the deployment example).
- ``tour``: shell commands of the tour, run in order in one shell; with ``terminal`` they stay up in the background
  (as in a terminal of their own) and ``waits-for=URL-or-path`` says when they are ready.
- ``deploy``: the L2 deployment's command, run against anvil.
- ``make``: the README's two commands, checked against the Makefile and CI.
- language ``text``: a picture or an output, not an example.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"

_FENCE = re.compile(
    r"^(?P<indent> *)```(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.MULTILINE | re.DOTALL
)


@dataclass(frozen=True)
class Block:
    """One fenced code block: its language, the words after it, its text (dedented) and its first line's number."""

    language: str
    line: int
    text: str
    words: frozenset[str] = frozenset()
    options: dict[str, str] = field(default_factory=dict)

    @property
    def file(self) -> str | None:
        return self.options.get("file")


def readme_blocks(path: Path = README) -> list[Block]:
    """Every fenced block of ``path``, in order."""
    document = path.read_text(encoding="utf-8")
    blocks = []
    for match in _FENCE.finditer(document):
        language, *rest = match["info"].split() or [""]
        indent = len(match["indent"])
        text = "".join(line[indent:] for line in match["body"].splitlines(keepends=True))
        options = dict(word.split("=", 1) for word in rest if "=" in word)
        words = frozenset(word for word in rest if "=" not in word)
        line = document.count("\n", 0, match.start()) + 2
        blocks.append(Block(language=language, line=line, text=text, words=words, options=options))
    return blocks


def section(title: str, path: Path = README) -> str:
    """The text of the section headed ``title`` (any level), up to the next heading of the same or a higher level."""
    document = path.read_text(encoding="utf-8")
    heading = re.search(rf"^(#+) {re.escape(title)}\n", document, re.MULTILINE)
    if heading is None:
        raise AssertionError(f"README has no section {title!r}")
    level = len(heading[1])
    end = re.compile(rf"^#{{1,{level}}} ", re.MULTILINE).search(document, heading.end())
    return document[heading.end() : end.start() if end else len(document)]
