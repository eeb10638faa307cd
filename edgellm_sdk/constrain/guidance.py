"""Token masks from llguidance (the library llama.cpp and onnxruntime-genai use).

A ``Constraint`` is compiled once per request from a JSON Schema (dict, JSON text or a
pydantic model class), a regular expression or a Lark grammar. At each step it masks the
logits so only tokens that keep the output inside the grammar can be sampled, then
advances on the sampled token. Needs the ``structured`` extra (llguidance).
"""

from __future__ import annotations

import json
import weakref
from typing import Any

import numpy as np

from ..errors import EdgeLLMError, MissingDependency


class ConstraintError(EdgeLLMError, ValueError):
    """The schema / grammar is invalid, or the model's tokens cannot satisfy it."""


_TOKENIZERS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def _llguidance():
    try:
        import llguidance
        import llguidance.numpy
    except ImportError as e:
        raise MissingDependency("llguidance", "structured") from e
    return llguidance


def _ll_tokenizer(tokenizer, vocab_size: int):
    """llguidance's view of our tokenizer (built once per Tokenizer: ~0.5 s)."""
    cached = _TOKENIZERS.get(tokenizer)
    if cached is None or cached[0] != vocab_size:
        ll = _llguidance()
        eos = min(tokenizer.eos_ids) if tokenizer.eos_ids else None
        cached = (vocab_size, ll.LLTokenizer(tokenizer.hf.to_str(), n_vocab=vocab_size, eos_token=eos))
        _TOKENIZERS[tokenizer] = cached
    return cached[1]


def grammar_text(schema=None, regex: str | None = None, grammar: str | None = None) -> str:
    """The llguidance grammar for exactly one of schema / regex / Lark grammar."""
    if sum(x is not None for x in (schema, regex, grammar)) != 1:
        raise ValueError("pass exactly one of schema=, regex= or grammar=")
    ll = _llguidance()
    try:
        if schema is not None:
            if hasattr(schema, "model_json_schema"):  # a pydantic model class
                schema = schema.model_json_schema()
            if isinstance(schema, str):
                schema = json.loads(schema)
            if not isinstance(schema, dict):
                raise ConstraintError(f"schema must be a JSON Schema dict, JSON text or pydantic model, got {schema!r}")
            return ll.LLMatcher.grammar_from_json_schema(schema, defaults={"whitespace_flexible": False})
        if regex is not None:
            return ll.LLMatcher.grammar_from_regex(regex)
        return ll.LLMatcher.grammar_from_lark(grammar)
    except ValueError as e:
        if isinstance(e, ConstraintError):
            raise
        raise ConstraintError(f"invalid constraint: {e}") from e


class Constraint:
    """Per-request matcher: ``mask(logits)`` before sampling, ``advance(token)`` after."""

    def __init__(self, tokenizer, vocab_size: int, grammar: str):
        ll = _llguidance()
        self.grammar = grammar
        self.vocab_size = vocab_size
        self._matcher = ll.LLMatcher(_ll_tokenizer(tokenizer, vocab_size), grammar, log_level=0)
        if self._matcher.is_error():
            raise ConstraintError(f"the constraint cannot be used: {self._matcher.get_error()}")
        self._bitmask = ll.numpy.allocate_token_bitmask(1, vocab_size)
        self._fill = ll.numpy.fill_next_token_bitmask

    def mask(self, logits: np.ndarray) -> np.ndarray:
        """A copy of 1-D ``logits`` with every forbidden token at -inf."""
        self._fill(self._matcher, self._bitmask)
        if self._matcher.is_error():
            raise ConstraintError(f"constrained decoding failed: {self._matcher.get_error()}")
        allowed = np.unpackbits(self._bitmask.view(np.uint8), bitorder="little")[: self.vocab_size].astype(bool)
        if not allowed.any():
            raise ConstraintError("no token of this model's vocabulary can continue the constrained output")
        out = np.asarray(logits, dtype=np.float32).reshape(-1)[: self.vocab_size].copy()
        out[~allowed] = -np.inf
        return out

    def advance(self, token: int) -> None:
        if not self._matcher.consume_token(int(token)):
            raise ConstraintError(f"token {token} broke the constraint: {self._matcher.get_error()}")

    def forced(self) -> list[int]:
        """Tokens the grammar allows no alternative to from here (llguidance's fast-forward)."""
        if self._matcher.is_stopped():
            return []
        return list(self._matcher.compute_ff_tokens())

    def valid_prefix(self, tokens: list[int]) -> int:
        """How many leading ``tokens`` the grammar accepts from here (nothing is consumed)."""
        return self._matcher.validate_tokens(tokens) if tokens else 0

    def ends_after(self, tokens: list[int]) -> bool:
        """Whether the grammar is complete right after ``tokens`` (nothing is consumed)."""
        if not tokens:
            return False
        consumed = self._matcher.try_consume_tokens(tokens)
        done = consumed == len(tokens) and self._matcher.is_stopped()
        self._matcher.rollback(consumed)
        return done

    @property
    def done(self) -> bool:
        """The grammar is complete and allows nothing more."""
        return self._matcher.is_stopped()


def compile_constraint(tokenizer, vocab_size: int, *, schema=None, regex=None, grammar=None) -> Constraint | None:
    if schema is None and regex is None and grammar is None:
        return None
    return Constraint(tokenizer, vocab_size, grammar_text(schema, regex, grammar))
