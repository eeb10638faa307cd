"""CommandParser: natural language -> a validated Command, or a Refusal.

How one request is parsed:

1. The numbers it states, with their units, and the choices it names are found
   (``quantities``, ``Arg.mentioned``). Only commands whose arguments are all stated are
   offered, and only with those values: a small model can neither invent a value nor copy
   one from an example, and "3 meters per second" can never become a 3 m move.
2. The most similar labelled examples are retrieved (sentence embeddings when an Embedder
   is given, character bigrams for Chinese or without one) and shown as earlier chat
   turns; with embeddings, the commands of the closest examples are the only ones offered,
   and "not understood" is withheld when an example is clearly close. When the request names
   commands (their name or a keyword) and states all their values, only those are offered,
   and "not understood" is withheld too.
3. The model writes the JSON under that schema (it always parses), then
   ``CommandSet.validate`` refuses out-of-range values, so unsafe commands never execute.
4. ``SupportCheck`` (support.py) decides in code whether the request supports the command:
   a command nobody asked for is refused, and a low-confidence one runs only if ``confirm``
   says yes. A value no argument can take is refused before the model runs, naming the limit.

The fixed instructions (command list, one example per command) are a cached prefix.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

from .quantities import quantities
from .retrieval import ExampleIndex, has_cjk
from .spec import NOT_UNDERSTOOD, Command, CommandSet, Refusal, as_json
from .support import SupportCheck

SHOTS = 4
VOTE_MARGIN = 0.15  # examples this close to the best match vote for the commands offered
CLOSE_MATCH = 0.5  # cosine above which "not understood" is withheld (chosen on the dev set)
CONFIRM_TIMEOUT_S = 30.0  # how long a low-confidence command waits for its confirmation


def ask_within(confirm: Callable[[Command], bool], command: Command, timeout_s: float) -> bool | None:
    """``confirm(command)`` given at most ``timeout_s``; None if it did not answer in time (its
    thread is left to finish on its own). An exception it raises is raised here."""
    answer: list = []

    def run() -> None:
        try:
            answer.append((True, bool(confirm(command))))
        except Exception as e:  # noqa: BLE001  (raised again in the caller's thread)
            answer.append((False, e))

    worker = threading.Thread(target=run, name="command-confirm", daemon=True)
    worker.start()
    worker.join(max(timeout_s, 0.0))
    if not answer:
        return None
    ok, value = answer[0]
    if not ok:
        raise value
    return value


class CommandParser:
    """``parse(text)`` -> Command | Refusal, using an Engine with constrained decoding."""

    def __init__(self, engine, commands: CommandSet, *, embedder=None, shots: int = SHOTS, max_tokens: int = 64):
        self.engine, self.commands, self.max_tokens, self.shots = engine, commands, max_tokens, shots
        self.embedder = embedder
        self.index = ExampleIndex(commands.examples, embedder)
        self.support = SupportCheck(commands, embedder, examples=self.index)
        self._system = {"role": "system", "content": commands.instructions()}
        if engine.prefix_cache is not None:
            engine.warm([self._system])  # instructions + one example per command are prefilled once

    def _embed(self, text: str):
        return self.embedder.embed(text) if self.embedder is not None and not has_cjk(text) else None

    def plan(self, text: str, query_vector=None, stated=None) -> tuple[list[dict], dict]:
        """The chat messages and the decoding schema for ``text`` (``stated``: its quantities, if known)."""
        nearest, semantic = self.index.nearest(text, self.shots, query_vector)
        allowed, refusable = None, True
        if semantic and nearest:
            best = nearest[0][1]
            allowed = {self.index.examples[i][1]["command"] for i, s in nearest if s >= best - VOTE_MARGIN}
            refusable = best < CLOSE_MATCH or NOT_UNDERSTOOD in allowed
        turns = []
        for i, _ in reversed(nearest):  # the closest example right before the request
            example_text, expected = self.index.examples[i]
            turns += [{"role": "user", "content": example_text}, {"role": "assistant", "content": as_json(expected)}]
        stated = quantities(text) if stated is None else stated
        named = {c.name for c in self.commands.commands if c.named_in(text)}
        offered = {s["properties"]["command"]["const"] for s in self.commands.schema(text, stated)["anyOf"]}
        if named & offered:  # the request names a command and states all its values: only those
            allowed, refusable = named & offered, False
        schema = self.commands.schema(text, stated, allowed, refusable)
        return [self._system, *turns, {"role": "user", "content": text}], schema

    def parse(
        self,
        text: str,
        *,
        deadline_s: float | None = None,
        cancel=None,
        confirm: Callable[[Command], bool] | None = None,
        confirm_timeout_s: float = CONFIRM_TIMEOUT_S,
    ) -> Command | Refusal:
        """The command ``text`` asks for, or a Refusal saying why not. A low-confidence command
        runs only if ``confirm(command)`` returns True within ``confirm_timeout_s`` (a person's
        answer: not part of ``deadline_s``, which bounds the parse); without ``confirm``, or
        without an answer in time, it is refused with the command as ``Refusal.suggestion``
        (``needs_confirmation``)."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError("command text is empty")
        if not confirm_timeout_s > 0:
            raise ValueError(f"confirm_timeout_s must be > 0 seconds, got {confirm_timeout_s}")
        stated = quantities(text)
        if (limit := self.support.unreachable(stated)) is not None:
            return Refusal(limit)
        vector = self._embed(text)
        messages, schema = self.plan(text, vector, stated)
        c = self.engine.chat(messages, schema=schema, max_tokens=self.max_tokens, deadline_s=deadline_s, cancel=cancel)
        if c.finish_reason != "stop":
            return Refusal(f"no complete command ({c.finish_reason})")
        raw = json.loads(c.text)
        result = self.commands.validate(raw)
        if isinstance(result, Refusal):
            return result
        support = self.support.check(text, result, stated, vector)
        if support.level == "sure":
            return result
        if support.level == "unsure":
            why = f"unsure, needs confirmation: {support.reason}"
            if confirm is not None:
                answer = ask_within(confirm, result, confirm_timeout_s)
                if answer:
                    return result
                if answer is None:
                    why = f"no confirmation within {confirm_timeout_s:g} s; {why}"
            return Refusal(why, raw, suggestion=result)
        return Refusal(f"not a command this robot has: {support.reason}", raw)
