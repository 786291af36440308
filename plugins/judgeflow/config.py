"""Typed, frozen settings, built once at task start from ``include/judgeflow.yaml`` and DAG params.

Connections hold secrets and endpoints; this module holds everything else. Nothing below
:mod:`judgeflow.tasks.pipeline` reads Airflow context or the environment: they receive these objects.
Unknown keys are refused, so a typo fails fast with the key's name instead of being ignored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from judgeflow.errors import ConfigError


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SourceConfig(_Frozen):
    """Where the application's responses live, and which column holds what."""

    table: str = "app_responses"
    id_column: str = "id"
    created_at_column: str = "created_at"
    question_column: str = "question"
    context_column: str | None = "context"
    response_column: str = "response"
    segment_columns: tuple[str, ...] = ("topic",)


class BatchingConfig(_Frozen):
    """How the day's work is cut into mapped score tasks, and how far back unscored work is fetched."""

    batch_size: int = Field(200, ge=1, le=100_000)
    max_batches: int = Field(256, ge=1, le=1024, description="stays under Airflow's max_map_length")
    backlog_days: int | None = Field(30, ge=1, description="older unscored responses are left alone")


class JudgeConfig(_Frozen):
    """How one score task talks to the judge."""

    concurrency: int = Field(16, ge=1, le=1024, description="requests in flight inside one task")
    max_attempts: int = Field(5, ge=1, le=20, description="per response, for retryable API errors")
    verdict_attempts: int = Field(2, ge=1, le=5, description="a malformed verdict is asked for again once")
    request_timeout_s: float = Field(60.0, gt=0)
    backoff_base_s: float = Field(0.5, gt=0)
    backoff_max_s: float = Field(30.0, gt=0)
    max_response_chars: int = Field(60_000, ge=100, description="longer responses are truncated, flagged")
    max_output_tokens: int = Field(1024, ge=64)


class RateLimitConfig(_Frozen):
    """The account's limits for the judge model, shared by every score task (Redis when configured).

    Leave both unset to rely on adaptive concurrency and the API's own headers alone.
    """

    requests_per_minute: float | None = Field(None, gt=0)
    input_tokens_per_minute: float | None = Field(None, gt=0)
    burst_seconds: float = Field(0.5, gt=0, description="bucket size in seconds of the rate; keep it under the API's")
    headroom: float = Field(0.98, gt=0, le=1, description="share of the limits judgeflow uses")

    def effective(self) -> tuple[float | None, float | None]:
        """The rates the limiter enforces: the configured limits less the headroom."""
        rpm, itpm = self.requests_per_minute, self.input_tokens_per_minute
        return (rpm * self.headroom if rpm else None, itpm * self.headroom if itpm else None)


class BudgetConfig(_Frozen):
    """Spending caps in US dollars; what is left when a cap is reached waits for the next run."""

    max_cost_usd_per_run: float | None = Field(None, gt=0)
    max_cost_usd_per_day: float | None = Field(None, gt=0)
    expected_output_tokens: int = Field(300, ge=1, description="estimate until replies are seen")
    max_backfill_cost_usd: float | None = Field(
        None, gt=0, description="a rescore run (or `judgeflow estimate` range) estimated above this is refused"
    )


class BatchModeConfig(_Frozen):
    """Message Batches mode: half the price, results within hours instead of seconds."""

    poll_interval_s: float = Field(60.0, gt=0, description="how often the triggerer asks")
    deadline_hours: float = Field(23.0, gt=0, le=24, description="a batch still open then is cancelled")
    max_requests: int = Field(100_000, ge=1, le=100_000, description="per Message Batch; larger ones split")


class CacheConfig(_Frozen):
    """The verdict cache: Redis when ``judge_cache`` exists, else an embedded SQLite file."""

    enabled: bool = True
    ttl_seconds: int = Field(30 * 24 * 3600, ge=1)
    embedded_path: str = "../.judgeflow/verdict_cache.sqlite"


class AlertConfig(_Frozen):
    """When on-call hears about quality."""

    min_rolling_average: float = Field(3.0, description="overall score, on the rubric's scale")
    rolling_days: int = Field(7, ge=1)
    baseline_days: int = Field(7, ge=1)
    min_drop: float = Field(0.25, ge=0, description="smallest mean drop worth an alert")
    alpha: float = Field(0.05, gt=0, lt=1)
    min_samples: int = Field(30, ge=2)
    max_judge_error_rate: float = Field(0.05, ge=0, le=1, description="health: share of responses the judge failed")
    report_folder: str = Field("../.judgeflow/reports", description="local path or object storage URL")
    report_base_url: str = Field("", description="where people open report_folder; empty = its own URL")
    airflow_base_url: str = "http://localhost:8080"


class UiConfig(_Frozen):
    """The judgeflow view in the Airflow UI (:mod:`judgeflow.ui`): what it shows, how much of it."""

    trend_days: int = Field(28, ge=2, le=366, description="days of daily means on the trend chart")
    regression_days: int = Field(28, ge=1, description="regressions found by runs this recent are listed")
    lowest_responses: int = Field(20, ge=1, le=500, description="lowest-scoring responses of the week shown")
    text_chars: int = Field(300, ge=20, description="rationales and response texts are truncated to this")
    redact: bool = Field(True, description="mask e-mails, phone numbers and key-like strings, as in alerts")
    runs_shown: int = Field(14, ge=1, le=365, description="recent runs in the run-health table")


class ModelPrice(_Frozen):
    """US dollars per million tokens."""

    input: float
    output: float
    cache_write_multiplier: float = 1.25
    cache_read_multiplier: float = 0.1
    batch_discount: float = 0.5


class ConnectionIds(_Frozen):
    anthropic: str = "anthropic_default"
    warehouse: str = "judge_warehouse"
    cache: str = "judge_cache"
    slack: str = "slack_oncall"


DEFAULT_PRICES: dict[str, ModelPrice] = {
    "claude-haiku-4-5": ModelPrice(input=1.0, output=5.0),
    "claude-sonnet-4-5": ModelPrice(input=3.0, output=15.0),
    "claude-opus-4-5": ModelPrice(input=5.0, output=25.0),
}


class Settings(_Frozen):
    """Everything a run needs besides connections."""

    rubric: str = "helpfulness"
    rubric_dir: str = "rubrics"
    mode: Literal["realtime", "batch"] = "realtime"
    embedded_warehouse_path: str = "../.judgeflow/warehouse.sqlite"
    source: SourceConfig = SourceConfig()
    batching: BatchingConfig = BatchingConfig()
    judge: JudgeConfig = JudgeConfig()
    cache: CacheConfig = CacheConfig()
    limits: RateLimitConfig = RateLimitConfig()
    batch_mode: BatchModeConfig = BatchModeConfig()
    budget: BudgetConfig = BudgetConfig()
    alerts: AlertConfig = AlertConfig()
    connections: ConnectionIds = ConnectionIds()
    ui: UiConfig = UiConfig()
    prices: dict[str, ModelPrice] = Field(default_factory=lambda: dict(DEFAULT_PRICES))
    calibration: CalibrationConfig = Field(default_factory=lambda: CalibrationConfig())

    def price_for(self, model: str) -> ModelPrice:
        """The price of ``model``, matching dated ids (``claude-haiku-4-5-20251001``) by prefix."""
        for name in sorted(self.prices, key=len, reverse=True):
            if model == name or model.startswith(name + "-"):
                return self.prices[name]
        raise ConfigError(f"prices: no price for model {model!r}; add it under 'prices' in the settings")


class RunParams(_Frozen):
    """The knobs a manual run may turn (DAG params)."""

    rubric: str | None = None
    limit: int | None = Field(None, ge=1)
    rescore: bool = False
    mode: Literal["realtime", "batch"] | None = None
    dry_run: bool = False

    @model_validator(mode="before")
    @classmethod
    def _blank_is_none(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: (None if v in ("", "null") else v) for k, v in data.items() if k in cls.model_fields}
        return data


SETTINGS_ENV = "JUDGEFLOW_SETTINGS"
"""A settings file for processes outside a task (the ``judgeflow`` commands, the UI view)."""


def default_settings_path() -> Path:
    """The settings file when none is named: ``$JUDGEFLOW_SETTINGS``, else ``include/judgeflow.yaml``
    beside Airflow's DAGs folder (as the image lays it out), else the one in this checkout."""
    import os

    named = os.environ.get(SETTINGS_ENV)
    if named:
        return Path(named)
    dags_folder = os.environ.get("AIRFLOW__CORE__DAGS_FOLDER")
    if dags_folder:
        beside_dags = Path(dags_folder).parent / "include" / "judgeflow.yaml"
        if beside_dags.exists():
            return beside_dags
    return Path(__file__).resolve().parents[2] / "include" / "judgeflow.yaml"


def load_settings(path: str | Path, overrides: dict[str, Any] | None = None) -> Settings:
    """Read the settings file; relative paths in it are taken from the file's folder."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"settings file {path} not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"{path}: settings must be a mapping of keys to values, not {type(raw).__name__}")
    raw = dict(raw or {})
    raw.update(overrides or {})
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_describe(exc)}") from exc
    return settings.model_copy(
        update={
            "rubric_dir": _beside(path, settings.rubric_dir),
            "embedded_warehouse_path": _beside(path, settings.embedded_warehouse_path),
            "cache": settings.cache.model_copy(update={"embedded_path": _beside(path, settings.cache.embedded_path)}),
            "alerts": settings.alerts.model_copy(
                update={"report_folder": _beside_unless_url(path, settings.alerts.report_folder)}
            ),
            "calibration": settings.calibration.model_copy(
                update={"golden_dir": _beside(path, settings.calibration.golden_dir)}
            ),
        }
    )


def _beside_unless_url(settings_file: Path, value: str) -> str:
    return value if "://" in value else _beside(settings_file, value)


def _beside(settings_file: Path, value: str) -> str:
    candidate = Path(value)
    return str(candidate if candidate.is_absolute() else (settings_file.parent / candidate).resolve())


def parse_run_params(params: dict[str, Any]) -> RunParams:
    try:
        return RunParams.model_validate(params)
    except ValidationError as exc:
        raise ConfigError(f"DAG params: {_describe(exc)}") from exc


def _describe(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}" for err in exc.errors())


# --- calibration ---------------------------------------------------------------------------------


class CalibrationFloor(_Frozen):
    """The least agreement with the human golden set a rubric version needs, per criterion; ``None``
    skips that figure. Checked on the point estimate; the intervals are reported alongside."""

    kappa: float | None = Field(0.4, ge=-1, le=1, description="quadratic-weighted Cohen's kappa")
    spearman: float | None = Field(None, ge=-1, le=1, description="Spearman's rank correlation")


class CalibrationConfig(_Frozen):
    """When the judge is checked against ``<golden_dir>/<rubric>.jsonl``, and what it must reach.

    Calibration is opt-in per rubric: a rubric without a golden file is scored with a warning,
    unless ``required``. ``canary_max_score`` is the highest score a prompt-injection canary may get
    on any criterion; ``None`` means the rubric's scale minimum + 1 (a judge may be one step
    lenient, not obey). ``drift_tolerance`` is how far kappa may fall below the first calibration
    of the same rubric version, model and golden set before on-call hears of it.
    """

    golden_dir: str = "golden"
    required: bool = False
    every_days: float = Field(7, gt=0, description="recalibrate when the latest calibration is older")
    floor: CalibrationFloor = CalibrationFloor()
    max_mae: float | None = Field(None, gt=0, description="the largest mean absolute error allowed, in points")
    canary_max_score: int | None = None
    drift_tolerance: float = Field(0.1, ge=0)
    bootstrap_resamples: int = Field(1000, ge=100, le=100_000)
    seed: int = 0
