"""Issue 15 (d): 200 null 28-day timelines, at most 5% get any alert.

200 timelines through the DAG would take hours, so each day goes through the decision code the DAG's
compare and alert tasks call (:mod:`judgeflow.tasks.alerting`: clean baseline, comparison, references,
lifecycle plan) with the alert state in SQLite, as ``judgeflow-dev bench-alerts`` does. Over all
responses and the rubric's three criteria (four tests a day) at 50 responses a day, to keep the test
to minutes; ``make bench-alerts`` adds five topic segments (24 tests a day) and prints
``open_after_days`` 1 beside the default.
"""

from __future__ import annotations

import pytest

from judgeflow.config import AlertConfig
from judgeflow_devkit.bench.alerts import null_false_alert_rate

TIMELINES = 200
MAX_RATE = 0.05


@pytest.mark.timeout(1800)  # about 4 minutes of CPU; a machine shared by many runs may take three times that
def test_at_most_five_percent_of_null_timelines_get_any_alert() -> None:
    result = null_false_alert_rate(timelines=TIMELINES, days=28, per_day=50, alerts=AlertConfig(), segments=())
    print(result.describe("defaults"), "first alert on days", result.first_alert_days)
    assert result.timelines == TIMELINES
    assert result.rate <= MAX_RATE, result.describe("defaults")
