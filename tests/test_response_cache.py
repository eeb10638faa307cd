"""ResponseCache: exact answers for deterministic requests, memory LRU + SQLite."""

import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from edgellm_sdk import Engine, ResponseCache, Sampling
from edgellm_sdk.cache.response import CachedResponse

ANSWER = CachedResponse([(5, "hel"), (6, "lo"), (2, "")], "stop")


@pytest.fixture
def engine(tiny_store):
    with Engine.load(
        "tiny", store=tiny_store, variant="q8", max_context=128, threads=1, response_cache=ResponseCache()
    ) as e:
        yield e


def test_deterministic_answer_is_served_from_cache(engine):
    first = engine.complete("hello world", max_tokens=8)
    second = engine.complete("hello world", max_tokens=8)
    assert not first.cached and second.cached
    assert (second.text, second.token_ids, second.finish_reason) == (first.text, first.token_ids, first.finish_reason)
    streamed = list(engine.generate("hello world", max_tokens=8))
    assert [t.text for t in streamed] == [t.text for t in engine.generate("hello world", max_tokens=8)]
    assert len(streamed) >= len(first.token_ids) and streamed[-1].cached


def test_key_covers_settings_and_context(engine):
    engine.complete("hello world", max_tokens=8, context="temp=21C")
    assert engine.complete("hello world", max_tokens=8, context="temp=21C").cached
    assert not engine.complete("hello world", max_tokens=8, context="temp=25C").cached
    assert not engine.complete("hello world", max_tokens=7, context="temp=21C").cached
    assert not engine.complete("hello world", max_tokens=8, stop=["x"], context="temp=21C").cached


def test_only_deterministic_complete_answers_are_cached(engine):
    random = Sampling(temperature=1.0)
    engine.complete("the world", max_tokens=5, sampling=random)
    assert not engine.complete("the world", max_tokens=5, sampling=random).cached
    seeded = Sampling(temperature=1.0, seed=4)
    engine.complete("the world", max_tokens=5, sampling=seeded)
    assert engine.complete("the world", max_tokens=5, sampling=seeded).cached
    cancel = threading.Event()
    cancel.set()
    engine.complete("hello there", max_tokens=5, cancel=cancel)
    assert not engine.complete("hello there", max_tokens=5).cached


def test_lru_budget_ttl_and_invalidation():
    cache = ResponseCache(max_bytes=3 * (len(ANSWER.to_json()) + 64))
    for i in range(5):
        cache.put(f"{i:064d}", ANSWER)
        assert cache.stats.bytes <= cache.max_bytes
    assert cache.stats.entries == 3 and cache.get(f"{0:064d}") is None and cache.get(f"{4:064d}") == ANSWER
    cache.invalidate(f"{4:064d}")
    assert cache.get(f"{4:064d}") is None
    cache.put("k", ANSWER, ttl_s=0.05)
    assert cache.get("k") == ANSWER
    time.sleep(0.1)
    assert cache.get("k") is None
    with pytest.raises(ValueError, match="ttl_s must be"):
        ResponseCache(ttl_s=0)


def test_sqlite_store_survives_a_process_restart(tmp_path):
    db = tmp_path / "responses.sqlite"
    code = (
        "from edgellm_sdk.cache.response import ResponseCache, CachedResponse; "
        f"ResponseCache(path={str(db)!r}).put('key1', CachedResponse([(1, 'hi')], 'length'))"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    assert ResponseCache(path=db).get("key1") == CachedResponse([(1, "hi")], "length")
    assert sqlite3.connect(db).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_corrupt_db_is_moved_aside_and_rebuilt(tmp_path):
    db = tmp_path / "responses.sqlite"
    db.write_bytes(b"this is not a database" * 100)
    cache = ResponseCache(path=db)
    cache.put("k", ANSWER)
    assert cache.get("k") == ANSWER
    assert list(tmp_path.glob("responses.sqlite.corrupt-*"))
    assert ResponseCache(path=db).get("k") == ANSWER


def test_locked_db_is_a_miss_not_a_hang(tmp_path):
    db = tmp_path / "responses.sqlite"
    cache = ResponseCache(path=db)
    cache.put("k", ANSWER)
    other = ResponseCache(path=db)
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    t = time.perf_counter()
    other.put("k2", ANSWER)  # cannot write: skipped after the timeout, kept in memory
    assert time.perf_counter() - t < 2 and other.db_errors == 1
    assert other.get("k") == ANSWER  # WAL: readers are not blocked by a writer
    assert other.get("k2") == ANSWER
    blocker.execute("ROLLBACK")
    assert ResponseCache(path=db).get("k2") is None  # the skipped write never reached the file


def test_threads_share_one_cache(tmp_path):
    cache = ResponseCache(path=tmp_path / "r.sqlite")
    errors = []

    def worker(n):
        try:
            for i in range(50):
                cache.put(f"{n}-{i}", ANSWER)
                assert cache.get(f"{n}-{i}") == ANSWER
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors and cache.stats.hits == 200
