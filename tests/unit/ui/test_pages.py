"""judgeflow.ui.pages and judgeflow.quality.findings.status_of: the status line, the navigation, the pickers."""

from __future__ import annotations

import datetime as dt

import pytest

from judgeflow.quality.findings import Regression, status_of
from judgeflow.quality.regression import ComparisonStatus, MetricComparison
from judgeflow.storage.view_reads import Scope, parse_segment
from judgeflow.ui import pages

OPENED = dt.datetime(2026, 11, 19, tzinfo=dt.UTC)


def _regression(state: str, metric: str = "accuracy", segment: str | None = "topic=shipping") -> Regression:
    key = metric if segment is None else f"{metric} in {segment}"
    return Regression(key, metric, segment, state, OPENED, OPENED, -1.5, -1.2)


def _comparison(metric: str, segment: str | None, difference: float) -> MetricComparison:
    return MetricComparison(
        metric=metric,
        baseline_n=200,
        baseline_mean=3.5,
        current_n=40,
        current_mean=3.5 + difference,
        difference=difference,
        p_value=0.001,
        status=ComparisonStatus.REGRESSION if difference < -0.3 else ComparisonStatus.STABLE,
        ci_low=difference - 0.2,
        ci_high=difference + 0.2,
        segment=segment,
    )


def test_status_names_the_worst_open_regression_with_its_reference() -> None:
    found = [_regression("worsening"), _regression("open", "tone", None), _regression("recovered", "tone", "topic=x")]
    rows = [_comparison("overall", None, -0.1), _comparison("accuracy", "topic=shipping", -1.5)]

    status = status_of(found, rows, run_key="run-1")
    line = pages.status_line(status, query="rubric=h&version=1")

    assert status.state == "regression" and status.open_count == 2
    assert status.reference is rows[1] and status.overall is rows[0]
    assert (
        "Regression worsening: accuracy in topic=shipping</strong>, open since 2026-11-19 (1 more open below)" in line
    )
    assert "2.00 (n=40) against a baseline of 3.50 (n=200): -1.50, 95% CI [-1.70, -1.30]" in line
    assert 'href="responses?rubric=h&amp;version=1&amp;segment=topic%3Dshipping"' in line


def test_status_is_clear_when_only_recovered_ones_remain() -> None:
    status = status_of([_regression("recovered")], [_comparison("overall", None, 0.05)], run_key="run-1")
    line = pages.status_line(status, query="")

    assert status.state == "clear" and status.regression is None
    assert "No open regression." in line and "3.55 (n=40) against a baseline of 3.50 (n=200)" in line
    assert status_of([], [], run_key=None).state == "no comparisons"


def test_review_appears_in_the_navigation_once_its_route_exists() -> None:
    base = ["/", "/segments", "/responses", "/rubrics", "/api/trend"]

    assert [name for _, name in pages.nav_for(base)] == ["Overview", "Segments", "Responses", "Rubric versions"]
    assert [name for _, name in pages.nav_for([*base, "/review"])][-1] == "Review"


def test_the_page_follows_airflows_colour_mode_key_and_marks_the_current_page() -> None:
    html = pages.page(title="t", scope=None, query="a=1", body=[], nav=pages.PAGES[:4], current="segments")

    assert 'localStorage.getItem("theme")' in html and 'addEventListener("storage"' in html
    assert '<a href="segments?a=1" aria-current="page">Segments</a>' in html
    assert ":root[data-theme=dark]" in html


def test_version_picker_only_with_a_choice_and_segment_picker_keeps_the_scope() -> None:
    versions = [("h", "1"), ("h", "2")]
    scope = Scope("h", "2", None)

    assert pages.version_picker(scope, versions[:1]) == ""
    assert '<option value="h/2" selected>h 2</option>' in pages.version_picker(scope, versions)
    picker = pages.segment_picker("topic=b", ["topic=a", "topic=b"], query="scope=h%2F2&segment=topic%3Da")
    assert '<input type="hidden" name="scope" value="h/2">' in picker and 'name="segment" value' not in picker
    assert '<option value="topic=b" selected>' in picker


@pytest.mark.parametrize("text", ["topic", "secret=x", "=x"])
def test_a_segment_outside_the_configured_columns_is_refused_by_name(text: str) -> None:
    with pytest.raises(ValueError, match="one of topic, region"):
        parse_segment(text, ["topic", "region"])
    assert parse_segment("topic=a=b", ["topic"]) == ("topic", "a=b")


def test_an_open_regression_is_measured_against_the_reference_frozen_when_it_opened() -> None:
    """The rolling baseline of the latest run fills with the bad days; the status line uses the frozen level."""
    from judgeflow.quality.alert_state import Level, Reference

    found = [_regression("open")]
    rows = [_comparison("accuracy", "topic=shipping", -0.2)]  # today 3.30 against a baseline already half bad
    frozen = Reference(Level(3.9, 3.8, 4.0, 210), OPENED - dt.timedelta(days=7), OPENED)

    status = status_of(found, rows, run_key="r", references={found[0].key: frozen})
    line = pages.status_line(status, query="")

    assert status.frozen == frozen
    assert "against its reference 3.90 (95% 3.80 to 4.00, n=210, the level before 2026-11-19): -0.60" in line
    assert "against a baseline" not in line
    plain = pages.status_line(status_of(found, rows, run_key="r"), query="")  # no frozen level kept (older state)
    assert "against a baseline of 3.50 (n=200): -0.20" in plain


def test_an_open_regression_has_a_form_to_accept_its_level_and_a_recovered_one_has_none() -> None:
    rows = [_regression("open"), _regression("recovered", "tone", "topic=x")]
    target = pages.AcceptTarget("llm_judge__support", "helpfulness", "1+abc")

    html_ = pages.regressions_table(rows, accept=target)

    forms = html_.count('<form class="accept"')
    assert forms == 1 and 'data-regression="accuracy in topic=shipping"' in html_
    assert 'action="alerts/accept?dag_id=llm_judge__support"' in html_ and 'data-version="1+abc"' in html_
    assert '"Content-Type":"application/json"' in html_ and 'credentials:"same-origin"' in html_
    assert '<form class="accept"' not in pages.regressions_table(rows)  # no editor: nothing to accept with
