"""What a cost estimate needs from the warehouse, measured in SQL: no text leaves the database.

:mod:`judgeflow.rubrics.estimate` prices these figures; the counts and character sums are taken
here, over the same staged work list the run will judge.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Float, case, cast, false, func, literal, select

from judgeflow.storage.dialects import text_length
from judgeflow.storage.engine import errors_as
from judgeflow.storage.warehouse import Warehouse


@dataclass(frozen=True, slots=True)
class StagedSizes:
    """The measurements of a staged work list that the price depends on."""

    responses: int
    judgeable: int  # not NULL or empty
    distinct_inputs: int  # identical (question, context, response) are judged once
    text_chars: int  # question + context + truncated response, over the judgeable ones
    batches: int


def staged_sizes(warehouse: Warehouse, run_key: str, *, max_response_chars: int) -> StagedSizes:
    """Counts and character sums of the run's staged responses, computed in the database."""
    src, cfg, items = warehouse.source, warehouse.source_config, warehouse.items
    dialect = warehouse.engine.dialect.name
    question = func.coalesce(src.c[cfg.question_column], "")
    context = func.coalesce(src.c[cfg.context_column], "") if cfg.context_column else literal("")
    response = func.coalesce(src.c[cfg.response_column], "")
    response_chars = text_length(response, dialect)
    judged_response_chars = case((response_chars > max_response_chars, max_response_chars), else_=response_chars)
    blanks = func.replace(func.replace(func.replace(response, "\t", " "), "\r", " "), "\n", " ")
    judgeable = text_length(func.trim(blanks), dialect) > 0  # what the engine sends: text once stripped
    chars = text_length(question, dialect) + text_length(context, dialect) + judged_response_chars
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
    with errors_as("measure the staged work"), warehouse.engine.connect() as conn:
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
    with errors_as("read recent output tokens"), warehouse.engine.connect() as conn:
        tokens, judged = conn.execute(query).one()
    return float(tokens) / float(judged) if tokens and judged else None


def version_output_tokens(warehouse: Warehouse, rubric_name: str, rubric_version: str) -> float | None:
    """Mean output tokens of a rubric version's judged (not cached) verdicts, from ``judge_scores``:
    what a model migration scales by the new model's tokenizer factor to price the new verdicts."""
    scores = warehouse.scores
    query = select(func.sum(scores.c.output_tokens), func.count()).where(
        scores.c.rubric_name == rubric_name,
        scores.c.rubric_version == rubric_version,
        scores.c.cache_hit == false(),
        scores.c.output_tokens > 0,
    )
    with errors_as("read a version's output tokens"), warehouse.engine.connect() as conn:
        tokens, judged = conn.execute(query).one()
    return float(tokens) / float(judged) if tokens and judged else None
