"""Configuration: one TOML file (`northstar.toml`) overridable by `NORTHSTAR_*` variables.

Secrets never live here: store URLs with passwords and AWS keys come from the environment.
Nested fields use a double underscore, e.g. `NORTHSTAR_POLICY__TIMEZONE=Europe/Berlin`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from northstar.adapters.mapping import TableMapping

DEFAULT_CONFIG_FILE = "northstar.toml"


class Policy(BaseModel):
    """The choices that change numbers (DESIGN §6): stored with every run, hashed on KPI rows."""

    model_config = {"frozen": True, "extra": "forbid"}

    reporting_currency: str = "USD"
    timezone: str = "UTC"
    discounts_reduce_mrr: bool = True
    exclude_trials: bool = True
    churn_recognition: Literal["period_end", "cancellation"] = "period_end"
    past_due_churn_days: int | None = None
    churn_window_days: int = Field(30, ge=1)
    support_window_days: int = Field(30, ge=1)
    nps_window_days: int = Field(90, ge=1)
    csat_window_days: int = Field(30, ge=1)
    ces_window_days: int = Field(30, ge=1)
    usage_window_days: int = Field(30, ge=1)
    sla_first_response_minutes: dict[str, float] = Field(
        default_factory=lambda: {"urgent": 60.0, "high": 240.0, "normal": 480.0, "low": 1440.0}
    )

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo

        ZoneInfo(value)  # raises for an unknown zone
        return value

    def as_json(self) -> str:
        """Canonical JSON: sorted keys, so equal policies give equal text."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    @property
    def policy_hash(self) -> str:
        """A short, stable fingerprint of this policy."""
        return hashlib.sha256(self.as_json().encode()).hexdigest()[:16]


Points = list[tuple[float, float]]
"""Piecewise-linear band: (raw value, score 0-100) pairs sorted by raw value; flat outside."""


class HealthFactor(BaseModel):
    """One health signal: how raw values map to 0-100, and its weight before normalisation."""

    model_config = {"frozen": True, "extra": "forbid"}

    name: Literal[
        "usage_trend",
        "seat_activity",
        "nps",
        "csat",
        "urgent_tickets",
        "sla_breaches",
        "late_invoices",
        "mrr_trend",
        "days_since_login",
    ]
    weight: float = Field(ge=0)
    points: Points

    @field_validator("points")
    @classmethod
    def _sorted_band(cls, points: Points) -> Points:
        if len(points) < 2 or any(a[0] >= b[0] for a, b in itertools.pairwise(points)):
            raise ValueError("a band needs two or more points with increasing raw values")
        if any(not 0 <= score <= 100 for _, score in points):
            raise ValueError("band scores must lie in 0..100")
        return points


def _default_factors() -> list[HealthFactor]:
    """DESIGN §5's default model; raw values are defined in docs/health.md."""
    spec: list[tuple[str, float, Points]] = [
        ("usage_trend", 0.20, [(-0.5, 0.0), (0.0, 60.0), (0.2, 100.0)]),
        ("seat_activity", 0.10, [(0.2, 0.0), (0.8, 100.0)]),
        ("nps", 0.15, [(0.0, 0.0), (6.0, 30.0), (8.0, 70.0), (10.0, 100.0)]),
        ("csat", 0.05, [(1.0, 0.0), (3.0, 40.0), (5.0, 100.0)]),
        ("urgent_tickets", 0.10, [(0.0, 100.0), (1.0, 50.0), (3.0, 0.0)]),
        ("sla_breaches", 0.05, [(0.0, 100.0), (2.0, 50.0), (5.0, 0.0)]),
        ("late_invoices", 0.10, [(0.0, 100.0), (1.0, 40.0), (2.0, 0.0)]),
        ("mrr_trend", 0.10, [(-0.3, 0.0), (0.0, 70.0), (0.1, 100.0)]),
        ("days_since_login", 0.15, [(0.0, 100.0), (7.0, 80.0), (30.0, 20.0), (60.0, 0.0)]),
    ]
    return [HealthFactor(name=n, weight=w, points=p) for n, w, p in spec]


class HealthModel(BaseModel):
    """Weighted factors (weights normalised over the factors an account has data for) and bands."""

    model_config = {"frozen": True, "extra": "forbid"}

    factors: list[HealthFactor] = Field(default_factory=_default_factors)
    red_below: float = 40.0
    green_from: float = 70.0


class AlertRule(BaseModel):
    """A threshold on a stored metric, with hysteresis (DESIGN §7)."""

    model_config = {"frozen": True, "extra": "forbid"}

    name: str
    metric: str
    grain: Literal["day", "month"] = "day"
    scope: Literal["company", "segment", "account"] = "company"
    segments: list[str] | None = None
    comparison: Literal["above", "below"]
    threshold: float
    clear_threshold: float | None = None
    relative_to: str | None = None
    severity: Literal["info", "warning", "critical"] = "warning"
    channels: list[str] = Field(default_factory=lambda: ["default"])


def _default_rules() -> list[AlertRule]:
    """DESIGN §7's defaults."""
    return [
        AlertRule(
            name="monthly-logo-churn",
            metric="logo_churn_rate",
            grain="month",
            comparison="above",
            threshold=0.03,
            clear_threshold=0.025,
            severity="critical",
        ),
        AlertRule(
            name="nrr-below-100",
            metric="nrr",
            grain="month",
            comparison="below",
            threshold=1.0,
            clear_threshold=1.01,
        ),
        AlertRule(
            name="account-turned-red",
            metric="health_score",
            scope="account",
            comparison="below",
            threshold=40.0,
            clear_threshold=45.0,
        ),
        AlertRule(
            name="mrr-at-risk",
            metric="mrr_at_risk",
            relative_to="mrr",
            comparison="above",
            threshold=0.10,
            clear_threshold=0.08,
            severity="critical",
        ),
    ]


class NotificationTarget(BaseModel):
    """Where a channel delivers: Apprise URLs read from environment variables (they carry
    tokens, so never from the TOML file) and/or Prefect notification block names."""

    model_config = {"frozen": True, "extra": "forbid"}

    url_env: list[str] = Field(default_factory=list)
    prefect_blocks: list[str] = Field(default_factory=list)


class Settings(BaseSettings):
    """Where data comes from and goes to, plus the policy and the segment dimensions."""

    model_config = SettingsConfigDict(
        env_prefix="NORTHSTAR_",
        env_nested_delimiter="__",
        extra="forbid",
        toml_file=DEFAULT_CONFIG_FILE,
    )

    source: str = "./demo-data"
    store: str = "sqlite:///northstar.db"
    segment_dimensions: list[str] = Field(default_factory=lambda: ["segment"])
    policy: Policy = Field(default_factory=Policy)
    health: HealthModel = Field(default_factory=HealthModel)
    alert_rules: list[AlertRule] = Field(default_factory=_default_rules)
    channels: dict[str, NotificationTarget] = Field(
        default_factory=lambda: {"default": NotificationTarget(url_env=["NORTHSTAR_ALERT_URLS"])}
    )
    report_url: str | None = None
    report_dir: str | None = None
    schedule_timezone: str = "UTC"
    daily_cron: str = "30 6 * * *"
    monthly_cron: str = "0 7 1 * *"
    s3_endpoint_url: str | None = None
    systems: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Real systems the source holds synced tables of, by name (`stripe`, `hubspot`, ...): each
    `[systems.<name>]` table gives `schema` (folder or database schema; default the name) and
    the adapter's settings (docs/sources/)."""
    mappings: list[TableMapping] = Field(default_factory=list)
    """`[[mappings]]`: raw tables of any other system mapped onto contract tables."""

    @field_validator("schedule_timezone")
    @classmethod
    def _known_schedule_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo

        ZoneInfo(value)  # raises for an unknown zone
        return value

    extract_retries: int = Field(3, ge=0)
    extract_retry_delay_seconds: float = Field(2.0, ge=0)
    s3_timeout_seconds: float = Field(30.0, gt=0)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Precedence: explicit arguments, then environment, then the TOML file."""
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Settings from `config_file` (default `./northstar.toml` when present), env and overrides."""
    clean = {k: v for k, v in overrides.items() if v is not None}
    if config_file is None:
        return Settings(**clean)
    path = Path(config_file)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")

    class _FromFile(Settings):
        model_config = SettingsConfigDict(toml_file=path)

    return Settings.model_validate(_FromFile(**clean).model_dump())
