"""The verdict cache's key and its embedded and null backends: pure, no services needed."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from hashlib import sha256
from pathlib import Path
from typing import Any

import pytest

from judgeflow.config import CacheConfig
from judgeflow.judging.verdict_cache import (
    KEY_PREFIX,
    SQLITE_CHUNK,
    EmbeddedVerdictCache,
    NullVerdictCache,
    VerdictCache,
    cache_key,
    open_cache,
)
from judgeflow.records import CriterionScore, Verdict

BASE: dict[str, Any] = {
    "rubric_version_key": "helpfulness@3:abc123",
    "model": "claude-haiku-4-5",
    "question": "How do I reset my password?",
    "context": "Settings > Security > Reset",
    "response": "Open Settings, then Security, then Reset.",
}


def verdict(n: int = 4) -> Verdict:
    return Verdict(
        criteria={
            "accuracy": CriterionScore(score=n, rationale=f"accurate {n}"),
            "tone": CriterionScore(score=5, rationale="polite, ünïcode ✓"),
        },
        overall=n + 0.25,
    )


class FakeClock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# --- cache_key ---------------------------------------------------------------------------------


def test_key_is_stable_and_prefixed() -> None:
    key = cache_key(**BASE)
    assert key == cache_key(**dict(BASE))
    assert key.startswith(KEY_PREFIX)
    digest = key.removeprefix(KEY_PREFIX)
    assert len(digest) == 64 and int(digest, 16) >= 0


def test_key_encoding_is_pinned() -> None:
    # sha256 of the compact JSON list. Changing the encoding silently orphans every cached verdict:
    # bump KEY_PREFIX's version along with it.
    key = cache_key(rubric_version_key="r", model="m", question="q", context=None, response="a")
    assert key == KEY_PREFIX + sha256(b'["r","m","q",null,"a"]').hexdigest()
    assert key == KEY_PREFIX + "2916ef487798a69fc49c16da4556d25ee36332d9c18d240a54f8cebcabb60ddf"


@pytest.mark.parametrize("field", sorted(BASE))
def test_every_field_changes_the_key(field: str) -> None:
    changed = {**BASE, field: BASE[field] + " "}
    assert cache_key(**changed) != cache_key(**BASE)


@pytest.mark.parametrize(
    ("left", "right"),
    [
        pytest.param(("a", "bc"), ("ab", "c"), id="boundary-question-context"),
        pytest.param(("", "x"), ("x", ""), id="empty-moves"),
        pytest.param((None, "x"), ("", "x"), id="none-vs-empty"),
        pytest.param(("null", "x"), (None, "x"), id="none-vs-string-null"),
        pytest.param(('a","b', "c"), ("a", 'b","c'), id="quotes-cannot-forge-a-boundary"),
    ],
)
def test_field_boundaries_are_unambiguous(
    left: tuple[str | None, str | None], right: tuple[str | None, str | None]
) -> None:
    def key(pair: tuple[str | None, str | None]) -> str:
        return cache_key(**{**BASE, "question": pair[0], "context": pair[1]})

    assert key(left) != key(right)


def test_key_handles_any_text() -> None:
    # Lone surrogates can come out of a database driver; the key must still be computable.
    assert cache_key(**{**BASE, "response": "bad \udc80 text"}).startswith(KEY_PREFIX)


# --- embedded cache ----------------------------------------------------------------------------


@pytest.fixture
def cache_path(tmp_path: Path) -> Path:
    return tmp_path / "nested" / "folders" / "verdicts.sqlite"


def test_embedded_round_trip_creates_folders_and_persists(cache_path: Path) -> None:
    cache = EmbeddedVerdictCache(cache_path, ttl_seconds=3600)
    assert isinstance(cache, VerdictCache)
    items = {"k1": verdict(1), "k2": verdict(2)}
    cache.put_many(items)
    assert cache.get_many(["k1", "k2", "absent"]) == items
    cache.close()
    cache.close()  # twice is fine

    reopened = EmbeddedVerdictCache(cache_path, ttl_seconds=3600)
    assert reopened.get_many(["k2"]) == {"k2": verdict(2)}
    assert str(cache_path) in reopened.describe()
    reopened.close()
    assert sqlite3.connect(cache_path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_embedded_overwrites_and_empty_calls(cache_path: Path) -> None:
    cache = EmbeddedVerdictCache(cache_path, ttl_seconds=3600)
    assert cache.get_many([]) == {}
    cache.put_many({})
    cache.put_many({"k": verdict(1)})
    cache.put_many({"k": verdict(3)})
    assert cache.get_many(["k"]) == {"k": verdict(3)}


def test_embedded_ttl_expiry_with_injected_clock(cache_path: Path) -> None:
    clock = FakeClock()
    cache = EmbeddedVerdictCache(cache_path, ttl_seconds=60, clock=clock)
    cache.put_many({"k": verdict()})
    clock.now += 59
    assert cache.get_many(["k"]) == {"k": verdict()}
    clock.now += 1
    assert cache.get_many(["k"]) == {}
    cache.close()


def test_embedded_prunes_expired_rows_on_open(cache_path: Path) -> None:
    clock = FakeClock()
    EmbeddedVerdictCache(cache_path, ttl_seconds=60, clock=clock).put_many({"old": verdict()})
    clock.now += 3600
    EmbeddedVerdictCache(cache_path, ttl_seconds=60, clock=clock).put_many({"new": verdict()})
    rows = sqlite3.connect(cache_path).execute("SELECT key FROM verdicts").fetchall()
    assert rows == [("new",)]


def test_embedded_ttl_expiry_real_time(cache_path: Path) -> None:
    cache = EmbeddedVerdictCache(cache_path, ttl_seconds=1)
    cache.put_many({"k": verdict()})
    assert "k" in cache.get_many(["k"])
    time.sleep(1.1)
    assert cache.get_many(["k"]) == {}


def test_embedded_many_keys_beyond_chunk_size(cache_path: Path) -> None:
    cache = EmbeddedVerdictCache(cache_path, ttl_seconds=3600)
    count = SQLITE_CHUNK * 2 + 137
    items = {f"key-{i}": verdict(i % 5) for i in range(count)}
    cache.put_many(items)
    keys = [*items, *(f"missing-{i}" for i in range(300))]
    assert cache.get_many(keys) == items


def test_embedded_corrupted_value_is_a_miss(cache_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cache = EmbeddedVerdictCache(cache_path, ttl_seconds=3600)
    cache.put_many({"good": verdict(), "bad": verdict(), "old-shape": verdict()})
    with sqlite3.connect(cache_path) as raw:
        raw.execute("UPDATE verdicts SET value = '{not json' WHERE key = 'bad'")
        raw.execute("""UPDATE verdicts SET value = '{"score": 3}' WHERE key = 'old-shape'""")
    with caplog.at_level(logging.DEBUG, logger="judgeflow.judging.verdict_cache"):
        assert cache.get_many(["good", "bad", "old-shape"]) == {"good": verdict()}
    assert not cache.disabled
    assert {r.levelno for r in caplog.records if r.name == "judgeflow.judging.verdict_cache"} == {logging.DEBUG}


def test_unwritable_path_never_raises(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with caplog.at_level(logging.WARNING, logger="judgeflow.judging.verdict_cache"):
        cache = EmbeddedVerdictCache(blocker / "cache.sqlite", ttl_seconds=60)
        cache.put_many({"k": verdict()})
        assert cache.get_many(["k"]) == {}
        cache.put_many({"k": verdict()})
        cache.close()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, "one warning, then silence"
    assert "disabled for the rest of this task" in warnings[0].getMessage()
    assert cache.disabled and "disabled" in cache.describe()


def test_backend_failure_mid_task_disables_once(cache_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cache = EmbeddedVerdictCache(cache_path, ttl_seconds=60)
    cache.put_many({"k": verdict()})
    cache._connection().close()  # the file's handle dies under the cache
    with caplog.at_level(logging.WARNING, logger="judgeflow.judging.verdict_cache"):
        for _ in range(3):
            assert cache.get_many(["k"]) == {}
            cache.put_many({"k": verdict()})
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "ProgrammingError" in warnings[0]


def test_embedded_shared_between_threads(cache_path: Path) -> None:
    cache = EmbeddedVerdictCache(cache_path, ttl_seconds=60)

    def work(t: int) -> None:
        for i in range(20):
            cache.put_many({f"{t}-{i}": verdict(i % 5)})
            cache.get_many([f"{t}-{i}"])

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not cache.disabled
    assert len(cache.get_many([f"{t}-{i}" for t in range(4) for i in range(20)])) == 80


def _write_from_process(path: str, worker: int) -> bool:
    cache = EmbeddedVerdictCache(path, ttl_seconds=60)
    for batch in range(10):
        cache.put_many({f"w{worker}-b{batch}-{i}": verdict(i % 5) for i in range(50)})
    ok = not cache.disabled
    cache.close()
    return ok


def test_embedded_shared_between_processes(cache_path: Path) -> None:
    with ProcessPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(_write_from_process, [str(cache_path)] * 4, range(4)))
    assert results == [True] * 4
    keys = [f"w{w}-b{b}-{i}" for w in range(4) for b in range(10) for i in range(50)]
    assert len(EmbeddedVerdictCache(cache_path, ttl_seconds=60).get_many(keys)) == 2000


def test_ttl_must_be_positive(cache_path: Path) -> None:
    with pytest.raises(ValueError, match="ttl_seconds"):
        EmbeddedVerdictCache(cache_path, ttl_seconds=0)


# --- null cache and open_cache -----------------------------------------------------------------


def test_null_cache_always_misses() -> None:
    cache = NullVerdictCache("Redis was unreachable")
    assert isinstance(cache, VerdictCache)
    cache.put_many({"k": verdict()})
    assert cache.get_many(["k"]) == {}
    assert "Redis was unreachable" in cache.describe()
    cache.close()


def test_open_cache_disabled_is_null(tmp_path: Path) -> None:
    settings = CacheConfig(enabled=False, embedded_path=str(tmp_path / "never.sqlite"))
    cache = open_cache(settings, redis_conn_id="judge_cache")
    assert isinstance(cache, NullVerdictCache)
    assert "cache.enabled" in cache.describe()
    assert not (tmp_path / "never.sqlite").exists()


def test_open_cache_without_connection_is_embedded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conn_id = f"judgeflow_absent_{uuid.uuid4().hex}"
    monkeypatch.delenv(f"AIRFLOW_CONN_{conn_id.upper()}", raising=False)
    settings = CacheConfig(embedded_path=str(tmp_path / "c" / "verdicts.sqlite"))
    cache = open_cache(settings, redis_conn_id=conn_id)
    assert isinstance(cache, EmbeddedVerdictCache)
    cache.put_many({"k": verdict()})
    assert cache.get_many(["k"]) == {"k": verdict()}
    cache.close()
