"""Lifecycle KPIs (renewal rate, trial conversion, time to value) on books worked by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import polars as pl
import pytest

from northstar.config import Policy
from schemas.contract import ACCOUNTS, SUBSCRIPTIONS, VALUE_EVENTS
from tasks.kpis.inputs import KpiInputs
from tasks.kpis.lifecycle import lifecycle_kpis
from tasks.kpis.periods import Periods
from tasks.kpis.segments import segment_labels

D = date
SUB_SCHEMA = {c.name: c.dtype for c in SUBSCRIPTIONS.columns}
ACC_SCHEMA = {c.name: c.dtype for c in ACCOUNTS.columns}
VALUE_SCHEMA = {c.name: c.dtype for c in VALUE_EVENTS.columns}
POLICY = Policy()
Row = tuple[float | None, float | None, float | None]
MAR, MAR_20 = D(2024, 3, 1), D(2024, 3, 20)


def sub(
    account: str,
    start: date,
    end: date | None = None,
    *,
    period: str = "month",
    trial_end: date | None = None,
    amount: float = 100.0,
) -> dict[str, Any]:
    """One USD price period row of billing/subscriptions."""
    return {
        "subscription_id": f"{account}-{start}",
        "account_id": account,
        "plan": "pro",
        "billing_period": period,
        "amount": amount,
        "discount": 0.0,
        "currency": "USD",
        "start_date": start,
        "end_date": end,
        "trial_end": trial_end,
    }


def at(day: date, hour: int = 10) -> datetime:
    """A UTC timestamp on `day`."""
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def accounts(
    segments: dict[str, str | None], created: dict[str, date] | None = None
) -> pl.LazyFrame:
    """crm/accounts with a segment and, optionally, a creation day (10:00 UTC) per account."""
    ids = list(segments)
    made = created or {}
    return pl.LazyFrame(
        {
            "account_id": ids,
            "name": ids,
            "created_at": [at(made[a]) if a in made else at(D(2020, 1, 1)) for a in ids],
            "segment": list(segments.values()),
            "region": [None] * len(ids),
            "owner": [None] * len(ids),
        },
        schema=ACC_SCHEMA,
    )


def book(
    rows: list[dict[str, Any]],
    segments: dict[str, str | None] | None = None,
    created: dict[str, date] | None = None,
    values: dict[str, datetime] | None = None,
) -> KpiInputs:
    """KpiInputs from subscription rows, account segments, creation days and value events."""
    segs = segments or {r["account_id"]: "X" for r in rows}
    events = (
        None
        if values is None
        else pl.LazyFrame(
            {"account_id": list(values), "first_value_at": list(values.values())},
            schema=VALUE_SCHEMA,
        )
    )
    return KpiInputs(
        accounts=accounts(segs, created),
        subscriptions=pl.LazyFrame(rows, schema=SUB_SCHEMA),
        value_events=events,
    )


def kpis(
    inputs: KpiInputs, periods: Periods, policy: Policy = POLICY
) -> dict[tuple[date, str, str, str], Row]:
    """{(snapshot_date, grain, segment, metric): (value, numerator, denominator)}."""
    labels = segment_labels(inputs.accounts, ["segment"])
    out = lifecycle_kpis(inputs, periods, policy, labels).collect()
    return {
        (r["snapshot_date"], r["grain"], r["segment"], r["metric"]): (
            r["value"],
            r["numerator"],
            r["denominator"],
        )
        for r in out.iter_rows(named=True)
    }


def ratio(num: float, den: float) -> tuple[object, float, float]:
    """(value, numerator, denominator) of num / den."""
    return (pytest.approx(num / den), num, den)


def test_renewal_worked_example_100_due_80_renewing() -> None:
    # r00..r99: annual price periods from Mar 10 2023 -> every one has a term end on Mar 10 2024
    # r00..r39 open-ended: the contract simply continues, no new row          -> renewed
    # r40..r79 run past Mar 10 and end Jun 1 2024 (a later change)            -> renewed
    # r80..r99 end on Mar 10 2024 (cancelled at term end), nothing follows     -> not renewed
    # March: 100 due, 80 renewed -> 0.8
    # segment A = r00..r49 (all renew) -> 50 / 50; B = r50..r99 (r50..r79 renew) -> 30 / 50
    ids = [f"r{i:02d}" for i in range(100)]
    ends: list[date | None] = [None] * 40 + [D(2024, 6, 1)] * 40 + [D(2024, 3, 10)] * 20
    rows = [sub(a, D(2023, 3, 10), e, period="year") for a, e in zip(ids, ends, strict=True)]
    got = kpis(book(rows, {a: "A" if a < "r50" else "B" for a in ids}), Periods.of(months=[MAR]))
    assert got[(MAR, "month", "all", "renewal_rate")] == ratio(80, 100)
    assert got[(MAR, "month", "segment=A", "renewal_rate")] == ratio(50, 50)
    assert got[(MAR, "month", "segment=B", "renewal_rate")] == ratio(30, 50)


def test_renewal_due_at_every_quarter_end_by_calendar_months() -> None:
    # q1: quarterly from Nov 30 2023, cancelled at a term end: end_date Aug 30 2024
    # term ends = start + 3k calendar months: Feb 29 (leap year), May 30, Aug 30, (Nov 30 > end)
    # Feb: Feb 29, still running -> 1 / 1 | Mar: nothing due -> NULL | May: May 30 -> 1 / 1
    # Aug: Aug 30 = end_date, nothing follows -> 0 / 1 | Nov: after the end -> NULL
    # day May 29 (window Apr 30 .. May 29): the term end is May 30, not May 29 -> NULL
    # day May 30 (window May 1 .. May 30): 1 / 1
    months = [D(2024, m, 1) for m in (2, 3, 5, 8, 11)]
    may_29, may_30 = D(2024, 5, 29), D(2024, 5, 30)
    inputs = book([sub("q1", D(2023, 11, 30), D(2024, 8, 30), period="quarter")])
    got = kpis(inputs, Periods.of(days=[may_29, may_30], months=months))
    rate = {k[:2]: v for k, v in got.items() if k[2:] == ("all", "renewal_rate")}
    assert rate == {
        (D(2024, 2, 1), "month"): ratio(1, 1),
        (D(2024, 3, 1), "month"): (None, 0.0, 0.0),
        (D(2024, 5, 1), "month"): ratio(1, 1),
        (D(2024, 8, 1), "month"): ratio(0, 1),
        (D(2024, 11, 1), "month"): (None, 0.0, 0.0),
        (may_29, "day"): (None, 0.0, 0.0),
        (may_30, "day"): ratio(1, 1),
    }


def test_renewal_terms_of_an_old_contract_and_of_a_trial_count_from_start_date() -> None:
    # l1: annual from Feb 29 2020, open -> term ends Feb 28 2021, 2022, 2023 and Feb 29 2024
    # Feb 2023: Feb 28 -> 1 / 1 | day Feb 28 2024: Feb 29 is not yet in its window -> NULL
    # day Feb 29 2024: 1 / 1
    # t1: annual from Mar 1 2023 with a trial to Mar 15 2023 -> term end Mar 1 2024, not Mar 15
    # day Mar 10 2024 (window Feb 10 .. Mar 10): Mar 1 -> 1 / 1 (l1's Feb 29 too, segment L)
    # day Apr 10 2024 (window Mar 12 .. Apr 10): nothing due -> NULL
    inputs = book(
        [
            sub("l1", D(2020, 2, 29), period="year"),
            sub("t1", D(2023, 3, 1), period="year", trial_end=D(2023, 3, 15)),
        ],
        {"l1": "L", "t1": "T"},
    )
    feb_28, feb_29, mar_10, apr_10 = D(2024, 2, 28), D(2024, 2, 29), D(2024, 3, 10), D(2024, 4, 10)
    got = kpis(inputs, Periods.of(days=[feb_28, feb_29, mar_10, apr_10], months=[D(2023, 2, 1)]))
    assert got[(D(2023, 2, 1), "month", "segment=L", "renewal_rate")] == ratio(1, 1)
    assert got[(feb_28, "day", "segment=L", "renewal_rate")] == (None, 0.0, 0.0)
    assert got[(feb_29, "day", "segment=L", "renewal_rate")] == ratio(1, 1)
    assert got[(mar_10, "day", "segment=T", "renewal_rate")] == ratio(1, 1)
    assert got[(apr_10, "day", "segment=T", "renewal_rate")] == (None, 0.0, 0.0)


# c1: annual term ends Mar 5, end_date Mar 5 (cancelled at term end)     -> not renewed
# c2: annual term ends Mar 5, plan change at renewal: new row Mar 5       -> renewed
# c3: annual term ends Mar 18 (end_date), next row Mar 22                 -> renewed, known Mar 22
# c4: annual open from Mar 25 2023 -> term end Mar 25 2024, continues     -> renewed, after Mar 20
# c5: annual from Jun 10 2023, plan change mid-term Mar 12 2024 (new annual row from Mar 12):
#     the old row's term end Jun 10 2024 is after its end, the new row's is Mar 12 2025 -> not due
# c6: quarterly term ends Mar 5 (end_date), next row Mar 13 (8 days)     -> not renewed
# c7: quarterly term ends Mar 5 (end_date), next row Mar 12 (7 days)     -> renewed
# c8: monthly price period ends Mar 5                                    -> not a term
# c9: quarterly open from Nov 20 2023 -> term end Feb 20 2024, continues  -> renewed, February
RENEWALS = book(
    [
        sub("c1", D(2023, 3, 5), D(2024, 3, 5), period="year"),
        sub("c2", D(2023, 3, 5), D(2024, 3, 5), period="year"),
        sub("c2", D(2024, 3, 5), period="year", amount=150.0),
        sub("c3", D(2023, 3, 18), D(2024, 3, 18), period="year"),
        sub("c3", D(2024, 3, 22), period="year"),
        sub("c4", D(2023, 3, 25), period="year"),
        sub("c5", D(2023, 6, 10), D(2024, 3, 12), period="year"),
        sub("c5", D(2024, 3, 12), period="year", amount=200.0),
        sub("c6", D(2023, 12, 5), D(2024, 3, 5), period="quarter"),
        sub("c6", D(2024, 3, 13), period="quarter"),
        sub("c7", D(2023, 12, 5), D(2024, 3, 5), period="quarter"),
        sub("c7", D(2024, 3, 12), period="quarter"),
        sub("c8", D(2024, 2, 5), D(2024, 3, 5)),
        sub("c8", D(2024, 3, 5)),
        sub("c9", D(2023, 11, 20), period="quarter"),
    ],
    {**{f"c{i}": "C" for i in range(1, 10)}, "c5": "M"},
)


def test_renewal_late_or_unknown_at_the_snapshot_does_not_count() -> None:
    # March close (state Mar 31): due c1, c2, c3, c4, c6, c7 -> renewed c2, c3, c4, c7 -> 4 / 6
    # day Mar 20 (window Feb 20 .. Mar 20): due c1, c2, c3, c6, c7, c9 (c4's term end Mar 25 is
    # after the state date); c3's new row (Mar 22) is not yet known -> renewed c2, c7, c9 -> 3 / 6
    # segment M (c5, mid-term plan change only): nothing due -> NULL in both
    got = kpis(RENEWALS, Periods.of(days=[MAR_20], months=[MAR]))
    assert got[(MAR, "month", "all", "renewal_rate")] == ratio(4, 6)
    assert got[(MAR_20, "day", "all", "renewal_rate")] == ratio(3, 6)
    assert got[(MAR, "month", "segment=M", "renewal_rate")] == (None, 0.0, 0.0)
    assert got[(MAR_20, "day", "segment=M", "renewal_rate")] == (None, 0.0, 0.0)


def test_nothing_due_for_renewal_gives_null() -> None:
    # January 2024: no term end of any row falls in the month -> 0 / 0 -> NULL, row still present
    got = kpis(RENEWALS, Periods.of(months=[D(2024, 1, 1)]))
    assert got[(D(2024, 1, 1), "month", "all", "renewal_rate")] == (None, 0.0, 0.0)


def contract(account: str, *periods: tuple[date, date | None], period: str) -> list[dict[str, Any]]:
    """The price periods (start, end) of one subscription: every row carries its one id."""
    return [
        {**sub(account, start, end, period=period), "subscription_id": f"S-{account}"}
        for start, end in periods
    ]


# One subscription per account, its own segment; every date worked by hand:
# u1 annual from 2025-05-20, seat upgrade 2025-06-20 (new price period, open): the term began
#    with the contract -> due 2026-05-20 (continues: renewed), not 2026-06-20
# q1 quarterly from 2025-05-20, upgrade 2025-06-20 (open): due 2025-08-20, 2025-11-20,
#    2026-02-20, 2026-05-20 (all renewed), not 2025-09-20 / 2026-06-20
# m1 monthly from 2025-05-20, upgrade 2025-06-20 (open): a monthly price is no commitment term
#    -> never due
# r1 annual 2024-05-20 .. 2025-05-20, renewed on time with a plan change (2025-05-20 ..
#    2025-09-01), upgraded mid-term 2025-09-01 (open): due 2025-05-20 (renewed, counted once:
#    the new row starts on it) and 2026-05-20 (renewed), not 2026-09-01
# r2 annual 2024-05-20 .. 2025-05-20, renewed 5 days late 2025-05-25 (open, in the 7-day grace):
#    due 2025-05-20 (renewed); the renewal starts the next term -> due 2026-05-25 (renewed)
# c1 annual from 2025-05-20, upgrade 2025-06-20, cancelled at the term end (end 2026-05-20):
#    due 2026-05-20, not renewed
# c2 annual from 2025-05-20, upgrade 2025-06-20, cancelled mid-term (end 2025-12-01): never due
# May 2026 (all): due u1, q1, r1, r2, c1; renewed u1, q1, r1, r2 -> 4 / 5
MAY_20, JUN_20 = D(2025, 5, 20), D(2025, 6, 20)
CONTRACTS = book(
    [
        *contract("u1", (MAY_20, JUN_20), (JUN_20, None), period="year"),
        *contract("q1", (MAY_20, JUN_20), (JUN_20, None), period="quarter"),
        *contract("m1", (MAY_20, JUN_20), (JUN_20, None), period="month"),
        *contract(
            "r1",
            (D(2024, 5, 20), MAY_20),
            (MAY_20, D(2025, 9, 1)),
            (D(2025, 9, 1), None),
            period="year",
        ),
        *contract("r2", (D(2024, 5, 20), MAY_20), (D(2025, 5, 25), None), period="year"),
        *contract("c1", (MAY_20, JUN_20), (JUN_20, D(2026, 5, 20)), period="year"),
        *contract("c2", (MAY_20, JUN_20), (JUN_20, D(2025, 12, 1)), period="year"),
    ],
    {a: a for a in ("u1", "q1", "m1", "r1", "r2", "c1", "c2")},
)
NOT_DUE = (None, 0.0, 0.0)


def test_renewal_is_due_on_the_contract_anniversary_not_after_a_mid_term_change() -> None:
    months = [D(2025, 5, 1), D(2025, 8, 1), D(2025, 9, 1), D(2025, 11, 1), D(2026, 5, 1)]
    months.append(D(2026, 6, 1))
    got = kpis(CONTRACTS, Periods.of(months=months))
    rate = {(k[0], k[2]): v for k, v in got.items() if k[1] == "month" and k[3] == "renewal_rate"}
    renewed = ratio(1, 1)
    expected = {
        "u1": [NOT_DUE, NOT_DUE, NOT_DUE, NOT_DUE, renewed, NOT_DUE],
        "q1": [NOT_DUE, renewed, NOT_DUE, renewed, renewed, NOT_DUE],
        "m1": [NOT_DUE] * 6,
        "r1": [renewed, NOT_DUE, NOT_DUE, NOT_DUE, renewed, NOT_DUE],
        "r2": [renewed, NOT_DUE, NOT_DUE, NOT_DUE, renewed, NOT_DUE],
        "c1": [NOT_DUE, NOT_DUE, NOT_DUE, NOT_DUE, ratio(0, 1), NOT_DUE],
        "c2": [NOT_DUE] * 6,
    }
    for account, values in expected.items():
        found = [rate[(month, f"segment={account}")] for month in months]
        assert found == values, account
    assert rate[(D(2026, 5, 1), "all")] == ratio(4, 5)
    assert rate[(D(2025, 5, 1), "all")] == ratio(2, 2)


def test_renewal_day_snapshot_sees_the_anniversary_of_an_upgraded_contract() -> None:
    # day 2026-05-20 (window 2026-04-21 .. 2026-05-20): due u1, q1, r1 and c1 on 2026-05-20
    # (r2's 2026-05-25 is later); u1, q1, r1 run on -> renewed; c1 ends that day -> 3 / 4
    day = D(2026, 5, 20)
    got = kpis(CONTRACTS, Periods.of(days=[day]))
    assert got[(day, "day", "all", "renewal_rate")] == ratio(3, 4)
    assert got[(day, "day", "segment=u1", "renewal_rate")] == ratio(1, 1)


# t1: trial Mar 1 .. Mar 15, then paid (open)                       -> converted on Mar 15
# t2: trial Mar 1 .. Mar 15, period ends at trial_end (lapsed)      -> not converted
# t3: trial ends Mar 10 (lapsed), buys again Mar 20 (10 days later)  -> not converted
# t4: trial ends Mar 25, then paid                                  -> after the Mar 20 window
# t5: trial ends Mar 18 (lapsed), buys Mar 22 (4 days later)        -> converted, known Mar 22
TRIALS = book(
    [
        sub("t1", MAR, trial_end=D(2024, 3, 15)),
        sub("t2", MAR, D(2024, 3, 15), trial_end=D(2024, 3, 15)),
        sub("t3", MAR, D(2024, 3, 10), trial_end=D(2024, 3, 10)),
        sub("t3", D(2024, 3, 20)),
        sub("t4", D(2024, 3, 11), trial_end=D(2024, 3, 25)),
        sub("t5", D(2024, 3, 4), D(2024, 3, 18), trial_end=D(2024, 3, 18)),
        sub("t5", D(2024, 3, 22)),
    ]
)


def test_trial_conversion_converted_over_ended() -> None:
    # March close: ended t1..t5 (5); converted t1, t4, t5 -> 3 / 5
    # day Mar 20: ended t1, t2, t3, t5 (t4 ends Mar 25); t5's payment (Mar 22) not yet known
    # -> converted t1 only -> 1 / 4
    got = kpis(TRIALS, Periods.of(days=[MAR_20], months=[MAR]))
    assert got[(MAR, "month", "all", "trial_conversion_rate")] == ratio(3, 5)
    assert got[(MAR_20, "day", "all", "trial_conversion_rate")] == ratio(1, 4)


# Value events. Creation 10:00 UTC; days to first value (UTC dates):
# v1 Mar 1 -> Mar 4: 3 | v2 Mar 2 -> Mar 12: 10 | v3 Feb 22 -> Mar 1: 8 (2024 is a leap year)
# v4 Mar 1 -> Mar 21: 20 | v5 Mar 1 -> Mar 31 23:30 UTC: 30 (Apr 1 in Berlin) | v6 value in April
VALUES = book(
    [sub(a, D(2024, 1, 1)) for a in ("v1", "v2", "v3", "v4", "v5", "v6")],
    created={
        "v1": MAR,
        "v2": D(2024, 3, 2),
        "v3": D(2024, 2, 22),
        "v4": MAR,
        "v5": MAR,
        "v6": MAR,
    },
    values={
        "v1": at(D(2024, 3, 4)),
        "v2": at(D(2024, 3, 12)),
        "v3": at(MAR),
        "v4": at(D(2024, 3, 21)),
        "v5": datetime(2024, 3, 31, 23, 30, tzinfo=UTC),
        "v6": at(D(2024, 4, 2)),
    },
)


def test_time_to_value_from_value_events() -> None:
    # UTC: March sample 3, 8, 10, 20, 30 -> median 10 over 5 accounts
    # Berlin: v5's value falls on Apr 1 -> 3, 8, 10, 20 -> even count: (8 + 10) / 2 = 9 over 4
    # (subscriptions start Jan 1: with value events the first paid day plays no part)
    utc = kpis(VALUES, Periods.of(months=[MAR]))
    assert utc[(MAR, "month", "all", "time_to_value_days")] == (10.0, None, 5.0)
    berlin = kpis(VALUES, Periods.of(months=[MAR]), Policy(timezone="Europe/Berlin"))
    assert berlin[(MAR, "month", "all", "time_to_value_days")] == (9.0, None, 4.0)


def test_time_to_value_falls_back_to_the_first_paid_day() -> None:
    # no value events: p1 created Mar 1, trial to Mar 15 -> first paid Mar 15: 14 days
    # p2 created Mar 3, paid from Mar 5: 2 days; p3 paid Feb 10 (outside March); p4 never pays
    # March: 14, 2 -> median (2 + 14) / 2 = 8 over 2; counting trial days as paid must not
    # move p1's first paid day to its trial start, so the policy gives the same 8
    inputs = book(
        [
            sub("p1", MAR, trial_end=D(2024, 3, 15)),
            sub("p2", D(2024, 3, 5)),
            sub("p3", D(2024, 2, 10)),
        ],
        segments={"p1": "X", "p2": "X", "p3": "X", "p4": "X"},
        created={"p1": MAR, "p2": D(2024, 3, 3), "p3": D(2024, 2, 1), "p4": D(2024, 3, 10)},
    )
    got = kpis(inputs, Periods.of(months=[MAR]))
    assert got[(MAR, "month", "all", "time_to_value_days")] == (8.0, None, 2.0)
    trials_paid = kpis(inputs, Periods.of(months=[MAR]), Policy(exclude_trials=False))
    assert trials_paid[(MAR, "month", "all", "time_to_value_days")] == (8.0, None, 2.0)


def test_without_subscriptions_only_time_to_value_from_value_events() -> None:
    # v1 Mar 1 -> Mar 4: 3 days; no subscriptions: no renewal or trial rows
    inputs = KpiInputs(
        accounts=accounts({"v1": "X"}, {"v1": MAR}),
        value_events=pl.LazyFrame(
            {"account_id": ["v1"], "first_value_at": [at(D(2024, 3, 4))]}, schema=VALUE_SCHEMA
        ),
    )
    got = kpis(inputs, Periods.of(months=[MAR]))
    assert got == {
        (MAR, "month", "all", "time_to_value_days"): (3.0, None, 1.0),
        (MAR, "month", "segment=X", "time_to_value_days"): (3.0, None, 1.0),
    }
