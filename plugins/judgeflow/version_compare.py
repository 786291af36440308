"""Old rubric version against new, on the same responses: what the rubric change did to the scores.

After a backfill rescored past days under a new version, both versions' scores sit side by side in
``judge_criterion_scores``. This pairs them by response and reports, per criterion and overall, the
mean shift, the Spearman rank correlation (does the new rubric order responses the way the old one
did?) and the responses whose score moved most, so a reviewer reads the change before trusting it.
Only responses scored under both versions count.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
from scipy.stats import spearmanr
from sqlalchemy import and_, func, select

from judgeflow.warehouse import Warehouse

OVERALL = "overall"


@dataclass(frozen=True, slots=True)
class CriterionShift:
    criterion: str
    n: int
    old_mean: float
    new_mean: float
    shift: float
    spearman: float | None  # None when either side is constant: the correlation is undefined


@dataclass(frozen=True, slots=True)
class Mover:
    response_id: Any
    old: float
    new: float

    @property
    def moved(self) -> float:
        return self.new - self.old


@dataclass(frozen=True, slots=True)
class VersionComparison:
    rubric_name: str
    old_version: str
    new_version: str
    shifts: list[CriterionShift]
    movers: list[Mover]

    def table(self) -> str:
        lines = [
            f"rubric {self.rubric_name}: {self.old_version} -> {self.new_version}",
            f"{'criterion':<16}{'n':>7}{'old mean':>10}{'new mean':>10}{'shift':>8}{'spearman':>10}",
        ]
        for s in self.shifts:
            rho = f"{s.spearman:.3f}" if s.spearman is not None else "n/a"
            lines.append(f"{s.criterion:<16}{s.n:>7}{s.old_mean:>10.3f}{s.new_mean:>10.3f}{s.shift:>+8.3f}{rho:>10}")
        if self.movers:
            lines.append("moved most (overall):")
            lines += [f"  response {m.response_id}: {m.old:.2f} -> {m.new:.2f} ({m.moved:+.2f})" for m in self.movers]
        return "\n".join(lines)


def known_versions(warehouse: Warehouse, rubric_name: str) -> list[str]:
    """The rubric's versions with scores, oldest first (by their first score)."""
    scores = warehouse.scores
    query = (
        select(scores.c.rubric_version, func.min(scores.c.scored_at).label("first"))
        .where(scores.c.rubric_name == rubric_name)
        .group_by(scores.c.rubric_version)
        .order_by("first")
    )
    with warehouse.engine.connect() as conn:
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
    with warehouse.engine.connect() as conn:
        frame = pd.DataFrame(conn.execute(by_criterion).all(), columns=["response_id", "criterion", "old", "new"])
        whole = pd.DataFrame(conn.execute(overall).all(), columns=["response_id", "old", "new"])
    whole.insert(1, "criterion", OVERALL)
    return pd.concat([frame, whole], ignore_index=True)


def compare_versions(
    warehouse: Warehouse, rubric_name: str, old_version: str, new_version: str, *, movers: int = 5
) -> VersionComparison:
    """Mean shift, rank correlation and top movers between two versions on their shared responses."""
    pairs = paired_scores(warehouse, rubric_name, old_version, new_version)
    shifts = []
    for criterion, group in pairs.groupby("criterion", sort=True):
        old, new = group["old"].astype(float), group["new"].astype(float)
        constant = old.nunique() < 2 or new.nunique() < 2
        rho = None if constant else float(spearmanr(old, new).statistic)
        shifts.append(
            CriterionShift(
                criterion=str(criterion),
                n=len(group),
                old_mean=float(old.mean()),
                new_mean=float(new.mean()),
                shift=float(new.mean() - old.mean()),
                spearman=rho,
            )
        )
    overall = pairs[pairs["criterion"] == OVERALL].copy()
    overall["moved"] = (overall["new"] - overall["old"]).abs()
    top = overall.sort_values(["moved", "response_id"], ascending=[False, True]).head(movers)
    return VersionComparison(
        rubric_name=rubric_name,
        old_version=old_version,
        new_version=new_version,
        shifts=shifts,
        movers=[Mover(r.response_id, float(r.old), float(r.new)) for r in top.itertuples()],
    )
