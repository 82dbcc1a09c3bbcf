"""The benchmark companies: generated once per scale as partitioned parquet, reused after.

A company is written to `<root>/<name>/` and marked complete with a `.complete` file holding
its parameters, so an interrupted generation is redone and a finished one is never repeated.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

from northstar.generate import generate

MARKER = ".complete"


@dataclass(frozen=True)
class Company:
    """One generated company: how many accounts over which dates."""

    name: str
    accounts: int
    start: date
    end: date
    seed: int = 11

    def params(self) -> dict[str, str | int]:
        """The parameters as JSON-ready values (what the marker file records)."""
        return {k: str(v) if isinstance(v, date) else v for k, v in asdict(self).items()}


THREE_YEARS = (date(2023, 1, 1), date(2025, 12, 31))
SCALES = {
    "S": Company("S", 10_000, *THREE_YEARS),
    "M": Company("M", 100_000, *THREE_YEARS),
    "L": Company("L", 500_000, *THREE_YEARS),
}
HISTORY = {
    "H1": Company("H1", 20_000, date(2025, 1, 1), date(2025, 12, 31)),
    "H5": Company("H5", 20_000, date(2021, 1, 1), date(2025, 12, 31)),
}
"""Two companies of the same size, one with 1 year of history and one with 5 years."""


def ensure(company: Company, root: Path) -> tuple[Path, dict[str, int]]:
    """The company's folder, generating it unless a complete one with these parameters exists."""
    folder = root / company.name
    marker = folder / MARKER
    if marker.is_file():
        recorded = json.loads(marker.read_text())
        if recorded.get("params") == company.params():
            return folder, recorded["rows"]
    if folder.exists():
        shutil.rmtree(folder)
    rows = generate(
        folder,
        accounts=company.accounts,
        start=company.start,
        end=company.end,
        seed=company.seed,
        fmt="parquet",
    )
    marker.write_text(json.dumps({"params": company.params(), "rows": rows}))
    return folder, rows


def folder_bytes(folder: Path) -> int:
    """Bytes on disk of every file under `folder`."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
