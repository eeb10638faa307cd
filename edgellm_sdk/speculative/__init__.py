"""Speculative decoding: draft several tokens cheaply, verify them in one batched forward.

A forward of a few tokens costs little more than one (the weights are read once), so every
token a draft gets right is nearly free. Draft sources, tried in this order each round:

- ``constraint``: tokens the grammar forces (llguidance's fast-forward) — accepted outright;
- ``lookup``: prompt lookup — the tokens that followed the latest earlier occurrence of the
  last n-gram of the prompt + output (sensor narrations and commands restate their input);
- ``history``: the same over this Engine's recent answers (a robot's usual phrasing);
- ``draft``: a small model sharing the tokenizer (``Engine.load(..., draft=...)``).

Greedy decoding keeps the longest drafted prefix the target model agrees with; sampling uses
speculative (rejection) sampling, so the output distribution is the target model's.
"""

from .config import Speculative, resolve_speculative
from .draft import DraftModel
from .stats import SpeculationStats

__all__ = ["DraftModel", "SpeculationStats", "Speculative", "resolve_speculative"]
