"""ResponseCache: whole answers to deterministic requests, in memory and optionally SQLite.

The key covers everything that decides the answer: the exact weights (Engine.model_id),
the prompt token ids, sampling settings, stop strings, max_tokens and a caller-supplied
context digest (e.g. the current sensor state), so an answer is never served for a
different situation. Only greedy or seeded requests are cached.

The SQLite store (WAL) survives restarts. A corrupt file is moved aside and rebuilt; a
locked one is skipped (a miss) after a short timeout. Neither ever raises into the caller.

Personal data stays off the disk: an answer (or the prompt, when ``put`` is given it) that contains
PII (edgellm_sdk.privacy) is kept in memory only, never written to SQLite. It is not stored redacted:
a cache replays what it stores, and an altered answer would be served later as if it were the model's.
Without the privacy extra nothing can be checked, so a cache with a path writes nothing to disk and
says so once; ``pii_on_disk=True`` writes every answer unchecked.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import MissingDependency
from ..privacy import Redactor, default_redactor, privacy_available
from ..types import FinishReason
from .stats import CacheStats

log = logging.getLogger(__name__)
DB_TIMEOUT_S = 0.2


@dataclass(frozen=True)
class CachedResponse:
    pieces: list[tuple[int, str]]  # (token id, text) exactly as first streamed
    finish_reason: FinishReason

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, data: str) -> CachedResponse:
        d = json.loads(data)
        return cls([tuple(p) for p in d["pieces"]], d["finish_reason"])

    @property
    def text(self) -> str:
        return "".join(text for _, text in self.pieces)


def response_key(
    *,
    model_id: str,
    prompt_ids: Sequence[int],
    sampling,
    stop: Sequence[str],
    max_tokens: int,
    context: str | bytes | None = None,
    grammar: str | None = None,
) -> str:
    ctx = context.encode() if isinstance(context, str) else context or b""
    payload = json.dumps(
        {
            "model": model_id,
            "prompt": list(prompt_ids),
            "sampling": asdict(sampling),
            "stop": list(stop),
            "max_tokens": max_tokens,
            "grammar": grammar,
            "context": hashlib.sha256(ctx).hexdigest(),
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


class ResponseCache:
    """``pii_on_disk``: False (default) keeps answers with PII in memory only; True writes them to ``path`` too.

    ``redactor`` decides what is PII (default: the shared ``privacy.default_redactor()``).
    """

    def __init__(
        self,
        max_bytes: int = 8 << 20,
        *,
        path: str | Path | None = None,
        ttl_s: float | None = None,
        pii_on_disk: bool = False,
        redactor: Redactor | None = None,
    ):
        if not isinstance(max_bytes, int) or max_bytes < 0:
            raise ValueError(f"max_bytes must be an int >= 0, got {max_bytes!r}")
        if ttl_s is not None and not ttl_s > 0:
            raise ValueError(f"ttl_s must be > 0 seconds or None, got {ttl_s!r}")
        self.max_bytes, self.ttl_s = max_bytes, ttl_s
        self.path = Path(path) if path else None
        self._mem: OrderedDict[str, tuple[float, str]] = OrderedDict()  # key -> (expires, json)
        self._bytes = 0
        self._hits = self._misses = self._evictions = 0
        self.db_errors = 0
        self.kept_off_disk = 0  # answers held in memory only because they contain PII (or cannot be checked)
        self.pii_on_disk, self.redactor = pii_on_disk, redactor
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._can_check = pii_on_disk or privacy_available()
        if self.path:
            if not self._can_check:
                log.warning(
                    "response cache %s: answers are kept in memory only, because checking them for personal data "
                    "needs the privacy extra (pip install 'edgellm-sdk[privacy]'); pass pii_on_disk=True to write "
                    "them unchecked",
                    self.path,
                )
            self._open_db()

    # --- public API ---------------------------------------------------------------
    def get(self, key: str) -> CachedResponse | None:
        now = time.time()
        with self._lock:
            item = self._mem.get(key)
            if item is not None and item[0] < now:
                self._drop(key)
                item = None
            if item is None and self._db is not None:
                row = self._db_call("SELECT expires, value FROM responses WHERE key = ?", (key,), fetch=True)
                if row and row[0] >= now:
                    item = (row[0], row[1])
                    self._remember(key, item)
            if item is None:
                self._misses += 1
                return None
            self._mem.move_to_end(key)
            self._hits += 1
        return CachedResponse.from_json(item[1])

    def put(self, key: str, response: CachedResponse, ttl_s: float | None = None, *, prompt: str | None = None) -> None:
        """Remember ``response``; write it to the file too unless it (or ``prompt``) contains PII."""
        ttl = ttl_s if ttl_s is not None else self.ttl_s
        item = (time.time() + ttl if ttl else float("inf"), response.to_json())
        to_disk = self._db is not None and self._may_write(response.text, prompt)
        with self._lock:
            self._remember(key, item)
            if not to_disk and self._db is not None:
                self.kept_off_disk += 1
            if to_disk and self._db is not None:
                self._db_call(
                    "INSERT OR REPLACE INTO responses (key, expires, value) VALUES (?, ?, ?)", (key, item[0], item[1])
                )

    def invalidate(self, key: str | None = None) -> None:
        """Forget one key, or everything when key is None."""
        with self._lock:
            if key is None:
                self._mem.clear()
                self._bytes = 0
                if self._db is not None:
                    self._db_call("DELETE FROM responses", ())
            else:
                self._drop(key)
                if self._db is not None:
                    self._db_call("DELETE FROM responses WHERE key = ?", (key,))

    @property
    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(self._hits, self._misses, len(self._mem), self._bytes, self.max_bytes, self._evictions)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def _may_write(self, answer: str, prompt: str | None) -> bool:
        if self.pii_on_disk:
            return True
        if not self._can_check:
            return False
        try:
            redactor = self.redactor or default_redactor()
            return not any(redactor.contains_pii(t) for t in (answer, prompt or "") if t)
        except MissingDependency:  # the extra went missing after the check at construction
            self._can_check = False
            return False

    # --- memory LRU -----------------------------------------------------------------
    def _remember(self, key: str, item: tuple[float, str]) -> None:
        self._drop(key)
        size = len(item[1]) + len(key)
        if size > self.max_bytes:
            return
        self._mem[key] = item
        self._bytes += size
        while self._bytes > self.max_bytes:
            old_key, _ = next(iter(self._mem.items()))
            self._drop(old_key)
            self._evictions += 1

    def _drop(self, key: str) -> None:
        item = self._mem.pop(key, None)
        if item is not None:
            self._bytes -= len(item[1]) + len(key)

    # --- SQLite ---------------------------------------------------------------------
    def _open_db(self) -> None:
        assert self.path is not None, "only a cache with a path has a database"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for attempt in (1, 2):
            try:
                db = sqlite3.connect(
                    str(self.path), timeout=DB_TIMEOUT_S, check_same_thread=False, isolation_level=None
                )
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, expires REAL, value TEXT)")
                db.execute("SELECT COUNT(*) FROM responses").fetchone()
                self._db = db
                return
            except sqlite3.DatabaseError as e:
                self.db_errors += 1
                if attempt == 2 or isinstance(e, sqlite3.OperationalError) and "locked" in str(e):
                    log.warning("response cache %s unavailable (%s); using memory only", self.path, e)
                    return
                aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
                log.warning("response cache %s is corrupt (%s); moved to %s and rebuilt", self.path, e, aside)
                for suffix in ("", "-wal", "-shm"):
                    src = Path(str(self.path) + suffix)
                    if src.exists():
                        src.replace(Path(str(aside) + suffix))

    def _db_call(self, sql: str, args: tuple, fetch: bool = False):
        if self._db is None:
            return None
        try:
            cur = self._db.execute(sql, args)
            return cur.fetchone() if fetch else None
        except sqlite3.DatabaseError as e:  # locked, disk full, corrupted underneath us
            self.db_errors += 1
            log.warning("response cache %s: %s (treated as a miss)", self.path, e)
            return None
