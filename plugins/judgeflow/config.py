"""Typed, frozen settings, built once at task start from ``include/judgeflow.yaml`` and DAG params.

Connections hold secrets and endpoints; this module holds everything else. Nothing below
:mod:`judgeflow.tasks.pipeline` reads Airflow context or the environment: they receive these objects.
Unknown keys are refused, so a typo fails fast with the key's name instead of being ignored.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from judgeflow.errors import ConfigError


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SourceConfig(_Frozen):
    """Where the application's responses live, and which column holds what.

    A ``table`` (or a view) is reflected; a ``query`` (a ``SELECT`` whose output columns carry the
    names below, for logs that keep question and response in JSON columns) replaces the table, and
    its id column's type is ``id_type``, since a query cannot be reflected."""

    table: str = "app_responses"
    query: str | None = Field(None, description="a SELECT whose output columns are named as below")
    id_type: Literal["integer", "string"] = Field("integer", description="the id column's type, for a query")
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
    cache_ttl: Literal["5m", "1h"] = Field(
        "5m", description="prompt-cache TTL of the rubric's prefix; 1h outlives a Message Batch's spread"
    )


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
    warm_cache: bool = Field(
        False, description="judge one request live before submitting, so the batch reads the cached prefix"
    )


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
    max_pool_days: int = Field(
        7, ge=1, le=90, description="a segment short of min_samples pools its last days, up to this many"
    )
    power: float = Field(0.8, gt=0, lt=1, description="for the smallest drop each comparison could detect")
    max_judge_error_rate: float = Field(0.05, ge=0, le=1, description="health: share of responses the judge failed")
    open_after_days: int = Field(
        2, ge=1, description="days running a drop must be found before on-call hears (1: page on the first day)"
    )
    recover_within: float = Field(
        0.1, ge=0, description="back within this of the frozen reference (rubric's scale) counts as back"
    )
    recover_days: int = Field(2, ge=1, description="days running back before a regression is recovered")
    remind_every_days: int = Field(7, ge=0, description="remind on-call of a regression still open; 0: never")
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


class NoiseConfig(_Frozen):
    """Judge noise (:mod:`judgeflow.quality.judge_quality`): a daily sample of responses is judged a
    second time, past the verdict cache, and the two verdicts' spread is stored in ``judge_noise``.

    The sample is a hash of the response id (the same responses on a rerun); the second ask's cost
    counts in the run's cost and budget. A verdict whose criteria spread by ``unstable_spread``
    points or more is unstable; with ``exclude_unstable`` the regression statistics leave it out."""

    rate: float = Field(0.0, ge=0, le=1, description="share of scored responses asked twice; 0 = off, e.g. 0.02")
    unstable_spread: int = Field(2, ge=1, description="a criterion spread of this many points is unstable")
    exclude_unstable: bool = Field(False, description="leave unstable verdicts out of the regression statistics")


class ReviewConfig(_Frozen):
    """The view's review queue (``/judgeflow/review``): what people are asked to label.

    Labellers are users who may edit the suite's DAG, or whose Airflow user name is in
    ``reviewers`` (the judgeflow review permission; Airflow's simple auth manager has no custom
    permissions, so it is named here)."""

    reviewers: tuple[str, ...] = Field((), description="Airflow user names allowed to label without DAG edit rights")
    random_items: int = Field(10, ge=0, le=500, description="a random sample of recent scores, for an unbiased kappa")
    low_items: int = Field(10, ge=0, le=500, description="the lowest recent scores")
    unstable_items: int = Field(10, ge=0, le=500, description="recent verdicts flagged unstable by the noise sample")
    days: int = Field(7, ge=1, le=366, description="how far back the queue looks")


class ModelPrice(_Frozen):
    """US dollars per million tokens, and the model facts a price depends on.

    Cache writes and reads are multiples of the input price: a 5-minute write (the default TTL),
    a 1-hour write (``ttl: "1h"``), a read. A prompt (input + cache write + cache read tokens) over
    ``long_context_tokens`` is billed at ``long_context_multiplier`` times every rate.
    ``tokenizer_factor`` is how many tokens the model's tokenizer makes of a text relative to Haiku
    4.5's (about 4 characters a token): estimates made from character counts are scaled by it."""

    input: float
    output: float
    cache_write_multiplier: float = Field(1.25, description="5-minute cache write, times input")
    cache_write_1h_multiplier: float = Field(2.0, description="1-hour cache write, times input")
    cache_read_multiplier: float = 0.1
    batch_discount: float = 0.5
    long_context_tokens: int | None = Field(None, ge=1, description="prompts above this cost more")
    long_context_multiplier: float = Field(1.0, ge=1)
    tokenizer_factor: float = Field(1.0, gt=0, description="tokens for the same text, relative to Haiku 4.5")


class ConnectionIds(_Frozen):
    anthropic: str = "anthropic_default"
    warehouse: str = "judge_warehouse"
    cache: str = "judge_cache"
    slack: str = "slack_oncall"


DEFAULT_PRICES: dict[str, ModelPrice] = {
    "claude-haiku-4-5": ModelPrice(input=1.0, output=5.0),
    # $0.125 / $0.20 / $0.01 per MTok for 5-minute writes, 1-hour writes and reads; 5x above 100K tokens
    "claude-haiku-5-5": ModelPrice(
        input=0.10, output=0.50, long_context_tokens=100_000, long_context_multiplier=5.0, tokenizer_factor=1.3
    ),
    "claude-sonnet-4-5": ModelPrice(input=3.0, output=15.0),
    "claude-opus-4-5": ModelPrice(input=5.0, output=25.0),
}


class SamplingConfig(_Frozen):
    """Judge a deterministic sample instead of every response (:mod:`judgeflow.storage.sampling`).

    A response is in the sample when a hash of ``salt`` and its id falls under the rate, so every
    rubric and every rerun of a run sees the same sample. ``by`` stratifies on one of the source's
    ``segment_columns``: ``rates`` sets a segment value's own rate, and ``min_per_segment`` keeps at
    least that many responses of each segment value in a run's interval (the lowest hashes first)."""

    rate: float = Field(1.0, gt=0, le=1, description="share of responses judged; 1 = all")
    salt: str | None = Field(None, description="default: the suite's name")
    by: str | None = Field(None, description="a segment column to stratify on")
    rates: dict[str, float] = Field(default_factory=dict, description="rate per value of `by`")
    min_per_segment: int = Field(0, ge=0, description="at least this many per value of `by` and interval")

    @model_validator(mode="after")
    def _rates_need_by(self) -> SamplingConfig:
        if (self.rates or self.min_per_segment) and not self.by:
            raise ValueError("sampling.rates and sampling.min_per_segment need sampling.by (a segment column)")
        bad = {k: v for k, v in self.rates.items() if not 0 < v <= 1}
        if bad:
            raise ValueError(f"sampling.rates must be in (0, 1]: {bad}")
        return self

    @property
    def active(self) -> bool:
        """False when every response is judged (the rate and every segment's rate are 1)."""
        return self.rate < 1 or any(v < 1 for v in self.rates.values())


CRON_PRESETS = ("@once", "@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly")


class UpstreamAsset(_Frozen):
    """Schedule a suite on its application's log load instead of a cron: the Asset that load updates."""

    asset: str = Field(min_length=3, description="the upstream Asset's URI, e.g. s3://logs/support/")
    name: str | None = Field(None, description="the Asset's name, if the producer gave it one")


class Settings(_Frozen):
    """Everything a run needs besides connections: one suite's settings (see :mod:`judgeflow.suite`)."""

    rubric: str = "helpfulness"
    rubrics: tuple[str, ...] = Field((), description="several rubrics judge the same responses; default [rubric]")
    schedule: str | UpstreamAsset | None = Field("@daily", description="a cron or preset, an upstream Asset, or null")
    sampling: SamplingConfig = SamplingConfig()
    description: str = Field("", description="what the suite judges, for the DAG's doc")
    owner: str = "data-platform"
    tags: tuple[str, ...] = ()
    dag_id: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]{1,200}$", description="default llm_judge__<suite>")
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
    noise: NoiseConfig = NoiseConfig()
    review: ReviewConfig = ReviewConfig()
    prices: dict[str, ModelPrice] = Field(default_factory=lambda: dict(DEFAULT_PRICES))
    calibration: CalibrationConfig = Field(default_factory=lambda: CalibrationConfig())

    @field_validator("schedule")
    @classmethod
    def _valid_cron(cls, value: str | UpstreamAsset | None) -> str | UpstreamAsset | None:
        if isinstance(value, str) and value not in CRON_PRESETS:
            from croniter import croniter

            if not croniter.is_valid(value):
                raise ValueError(f"{value!r} is neither a cron expression nor one of {', '.join(CRON_PRESETS)}")
        return value

    @field_validator("rubrics")
    @classmethod
    def _distinct_rubrics(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError(f"rubrics must be distinct, got {list(value)}")
        return value

    @property
    def rubric_names(self) -> tuple[str, ...]:
        """The rubrics that judge this suite's responses: ``rubrics``, else the one ``rubric``."""
        return self.rubrics or (self.rubric,)

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
    backfill_from: dt.date | None = Field(None, description="first day of the backfill this run is part of")
    backfill_until: dt.date | None = Field(None, description="last day of it: that day's run sends the digest")

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
    """Read a whole settings file; relative paths in it are taken from the file's folder."""
    path = Path(path)
    raw = read_settings_file(path)
    raw.update(overrides or {})
    return resolve_paths(validate_settings(raw, source=str(path)), path.parent)


def read_settings_file(path: Path) -> dict[str, Any]:
    """The file's mapping of keys to values, unvalidated; every problem names the file."""
    if not path.exists():
        raise ConfigError(f"settings file {path} not found")
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"{path}: settings must be a mapping of keys to values, not {type(raw).__name__}")
    return dict(raw or {})


def validate_settings(raw: dict[str, Any], *, source: str) -> Settings:
    """Typed settings from a mapping; an unknown key or a bad value is a :class:`ConfigError`
    naming ``source`` and the key (``source.tabel: Extra inputs are not permitted``)."""
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_describe(exc)}") from exc


def resolve_paths(settings: Settings, folder: Path) -> Settings:
    """Relative paths made absolute from ``folder``; absolute paths and URLs stay as they are."""
    return settings.model_copy(
        update={
            "rubric_dir": _beside(folder, settings.rubric_dir),
            "embedded_warehouse_path": _beside(folder, settings.embedded_warehouse_path),
            "cache": settings.cache.model_copy(update={"embedded_path": _beside(folder, settings.cache.embedded_path)}),
            "alerts": settings.alerts.model_copy(
                update={"report_folder": _beside_unless_url(folder, settings.alerts.report_folder)}
            ),
            "calibration": settings.calibration.model_copy(
                update={"golden_dir": _beside(folder, settings.calibration.golden_dir)}
            ),
        }
    )


PATH_KEYS: tuple[tuple[str, ...], ...] = (
    ("rubric_dir",),
    ("embedded_warehouse_path",),
    ("cache", "embedded_path"),
    ("alerts", "report_folder"),
    ("calibration", "golden_dir"),
)
"""The settings that are paths, so a file's relative paths can be made absolute before files merge."""


def absolutize_paths(raw: dict[str, Any], folder: Path) -> dict[str, Any]:
    """``raw`` with the relative paths it sets made absolute from ``folder`` (URLs left alone)."""
    out = dict(raw)
    for keys in PATH_KEYS:
        if len(keys) == 1:
            if isinstance(out.get(keys[0]), str):
                out[keys[0]] = _beside_unless_url(folder, out[keys[0]])
            continue
        section = out.get(keys[0])
        if isinstance(section, dict) and isinstance(section.get(keys[1]), str):
            out[keys[0]] = {**section, keys[1]: _beside_unless_url(folder, section[keys[1]])}
    return out


_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: suites parse at DAG parse time


def _beside_unless_url(folder: Path, value: str) -> str:
    return value if "://" in value else _beside(folder, value)


def _beside(folder: Path, value: str) -> str:
    candidate = Path(value)
    return str(candidate if candidate.is_absolute() else (folder / candidate).resolve())


def parse_run_params(params: dict[str, Any]) -> RunParams:
    try:
        return RunParams.model_validate(params)
    except ValidationError as exc:
        raise ConfigError(f"DAG params: {_describe(exc)}") from exc


def _describe(exc: ValidationError) -> str:
    """One line per problem, ``key.path: what is wrong``; an unknown key also lists the keys its
    section takes, so a typo is found without opening the docs."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(root)"
        hint = ""
        if err["type"] == "extra_forbidden":
            section, allowed = ".".join(map(str, err["loc"][:-1])) or "the file", _section_keys(err["loc"][:-1])
            hint = f" (unknown key; {section} takes: {allowed})" if allowed else ""
        parts.append(f"{where}: {err['msg']}{hint}")
    return "; ".join(parts)


def _section_keys(loc: tuple[Any, ...]) -> str:
    """The keys the settings section at ``loc`` takes, or "" when it is not a settings model."""
    model: type[BaseModel] = Settings
    for part in loc:
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field is not None else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return ""
        model = annotation
    return ", ".join(model.model_fields)


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
