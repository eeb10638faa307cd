"""PrefixCache: KV states of token prefixes, so shared prompt heads are prefilled once.

Lookups compare tokens (never a hash alone) and return the longest common prefix with
any entry; a prefix of an entry is as good as the entry, because a causal model's KV
for the first n tokens depends on those n tokens only. Entries are evicted least
recently used first when the byte budget is exceeded.

The Engine stores and restores only prefixes that end on its prefill chunk boundary,
which it computed as whole chunks, so a cached prefix holds bit-for-bit what an
uncached prefill computes (quantized kernels round activations per call).

``save`` keeps personal data off the disk: token ids decode back to the prompt, so an entry whose
text contains PII (edgellm_sdk.privacy) stays in memory and is not written; ``pii_on_disk=True``
writes every entry unchecked.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import MissingDependency
from ..privacy import Redactor, default_redactor
from .stats import CacheStats

log = logging.getLogger(__name__)
FORMAT = 1


@dataclass
class PrefixEntry:
    tokens: np.ndarray  # int32 [n]
    arrays: list[np.ndarray]  # per layer K and V: [1, kv_heads, n, head_dim]

    @property
    def nbytes(self) -> int:
        return self.tokens.nbytes + sum(a.nbytes for a in self.arrays)


def common_prefix(a: np.ndarray, b: np.ndarray) -> int:
    n = min(len(a), len(b))
    if n == 0:
        return 0
    diff = np.flatnonzero(a[:n] != b[:n])
    return int(diff[0]) if diff.size else n


class PrefixCache:
    def __init__(self, max_bytes: int = 64 << 20):
        if not isinstance(max_bytes, int) or max_bytes < 0:
            raise ValueError(f"max_bytes must be an int >= 0, got {max_bytes!r}")
        self.max_bytes = max_bytes
        self._entries: OrderedDict[bytes, PrefixEntry] = OrderedDict()
        self._bytes = 0
        self._hits = self._misses = self._evictions = 0
        self._lock = threading.Lock()

    # --- lookups -----------------------------------------------------------------
    def longest(self, ids: Sequence[int]) -> tuple[int, PrefixEntry | None]:
        """(length, entry) of the longest common token prefix of ``ids`` with any entry."""
        query = np.asarray(ids, dtype=np.int32)
        best, best_entry, best_key = 0, None, None
        with self._lock:
            for key, entry in self._entries.items():
                n = common_prefix(entry.tokens, query)
                if n > best:
                    best, best_entry, best_key = n, entry, key
            if best_key is not None:
                self._entries.move_to_end(best_key)
        return best, best_entry

    def record(self, hit: bool) -> None:
        with self._lock:
            if hit:
                self._hits += 1
            else:
                self._misses += 1

    def covers(self, ids: Sequence[int]) -> bool:
        """True if some entry starts with all of ``ids``."""
        n, _ = self.longest(ids)
        return n == len(ids)

    # --- updates ----------------------------------------------------------------
    def put(self, ids: Sequence[int], arrays: list[np.ndarray]) -> bool:
        """Store the KV of ``ids`` (arrays hold at least len(ids) tokens). False if over budget."""
        tokens = np.asarray(ids, dtype=np.int32)
        n = len(tokens)
        if n == 0 or any(a.shape[2] < n for a in arrays):
            raise ValueError("arrays must hold the KV of every token in ids")
        entry = PrefixEntry(tokens, [np.ascontiguousarray(a[:, :, :n]) for a in arrays])
        if entry.nbytes > self.max_bytes:
            return False
        key = tokens.tobytes()
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old.nbytes
            self._entries[key] = entry
            self._bytes += entry.nbytes
            while self._bytes > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= evicted.nbytes
                self._evictions += 1
        return True

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    @property
    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(
                self._hits, self._misses, len(self._entries), self._bytes, self.max_bytes, self._evictions
            )

    # --- persistence -------------------------------------------------------------
    def save(
        self,
        path: str | Path,
        model_id: str,
        *,
        decode: Callable[[Sequence[int]], str] | None = None,
        pii_on_disk: bool = False,
        redactor: Redactor | None = None,
    ) -> int:
        """Write the entries to one .npz file, tagged with the model they belong to; returns how many.

        ``decode`` (e.g. ``engine.tokenizer.decode``) turns an entry's tokens into text so that entries
        with PII are left out (they stay in memory). ``pii_on_disk=True`` writes everything unchecked.
        """
        path = Path(path)
        with self._lock:
            entries = list(self._entries.values())
        if not pii_on_disk:
            entries = self._without_pii(entries, decode, redactor or default_redactor())
        payload: dict[str, np.ndarray] = {
            "meta": np.frombuffer(
                json.dumps({"format": FORMAT, "model": model_id, "entries": len(entries)}).encode(), dtype=np.uint8
            )
        }
        for i, e in enumerate(entries):
            payload[f"tokens_{i}"] = e.tokens
            for j, a in enumerate(e.arrays):
                payload[f"kv_{i}_{j}"] = a
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as f:
            np.savez(f, **payload)  # type: ignore[arg-type]  # numpy's stub types **kwds as allow_pickle
        tmp.replace(path)
        return len(entries)

    @staticmethod
    def _without_pii(entries: list[PrefixEntry], decode, redactor: Redactor) -> list[PrefixEntry]:
        if decode is None:
            raise ValueError(
                "PrefixCache.save needs decode= (e.g. engine.tokenizer.decode) to keep prompts with personal data "
                "off the disk, or pii_on_disk=True to write every entry unchecked"
            )
        try:
            kept = [e for e in entries if not redactor.contains_pii(decode(e.tokens.tolist()))]
        except MissingDependency as e:
            raise MissingDependency(
                e.module, "privacy", f"{e}; or pass pii_on_disk=True to write the prefix cache unchecked"
            ) from e
        if len(kept) < len(entries):
            log.info(
                "prefix cache: %d of %d entries hold personal data and stay in memory",
                len(entries) - len(kept),
                len(entries),
            )
        return kept

    def load(self, path: str | Path, model_id: str) -> int:
        """Add the entries saved by ``save``; returns how many. Refuses another model's file."""
        with np.load(Path(path)) as data:
            meta = json.loads(bytes(data["meta"]).decode())
            if meta.get("format") != FORMAT or meta.get("model") != model_id:
                raise ValueError(f"{path} holds a prefix cache for model {meta.get('model')!r}, not {model_id!r}")
            count = 0
            for i in range(meta["entries"]):
                arrays, j = [], 0
                while f"kv_{i}_{j}" in data:
                    arrays.append(data[f"kv_{i}_{j}"])
                    j += 1
                count += self.put(data[f"tokens_{i}"].tolist(), arrays)
        return count
