"""Caches: prefix KV states and whole responses (exact and by meaning)."""

from .prefix import PrefixCache
from .response import ResponseCache
from .semantic import SemanticCache
from .stats import CacheStats

__all__ = ["CacheStats", "PrefixCache", "ResponseCache", "SemanticCache"]
