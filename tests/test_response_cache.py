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


# --- personal data stays off the disk -------------------------------------------------------------------
PII_ANSWER = CachedResponse([(5, "Sure, call Anna at "), (6, "212-555-0147"), (2, "")], "stop")


def stored_keys(db) -> set[str]:
    return {k for (k,) in sqlite3.connect(db).execute("SELECT key FROM responses")}


def test_answers_with_pii_stay_in_memory_only(tmp_path):
    pytest.importorskip("presidio_analyzer")
    db = tmp_path / "responses.sqlite"
    cache = ResponseCache(path=db)
    cache.put("clean", ANSWER)
    cache.put("pii-answer", PII_ANSWER)
    cache.put("pii-prompt", ANSWER, prompt="my e-mail is jane@example.com, what is the weather?")
    assert cache.get("pii-answer") == PII_ANSWER and cache.get("pii-prompt") == ANSWER  # served from memory
    assert stored_keys(db) == {"clean"} and cache.kept_off_disk == 2
    raw = db.read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("responses.sqlite-*"))
    assert b"212-555-0147" not in raw and b"jane@example.com" not in raw
    cache.close()
    assert ResponseCache(path=db).get("pii-answer") is None  # never reached the file

    opted_out = ResponseCache(path=db, pii_on_disk=True)
    opted_out.put("pii-answer", PII_ANSWER)
    assert "pii-answer" in stored_keys(db)


def test_without_the_privacy_extra_nothing_is_written(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr("edgellm_sdk.cache.response.privacy_available", lambda: False)
    db = tmp_path / "responses.sqlite"
    with caplog.at_level("WARNING", logger="edgellm_sdk.cache.response"):
        cache = ResponseCache(path=db)
    assert "pip install 'edgellm-sdk[privacy]'" in caplog.text and "pii_on_disk=True" in caplog.text
    cache.put("clean", ANSWER)
    assert cache.get("clean") == ANSWER and stored_keys(db) == set()
    ResponseCache(path=db, pii_on_disk=True).put("clean", ANSWER)
    assert stored_keys(db) == {"clean"}


def test_engine_answers_reach_the_file(tmp_path, tiny_store):
    pytest.importorskip("presidio_analyzer")
    db = tmp_path / "answers.sqlite"
    kw = {"store": tiny_store, "variant": "q8", "max_context": 128, "threads": 1}
    with Engine.load("tiny", response_cache=ResponseCache(path=db), **kw) as e:
        first = e.complete("hello world", max_tokens=6)
    with Engine.load("tiny", response_cache=ResponseCache(path=db), **kw) as e:
        again = e.complete("hello world", max_tokens=6)
    assert again.cached and again.token_ids == first.token_ids


def test_engine_keeps_an_answer_to_a_prompt_with_pii_off_the_file(tmp_path, tiny_store):
    """The prompt is checked as well as the answer: a question naming an e-mail address is
    answered from memory the next time, but never written to SQLite."""
    pytest.importorskip("presidio_analyzer")
    db = tmp_path / "answers.sqlite"
    kw = {"store": tiny_store, "variant": "q8", "max_context": 128, "threads": 1}
    private = [{"role": "user", "content": "mail the report to jane.doe@example.com"}]
    with Engine.load("tiny", response_cache=ResponseCache(path=db), **kw) as e:
        e.complete(private, max_tokens=6)
        assert e.complete(private, max_tokens=6).cached  # still served from memory
        e.complete("hello world", max_tokens=6)
    assert len(stored_keys(db)) == 1  # only the clean prompt's answer reached the file
    with Engine.load("tiny", response_cache=ResponseCache(path=db), **kw) as e:
        assert not e.complete(private, max_tokens=6).cached
