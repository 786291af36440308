"""The deterministic sample: an honest estimate of the full mean, the same ids every time, strata kept."""

from __future__ import annotations

import datetime as dt
import math
import random
import statistics
from collections import Counter
from pathlib import Path

from sqlalchemy import create_engine, text

from judgeflow.config import BatchingConfig, SamplingConfig, Settings
from judgeflow.rubric import load_rubric
from judgeflow.storage.sampling import SampleRule, Thresholds, keep, unit_hash
from judgeflow.storage.warehouse import Warehouse
from judgeflow_devkit.sample_data import generate_responses, seed_warehouse
from tests.support import ROOT

END = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
SEGMENTS = {"billing": (0.50, 3.9), "shipping": (0.30, 3.2), "returns": (0.15, 3.6), "legal": (0.05, 2.4)}
"""segment: (share of responses, its mean score on 1..5)"""


def scored_population(n: int, seed: int) -> list[tuple[int, str, float]]:
    """``n`` generated responses: (id, segment, overall score), segments of different quality."""
    rng = random.Random(seed)
    names, shares = list(SEGMENTS), [share for share, _ in SEGMENTS.values()]
    rows = []
    for response_id in range(1, n + 1):
        segment = rng.choices(names, weights=shares)[0]
        score = min(5.0, max(1.0, rng.gauss(SEGMENTS[segment][1], 0.9)))
        rows.append((response_id, segment, round(score, 2)))
    return rows


def interval(values: list[float]) -> tuple[float, float, float]:
    """Mean and its normal 95% interval."""
    mean = statistics.fmean(values)
    half = 1.96 * statistics.stdev(values) / math.sqrt(len(values))
    return mean, mean - half, mean + half


def test_a_sampled_mean_is_inside_its_interval_around_the_full_mean() -> None:
    population = scored_population(20_000, seed=13)
    full = statistics.fmean(score for _, _, score in population)
    rule = SampleRule(SamplingConfig(rate=0.1), salt="support")
    candidates = [(rid, seg, False, False) for rid, seg, _ in population]

    kept = set(keep(rule, None, candidates))

    sample = [score for rid, _, score in population if rid in kept]
    mean, low, high = interval(sample)
    print(
        f"\nplain 10% sample: n={len(sample)} of {len(population)}, full mean {full:.4f}, "
        f"sampled {mean:.4f}, 95% CI [{low:.4f}, {high:.4f}]"
    )
    assert 0.09 < len(sample) / len(population) < 0.11
    assert low <= full <= high


def test_a_stratified_sample_keeps_small_segments_and_estimates_the_full_mean() -> None:
    """5% by segment with at least 150 each: the rare segment is oversampled, so the overall mean is
    estimated per segment and weighted by each segment's share of the population."""
    population = scored_population(20_000, seed=14)
    full = statistics.fmean(score for _, _, score in population)
    rule = SampleRule(SamplingConfig(rate=0.05, by="segment", min_per_segment=150), salt="search")
    thresholds = Thresholds(rule)
    thresholds.feed((rid, seg) for rid, seg, _ in population)

    kept = set(keep(rule, thresholds, [(rid, seg, False, False) for rid, seg, _ in population]))

    by_segment: dict[str, list[float]] = {}
    sizes = Counter(seg for _, seg, _ in population)
    for rid, seg, score in population:
        if rid in kept:
            by_segment.setdefault(seg, []).append(score)
    counts = {seg: len(scores) for seg, scores in by_segment.items()}
    assert counts["legal"] >= 150 > 0.05 * sizes["legal"], "the rare segment is topped up to the minimum"
    assert all(counts[s] >= 150 for s in SEGMENTS)
    weights = {seg: sizes[seg] / len(population) for seg in SEGMENTS}
    estimate = sum(weights[s] * statistics.fmean(by_segment[s]) for s in SEGMENTS)
    half = 1.96 * math.sqrt(
        sum(weights[s] ** 2 * statistics.variance(by_segment[s]) / len(by_segment[s]) for s in SEGMENTS)
    )
    print(
        f"\nstratified 5% (>=150 each): n={len(kept)} ({counts}), full mean {full:.4f}, "
        f"weighted {estimate:.4f}, 95% CI [{estimate - half:.4f}, {estimate + half:.4f}]"
    )
    assert estimate - half <= full <= estimate + half
    for seg in SEGMENTS:  # and each segment's own mean is inside its interval around the segment's full mean
        seg_full = statistics.fmean(score for _, s, score in population if s == seg)
        _, low, high = interval(by_segment[seg])
        assert low <= seg_full <= high, seg


def test_the_hash_is_stable_and_salted() -> None:
    assert unit_hash("support", 42) == unit_hash("support", "42"), "ids compare as text across dialects"
    assert unit_hash("support", 42) != unit_hash("search", 42)
    assert unit_hash("support", 42) == 0.25242513231041663, "a change here re-draws every deployed sample"


def test_staging_keeps_the_same_sample_every_time_with_every_segment(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.sqlite'}"
    engine = create_engine(url)
    rows = list(generate_responses(count=600, end=END, seed=21))
    rows += [{**r, "id": 10_000 + i, "topic": "rare"} for i, r in enumerate(rows[5:13])]  # 8 in a rare topic
    seed_warehouse(engine, iter(rows))
    settings = Settings(source={"segment_columns": ["topic"]})
    warehouse = Warehouse.from_url(url, settings.source)
    warehouse.ensure_schema()
    rubrics = [load_rubric(ROOT / "include" / "rubrics", name) for name in ("helpfulness", "concision")]
    rule = SampleRule(SamplingConfig(rate=0.1, by="topic", min_per_segment=20), salt="support")

    def stage(run_key: str) -> list[tuple[int, str]]:
        warehouse.stage_run(
            run_key=run_key,
            rubrics=rubrics,
            start=END - dt.timedelta(days=1),
            end=END,
            rescore=False,
            batching=BatchingConfig(batch_size=25),
            sample=rule,
        )
        query = text(
            "SELECT i.response_id, r.topic FROM judge_run_items i JOIN app_responses r ON r.id = i.response_id "
            "WHERE i.run_key = :k ORDER BY i.response_id"
        )
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(query, {"k": run_key})]

    first, rerun = stage("dag/run_1"), stage("dag/run_1")
    other_run = stage("dag/run_2")

    assert first == rerun == other_run, "the same sample for a rerun and for another run of the day"
    per_topic = Counter(topic for _, topic in first)
    assert per_topic["rare"] == 8, "a segment smaller than the minimum is judged whole"
    assert all(n >= 20 for topic, n in per_topic.items() if topic != "rare"), per_topic
    assert len(first) < 0.3 * len(rows), "a sample, not everything"
    with engine.connect() as conn:
        keys = conn.execute(text("SELECT DISTINCT run_key FROM judge_run_items ORDER BY run_key")).scalars().all()
    assert keys == ["dag/run_1", "dag/run_2"], "no scratch rows are left behind"
    warehouse.close()
