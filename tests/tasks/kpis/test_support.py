"""Support KPIs on tiny hand-built ticket tables; expected numbers are worked out in comments."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl
import pytest

from northstar.config import Policy
from schemas.contract import ACCOUNTS, TICKETS
from tasks.kpis.frame import KPI_SCHEMA
from tasks.kpis.inputs import KpiInputs
from tasks.kpis.periods import Periods
from tasks.kpis.segments import segment_labels
from tasks.kpis.support import solved_ticket_kpis, support_kpis

# a1 is SMB, a2 Enterprise, a3 has no segment (-> segment=unknown).
ACCOUNT_ROWS = pl.LazyFrame(
    {
        "account_id": ["a1", "a2", "a3"],
        "name": ["One", "Two", "Three"],
        "created_at": [datetime(2025, 1, 1, tzinfo=UTC)] * 3,
        "segment": ["SMB", "Enterprise", None],
        "region": ["EU", "US", None],
        "owner": [None, None, None],
    },
    schema={c.name: c.dtype for c in ACCOUNTS.columns},
)
LABELS = segment_labels(ACCOUNT_ROWS, ["segment"])
DEFAULT_POLICY = Policy.model_validate({})
JAN10 = date(2026, 1, 10)


def ts(text: str) -> datetime:
    """A UTC timestamp from 'YYYY-MM-DD HH:MM'."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def ticket(
    ticket_id: str,
    created: str,
    *,
    account: str = "a1",
    response_after_min: float | None = None,
    solved: str | None = None,
    replies: int = 1,
    reopens: int = 0,
    handle_seconds: float | None = None,
    priority: str = "normal",
    channel: str = "email",
) -> dict[str, Any]:
    """One helpdesk ticket row; the first response comes `response_after_min` after creation."""
    created_at = ts(created)
    return {
        "ticket_id": ticket_id,
        "account_id": account,
        "created_at": created_at,
        "first_response_at": None
        if response_after_min is None
        else created_at + timedelta(minutes=response_after_min),
        "solved_at": None if solved is None else ts(solved),
        "status": "open" if solved is None else "solved",
        "channel": channel,
        "priority": priority,
        "agent_replies": replies,
        "reopens": reopens,
        "handle_seconds": handle_seconds,
    }


def run(
    rows: list[dict[str, Any]],
    *,
    days: tuple[date, ...] = (JAN10,),
    months: tuple[date, ...] = (),
    timezone: str = "UTC",
    sla: dict[str, float] | None = None,
) -> pl.DataFrame:
    """support_kpis over the given tickets, collected (`sla` replaces the policy's targets)."""
    tickets = pl.LazyFrame(rows, schema={c.name: c.dtype for c in TICKETS.columns})
    inputs = KpiInputs(accounts=ACCOUNT_ROWS, tickets=tickets)
    settings: dict[str, Any] = {"timezone": timezone}
    if sla is not None:
        settings["sla_first_response_minutes"] = sla
    policy = Policy.model_validate(settings)
    return support_kpis(inputs, Periods.of(days, months), policy, LABELS).collect()


def kpi(
    out: pl.DataFrame,
    metric: str,
    *,
    segment: str = "all",
    snapshot: date = JAN10,
    grain: str = "day",
) -> dict[str, Any]:
    """The single row of one metric for one snapshot and segment."""
    rows = out.filter(
        (pl.col("metric") == metric)
        & (pl.col("segment") == segment)
        & (pl.col("snapshot_date") == snapshot)
        & (pl.col("grain") == grain)
    )
    assert rows.height == 1, f"{metric} {segment} {snapshot} {grain}: {rows}"
    return rows.row(0, named=True)


def has_row(out: pl.DataFrame, metric: str, snapshot: date = JAN10, grain: str = "day") -> bool:
    """Whether any row of `metric` exists for the snapshot."""
    found = out.filter(
        (pl.col("metric") == metric)
        & (pl.col("snapshot_date") == snapshot)
        & (pl.col("grain") == grain)
    )
    return found.height > 0


def test_first_response_median_of_even_count_is_mean_of_middle_pair() -> None:
    # Responses after 10, 20, 40, 80 minutes -> sorted middle pair 20, 40 -> median 30, n = 4.
    # t5 never got a response, so it is not in the sample.
    rows = [
        ticket(f"t{i}", "2026-01-10 09:00", response_after_min=m)
        for i, m in enumerate([80, 10, 40, 20], start=1)
    ] + [ticket("t5", "2026-01-10 09:00")]
    out = run(rows)
    assert out.schema == pl.Schema(KPI_SCHEMA)
    row = kpi(out, "first_response_minutes_median")
    assert row["value"] == pytest.approx(30.0)
    assert row["denominator"] == 4
    assert row["numerator"] is None


def test_resolution_median_of_odd_count_and_ticket_solved_after_window() -> None:
    # Snapshot 2026-01-10, 30-day window 2025-12-12 .. 2026-01-10.
    # Solved in the window: t1 1 h, t2 5 h, t3 2 h -> sorted 1, 2, 5 -> median 2 h, n = 3.
    # t4 was created (and answered after 30 min) in the window but solved on 01-12:
    # it is the only first response (median 30, n = 1), not a resolution, and is in backlog.
    rows = [
        ticket("t1", "2026-01-08 08:00", solved="2026-01-08 09:00"),
        ticket("t2", "2026-01-08 08:00", solved="2026-01-08 13:00"),
        ticket("t3", "2026-01-09 08:00", solved="2026-01-09 10:00"),
        ticket("t4", "2026-01-09 12:00", response_after_min=30, solved="2026-01-12 12:00"),
    ]
    out = run(rows)
    resolution = kpi(out, "resolution_hours_median")
    assert (resolution["value"], resolution["denominator"]) == (pytest.approx(2.0), 3)
    response = kpi(out, "first_response_minutes_median")
    assert (response["value"], response["denominator"]) == (pytest.approx(30.0), 1)
    assert kpi(out, "backlog")["value"] == 1


# Four tickets solved in the window of the 2026-01-10 snapshot:
#   t1 1 reply, 0 reopens, 600 s  -> first contact, 10 min
#   t2 2 replies               1200 s -> not first contact (two replies), 20 min
#   t3 1 reply, 1 reopen,     no handle time -> not first contact, not in AHT
#   t4 0 replies, 0 reopens, 1800 s -> first contact, 30 min
# fcr = 2 / 4 = 0.5; aht = (10 + 20 + 30) / 3 = 20 min (numerator 60, denominator 3).
FCR_TICKETS = [
    ticket("t1", "2026-01-09 08:00", solved="2026-01-09 12:00", replies=1, handle_seconds=600),
    ticket("t2", "2026-01-09 08:00", solved="2026-01-09 12:00", replies=2, handle_seconds=1200),
    ticket("t3", "2026-01-09 08:00", solved="2026-01-09 12:00", replies=1, reopens=1),
    ticket("t4", "2026-01-09 08:00", solved="2026-01-09 12:00", replies=0, handle_seconds=1800),
]


def test_fcr_with_reopen_and_two_replies_and_aht() -> None:
    out = run(FCR_TICKETS)
    fcr = kpi(out, "fcr_rate")
    assert (fcr["value"], fcr["numerator"], fcr["denominator"]) == (0.5, 2, 4)
    aht = kpi(out, "aht_minutes")
    assert aht["value"] == pytest.approx(20.0)
    assert (aht["numerator"], aht["denominator"]) == (pytest.approx(60.0), 3)


SOLVED_METRICS = (
    "resolution_hours_median",
    "resolution_hours_p90",
    "fcr_rate",
    "reopen_rate",
    "aht_minutes",
)


def test_solved_ticket_kpis_are_the_familys_solved_ticket_rows_and_nothing_else() -> None:
    # FCR_TICKETS, plus t5 created in the window and still open (backlog 1, a first response
    # after 15 min): the solved-ticket part has t1-t4's 5 metrics x 2 segments (all, SMB) and
    # none of t5's response or backlog rows.
    rows = [*FCR_TICKETS, ticket("t5", "2026-01-10 08:00", response_after_min=15)]
    tickets = pl.LazyFrame(rows, schema={c.name: c.dtype for c in TICKETS.columns})
    inputs = KpiInputs(accounts=ACCOUNT_ROWS, tickets=tickets)
    periods = Periods.of((JAN10,), ())
    part = solved_ticket_kpis(inputs, periods, DEFAULT_POLICY, LABELS).collect()
    family = support_kpis(inputs, periods, DEFAULT_POLICY, LABELS).collect()
    keys = ["metric", "segment"]
    assert part.height == 10
    assert set(part["metric"]) == set(SOLVED_METRICS)
    solved_rows = family.filter(pl.col("metric").is_in(SOLVED_METRICS))
    assert part.sort(keys).equals(solved_rows.sort(keys))
    assert kpi(part, "fcr_rate")["value"] == 0.5
    assert has_row(family, "backlog")
    assert not has_row(part, "backlog")


def test_solved_ticket_kpis_without_tickets_give_no_rows() -> None:
    inputs = KpiInputs(accounts=ACCOUNT_ROWS)
    out = solved_ticket_kpis(inputs, Periods.of((JAN10,), ()), DEFAULT_POLICY, LABELS).collect()
    assert out.height == 0
    assert out.schema == pl.Schema(KPI_SCHEMA)


def test_backlog_at_a_date_with_segments_summing_to_all() -> None:
    # State at the end of 2026-01-10 (UTC):
    #   t1 (a1, SMB)        created 01-05, solved 01-11 -> still open on 01-10: backlog
    #   t2 (a1, SMB)        created and solved on 01-10 -> not backlog
    #   t3 (a2, Enterprise) created 01-10 23:00, never solved -> backlog
    #   t4 (a2, Enterprise) created 01-11 -> not yet created
    #   t5 (a3, unknown)    solved 01-03 -> not backlog
    # all = 2, segment=SMB 1, segment=Enterprise 1, segment=unknown 0 (completed with zero).
    rows = [
        ticket("t1", "2026-01-05 10:00", solved="2026-01-11 09:00"),
        ticket("t2", "2026-01-10 08:00", solved="2026-01-10 17:00"),
        ticket("t3", "2026-01-10 23:00", account="a2"),
        ticket("t4", "2026-01-11 01:00", account="a2"),
        ticket("t5", "2026-01-01 10:00", account="a3", solved="2026-01-03 10:00"),
    ]
    out = run(rows)
    by_segment = {
        s: kpi(out, "backlog", segment=s)["value"]
        for s in ("all", "segment=SMB", "segment=Enterprise", "segment=unknown")
    }
    assert by_segment == {"all": 2, "segment=SMB": 1, "segment=Enterprise": 1, "segment=unknown": 0}
    assert by_segment["all"] == sum(v for s, v in by_segment.items() if s != "all")


def test_non_utc_timezone_moves_a_ticket_across_day_and_month_boundaries() -> None:
    # New York is UTC-5 in winter.
    # t1: created 01-10 12:00 UTC, solved 01-11 03:00 UTC = 01-10 22:00 New York.
    #   UTC: solved on 01-11 -> no resolution for snapshot 01-10, backlog 1.
    #   New York: solved on 01-10 -> resolution 15 h (n = 1), backlog 0.
    # t2: created 02-01 02:00 UTC = 01-31 21:00 New York, answered after 60 min.
    #   UTC: a February ticket; New York: a January ticket (monthly first response 60, n = 1).
    rows = [
        ticket("t1", "2026-01-10 12:00", solved="2026-01-11 03:00"),
        ticket("t2", "2026-02-01 02:00", response_after_min=60),
    ]
    jan = date(2026, 1, 1)
    utc = run(rows, months=(jan,))
    assert not has_row(utc, "resolution_hours_median")
    assert kpi(utc, "backlog")["value"] == 1
    assert not has_row(utc, "first_response_minutes_median", jan, "month")

    new_york = run(rows, months=(jan,), timezone="America/New_York")
    resolution = kpi(new_york, "resolution_hours_median")
    assert (resolution["value"], resolution["denominator"]) == (pytest.approx(15.0), 1)
    assert kpi(new_york, "backlog")["value"] == 0
    response = kpi(new_york, "first_response_minutes_median", snapshot=jan, grain="month")
    assert (response["value"], response["denominator"]) == (pytest.approx(60.0), 1)


def test_daily_and_monthly_snapshots_in_one_pass() -> None:
    # Day 2026-02-10 (window 01-12 .. 02-10) and month January 2026 in one call.
    #   t1 created 01-05 solved +2 h; t2 created 01-20 solved +4 h; t3 created 02-05 solved +6 h;
    #   t4 created 01-25 00:00 solved 02-03 00:00 (216 h).
    # Day: solved in window t2, t3, t4 -> 4, 6, 216 -> median 6 (n = 3); backlog on 02-10: 0.
    # January: solved in month t1, t2 -> 2, 4 -> median 3 (n = 2); backlog on 01-31: t4 -> 1.
    rows = [
        ticket("t1", "2026-01-05 08:00", solved="2026-01-05 10:00"),
        ticket("t2", "2026-01-20 08:00", solved="2026-01-20 12:00"),
        ticket("t3", "2026-02-05 08:00", solved="2026-02-05 14:00"),
        ticket("t4", "2026-01-25 00:00", solved="2026-02-03 00:00"),
    ]
    feb10, jan = date(2026, 2, 10), date(2026, 1, 1)
    out = run(rows, days=(feb10,), months=(jan,))
    day = kpi(out, "resolution_hours_median", snapshot=feb10)
    assert (day["value"], day["denominator"]) == (pytest.approx(6.0), 3)
    month = kpi(out, "resolution_hours_median", snapshot=jan, grain="month")
    assert (month["value"], month["denominator"]) == (pytest.approx(3.0), 2)
    assert kpi(out, "backlog", snapshot=feb10)["value"] == 0
    assert kpi(out, "backlog", snapshot=jan, grain="month")["value"] == 1


def test_segment_rows_for_medians_and_ratios() -> None:
    # Solved on 01-09: a1 (SMB) 1 h one reply, 3 h two replies; a2 (Enterprise) 10 h one reply.
    # all: median of 1, 3, 10 = 3, fcr 2/3; SMB: median of 1, 3 = 2, fcr 1/2;
    # Enterprise: median 10, fcr 1/1. segment=unknown has no solved ticket -> no rows.
    rows = [
        ticket("t1", "2026-01-09 08:00", solved="2026-01-09 09:00"),
        ticket("t2", "2026-01-09 08:00", solved="2026-01-09 11:00", replies=2),
        ticket("t3", "2026-01-09 00:00", account="a2", solved="2026-01-09 10:00"),
    ]
    out = run(rows)
    medians = {
        s: kpi(out, "resolution_hours_median", segment=s)["value"]
        for s in ("all", "segment=SMB", "segment=Enterprise")
    }
    assert medians == {"all": 3.0, "segment=SMB": 2.0, "segment=Enterprise": 10.0}
    fcr_rows = {
        s: kpi(out, "fcr_rate", segment=s) for s in ("all", "segment=SMB", "segment=Enterprise")
    }
    fcr = {s: (row["numerator"], row["denominator"]) for s, row in fcr_rows.items()}
    assert fcr == {"all": (2, 3), "segment=SMB": (1, 2), "segment=Enterprise": (1, 1)}
    assert out.filter(pl.col("segment") == "segment=unknown")["metric"].to_list() == ["backlog"]


def test_no_tickets_gives_zero_backlog_and_no_medians_or_ratios() -> None:
    # An empty ticket table: backlog 0 for all 4 segments on the day and the month; nothing else.
    jan = date(2026, 1, 1)
    out = run([], months=(jan,))
    assert set(out["metric"]) == {"backlog"}
    assert out.height == 2 * 4
    assert out["value"].to_list() == [0.0] * 8


def test_missing_ticket_table_gives_no_rows() -> None:
    # A source without helpdesk/tickets cannot say anything about support: no rows at all.
    inputs = KpiInputs(accounts=ACCOUNT_ROWS)
    out = support_kpis(inputs, Periods.of((JAN10,)), DEFAULT_POLICY, LABELS).collect()
    assert out.height == 0
    assert out.schema == pl.Schema(KPI_SCHEMA)


def test_a_response_after_the_snapshot_day_is_not_yet_known() -> None:
    # Snapshot 2026-01-10. t1 created 01-10 22:00, answered 60 min later (01-10 23:00): counted.
    # t2 created 01-10 23:30, answered 60 min later on 01-11 00:30: unknown on 01-10, left out,
    # so a backfill of 01-10 agrees with the live run of that day: median 60, n = 1.
    rows = [
        ticket("t1", "2026-01-10 22:00", response_after_min=60),
        ticket("t2", "2026-01-10 23:30", response_after_min=60),
    ]
    row = kpi(run(rows), "first_response_minutes_median")
    assert row["value"] == pytest.approx(60.0)
    assert row["denominator"] == 1


def test_p90_of_ten_values_interpolates_linearly() -> None:
    # Ten tickets created and solved on 01-09; responses after 25, 5, 120, 15, 40, 10, 35, 60, 20,
    # 30 minutes and resolutions after hours 1 .. 10.
    # Linear p90 of n = 10 sorted values x[0..9]: position 0.9 x (10 - 1) = 8.1, so
    # p90 = x[8] + 0.1 x (x[9] - x[8]).
    #   responses sorted 5 10 15 20 25 30 35 40 60 120 -> 60 + 0.1 x (120 - 60) = 66 minutes
    #   resolutions 1 .. 10 hours                       -> 9 + 0.1 x (10 - 9)   = 9.1 hours
    # The medians stay as they were: (25 + 30) / 2 = 27.5 minutes and (5 + 6) / 2 = 5.5 hours.
    minutes = [25, 5, 120, 15, 40, 10, 35, 60, 20, 30]
    rows = [
        ticket(
            f"t{i}",
            "2026-01-09 00:00",
            response_after_min=m,
            solved=f"2026-01-09 {i:02d}:00",
        )
        for i, m in enumerate(minutes, start=1)
    ]
    out = run(rows)
    response = kpi(out, "first_response_minutes_p90")
    assert (response["value"], response["denominator"]) == (pytest.approx(66.0), 10)
    assert response["numerator"] is None
    resolution = kpi(out, "resolution_hours_p90")
    assert (resolution["value"], resolution["denominator"]) == (pytest.approx(9.1), 10)
    assert kpi(out, "first_response_minutes_median")["value"] == pytest.approx(27.5)
    assert kpi(out, "resolution_hours_median")["value"] == pytest.approx(5.5)


def test_reopen_rate_over_tickets_solved_in_the_window() -> None:
    # Solved in the window: t1 0 reopens, t2 2 reopens, t3 1 reopen, t4 0 reopens.
    # t5 was reopened but is not solved, t6 was reopened but solved before the window (12-01).
    # reopen_rate = 2 reopened / 4 solved = 0.5; SMB (t1, t2) 1/2, Enterprise (t3, t4) 1/2.
    solved = "2026-01-09 12:00"
    rows = [
        ticket("t1", "2026-01-09 08:00", solved=solved),
        ticket("t2", "2026-01-09 08:00", solved=solved, reopens=2),
        ticket("t3", "2026-01-09 08:00", solved=solved, reopens=1, account="a2"),
        ticket("t4", "2026-01-09 08:00", solved=solved, account="a2"),
        ticket("t5", "2026-01-09 08:00", reopens=1),
        ticket("t6", "2025-11-30 08:00", solved="2025-12-01 08:00", reopens=1),
    ]
    out = run(rows)
    row = kpi(out, "reopen_rate")
    assert (row["value"], row["numerator"], row["denominator"]) == (0.5, 2, 4)
    for segment in ("segment=SMB", "segment=Enterprise"):
        part = kpi(out, "reopen_rate", segment=segment)
        assert (part["numerator"], part["denominator"]) == (1, 2)


def test_sla_breach_per_priority_as_known_at_each_state_date() -> None:
    # Targets: urgent 60, high 240, normal 480 minutes; low has no target, so never breaches.
    # Snapshot 01-10 (state end 01-11 00:00 UTC), tickets created in the window:
    #   u1 urgent 01-09 10:00, answered after 30            -> on time
    #   u2 urgent 01-09 10:00, answered after 90 (a2)       -> breach (90 > 60)
    #   h1 high   01-10 08:00, answered after 240           -> on time (exactly the target)
    #   n1 normal 01-10 12:00, no answer; target 20:00      -> breach (elapsed by the end)
    #   n2 normal 01-10 20:00, no answer; target 01-11 04:00 (a2) -> not yet
    #   n3 normal 01-10 22:00, answered 01-11 08:00 (600 min), unknown on 01-10; 120 min
    #      waited by the end < 480                          -> not yet
    #   l1 low    01-01 09:00, never answered               -> no target, no breach
    #   u3 urgent 2025-12-01, never answered: created before the window, left out.
    # 01-10: 2 breaches (u2, n1) / 7 tickets; SMB 1 (n1) / 5, Enterprise 1 (u2) / 2.
    # Snapshot 01-11 (window 12-13 .. 01-11, end 01-12 00:00): same 7 tickets; n2's target
    # passed at 01-11 04:00 and n3 was answered after 600 > 480 minutes -> 4 breaches / 7.
    rows = [
        ticket("u1", "2026-01-09 10:00", response_after_min=30, priority="urgent"),
        ticket("u2", "2026-01-09 10:00", response_after_min=90, priority="urgent", account="a2"),
        ticket("h1", "2026-01-10 08:00", response_after_min=240, priority="high"),
        ticket("n1", "2026-01-10 12:00"),
        ticket("n2", "2026-01-10 20:00", account="a2"),
        ticket("n3", "2026-01-10 22:00", response_after_min=600),
        ticket("l1", "2026-01-01 09:00", priority="low"),
        ticket("u3", "2025-12-01 09:00", priority="urgent"),
    ]
    jan11 = date(2026, 1, 11)
    sla = {"urgent": 60.0, "high": 240.0, "normal": 480.0}
    out = run(rows, days=(JAN10, jan11), sla=sla)
    day = kpi(out, "sla_breach_rate")
    assert (day["value"], day["numerator"], day["denominator"]) == (pytest.approx(2 / 7), 2, 7)
    smb = kpi(out, "sla_breach_rate", segment="segment=SMB")
    enterprise = kpi(out, "sla_breach_rate", segment="segment=Enterprise")
    assert (smb["numerator"], smb["denominator"]) == (1, 5)
    assert (enterprise["numerator"], enterprise["denominator"]) == (1, 2)
    later = kpi(out, "sla_breach_rate", snapshot=jan11)
    assert (later["numerator"], later["denominator"]) == (4, 7)


def test_default_sla_targets_breach_an_unanswered_low_ticket_after_a_day() -> None:
    # Default policy: low 1440 minutes. l1 created 01-09 08:00, unanswered: target passed at
    # 01-10 08:00, before the end of 01-10 -> 1 breach / 1 ticket.
    out = run([ticket("l1", "2026-01-09 08:00", priority="low")])
    row = kpi(out, "sla_breach_rate")
    assert (row["value"], row["numerator"], row["denominator"]) == (1.0, 1, 1)


FOUR_ACCOUNTS = pl.LazyFrame(
    {
        "account_id": ["a1", "a2", "a3", "a4", "a5"],
        "name": ["One", "Two", "Three", "Four", "Five"],
        "created_at": [datetime(2025, 1, 1, tzinfo=UTC)] * 5,
        "segment": ["SMB", "Enterprise", None, "SMB", "SMB"],
        "region": [None] * 5,
        "owner": [None] * 5,
    },
    schema={c.name: c.dtype for c in ACCOUNTS.columns},
)


def test_self_service_rate_over_four_active_accounts() -> None:
    # Active on 01-10: a1, a2, a3, a4 (a5 is not a paying account on that date).
    #   a1 (SMB): two self_service tickets in the window -> counts once
    #   a2 (Enterprise): an email ticket only -> no
    #   a3 (unknown): a self_service ticket on 2025-12-01, before the window -> no
    #   a4 (SMB): a self_service ticket on 01-10 -> yes
    #   a5: a self_service ticket, but not active -> in neither part
    # all 2 / 4 = 0.5; SMB 2 / 2; Enterprise 0 / 1; unknown 0 / 1.
    rows = [
        ticket("t1", "2026-01-05 08:00", channel="self_service"),
        ticket("t2", "2026-01-06 08:00", channel="self_service"),
        ticket("t3", "2026-01-06 08:00", account="a2"),
        ticket("t4", "2025-12-01 08:00", account="a3", channel="self_service"),
        ticket("t5", "2026-01-10 08:00", account="a4", channel="self_service"),
        ticket("t6", "2026-01-10 08:00", account="a5", channel="self_service"),
    ]
    active = pl.LazyFrame(
        {
            "snapshot_date": [JAN10] * 4,
            "grain": ["day"] * 4,
            "account_id": ["a1", "a2", "a3", "a4"],
            "mrr": [100.0] * 4,
        }
    )
    tickets = pl.LazyFrame(rows, schema={c.name: c.dtype for c in TICKETS.columns})
    inputs = KpiInputs(accounts=FOUR_ACCOUNTS, tickets=tickets, active=active)
    labels = segment_labels(FOUR_ACCOUNTS, ["segment"])
    out = support_kpis(inputs, Periods.of((JAN10,)), DEFAULT_POLICY, labels).collect()
    rows_by_segment = {
        s: kpi(out, "self_service_rate", segment=s)
        for s in ("all", "segment=SMB", "segment=Enterprise", "segment=unknown")
    }
    got = {s: (r["numerator"], r["denominator"]) for s, r in rows_by_segment.items()}
    assert got == {
        "all": (2, 4),
        "segment=SMB": (2, 2),
        "segment=Enterprise": (0, 1),
        "segment=unknown": (0, 1),
    }
    assert kpi(out, "self_service_rate")["value"] == 0.5


def test_self_service_rate_is_left_out_without_active_accounts() -> None:
    # No subscriptions -> inputs.active is None: every other support metric, no self-service.
    out = run([ticket("t1", "2026-01-09 08:00", channel="self_service", response_after_min=5)])
    assert "self_service_rate" not in set(out["metric"])
    assert kpi(out, "sla_breach_rate")["value"] == 0.0
