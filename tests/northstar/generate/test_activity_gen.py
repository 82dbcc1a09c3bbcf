"""Live intervals split into account-months, clipped to the reported range."""

from __future__ import annotations

from datetime import date

import numpy as np

from northstar.generate.activity import live_months
from northstar.generate.subscriptions import Lifecycle
from northstar.generate.timeline import Timeline, day_number

JAN_20, FEB_1, FEB_3, MAR_1, MAR_5 = (
    day_number(date(2025, m, d)) for m, d in ((1, 20), (2, 1), (2, 3), (3, 1), (3, 5))
)


def test_an_interval_becomes_one_row_per_month_with_paid_days() -> None:
    # Range Jan..Mar 2025, no lead-in: months 0=Jan, 1=Feb, 2=Mar.
    # Account 0 lives [Jan 20, Mar 5) and pays from Feb 3 (a 14-day trial):
    #   Jan: [Jan 20, Feb 1)  nothing paid -> paid_lo = hi = Feb 1, share 12/31
    #   Feb: [Feb 1,  Mar 1)  paid from Feb 3                       share 28/28
    #   Mar: [Mar 1,  Mar 5)  paid all                              share 4/31
    # Account 1 lived only in 2024 (before the range) and yields nothing.
    tl = Timeline.of(date(2025, 1, 1), date(2025, 3, 31), lead_months=0)
    health = np.array([[0.5, 0.0], [-1.0, 0.0], [2.0, 0.0]], dtype=np.float32)
    seats = np.array([[3, 1], [4, 1], [5, 1]], dtype=np.int32)
    lc = Lifecycle(
        periods={},
        events={},
        intervals={
            "acct": np.array([0, 1]),
            "sub": np.array([7, 8]),
            "start": np.array([JAN_20, 19800]),
            "paid_from": np.array([FEB_3, 19800]),
            "end": np.array([MAR_5, 19900]),
        },
        seats=seats,
        effective_health=health,
    )
    lm = live_months(lc, tl)
    assert lm.acct.tolist() == [0, 0, 0]
    assert lm.sub.tolist() == [7, 7, 7]
    assert lm.month.tolist() == [0, 1, 2]
    assert lm.lo.tolist() == [JAN_20, FEB_1, MAR_1]
    assert lm.hi.tolist() == [FEB_1, MAR_1, MAR_5]
    assert lm.paid_lo.tolist() == [FEB_1, FEB_3, MAR_1]
    assert lm.health.tolist() == [0.5, -1.0, 2.0]
    assert lm.seats.tolist() == [3, 4, 5]
    assert np.allclose(lm.share_of_month(tl), [12 / 31, 1.0, 4 / 31])
