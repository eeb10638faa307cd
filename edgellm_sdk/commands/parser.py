"""CommandParser: natural language -> a validated Command, or a Refusal.

How one request is parsed:

1. The numbers it states, with their units, and the choices it names are found
   (``quantities``, ``Arg.mentioned``). Only commands whose arguments are all stated are
   offered, and only with those values: a small model can neither invent a value nor copy
   one from an example, and "3 meters per second" can never become a 3 m move.
2. The most similar labelled examples are retrieved (sentence embeddings when an Embedder
   is given, character bigrams for Chinese or without one) and shown as earlier chat
   turns; with embeddings, the commands of the closest examples are the only ones offered,
   and "not understood" is withheld when an example is clearly close. A command the request
   names (its name or a keyword) with all its values stated is always offered, and then
   "not understood" is withheld too.
3. The model writes the JSON under that schema (it always parses), then
   ``CommandSet.validate`` refuses out-of-range values, so unsafe commands never execute.

The fixed instructions (command list, one example per command) are a cached prefix.
"""

from __future__ import annotations

import json

import numpy as np

from .quantities import quantities
from .spec import NOT_UNDERSTOOD, Command, CommandSet, Refusal, as_json

SHOTS = 4
VOTE_MARGIN = 0.15  # examples this close to the best match vote for the commands offered
CLOSE_MATCH = 0.5  # cosine above which "not understood" is withheld (chosen on the dev set)


def _has_cjk(text: str) -> bool:
    return any("\u3000" <= ch <= "\u9fff" for ch in text)


def _bigrams(text: str) -> set[str]:
    squeezed = "".join(text.lower().split())
    return {squeezed[i : i + 2] for i in range(len(squeezed) - 1)} or {squeezed}


class ExampleIndex:
    """Nearest labelled examples of a request."""

    def __init__(self, examples, embedder=None):
        self.examples = list(examples)
        self.embedder = embedder
        texts = [t for t, _ in self.examples]
        self._vectors = embedder.embed(texts) if embedder is not None and texts else None
        self._bigrams = [_bigrams(t) for t in texts]

    def nearest(self, text: str, k: int) -> tuple[list[tuple[int, float]], bool]:
        """(index, score) best first, and whether the scores are embedding cosines."""
        if not self.examples or k <= 0:
            return [], False
        semantic = self._vectors is not None and not _has_cjk(text)
        if semantic:
            scores = self._vectors @ self.embedder.embed(text)
        else:
            grams = _bigrams(text)
            scores = np.array([2 * len(grams & g) / (len(grams) + len(g)) for g in self._bigrams])
        order = np.argsort(-scores, kind="stable")[:k]
        return [(int(i), float(scores[i])) for i in order], semantic


class CommandParser:
    """``parse(text)`` -> Command | Refusal, using an Engine with constrained decoding."""

    def __init__(self, engine, commands: CommandSet, *, embedder=None, shots: int = SHOTS, max_tokens: int = 64):
        self.engine, self.commands, self.max_tokens, self.shots = engine, commands, max_tokens, shots
        self.index = ExampleIndex(commands.examples, embedder)
        self._system = {"role": "system", "content": commands.instructions()}
        if engine.prefix_cache is not None:
            engine.warm([self._system])  # instructions + one example per command are prefilled once

    def plan(self, text: str) -> tuple[list[dict], dict]:
        """The chat messages and the decoding schema for ``text``."""
        nearest, semantic = self.index.nearest(text, self.shots)
        allowed, refusable = None, True
        if semantic and nearest:
            best = nearest[0][1]
            allowed = {self.index.examples[i][1]["command"] for i, s in nearest if s >= best - VOTE_MARGIN}
            refusable = best < CLOSE_MATCH or NOT_UNDERSTOOD in allowed
        turns = []
        for i, _ in reversed(nearest):  # the closest example right before the request
            example_text, expected = self.index.examples[i]
            turns += [{"role": "user", "content": example_text}, {"role": "assistant", "content": as_json(expected)}]
        stated = quantities(text)
        named = {c.name for c in self.commands.commands if c.named_in(text)}
        offered = {s["properties"]["command"]["const"] for s in self.commands.schema(text, stated)["anyOf"]}
        if named & offered:  # the request names a command and states all its values
            allowed, refusable = (allowed or set()) | (named & offered), False
        schema = self.commands.schema(text, stated, allowed, refusable)
        return [self._system, *turns, {"role": "user", "content": text}], schema

    def parse(self, text: str, *, deadline_s: float | None = None, cancel=None) -> Command | Refusal:
        if not isinstance(text, str) or not text.strip():
            raise ValueError("command text is empty")
        messages, schema = self.plan(text)
        c = self.engine.chat(messages, schema=schema, max_tokens=self.max_tokens, deadline_s=deadline_s, cancel=cancel)
        if c.finish_reason != "stop":
            return Refusal(f"no complete command ({c.finish_reason})")
        return self.commands.validate(json.loads(c.text))
