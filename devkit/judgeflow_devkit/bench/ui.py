"""``judgeflow-dev bench-ui``: how long each page, chart and JSON endpoint of the view takes at 10k, 100k, 1M scores.

For each size a fresh PostgreSQL schema is filled by :func:`judgeflow_devkit.ui_sample.generate` (generated in
SQL; with the indexes :meth:`Warehouse.upgrade_schema` creates and ``judge_daily_scores`` refreshed by
the production code), then every route is requested ``--repeat`` times through the real FastAPI app
(in process, ``TestClient``, authorization left out: it is the api-server's, not ours) after one
warm-up request, and the median is printed. Chart routes are measured twice: as served (the app
keeps each PNG until its data changes, so between two runs a view reads the data and skips the
drawing) and "drawn" (the cache cleared before every request: what the first view after a run pays).
The schema is dropped afterwards unless ``--keep``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import secrets
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import create_engine, text

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
LAST_DAY = dt.date(2026, 11, 20)
PAGE_BUDGET_MS = 300.0
"""What a page of the view may take at 1,000,000 scores (issue 16): every HTML page, as served."""
DEEP_LINKS = ["/responses?segment=topic%3Dshipping", "/?rubric=helpfulness&version=1%2Bgenerated"]
"""Pages with their query strings as links open them: one segment's responses, an explicit rubric version."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="judgeflow-dev bench-ui", description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=DEFAULT_URL, help="PostgreSQL server (a schema is made and dropped)")
    parser.add_argument("--sizes", default="10000,100000,1000000", help="score rows, comma-separated")
    parser.add_argument("--days", type=int, default=120, help="days the responses are spread over, at every size")
    parser.add_argument("--repeat", type=int, default=15, help="timed requests per route")
    parser.add_argument("--keep", action="store_true", help="keep the schemas (names are printed)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    results: dict[int, dict[str, float]] = {}
    setup: dict[int, float] = {}
    for size in sizes:
        setup[size], results[size] = _measure(args.url, size=size, days=args.days, repeat=args.repeat, keep=args.keep)
    _print_table(sizes, results, setup, days=args.days, repeat=args.repeat)
    return 0


def _measure(url: str, *, size: int, days: int, repeat: int, keep: bool) -> tuple[float, dict[str, float]]:
    from fastapi.testclient import TestClient

    from judgeflow.config import Settings
    from judgeflow.storage.view_reads import Reader
    from judgeflow.ui.app import build_app
    from judgeflow_devkit.ui_sample import generate

    schema = f"jf_bench_ui_{secrets.token_hex(4)}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    engine = create_engine(f"{url}?options=-csearch_path%3D{schema}")
    try:
        started = time.perf_counter()
        generated = generate(engine, rows=size, days=days, last_day=LAST_DAY)
        setup_s = time.perf_counter() - started
        print(f"{size:>9,} rows: generated in schema {schema} in {setup_s:.1f} s", flush=True)
        reader = Reader(generated.warehouse, Settings())
        app = build_app(lambda: reader, dependencies=[])
        client = TestClient(app)
        cache = app.state.chart_cache
        routes = [getattr(r, "path", "") for r in app.routes if "GET" in getattr(r, "methods", ())]  # all the app has
        routes += DEEP_LINKS
        medians = {route: _median_ms(client, route, repeat, before=None) for route in routes}
        for route in (r for r in routes if r.endswith(".png")):
            medians[f"{route} (drawn)"] = _median_ms(client, route, repeat, before=cache.clear)
        return setup_s, medians
    finally:
        engine.dispose()
        if not keep:
            with admin.begin() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def _median_ms(client: Any, route: str, repeat: int, *, before: Callable[[], None] | None) -> float:
    response = client.get(route)
    if response.status_code != 200:
        raise SystemExit(f"{route} answered {response.status_code}: {response.text[:200]}")
    times = []
    for _ in range(repeat):
        if before is not None:
            before()
        begin = time.perf_counter()
        client.get(route).raise_for_status()
        times.append(time.perf_counter() - begin)
    return statistics.median(times) * 1000


def _print_table(
    sizes: list[int], results: dict[int, dict[str, float]], setup: dict[int, float], *, days: int, repeat: int
) -> None:
    print()
    print(f"median ms per request ({repeat} requests after one warm-up; responses spread over {days} days)")
    header = f"{'route':<44}" + "".join(f"{f'{s:,} rows':>16}" for s in sizes)
    print(header)
    for route in results[sizes[0]]:
        print(f"{route:<44}" + "".join(f"{results[s][route]:>16.1f}" for s in sizes))
    slowest = {s: max(results[s].values()) for s in sizes}
    print(f"{'slowest route':<44}" + "".join(f"{slowest[s]:>16.1f}" for s in sizes))
    print(f"{'(generation, s)':<44}" + "".join(f"{setup[s]:>16.1f}" for s in sizes))
    for size in sizes:
        pages = {route: ms for route, ms in results[size].items() if _is_page(route)}
        worst = max(pages, key=pages.__getitem__)
        verdict = "yes" if pages[worst] < PAGE_BUDGET_MS else "NO"
        print(
            f"every page under {PAGE_BUDGET_MS:.0f} ms at {size:,} scores: {verdict} "
            f"(slowest page {worst} at {pages[worst]:.1f} ms, {len(pages)} pages)"
        )


def _is_page(route: str) -> bool:
    """An HTML page of the view, as served (not JSON, a chart or the icon)."""
    path = route.split("?")[0]
    return not path.startswith("/api/") and not path.endswith((".png", ".svg", "(drawn)"))


if __name__ == "__main__":
    raise SystemExit(main())
