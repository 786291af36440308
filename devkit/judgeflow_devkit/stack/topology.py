"""The environment every Airflow process of the stack shares, and the command of each service.

This is ``docker-compose.yaml``'s ``x-airflow-common`` environment, native: the same executor,
metadata database, broker, secrets (Fernet key, JWT secret and issuer, a separate API secret key)
and execution API URL in every process. The connections are not variables: ``judgeflow deploy
init`` creates them in the metadata database, as compose's ``airflow-init`` does, with the same
flags (:data:`INIT_FLAGS`, :func:`init_command`). What differs per process (a worker's name and
log-server port) is added by :func:`service_env`.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

from judgeflow_devkit import PROJECT_ROOT
from judgeflow_devkit.stack.identity import WORKER_NAME_VARIABLE

POOL_NAME = "judge_api"
API_USER = "judgeflow"
INIT_FLAGS = frozenset({"--pool-slots", "--cache-url", "--warehouse-role"})
"""The flags of ``judgeflow deploy init`` here and in docker-compose.yaml's airflow-init (a test holds them equal)."""
INIT_ENVIRONMENT = (
    "JUDGEFLOW_WAREHOUSE_ADMIN_URL",
    "JUDGEFLOW_WAREHOUSE_PASSWORD",
    "JUDGEFLOW_EMULATOR_URL",
    "SLACK_WEBHOOK_URL",
)
"""What init reads from its environment here; compose passes each (``environment`` or ``.env``)."""

# The caller's Airflow and judgeflow settings (a test session's, say) must not leak into the stack:
# it runs the DAG as a deployment would, with only what this module sets.
_NOT_INHERITED = ("AIRFLOW", "JUDGEFLOW_")
_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy")


@dataclass(frozen=True, kw_only=True)
class StackEndpoints:
    """Where the stack's pieces are: all local, all private to one run."""

    airflow_home: Path
    metadata_url: str  # SQLAlchemy URL, postgresql+psycopg://…
    broker_url: str
    cache_url: str
    warehouse_url: str  # the warehouse database, as its administrator (init creates the role)
    warehouse_role: str  # judgeflow's role, created by init; what judge_warehouse logs in as
    emulator_url: str
    api_port: int
    dags_folder: Path  # the project's DAG files, and a downstream DAG on the suites' scores Assets
    include_dir: Path  # the suites (include/judgeflow.yaml + include/suites/), read at parse time
    worker_concurrency: int
    slack_url: str  # the local webhook receiver standing in for on-call's Slack
    run_deadline_hours: float  # the DAG's deadline alert, short enough to pass during a run

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"


@dataclass(frozen=True)
class StackSecrets:
    """What compose's ``.env`` holds, generated per run (``deploy/new-env.sh`` does it for compose)."""

    jwt_secret: str
    jwt_issuer: str
    api_secret_key: str
    fernet_key: str
    warehouse_password: str

    @classmethod
    def generate(cls) -> StackSecrets:
        from cryptography.fernet import Fernet

        return cls(
            jwt_secret=secrets.token_urlsafe(32),
            jwt_issuer=f"judgeflow-stack-{secrets.token_hex(4)}",
            api_secret_key=secrets.token_urlsafe(32),
            fernet_key=Fernet.generate_key().decode(),
            warehouse_password=secrets.token_hex(16),
        )


def airflow_bin() -> str:
    """The ``airflow`` script of the running virtualenv."""
    return str(Path(sys.executable).parent / "airflow")


def init_command(endpoints: StackEndpoints, *, pool_slots: int) -> list[str]:
    """``judgeflow deploy init`` with the flags compose's airflow-init gives it (:data:`INIT_FLAGS`)."""
    judgeflow = str(Path(sys.executable).parent / "judgeflow")
    return [
        judgeflow, "deploy", "init",
        "--pool-slots", str(pool_slots),
        "--cache-url", endpoints.cache_url,
        "--warehouse-role", endpoints.warehouse_role,
    ]  # fmt: skip


def init_env(shared: dict[str, str], endpoints: StackEndpoints, stack_secrets: StackSecrets) -> dict[str, str]:
    """``shared`` plus what compose's init reads from ``.env``: the emulator asked for by name (a trial)."""
    return {
        **shared,
        "JUDGEFLOW_WAREHOUSE_ADMIN_URL": endpoints.warehouse_url,
        "JUDGEFLOW_WAREHOUSE_PASSWORD": stack_secrets.warehouse_password,
        "JUDGEFLOW_EMULATOR_URL": endpoints.emulator_url,
        "SLACK_WEBHOOK_URL": endpoints.slack_url,
    }


def shared_env(endpoints: StackEndpoints, *, stack_secrets: StackSecrets, api_password_file: Path) -> dict[str, str]:
    """What every Airflow service sees; the parent's AIRFLOW_*, JUDGEFLOW_* and proxy variables are dropped."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_NOT_INHERITED) and k not in _PROXY_VARIABLES}
    result_backend = "db+" + endpoints.metadata_url
    env.update(
        {
            "AIRFLOW_HOME": str(endpoints.airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(endpoints.dags_folder),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__PARALLELISM": "32",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "judgeflow_devkit.stack.identity.worker_hostname",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{endpoints.api_url}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{API_USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(api_password_file),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": endpoints.metadata_url,
            "AIRFLOW__CELERY__BROKER_URL": endpoints.broker_url,
            "AIRFLOW__CELERY__RESULT_BACKEND": result_backend,
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(endpoints.worker_concurrency),
            "AIRFLOW__API__BASE_URL": endpoints.api_url,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(endpoints.api_port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__SECRET_KEY": stack_secrets.api_secret_key,
            "AIRFLOW__API_AUTH__JWT_SECRET": stack_secrets.jwt_secret,
            "AIRFLOW__API_AUTH__JWT_ISSUER": stack_secrets.jwt_issuer,
            "AIRFLOW__CORE__FERNET_KEY": stack_secrets.fernet_key,
            # On: Asset events start runs (the search suite, the downstream DAG). The support suite's cron
            # makes one run for today at start, which judges nothing and ends before the checked runs.
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "True",
            "JUDGEFLOW_RUN_DEADLINE_HOURS": str(endpoints.run_deadline_hours),
            "JUDGEFLOW_INCLUDE_DIR": str(endpoints.include_dir),
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }
    )
    return env


def service_env(
    shared: dict[str, str], *, worker_name: str | None = None, log_port: int | None = None
) -> dict[str, str]:
    """``shared`` plus what one process needs of its own: a worker's identity and log-server port."""
    env = dict(shared)
    if worker_name is not None:
        env[WORKER_NAME_VARIABLE] = worker_name
    if log_port is not None:
        env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] = str(log_port)
        env["AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"] = str(log_port)
    return env


def write_password_file(path: Path) -> str:
    """The simple auth manager's passwords file for :data:`API_USER`; returns the password."""
    password = secrets.token_urlsafe(16)
    path.write_text(json.dumps({API_USER: password}), encoding="utf-8")
    return password


def worker_command(name: str) -> list[str]:
    return [airflow_bin(), "celery", "worker", "--celery-hostname", f"{name}@%h", "--without-mingle"]


SERVICE_COMMANDS: dict[str, list[str]] = {
    "api-server": ["api-server"],
    "scheduler": ["scheduler"],
    "dag-processor": ["dag-processor"],
    "triggerer": ["triggerer"],
}
"""``airflow <args>`` of each single-instance service, as in docker-compose.yaml."""
