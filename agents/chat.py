""":class:`ChatAgent`: an agent that also sells plain chat with its model, as the skill ``chat``.

The agent host serves ``POST /v1/chat/completions`` with ``model`` set to the agent's name through this skill, so
an OpenAI client pays for chat like for any skill, and its receipt is audited like any other: a validator replays
the skill on the recorded call.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from .agent import Agent
from .protocol import ChatMessage
from .skills import skill

__all__ = ["ChatAgent", "ChatIn", "ChatOut"]


class ChatIn(BaseModel):
    """A chat request: the messages and the sampling an OpenAI client may set."""

    model_config = ConfigDict(extra="forbid")

    messages: tuple[ChatMessage, ...] = Field(min_length=1)
    max_tokens: int = Field(64, ge=1, le=4096)
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    seed: int | None = Field(None, ge=0, lt=2**53)
    stop: tuple[str, ...] = ()


class ChatOut(BaseModel):
    """The assistant's reply and why it ended (``stop`` or ``length``)."""

    content: str
    finish_reason: str


class ChatAgent(Agent):
    """Base of agents that sell chat besides their own skills (set ``name``, ``price`` and ``model`` as usual)."""

    @skill
    async def chat(self, req: ChatIn) -> ChatOut:
        """Chats with the agent's model."""
        call = await self.llm.generate_chat(
            req.messages,
            max_tokens=req.max_tokens,
            temperature=req.temperature,
            top_p=req.top_p,
            seed=req.seed,
            stop=req.stop,
        )
        return ChatOut(content=call.output, finish_reason=call.finish_reason)
