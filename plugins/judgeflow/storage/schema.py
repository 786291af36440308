"""The tables judgeflow owns in the warehouse, defined once for every dialect, as this release has them.

``response_id`` columns take the source table's id type, so joins back to the application's
responses need no casts. See :mod:`judgeflow.storage.warehouse` for what each table is for.
The types that differ by warehouse (JSON, long text, double floats, timestamps) come from
:mod:`judgeflow.storage.dialects`. The tables are created and changed only by the migrations
(:mod:`judgeflow.storage.migrate`); a change here needs a revision (docs/development.md).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, Column, Date, Index, Integer, MetaData, String, Table

from judgeflow.storage.dialects import double, json_type, long_text, timestamp


def response_key(id_type: Any) -> list[Column[Any]]:
    """(response, rubric, rubric version): the key of every per-response table; copy before use."""
    return [
        Column("response_id", id_type, primary_key=True),
        Column("rubric_name", String(64), primary_key=True),
        Column("rubric_version", String(64), primary_key=True),
    ]


def judge_tables(metadata: MetaData, id_type: Any) -> tuple[Table, Table, Table, Table, Table]:
    items = Table(
        "judge_run_items",
        metadata,
        Column("run_key", String(250), primary_key=True),
        Column("response_id", id_type, primary_key=True),
        Column("batch_index", Integer, nullable=False),
        Index("ix_judge_run_items_batch", "run_key", "batch_index"),
    )
    key = response_key(id_type)
    scores = Table(
        "judge_scores",
        metadata,
        *[c.copy() for c in key],
        Column("overall", double(), nullable=False),
        Column("rationale", long_text(), nullable=False),
        Column("model", String(100), nullable=False),
        Column("input_tokens", Integer, nullable=False),
        Column("output_tokens", Integer, nullable=False),
        Column("cache_write_tokens", Integer, nullable=False),
        Column("cache_read_tokens", Integer, nullable=False),
        Column("cost_usd", double(), nullable=False),
        Column("latency_ms", Integer, nullable=False),
        Column("cache_hit", Boolean, nullable=False),
        Column("truncated", Boolean, nullable=False),
        Column("dag_run_id", String(250), nullable=False),
        Column("scored_at", timestamp(), nullable=False),
        Index("ix_judge_scores_rubric_scored_at", "rubric_name", "rubric_version", "scored_at"),
        Index("ix_judge_scores_run", "dag_run_id"),
    )
    criterion_scores = Table(
        "judge_criterion_scores",
        metadata,
        *[c.copy() for c in key],
        Column("criterion", String(40), primary_key=True),
        Column("score", Integer, nullable=False),
        Column("rationale", long_text(), nullable=False),
    )
    errors = Table(
        "judge_errors",
        metadata,
        *[c.copy() for c in key],
        Column("kind", String(32), nullable=False),
        Column("reason", long_text(), nullable=False),
        Column("retryable", Boolean, nullable=False),
        Column("attempts", Integer, nullable=False),
        Column("raw_reply", long_text()),
        Column("dag_run_id", String(250), nullable=False),
        Column("recorded_at", timestamp(), nullable=False),
    )
    runs = Table(
        "judge_runs",
        metadata,
        Column("run_key", String(250), primary_key=True),
        Column("dag_id", String(250), nullable=False),
        Column("dag_run_id", String(250), nullable=False),
        Column("rubric_name", String(64), nullable=False),
        Column("rubric_version", String(64), nullable=False),
        Column("interval_start", timestamp(), nullable=False),
        Column("interval_end", timestamp(), nullable=False),
        Column("extracted", Integer, nullable=False),
        Column("scored", Integer, nullable=False),
        Column("from_cache", Integer, nullable=False),
        Column("errors", Integer, nullable=False),
        Column("unaccounted", Integer, nullable=False),
        Column("input_tokens", Integer, nullable=False),
        Column("output_tokens", Integer, nullable=False),
        Column("cost_usd", double(), nullable=False),
        Column("details", json_type()),
        Column("finished_at", timestamp(), nullable=False),
        Column("suite", String(64)),  # the suite whose DAG ran (NULL: a run from before suites)
        Column("sample_rate", double()),  # sampling.rate the run staged with (NULL: before sampling, so 1)
    )
    return items, scores, criterion_scores, errors, runs


def message_batches_table(metadata: MetaData) -> Table:
    return Table(
        "judge_message_batches",
        metadata,
        Column("run_key", String(250), primary_key=True),
        Column("batch_index", Integer, primary_key=True),
        Column("part", Integer, primary_key=True),
        Column("anthropic_batch_id", String(100), nullable=False, unique=True),
        Column("requests", Integer, nullable=False),
        Column("status", String(20), nullable=False),
        Column("created_at", timestamp(), nullable=False),
    )


def alert_tables(metadata: MetaData) -> tuple[Table, Table]:
    comparisons = Table(
        "judge_comparisons",
        metadata,
        Column("run_key", String(250), primary_key=True),
        Column("metric", String(64), primary_key=True),
        Column("segment", String(200), primary_key=True),
        Column("rubric_name", String(64), nullable=False),
        Column("rubric_version", String(64), nullable=False),
        Column("status", String(32), nullable=False),
        Column("baseline_n", Integer, nullable=False),
        Column("current_n", Integer, nullable=False),
        Column("difference", double()),
        Column("p_value", double()),
        Column("details", json_type()),
    )
    alert_state = Table(
        "judge_alert_state",
        metadata,
        Column("rubric_name", String(64), primary_key=True),
        Column("rubric_version", String(64), primary_key=True),
        Column("regression", String(300), primary_key=True),
        Column("difference", double(), nullable=False),
        Column("opened_at", timestamp(), nullable=False),
        *alert_reference_columns(),
    )
    return comparisons, alert_state


def alert_reference_columns() -> list[Column[Any]]:
    """``judge_alert_state``'s columns of migration 0003, all nullable (a row from before has none):
    the reference a regression was found against, frozen when it was first seen, and its lifecycle."""
    return [
        Column("status", String(16)),  # pending (seen, not yet confirmed) or open; NULL: open (before 0003)
        Column("reference_mean", double()),  # the baseline's mean when the regression was first seen
        Column("reference_low", double()),  # its 95% interval
        Column("reference_high", double()),
        Column("reference_n", Integer),
        Column("reference_start", timestamp()),  # the baseline window it was found against
        Column("reference_end", timestamp()),  # = the start of the first day found down
        Column("last_told_at", timestamp()),  # interval end of the run that last told on-call
        Column("back_days", Integer),  # days running back within alerts.recover_within of the reference
        Column("moved_for", timestamp()),  # interval end of the newest run that moved this row (reruns skip)
        Column("seen_days", Integer),  # days running found down (pending until alerts.open_after_days)
    ]


def alert_history_table(metadata: MetaData) -> Table:
    """Regressions that closed, recovered or accepted (migration 0003): later baselines leave out the
    days of a recovered one, and start no earlier than the first day of an accepted one."""
    return Table(
        "judge_alert_history",
        metadata,
        Column("rubric_name", String(64), primary_key=True),
        Column("rubric_version", String(64), primary_key=True),
        Column("regression", String(300), primary_key=True),
        Column("started_at", timestamp(), primary_key=True),  # the first day found down (its start)
        Column("ended_at", timestamp(), nullable=False),  # end of the last day down, or when accepted
        Column("outcome", String(16), nullable=False),  # recovered | accepted
        Column("reference_mean", double()),
        Column("difference", double()),  # against the reference, when it closed
        Column("accepted_by", String(200)),
        Column("accepted_at", timestamp()),
        Column("reason", long_text()),
    )


def calibration_tables(metadata: MetaData) -> tuple[Table, Table]:
    """Calibration against a rubric's human golden set (:mod:`judgeflow.storage.calibrations`).

    ``judge_calibrations``: one row per criterion per calibration run (its columns are read by the
    UI as they are; ``run_id`` is appended). ``judge_calibration_runs``: one row per run, with the
    canaries, the verbosity correlation and the verdict.
    """
    calibrations = Table(
        "judge_calibrations",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("rubric_name", String(64), nullable=False),
        Column("rubric_version", String(64), nullable=False),
        Column("model", String(100), nullable=False),
        Column("criterion", String(40), nullable=False),
        Column("golden_set", long_text(), nullable=False),
        Column("n", Integer, nullable=False),
        *[Column(f"{m}{s}", double()) for m in ("kappa", "spearman", "mae") for s in ("", "_low", "_high")],
        Column("passed", Boolean, nullable=False),
        Column("calibrated_at", timestamp(), nullable=False),
        Column("run_id", Integer, nullable=False),
        Index("ix_judge_calibrations_version", "rubric_name", "rubric_version", "model", "calibrated_at"),
    )
    runs = Table(
        "judge_calibration_runs",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("rubric_name", String(64), nullable=False),
        Column("rubric_version", String(64), nullable=False),
        Column("model", String(100), nullable=False),
        Column("golden_set", long_text(), nullable=False),
        Column("items", Integer, nullable=False),
        Column("judged", Integer, nullable=False),
        Column("canaries_total", Integer, nullable=False),
        Column("canaries_failed", Integer, nullable=False),
        Column("length_spearman", double()),
        Column("human_length_spearman", double()),
        Column("cost_usd", double(), nullable=False),
        Column("passed", Boolean, nullable=False),
        Column("reason", long_text(), nullable=False),
        Column("calibrated_at", timestamp(), nullable=False),
        Column("judge_endpoint", String(300)),  # the API base URL that judged the golden set
        Index("ix_judge_calibration_runs_version", "rubric_name", "rubric_version", "model", "calibrated_at"),
    )
    return calibrations, runs


# --- the Airflow UI view (judgeflow.ui) -----------------------------------------------------------


def daily_scores_table(metadata: MetaData) -> Table:
    """Per rubric version, day (the responses' ``created_at``, UTC), metric and score value: how many
    responses and the sum of their exact scores.

    A few hundred rows a day however many responses, so the view's trend and weekly distributions
    read kilobytes instead of aggregating millions of criterion rows per page view. Refreshed for
    the days a run touched by :func:`judgeflow.storage.daily_scores.refresh_daily_scores`; ``overall``
    values are bucketed to 0.01 (``total`` keeps the exact mean), criterion values are exact.
    """
    return Table(
        "judge_daily_scores",
        metadata,
        Column("rubric_name", String(64), primary_key=True),
        Column("rubric_version", String(64), primary_key=True),
        Column("day", Date, primary_key=True),
        Column("metric", String(64), primary_key=True),
        Column("value", double(), primary_key=True),
        Column("n", Integer, nullable=False),
        Column("total", double(), nullable=False),
    )


# --- the judge's own quality (migration 0004) -----------------------------------------------------


def judge_quality_tables(metadata: MetaData, id_type: Any) -> tuple[Table, Table, Table]:
    """Judge noise and human review (:mod:`judgeflow.storage.judge_quality`).

    ``judge_noise``: one row per sampled response and rubric version, the two asks' scores per
    criterion, their largest spread and the second ask's cost (or why it failed); a rerun overwrites.
    ``judge_noise_daily``: per rubric version and day, the test-retest kappa with its interval, the
    mean absolute spread and the unstable count. ``judge_human_labels``: a reviewer's scores per
    criterion and note for one response, one row per reviewer (relabelling overwrites), with the
    queue that offered it (``random`` is the unbiased sample).
    """
    key = response_key(id_type)
    noise = Table(
        "judge_noise",
        metadata,
        *[c.copy() for c in key],
        Column("dag_run_id", String(250), nullable=False),
        Column("first_scores", json_type(), nullable=False),
        Column("second_scores", json_type(), nullable=False),
        Column("spread", Integer),
        Column("unstable", Boolean, nullable=False),
        Column("cost_usd", double(), nullable=False),
        Column("error", long_text()),
        Column("recorded_at", timestamp(), nullable=False),
        Index("ix_judge_noise_recorded", "rubric_name", "rubric_version", "recorded_at"),
    )
    daily = Table(
        "judge_noise_daily",
        metadata,
        Column("rubric_name", String(64), primary_key=True),
        Column("rubric_version", String(64), primary_key=True),
        Column("day", Date, primary_key=True),
        Column("responses", Integer, nullable=False),
        Column("pairs", Integer, nullable=False),
        *[Column(f"kappa{s}", double()) for s in ("", "_low", "_high")],
        Column("mean_abs_spread", double()),
        Column("unstable", Integer, nullable=False),
        Column("recorded_at", timestamp(), nullable=False),
    )
    labels = Table(
        "judge_human_labels",
        metadata,
        *[c.copy() for c in key],
        Column("reviewer", String(250), primary_key=True),
        Column("queue", String(32), nullable=False),
        Column("scores", json_type(), nullable=False),
        Column("note", long_text(), nullable=False),
        Column("labelled_at", timestamp(), nullable=False),
        Index("ix_judge_human_labels_version", "rubric_name", "rubric_version", "labelled_at"),
    )
    return noise, daily, labels


def judge_scores_indexes(scores: Table) -> list[Index]:
    """Indexes the view's queries need: ``ix_judge_scores_rubric_overall`` serves the lowest-scoring
    responses (an ordered walk from the bottom instead of a sort of the whole version)."""
    return [Index("ix_judge_scores_rubric_overall", scores.c.rubric_name, scores.c.rubric_version, scores.c.overall)]


def all_tables(metadata: MetaData, id_type: Any) -> list[Table]:
    """Every table judgeflow owns, as this release defines them (the migrations must agree: a test checks)."""
    items, scores, criterion_scores, errors, runs = judge_tables(metadata, id_type)
    judge_scores_indexes(scores)
    comparisons, alert_state = alert_tables(metadata)
    calibrations, calibration_runs = calibration_tables(metadata)
    return [
        items,
        scores,
        criterion_scores,
        errors,
        runs,
        message_batches_table(metadata),
        comparisons,
        alert_state,
        alert_history_table(metadata),
        daily_scores_table(metadata),
        calibrations,
        calibration_runs,
        *judge_quality_tables(metadata, id_type),
    ]
