"""Model checks that cannot run, or fail the table as a whole, stop the run as pandera reports them.

Validation evaluates the pandera model's checks in one polars query; these cases pin what a
broken or table-level check does: a ContractError naming the table, the column (or the model
for a table check) and the check, exactly as pandera's failure cases name them.
"""

from __future__ import annotations

import pandera.polars as pa
import polars as pl
import pytest

from schemas.contract import TABLES
from schemas.crm import Accounts
from schemas.models import MODELS
from tasks.validate import ContractError, validate_table

RAW = pl.DataFrame(
    {
        "account_id": ["A1", "A2"],
        "name": ["Acme", "Bolt"],
        "created_at": ["2025-01-01", "2025-01-02"],
        "segment": ["SMB", None],
        "region": ["EU", "NA"],
        "owner": ["ann", "bob"],
    }
).with_row_index("_row_number", offset=1)
"""Two valid crm/accounts rows as read from CSV."""


class MissingColumn(Accounts):
    @pa.dataframe_check(error="owner: {owner} is not in the team")
    def owner_known(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col("team") == pl.col("owner"))


class FailsWhileRunning(Accounts):
    @pa.check("region", name="region_number", error="'{value}' is not a region number")
    def region_number(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col(data.key).str.to_integer() > 0)


class WholeTable(Accounts):
    @pa.dataframe_check(error="the table is never right")
    def never(cls, data: pa.PolarsData) -> bool:
        return False


class UniqueColumn(Accounts):
    owner: str = pa.Field(nullable=True, unique=True)


@pytest.mark.parametrize(
    ("model", "column", "problem"),
    [
        # a table check on a column the frame lacks: pandera names the model
        (MissingColumn, "MissingColumn", "owner: {owner} is not in the team"),
        # 'EU' is no integer: the check itself errors while the rows are evaluated
        (FailsWhileRunning, "region", "'{value}' is not a region number"),
        # a check answering False for the whole table, not per row
        (WholeTable, "WholeTable", "the table is never right"),
    ],
)
def test_a_check_that_cannot_judge_rows_is_a_contract_error(
    monkeypatch: pytest.MonkeyPatch, model: type[Accounts], column: str, problem: str
) -> None:
    monkeypatch.setitem(MODELS, "crm/accounts", model)
    with pytest.raises(ContractError) as raised:
        validate_table(TABLES["crm/accounts"], RAW.lazy(), "accounts.csv")
    assert (raised.value.table, raised.value.column) == ("crm/accounts", column)
    assert raised.value.problem == problem


def test_unique_in_a_model_is_refused_for_a_declared_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(MODELS, "crm/accounts", UniqueColumn)
    with pytest.raises(TypeError, match="declare a key"):
        validate_table(TABLES["crm/accounts"], RAW.lazy(), "accounts.csv")


def test_reasons_are_worded_for_rows_failing_different_checks() -> None:
    # row 4: ces runs 1-7, so 10 is off the scale; row 5: 'abc' is no integer, so its scale is
    # not checked (NULL passes), its blank responded_at is missing. Rows 1-3 are valid. (The
    # two failing rows' columns come out of the checks in several chunks, which once made
    # polars panic while wording the scale reason.)
    surveys = pl.DataFrame(
        {
            "response_id": ["R0", "R1", "R2", "R3", "R4"],
            "account_id": ["A3", "A1", "A2", "A4", "A3"],
            "survey_type": ["csat", "csat", "ces", "ces", "csat"],
            "score": ["1", "3", "5", "10", "abc"],
            "responded_at": ["2025-02-01 09:30", "2025-03-03", "2025-02-01", "2025-02-01", ""],
            "ticket_id": ["T1", "T2", "T3", None, "T5"],
        }
    ).with_row_index("_row_number", offset=1)
    result = validate_table(TABLES["crm/surveys"], surveys.lazy(), "surveys.csv")
    assert result.clean["response_id"].to_list() == ["R0", "R1", "R2"]
    assert dict(result.quarantine.select("row_number", "reasons").iter_rows()) == {
        4: "score: 10 is outside the ces scale",
        5: "score: 'abc' is not an integer; responded_at: missing value",
    }
