"""Pins the agent SDK's public surface: a change here is a change users see."""

from __future__ import annotations

import subprocess
import sys

import agents

PUBLIC = [
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


def test_agents_surface_is_pinned_sorted_and_complete() -> None:
    assert agents.__all__ == PUBLIC
    assert agents.__all__ == sorted(agents.__all__, key=lambda name: (not name.isupper(), name))
    for name in agents.__all__:
        assert hasattr(agents, name), name


def test_every_error_is_a_staked_error() -> None:
    from staking import StakedError

    errors = [getattr(agents, name) for name in PUBLIC if name.endswith("Error")]
    assert all(issubclass(error, agents.AgentError) for error in errors)
    assert issubclass(agents.AgentError, StakedError)


def test_importing_the_sdk_or_its_records_pulls_in_neither_torch_nor_vllm() -> None:
    probe = "import sys, agents, agents.protocol; print(sorted({'torch', 'vllm'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    assert result.stdout.strip() == "[]"
