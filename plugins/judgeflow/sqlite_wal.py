"""Write-ahead logging for the SQLite files judgeflow keeps (embedded warehouse and verdict cache).

With WAL, readers never block the writer and parallel score tasks take turns writing. Switching a
new file to WAL is the one step SQLite does not retry under its busy timeout: when several processes
open the file at once it answers "database is locked" immediately, so the switch is retried here.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any


def switch_to_wal(conn: Any, *, attempts: int = 50) -> None:
    """``PRAGMA journal_mode=WAL`` on a DB-API SQLite connection, waiting out concurrent openers."""
    for attempt in range(attempts):
        try:
            cursor = conn.cursor()
            try:
                cursor.execute("PRAGMA journal_mode=WAL")
            finally:
                cursor.close()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
