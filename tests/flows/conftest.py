"""Flow tests: a small generated company, written once per session, read by every flow test."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from northstar.generate import generate

SOURCE_START, SOURCE_END = date(2025, 1, 1), date(2025, 8, 31)


@pytest.fixture(scope="session")
def company(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """150 accounts over eight months of 2025, as CSV: every contract table present."""
    out = tmp_path_factory.mktemp("company")
    generate(out, accounts=150, start=SOURCE_START, end=SOURCE_END, seed=11, fmt="csv")
    return out


@pytest.fixture(scope="session")
def company_parquet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same company as `company`, written as parquet (big tables hive-partitioned)."""
    out = tmp_path_factory.mktemp("company-parquet")
    generate(out, accounts=150, start=SOURCE_START, end=SOURCE_END, seed=11, fmt="parquet")
    return out


@pytest.fixture(scope="session")
def company_year(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """120 accounts from mid-2024 to the end of 2025: a full year of history to backfill."""
    out = tmp_path_factory.mktemp("company-year")
    generate(
        out, accounts=120, start=date(2024, 7, 1), end=date(2025, 12, 31), seed=5, fmt="parquet"
    )
    return out
