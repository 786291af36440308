"""Dollar cost from usage: each token kind at its own rate, batch discount on top."""

from __future__ import annotations

import pytest

from judgeflow.config import DEFAULT_PRICES
from judgeflow.judging.pricing import cost_usd
from judgeflow.records import Usage

HAIKU = DEFAULT_PRICES["claude-haiku-4-5"]


def test_haiku_prices_are_one_and_five_dollars_per_million() -> None:
    rates = (
        HAIKU.input,
        HAIKU.output,
        HAIKU.cache_write_multiplier,
        HAIKU.cache_read_multiplier,
        HAIKU.batch_discount,
    )
    assert rates == (1.0, 5.0, 1.25, 0.1, 0.5)


@pytest.mark.parametrize(
    ("usage", "batch", "dollars"),
    [
        pytest.param(Usage(), False, 0.0, id="nothing"),
        pytest.param(Usage(input_tokens=1_000_000), False, 1.0, id="million-input"),
        pytest.param(Usage(output_tokens=1_000_000), False, 5.0, id="million-output"),
        pytest.param(Usage(cache_write_tokens=1_000_000), False, 1.25, id="million-cache-write"),
        pytest.param(Usage(cache_read_tokens=1_000_000), False, 0.1, id="million-cache-read"),
        # 1000 * 1 + 500 * 5 + 4000 * 1.25 + 20000 * 0.1 = 10_500 micro-dollars
        pytest.param(Usage(1000, 500, 4000, 20000), False, 0.0105, id="mixed"),
        pytest.param(Usage(1000, 500, 4000, 20000), True, 0.00525, id="mixed-batch"),
        # one typical judged request: 900 in, 120 out, a 4100-token prefix read from cache
        pytest.param(Usage(900, 120, 0, 4100), False, 0.00191, id="typical-cached"),
        pytest.param(Usage(900, 120, 4100, 0), False, 0.006625, id="typical-first"),
        pytest.param(Usage(input_tokens=1), False, 0.000001, id="one-token"),
        pytest.param(Usage(input_tokens=1), True, 0.0000005, id="one-token-batch"),
    ],
)
def test_cost_on_haiku(usage: Usage, batch: bool, dollars: float) -> None:
    assert cost_usd(usage, HAIKU, batch=batch) == dollars


def test_cost_uses_the_given_price() -> None:
    sonnet = DEFAULT_PRICES["claude-sonnet-4-5"]
    assert cost_usd(Usage(1_000_000, 1_000_000), sonnet) == 18.0


def test_cost_is_additive_over_usage() -> None:
    first, second = Usage(100, 20, 4096, 0), Usage(100, 20, 0, 4096)
    total = cost_usd(first + second, HAIKU)
    assert total == pytest.approx(cost_usd(first, HAIKU) + cost_usd(second, HAIKU), abs=1e-8)
    # 200 * 1 + 40 * 5 + 4096 * 1.25 + 4096 * 0.1 = 5929.6 micro-dollars
    assert total == 0.0059296


HAIKU_55 = DEFAULT_PRICES["claude-haiku-5-5"]


def test_haiku_5_5_is_ten_cents_in_fifty_out_with_its_cache_rates() -> None:
    per_million = {
        "input": cost_usd(Usage(input_tokens=1_000_000), HAIKU_55),
        "output": cost_usd(Usage(output_tokens=1_000_000), HAIKU_55),
        "5-minute write": cost_usd(Usage(cache_write_tokens=1_000_000), HAIKU_55),
        "1-hour write": cost_usd(Usage(cache_write_tokens=1_000_000, cache_write_1h_tokens=1_000_000), HAIKU_55),
        "read": cost_usd(Usage(cache_read_tokens=1_000_000), HAIKU_55),
    }
    # a million-token prompt is over the 100K line: divide the 5x back out to read the base rates
    assert {k: round(v / 5, 6) for k, v in per_million.items() if k != "output"} == {
        "input": 0.10,
        "5-minute write": 0.125,
        "1-hour write": 0.20,
        "read": 0.01,
    }
    assert per_million["output"] == 0.50, "output alone is no prompt: the base rate"
    assert HAIKU_55.tokenizer_factor == 1.3


def test_haiku_4_5_writes_an_hour_at_twice_the_input_price() -> None:
    usage = Usage(cache_write_tokens=1_000_000, cache_write_1h_tokens=400_000)
    assert cost_usd(usage, HAIKU) == 600_000 * 1.25 / 1e6 + 400_000 * 2.0 / 1e6


@pytest.mark.parametrize(
    ("prompt", "multiplier"),
    [pytest.param(100_000, 1, id="at-100K"), pytest.param(100_001, 5, id="over-100K")],
)
def test_haiku_5_5_prompts_over_100k_tokens_cost_five_times(prompt: int, multiplier: int) -> None:
    usage = Usage(input_tokens=prompt - 60_000, output_tokens=1000, cache_read_tokens=60_000)
    base = ((prompt - 60_000) * 0.10 + 1000 * 0.50 + 60_000 * 0.01) / 1e6
    assert cost_usd(usage, HAIKU_55) == pytest.approx(base * multiplier)
    assert cost_usd(usage, HAIKU_55, batch=True) == pytest.approx(base * multiplier / 2)


def test_an_estimate_over_many_requests_holds_the_mean_prompt_against_the_line() -> None:
    thousand = Usage(input_tokens=1000 * 8_000, output_tokens=1000 * 100)  # 8K a request: far under 100K
    assert cost_usd(thousand, HAIKU_55, requests=1000) == pytest.approx((8e6 * 0.10 + 1e5 * 0.50) / 1e6)
    assert cost_usd(thousand, HAIKU_55) > cost_usd(thousand, HAIKU_55, requests=1000), "as one reply, it would be"
