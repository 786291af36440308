"""A worker identity for ``[core] hostname_callable``.

Airflow records ``TaskInstance.hostname`` from ``hostname_callable`` (the Task SDK's
``get_hostname``), which by default is the machine's FQDN: two Celery workers on one host would
look like one. Pointing ``AIRFLOW__CORE__HOSTNAME_CALLABLE`` at :func:`worker_hostname` and giving
each worker its own ``JUDGEFLOW_WORKER_NAME`` makes the metadata say which worker ran a task. The
task's heartbeats use the same callable in the same environment, so the execution API's
hostname check still matches.
"""

from __future__ import annotations

import os
import socket

WORKER_NAME_VARIABLE = "JUDGEFLOW_WORKER_NAME"


def worker_hostname() -> str:
    """``JUDGEFLOW_WORKER_NAME`` when set, else the host's fully qualified name (Airflow's default)."""
    return os.environ.get(WORKER_NAME_VARIABLE) or socket.getfqdn()
