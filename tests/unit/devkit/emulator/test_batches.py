"""The emulator's Message Batches API, over real HTTP, with the unmodified ``anthropic`` SDK and
``AnthropicHook`` as clients; httpx only where the raw response matters."""

from __future__ import annotations

import html
import json
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest

from judgeflow.errors import ConfigError
from judgeflow_devkit.emulator import EmulatorConfig, EmulatorServer, emulated_scores
from judgeflow_devkit.emulator.__main__ import build_parser, config_from_args
from judgeflow_devkit.emulator.state import EmulatorState

CRITERIA = ("accuracy", "tone", "completeness")
MODEL = "claude-haiku-4-5"
TOOL = "record_verdict"
PROCESSING_S = 0.4


def tool_params(response: str, *, system: str = "Judge the response.", cache: bool = False) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": system}
    if cache:
        block["cache_control"] = {"type": "ephemeral"}
    score = {"type": "integer", "minimum": 1, "maximum": 5}
    schema = {
        "type": "object",
        "properties": {c: {"type": "object", "properties": {"score": score}} for c in CRITERIA},
    }
    return {
        "model": MODEL,
        "max_tokens": 1024,
        "system": [block],
        "messages": [{"role": "user", "content": f"<response>{html.escape(response, quote=False)}</response>"}],
        "tools": [{"name": TOOL, "input_schema": schema}],
        "tool_choice": {"type": "tool", "name": TOOL},
    }


def batch_requests(texts: list[str], **kwargs: Any) -> list[Any]:
    """``{"custom_id": "req-I", "params": ...}`` per text (``Any``: the SDK wants its TypedDict)."""
    return [{"custom_id": f"req-{i}", "params": tool_params(text, **kwargs)} for i, text in enumerate(texts)]


def scores_of(message: Any) -> dict[str, int]:
    (block,) = message.content
    assert block.type == "tool_use"
    return {name: value["score"] for name, value in block.input.items()}


def client_for(server: EmulatorServer, api_key: str = "k") -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=api_key, base_url=server.url, max_retries=0)


def results_of(client: anthropic.Anthropic, batch_id: str) -> list[Any]:
    """The result lines, untyped: each test checks a result's ``type`` before reading its fields."""
    return list(client.messages.batches.results(batch_id))


def wait_ended(client: anthropic.Anthropic, batch_id: str, timeout_s: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while (batch := client.messages.batches.retrieve(batch_id)).processing_status != "ended":
        assert time.monotonic() < deadline, f"batch {batch_id} did not end"
        time.sleep(0.05)
    return batch


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    config = EmulatorConfig(latency_median_s=0.0, batch_processing_s=PROCESSING_S, batch_max_requests=50)
    with EmulatorServer(config) as running:
        yield running


def test_batch_runs_from_in_progress_to_shuffled_results(server: EmulatorServer) -> None:
    client = client_for(server)
    texts = [f"Answer {i}: the parcel arrives on day {i % 7}." for i in range(30)]
    created = client.messages.batches.create(requests=batch_requests(texts))
    early = client.messages.batches.retrieve(created.id)
    too_soon = httpx.get(f"{server.url}/v1/messages/batches/{created.id}/results", headers={"x-api-key": "k"})
    ended = wait_ended(client, created.id)
    results = results_of(client, created.id)
    raw = httpx.get(ended.results_url, headers={"x-api-key": "k"})
    live = client.messages.create(**tool_params(texts[0]))

    assert created.id.startswith("msgbatch_") and created.type == "message_batch"
    for batch in (created, early):
        assert batch.processing_status == "in_progress" and batch.results_url is None and batch.ended_at is None
        assert batch.request_counts.processing == 30 and batch.request_counts.succeeded == 0
    assert too_soon.status_code == 400 and too_soon.json()["error"]["type"] == "invalid_request_error"
    assert ended.request_counts.model_dump() == {
        "processing": 0,
        "succeeded": 30,
        "errored": 0,
        "canceled": 0,
        "expired": 0,
    }
    assert (ended.ended_at - ended.created_at).total_seconds() == pytest.approx(PROCESSING_S, abs=1e-3)
    assert ended.results_url == f"{server.url}/v1/messages/batches/{created.id}/results"
    assert raw.headers["content-type"].startswith("application/x-jsonl") and raw.text.count("\n") == 30

    ids = [r.custom_id for r in results]
    assert Counter(ids) == Counter(f"req-{i}" for i in range(30))
    assert ids != sorted(ids, key=lambda custom_id: int(custom_id.split("-")[1]))
    for result in results:
        assert result.result.type == "succeeded"
        text = texts[int(result.custom_id.split("-")[1])]
        assert scores_of(result.result.message) == emulated_scores(text, CRITERIA, 1, 5)
    first = next(r.result.message for r in results if r.custom_id == "req-0")
    assert first.usage.model_dump() == live.usage.model_dump()

    stats = server.stats()
    assert (stats["batches_created"], stats["batch_requests_total"], stats["batches_canceled"]) == (1, 30, 0)
    assert stats["requests_total"] == 1 and stats["input_tokens_total"] == live.usage.input_tokens


def test_batch_requests_share_the_prompt_cache_in_processing_order() -> None:
    system = "Rubric: score accuracy, tone and completeness. " * 400
    with EmulatorServer(EmulatorConfig(batch_processing_s=0.0)) as server:
        client = client_for(server)
        batch = client.messages.batches.create(requests=batch_requests(["a", "b", "c", "d"], system=system, cache=True))
        wait_ended(client, batch.id)
        usages = [r.result.message.usage for r in results_of(client, batch.id)]

    written = usages[0].cache_creation_input_tokens
    assert written >= 4096 and usages[0].cache_read_input_tokens == 0
    assert all(u.cache_read_input_tokens == written and u.cache_creation_input_tokens == 0 for u in usages[1:])


@pytest.mark.parametrize(
    ("knob", "outcome"),
    [
        pytest.param("batch_rate_errored", "errored", id="errored"),
        pytest.param("batch_rate_expired", "expired", id="expired"),
    ],
)
def test_fault_knobs_turn_every_request_into_that_result(knob: str, outcome: str) -> None:
    knobs: dict[str, Any] = {knob: 1.0}
    with EmulatorServer(EmulatorConfig(batch_processing_s=0.0, **knobs)) as server:
        client = client_for(server)
        batch = client.messages.batches.create(requests=batch_requests(["one", "two", "three"]))
        ended = wait_ended(client, batch.id)
        results = results_of(client, batch.id)

    assert getattr(ended.request_counts, outcome) == 3 and ended.request_counts.succeeded == 0
    assert [r.result.type for r in results] == [outcome] * 3
    if outcome == "errored":
        assert all(r.result.error.error.type == "api_error" for r in results)


def test_the_dropped_knob_leaves_results_out_of_the_file() -> None:
    """A fault the real API's contract rules out, so judgeflow can show it loses nothing anyway."""
    with EmulatorServer(EmulatorConfig(batch_processing_s=0.0, batch_rate_dropped=1.0)) as server:
        client = client_for(server)
        batch = client.messages.batches.create(requests=batch_requests(["one", "two", "three"]))
        ended = wait_ended(client, batch.id)
        results = results_of(client, batch.id)

    assert ended.request_counts.succeeded == 3, "processed, as far as the counts say"
    assert results == []


def test_invalid_params_are_errored_results_not_a_refused_batch() -> None:
    requests = batch_requests(["fine"])
    requests.append({"custom_id": "no-max-tokens", "params": {"model": MODEL, "messages": []}})
    requests.append({"custom_id": "streaming", "params": {**tool_params("x"), "stream": True}})
    with EmulatorServer(EmulatorConfig(batch_processing_s=0.0)) as server:
        client = client_for(server)
        batch = client.messages.batches.create(requests=requests)
        ended = wait_ended(client, batch.id)
        by_id = {r.custom_id: r.result for r in results_of(client, batch.id)}

    assert (ended.request_counts.succeeded, ended.request_counts.errored) == (1, 2)
    assert by_id["req-0"].type == "succeeded"
    for custom_id, field in (("no-max-tokens", "max_tokens"), ("streaming", "stream")):
        result = by_id[custom_id]
        assert result.type == "errored"
        assert result.error.error.type == "invalid_request_error" and field in result.error.error.message


def test_same_seed_gives_the_same_order_and_faults() -> None:
    def run() -> list[tuple[str, str]]:
        config = EmulatorConfig(batch_processing_s=0.0, batch_rate_errored=0.3, batch_rate_expired=0.3, seed=5)
        with EmulatorServer(config) as server:
            client = client_for(server)
            batch = client.messages.batches.create(requests=batch_requests([f"t{i}" for i in range(20)]))
            wait_ended(client, batch.id)
            return [(r.custom_id, r.result.type) for r in results_of(client, batch.id)]

    first, second = run(), run()
    assert first == second
    assert {outcome for _, outcome in first} == {"succeeded", "errored", "expired"}


def test_cancel_in_progress_ends_with_canceled_results() -> None:
    with EmulatorServer(EmulatorConfig(batch_processing_s=30.0)) as server:
        client = client_for(server)
        batch = client.messages.batches.create(requests=batch_requests(["a", "b", "c", "d", "e"]))
        canceling = client.messages.batches.cancel(batch.id)
        ended = client.messages.batches.retrieve(batch.id)
        again = client.messages.batches.cancel(batch.id)
        results = results_of(client, batch.id)
        stats = server.stats()

    assert canceling.processing_status == "canceling" and canceling.cancel_initiated_at is not None
    assert canceling.request_counts.processing == 5 and canceling.results_url is None
    assert ended.processing_status == "ended" and ended.ended_at == canceling.cancel_initiated_at
    assert ended.request_counts.canceled == 5 and ended.request_counts.processing == 0
    assert again == ended
    assert sorted(r.custom_id for r in results) == [f"req-{i}" for i in range(5)]
    assert {r.result.type for r in results} == {"canceled"}
    assert stats["batches_canceled"] == 1


def test_cancel_keeps_the_requests_already_processed() -> None:
    now = [100.0]
    state = EmulatorState(EmulatorConfig(batch_processing_s=4.0), clock=lambda: now[0], wall_clock=lambda: 1e9)
    batch = state.batches.create({"requests": batch_requests(["a", "b", "c", "d"])})
    now[0] += 2.5  # the first two requests in processing order are due at +1 s and +2 s
    state.batches.cancel(batch["id"])
    ended = state.batches.retrieve(batch["id"])
    lines = [json.loads(line) for line in state.batches.results(batch["id"]).splitlines()]

    assert ended["request_counts"] == {"succeeded": 2, "errored": 0, "canceled": 2, "expired": 0, "processing": 0}
    assert [line["result"]["type"] for line in lines] == ["succeeded", "succeeded", "canceled", "canceled"]
    assert ended["ended_at"] == ended["cancel_initiated_at"] == "2001-09-09T01:46:42.500000Z"


@pytest.mark.parametrize(
    "custom_ids",
    [
        pytest.param(["has space"], id="space"),
        pytest.param([""], id="empty"),
        pytest.param(["x" * 65], id="too-long"),
        pytest.param(["caf\u00e9"], id="non-ascii"),
        pytest.param(["ok\n"], id="trailing-newline"),
        pytest.param(["same", "other", "same"], id="duplicate"),
    ],
)
def test_bad_custom_ids_refuse_the_batch(server: EmulatorServer, custom_ids: list[str]) -> None:
    requests: list[Any] = [{"custom_id": custom_id, "params": tool_params("x")} for custom_id in custom_ids]
    with pytest.raises(anthropic.BadRequestError) as caught:
        client_for(server).messages.batches.create(requests=requests)

    assert caught.value.status_code == 400
    assert f"requests.{len(custom_ids) - 1}.custom_id" in caught.value.message
    assert server.stats()["batches_created"] == 0


def test_batch_size_limits(server: EmulatorServer) -> None:
    client = client_for(server)
    with pytest.raises(anthropic.BadRequestError) as too_many:
        client.messages.batches.create(requests=batch_requests(["x"] * 51))
    with EmulatorServer(EmulatorConfig(batch_max_bytes=4000)) as small:
        with pytest.raises(anthropic.ContentTooLargeError) as too_big:
            client_for(small).messages.batches.create(requests=batch_requests(["x"] * 10))
        fits = client_for(small).messages.batches.create(requests=batch_requests(["x"]))

    assert "at most 50 requests" in too_many.value.message
    assert too_big.value.status_code == 413
    assert isinstance(too_big.value.body, dict) and too_big.value.body["error"]["type"] == "request_too_large"
    assert fits.request_counts.processing == 1


def test_batches_need_the_api_key() -> None:
    with EmulatorServer(EmulatorConfig(api_key="right")) as server:
        with pytest.raises(anthropic.AuthenticationError) as caught:
            client_for(server, api_key="wrong").messages.batches.create(requests=batch_requests(["x"]))
        with pytest.raises(anthropic.AuthenticationError):
            client_for(server, api_key="wrong").messages.batches.list()
        created = client_for(server, api_key="right").messages.batches.create(requests=batch_requests(["x"]))

    assert isinstance(caught.value.body, dict)
    assert caught.value.body["error"] == {"type": "authentication_error", "message": "invalid x-api-key"}
    assert created.processing_status == "in_progress"


def test_list_pages_newest_first_delete_and_reset(server: EmulatorServer) -> None:
    client = client_for(server)
    ids = [client.messages.batches.create(requests=batch_requests([f"b{i}"])).id for i in range(3)]
    listed = [batch.id for batch in client.messages.batches.list(limit=2)]
    with pytest.raises(anthropic.BadRequestError):
        client.messages.batches.delete(ids[0])
    wait_ended(client, ids[0])
    deleted = client.messages.batches.delete(ids[0])
    with pytest.raises(anthropic.NotFoundError):
        client.messages.batches.retrieve(ids[0])
    server.reset()
    with pytest.raises(anthropic.NotFoundError):
        client.messages.batches.retrieve(ids[1])

    assert listed == ids[::-1]
    assert deleted.id == ids[0] and deleted.type == "message_batch_deleted"
    assert server.stats()["batches_created"] == 0


def test_airflow_hook_runs_a_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.providers.anthropic.hooks.anthropic import AnthropicHook

    texts = ["Tracked, arriving Thursday.", "[[quality:high]] Refund issued.", "No idea. [[quality:low]]"]
    requests: list[dict[str, Any]] = []
    for i, text in enumerate(texts):
        params = tool_params(text)
        del params["model"]
        requests.append({"custom_id": f"hook-{i}", "params": params})
    with EmulatorServer(EmulatorConfig(api_key="k", batch_processing_s=0.2)) as server:
        connection = {"conn_type": "anthropic", "password": "k", "host": server.url}
        monkeypatch.setenv("AIRFLOW_CONN_ANTHROPIC_DEFAULT", json.dumps(connection))
        hook = AnthropicHook()
        created = hook.create_batch(requests, model=MODEL)
        deadline = time.monotonic() + 5
        while (batch := hook.get_batch(created.id)).processing_status != "ended":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        results = {r.custom_id: r.result for r in hook.stream_batch_results(created.id)}

    assert created.processing_status == "in_progress"
    assert batch.request_counts.succeeded == 3
    assert set(results) == {"hook-0", "hook-1", "hook-2"}
    for i, text in enumerate(texts):
        result = results[f"hook-{i}"]
        assert result.type == "succeeded" and result.message.model == MODEL
        assert scores_of(result.message) == emulated_scores(text, CRITERIA, 1, 5)


def test_batch_knobs_from_flags_and_validation() -> None:
    flags = (
        "--batch-max-requests 10 --batch-max-bytes 5000 --batch-processing-seconds 2"
        " --batch-rate-errored 0.1 --batch-rate-expired 0.2 --batch-rate-dropped 0.3"
    )
    config = config_from_args(build_parser().parse_args(flags.split()))

    assert config == EmulatorConfig(
        batch_max_requests=10,
        batch_max_bytes=5000,
        batch_processing_s=2.0,
        batch_rate_errored=0.1,
        batch_rate_expired=0.2,
        batch_rate_dropped=0.3,
    )
    with pytest.raises(ConfigError, match="batch_rate"):
        EmulatorConfig(batch_rate_errored=0.7, batch_rate_expired=0.7)
    with pytest.raises(ConfigError, match="batch_rate"):
        EmulatorConfig(batch_rate_errored=0.5, batch_rate_dropped=0.6)
    with pytest.raises(ConfigError, match="batch_max_requests"):
        EmulatorConfig(batch_max_requests=0)
