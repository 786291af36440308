"""docker-compose.yaml and the Dockerfile, read statically (no Docker engine runs here).

What would break a `docker compose up` quietly: an Airflow service on another image or with another
JWT secret (its task tokens are refused), another executor or broker, a pool or connection the DAG
needs that the init service does not create, a worker that cannot be scaled. The native stack test
(tests/e2e) runs the same topology for real.
"""

from __future__ import annotations

import ast
import re
import shlex
from typing import Any

import pytest
import yaml

from judgeflow.config import load_settings
from tests.support import ROOT

AIRFLOW_SERVICES = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-worker": "celery worker",
    "airflow-triggerer": "triggerer",
    "airflow-init": None,  # a bash script: migrate, pool, connections
}
SHARED_SETTINGS = (
    "AIRFLOW__CORE__EXECUTOR",
    "AIRFLOW__CORE__AUTH_MANAGER",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "AIRFLOW__CELERY__BROKER_URL",
    "AIRFLOW__CELERY__RESULT_BACKEND",
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__API__SECRET_KEY",
    "AIRFLOW__CORE__FERNET_KEY",
)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


def init_script(services: dict[str, Any]) -> str:
    command = services["airflow-init"]["command"]
    assert command[0] == "-c" and services["airflow-init"]["entrypoint"] == "/bin/bash"
    return str(command[1])


def dag_pool() -> str:
    """The pool the DAG file puts score tasks in, read without importing Airflow."""
    tree = ast.parse((ROOT / "dags" / "llm_judge_daily.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "JUDGE_POOL" for t in node.targets):
            return str(ast.literal_eval(node.value))
    raise AssertionError("dags/llm_judge_daily.py defines no JUDGE_POOL")


def test_all_services_of_the_celery_layout_are_there(services: dict[str, Any]) -> None:
    assert {"postgres", "redis", *AIRFLOW_SERVICES} <= set(services)
    for name, command in AIRFLOW_SERVICES.items():
        if command is not None:
            assert services[name]["command"] == command, name


def test_airflow_services_share_image_secret_and_executor_settings(services: dict[str, Any]) -> None:
    images = {services[name]["image"] for name in AIRFLOW_SERVICES}
    assert len(images) == 1, images
    assert {services[name].get("build") for name in AIRFLOW_SERVICES} == {"."}
    reference = services["airflow-scheduler"]["environment"]
    assert reference["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert reference["AIRFLOW__API_AUTH__JWT_SECRET"].startswith("${AIRFLOW_JWT_SECRET:?"), "no default secret"
    for name in AIRFLOW_SERVICES:
        env = services[name]["environment"]
        for key in SHARED_SETTINGS:
            assert env.get(key) == reference.get(key), f"{name}: {key}"


def test_workers_reach_the_api_server_and_scale(services: dict[str, Any]) -> None:
    url = services["airflow-worker"]["environment"]["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"]
    assert url == "http://airflow-apiserver:8080/execution/"
    assert "8080:8080" in services["airflow-apiserver"]["ports"]
    worker = services["airflow-worker"]
    assert "container_name" not in worker and "ports" not in worker, "--scale needs neither"
    assert worker["depends_on"]["airflow-apiserver"]["condition"] == "service_healthy"


def test_broker_and_judgeflow_use_different_redis_databases(services: dict[str, Any]) -> None:
    broker = services["airflow-worker"]["environment"]["AIRFLOW__CELERY__BROKER_URL"]
    cache = re.search(r"judge_cache --conn-uri \"(redis://[^\"]+)\"", init_script(services))
    assert cache is not None
    assert broker.rsplit("/", 1)[-1] != cache.group(1).rsplit("/", 1)[-1]


def test_init_migrates_and_creates_the_pool_and_connections_the_dag_needs(services: dict[str, Any]) -> None:
    script = init_script(services)
    commands = [shlex.split(line.strip()) for line in script.splitlines() if line.strip().startswith("airflow ")]
    assert commands[0] == ["airflow", "db", "migrate"]
    pools = [c[3] for c in commands if c[1:3] == ["pools", "set"]]
    assert pools == [dag_pool()]
    added = {c[3] for c in commands if c[1:3] == ["connections", "add"]}
    needed = load_settings(str(ROOT / "include" / "judgeflow.yaml")).connections
    assert {needed.anthropic, needed.warehouse, needed.cache, needed.slack} <= added
    for airflow_service in AIRFLOW_SERVICES:
        if airflow_service != "airflow-init":
            condition = services[airflow_service]["depends_on"]["airflow-init"]["condition"]
            assert condition == "service_completed_successfully", airflow_service


def test_the_emulator_profile_is_what_anthropic_default_falls_back_to(services: dict[str, Any]) -> None:
    emulator = services["judge-emulator"]
    assert emulator["profiles"] == ["emulator"]
    assert emulator["build"]["target"] == "devkit", "the production image has no dev kit; the emulator's has"
    assert emulator["command"][:2] == ["judgeflow-dev", "emulator"]
    port = emulator["command"][emulator["command"].index("--port") + 1]
    assert f'"host": "http://judge-emulator:{port}"' in init_script(services)


def test_the_warehouse_database_is_created_and_named_by_judge_warehouse(services: dict[str, Any]) -> None:
    mounts = services["postgres"]["volumes"]
    init_dir = next(m.split(":")[0] for m in mounts if "/docker-entrypoint-initdb.d" in m)
    sql = " ".join(p.read_text(encoding="utf-8") for p in sorted((ROOT / init_dir).glob("*.sql")))
    database = re.search(r"CREATE DATABASE (\w+)", sql)
    assert database is not None
    assert f'"schema": "{database.group(1)}"' in init_script(services)


def test_dockerfile_extends_the_official_airflow_33_image_and_installs_the_package() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    version = re.search(r"^ARG AIRFLOW_VERSION=(\S+)$", dockerfile, re.MULTILINE)
    assert version is not None and version.group(1).startswith("3.3.")
    assert re.search(r"^FROM apache/airflow:\$\{AIRFLOW_VERSION\}", dockerfile, re.MULTILINE)
    assert re.search(
        r'pip install .*-c /opt/judgeflow/constraints.txt "apache-airflow==\$\{AIRFLOW_VERSION\}" /opt/judgeflow$',
        dockerfile,
        re.MULTILINE,
    )
    stages = re.findall(r"^FROM (.+)$", dockerfile, re.MULTILINE)
    assert stages[-1] == "production", "the default target is the production image, without the dev kit"
    production = dockerfile.split("AS devkit")[0]
    assert "devkit" not in production.split("AS production")[1], "nothing of the dev kit before its own stage"
    for needed in ("pyproject.toml", "plugins", "dags", "include"):
        assert re.search(rf"^COPY .*\b{needed}\b", dockerfile, re.MULTILINE), needed
