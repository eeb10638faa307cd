"""SensorAssistant: questions about the sensors, answered from the current facts.

``ask("is the greenhouse too hot?")`` puts the facts (and the active alerts) in front of the
question; with ``tools=True`` the model may also call ``channel_history`` through the Engine's
tool-calling API to read a channel's recent values. Answers go through the Narrator's checks
(``narrator.checked``): one stating a number the facts lack, no number of the facts at all, that
loops or misses the deadline is replaced by the template sentence built from the facts.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from .facts import FactBook, fmt
from .narrator import Narration, checked

if TYPE_CHECKING:
    from ..engine_api import EngineAPI

INSTRUCTIONS = (
    "You answer questions about a building's or robot's sensors. Answer in one or two short "
    "sentences using only the data given; never invent a number. If the data cannot answer, say so."
)


class SensorAssistant:
    def __init__(
        self,
        engine: EngineAPI,
        facts: FactBook,
        *,
        language: str = "en",
        max_tokens: int = 80,
        deadline_s: float | None = 10.0,
        tools: bool = False,
    ):
        self.engine, self.facts, self.language = engine, facts, language
        self.max_tokens, self.deadline_s, self.use_tools = max_tokens, deadline_s, tools
        self._system = {"role": "system", "content": INSTRUCTIONS + (" Reply in Chinese." if language == "zh" else "")}

    def channel_history(self, channel: str, last: int = 10) -> str:
        """The last values of a sensor channel ("source/channel"), oldest first."""
        points = self.facts.history(channel)[-max(1, min(int(last), 50)) :]
        if not points:
            known = ", ".join(c.channel for c in self.facts.facts().channels)
            return f"no channel {channel!r}; channels: {known}"
        return ", ".join(fmt(v) for _, v in points)

    def ask(self, question: str, *, deadline_s: float | None = None, cancel=None) -> Narration:
        if not isinstance(question, str) or not question.strip():
            raise ValueError("question is empty")
        t0 = time.perf_counter()
        facts = self.facts.facts()
        data = facts.text()
        messages = [self._system, {"role": "user", "content": f"Data:\n{data}\nQuestion: {question.strip()}"}]
        kwargs = {
            "max_tokens": self.max_tokens,
            "cancel": cancel,
            "deadline_s": deadline_s if deadline_s is not None else self.deadline_s,
        }
        if self.use_tools:
            c = self.engine.chat(messages, tools=[self.channel_history], **kwargs)
            data += "\n" + "\n".join(str(call.result) for call in c.tool_calls)
        else:
            c = self.engine.chat(messages, **kwargs)
        return checked(c.text.strip(), c.finish_reason, facts, data, language=self.language, started=t0)
