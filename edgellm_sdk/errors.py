"""Every exception the SDK raises on purpose.

    EdgeLLMError
    ├── ModelError                    a model cannot be found, verified or loaded
    │   ├── ModelNotFound             unknown name or missing directory (lists known names)
    │   ├── ModelCorrupt              a file is missing or its sha256 differs from manifest.json
    │   └── VocabularyMismatch        tokenizer and model disagree on the vocabulary size
    ├── ConversionError               a GGUF file cannot be converted (unsupported arch/quant)
    ├── ToolchainError                a toolchain input is unusable (data file line, model, option)
    ├── PullError                     fetching a model package failed (pip, network, disk)
    ├── ContextOverflow               prompt + max_tokens exceed the model's context window
    ├── MissingDependency             an optional extra is not installed (names the pip command)
    ├── SensorError                   a sensor URL, option or device is wrong (says the fix)
    ├── SpeechError                   audio or a speech model cannot be used (says the fix)
    ├── ProfileError                  a device profile is missing or malformed (names the key)
    ├── ProviderUnavailable           an execution provider the profile asks for is not there
    ├── MemoryBudgetExceeded          loading would exceed the memory budget (says what fits)
    └── EngineClosed                  the engine was used after close()

Bad arguments (empty prompt, negative max_tokens, temperature < 0 ...) raise ``ValueError``
with the allowed range. Cancellation and deadlines are *not* errors: they end a
generation with ``finish_reason`` "cancelled" / "deadline".
"""

from __future__ import annotations


class EdgeLLMError(Exception):
    """Base class of every error raised by edgellm_sdk."""


class ModelError(EdgeLLMError):
    pass


class ModelNotFound(ModelError):
    pass


class ModelCorrupt(ModelError):
    pass


class VocabularyMismatch(ModelError):
    pass


class ConversionError(EdgeLLMError):
    pass


class ToolchainError(EdgeLLMError):
    """quantize / prune / distill / finetune / eval cannot use an input: the message names the
    file (and line of a JSONL file), what was wrong, and the fix."""


class PullError(EdgeLLMError):
    pass


class ContextOverflow(EdgeLLMError):
    def __init__(self, prompt_tokens: int, max_tokens: int, context: int):
        self.prompt_tokens, self.max_tokens, self.context = prompt_tokens, max_tokens, context
        super().__init__(
            f"prompt ({prompt_tokens} tokens) + max_tokens ({max_tokens}) = "
            f"{prompt_tokens + max_tokens} exceeds the context window of {context} tokens; "
            "shorten the prompt, lower max_tokens, or load with a larger max_context"
        )


class MissingDependency(EdgeLLMError, ImportError):
    """An optional package is not installed. The default message names the extra to install;
    ``message`` replaces it when the fix is something else (a system library, a program)."""

    def __init__(self, module: str, extra: str | None = None, message: str | None = None):
        self.module, self.extra = module, extra
        fix = f"pip install 'edgellm-sdk[{extra}]'" if extra else f"pip install {module}"
        super().__init__(message or f"{module!r} is not installed; install it with: {fix}")


class EngineClosed(EdgeLLMError):
    pass


class SensorError(EdgeLLMError):
    """A sensor source cannot be opened: unknown URL scheme, missing or bad option, device or
    broker unreachable. The message names what was wrong and how to fix it."""


class SpeechError(EdgeLLMError):
    """Audio or a speech model cannot be used: not a WAV file, unsupported encoding, missing or
    invalid model directory, words outside a recognizer's vocabulary. The message says the fix."""


class ProfileError(EdgeLLMError, ValueError):
    """A device profile is missing, malformed or asks for what this machine cannot do."""


class ProviderUnavailable(EdgeLLMError):
    """An onnxruntime execution provider a profile requires is not available (no silent CPU fallback)."""


class MemoryBudgetExceeded(EdgeLLMError, MemoryError):
    """Loading would exceed the memory budget; the message names variants / contexts that fit."""
