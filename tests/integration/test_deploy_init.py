"""``judgeflow deploy init`` on a real PostgreSQL (metadata and warehouse) and Redis, as a subprocess.

What compose's first week would hurt: a judge pointed at the emulator because no key was in the
shell, connection secrets stored in plain text, a warehouse that logs in as the superuser, an existing
volume without the warehouse database. Each test has its own connection ids (a settings file),
warehouse database and role, over one metadata database migrated once. The second-run-changes-nothing
guarantee is held by the stack test (``tests/e2e``), which runs the same command twice.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from cryptography.fernet import Fernet
from sqlalchemy import Integer, MetaData, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ProgrammingError

from judgeflow.deploy.specs import EMULATOR_MARK
from judgeflow.storage.schema import all_tables
from judgeflow_devkit.sample_data import generate_responses, seed_warehouse
from judgeflow_devkit.stack import services
from tests.conftest import POSTGRES_URL, REDIS_ADDRESS, require_tcp

SERVER = make_url(POSTGRES_URL).set(database="postgres").render_as_string(hide_password=False)
JUDGEFLOW = str(Path(sys.executable).parent / "judgeflow")
EMULATOR = "http://judge-emulator:8765"


@dataclass
class Deployment:
    """One metadata database; runs ``judgeflow deploy init`` against it with a given environment."""

    metadata_url: str
    home: Path
    fernet_key: str

    def init(self, settings: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "JUDGEFLOW_", "ANTHROPIC"))}
        base.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.metadata_url,
                "AIRFLOW__CELERY__BROKER_URL": f"redis://{REDIS_ADDRESS[0]}:{REDIS_ADDRESS[1]}/0",
                "AIRFLOW__CORE__FERNET_KEY": self.fernet_key,
                **(env or {}),
            }
        )
        command = [JUDGEFLOW, "deploy", "init", "--skip-migrate", "--settings", str(settings), *args]
        result = subprocess.run(command, env=base, capture_output=True, text=True, check=False, timeout=120)
        assert "Traceback" not in result.stderr, result.stderr[-3000:]
        return result.returncode, result.stdout

    def connection(self, conn_id: str) -> dict[str, object] | None:
        engine = create_engine(self.metadata_url)
        try:
            with engine.connect() as conn:
                row = conn.execute(
                    text(
                        "SELECT host, password, is_extra_encrypted, description, extra "
                        "FROM connection WHERE conn_id = :c"
                    ),
                    {"c": conn_id},
                ).first()
        finally:
            engine.dispose()
        return None if row is None else dict(row._mapping)


@pytest.fixture(scope="module")
def deployment() -> Iterator[Deployment]:
    require_tcp("PostgreSQL", ("127.0.0.1", 5432))
    require_tcp("Redis", REDIS_ADDRESS)
    with (
        services.fresh_database(SERVER, prefix="jf_deploy_meta") as metadata_url,
        tempfile.TemporaryDirectory() as home,
    ):
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        env.update({"AIRFLOW_HOME": home, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url})
        airflow = str(Path(sys.executable).parent / "airflow")
        subprocess.run([airflow, "db", "migrate"], env=env, capture_output=True, check=True, timeout=300)
        yield Deployment(metadata_url=metadata_url, home=Path(home), fernet_key=Fernet.generate_key().decode())


@pytest.fixture
def names(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Connection ids of this test (in a settings file), a warehouse database and a role; dropped after."""
    tag = services.unique_name("t")
    ids = {k: f"{k}_{tag}" for k in ("anthropic", "warehouse", "cache", "slack")}
    settings = tmp_path / "judgeflow.yaml"
    settings.write_text(yaml.safe_dump({"connections": ids}), encoding="utf-8")
    yield {**ids, "settings": str(settings), "database": f"jf_deploy_wh_{tag}", "role": f"jf_deploy_role_{tag}"}
    admin = create_engine(SERVER, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "jf_deploy_wh_{tag}" WITH (FORCE)'))
        conn.execute(text(f'DROP ROLE IF EXISTS "jf_deploy_role_{tag}"'))
    admin.dispose()


def test_the_judge_points_at_the_emulator_only_when_asked_and_stays_refused_after(
    deployment: Deployment, names: dict[str, str]
) -> None:
    settings = Path(names["settings"])
    # No key in the environment, no emulator asked for: no judge is made up, and init fails saying why.
    # The Fernet key is empty, so what it stores is in plain text: a deployment of the old compose file.
    rc, out = deployment.init(
        settings, "--cache-url", "redis://127.0.0.1:6379/3", env={"AIRFLOW__CORE__FERNET_KEY": ""}
    )
    assert rc == 1, out
    assert "problem    fernet key" in out
    assert f"problem    judge: connection {names['anthropic']!r} does not exist and ANTHROPIC_API_KEY" in out
    assert deployment.connection(names["anthropic"]) is None
    cache = deployment.connection(names["cache"])
    assert cache is not None and cache["is_extra_encrypted"] is False and cache["extra"] == '{"db": 3}'

    # A trial, asked for explicitly: the judge is the emulator, marked as such; plain text gets encrypted.
    key = deployment.fernet_key
    rc, out = deployment.init(settings, "--emulator-url", EMULATOR)
    assert rc == 0, out
    assert f"created    connection {names['anthropic']}: the emulator at {EMULATOR}" in out
    assert "updated    stored connections: encrypted with the Fernet key" in out and names["cache"] in out
    cache = deployment.connection(names["cache"])
    assert cache is not None and cache["is_extra_encrypted"] is True
    assert Fernet(key).decrypt(str(cache["extra"]).encode()) == b'{"db": 3}', "encrypted, value kept"

    # Going live with a key, the trial's judge still there: refused, and the connection is not replaced.
    rc, out = deployment.init(settings, env={"ANTHROPIC_API_KEY": "sk-ant-real"})
    assert rc == 1, out
    assert f"problem    connection {names['anthropic']}: (metadata database) points at the emulator" in out
    judge = deployment.connection(names["anthropic"])
    assert judge is not None and judge["host"] == EMULATOR and judge["description"] == EMULATOR_MARK


def test_the_warehouse_role_gets_its_database_tables_and_only_its_grants(
    deployment: Deployment, names: dict[str, str]
) -> None:
    settings = Path(names["settings"])
    admin_url = make_url(POSTGRES_URL).set(database=names["database"]).render_as_string(hide_password=False)
    env = {
        "ANTHROPIC_API_KEY": "sk-ant-test",
        "JUDGEFLOW_WAREHOUSE_PASSWORD": "role-secret",
    }
    args = ("--warehouse-admin-url", admin_url, "--warehouse-role", names["role"])
    # An existing server without the warehouse database (a volume from before): init creates it.
    rc, out = deployment.init(settings, *args, env=env)
    assert rc == 0, out
    assert f"created    warehouse database {names['database']}" in out
    assert "waiting    source table app_responses" in out, "no source yet: its grant waits for it"

    admin = create_engine(admin_url)
    try:
        seed_warehouse(admin, generate_responses(count=20, end=dt.datetime(2026, 3, 2, tzinfo=dt.UTC), seed=3))
        with admin.begin() as conn:
            conn.execute(text("CREATE TABLE app_secrets (id int)"))
        rc, out = deployment.init(settings, *args, env=env)
        assert rc == 0, out
        assert "created    judgeflow's tables: " in out and "judge_scores" in out
        assert "SELECT on TABLE app_responses" in out
        login = deployment.connection(names["warehouse"])
        assert login is not None and login["host"] == "127.0.0.1"
        _assert_only_judgeflows_grants(admin_url, names["role"])
    finally:
        admin.dispose()


def _assert_only_judgeflows_grants(admin_url: str, role: str) -> None:
    """As the role (trust auth: the URL names the user): the source and its tables, nothing else."""
    engine = create_engine(make_url(admin_url).set(username=role))
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")).scalar() is False
            assert conn.execute(text("SELECT count(*) FROM app_responses")).scalar() == 20
            conn.execute(text(
                "INSERT INTO judge_calibration_runs (rubric_name, rubric_version, model, golden_set, items, judged, "
                "canaries_total, canaries_failed, cost_usd, passed, reason, calibrated_at) "
                "VALUES ('r', 'v', 'm', 'g', 1, 1, 0, 0, 0, true, '', now())"
            ))  # fmt: skip  # the serial id: USAGE on its sequence
            conn.rollback()
            for table in all_tables(MetaData(), Integer()):  # every table of this release, new ones included
                conn.execute(text(f"SELECT count(*) FROM {table.name}"))
        for forbidden in (
            "SELECT * FROM app_secrets",
            "CREATE TABLE judge_extra (id int)",
            "DELETE FROM app_responses",
        ):
            with engine.connect() as conn, pytest.raises(ProgrammingError, match="permission denied"):
                conn.execute(text(forbidden))
    finally:
        engine.dispose()
