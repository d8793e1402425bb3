"""An agent is a Python class: a priced skill that summarizes a text with the model vLLM serves (and, from
:class:`~agents.ChatAgent`, plain chat).

Run it against a model served by ``staked vllm serve`` (the served model name is ``tiny-docs`` here)::

    staked model tiny /tmp/tiny && staked vllm serve /tmp/tiny --name tiny-docs &
    python examples/summarizer.py http://127.0.0.1:8000 "The for statement iterates over a sequence."
"""

from __future__ import annotations

import asyncio
import sys

from pydantic import BaseModel, Field

from agents import ChatAgent, VLLMBackend, skill
from staking import to_wei_open


class SummarizeIn(BaseModel):
    text: str = Field(min_length=1, max_length=4_000)
    max_words: int = Field(32, ge=1, le=128)


class SummarizeOut(BaseModel):
    summary: str


class Summarizer(ChatAgent):
    """Summarizes texts for 0.01 OPEN a request, and chats; greedy decoding, so a validator can re-check every token."""

    name = "summarizer"
    price = to_wei_open("0.01")
    model = "tiny-docs"

    @skill
    async def summarize(self, req: SummarizeIn) -> SummarizeOut:
        """Summarizes a text."""
        text = await self.llm.complete(f"Summary of: {req.text}\n", max_tokens=req.max_words, temperature=0)
        return SummarizeOut(summary=text.strip())


async def main(base_url: str, text: str) -> None:
    async with VLLMBackend(base_url, dtype="float32") as backend:
        result = await Summarizer(backend).invoke("summarize", {"text": text})
        print(SummarizeOut.model_validate(result.output).summary)
        print(f"price {result.price} wei; {len(result.calls)} recorded model call(s)")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
