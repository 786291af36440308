"""The judgeflow view for real: ``airflow api-server`` with the plugin, a PostgreSQL warehouse, headless Chromium.

The warehouse holds 20,000 generated scores over 30 days with a regression in ``topic=shipping``
(worsening over the last two days) and one in ``topic=billing`` that recovered; the
``judge_calibrations`` table is created here by :class:`~judgeflow.storage.calibrations.CalibrationStore`. The test
shows that a request without a token is refused, reads every JSON endpoint with an HTTP client,
then opens the view in Chromium, through the Airflow UI's own navigation route and directly, checks
that the charts and tables rendered and the regression shows, and keeps screenshots under
``test-artifacts/``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, create_engine, text

from judgeflow.storage.calibrations import CalibrationStore
from judgeflow_devkit.ui_sample import RUBRIC, VERSION, generate
from tests.conftest import POSTGRES_URL, ROOT, require_tcp, service_missing
from tests.integration.test_daily_dag_production_stack import postgres_connection

LAST_DAY = dt.date(2026, 11, 20)
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
USER, PASSWORD = "oncall", "quality-at-a-glance"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _calibrations(engine: Engine) -> None:
    """The table as the calibration work creates it; two runs for one criterion, so 'latest' matters."""
    store = CalibrationStore(engine)
    store.ensure_schema()
    rows = [
        ("accuracy", 0.41, False, dt.datetime(2026, 10, 1, 6, tzinfo=dt.UTC)),
        ("accuracy", 0.78, True, dt.datetime(2026, 10, 20, 6, tzinfo=dt.UTC)),
        ("tone", 0.66, True, dt.datetime(2026, 10, 20, 6, tzinfo=dt.UTC)),
    ]
    with engine.begin() as conn:
        conn.execute(
            store.calibrations.insert(),
            [
                {
                    "rubric_name": RUBRIC,
                    "rubric_version": VERSION,
                    "model": "claude-haiku-4-5",
                    "criterion": criterion,
                    "golden_set": "sha256:ab12",
                    "n": 120,
                    "kappa": kappa,
                    "kappa_low": kappa - 0.08,
                    "kappa_high": kappa + 0.07,
                    "spearman": 0.8,
                    "spearman_low": 0.72,
                    "spearman_high": 0.86,
                    "mae": 0.4,
                    "mae_low": 0.33,
                    "mae_high": 0.48,
                    "passed": passed,
                    "calibrated_at": when,
                    "run_id": when.day,  # one calibration run a day here
                }
                for criterion, kappa, passed, when in rows
            ],
        )


@pytest.fixture(scope="module")
def schema() -> Iterator[str]:
    """One PostgreSQL schema for the module: every test reads the same generated warehouse."""
    require_tcp("PostgreSQL", ("127.0.0.1", 5432))
    name = f"jf_ui_{secrets.token_hex(4)}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {name}"))
    yield name
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {name} CASCADE"))
    admin.dispose()


@pytest.fixture(scope="module")
def warehouse(schema: str) -> Iterator[Engine]:
    engine = create_engine(f"{POSTGRES_URL}?options=-csearch_path%3D{schema}")
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def api_server(
    tmp_path_factory: pytest.TempPathFactory, airflow_db: Path, warehouse: Engine, schema: str
) -> Iterator[str]:
    """``airflow api-server`` on a free port, with SimpleAuthManager (one admin with a password) and the warehouse
    connection, started once for the module (every test only reads). Not ``all_admins``: that mode adds a token
    to every request, so nothing could be refused."""
    tmp_path = tmp_path_factory.mktemp("ui-view")
    generate(warehouse, rows=20_000, days=30, last_day=LAST_DAY)
    _calibrations(warehouse)
    settings = tmp_path / "judgeflow.yaml"
    settings.write_text("rubric: helpfulness\nbudget:\n  max_cost_usd_per_run: 1.0\n", encoding="utf-8")
    passwords = tmp_path / "passwords.json"
    passwords.write_text(json.dumps({USER: PASSWORD}), encoding="utf-8")
    port = _free_port()
    airflow = str(Path(sys.executable).parent / "airflow")
    # In Airflow's database, as an admin would add it: the api-server must find it outside any task.
    added = subprocess.run(
        [airflow, "connections", "add", "judge_warehouse", "--conn-json", postgres_connection(schema)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert added.returncode == 0, added.stdout + added.stderr
    env = {
        **os.environ,
        "JUDGEFLOW_SETTINGS": str(settings),
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__API_AUTH__JWT_SECRET": "judgeflow-ui-test-secret-0123456789abcdef",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    log_path = tmp_path / "api-server.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [airflow, "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert server.poll() is None, log_path.read_text()[-4000:]
            try:
                if httpx.get(f"{base}/api/v2/monitor/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail("api-server did not answer in 120 s:\n" + log_path.read_text()[-4000:])
        yield base
    finally:
        subprocess.run([airflow, "connections", "delete", "judge_warehouse"], capture_output=True, check=False)
        server.terminate()
        try:
            server.wait(timeout=5)  # uvicorn drains connections for up to 20 s; nothing here needs it
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


def _token(base: str) -> str:
    response = httpx.post(f"{base}/auth/token", json={"username": USER, "password": PASSWORD}, timeout=10)
    assert response.status_code == 201, response.text
    return str(response.json()["access_token"])


def test_view_is_refused_without_a_token(api_server: str) -> None:
    for route in ("/judgeflow/", "/judgeflow/api/regressions", "/judgeflow/charts/trend.png"):
        assert httpx.get(api_server + route, timeout=30).status_code == 401, route
    assert httpx.get(api_server + "/judgeflow/openapi.json", timeout=30).status_code == 404, "no schema without auth"
    forged = httpx.get(api_server + "/judgeflow/api/trend", headers={"Authorization": "Bearer not-a-jwt"}, timeout=30)
    assert forged.status_code == 403


def test_accepting_a_regression_needs_a_signed_in_editor_of_the_dag(api_server: str) -> None:
    route = f"{api_server}/judgeflow/alerts/accept"
    body = {"rubric": "helpfulness", "regression": "no such drop", "reason": "checking the route"}
    assert httpx.post(route, params={"dag_id": "llm_judge_daily"}, json=body, timeout=30).status_code == 401
    headers = {"Authorization": f"Bearer {_token(api_server)}"}
    answer = httpx.post(route, params={"dag_id": "llm_judge_daily"}, json=body, headers=headers, timeout=60)
    assert answer.status_code == 404, answer.text  # an admin may; nothing of that name is open
    assert "no open regression 'no such drop' in judge_alert_state" in answer.json()["detail"]


def test_json_endpoints_for_bi_tools(api_server: str) -> None:
    headers = {"Authorization": f"Bearer {_token(api_server)}"}

    def get(route: str) -> Any:
        response = httpx.get(f"{api_server}/judgeflow/api/{route}", headers=headers, timeout=60)
        assert response.status_code == 200, (route, response.text)
        body = response.json()
        assert body["scope"]["rubric_version"] == VERSION
        assert body["scope"]["last_day"] == LAST_DAY.isoformat()
        return body["data"]

    states = {r["key"]: r["state"] for r in get("regressions")}
    assert states["accuracy in topic=shipping"] == "worsening"
    assert states["tone in topic=billing"] == "recovered"

    segments = get("segments")
    assert segments["run_key"] == f"llm_judge_daily/scheduled__{LAST_DAY:%Y-%m-%d}"
    shipping = next(
        c for c in segments["comparisons"] if c["metric"] == "accuracy" and c["segment"] == "topic=shipping"
    )
    assert shipping["status"] == "regression" and shipping["difference"] < -1.0

    trend = get("trend")
    days = {p["day"] for p in trend}
    assert len(days) == 28 and {p["metric"] for p in trend} == {"overall", "accuracy", "tone", "completeness"}
    last = {p["metric"]: p["mean"] for p in trend if p["day"] == LAST_DAY.isoformat()}
    first = {p["metric"]: p["mean"] for p in trend if p["day"] == min(days)}
    assert last["accuracy"] < first["accuracy"] - 0.2

    distributions = get("distributions")
    accuracy = distributions["metrics"]["accuracy"]
    assert sum(v["n"] for v in accuracy["this_week"]) > 4000 and sum(v["n"] for v in accuracy["last_week"]) > 4000

    lowest = get("responses/lowest")
    assert len(lowest) == 20 and lowest == sorted(lowest, key=lambda r: r["overall"])
    texts = json.dumps(lowest)
    assert "sk-ant-abcdefghijklmnop" not in texts and "jane.doe@example.com" not in texts
    assert "[key]" in texts or "[email]" in texts
    assert all(len(r["rationale"]) <= 300 for r in lowest)

    health = get("health")
    assert len(health) == 14 and all(0.99 < h["coverage"] < 1.0 for h in health)
    assert all(h["budget_usd"] == 1.0 for h in health)

    (version,) = get("rubrics")
    latest = {c["criterion"]: c for c in version["calibrations"]}
    assert set(latest) == {"accuracy", "tone"}
    assert latest["accuracy"]["kappa"] == pytest.approx(0.78) and latest["accuracy"]["passed"] is True


def test_chromium_renders_the_view_inside_the_airflow_ui(api_server: str) -> None:
    driver = _chromium()
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ready
        from selenium.webdriver.support.ui import WebDriverWait

        wait = WebDriverWait(driver, 60)
        driver.get(f"{api_server}/judgeflow/")
        assert "Not authenticated" in driver.page_source  # no cookie yet: refused in the browser too
        driver.add_cookie({"name": "_token", "value": _token(api_server), "path": "/"})  # what the UI's login sets

        driver.get(f"{api_server}/plugin/judgeflow")  # the route of the UI's navigation entry
        frame = wait.until(ready.presence_of_element_located((By.TAG_NAME, "iframe")))
        assert frame.get_attribute("src").endswith("/judgeflow/")
        driver.switch_to.frame(frame)
        _assert_overview_rendered(driver, wait)
        driver.switch_to.default_content()
        time.sleep(1)
        inside_ui = ARTIFACTS / "ui_view_in_airflow.png"
        driver.save_screenshot(str(inside_ui))

        driver.get(f"{api_server}/judgeflow/")
        _assert_overview_rendered(driver, wait)
        driver.set_window_size(1400, driver.execute_script("return document.body.scrollHeight + 40"))
        overview = ARTIFACTS / "ui_view_overview.png"
        driver.save_screenshot(str(overview))

        driver.get(f"{api_server}/judgeflow/segments")
        row = wait.until(ready.presence_of_element_located((By.XPATH, "//tr[td[1]='accuracy [topic=shipping]']")))
        assert row.get_attribute("class") == "regression"
        _assert_images_loaded(driver)
        driver.get(f"{api_server}/judgeflow/rubrics")
        assert "0.78 [0.70, 0.85]" in driver.find_element(By.ID, "rubrics").text
        print(f"\nscreenshots: {inside_ui} and {overview}")
        for shot in (inside_ui, overview):
            assert shot.stat().st_size > 20_000
    finally:
        driver.quit()


def _assert_overview_rendered(driver: Any, wait: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready

    row = wait.until(ready.presence_of_element_located((By.XPATH, "//tr[td[1]='accuracy in topic=shipping']")))
    assert row.get_attribute("class") == "worsening"
    assert "recovered" in driver.find_element(By.XPATH, "//tr[td[1]='tone in topic=billing']").text
    assert len(driver.find_elements(By.CSS_SELECTOR, "#health tr")) == 15  # header + 14 runs
    _assert_images_loaded(driver)


def _assert_images_loaded(driver: Any) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    def loaded(d: Any) -> bool:
        return bool(d.execute_script("return [...document.images].every(i => i.complete && i.naturalWidth > 300)"))

    assert driver.execute_script("return document.images.length") >= 1
    WebDriverWait(driver, 60).until(loaded)


def _chromium() -> Any:
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        service_missing("chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        service_missing("selenium is not installed")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
