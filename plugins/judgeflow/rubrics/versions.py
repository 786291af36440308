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

from scipy.stats import spearmanr

from judgeflow.quality.stats import OVERALL
from judgeflow.storage.versions import known_versions, paired_scores
from judgeflow.storage.warehouse import Warehouse

__all__ = ["CriterionShift", "Mover", "VersionComparison", "compare_versions", "known_versions"]


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
