"""EdgeLLM SDK: small language models on robots, smart speakers and IoT gateways.

    from edgellm_sdk import Engine
    with Engine.load("smollm2-135m") as engine:
        print(engine.chat([{"role": "user", "content": "Hi!"}]).text)

Importing this package loads only the standard library; onnxruntime, tokenizers, numpy
and jinja2 are imported when a model loads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import (
    ContextOverflow,
    EdgeLLMError,
    EngineClosed,
    MemoryBudgetExceeded,
    MissingDependency,
    ModelCorrupt,
    ModelError,
    ModelNotFound,
    ProfileError,
    ProviderUnavailable,
    PullError,
    SensorError,
    SpeechError,
    VocabularyMismatch,
)
from .types import Completion, FinishReason, Message, Token, Usage

__version__ = "0.1.0"

_LAZY = {
    "ChatSession": "session",
    "DeviceProfile": "profiles",
    "Embedder": "embed",
    "Engine": "engine",
    "EngineAPI": "engine_api",
    "LoadPlan": "models.plan",
    "ModelStore": "models.store",
    "PrefixCache": "cache.prefix",
    "ResponseCache": "cache.response",
    "SemanticCache": "cache.semantic",
    "Sampling": "sampling",
    "TextStream": "tokenizer",
    "Tokenizer": "tokenizer",
}

__all__ = [
    "ChatSession",
    "Completion",
    "ContextOverflow",
    "DeviceProfile",
    "EdgeLLMError",
    "Embedder",
    "Engine",
    "EngineAPI",
    "EngineClosed",
    "FinishReason",
    "LoadPlan",
    "MemoryBudgetExceeded",
    "Message",
    "MissingDependency",
    "ModelCorrupt",
    "ModelError",
    "ModelNotFound",
    "ModelStore",
    "PrefixCache",
    "ProfileError",
    "ProviderUnavailable",
    "PullError",
    "ResponseCache",
    "Sampling",
    "SemanticCache",
    "SensorError",
    "SpeechError",
    "TextStream",
    "Token",
    "Tokenizer",
    "Usage",
    "VocabularyMismatch",
    "__version__",
]

if TYPE_CHECKING:
    from .cache.prefix import PrefixCache
    from .cache.response import ResponseCache
    from .cache.semantic import SemanticCache
    from .embed import Embedder
    from .engine import Engine
    from .engine_api import EngineAPI
    from .models.plan import LoadPlan
    from .models.store import ModelStore
    from .profiles import DeviceProfile
    from .sampling import Sampling
    from .session import ChatSession
    from .tokenizer import TextStream, Tokenizer


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'edgellm_sdk' has no attribute {name!r}")
