"""Configuration: one TOML file (`northstar.toml`) overridable by `NORTHSTAR_*` variables.

Secrets never live here: store URLs with passwords and AWS keys come from the environment.
Nested fields use a double underscore, e.g. `NORTHSTAR_POLICY__TIMEZONE=Europe/Berlin`.
"""

from __future__ import annotations

import hashlib
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
    s3_endpoint_url: str | None = None
    extract_retries: int = Field(3, ge=0)
    extract_retry_delay_seconds: float = Field(2.0, ge=0)

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
