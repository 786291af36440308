"""What judging a run's staged responses will cost, before a dollar is spent.

A backfill after a rubric change can be expensive, so its price is shown first (the ``dry_run``
param, or ``judgeflow estimate``) and a cap can refuse it. The estimate is built from the same work
list a run stages, measured in SQL (counts and character sums, no texts leave the database):

- input tokens: every request's fixed part (system prompt, calibrated examples, verdict tool)
  measured on a real request built around an empty item, plus about four characters a token of the
  question, context and (truncated) response, both times the model's tokenizer factor (Haiku 5.5's
  tokenizer makes about 1.3x the tokens of Haiku 4.5's for the same text);
- prompt caching: when the rubric's prefix reaches the model's minimum, the first request of each
  score task writes it (1.25x) and the others read it (0.1x);
- output tokens: the mean of what this rubric's verdicts cost in its recent runs, else the settings' guess;
- identical inputs are judged once, NULL or empty responses not at all; batch mode halves it all.

It leaves out verdict-cache hits from earlier runs (none after a rubric change), so it errs high.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

from judgeflow.config import Settings
from judgeflow.judging.budget import CostEstimator, tokens_for_chars
from judgeflow.judging.pricing import cost_usd
from judgeflow.judging.prompt import build_request
from judgeflow.judging.prompt_cache import prefix_report
from judgeflow.records import ResponseItem, Usage
from judgeflow.rubric import Rubric
from judgeflow.storage.estimates import StagedSizes, mean_output_tokens, staged_sizes
from judgeflow.storage.warehouse import Warehouse

_EMPTY_ITEM = ResponseItem(response_id=0, question="", response="", context="", segments={})


@dataclass(frozen=True, slots=True)
class CostEstimate:
    mode: str
    responses: int
    requests: int
    input_tokens: int
    cache_write_tokens: int
    cache_read_tokens: int
    output_tokens: int
    cost_usd: float
    sample_rate: float = 1.0
    """The suite's sampling rate: ``responses`` is the sample, not the population."""
    noise_requests: int = 0
    """Second asks of the noise sample (``noise.rate``, realtime only); their cost is in ``cost_usd``."""

    def describe(self) -> str:
        sampled = f" (n of a {self.sample_rate:.0%} sample)" if self.sample_rate < 1 else ""
        noise = f" + {self.noise_requests:,} noise re-asks" if self.noise_requests else ""
        return (
            f"{self.responses:,} responses{sampled}, {self.requests:,} requests{noise} ({self.mode}): "
            f"~{self.input_tokens + self.cache_write_tokens + self.cache_read_tokens:,} input tokens "
            f"({self.cache_read_tokens:,} cache reads), ~{self.output_tokens:,} output tokens, "
            f"~${self.cost_usd:,.2f}"
        )

    def to_xcom(self) -> dict[str, Any]:
        return asdict(self)


def estimate_cost(
    sizes: StagedSizes, rubric: Rubric, settings: Settings, *, mode: str, output_tokens_per_request: float
) -> CostEstimate:
    """Tokens and dollars for judging ``sizes`` with ``rubric`` at the settings' prices."""
    judge = settings.judge
    price = settings.price_for(rubric.model)
    factor = price.tokenizer_factor
    probe = build_request(
        rubric,
        _EMPTY_ITEM,
        max_response_chars=judge.max_response_chars,
        max_output_tokens=judge.max_output_tokens,
        cache_ttl=judge.cache_ttl,
    ).params
    fixed = CostEstimator.input_tokens(probe, tokenizer_factor=factor)
    requests = sizes.distinct_inputs
    share = requests / sizes.judgeable if sizes.judgeable else 0.0
    variable = tokens_for_chars(sizes.text_chars * share, factor)
    input_tokens = fixed * requests + variable
    cache_write = cache_read = 0
    if prefix_report(rubric, tokenizer_factor=factor).qualifies and requests:
        prefix = CostEstimator.input_tokens(
            {"system": probe["system"], "tools": probe["tools"]}, tokenizer_factor=factor
        )
        writes = min(requests, max(sizes.batches, 1))
        cache_write, cache_read = prefix * writes, prefix * (requests - writes)
        input_tokens -= prefix * requests
    usage = Usage(
        input_tokens=input_tokens,
        output_tokens=math.ceil(output_tokens_per_request * requests),
        cache_write_tokens=cache_write,
        cache_read_tokens=cache_read,
        cache_write_1h_tokens=cache_write if judge.cache_ttl == "1h" else 0,
    )
    dollars = cost_usd(usage, price, batch=mode == "batch", requests=requests)
    noise_requests = math.ceil(requests * settings.noise.rate) if mode == "realtime" else 0
    if noise_requests:  # a second ask pays the full input (it is sent again) at the realtime price
        dollars += dollars / requests * noise_requests
    return CostEstimate(
        mode=mode,
        responses=sizes.responses,
        requests=requests,
        input_tokens=usage.input_tokens,
        cache_write_tokens=cache_write,
        cache_read_tokens=cache_read,
        output_tokens=usage.output_tokens,
        cost_usd=round(dollars, 4),
        noise_requests=noise_requests,
    )


def price_staged(warehouse: Warehouse, run_key: str, rubric: Rubric, settings: Settings, *, mode: str) -> CostEstimate:
    """The price of a staged work list: its sizes in SQL, output at the rubric's recent mean."""
    sizes = staged_sizes(warehouse, run_key, max_response_chars=settings.judge.max_response_chars)
    seen = mean_output_tokens(warehouse, rubric.name)
    estimate = estimate_cost(
        sizes, rubric, settings, mode=mode, output_tokens_per_request=seen or settings.budget.expected_output_tokens
    )
    return replace(estimate, sample_rate=settings.sampling.rate)
