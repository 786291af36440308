"""docker-compose.yaml and the Dockerfile, read statically (no Docker engine runs here).

The file is parsed and interpolated as Compose does (``tests.support.compose``), with a ``.env``
written by ``deploy/new-env.sh`` from ``.env.example``. What would hurt a team in its first week:
an empty or shared secret, the judge pointed at the emulator by accident, the cache in the broker's
Redis database, ports open to the network, a service of the official layout missing, an Airflow
service with another image or JWT secret. What compose's init runs is run for real by the native
stack test (``tests/e2e``), with the same command and flags.
"""

from __future__ import annotations

import ast
import json
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.fernet import Fernet

from judgeflow.deploy.init import JUDGE_POOL
from judgeflow.deploy.specs import cache_spec
from tests.support import ROOT
from tests.support.compose import MissingVariable, load, read_env

COMPOSE = ROOT / "docker-compose.yaml"
AIRFLOW_SERVICES = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-worker": "celery worker",
    "airflow-triggerer": "triggerer",
    "airflow-init": None,  # judgeflow deploy init
}
OFFICIAL_LAYOUT = {  # Airflow 3's docker-compose.yaml for the CeleryExecutor: each service, or why not
    "postgres": None,
    "redis": None,
    "airflow-apiserver": None,
    "airflow-scheduler": None,
    "airflow-dag-processor": None,
    "airflow-worker": None,
    "airflow-triggerer": None,
    "airflow-init": None,
    "airflow-cli": None,
    "flower": None,
}
SECRETS = {  # Airflow setting -> the .env variable that must hold it
    "AIRFLOW__CORE__FERNET_KEY": "AIRFLOW_FERNET_KEY",
    "AIRFLOW__API_AUTH__JWT_SECRET": "AIRFLOW_JWT_SECRET",
    "AIRFLOW__API__SECRET_KEY": "AIRFLOW_API_SECRET_KEY",
    "AIRFLOW__API_AUTH__JWT_ISSUER": "AIRFLOW_JWT_ISSUER",
}
SHARED_SETTINGS = (
    "AIRFLOW__CORE__EXECUTOR",
    "AIRFLOW__CORE__AUTH_MANAGER",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "AIRFLOW__CELERY__BROKER_URL",
    "AIRFLOW__CELERY__RESULT_BACKEND",
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
    *SECRETS,
)


@pytest.fixture(scope="module")
def env_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``.env`` as the README makes it: ``sh deploy/new-env.sh``, then the API key."""
    target = tmp_path_factory.mktemp("compose") / ".env"
    subprocess.run(["sh", str(ROOT / "deploy" / "new-env.sh"), str(target)], check=True, capture_output=True)
    target.write_text(target.read_text().replace("ANTHROPIC_API_KEY=\n", "ANTHROPIC_API_KEY=sk-ant-test\n"))
    return target


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def services(env_file: Path) -> dict[str, Any]:
    return load(COMPOSE, env_file)["services"]


def init_command(services: dict[str, Any]) -> list[str]:
    """The ``judgeflow deploy init`` line of the init service's script, split as bash would."""
    script = services["airflow-init"]["command"][1]
    line = next(line.strip() for line in script.splitlines() if "judgeflow deploy init" in line)
    return shlex.split(line.removeprefix("exec "))


def dag_pool() -> str:
    """The pool the DAG file puts score tasks in, read without importing Airflow."""
    tree = ast.parse((ROOT / "dags" / "llm_judge_daily.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "JUDGE_POOL" for t in node.targets):
            return str(ast.literal_eval(node.value))
    raise AssertionError("dags/llm_judge_daily.py defines no JUDGE_POOL")


def test_every_service_of_the_official_layout_is_there(services: dict[str, Any]) -> None:
    missing = {name for name, reason in OFFICIAL_LAYOUT.items() if reason is None and name not in services}
    assert not missing, f"services of the official layout missing without a reason: {missing}"
    for name, command in AIRFLOW_SERVICES.items():
        if command is not None:
            assert services[name]["command"] == command, name
    groomer = services["airflow-log-groomer"]
    assert groomer["command"] == ["bash", "/clean-logs"], "the image's log groomer, as the Helm chart runs it"
    assert int(groomer["environment"]["AIRFLOW__LOG_RETENTION_DAYS"]) > 0
    logs = {m for m in services["airflow-worker"]["volumes"] if m.endswith(":/opt/airflow/logs")}
    assert logs and logs <= set(groomer["volumes"]), "it grooms the volume the tasks log to"


def test_secrets_are_required_generated_and_apart(raw: dict[str, Any], env_file: Path, tmp_path: Path) -> None:
    env = raw["x-airflow-common"]["environment"]
    for setting, variable in SECRETS.items():
        assert env[setting].startswith(f"${{{variable}:?"), f"{setting}: required, no default"
    assert re.search(r"\$\{POSTGRES_PASSWORD:\?", raw["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"])
    generated = read_env(env_file)
    values = [generated[v] for v in (*SECRETS.values(), "POSTGRES_PASSWORD", "JUDGEFLOW_WAREHOUSE_PASSWORD")]
    assert all(values) and len(set(values)) == len(values), "every secret set, none reused"
    Fernet(generated["AIRFLOW_FERNET_KEY"])  # raises unless a valid Fernet key
    without_fernet = tmp_path / ".env"
    without_fernet.write_text(env_file.read_text().replace("AIRFLOW_FERNET_KEY=", "#"))
    with pytest.raises(MissingVariable, match="AIRFLOW_FERNET_KEY"):
        load(COMPOSE, without_fernet)
    again = subprocess.run(["sh", str(ROOT / "deploy" / "new-env.sh"), str(env_file)], capture_output=True, text=True)
    assert again.returncode == 1 and "not overwritten" in again.stderr, "an existing .env (its Fernet key) is kept"


def test_env_is_kept_out_of_git_and_the_image() -> None:
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT, check=False)
    assert ignored.returncode == 0, ".env is git-ignored"
    assert ".env" in (ROOT / ".dockerignore").read_text().splitlines(), ".env is docker-ignored"


def test_airflow_services_share_image_secrets_and_executor_settings(services: dict[str, Any]) -> None:
    assert len({services[name]["image"] for name in AIRFLOW_SERVICES}) == 1
    assert {services[name].get("build") for name in AIRFLOW_SERVICES} == {"."}
    reference = services["airflow-scheduler"]["environment"]
    assert reference["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    for name in AIRFLOW_SERVICES:
        env = services[name]["environment"]
        for key in SHARED_SETTINGS:
            assert env.get(key) == reference.get(key), f"{name}: {key}"


def test_the_api_key_comes_from_env_file_only(raw: dict[str, Any], services: dict[str, Any]) -> None:
    assert "${ANTHROPIC_API_KEY" not in COMPOSE.read_text(), "never interpolated from the shell that runs `up`"
    assert services["airflow-init"]["env_file"] == [{"path": ".env", "required": True}]
    for name, service in services.items():
        assert "ANTHROPIC_API_KEY" not in service.get("environment", {}), name


def test_no_connection_points_at_the_emulator_outside_its_profile(services: dict[str, Any], env_file: Path) -> None:
    emulator = services["judge-emulator"]
    assert emulator["profiles"] == ["emulator"] and emulator["build"]["target"] == "devkit"
    port = emulator["command"][emulator["command"].index("--port") + 1]
    assert emulator["restart"] == "no", "a trial's emulator does not come back with the machine"
    for name, service in services.items():
        if "emulator" not in service.get("profiles", []):
            text = json.dumps(service)
            assert "judge-emulator" not in text and f":{port}" not in text, name
    assert "--emulator-url" not in init_command(services)
    assert not read_env(env_file).get("JUDGEFLOW_EMULATOR_URL"), "the sample .env asks for no emulator"
    example = (ROOT / ".env.example").read_text()
    assert f"# JUDGEFLOW_EMULATOR_URL=http://judge-emulator:{port}" in example, "a trial asks for it by name"


def test_the_cache_has_its_own_redis_database_as_airflow_reads_it(
    services: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.models.connection import Connection
    from airflow.providers.redis.hooks.redis import RedisHook
    from kombu.utils.url import parse_url

    command = init_command(services)
    spec = cache_spec("judge_cache", command[command.index("--cache-url") + 1])
    monkeypatch.setenv("AIRFLOW_CONN_JUDGE_CACHE", Connection(**spec.fields()).as_json())
    cache_db = RedisHook(redis_conn_id="judge_cache").get_conn().connection_pool.connection_kwargs["db"]
    broker = parse_url(services["airflow-worker"]["environment"]["AIRFLOW__CELERY__BROKER_URL"])
    assert broker["hostname"] == spec.host and int(broker["virtual_host"] or 0) == 0
    assert cache_db == 1, "RedisHook reads extra.db: the cache and limiter are in db 1, the broker in db 0"


def test_published_ports_are_on_loopback(services: dict[str, Any]) -> None:
    published = {name: s["ports"] for name, s in services.items() if s.get("ports")}
    assert "airflow-apiserver" in published and "postgres" not in published
    for name, ports in published.items():
        for port in ports:
            assert str(port).startswith("127.0.0.1:"), f"{name}: {port}"


def test_the_api_server_is_healthy_only_with_its_database(services: dict[str, Any]) -> None:
    test = services["airflow-apiserver"]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]
    assert "/api/v2/monitor/health" in test[3] and "['metadatabase']['status'] != 'healthy'" in test[3]


def test_init_runs_the_command_the_stack_test_runs(services: dict[str, Any]) -> None:
    from judgeflow_devkit.stack import topology

    command = init_command(services)
    assert command[:3] == ["judgeflow", "deploy", "init"]
    flags = {arg for arg in command if arg.startswith("--")}
    assert flags == topology.INIT_FLAGS, "compose and `make stack-test` run init with the same flags"
    init_env = services["airflow-init"]["environment"]
    assert init_env["JUDGEFLOW_WAREHOUSE_ADMIN_URL"].endswith("@postgres:5432/warehouse")
    example = read_env(ROOT / ".env.example")
    for variable in topology.INIT_ENVIRONMENT:
        assert variable in init_env or variable in example or f"# {variable}=" in (ROOT / ".env.example").read_text()
    assert dag_pool() == JUDGE_POOL
    for name in AIRFLOW_SERVICES:
        if name != "airflow-init":
            assert services[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"


def test_workers_reach_the_api_server_and_scale(services: dict[str, Any]) -> None:
    url = services["airflow-worker"]["environment"]["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"]
    assert url == "http://airflow-apiserver:8080/execution/"
    worker = services["airflow-worker"]
    assert "container_name" not in worker and "ports" not in worker, "--scale needs neither"
    assert worker["depends_on"]["airflow-apiserver"]["condition"] == "service_healthy"


def test_dockerfile_extends_the_official_airflow_33_image_and_installs_the_package() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    version = re.search(r"^ARG AIRFLOW_VERSION=(\S+)$", dockerfile, re.MULTILINE)
    assert version is not None and version.group(1).startswith("3.3.")
    assert re.search(r"^FROM apache/airflow:\$\{AIRFLOW_VERSION\}", dockerfile, re.MULTILINE)
    assert re.search(
        r'pip install .*-c /opt/judgeflow/constraints.txt "apache-airflow==\$\{AIRFLOW_VERSION\}" \\\n'
        r'\s+"/opt/judgeflow\$\{JUDGEFLOW_EXTRAS:\+\[\$JUDGEFLOW_EXTRAS\]\}"$',
        dockerfile,
        re.MULTILINE,
    )
    stages = re.findall(r"^FROM (.+)$", dockerfile, re.MULTILINE)
    assert stages[-1] == "production", "the default target is the production image, without the dev kit"
    production = dockerfile.split("AS devkit")[0]
    assert "devkit" not in production.split("AS production")[1], "nothing of the dev kit before its own stage"
    for needed in ("pyproject.toml", "plugins", "dags", "include"):
        assert re.search(rf"^COPY .*\b{needed}\b", dockerfile, re.MULTILINE), needed
