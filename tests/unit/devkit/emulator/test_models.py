"""The emulator knows its models: Haiku 5.5's tokenizer, cache minimum and prices; 1-hour cache writes;
and it bills every reply, live or in a batch, at its own copy of the price list."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from judgeflow.config import DEFAULT_PRICES
from judgeflow.judging.judge_call import usage_of
from judgeflow.judging.pricing import cost_usd
from judgeflow_devkit.emulator import EmulatorConfig, EmulatorServer
from judgeflow_devkit.emulator.billing import bill_usd, price_of
from judgeflow_devkit.emulator.prompt_cache import CacheUsage
from judgeflow_devkit.emulator.tokens import count_tokens, tokenizer_factor
from tests.unit.devkit.emulator.test_server import _no_proxy, client_for, tool_params, user_turn

__all__ = ["_no_proxy"]  # the autouse fixture: the SDK would otherwise go through a proxy

HAIKU_55 = "claude-haiku-5-5"
SYSTEM = "Rubric: score accuracy, tone and completeness. " * 400  # ~4,800 tokens for Haiku 4.5


@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(EmulatorConfig(latency_median_s=0.0, batch_processing_s=0.1)) as running:
        yield running


def params(model: str, response: str, *, ttl: str | None = None) -> dict[str, Any]:
    out = tool_params(response, system=SYSTEM)
    if ttl is not None:
        out["system"][0]["cache_control"] = {"type": "ephemeral", "ttl": ttl}
    return {**out, "model": model}


def test_haiku_5_5_counts_1_3_times_the_tokens_of_haiku_4_5() -> None:
    text = "x" * 4000
    assert tokenizer_factor(HAIKU_55) == 1.3 and tokenizer_factor("claude-haiku-4-5-20251001") == 1.0
    assert (count_tokens(text), count_tokens(text, HAIKU_55)) == (1000, 1300)


def test_the_same_request_costs_haiku_5_5_more_tokens_and_a_tenth_of_the_dollars(server: EmulatorServer) -> None:
    client = client_for(server)
    old = client.messages.create(**params("claude-haiku-4-5", "an answer"))
    new = client.messages.create(**params(HAIKU_55, "an answer"))

    assert new.usage.input_tokens == count_tokens(user_turn("an answer"), HAIKU_55)
    assert new.usage.cache_creation_input_tokens == pytest.approx(old.usage.cache_creation_input_tokens * 1.3, rel=0.01)
    assert new.usage.output_tokens == pytest.approx(old.usage.output_tokens * 1.3, abs=1)
    bill = server.stats()["billed_usd_by_model"]
    assert bill[HAIKU_55] == pytest.approx(bill["claude-haiku-4-5"] * 0.13, rel=0.02), (
        "a tenth of the price, 1.3x tokens"
    )
    for model, message in (("claude-haiku-4-5", old), (HAIKU_55, new)):
        assert cost_usd(usage_of(message), DEFAULT_PRICES[model]) == pytest.approx(bill[model], abs=1e-8), (
            "judgeflow's price table agrees with the emulator's invoice"
        )


def test_haiku_5_5_prefix_under_its_assumed_minimum_is_not_cached(server: EmulatorServer) -> None:
    short = {**params(HAIKU_55, "a")}
    short["system"] = [{**short["system"][0], "text": "Judge it. " * 1100}]  # ~3,800 Haiku 5.5 tokens with the tool
    for _ in range(2):
        usage = client_for(server).messages.create(**short).usage
        assert (usage.cache_creation_input_tokens, usage.cache_read_input_tokens) == (0, 0), "under 4,096"
    longer = {**short, "system": [{**short["system"][0], "text": "Judge it. " * 1300}]}  # ~4,450 tokens
    assert client_for(server).messages.create(**longer).usage.cache_creation_input_tokens > 4096


def test_one_hour_writes_are_reported_apart_and_billed_at_twice_the_input(server: EmulatorServer) -> None:
    client = client_for(server)
    hour = client.messages.create(**params(HAIKU_55, "first", ttl="1h"))
    split = hour.usage.cache_creation
    assert split is not None
    assert split.ephemeral_1h_input_tokens == hour.usage.cache_creation_input_tokens > 4096
    assert split.ephemeral_5m_input_tokens == 0
    read = client.messages.create(**params(HAIKU_55, "second", ttl="1h")).usage
    assert read.cache_read_input_tokens == hour.usage.cache_creation_input_tokens

    stats = server.stats()
    assert stats["cache_creation_1h_tokens_total"] == hour.usage.cache_creation_input_tokens
    written = hour.usage.cache_creation_input_tokens
    expected = bill_usd(
        HAIKU_55,
        input_tokens=hour.usage.input_tokens + read.input_tokens,
        output_tokens=hour.usage.output_tokens + read.output_tokens,
        cache=CacheUsage(read=read.cache_read_input_tokens, creation=written, creation_1h=written),
        batch=False,
    )
    assert stats["billed_usd_total"] == pytest.approx(expected, abs=1e-8)
    assert price_of(HAIKU_55).cache_write_1h == 2 * price_of(HAIKU_55).input


def test_batch_requests_are_billed_at_half_price(server: EmulatorServer) -> None:
    client = client_for(server)
    live = client.messages.create(**params(HAIKU_55, "same answer"))
    live_bill = server.stats()["billed_usd_total"]
    server.reset()
    request: Any = {"custom_id": "only", "params": params(HAIKU_55, "same answer")}
    batch = client.messages.batches.create(requests=[request])
    deadline = time.monotonic() + 5
    while client.messages.batches.retrieve(batch.id).processing_status != "ended":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    (result,) = list(client.messages.batches.results(batch.id))
    assert result.result.type == "succeeded"
    assert result.result.message.usage.cache_creation_input_tokens == live.usage.cache_creation_input_tokens
    stats = server.stats()
    assert stats["batch_requests_billed"] == 1
    assert stats["billed_usd_total"] == pytest.approx(live_bill / 2, abs=1e-8), "half, to the rounding of the stats"


def test_long_prompts_cost_five_times_on_haiku_5_5() -> None:
    under = bill_usd(HAIKU_55, input_tokens=100_000, output_tokens=0, cache=CacheUsage(), batch=False)
    over = bill_usd(HAIKU_55, input_tokens=90_000, output_tokens=0, cache=CacheUsage(read=10_001), batch=False)
    assert under == pytest.approx(0.01)
    assert over == pytest.approx((90_000 * 0.10 + 10_001 * 0.01) / 1e6 * 5)
