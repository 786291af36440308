"""The rules of ``judgeflow deploy init`` that need no database: which judge, which Redis database."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from judgeflow.deploy.specs import (
    EMULATOR_MARK,
    RedisPlace,
    broker_place,
    cache_problem,
    cache_spec,
    judge_problem,
    judge_spec,
    redis_place,
)
from judgeflow.errors import ConfigError


def conn(**fields: str | None) -> SimpleNamespace:
    return SimpleNamespace(**{"host": None, "password": None, "description": None, **fields})


def test_the_judge_is_the_emulator_only_when_asked_and_never_for_a_missing_key() -> None:
    with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY is not set"):
        judge_spec("anthropic_default", api_key=None, emulator_url=None)
    with pytest.raises(ConfigError, match="not both"):
        judge_spec("anthropic_default", api_key="sk-ant-x", emulator_url="http://judge-emulator:8765")
    real = judge_spec("anthropic_default", api_key="sk-ant-x", emulator_url=None)
    assert real.host is None and real.password == "sk-ant-x" and real.description == ""
    trial = judge_spec("anthropic_default", api_key=None, emulator_url="http://judge-emulator:8765/")
    assert trial.host == "http://judge-emulator:8765" and trial.description == EMULATOR_MARK


@pytest.mark.parametrize(
    ("existing", "emulator_url", "refused"),
    [
        pytest.param(conn(description=EMULATOR_MARK, host="http://e:1"), None, "points at the emulator", id="marked"),
        pytest.param(
            conn(host="http://judge-emulator:8765", password="emulator"),
            None,
            "points at the emulator",
            id="old-compose",
        ),
        pytest.param(
            conn(password="sk-ant-x"), "http://judge-emulator:8765", "never replaced", id="real-but-asked-emu"
        ),
        pytest.param(conn(password="sk-ant-x"), None, None, id="real"),
        pytest.param(
            conn(host="http://judge-emulator:8765", description=EMULATOR_MARK),
            "http://judge-emulator:8765",
            None,
            id="trial",
        ),
    ],
)
def test_an_existing_judge_is_refused_when_it_is_not_what_was_asked(
    existing: SimpleNamespace, emulator_url: str | None, refused: str | None
) -> None:
    problem = judge_problem("anthropic_default", existing, emulator_url=emulator_url)
    assert (problem is None) if refused is None else (refused in str(problem))


def test_the_cache_names_its_database_in_extra_db_and_never_the_brokers() -> None:
    spec = cache_spec("judge_cache", "redis://:s3cret@redis:6379/1")
    assert (spec.host, spec.port, spec.password, spec.extra) == ("redis", 6379, "s3cret", {"db": 1})
    with pytest.raises(ConfigError, match="names no database"):
        redis_place("redis://redis:6379", what="judge_cache")
    broker = broker_place("redis://:@redis:6379/0")
    assert broker == RedisPlace("redis", 6379, 0)
    assert cache_problem("judge_cache", RedisPlace("redis", 6379, 0), broker) is not None
    assert cache_problem("judge_cache", RedisPlace("redis", 6379, 1), broker) is None
    assert broker_place("amqp://guest@rabbit//") is None
