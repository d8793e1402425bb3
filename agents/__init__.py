"""The agent SDK: agents as Python classes with typed, priced skills, recorded model calls on vLLM, LangChain.

Light to import for readers of records (:mod:`agents.protocol` needs only pydantic); vLLM itself is only imported
by :class:`InProcessBackend` when its engine starts, and by the server :class:`VLLMServer` launches.
"""

from .agent import Agent, SkillResult
from .backend import Backend, Prompt
from .chat import ChatAgent, ChatIn, ChatOut
from .errors import (
    AgentDefinitionError,
    AgentError,
    BackendError,
    BackendTimeoutError,
    BackendUnavailableError,
    ContextLengthError,
    EngineFailedError,
    NotRecordingError,
    RequestRejectedError,
    ServerStartError,
    SkillInputError,
    SkillOutputError,
    UnknownModelError,
    UnknownSkillError,
)
from .langchain import RecordedChatModel, runnable_skill
from .loading import load_agent_class
from .protocol import (
    Alternative,
    ChatMessage,
    EngineInfo,
    ModelCall,
    Role,
    SamplingOptions,
    SamplingParams,
    Score,
    ScoredToken,
    StreamDelta,
    TokenLogprob,
)
from .recording import LLM, CallLog, record_calls
from .replay import Difference, Replay, ReplayBackend, ReplayError, ReplayMismatchError, replay
from .server import VLLMServer
from .skills import Skill, skill
from .tiny import TinyModelSpec, build_tiny_model
from .vllm_http import VLLMBackend
from .vllm_inprocess import InProcessBackend

__all__ = [
    "LLM",
    "Agent",
    "AgentDefinitionError",
    "AgentError",
    "Alternative",
    "Backend",
    "BackendError",
    "BackendTimeoutError",
    "BackendUnavailableError",
    "CallLog",
    "ChatAgent",
    "ChatIn",
    "ChatMessage",
    "ChatOut",
    "ContextLengthError",
    "Difference",
    "EngineFailedError",
    "EngineInfo",
    "InProcessBackend",
    "ModelCall",
    "NotRecordingError",
    "Prompt",
    "RecordedChatModel",
    "Replay",
    "ReplayBackend",
    "ReplayError",
    "ReplayMismatchError",
    "RequestRejectedError",
    "Role",
    "SamplingOptions",
    "SamplingParams",
    "Score",
    "ScoredToken",
    "ServerStartError",
    "Skill",
    "SkillInputError",
    "SkillOutputError",
    "SkillResult",
    "StreamDelta",
    "TinyModelSpec",
    "TokenLogprob",
    "UnknownModelError",
    "UnknownSkillError",
    "VLLMBackend",
    "VLLMServer",
    "build_tiny_model",
    "load_agent_class",
    "record_calls",
    "replay",
    "runnable_skill",
    "skill",
]
