"""``judgeflow alerts ...``: what on-call does about a regression that is here to stay.

- ``judgeflow alerts accept <rubric> <regression> --reason "..."``: the level a regression dropped to
  is the new normal (a deliberate change, a new customer mix). The regression closes without a
  "recovered" message, and later baselines start at its first day, so the new level is not announced
  again. Who (``--by``, default the OS user), when and why are kept in ``judge_alert_history``.
- ``judgeflow alerts open <rubric>``: the regressions open now, with the reference each is measured against.

The Airflow view's ``POST /judgeflow/alerts/accept`` does the same as ``accept`` (:mod:`judgeflow.ui.app`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import re
from contextlib import closing
from pathlib import Path
from typing import Any

from judgeflow.storage.alert_store import Accepted
from judgeflow.storage.warehouse import Warehouse

_LABEL = re.compile(r"^(?P<metric>[^\[\]]+?) \[(?P<segment>[^\[\]]+)\]$")


def regression_name(text: str) -> str:
    """The key a regression is stored under: ``overall`` or ``accuracy in topic=shipping``; the
    label the alert's table prints (``accuracy [topic=shipping]``) is read as the same key."""
    text = text.strip()
    match = _LABEL.match(text)
    return f"{match['metric']} in {match['segment']}" if match else text


def add_parser(commands: Any) -> None:
    """The ``alerts`` command and its subcommands, on ``judgeflow``'s parser."""
    alerts = commands.add_parser("alerts", help="regressions on-call knows: accept a lasting level shift, list")
    sub = alerts.add_subparsers(dest="alerts_command", required=True)
    accept = sub.add_parser("accept", help="accept an open regression's level as the new normal (re-baselines)")
    accept.add_argument("rubric", help="rubric name, as in the alert")
    accept.add_argument("regression", help='what dropped, as in the alert: "overall", "accuracy in topic=shipping"')
    accept.add_argument("--reason", required=True, help="why this level is the new normal (kept in the history)")
    accept.add_argument("--by", default=None, help="who accepts it (default: the OS user)")
    accept.add_argument("--version", default=None, help="rubric version key, when several have it open")
    listing = sub.add_parser("open", help="the regressions open now and the level each is measured against")
    listing.add_argument("rubric", help="rubric name")
    for parser in (accept, listing):
        parser.add_argument(
            "--settings", type=Path, default=None, help="settings or suite file (include/judgeflow.yaml)"
        )
        parser.add_argument("--url", help="SQLAlchemy URL of the warehouse (default: the judge_warehouse connection)")


def run(args: argparse.Namespace) -> int:
    with closing(_warehouse(args)) as warehouse:
        warehouse.ensure_schema()
        if args.alerts_command == "open":
            return _list(warehouse, args.rubric)
        done = warehouse.alerts.accept(
            args.rubric,
            args.version,
            regression_name(args.regression),
            by=args.by or getpass.getuser(),
            reason=args.reason,
            at=dt.datetime.now(dt.UTC),
        )
    print(describe_acceptance(done))
    return 0


def describe_acceptance(done: Accepted) -> str:
    level = "" if done.reference_mean is None else f" from {done.reference_mean:.2f}"
    return (
        f"accepted {done.regression!r} of rubric {done.rubric_name} (version {done.rubric_version}) as the new "
        f"normal: {done.difference:+.2f}{level} since {done.since:%Y-%m-%d}; by {done.by} at "
        f"{done.at:%Y-%m-%d %H:%M} UTC: {done.reason}. Baselines now start at {done.since:%Y-%m-%d}."
    )


def _list(warehouse: Warehouse, rubric: str) -> int:
    rows = warehouse.alerts.watched(rubric)
    if not rows:
        print(f"no open regression for rubric {rubric}")
    for version, row in rows:
        ref = row.reference
        against = f"against {ref.level.mean:.2f} (n={ref.level.n})" if ref else "against no frozen reference yet"
        print(
            f"{version}\t{row.key}\t{row.stage.value}\tsince {row.down_since:%Y-%m-%d}\t{row.difference:+.2f} {against}"
        )
    return 0


def _warehouse(args: argparse.Namespace) -> Warehouse:
    from judgeflow.config import default_settings_path
    from judgeflow.connections import server_connection, warehouse_target
    from judgeflow.suite import load_suite

    settings = load_suite(args.settings or default_settings_path()).settings
    url = args.url or warehouse_target(
        settings.connections.warehouse, embedded_path=settings.embedded_warehouse_path, lookup=server_connection
    )
    return Warehouse.from_url(url, settings.source)
