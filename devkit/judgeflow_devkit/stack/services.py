"""The stateful services of one stack run, private to it so parallel runs never meet.

- a fresh PostgreSQL *database* for Airflow's metadata (``CREATE DATABASE`` with a unique name,
  ``DROP … WITH (FORCE)`` at the end, so a crashed worker's open connection cannot keep it);
- a fresh database for the warehouse, and the name of judgeflow's role in it (created by
  ``judgeflow deploy init``, dropped at the end);
- a private ``redis-server`` on a free port: Celery's broker (db 0) and judgeflow's cache and
  rate limiter (db 1), so no key of another session can collide with ours;
- free TCP ports, found by binding port 0.
"""

from __future__ import annotations

import secrets
import shutil
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from judgeflow_devkit.stack.processes import ProcessSet


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def unique_name(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(4)}"


@contextmanager
def fresh_database(server_url: str, prefix: str = "jf_stack") -> Iterator[str]:
    """Create a database with a unique name on the server of ``server_url``; yield its URL; drop it."""
    name = unique_name(prefix)
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass(frozen=True)
class RedisServer:
    port: int

    def url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"


def start_private_redis(processes: ProcessSet) -> RedisServer:
    """A redis-server of our own, started in ``processes`` (so it is stopped with the rest)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed")
    port = free_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    processes.start("redis", args, env={})
    client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.2)
    try:
        for _ in range(100):
            try:
                client.ping()
                return RedisServer(port=port)
            except redis.ConnectionError:
                time.sleep(0.1)
        raise RuntimeError(f"the private redis-server on port {port} did not answer")
    finally:
        client.close()


@contextmanager
def role_dropped_after(server_url: str, prefix: str = "jf_stack_role") -> Iterator[str]:
    """A unique role name, for a role someone else creates (``judgeflow deploy init``); dropped at the end.

    Roles belong to the server, not to a database: enter this before the databases the role has
    grants in, so that they are dropped first (an ExitStack unwinds in reverse)."""
    name = unique_name(prefix)
    try:
        yield name
    finally:
        admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(text(f'DROP ROLE IF EXISTS "{name}"'))
        finally:
            admin.dispose()
