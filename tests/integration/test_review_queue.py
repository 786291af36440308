"""The review queue for real: ``airflow api-server`` with the plugin, PostgreSQL, headless Chromium.

Reviewers sign in through Airflow's login form and label responses on ``/judgeflow/review``; the
labels land in ``judge_human_labels`` under their Airflow user name, and the page then shows the
judge against people. A viewer who may not edit the suite's DAG and is not in ``review.reviewers``
sees the queue but gets 403 when a label is posted; a viewer named in ``review.reviewers`` may
label. ``judgeflow golden export`` then appends the labelled responses to a golden set that already
holds a canary, keeps it, skips what is already there, and a second export adds nothing.
A screenshot of the review page is kept in ``test-artifacts/``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import Engine, text

from judgeflow.cli import main as judgeflow_main
from judgeflow.config import SourceConfig
from judgeflow.records import NoiseRecord
from judgeflow.rubric import load_rubric
from judgeflow.rubrics.golden import load_golden_set
from judgeflow.storage.judge_quality import JudgeQualityStore
from judgeflow.storage.warehouse import Warehouse
from judgeflow_devkit.ui_sample import RUBRIC, VERSION, generate
from tests.conftest import ROOT
from tests.integration.test_daily_dag_production_stack import postgres_connection
from tests.integration.test_ui_view import _chromium
from tests.support.api_server import api_server, token
from tests.support.postgres import schema_engine, throwaway_schema

LAST_DAY = dt.date(2026, 11, 20)
ARTIFACTS = ROOT / "test-artifacts"
USERS = {
    "oncall": ("admin", "edits-the-dag"),
    "visitor": ("viewer", "only-looks"),
    "labeller": ("viewer", "named-reviewer"),
}
UNSTABLE = (7, 8)  # response ids the noise sample found unstable


@pytest.fixture(scope="module")
def schema() -> Iterator[str]:
    with throwaway_schema("jf_review") as name:
        yield name


@pytest.fixture(scope="module")
def warehouse(schema: str) -> Iterator[Engine]:
    engine = schema_engine(schema)
    generate(engine, rows=3000, days=10, last_day=LAST_DAY, n_boot=50)
    store = JudgeQualityStore(Warehouse(engine, SourceConfig()))
    now = dt.datetime(2026, 11, 20, 6, tzinfo=dt.UTC)
    store.write_noise(
        [
            NoiseRecord(
                rid,
                RUBRIC,
                VERSION,
                "scheduled__2026-11-20",
                {"accuracy": 2, "tone": 4, "completeness": 3},
                {"accuracy": 4, "tone": 4, "completeness": 3},
                0.0001,
                None,
                now,
            )
            for rid in UNSTABLE
        ]
    )
    figures = {
        "responses": 60,
        "pairs": 180,
        "kappa": 0.71,
        "kappa_low": 0.6,
        "kappa_high": 0.8,
        "mean_abs_spread": 0.31,
        "unstable": 2,
    }
    store.record_noise_day(rubric_name=RUBRIC, rubric_version=VERSION, day=LAST_DAY, figures=figures)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("review")
    golden = folder / "golden"
    golden.mkdir()
    canary = json.loads((ROOT / "include" / "golden" / "helpfulness.jsonl").read_text().splitlines()[54])
    assert canary["canary"] is True
    (golden / "helpfulness.jsonl").write_text(json.dumps(canary) + "\n", encoding="utf-8")
    settings = {
        "rubric": RUBRIC,
        "rubric_dir": str(ROOT / "include" / "rubrics"),
        "calibration": {"golden_dir": str(golden)},
        "review": {"reviewers": ["labeller"], "random_items": 5, "low_items": 3, "unstable_items": 2, "days": 10},
    }
    path = folder / "judgeflow.yaml"
    path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def server(airflow_db: Path, warehouse: Engine, schema: str, deployment: Path) -> Iterator[str]:
    with api_server(
        deployment.parent, users=USERS, settings=deployment, warehouse_conn=postgres_connection(schema)
    ) as base:
        yield base


def labels(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(text("SELECT * FROM judge_human_labels ORDER BY labelled_at")).mappings()]


def judge_scores(engine: Engine, response_id: int) -> dict[str, int]:
    query = "SELECT criterion, score FROM judge_criterion_scores WHERE response_id = :i AND rubric_version = :v"
    with engine.connect() as conn:
        return {c: int(s) for c, s in conn.execute(text(query), {"i": response_id, "v": VERSION})}


def sign_in(driver: Any, base: str, user: str) -> None:
    """Through Airflow's own login form, as a person would; it sets the UI's ``_token`` cookie."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    driver.delete_all_cookies()
    driver.get(f"{base}/auth/login?next={base}/judgeflow/review")
    wait = WebDriverWait(driver, 60)
    wait.until(ready.presence_of_element_located((By.NAME, "username"))).send_keys(user)
    driver.find_element(By.CSS_SELECTOR, "input[type=password]").send_keys(USERS[user][1])
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(lambda d: d.get_cookie("_token") is not None)


def test_review_in_the_browser_then_export(server: str, warehouse: Engine, deployment: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import Select, WebDriverWait

    driver = _chromium()
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        wait = WebDriverWait(driver, 60)
        driver.get(f"{server}/judgeflow/review")
        assert "Not authenticated" in driver.page_source

        sign_in(driver, server, "oncall")
        driver.get(f"{server}/judgeflow/review")
        forms = wait.until(ready.presence_of_all_elements_located((By.CSS_SELECTOR, "form.label")))
        queues = [f.get_attribute("class").split()[-1] for f in forms]
        assert queues.count("random") == 5 and queues.count("low") == 3, queues
        assert {int(f.get_attribute("data-response")) for f in forms if "unstable" in f.get_attribute("class")} == set(
            UNSTABLE
        )
        assert "0.71 [0.60, 0.80]" in driver.find_element(By.ID, "noise").text
        assert "length-controlled mean" in driver.find_element(By.ID, "length-bias").text

        for i in range(4):  # four of the random sample: agree with the judge on two, not on two
            form = driver.find_elements(By.CSS_SELECTOR, "form.label.random")[0]
            judged = judge_scores(warehouse, int(form.get_attribute("data-response")))
            for criterion, score in judged.items():
                select = Select(form.find_element(By.NAME, f"score_{criterion}"))
                assert select.first_selected_option.get_attribute("value") == "", "blind: nothing preselected"
                disagree = i >= 2 and criterion == "accuracy"
                select.select_by_value(str((1 if score > 2 else 5) if disagree else score))
            form.find_element(By.NAME, "note").send_keys(f"checked by a person, {i}")
            form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
            wait.until(ready.staleness_of(form))
        saved = labels(warehouse)
        assert len(saved) == 4 and {r["reviewer"] for r in saved} == {"oncall"}
        assert {r["queue"] for r in saved} == {"random"} and saved[0]["note"] == "checked by a person, 0"
        assert [r["scores"] == judge_scores(warehouse, r["response_id"]) for r in saved] == [True, True, False, False]
        agreement = driver.find_element(By.ID, "agreement").text
        assert "all 4" in agreement, agreement
        driver.set_window_size(1400, driver.execute_script("return document.body.scrollHeight + 40"))
        shot = ARTIFACTS / "review_queue.png"
        driver.save_screenshot(str(shot))
        assert shot.stat().st_size > 20_000
        print(f"\nscreenshot: {shot}\nagreement table:\n{agreement}")

        sign_in(driver, server, "visitor")  # may see the view, may not edit the DAG, not a reviewer
        driver.get(f"{server}/judgeflow/review")
        form = wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "form.label")))
        assert form.find_element(By.CSS_SELECTOR, "button").get_attribute("disabled") is not None
        assert "you may look, not label" in driver.page_source
        driver.execute_script("arguments[0].querySelectorAll('[disabled]').forEach(x => x.disabled = false)", form)
        for select in form.find_elements(By.TAG_NAME, "select"):
            Select(select).select_by_value("3")
        form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait.until(lambda d: "may not label" in d.page_source)
        assert "visitor may not label" in driver.page_source
        assert len(labels(warehouse)) == 4
    finally:
        driver.quit()

    _refused_and_allowed_over_http(server, warehouse)
    _export_round_trip(deployment, warehouse)


def _refused_and_allowed_over_http(server: str, warehouse: Engine) -> None:
    form = {
        "response_id": "11",
        "queue": "low",
        "rubric": RUBRIC,
        "version": VERSION,
        "note": "",
        "score_accuracy": "3",
        "score_tone": "3",
        "score_completeness": "3",
    }
    visitor = {"Authorization": f"Bearer {token(server, 'visitor', USERS['visitor'][1])}"}
    refused = httpx.post(f"{server}/judgeflow/review/label", data=form, headers=visitor, timeout=30)
    assert refused.status_code == 403, refused.text
    labeller = {"Authorization": f"Bearer {token(server, 'labeller', USERS['labeller'][1])}"}
    bad = httpx.post(f"{server}/judgeflow/review/label", data={**form, "score_tone": "9"}, headers=labeller, timeout=30)
    assert bad.status_code == 400 and "tone" in bad.text
    taken = httpx.post(f"{server}/judgeflow/review/label", data=form, headers=labeller, timeout=30)
    assert taken.status_code == 303, taken.text
    assert [(r["reviewer"], r["response_id"]) for r in labels(warehouse)][-1] == ("labeller", 11)


def _export_round_trip(deployment: Path, warehouse: Engine) -> None:
    url = warehouse.url.render_as_string(hide_password=False)
    golden_dir = deployment.parent / "golden"
    rubric = load_rubric(ROOT / "include" / "rubrics", RUBRIC)
    argv = ["golden", "export", "--settings", str(deployment), "--url", url]
    assert judgeflow_main(argv) == 0
    exported = load_golden_set(golden_dir, rubric)
    assert exported is not None
    assert exported.items[0].id == "canary-01" and exported.items[0].canary, "the canary kept, first"
    by_id = {i.id: i for i in exported.items}
    saved = labels(warehouse)
    assert len(exported.items) == 1 + len(saved) == 6
    for row in saved:
        item = by_id[f"prod-{row['response_id']}"]
        assert item.scores == row["scores"] and not item.canary
        with warehouse.connect() as conn:
            response = conn.execute(text("SELECT response FROM app_responses WHERE id = :i"), {"i": row["response_id"]})
            assert item.response == response.scalar_one()
    before = (golden_dir / "helpfulness.jsonl").read_bytes()
    assert judgeflow_main(argv) == 0
    assert (golden_dir / "helpfulness.jsonl").read_bytes() == before, "a second export adds nothing"
