"""What the layers above the core need from an Engine: one typed seam (``EngineAPI``).

Adapters (tools, the sensor narrator and assistant, the voice loop and assistant, the Wyoming
handler, the ROS engine host) type their ``engine`` parameter against this Protocol, so a test seam
or another runtime with the same methods fits without importing ``edgellm_sdk.engine``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from .cache.prefix import PrefixCache
    from .chat import MessageLike
    from .sampling import Sampling
    from .tokenizer import Tokenizer
    from .types import Completion, Token


@runtime_checkable
class EngineAPI(Protocol):
    """Generation and prompt rendering, as ``edgellm_sdk.Engine`` provides them."""

    @property
    def tokenizer(self) -> Tokenizer: ...

    @property
    def model_id(self) -> str: ...

    @property
    def max_context(self) -> int: ...

    @property
    def prefix_cache(self) -> PrefixCache | None: ...  # None: warm() is not available

    def render(self, messages: Iterable[MessageLike], *, add_generation_prompt: bool = True) -> str: ...

    def prompt_ids(self, prompt: str | Sequence[MessageLike] | Sequence[int]) -> list[int]: ...

    def warm(self, prompt: Any) -> int: ...  # prefill a prompt head (a system prompt) into the prefix cache

    def generate(
        self,
        prompt: Any,
        *,
        max_tokens: int = 256,
        stop: str | Sequence[str] = (),
        sampling: Sampling | None = None,
        deadline_s: float | None = None,
        cancel: threading.Event | None = None,
        context: str | bytes | None = None,
        kv_reuse: str = "exact",
        schema: Any = None,
        regex: str | None = None,
        grammar: str | None = None,
        speculative: Any = None,
    ) -> Iterator[Token]: ...

    def complete(self, prompt: Any, **options: Any) -> Completion: ...

    def chat(
        self,
        messages: Sequence[MessageLike],
        *,
        tools: Sequence | None = None,
        max_tool_rounds: int = 3,
        **options: Any,
    ) -> Completion: ...
