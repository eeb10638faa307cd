"""Narrator: sensor facts -> a short status sentence, never with a number the facts lack.

The prompt follows LLMSense's shape (objective, context, data, format). The fixed part is a
system message, prefilled once into the prefix cache; the data is the facts' compact text.
Every number in the model's text (digits, English or Chinese number words) must be a
number of the facts, as written there or rounded to fewer decimals, in a unit of the same
kind. The narration is a template sentence built from the facts instead when that check
fails, when the text states no number of the facts at all (made-up prose), loops, or the
deadline passes (``checked``, which SensorAssistant's answers go through too). Identical facts
give an identical prompt, so the Engine's response cache (when configured) and the narrator's
own cache keyed by the facts digest serve repeats.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..commands.quantities import UNIT_WORDS, quantities
from .facts import Event, Facts, fmt

if TYPE_CHECKING:
    from ..engine_api import EngineAPI

INSTRUCTIONS = {
    "en": (
        "You report the state of sensors to a person in one or two short sentences. Use only the numbers "
        "in the data, written as given; never invent a number. Say alerts first.\n"
        "Example data:\nroom temperature is 26.5 °C, rising 0.4 °C/min, 4.5 °C above the 22 °C target.\n"
        "door battery is 81 %, steady.\nAlert now: room temperature is above the 26 °C limit.\n"
        "Example report: Alert: the room is 26.5 °C, 4.5 °C above target and rising. The door battery is fine "
        "at 81 %."
    ),
    "zh": (
        "你用一两句简短的中文向人报告传感器状态。只使用数据中的数字，照原样书写，不要编造数字。先说警报。\n"
        "示例数据：\nroom temperature is 26.5 °C, rising 0.4 °C/min, 4.5 °C above the 22 °C target.\n"
        "示例报告：警报：房间温度26.5 °C，比目标高4.5 °C，还在上升。"
    ),
}
PROMPTS = {
    "en": "Summarize these sensor readings in one or two sentences:\n",
    "zh": "用一两句中文总结这些传感器读数：\n",
}
CACHE_SIZE = 64


@dataclass(frozen=True)
class Narration:
    text: str
    origin: str  # model | template | cache
    rejected: tuple[float, ...] = ()  # numbers the model stated that the facts lack
    latency_s: float = 0.0
    finish_reason: str | None = None


def _unit_groups(word: str | None) -> set[str]:
    return {unit for unit, words in UNIT_WORDS.items() if word in words} or ({word} if word else set())


def unsupported_numbers(text: str, data: str) -> list[float]:
    """Numbers in ``text`` that ``data`` (the facts as given to the model) does not state,
    exactly or rounded to fewer decimals. A number written with a unit must also have a
    unit of the same kind there: "1.2 %" is not the fact "1.2 A", "2 degrees" not "greenhouse 2"."""
    allowed = quantities(data)
    bad = []
    for q in quantities(text):
        decimals = len(f"{q.value:.6f}".rstrip("0").split(".")[1]) if q.value != int(q.value) else 0
        groups = _unit_groups(q.unit_word)
        if not any(
            round(a.value, decimals) == q.value and (not groups or groups & _unit_groups(a.unit_word)) for a in allowed
        ):
            bad.append(q.value)
    return bad


def narration_data(facts: Facts, events: tuple[Event, ...] = ()) -> str:
    """What the model is shown, and so every number a narration may state."""
    alert = "\nAlert now: " + "; ".join(facts.describe(e) for e in events) + "." if events else ""
    return facts.text() + alert


def first_sentences(text: str, count: int = 2) -> str:
    """The first ``count`` sentences on one line, without a "Report:"-style lead-in."""
    text = re.sub(r"^\s*(?:the |example )?report\s*(?:is)?\s*:\s*", "", " ".join(text.split()), flags=re.IGNORECASE)
    sentences = re.findall(r".+?(?:[.!?](?=\s|$)|[。！？]|$)", text)
    return " ".join(s.strip() for s in sentences[:count] if s.strip())


def repetitive(text: str, n: int = 4) -> bool:
    """True if some run of ``n`` words occurs three times (a small model looping)."""
    words = text.lower().split()
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return any(grams.count(g) >= 3 for g in set(grams))


def states_a_fact(text: str, facts: Facts, events: tuple[Event, ...] = ()) -> bool:
    """A narration must state at least one number of the facts (of the alerting channels, for
    an alert): fluent prose with no number in it is usually made up by a small model."""
    channels = [c for c in facts.channels if not events or c.channel in {e.channel for e in events}]
    wanted = {fmt(v) for c in channels for v in (c.last, c.minimum, c.maximum, c.mean)}
    wanted |= {fmt(e.threshold) for e in events if e.threshold is not None}
    stated = {fmt(q.value) for q in quantities(text)}
    return bool(stated & wanted) or any(round(float(w)) == float(x) for w in wanted for x in stated)


def checked(
    text: str,
    finish_reason: str | None,
    facts: Facts,
    data: str,
    *,
    events: tuple[Event, ...] = (),
    language: str = "en",
    started: float,
) -> Narration:
    """The model's ``text`` if it passes every check, else the template sentence (with the numbers
    the text got wrong): a number ``data`` lacks, no number of the facts, looping, or the
    generation ended by deadline or cancel. ``started``: the time.perf_counter() of the request."""
    bad = tuple(unsupported_numbers(text, data))
    if finish_reason in ("deadline", "cancelled") or bad or repetitive(text) or not states_a_fact(text, facts, events):
        return Narration(
            template(facts, language, events), "template", bad, time.perf_counter() - started, finish_reason
        )
    return Narration(text, "model", (), time.perf_counter() - started, finish_reason)


def template(facts: Facts, language: str = "en", events: tuple[Event, ...] = ()) -> str:
    """A sentence built only from the facts (the fallback; always correct, never eloquent)."""
    urgent = [facts.describe(e) for e in (events or facts.active)]
    parts = []
    for c in facts.channels:
        u = f" {c.unit}" if c.unit else ""
        trend = {"rising": "上升", "falling": "下降", "steady": "平稳"}[c.trend] if language == "zh" else c.trend
        parts.append(f"{c.name} {fmt(c.last)}{u} ({trend})")
    if not parts:
        return "还没有传感器数据。" if language == "zh" else "No sensor readings yet."
    if language == "zh":
        head = "警报：" + "；".join(urgent) + "。" if urgent else ""
        return head + "当前：" + "，".join(parts) + "。"
    head = "Alert: " + "; ".join(urgent) + ". " if urgent else ""
    return head + "Now: " + ", ".join(parts) + "."


class Narrator:
    def __init__(
        self,
        engine: EngineAPI | None,
        *,
        context: str = "",
        language: str = "en",
        max_tokens: int = 64,
        deadline_s: float | None = 10.0,
    ):
        if language not in INSTRUCTIONS:
            raise ValueError(f"language must be one of {sorted(INSTRUCTIONS)}, got {language!r}")
        self.engine, self.language, self.max_tokens, self.deadline_s = engine, language, max_tokens, deadline_s
        system = INSTRUCTIONS[language] + (f"\nContext: {context}" if context else "")
        self._system = {"role": "system", "content": system}
        self._cache: OrderedDict[str, Narration] = OrderedDict()
        if engine is not None and engine.prefix_cache is not None:
            engine.warm([self._system])  # prefill the system prompt once

    def narrate(
        self, facts: Facts, *, events: tuple[Event, ...] = (), deadline_s: float | None = None, cancel=None
    ) -> Narration:
        """A status (or, with ``events``, an alert) for ``facts``."""
        t0 = time.perf_counter()
        data = narration_data(facts, events)
        prompt = PROMPTS[self.language] + data
        key = f"{facts.digest()}|{prompt}"
        if key in self._cache:
            self._cache.move_to_end(key)
            hit = self._cache[key]
            return Narration(hit.text, "cache", hit.rejected, time.perf_counter() - t0, hit.finish_reason)
        if self.engine is None or not facts.channels:
            return Narration(template(facts, self.language, events), "template", (), time.perf_counter() - t0)
        c = self.engine.chat(
            [self._system, {"role": "user", "content": prompt}],
            max_tokens=self.max_tokens,
            deadline_s=deadline_s if deadline_s is not None else self.deadline_s,
            cancel=cancel,
        )
        result = checked(
            first_sentences(c.text), c.finish_reason, facts, data, events=events, language=self.language, started=t0
        )
        if c.finish_reason not in ("deadline", "cancelled"):
            self._cache[key] = result
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return result
