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
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from judgeflow.storage.calibrations import CalibrationStore
from judgeflow_devkit.ui_sample import RUBRIC, VERSION, generate
from tests.conftest import ROOT, service_missing
from tests.integration.test_daily_dag_production_stack import postgres_connection
from tests.support.api_server import api_server as serve
from tests.support.api_server import token
from tests.support.postgres import schema_engine, throwaway_schema

LAST_DAY = dt.date(2026, 11, 20)
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
USER, PASSWORD = "oncall", "quality-at-a-glance"
VIEWER, VIEWER_PASSWORD = "visitor", "only-looks"


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
    with throwaway_schema("jf_ui") as name:
        yield name


@pytest.fixture(scope="module")
def warehouse(schema: str) -> Iterator[Engine]:
    engine = schema_engine(schema)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def api_server(
    tmp_path_factory: pytest.TempPathFactory, airflow_db: Path, warehouse: Engine, schema: str
) -> Iterator[str]:
    """The api-server with an admin, a viewer and the generated warehouse, started once for the module
    (every test but the last only reads)."""
    tmp_path = tmp_path_factory.mktemp("ui-view")
    generate(warehouse, rows=20_000, days=30, last_day=LAST_DAY)
    _calibrations(warehouse)
    settings = tmp_path / "judgeflow.yaml"
    settings.write_text("rubric: helpfulness\nbudget:\n  max_cost_usd_per_run: 1.0\n", encoding="utf-8")
    users = {USER: ("admin", PASSWORD), VIEWER: ("viewer", VIEWER_PASSWORD)}
    with serve(tmp_path, users=users, settings=settings, warehouse_conn=postgres_connection(schema)) as base:
        yield base


def _token(base: str) -> str:
    return token(base, USER, PASSWORD)


def test_view_is_refused_without_a_token(api_server: str) -> None:
    for route in ("/judgeflow/", "/judgeflow/api/regressions", "/judgeflow/charts/trend.png"):
        assert httpx.get(api_server + route, timeout=30).status_code == 401, route
    assert httpx.get(api_server + "/judgeflow/openapi.json", timeout=30).status_code == 404, "no schema without auth"
    forged = httpx.get(api_server + "/judgeflow/api/trend", headers={"Authorization": "Bearer not-a-jwt"}, timeout=30)
    assert forged.status_code == 403


def test_accepting_a_regression_needs_a_signed_in_editor_of_the_dag(api_server: str, warehouse: Engine) -> None:
    route = f"{api_server}/judgeflow/alerts/accept"
    body = {"rubric": "helpfulness", "regression": "no such drop", "reason": "checking the route"}
    assert httpx.post(route, params={"dag_id": "llm_judge_daily"}, json=body, timeout=30).status_code == 401
    # a viewer may read the view but not change what on-call is told, even of a regression that is open
    open_one = {**body, "regression": "accuracy in topic=shipping"}
    viewer = {"Authorization": f"Bearer {token(api_server, VIEWER, VIEWER_PASSWORD)}"}
    assert httpx.get(f"{api_server}/judgeflow/api/regressions", headers=viewer, timeout=60).status_code == 200
    refused = httpx.post(route, params={"dag_id": "llm_judge_daily"}, json=open_one, headers=viewer, timeout=60)
    assert refused.status_code == 403, refused.text
    with warehouse.connect() as conn:
        history = conn.execute(text("SELECT COUNT(*) FROM judge_alert_history WHERE outcome = 'accepted'")).scalar_one()
    assert history == 0
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


AXE = ROOT / "devkit" / "browser" / "node_modules" / "axe-core" / "axe.min.js"
SIZES = {"1440": (1440, 1000), "900": (900, 1000)}
PAGES = ("", "segments", "responses", "rubrics")


@pytest.fixture(scope="module")
def browser(api_server: str) -> Iterator[Any]:
    """Chromium logged in the way a person logs in: the auth manager's login form, then its redirect."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    driver = _chromium()
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        driver.get(f"{api_server}/judgeflow/")
        assert "Not authenticated" in driver.page_source  # no cookie yet: refused in the browser too
        driver.get(f"{api_server}/auth/login?next={api_server}/plugin/judgeflow")
        wait = WebDriverWait(driver, 60)
        wait.until(ready.presence_of_element_located((By.NAME, "username"))).send_keys(USER)
        driver.find_element(By.NAME, "password").send_keys(PASSWORD)
        driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait.until(lambda d: "/plugin/judgeflow" in d.current_url)
        assert any(c["name"] == "_token" for c in driver.get_cookies()), "the login form set the UI's token cookie"
        yield driver
    finally:
        driver.quit()


def _theme(driver: Any, base: str, mode: str) -> None:
    """Set the colour mode where Airflow's UI keeps it (what its mode switch does), on the UI's origin."""
    driver.get(f"{base}/api/v2/monitor/health")
    driver.execute_script("localStorage.setItem('theme', arguments[0])", mode)


def _size(driver: Any, name: str) -> None:
    driver.set_window_size(*SIZES[name])


@pytest.mark.parametrize("mode", ["light", "dark"])
@pytest.mark.parametrize("size", list(SIZES))
def test_view_inside_the_airflow_ui(browser: Any, api_server: str, mode: str, size: str) -> None:
    """The nav entry (its label on one line, its own icon), the view in its frame in the user's colour
    mode, at a desktop width and at 900 px; a screenshot of each for CI's artifacts."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 60)
    _size(browser, size)
    _theme(browser, api_server, mode)
    browser.get(f"{api_server}/plugin/judgeflow")
    entry = "//a[.//*[normalize-space(text())='Quality']]"  # Airflow's nav: a Chakra button, its label a div
    label = wait.until(ready.presence_of_element_located((By.XPATH, entry + "//*[normalize-space(text())='Quality']")))
    fits = browser.execute_script(
        "const r = document.createRange(); r.selectNodeContents(arguments[0]);"
        "const lines = new Set([...r.getClientRects()].map(x => Math.round(x.top)));"
        "return lines.size === 1 && arguments[0].scrollWidth <= arguments[0].clientWidth + 1",
        label,
    )
    assert fits, "the nav label wraps or is cut"
    icon = browser.find_element(By.XPATH, entry + "//img[contains(@src, '/judgeflow/icon.svg')]")
    assert icon.get_attribute("src").endswith("?mode=dark") == (mode == "dark")
    wait.until(lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", icon))
    assert ("dark" in browser.find_element(By.TAG_NAME, "html").get_attribute("class")) == (mode == "dark")
    frame = wait.until(ready.presence_of_element_located((By.TAG_NAME, "iframe")))
    assert frame.get_attribute("src").endswith("/judgeflow/")
    browser.switch_to.frame(frame)
    try:
        _assert_overview_rendered(browser, wait)
        assert browser.execute_script("return document.documentElement.dataset.theme") == mode
        shot = ARTIFACTS / f"ui_view_{mode}_{size}.png"
        browser.switch_to.default_content()
        time.sleep(1)
        browser.save_screenshot(str(shot))
        assert shot.stat().st_size > 20_000
        print(f"\nscreenshot: {shot}")
    finally:
        browser.switch_to.default_content()


def test_the_view_follows_the_mode_switched_in_the_ui(browser: Any, api_server: str) -> None:
    """Switching Airflow's colour mode while the view is open turns the view too, without a reload."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 60)
    _size(browser, "1440")
    _theme(browser, api_server, "light")
    browser.get(f"{api_server}/plugin/judgeflow")
    frame = wait.until(ready.presence_of_element_located((By.TAG_NAME, "iframe")))
    browser.switch_to.frame(frame)
    wait.until(ready.presence_of_element_located((By.ID, "status")))
    background = "return getComputedStyle(document.body).backgroundColor"
    light = browser.execute_script(background)
    browser.switch_to.default_content()
    browser.execute_script("localStorage.setItem('theme', 'dark')")  # the UI's document, as its switch does
    browser.switch_to.frame(frame)
    try:
        wait.until(lambda d: d.execute_script("return document.documentElement.dataset.theme") == "dark")
        assert browser.execute_script(background) != light
        assert browser.execute_script(background) == "rgb(0, 0, 0)"
    finally:
        browser.switch_to.default_content()


def test_status_line_says_what_where_and_why(browser: Any, api_server: str) -> None:
    """The first thing on the page: the worst open regression, its figures against the baseline, and a
    deep link to the responses that explain it (their rationales redacted)."""
    from selenium.webdriver.common.by import By

    _size(browser, "1440")
    browser.get(f"{api_server}/judgeflow/")
    status = browser.find_element(By.ID, "status")
    assert "Regression worsening: accuracy in topic=shipping" in status.text
    assert "open since 2026-11-19" in status.text and "against its reference" in status.text
    why = browser.find_elements(By.CSS_SELECTOR, "#why tr")
    assert 2 <= len(why) <= 4  # header + up to 3 responses
    assert "sk-ant-" not in browser.page_source and "@example.com" not in browser.page_source
    status.find_element(By.TAG_NAME, "a").click()
    assert browser.current_url.endswith("/judgeflow/responses?segment=topic%3Dshipping")
    topics = browser.execute_script(
        "const t = document.getElementById('lowest');"
        "const col = [...t.rows[0].cells].findIndex(c => c.textContent === 'topic');"
        "return [...t.rows].slice(1).map(r => r.cells[col].textContent)"
    )
    assert topics and set(topics) == {"shipping"}
    assert browser.find_element(By.ID, "segment-select").get_attribute("value") == "topic=shipping"
    assert (
        httpx.get(
            f"{api_server}/judgeflow/responses?segment=secret%3Dx",
            headers={"Authorization": f"Bearer {_token(api_server)}"},
            timeout=30,
        ).status_code
        == 400
    )


def test_pages_at_900_px_and_other_pages(browser: Any, api_server: str) -> None:
    """At 900 px nothing makes the page scroll sideways (wide tables scroll in their box) and the charts
    fit; the Segments and Rubric versions pages show their data."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    _size(browser, "900")
    _theme(browser, api_server, "light")
    for page in PAGES:
        browser.get(f"{api_server}/judgeflow/{page}")
        _assert_images_loaded(browser, optional=page != "")
        width = browser.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1], (page, width)
        assert browser.execute_script(
            "return [...document.images].every(i => i.getBoundingClientRect().right <= window.innerWidth)"
        ), page
    browser.get(f"{api_server}/judgeflow/segments")
    row = WebDriverWait(browser, 60).until(
        ready.presence_of_element_located((By.XPATH, "//tr[td[1]='accuracy [topic=shipping]']"))
    )
    assert row.get_attribute("class") == "regression"
    browser.get(f"{api_server}/judgeflow/rubrics")
    assert "0.78 [0.70, 0.85]" in browser.find_element(By.ID, "rubrics").text


@pytest.mark.parametrize("mode", ["light", "dark"])
def test_no_critical_accessibility_violations(browser: Any, api_server: str, mode: str) -> None:
    """axe-core (the npm package, installed by ``make test``; never fetched by the page) on every page."""
    if not AXE.exists():
        service_missing(f"{AXE.relative_to(ROOT)} is missing: run `make test` (npm ci in devkit/browser)")
    source = AXE.read_text(encoding="utf-8")
    _size(browser, "1440")
    _theme(browser, api_server, mode)
    browser.set_script_timeout(120)
    found = {}
    for page in PAGES:
        browser.get(f"{api_server}/judgeflow/{page}")
        browser.execute_script(source)
        violations = browser.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "axe.run(document)"
            ".then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, n: v.nodes.length}))))"
            ".catch(e => done([{id: 'axe failed: ' + e, impact: 'critical', n: 0}]));"
        )
        found[page or "overview"] = violations
    print(f"\naxe-core {mode}: " + json.dumps(found))
    critical = {page: [v for v in vs if v["impact"] == "critical"] for page, vs in found.items()}
    assert not any(critical.values()), critical


def _assert_overview_rendered(driver: Any, wait: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready

    row = wait.until(ready.presence_of_element_located((By.XPATH, "//tr[td[1]='accuracy in topic=shipping']")))
    assert row.get_attribute("class") == "worsening"
    assert "recovered" in driver.find_element(By.XPATH, "//tr[td[1]='tone in topic=billing']").text
    assert len(driver.find_elements(By.CSS_SELECTOR, "#health tr")) == 15  # header + 14 runs
    _assert_images_loaded(driver)


def _assert_images_loaded(driver: Any, *, optional: bool = False) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    def loaded(d: Any) -> bool:
        return bool(d.execute_script("return [...document.images].every(i => i.complete && i.naturalWidth > 300)"))

    if not optional:
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
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1440,1000"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def test_accepting_in_the_browser_closes_the_regression_and_records_who_and_why(
    browser: Any, api_server: str, warehouse: Engine
) -> None:
    """The overview's *Accept* form, typed into and clicked as on-call would: the regression leaves the
    open ones, ``judge_alert_history`` records who accepted it and why, and the page says so in place of
    the form. Last in this module: it changes the alert state the tests above read."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    key = "accuracy in topic=shipping"
    _size(browser, "1440")
    browser.get(f"{api_server}/judgeflow/")
    row = WebDriverWait(browser, 60).until(ready.presence_of_element_located((By.XPATH, f"//tr[td[1]='{key}']")))
    form = row.find_element(By.CSS_SELECTOR, "form.accept")
    form.find_element(By.NAME, "reason").send_keys("the new shipping policy lowers accuracy by design")
    form.find_element(By.TAG_NAME, "button").click()
    said = WebDriverWait(browser, 60).until(
        lambda d: d.find_element(By.XPATH, f"//tr[td[1]='{key}']").find_elements(By.TAG_NAME, "span")
    )
    assert not row.find_elements(By.CSS_SELECTOR, "form.accept"), "the answer replaces the form"
    assert f"accepted '{key}' of rubric {RUBRIC}" in said[0].text and f"by {USER}" in said[0].text

    with warehouse.connect() as conn:
        history = conn.execute(
            text("SELECT outcome, accepted_by, reason FROM judge_alert_history WHERE regression = :key"), {"key": key}
        ).all()
        still_watched = conn.execute(
            text("SELECT COUNT(*) FROM judge_alert_state WHERE regression = :key"), {"key": key}
        ).scalar_one()
    assert [tuple(h) for h in history] == [("accepted", USER, "the new shipping policy lowers accuracy by design")]
    assert still_watched == 0
