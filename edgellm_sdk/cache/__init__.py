"""Caches: prefix KV states and whole responses."""

from .prefix import PrefixCache
from .response import ResponseCache
from .stats import CacheStats

__all__ = ["CacheStats", "PrefixCache", "ResponseCache"]
