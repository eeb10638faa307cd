"""Chat templates (jinja2, from tokenizer_config.json) and message lists: a leaf of the core."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .types import Message

MessageLike = Message | dict


def as_messages(messages: Iterable[MessageLike]) -> list[Message]:
    out = []
    for m in messages:
        if isinstance(m, Message):
            out.append(m)
        elif isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str):
            out.append(Message(m["role"], m["content"]))
        else:
            raise ValueError(f"a message must be Message(role, content) or {{'role': str, 'content': str}}, got {m!r}")  # noqa: TRY004  (documented ValueError)
    if not out:
        raise ValueError("messages is empty; pass at least one {'role': 'user', 'content': ...}")
    return out


class ChatTemplate:
    def __init__(self, source: str, special_tokens: dict[str, str] | None = None):
        from jinja2 import StrictUndefined, TemplateError
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        def raise_exception(message: str):
            raise TemplateError(message)

        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, undefined=StrictUndefined)
        env.globals["raise_exception"] = raise_exception
        self._template = env.from_string(source)
        self._specials = special_tokens or {}

    def render(self, messages: Sequence[Message], *, add_generation_prompt: bool = True) -> str:
        return self._template.render(
            messages=[m.as_dict() for m in messages], add_generation_prompt=add_generation_prompt, **self._specials
        )


CHATML = (  # used when a model ships no template
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
