"""What the layers above the core need from an Engine: one typed seam (``EngineAPI``).

Adapters (tools, the sensor narrator and assistant, the voice loop and assistant, the Wyoming
handler, the ROS engine host) type their ``engine`` parameter against this Protocol, so a test seam
or another runtime with the same methods fits without importing ``edgellm_sdk.engine``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from .chat import MessageLike
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

    def render(self, messages: Iterable[MessageLike], *, add_generation_prompt: bool = True) -> str: ...

    def prompt_ids(self, prompt: str | Sequence[MessageLike] | Sequence[int]) -> list[int]: ...

    def generate(self, prompt: Any, **options: Any) -> Iterator[Token]: ...

    def complete(self, prompt: Any, **options: Any) -> Completion: ...

    def chat(self, messages: Sequence[MessageLike], **options: Any) -> Completion: ...
