"""judgeflow.quality.charts: the report and the UI view draw with the same functions, from raw samples or SQL counts."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import numpy as np
import pytest

from judgeflow.quality.charts import TrendPoint, ValueCounts, WindowCounts, distributions_png, segments_png, trend_png

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _samples(seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    overall = np.round(rng.uniform(1, 5, 40), 2)
    return {
        "overall": (rng.choice(overall, 500), rng.choice(overall, 300)),
        "accuracy": (rng.choice([1, 2, 3, 4, 5], 500).astype(float), rng.choice([1, 2, 3, 4, 5], 300).astype(float)),
    }


def _as_sql_rows(sample: np.ndarray, chunks: int) -> list[tuple[float, float]]:
    """``(value, n)`` rows as GROUP BY day, value returns them: one value spread over several rows."""
    values, counts = np.unique(sample, return_counts=True)
    rows = []
    for value, count in zip(values, counts, strict=True):
        share = count // chunks
        rows += [(float(value), float(share))] * (chunks - 1) + [(float(value), float(count - share * (chunks - 1)))]
    return rows[::-1]


def test_counts_from_sql_rows_draw_the_same_png_as_raw_samples() -> None:
    samples = _samples(3)
    from_raw = {m: WindowCounts(ValueCounts.of(b), ValueCounts.of(c)) for m, (b, c) in samples.items()}
    from_sql = {
        m: WindowCounts(ValueCounts.from_pairs(_as_sql_rows(b, 3)), ValueCounts.from_pairs(_as_sql_rows(c, 2)))
        for m, (b, c) in samples.items()
    }

    raw_png, sql_png = distributions_png(from_raw), distributions_png(from_sql)

    assert raw_png is not None and raw_png.startswith(PNG_MAGIC)
    assert raw_png == sql_png


def test_value_counts_leave_out_nan_and_give_shares() -> None:
    counts = ValueCounts.of(np.array([1.0, 2.0, 2.0, np.nan, 5.0]))

    assert counts.total == 4
    assert counts.shares_at(np.array([1.0, 2.0, 3.0, 5.0])).tolist() == [0.25, 0.5, 0.0, 0.25]
    assert ValueCounts.empty().shares_at(np.array([1.0])).tolist() == [0.0]


@pytest.mark.parametrize(
    "draw",
    [
        pytest.param(
            lambda: distributions_png({"overall": WindowCounts(ValueCounts.empty(), ValueCounts.empty())}),
            id="distributions",
        ),
        pytest.param(lambda: segments_png([]), id="segments"),
        pytest.param(lambda: trend_png([]), id="trend"),
    ],
)
def test_nothing_to_draw_is_none(draw: object) -> None:
    assert draw() is None  # type: ignore[operator]


def test_trend_draws_one_line_per_metric() -> None:
    day = dt.date(2026, 11, 1)
    points = [
        TrendPoint(day + dt.timedelta(days=i), metric, 100, 3.0 + 0.1 * i)
        for i in range(5)
        for metric in ("overall", "accuracy", "$tone")
    ]

    png = trend_png(points)

    assert png is not None and png.startswith(PNG_MAGIC) and len(png) > 10_000


def test_chart_cache_draws_once_per_change_of_the_data() -> None:
    from judgeflow.ui.app import ChartCache

    cache, drawn = ChartCache(size=2), []

    def draw(tag: str) -> bytes:
        drawn.append(tag)
        return tag.encode()

    assert cache.get("trend", [1, 2], lambda: draw("a")) == b"a"
    assert cache.get("trend", [1, 2], lambda: draw("b")) == b"a"  # same data: not drawn again
    assert cache.get("trend", [1, 3], lambda: draw("c")) == b"c"  # new data: drawn
    assert cache.get("segments", [1, 2], lambda: draw("d")) == b"d"  # another chart, same data
    assert cache.get("trend", [1, 2], lambda: draw("e")) == b"e"  # evicted (size 2), drawn again
    assert drawn == ["a", "c", "d", "e"]


def test_drawing_leaves_matplotlib_backend_alone() -> None:
    """The charts draw inside the api-server and tasks: they must not switch the process-wide backend."""
    code = (
        "import datetime as dt, matplotlib; matplotlib.use('svg');"
        "from judgeflow.quality.charts import TrendPoint, trend_png;"
        "png = trend_png([TrendPoint(dt.date(2026, 11, d), 'overall', 10, 3.5) for d in (1, 2)]);"
        "print(matplotlib.get_backend(), png[:8] == bytes.fromhex('89504e470d0a1a0a'))"
    )

    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert result.stdout.split() == ["svg", "True"]
