"""What judging a run's staged responses will cost, before a dollar is spent.

A backfill after a rubric change can be expensive, so its price is shown first (the ``dry_run``
param, or ``judgeflow estimate``) and a cap can refuse it. The estimate is built from the same work
list a run stages, measured in SQL (counts and character sums, no texts leave the database):

- input tokens: every request's fixed part (system prompt, calibrated examples, verdict tool)
  measured on a real request built around an empty item, plus about four characters a token of the
  question, context and (truncated) response;
- prompt caching: when the rubric's prefix reaches the model's minimum, the first request of each
  score task writes it (1.25x) and the others read it (0.1x);
- output tokens: the mean of what this rubric's verdicts cost in its recent runs, else the settings' guess;
- identical inputs are judged once, NULL or empty responses not at all; batch mode halves it all.

It leaves out verdict-cache hits from earlier runs (none after a rubric change), so it errs high.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Float, case, cast, func, literal, select

from judgeflow.config import Settings
from judgeflow.engine.budget import CHARS_PER_TOKEN, CostEstimator
from judgeflow.engine.pricing import cost_usd
from judgeflow.judge.caching import prefix_report
from judgeflow.judge.prompt import build_request
from judgeflow.records import ResponseItem, Usage
from judgeflow.rubric import Rubric
from judgeflow.warehouse import Warehouse

_EMPTY_ITEM = ResponseItem(response_id=0, question="", response="", context="", segments={})


@dataclass(frozen=True, slots=True)
class StagedSizes:
    """The measurements of a staged work list that the price depends on."""

    responses: int
    judgeable: int  # not NULL or empty
    distinct_inputs: int  # identical (question, context, response) are judged once
    text_chars: int  # question + context + truncated response, over the judgeable ones
    batches: int


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

    def describe(self) -> str:
        return (
            f"{self.responses:,} responses, {self.requests:,} requests ({self.mode}): "
            f"~{self.input_tokens + self.cache_write_tokens + self.cache_read_tokens:,} input tokens "
            f"({self.cache_read_tokens:,} cache reads), ~{self.output_tokens:,} output tokens, "
            f"~${self.cost_usd:,.2f}"
        )

    def to_xcom(self) -> dict[str, Any]:
        return asdict(self)


def staged_sizes(warehouse: Warehouse, run_key: str, *, max_response_chars: int) -> StagedSizes:
    """Counts and character sums of the run's staged responses, computed in the database."""
    src, cfg, items = warehouse.source, warehouse.source_config, warehouse.items
    question = func.coalesce(src.c[cfg.question_column], "")
    context = func.coalesce(src.c[cfg.context_column], "") if cfg.context_column else literal("")
    response = func.coalesce(src.c[cfg.response_column], "")
    response_chars = func.length(response)
    judged_response_chars = case((response_chars > max_response_chars, max_response_chars), else_=response_chars)
    judgeable = func.length(func.trim(response, " \t\r\n")) > 0  # what the engine sends: text once stripped
    chars = func.length(question) + func.length(context) + judged_response_chars
    separator = literal("\x1f")
    query = (
        select(
            func.count(),
            func.coalesce(func.sum(case((judgeable, 1), else_=0)), 0),
            func.count(func.distinct(case((judgeable, question + separator + context + separator + response)))),
            func.coalesce(func.sum(case((judgeable, cast(chars, Float)), else_=0.0)), 0.0),
            func.count(func.distinct(items.c.batch_index)),
        )
        .select_from(items)
        .join(src, src.c[cfg.id_column] == items.c.response_id)
        .where(items.c.run_key == run_key)
    )
    with warehouse.engine.connect() as conn:
        total, ok, distinct, text_chars, batches = conn.execute(query).one()
    return StagedSizes(int(total), int(ok), int(distinct), int(text_chars), int(batches))


def mean_output_tokens(warehouse: Warehouse, rubric_name: str, *, recent_runs: int = 30) -> float | None:
    """What this rubric's verdicts cost in output tokens per judged (not cached) response, over its
    recent runs, if any. Read from ``judge_runs`` (a row a run), not by averaging ``judge_scores``,
    so every run's estimate stays cheap however many scores the warehouse holds."""
    runs = warehouse.runs
    recent = (
        select(runs.c.output_tokens, (runs.c.scored - runs.c.from_cache).label("judged"))
        .where(runs.c.rubric_name == rubric_name)
        .order_by(runs.c.finished_at.desc())
        .limit(recent_runs)
        .subquery()
    )
    query = select(func.sum(recent.c.output_tokens), func.sum(recent.c.judged))
    with warehouse.engine.connect() as conn:
        tokens, judged = conn.execute(query).one()
    return float(tokens) / float(judged) if tokens and judged else None


def estimate_cost(
    sizes: StagedSizes, rubric: Rubric, settings: Settings, *, mode: str, output_tokens_per_request: float
) -> CostEstimate:
    """Tokens and dollars for judging ``sizes`` with ``rubric`` at the settings' prices."""
    judge = settings.judge
    probe = build_request(
        rubric, _EMPTY_ITEM, max_response_chars=judge.max_response_chars, max_output_tokens=judge.max_output_tokens
    ).params
    fixed = CostEstimator.input_tokens(probe)
    requests = sizes.distinct_inputs
    share = requests / sizes.judgeable if sizes.judgeable else 0.0
    variable = math.ceil(sizes.text_chars * share / CHARS_PER_TOKEN)
    input_tokens = fixed * requests + variable
    cache_write = cache_read = 0
    if prefix_report(rubric).qualifies and requests:
        prefix = CostEstimator.input_tokens({"system": probe["system"], "tools": probe["tools"]})
        writes = min(requests, max(sizes.batches, 1))
        cache_write, cache_read = prefix * writes, prefix * (requests - writes)
        input_tokens -= prefix * requests
    usage = Usage(
        input_tokens=input_tokens,
        output_tokens=math.ceil(output_tokens_per_request * requests),
        cache_write_tokens=cache_write,
        cache_read_tokens=cache_read,
    )
    dollars = cost_usd(usage, settings.price_for(rubric.model), batch=mode == "batch")
    return CostEstimate(
        mode=mode,
        responses=sizes.responses,
        requests=requests,
        input_tokens=usage.input_tokens,
        cache_write_tokens=cache_write,
        cache_read_tokens=cache_read,
        output_tokens=usage.output_tokens,
        cost_usd=round(dollars, 4),
    )


def price_staged(warehouse: Warehouse, run_key: str, rubric: Rubric, settings: Settings, *, mode: str) -> CostEstimate:
    """The price of a staged work list: its sizes in SQL, output at the rubric's recent mean."""
    sizes = staged_sizes(warehouse, run_key, max_response_chars=settings.judge.max_response_chars)
    seen = mean_output_tokens(warehouse, rubric.name)
    return estimate_cost(
        sizes, rubric, settings, mode=mode, output_tokens_per_request=seen or settings.budget.expected_output_tokens
    )
