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
