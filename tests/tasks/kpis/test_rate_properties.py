"""Properties of the support, survey and usage families over random tables.

Every ratio lies in [0, 1], NPS in [-100, 100], CES in [1, 7], times are non-negative, and the
segments of an additive metric add up to `all`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from northstar.config import Policy
from northstar.metrics import REGISTRY
from schemas.contract import ACCOUNTS, SURVEY_SCALES, SURVEYS, TICKET_CHANNELS, TICKETS, USAGE
from tasks.kpis.inputs import KpiInputs
from tasks.kpis.periods import Periods
from tasks.kpis.segments import segment_labels
from tasks.kpis.support import support_kpis
from tasks.kpis.surveys import survey_kpis
from tasks.kpis.usage import usage_kpis

START = datetime(2026, 1, 1, tzinfo=UTC)
ACCOUNT_IDS = ["a1", "a2", "a3", "a4"]
ACCOUNT_ROWS = pl.LazyFrame(
    {
        "account_id": ACCOUNT_IDS,
        "name": ["n"] * 4,
        "created_at": [START] * 4,
        "segment": ["SMB", "SMB", "Enterprise", None],
        "region": [None] * 4,
        "owner": [None] * 4,
    },
    schema={c.name: c.dtype for c in ACCOUNTS.columns},
)
PERIODS = Periods.of(days=[date(2026, 2, 10), date(2026, 3, 31)], months=[date(2026, 2, 1)])

minutes = st.integers(min_value=0, max_value=60 * 24 * 20)


@st.composite
def tickets(draw: st.DrawFn) -> pl.LazyFrame:
    rows = []
    for i in range(draw(st.integers(0, 25))):
        created = START + timedelta(minutes=draw(st.integers(0, 60 * 24 * 90)))
        response = draw(st.none() | minutes)
        solved = draw(st.none() | minutes)
        rows.append(
            {
                "ticket_id": f"t{i}",
                "account_id": draw(st.sampled_from(ACCOUNT_IDS)),
                "created_at": created,
                "first_response_at": None
                if response is None
                else created + timedelta(minutes=response),
                "solved_at": None if solved is None else created + timedelta(minutes=solved),
                "status": "solved" if solved is not None else "open",
                "channel": draw(st.sampled_from(TICKET_CHANNELS)),
                "priority": draw(st.sampled_from(["low", "normal", "high", "urgent"])),
                "agent_replies": draw(st.integers(0, 5)),
                "reopens": draw(st.integers(0, 2)),
                "handle_seconds": draw(st.none() | st.floats(0, 7200)),
            }
        )
    return pl.LazyFrame(rows, schema={c.name: c.dtype for c in TICKETS.columns})


@st.composite
def surveys(draw: st.DrawFn) -> pl.LazyFrame:
    rows = []
    for i in range(draw(st.integers(0, 30))):
        kind = draw(st.sampled_from(list(SURVEY_SCALES)))
        low, high = SURVEY_SCALES[kind]
        rows.append(
            {
                "response_id": f"r{i}",
                "account_id": draw(st.sampled_from(ACCOUNT_IDS)),
                "survey_type": kind,
                "score": draw(st.integers(low, high)),
                "responded_at": START + timedelta(hours=draw(st.integers(0, 24 * 90))),
            }
        )
    return pl.LazyFrame(rows, schema={c.name: c.dtype for c in SURVEYS.columns})


@st.composite
def usage(draw: st.DrawFn) -> pl.LazyFrame:
    cells = draw(
        st.sets(
            st.tuples(
                st.sampled_from(ACCOUNT_IDS),
                st.sampled_from(["u1", "u2", "u3"]),
                st.integers(0, 90),
            ),
            max_size=60,
        )
    )
    rows = [
        {
            "account_id": a,
            "user_id": u,
            "date": START.date() + timedelta(days=d),
            "events": 1,
            "active_seconds": 60.0,
        }
        for a, u, d in sorted(cells)
    ]
    return pl.LazyFrame(rows, schema={c.name: c.dtype for c in USAGE.columns})


def check_bounds(rows: pl.DataFrame) -> None:
    for row in rows.iter_rows(named=True):
        value, metric = row["value"], REGISTRY[row["metric"]]
        if value is None:
            continue
        if metric.unit == "ratio":
            assert 0.0 <= value <= 1.0 + 1e-12, row
        elif metric.name == "nps":
            assert -100.0 <= value <= 100.0, row
        elif metric.name == "ces":
            assert 1.0 <= value <= 7.0, row
        else:
            assert value >= 0.0, row


def check_rollups(rows: pl.DataFrame) -> None:
    additive = [m for m in rows["metric"].unique() if REGISTRY[m].additive]
    frame = rows.filter(pl.col("metric").is_in(additive))
    total = frame.filter(pl.col("segment") == "all").select(
        "snapshot_date", "grain", "metric", "value"
    )
    parts = (
        frame.filter(pl.col("segment").str.starts_with("segment="))
        .group_by("snapshot_date", "grain", "metric")
        .agg(pl.col("value").sum().alias("parts"))
    )
    joined = total.join(parts, on=["snapshot_date", "grain", "metric"], how="left")
    assert ((joined["value"] - joined["parts"].fill_null(0)).abs() < 1e-9).all(), joined


@settings(max_examples=60, deadline=None)
@given(tickets(), surveys(), usage())
def test_support_survey_usage_values_stay_in_their_ranges(
    ticket_rows: pl.LazyFrame, survey_rows: pl.LazyFrame, usage_rows: pl.LazyFrame
) -> None:
    inputs = KpiInputs(
        accounts=ACCOUNT_ROWS, tickets=ticket_rows, surveys=survey_rows, usage=usage_rows
    )
    labels = segment_labels(ACCOUNT_ROWS, ["segment"])
    policy = Policy()
    rows = pl.concat(
        [f(inputs, PERIODS, policy, labels) for f in (support_kpis, survey_kpis, usage_kpis)]
    ).collect()
    check_bounds(rows)
    check_rollups(rows)
