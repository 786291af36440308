"""custom_id mapping and batch splitting for Message Batches mode."""

from __future__ import annotations

import json
import re

import pytest

from judgeflow.judging.message_batches import MAX_REQUESTS_PER_BATCH, custom_id_for, split_requests

CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


@pytest.mark.parametrize("key", ["judgeflow:v1:" + "ab" * 32, "", "ünïcode:ключ", "x" * 10_000])
def test_custom_ids_are_valid_and_stable(key: str) -> None:
    assert CUSTOM_ID.match(custom_id_for(key))
    assert custom_id_for(key) == custom_id_for(key)


def test_different_keys_get_different_custom_ids() -> None:
    ids = {custom_id_for(f"judgeflow:v1:{n}") for n in range(10_000)}
    assert len(ids) == 10_000


def request(n: int, size: int = 10) -> dict[str, object]:
    return {"custom_id": f"r{n}", "params": {"messages": [{"role": "user", "content": "x" * size}]}}


def test_split_by_request_count() -> None:
    parts = list(split_requests((request(n) for n in range(25)), max_requests=10))
    assert [len(p) for p in parts] == [10, 10, 5]
    assert [r["custom_id"] for p in parts for r in p] == [f"r{n}" for n in range(25)]


def test_split_by_bytes_keeps_every_part_under_the_limit() -> None:
    one = len(json.dumps(request(0, size=100_000)).encode()) + 1
    limit = 1024 * 1024 + 3 * one + 10  # the envelope margin plus room for three requests
    parts = list(split_requests((request(n, size=100_000) for n in range(10)), max_bytes=limit))
    assert [len(p) for p in parts] == [3, 3, 3, 1]


def test_the_api_limit_is_the_default() -> None:
    assert MAX_REQUESTS_PER_BATCH == 100_000
    assert list(split_requests([])) == []
