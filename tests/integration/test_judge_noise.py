"""Judge noise through the real task functions: a noisy emulator, the noise sample, its figures.

The emulator's ``score_noise`` knob moves each asked criterion one step with a known probability
(:func:`judgeflow_devkit.emulator.scoring.with_noise`); its noise-free score is
:func:`~judgeflow_devkit.emulator.scoring.emulated_scores` of the response text. So every stored
ask (each primary verdict judgeflow stored, and each second ask in ``judge_noise``) shows whether
the judge moved, and the share that moved must fall within its confidence interval around the
knob. The run also keeps every primary score when second asks fail, asks the noise sample past a
warm verdict cache, and counts the second asks' cost in ``judge_runs``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import secrets
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text

from judgeflow.rubric import load_rubric
from judgeflow.tasks import pipeline
from judgeflow_devkit.emulator import EmulatorConfig, EmulatorServer, emulated_scores
from judgeflow_devkit.sample_data import generate_responses, seed_warehouse
from tests.conftest import ROOT, anthropic_connection, sqlite_connection
from tests.support.dag_runs import write_settings
from tests.support.warehouse_checks import count, run_row

RUN_DATE = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
KNOB = 0.2
RUBRIC = load_rubric(ROOT / "include" / "rubrics", "helpfulness")


def run_context(run_id: str, **params: Any) -> dict[str, Any]:
    dag_run = SimpleNamespace(dag_id="llm_judge_daily", run_id=run_id, run_after=RUN_DATE)
    return {"dag_run": dag_run, "logical_date": RUN_DATE, "params": params}


@pytest.fixture
def warehouse(tmp_path: Path, airflow_db: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    path = tmp_path / "warehouse.sqlite"
    engine = create_engine(f"sqlite:///{path}")
    nonce = secrets.token_hex(4)
    rows = generate_responses(count=500, end=RUN_DATE, seed=17)
    seed_warehouse(engine, ({**r, "response": f"{r['response']} (ref {nonce}-{r['id']})"} for r in rows if r["id"] > 5))
    monkeypatch.setenv("AIRFLOW_CONN_JUDGE_WAREHOUSE", sqlite_connection(path))
    yield engine
    engine.dispose()


def run_once(settings: Path, emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch, **params: Any) -> str:
    monkeypatch.setenv("AIRFLOW_CONN_ANTHROPIC_DEFAULT", anthropic_connection(emulator.url))
    run_id = f"noise_{secrets.token_hex(3)}"
    batches = pipeline.extract_responses(str(settings), run_context(run_id, **params))
    results = [pipeline.score_batch(str(settings), b, run_context(run_id, **params)) for b in batches]
    pipeline.summarize_run(str(settings), results, run_context(run_id, **params))
    return run_id


def responses(engine: Engine) -> dict[int, str]:
    with engine.connect() as conn:
        return {int(i): r for i, r in conn.execute(text("SELECT id, response FROM app_responses"))}


def truth(response: str) -> dict[str, int]:
    return emulated_scores(response, RUBRIC.criterion_names, RUBRIC.scale.min, RUBRIC.scale.max)


def wilson(k: int, n: int, z: float = 2.58) -> tuple[float, float]:
    """The 99% Wilson interval of a proportion."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def test_measured_noise_matches_the_knob(
    tmp_path: Path, warehouse: Engine, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = write_settings(tmp_path, cache={"enabled": False}, noise={"rate": 0.5}, batching={"batch_size": 200})
    with EmulatorServer(EmulatorConfig(latency_median_s=0.0, score_noise=KNOB, seed=3)) as emulator:
        run_id = run_once(settings, emulator, monkeypatch)
        requests = emulator.stats()["requests_total"]
    texts = responses(warehouse)
    with warehouse.connect() as conn:
        primary = conn.execute(
            text(
                "SELECT c.response_id, c.criterion, c.score FROM judge_criterion_scores c JOIN judge_scores s"
                " USING (response_id, rubric_name, rubric_version) WHERE s.cache_hit = 0"
            )
        ).all()
        pairs = conn.execute(text("SELECT response_id, first_scores, second_scores, spread FROM judge_noise")).all()
        day = conn.execute(text("SELECT * FROM judge_noise_daily")).mappings().one()
    asks = [(score, truth(texts[int(rid)])[criterion]) for rid, criterion, score in primary]
    for rid, _, second, _ in pairs:
        second = json.loads(second) if isinstance(second, str) else second
        asks += [(second[c], truth(texts[int(rid)])[c]) for c in RUBRIC.criterion_names]
    moved = sum(asked != true for asked, true in asks)
    low, high = wilson(moved, len(asks))
    print(
        f"\nnoise knob {KNOB}: {moved} of {len(asks)} asks moved = {moved / len(asks):.3f}, "
        f"99% CI [{low:.3f}, {high:.3f}]"
    )
    print(
        f"judge_noise_daily: responses={day['responses']} pairs={day['pairs']} kappa={day['kappa']:.3f} "
        f"[{day['kappa_low']:.3f}, {day['kappa_high']:.3f}] mean_abs_spread={day['mean_abs_spread']:.3f} "
        f"unstable={day['unstable']}"
    )
    assert all(abs(asked - true) <= 1 for asked, true in asks)
    assert low <= KNOB <= high

    scored = count(warehouse, "SELECT COUNT(*) FROM judge_scores WHERE cache_hit = 0")
    assert 0.4 * scored < len(pairs) < 0.6 * scored, "about half the judged responses asked twice"
    assert requests == scored + len(pairs), "one extra request per noise pair, nothing else"
    assert day["responses"] == len(pairs) and day["pairs"] == 3 * len(pairs)
    assert day["kappa_low"] <= day["kappa"] <= day["kappa_high"] < 1.0
    # two asks each moved with probability p, independently: the pairs disagree on a criterion at least
    # as often as one ask moves and at most twice as often
    disagree = day["mean_abs_spread"]
    assert KNOB * 0.8 < disagree < 2 * KNOB * 1.2
    row = run_row(warehouse, run_id)
    noise_cost = count(warehouse, "SELECT CAST(SUM(cost_usd) * 1000000 AS INTEGER) FROM judge_noise") / 1e6
    score_cost = count(warehouse, "SELECT CAST(SUM(cost_usd) * 1000000 AS INTEGER) FROM judge_scores") / 1e6
    assert noise_cost > 0 and row["cost_usd"] == pytest.approx(score_cost + noise_cost, abs=1e-5)
    details = json.loads(row["details"]) if isinstance(row["details"], str) else row["details"]
    assert details["noise"]["asked"] == len(pairs) and details["noise"]["failed"] == 0

    # the switch: the regression statistics leave the unstable verdicts out
    unstable = count(warehouse, "SELECT COUNT(*) FROM judge_noise WHERE unstable")
    assert unstable == day["unstable"] > 0
    n_overall = "SELECT current_n FROM judge_comparisons WHERE run_key = :k AND metric = 'overall' AND segment = ''"
    key = f"llm_judge_daily/{run_id}"
    pipeline.compare_scores(str(settings), run_context(run_id))
    assert count(warehouse, n_overall, k=key) == count(warehouse, "SELECT COUNT(*) FROM judge_scores")
    write_settings(tmp_path, cache={"enabled": False}, noise={"rate": 0.5, "exclude_unstable": True})
    pipeline.compare_scores(str(settings), run_context(run_id))
    assert count(warehouse, n_overall, k=key) == count(warehouse, "SELECT COUNT(*) FROM judge_scores") - unstable


def test_a_failing_second_ask_loses_no_primary_score(
    tmp_path: Path, warehouse: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = write_settings(
        tmp_path, cache={"enabled": False}, noise={"rate": 1.0}, judge={"max_attempts": 1}, batching={"batch_size": 200}
    )
    with EmulatorServer(EmulatorConfig(latency_median_s=0.0, rate_500=0.3, seed=5)) as emulator:
        run_id = run_once(settings, emulator, monkeypatch)
    row = run_row(warehouse, run_id)
    failed = count(warehouse, "SELECT COUNT(*) FROM judge_noise WHERE error IS NOT NULL")
    orphans = count(
        warehouse,
        "SELECT COUNT(*) FROM judge_noise n WHERE NOT EXISTS (SELECT 1 FROM judge_scores s"
        " WHERE s.response_id = n.response_id AND s.rubric_name = n.rubric_name)",
    )
    assert failed > 20, "some second asks failed"
    assert orphans == 0 and row["unaccounted"] == 0
    assert row["scored"] + row["errors"] == row["extracted"]
    assert count(warehouse, "SELECT COUNT(*) FROM judge_noise WHERE error IS NOT NULL AND spread IS NOT NULL") == 0


def test_the_second_ask_bypasses_a_warm_verdict_cache(
    tmp_path: Path, warehouse: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    warm = write_settings(tmp_path, batching={"batch_size": 200})
    with EmulatorServer(EmulatorConfig(latency_median_s=0.0)) as emulator:
        run_once(warm, emulator, monkeypatch)
    noisy = write_settings(tmp_path, noise={"rate": 0.3}, batching={"batch_size": 200})
    with EmulatorServer(EmulatorConfig(latency_median_s=0.0)) as emulator:
        run_id = run_once(noisy, emulator, monkeypatch, rescore=True)
        requests = emulator.stats()["requests_total"]
    pairs = count(warehouse, "SELECT COUNT(*) FROM judge_noise WHERE dag_run_id = :r", r=run_id)
    hits = count(warehouse, "SELECT COUNT(*) FROM judge_scores WHERE dag_run_id = :r AND cache_hit = 0", r=run_id)
    assert pairs > 50 and hits == 0, "every primary verdict came from the cache"
    assert requests == pairs, "yet each noise pair asked the judge"


def test_second_asks_spend_the_run_budget(tmp_path: Path, warehouse: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    cap = 0.15  # the whole run, second asks included, costs about $0.64
    settings = write_settings(
        tmp_path,
        cache={"enabled": False},
        noise={"rate": 0.5},
        budget={"max_cost_usd_per_run": cap},
        batching={"batch_size": 200},
    )
    with EmulatorServer(EmulatorConfig(latency_median_s=0.0)) as emulator:
        run_id = run_once(settings, emulator, monkeypatch)
    row = run_row(warehouse, run_id)
    noise_cost = count(warehouse, "SELECT CAST(SUM(cost_usd) * 1000000 AS INTEGER) FROM judge_noise") / 1e6
    score_cost = count(warehouse, "SELECT CAST(SUM(cost_usd) * 1000000 AS INTEGER) FROM judge_scores") / 1e6
    print(f"\nbudget ${cap}: scores ${score_cost:.4f} + second asks ${noise_cost:.4f}, run row ${row['cost_usd']:.4f}")
    refused = count(warehouse, "SELECT COUNT(*) FROM judge_noise WHERE error LIKE '%budget%' AND spread IS NULL")
    assert refused > 0, "second asks were refused by the run's cap, as first asks are"
    assert row["cost_usd"] == pytest.approx(score_cost + noise_cost, abs=1e-5)
    assert row["cost_usd"] <= cap, "the cap holds for first and second asks together"
    assert row["unaccounted"] == 0 and row["scored"] + row["errors"] == row["extracted"]
    assert count(warehouse, "SELECT COUNT(*) FROM judge_errors WHERE kind = 'budget_exhausted'") > 0
