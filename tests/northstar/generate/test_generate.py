"""End-to-end checks of `generate`: layout, contract columns and types, keys, enums, determinism.

The shared company is written three ways: core tables as CSV, and core plus optional tables as
CSV and as parquet.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from northstar.generate import generate
from northstar.generate.writer import Format
from schemas.contract import (
    CORE_TABLES,
    INVOICE_KINDS,
    INVOICE_STATUSES,
    SURVEY_SCALES,
    SURVEY_TYPES,
    TABLES,
    TICKET_CHANNELS,
    TICKET_PRIORITIES,
    TICKET_STATUSES,
    TableSpec,
)

START, END = date(2025, 1, 1), date(2026, 2, 28)
ACCOUNTS = 200
Generated = tuple[dict[str, pl.DataFrame], dict[str, int], str, bool]
PARTITIONED = ("product/usage", "helpdesk/tickets", "billing/invoices", "product/web_sessions")
CORE = {t.name for t in CORE_TABLES}


def _small(out: Path, seed: int, fmt: Format = "csv", optional: bool = False) -> dict[str, int]:
    """A 200-account company over 14 months."""
    return generate(
        out, accounts=ACCOUNTS, start=START, end=END, seed=seed, fmt=fmt, optional=optional
    )


def _specs(optional: bool) -> dict[str, TableSpec]:
    """The tables a run writes: the core ones, plus the optional ones when asked for."""
    return TABLES if optional else {n: s for n, s in TABLES.items() if n in CORE}


def _read(out: Path, spec: TableSpec, fmt: str) -> pl.DataFrame:
    """Read a generated table back: CSV cast to contract types, parquet as written."""
    base = out / spec.name
    if fmt == "csv":
        present = pl.read_csv(base.with_suffix(".csv"), n_rows=0).columns
        schema = {c.name: c.dtype for c in spec.all_columns if c.name in present}
        return pl.read_csv(base.with_suffix(".csv"), schema=schema)
    if base.is_dir():
        return pl.read_parquet(base, hive_partitioning=True)
    return pl.read_parquet(base.with_suffix(".parquet"))


@pytest.fixture(
    scope="module",
    params=[("csv", False), ("csv", True), ("parquet", True)],
    ids=["csv", "csv-optional", "parquet-optional"],
)
def generated(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Generated:
    """One small company per format and optional flag, read back table by table."""
    fmt, optional = request.param
    out = tmp_path_factory.mktemp(f"company-{fmt}")
    counts = _small(out, 11, fmt, optional)
    tables = {name: _read(out, spec, fmt) for name, spec in _specs(optional).items()}
    return tables, counts, fmt, optional


def test_every_table_is_written_and_counted(generated: Generated) -> None:
    tables, counts, _, optional = generated
    assert set(counts) == set(tables) == (set(TABLES) if optional else CORE)
    for name, frame in tables.items():
        assert frame.height == counts[name] > 0, name


def test_contract_columns_have_contract_types(generated: Generated) -> None:
    tables, _, fmt, _ = generated
    for name, frame in tables.items():
        spec = TABLES[name]
        for col in spec.all_columns:
            if col.name in frame.columns or col.name in spec.column_names:
                assert frame.schema[col.name] == col.dtype, (fmt, name, col.name)
                if not col.nullable:
                    assert frame[col.name].null_count() == 0, (fmt, name, col.name)
        extra = set(frame.columns) - {c.name for c in spec.all_columns}
        assert extra == ({"month"} if fmt == "parquet" and name in PARTITIONED else set()), name


def test_keys_are_unique(generated: Generated) -> None:
    tables, *_ = generated
    for name, frame in tables.items():
        key = TABLES[name].key
        assert not frame.select(pl.struct(key).is_duplicated().any()).item(), name


def test_enums_stay_within_the_contract(generated: Generated) -> None:
    tables, *_ = generated
    allowed = {
        ("helpdesk/tickets", "status"): TICKET_STATUSES,
        ("helpdesk/tickets", "channel"): TICKET_CHANNELS,
        ("helpdesk/tickets", "priority"): TICKET_PRIORITIES,
        ("billing/invoices", "kind"): INVOICE_KINDS,
        ("billing/invoices", "status"): INVOICE_STATUSES,
        ("crm/surveys", "survey_type"): SURVEY_TYPES,
        ("billing/subscriptions", "billing_period"): ("month", "quarter", "year"),
        ("billing/subscriptions", "currency"): ("USD", "EUR"),
        ("crm/accounts", "segment"): ("SMB", "Mid-Market", "Enterprise"),
        ("crm/accounts", "region"): ("NA", "EMEA", "APAC", "LATAM"),
        ("crm/costs", "category"): ("sales", "marketing", "customer_success", "support"),
    }
    for (table, column), values in allowed.items():
        seen = set(tables[table][column].drop_nulls().unique())
        assert seen <= set(values), (table, column, seen - set(values))
    every_value_used = [
        ("helpdesk/tickets", "priority"),
        ("billing/invoices", "kind"),
        ("crm/surveys", "survey_type"),
    ]
    for table, column in every_value_used:
        assert set(tables[table][column].unique()) == set(allowed[(table, column)]), (table, column)


def test_survey_scores_follow_their_scales(generated: Generated) -> None:
    surveys = generated[0]["crm/surveys"]
    for kind, (lo, hi) in SURVEY_SCALES.items():
        scores = surveys.filter(pl.col("survey_type") == kind)["score"]
        assert scores.len() > 0, kind
        assert lo <= scores.min(), kind  # type: ignore[operator]
        assert scores.max() <= hi, kind  # type: ignore[operator]
        assert scores.n_unique() > (hi - lo) // 2, kind


def test_survey_ticket_ids_point_to_solved_tickets(generated: Generated) -> None:
    tables, *_ = generated
    about = tables["crm/surveys"].filter(pl.col("ticket_id").is_not_null())
    joined = about.join(tables["helpdesk/tickets"], on="ticket_id", how="left")
    assert about.height > 0
    assert joined["solved_at"].null_count() == 0
    assert (joined["account_id"] == joined["account_id_right"]).all()
    assert (joined["responded_at"] >= joined["solved_at"]).all()
    nps = tables["crm/surveys"].filter(pl.col("survey_type") == "nps")
    assert nps["ticket_id"].null_count() == nps.height


def test_events_fall_inside_the_range(generated: Generated) -> None:
    tables, *_ = generated
    inside = {
        "product/usage": "date",
        "helpdesk/tickets": "created_at",
        "crm/surveys": "responded_at",
        "crm/costs": "month",
        "billing/invoices": "issued_at",
        "crm/referrals": "referred_at",
        "product/web_sessions": "started_at",
        "fulfillment/orders": "delivered_at",
        "product/value_events": "first_value_at",
    }
    history = {"billing/invoices", "product/value_events"}
    for name, column in inside.items():
        if name not in tables:
            continue
        days = tables[name][column].cast(pl.Date)
        assert days.max() <= END, name  # type: ignore[operator]
        if name not in history:
            assert days.min() >= START, name  # type: ignore[operator]


def test_optional_tables_are_written_only_when_asked(generated: Generated) -> None:
    _, counts, _, optional = generated
    assert optional == ("product/web_sessions" in counts)
    assert all(name in counts for name in CORE)


def test_tickets_respond_and_solve_after_creation(generated: Generated) -> None:
    t = generated[0]["helpdesk/tickets"]
    assert (t["first_response_at"] > t["created_at"]).drop_nulls().all()
    assert (t["solved_at"] > t["created_at"]).drop_nulls().all()
    unsolved = t.filter(pl.col("solved_at").is_null())
    assert set(unsolved["status"]) <= {"new", "open", "pending", "hold"}
    assert set(t.filter(pl.col("solved_at").is_not_null())["status"]) <= {"solved", "closed"}
    fresh = t.filter(pl.col("status") == "new")
    assert fresh["first_response_at"].null_count() == fresh.height


def test_urgent_tickets_get_faster_first_responses(generated: Generated) -> None:
    t = generated[0]["helpdesk/tickets"].with_columns(
        wait=(pl.col("first_response_at") - pl.col("created_at")).dt.total_minutes()
    )
    median = dict(t.group_by("priority").agg(pl.col("wait").median()).iter_rows())
    assert median["urgent"] < median["high"] < median["normal"] < median["low"]


def test_money_is_non_negative_and_in_cents(generated: Generated) -> None:
    tables, *_ = generated
    money = {
        "billing/invoices": ("amount", "tax"),
        "billing/subscriptions": ("amount", "discount"),
        "crm/costs": ("amount",),
    }
    for name, columns in money.items():
        for column in columns:
            values = tables[name][column]
            assert (values >= 0).all(), (name, column)
            assert ((values * 100).round(6) == (values * 100).round(0)).all(), (name, column)
    invoices = tables["billing/invoices"]
    assert (invoices["amount"] > 0).all()
    assert ((invoices["due_at"] - invoices["issued_at"]).dt.total_days() == 30).all()


def test_invoice_payments_match_status(generated: Generated) -> None:
    invoices = generated[0]["billing/invoices"]
    paid = invoices.filter(pl.col("status") == "paid")
    assert paid["paid_at"].null_count() == 0
    assert (paid["paid_at"] >= paid["issued_at"]).all()
    assert (
        invoices.filter(pl.col("status") != "paid")["paid_at"].null_count()
        == invoices.filter(pl.col("status") != "paid").height
    )
    statuses = invoices["status"].value_counts()
    share = dict(zip(statuses["status"], statuses["count"] / invoices.height, strict=True))
    assert share["paid"] > 0.8


def test_eur_rows_have_a_rate_on_every_day(generated: Generated) -> None:
    tables, *_ = generated
    fx = tables["billing/fx_rates"]
    assert set(fx["currency"]) == {"EUR"}
    assert fx["rate"].min() >= 1.05  # type: ignore[operator]
    assert fx["rate"].max() <= 1.15  # type: ignore[operator]
    days = fx["date"]
    subs = tables["billing/subscriptions"].filter(pl.col("currency") == "EUR")
    first_start: date = subs["start_date"].min()  # type: ignore[assignment]
    needed_from = min(first_start, START)
    expected = pl.date_range(needed_from, END, eager=True)
    assert expected.is_in(days.implode()).all()
    assert days.n_unique() == days.len()


def test_about_a_fifth_of_accounts_bill_in_eur(generated: Generated) -> None:
    subs = generated[0]["billing/subscriptions"]
    by_account = subs.group_by("account_id").agg(
        pl.col("currency").n_unique().alias("n"), (pl.col("currency") == "EUR").any().alias("eur")
    )
    assert (by_account["n"] == 1).all()
    assert 0.1 < by_account["eur"].mean() < 0.3  # type: ignore[operator]


def test_accounts_look_like_a_crm(generated: Generated) -> None:
    accounts = generated[0]["crm/accounts"]
    assert accounts["account_id"].str.contains(r"^A\d{7}$").all()
    assert accounts["owner"].drop_nulls().str.contains(r"^csm-\d{2,}$").all()
    assert 0 < accounts["owner"].null_count() < accounts.height // 4
    assert accounts["name"].n_unique() > accounts.height * 0.9
    assert set(accounts["segment"]) == {"SMB", "Mid-Market", "Enterprise"}
    assert (accounts["created_at"].dt.date() <= END).all()


def test_parquet_partitions_big_tables_by_month(tmp_path: Path) -> None:
    _small(tmp_path, 3, "parquet", optional=True)
    for name in PARTITIONED:
        months = sorted(p.name for p in (tmp_path / name).iterdir())
        assert months[-1] == "month=2026-02", name
        assert all((tmp_path / name / m / "part-0.parquet").is_file() for m in months)
    assert (tmp_path / "crm/accounts.parquet").is_file()
    assert (tmp_path / "fulfillment/orders.parquet").is_file()
    assert not (tmp_path / "crm/accounts.csv").exists()


def _snapshot(out: Path) -> dict[str, bytes]:
    """Every file under `out` by relative path."""
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_same_seed_same_bytes_other_seed_other_data(tmp_path: Path, fmt: Format) -> None:
    first, again, other = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    _small(first, 5, fmt, optional=True)
    _small(again, 5, fmt, optional=True)
    _small(other, 6, fmt, optional=True)
    a, b, c = _snapshot(first), _snapshot(again), _snapshot(other)
    assert a == b
    usage = "product/usage.csv" if fmt == "csv" else "product/usage/month=2025-06/part-0.parquet"
    assert a[usage] != c[usage]
    orders = "fulfillment/orders." + fmt
    assert a[orders] != c[orders]


def test_core_tables_are_the_same_bytes_with_or_without_optional(tmp_path: Path) -> None:
    core, full = tmp_path / "core", tmp_path / "full"
    _small(core, 5)
    _small(full, 5, optional=True)
    without, with_optional = _snapshot(core), _snapshot(full)
    optional_files = {f"{t}.csv" for t in set(TABLES) - CORE}
    assert set(with_optional) == set(without) | optional_files
    assert {k: with_optional[k] for k in without} == without


def test_booleans_are_written_as_true_and_false_in_csv(tmp_path: Path) -> None:
    _small(tmp_path, 5, optional=True)
    sessions = pl.read_csv(tmp_path / "product/web_sessions.csv", infer_schema=False)
    orders = pl.read_csv(tmp_path / "fulfillment/orders.csv", infer_schema=False)
    assert set(sessions["converted"]) == {"true", "false"}
    assert set(orders["accurate"]) == {"true", "false", None}


def test_rerun_into_the_same_folder_replaces_old_output(tmp_path: Path) -> None:
    generate(tmp_path, seed=5, accounts=300, start=START, end=date(2026, 6, 30), fmt="parquet")
    counts = _small(tmp_path, 5, "parquet")
    assert not (tmp_path / "product/usage/month=2026-06").exists()
    assert pl.read_parquet(tmp_path / "product/usage").height == counts["product/usage"]


@pytest.mark.parametrize("optional", [False, True])
def test_progress_reports_rising_fractions_up_to_one(tmp_path: Path, optional: bool) -> None:
    seen: list[tuple[str, float]] = []
    generate(
        tmp_path,
        seed=5,
        accounts=50,
        start=START,
        end=END,
        progress=lambda s, f: seen.append((s, f)),
        optional=optional,
    )
    fractions = [f for _, f in seen]
    assert len(seen) >= 5
    assert ("orders" in {s for s, _ in seen}) == optional
    assert fractions == sorted(set(fractions))
    assert fractions[0] == 0.0
    assert seen[-1] == ("done", 1.0)


def test_volume_per_account_is_sane(generated: Generated) -> None:
    _, counts, *_ = generated
    per_account_month = sum(counts.values()) / ACCOUNTS / 14
    # 100-250 rows per account over ~34 months is 3-7.5 a month; a 14-month range holds more
    # live accounts per month, so allow up to twice the upper end.
    assert 2 < per_account_month < 15
    assert counts["product/usage"] > sum(v for k, v in counts.items() if k != "product/usage")


def test_rejects_an_empty_range(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="end after start"):
        generate(tmp_path, start=END, end=START)
