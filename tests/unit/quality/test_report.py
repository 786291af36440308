"""judgeflow.quality.report: one HTML page per run with PNG charts, written through ObjectStoragePath."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from judgeflow.quality.regression import RegressionReport, compare_windows
from judgeflow.quality.report import DISTRIBUTIONS_PNG, INDEX_HTML, SEGMENTS_PNG, write_run_report

CURRENT_START = dt.datetime(2024, 6, 8, tzinfo=dt.UTC)
CURRENT_END = CURRENT_START + dt.timedelta(days=1)
CRITERIA = ["accuracy", "tone"]
TOPICS = ["billing", "shipping", "<b>bad</b>", r"$\frac$ & co"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _scores(seed: int = 7) -> pd.DataFrame:
    """7 baseline days and 1 current day; accuracy in topic=shipping drops by ~2 points today."""
    rng = np.random.default_rng(seed)
    n_baseline, n_current = 1400, 300
    baseline_at = CURRENT_START - pd.to_timedelta(rng.uniform(0, 7 * 86400, n_baseline), unit="s")
    current_at = CURRENT_START + pd.to_timedelta(rng.uniform(0, 86400, n_current), unit="s")
    created = pd.DatetimeIndex(np.concatenate([baseline_at, current_at])).tz_convert("UTC")
    n = n_baseline + n_current
    topic = rng.choice(TOPICS, size=n)
    accuracy = rng.choice([3, 4, 5], p=[0.2, 0.4, 0.4], size=n).astype(float)
    dropped = (topic == "shipping") & (np.arange(n) >= n_baseline)
    accuracy[dropped] = np.clip(accuracy[dropped] - 2, 1, 5)
    tone = rng.choice([2, 3, 4, 5], p=[0.1, 0.2, 0.4, 0.3], size=n).astype(float)
    return pd.DataFrame(
        {
            "response_id": [f"r{i}" for i in range(n)],
            "created_at": created,
            "overall": (accuracy + tone) / 2,
            "accuracy": accuracy,
            "tone": tone,
            "topic": topic,
        }
    )


def _report(scores: pd.DataFrame) -> RegressionReport:
    return compare_windows(
        scores,
        criteria=CRITERIA,
        current_start=CURRENT_START,
        current_end=CURRENT_END,
        baseline_days=7,
        alpha=0.05,
        min_samples=20,
        min_drop=0.3,
        segment_columns=["topic"],
        n_boot=200,
    )


def _empty_scores() -> pd.DataFrame:
    return _scores().iloc[0:0]


@pytest.fixture(scope="module")
def scores() -> pd.DataFrame:
    return _scores()


@pytest.fixture(scope="module")
def report(scores: pd.DataFrame) -> RegressionReport:
    return _report(scores)


def _write(folder: str, scores: pd.DataFrame, report: RegressionReport, run_key: str = "scheduled__2024-06-08") -> Path:
    index = write_run_report(
        scores=scores, report=report, criteria=CRITERIA, folder=folder, run_key=run_key, title="Judge <daily>"
    )
    return Path(index.removeprefix("file://"))


def test_page_links_every_png_and_charts_are_real_pngs(
    tmp_path: Path, scores: pd.DataFrame, report: RegressionReport
) -> None:
    index = _write(str(tmp_path), scores, report)

    assert index.is_file()
    page = index.read_text(encoding="utf-8")
    pngs = sorted(p.name for p in index.parent.glob("*.png"))
    assert pngs == sorted([DISTRIBUTIONS_PNG, SEGMENTS_PNG])
    assert sorted(re.findall(r'<img src="([^"]+)"', page)) == pngs
    for name in pngs:
        data = (index.parent / name).read_bytes()
        assert data.startswith(PNG_MAGIC)
        assert len(data) > 2048


def test_table_names_the_regressed_segment(tmp_path: Path, scores: pd.DataFrame, report: RegressionReport) -> None:
    assert "accuracy [topic=shipping]" in [c.label for c in report.segment_regressions]

    page = _write(str(tmp_path), scores, report).read_text(encoding="utf-8")

    row = next(line for line in page.splitlines() if "accuracy [topic=shipping]" in line)
    assert 'class="regression"' in row
    assert len(re.findall(r"<tr", page)) == len(report.comparisons) + 1


def test_text_from_the_data_is_escaped(tmp_path: Path, scores: pd.DataFrame, report: RegressionReport) -> None:
    page = _write(str(tmp_path), scores, report).read_text(encoding="utf-8")

    assert "<b>bad</b>" not in page
    assert "&lt;b&gt;bad&lt;/b&gt;" in page
    assert "Judge <daily>" not in page
    assert "Judge &lt;daily&gt;" in page


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param(_empty_scores, id="empty-frame-with-columns"),
        pytest.param(lambda: pd.DataFrame(), id="frame-without-columns"),
    ],
)
def test_empty_data_still_writes_a_page(tmp_path: Path, frame: object) -> None:
    scores = frame()  # type: ignore[operator]
    report = _report(_empty_scores())

    index = _write(str(tmp_path), scores, report)

    page = index.read_text(encoding="utf-8")
    assert "no data" in page
    assert "<img" not in page
    assert not list(index.parent.glob("*.png"))


def test_report_without_segment_rows_has_distributions_only(tmp_path: Path, scores: pd.DataFrame) -> None:
    report = compare_windows(
        scores,
        criteria=CRITERIA,
        current_start=CURRENT_START,
        current_end=CURRENT_END,
        baseline_days=7,
        alpha=0.05,
        min_samples=20,
        min_drop=0.3,
        n_boot=50,
    )

    index = _write(str(tmp_path), scores, report)

    page = index.read_text(encoding="utf-8")
    assert re.findall(r'<img src="([^"]+)"', page) == [DISTRIBUTIONS_PNG]
    assert "no data" in page


def test_run_key_becomes_a_safe_directory_and_file_urls_work(
    tmp_path: Path, scores: pd.DataFrame, report: RegressionReport
) -> None:
    url = write_run_report(
        scores=scores,
        report=report,
        criteria=CRITERIA,
        folder=tmp_path.as_uri(),
        run_key="manual__2024-06-08T00:00:00+00:00/../x",
        title="t",
    )

    assert url.startswith("file://")
    assert url.endswith("/manual__2024-06-08T00_00_00_00_00_.._x/index.html")
    assert (tmp_path / "manual__2024-06-08T00_00_00_00_00_.._x" / "index.html").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["manual__2024-06-08T00_00_00_00_00_.._x"]


def test_rerun_overwrites_the_same_files(tmp_path: Path, scores: pd.DataFrame, report: RegressionReport) -> None:
    first = _write(str(tmp_path), scores, report)
    written = {path.name: path.read_bytes() for path in first.parent.iterdir()}
    for path in first.parent.iterdir():  # what a half-written or older report would leave
        path.write_bytes(b"stale")

    second = _write(str(tmp_path), scores, report)

    assert second == first
    assert {path.name: path.read_bytes() for path in second.parent.iterdir()} == written
    assert set(written) == {INDEX_HTML, DISTRIBUTIONS_PNG, SEGMENTS_PNG}


def test_the_report_and_the_view_render_comparison_rows_alike(
    tmp_path: Path, scores: pd.DataFrame, report: RegressionReport
) -> None:
    from judgeflow.ui.pages import segments_table

    page = _write(str(tmp_path), scores, report).read_text(encoding="utf-8")
    segment_rows = [c for c in report.comparisons if c.segment is not None]

    view_rows = [line for line in segments_table(segment_rows).splitlines() if line.startswith("<tr class=")]

    assert len(view_rows) == len(segment_rows) > 0
    assert all(row in page for row in view_rows)
    assert 'class="regression"' in "".join(view_rows) and "[95% CI]" in page


def test_the_page_says_the_root_cause_and_each_rows_power(
    tmp_path: Path, scores: pd.DataFrame, report: RegressionReport
) -> None:
    assert report.root_cause is not None and report.root_cause.kind.value == "local"

    page = _write(str(tmp_path), scores, report).read_text(encoding="utf-8")

    cause = re.search(r'<p id="root-cause" class="local">([^<]*)</p>', page)
    assert cause is not None and cause.group(1).startswith("local: topic=shipping carries")
    assert "<th>detects a drop of</th><th>days pooled</th>" in page
    row = next(line for line in page.splitlines() if "accuracy [topic=shipping]" in line)
    shipping = report.get("accuracy", segment="topic=shipping")
    assert shipping is not None and shipping.mde is not None
    assert f"<td>{shipping.mde:.2f}</td><td>1</td>" in row


def test_segment_values_that_look_like_personal_data_are_masked(tmp_path: Path, report: RegressionReport) -> None:
    import dataclasses

    leaky = dataclasses.replace(
        report,
        comparisons=tuple(
            dataclasses.replace(c, segment="customer=jo@example.com") if c.segment == "topic=billing" else c
            for c in report.comparisons
        ),
    )
    page = _write(str(tmp_path), _scores(), leaky).read_text(encoding="utf-8")

    assert "jo@example.com" not in page and "customer=[email]" in page


def test_page_opens_with_headline_cause_and_links(
    tmp_path: Path, scores: pd.DataFrame, report: RegressionReport
) -> None:
    """First the worst regression with its figures, then the segments that pull the mean down, then where to go."""
    from judgeflow.quality.stats import root_causes
    from judgeflow.ui.links import view_links

    pulls = root_causes(scores, current_start=CURRENT_START, current_end=CURRENT_END, segment_columns=["topic"])
    links = [("this run in Airflow", "http://airflow.example/dags/d/runs/r<1>")]
    links += view_links("http://airflow.example/", rubric="helpfulness", version="1+a", segment="topic=shipping")
    index = write_run_report(
        scores=scores,
        report=report,
        criteria=CRITERIA,
        folder=str(tmp_path),
        run_key="scheduled__2024-06-08",
        title="t",
        pulls=pulls,
        links=links,
    )
    page = Path(index.removeprefix("file://")).read_text(encoding="utf-8")
    headline = re.search(r'<p class="headline" id="headline"><strong>(.*?)</strong>', page)
    assert headline is not None
    assert headline.group(1).startswith("Quality dropped: accuracy in topic=shipping from ")
    worst = min(report.regressions, key=lambda c: c.difference or 0.0)
    assert f"{worst.difference:+.2f}, 95% CI [{worst.ci_low:+.2f}, {worst.ci_high:+.2f}]" in headline.group(1)
    cause = re.search(r'<p id="cause">Likely cause: (.*?)</p>', page)
    assert cause is not None and cause.group(1).startswith("topic=shipping pulls the overall mean down by ")
    assert page.index('id="headline"') < page.index('id="cause"') < page.index("<h2>Comparisons</h2>")
    assert 'href="http://airflow.example/dags/d/runs/r&lt;1&gt;"' in page
    assert (
        'href="http://airflow.example/judgeflow/responses?rubric=helpfulness&amp;version=1%2Ba&amp;'
        'segment=topic%3Dshipping"' in page
    )


def test_headline_without_regression(tmp_path: Path) -> None:
    calm = _scores(seed=3)
    calm["accuracy"] = calm["tone"]  # no drop anywhere
    calm["overall"] = calm["tone"]
    page = _write(str(tmp_path), calm, _report(calm)).read_text(encoding="utf-8")
    assert re.search(r"<strong>No regression: overall from \d\.\d\d \(n=\d+\) to \d\.\d\d \(n=\d+\), [+-]\d", page)
    assert 'id="cause"' not in page
