"""Two rubric versions' scores of the same responses, paired in SQL for :mod:`judgeflow.rubrics.versions`."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import and_, func, select

from judgeflow.quality.stats import OVERALL
from judgeflow.storage.engine import errors_as
from judgeflow.storage.warehouse import Warehouse


def known_versions(warehouse: Warehouse, rubric_name: str) -> list[str]:
    """The rubric's versions with scores, oldest first (by their first score)."""
    scores = warehouse.scores
    query = (
        select(scores.c.rubric_version, func.min(scores.c.scored_at).label("first"))
        .where(scores.c.rubric_name == rubric_name)
        .group_by(scores.c.rubric_version)
        .order_by("first")
    )
    with errors_as("read rubric versions"), warehouse.engine.connect() as conn:
        return [row[0] for row in conn.execute(query)]


def paired_scores(warehouse: Warehouse, rubric_name: str, old_version: str, new_version: str) -> pd.DataFrame:
    """One row per (response, criterion incl. overall) scored under both versions: old, new."""
    crit, scores = warehouse.criterion_scores, warehouse.scores
    old_c, new_c = crit.alias("old_c"), crit.alias("new_c")
    by_criterion = select(
        old_c.c.response_id, old_c.c.criterion, old_c.c.score.label("old"), new_c.c.score.label("new")
    ).join(
        new_c,
        and_(
            new_c.c.response_id == old_c.c.response_id,
            new_c.c.criterion == old_c.c.criterion,
            new_c.c.rubric_name == rubric_name,
            new_c.c.rubric_version == new_version,
        ),
    )
    by_criterion = by_criterion.where(old_c.c.rubric_name == rubric_name, old_c.c.rubric_version == old_version)
    old_s, new_s = scores.alias("old_s"), scores.alias("new_s")
    overall = (
        select(old_s.c.response_id, old_s.c.overall.label("old"), new_s.c.overall.label("new"))
        .join(
            new_s,
            and_(
                new_s.c.response_id == old_s.c.response_id,
                new_s.c.rubric_name == rubric_name,
                new_s.c.rubric_version == new_version,
            ),
        )
        .where(old_s.c.rubric_name == rubric_name, old_s.c.rubric_version == old_version)
    )
    with errors_as("pair scores of two versions"), warehouse.engine.connect() as conn:
        frame = pd.DataFrame(conn.execute(by_criterion).all(), columns=["response_id", "criterion", "old", "new"])
        whole = pd.DataFrame(conn.execute(overall).all(), columns=["response_id", "old", "new"])
    whole.insert(1, "criterion", OVERALL)
    return pd.concat([frame, whole], ignore_index=True)
