"""Start long-running processes in their own process groups; stop exactly those, by pid.

Every service is started with ``start_new_session=True``, so its pid is also its process group id
and everything it forks (Celery's pool, the task supervisors and their task processes, the
api-server's uvicorn workers) can be signalled through that one id, without looking anything up
by name. :meth:`ProcessSet.stop_all` is idempotent and safe to call from ``finally``.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Service:
    """A started process: its name, pid (= process group id) and log file."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class ProcessSet:
    """The processes one stack run started, stopped in reverse order of start."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.services: list[Service] = []

    def start(self, name: str, command: Sequence[str], env: Mapping[str, str]) -> Service:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("wb") as out:  # a reused --log-dir must not show the last run's lines
            process = subprocess.Popen(
                list(command),
                env=dict(env),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        service = Service(name=name, process=process, log_path=log_path)
        self.services.append(service)
        log.info("started %s (pid %d): %s", name, process.pid, " ".join(command))
        return service

    def check_alive(self) -> None:
        """Raise naming the first service that exited, with the end of its log."""
        for service in self.services:
            if not service.running():
                raise RuntimeError(
                    f"{service.name} (pid {service.pid}) exited with {service.process.returncode}:\n"
                    f"{service.log_tail()}"
                )

    def stop_all(self, *, grace_s: float = 20.0) -> None:
        """SIGTERM each group, newest first; SIGKILL what is still there after ``grace_s``."""
        for service in reversed(self.services):
            _signal_group(service.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for service in reversed(self.services):
            try:
                service.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning(
                    "%s (pid %d) ignored SIGTERM for %.0f s: killing its group", service.name, service.pid, grace_s
                )
            # The leader may be gone while children of its group linger (a task process, a pool worker).
            _signal_group(service.pid, signal.SIGKILL)
            if service.process.poll() is None:
                service.process.wait(timeout=10)
        self.services.clear()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:  # the group id was reused by someone else's process: leave it alone
        log.warning("process group %d is not ours any more; not signalling it", pgid)
