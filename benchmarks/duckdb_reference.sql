-- The benchmark's DuckDB reference: the core KPI set (MRR, active customers, movements, NPS,
-- CSAT, FCR, AHT) in SQL, written from DESIGN.md §5 and northstar/metrics.py, not from the polars
-- code. One query serves two callers: the benchmark (benchmarks/steps.py, relations are views
-- over the raw parquet files with the columns and date windows the pass needs) and the test
-- that cross-checks the engines (tests/tasks/kpis/test_duckdb_reference.py, relations are the
-- validated clean tables of one pass; extra columns are ignored).
--
-- Relations the caller provides:
--   accounts(account_id, segment)
--   subscriptions(account_id, billing_period, amount, discount, currency,
--                 start_date, end_date, trial_end)             one row per price period
--   fx_rates(date, currency, rate)                             units of reporting currency
--   surveys(account_id, survey_type, score, responded_at)
--   tickets(account_id, solved_at, agent_replies, reopens, handle_seconds)
--   snapshot_spine(snapshot_date, grain)                       grain 'day' or 'month' (1st day)
-- Parameters: $reporting_currency, $timezone, $churn_days, $support_days, $nps_days, $csat_days.
--
-- Output: one row per (snapshot_date, grain, segment, metric) for every snapshot, every segment
-- and every metric below; value is NULL where the metric is undefined (no denominator).

with

-- 1. Each snapshot's calendar: the date its state is taken on (window_end) and the first day of
--    each window length it uses. A day d with an N-day window covers d-N+1 .. d; a month covers
--    its calendar days and its state is the state on its last day.
snapshots as (
    select
        snapshot_date,
        grain,
        case grain when 'day' then snapshot_date else last_day(snapshot_date) end as window_end,
        case grain when 'day' then snapshot_date - cast($churn_days - 1 as integer)
            else snapshot_date end as churn_start,
        case grain when 'day' then snapshot_date - cast($support_days - 1 as integer)
            else snapshot_date end as support_start,
        case grain when 'day' then snapshot_date - cast($nps_days - 1 as integer)
            else snapshot_date end as nps_start,
        case grain when 'day' then snapshot_date - cast($csat_days - 1 as integer)
            else snapshot_date end as csat_start
    from snapshot_spine
),

-- 2. Segments: every account is in 'all' and in 'segment=<value>' (NULL reads 'unknown').
account_segments as (
    select account_id, 'all' as segment from accounts
    union all
    select account_id, 'segment=' || coalesce(segment, 'unknown') from accounts
),

-- 3. The grid every metric is reported on: each snapshot times each segment.
grid as (
    select s.snapshot_date, s.grain, g.segment
    from snapshots s
    cross join (select distinct segment from account_segments) g
),

-- 4. The date spine of account states: the day before each churn window (start state) and the
--    window's last day (end state).
state_dates as (
    select churn_start - 1 as state_date from snapshots
    union
    select window_end from snapshots
),

-- 5. Each price period's monthly amount in its own currency: (amount - discount) spread over
--    the months of its billing period, and the first day it counts (after any trial).
price_periods as (
    select
        account_id,
        currency,
        start_date,
        end_date,
        trial_end,
        (amount - discount) / case billing_period
            when 'month' then 1.0 when 'quarter' then 3.0 when 'year' then 12.0
        end as monthly_amount
    from subscriptions
),

-- 6. The fx rate of every currency on every state date: the latest published on or before the
--    date, else the earliest published; the reporting currency is always 1.
fx_latest as (
    select d.state_date, f.currency, arg_max(f.rate, f.date) as rate
    from state_dates d
    join fx_rates f on f.date <= d.state_date
    group by d.state_date, f.currency
),
fx_earliest as (
    select currency, arg_min(rate, date) as rate from fx_rates group by currency
),
fx_on_date as (
    select
        d.state_date,
        c.currency,
        case when c.currency = $reporting_currency then 1.0
            else coalesce(l.rate, e.rate) end as rate
    from state_dates d
    cross join (select distinct currency from price_periods) c
    left join fx_latest l on l.state_date = d.state_date and l.currency = c.currency
    left join fx_earliest e on e.currency = c.currency
),

-- 7. Account MRR on each state date: the sum over the price periods covering the date
--    (start_date <= d < end_date, open when end_date is NULL) and past their trial, converted.
account_mrr as (
    select d.state_date, p.account_id, sum(p.monthly_amount * r.rate) as mrr
    from state_dates d
    join price_periods p
        on p.start_date <= d.state_date
        and (p.end_date is null or d.state_date < p.end_date)
        and (p.trial_end is null or d.state_date >= p.trial_end)
    join fx_on_date r on r.state_date = d.state_date and r.currency = p.currency
    group by d.state_date, p.account_id
),

-- 8. Per snapshot and account: MRR at the start (day before the churn window) and at the end.
account_states as (
    select
        s.snapshot_date,
        s.grain,
        s.churn_start,
        a.account_id,
        coalesce(b.mrr, 0) as mrr_start,
        coalesce(e.mrr, 0) as mrr_end
    from snapshots s
    cross join accounts a
    left join account_mrr b on b.state_date = s.churn_start - 1 and b.account_id = a.account_id
    left join account_mrr e on e.state_date = s.window_end and e.account_id = a.account_id
    where coalesce(b.mrr, 0) > 0 or coalesce(e.mrr, 0) > 0
),

-- 9. Accounts that were ever paying before a snapshot's window: some price period with a
--    positive amount had an active (post-trial) day before the window's first day.
paid_before_window as (
    select distinct s.snapshot_date, s.grain, p.account_id
    from snapshots s
    join price_periods p
        on p.monthly_amount > 0
        and greatest(p.start_date, coalesce(p.trial_end, p.start_date)) < s.churn_start
        and (p.end_date is null
             or p.end_date > greatest(p.start_date, coalesce(p.trial_end, p.start_date)))
),

-- 10. One movement per account and snapshot, in one CASE (ChartMogul / Stripe):
--     0 -> >0 never paid before: new; 0 -> >0 paid before: reactivation; >0 -> 0: churn;
--     >0 -> more: expansion; >0 -> less: contraction. The amount is the MRR change, >= 0.
movements as (
    select
        st.*,
        case
            when st.mrr_start = 0 and pb.account_id is null then 'new'
            when st.mrr_start = 0 then 'reactivation'
            when st.mrr_end = 0 then 'churn'
            when st.mrr_end > st.mrr_start then 'expansion'
            when st.mrr_end < st.mrr_start then 'contraction'
        end as movement,
        abs(st.mrr_end - st.mrr_start) as amount
    from account_states st
    left join paid_before_window pb
        on pb.snapshot_date = st.snapshot_date
        and pb.grain = st.grain
        and pb.account_id = st.account_id
),

-- 11. Sums per snapshot and segment: end state, start cohort, and each movement.
revenue as (
    select
        m.snapshot_date,
        m.grain,
        g.segment,
        sum(m.mrr_end) filter (where m.mrr_end > 0) as mrr,
        count(*) filter (where m.mrr_end > 0) as active_customers,
        sum(m.mrr_start) filter (where m.mrr_start > 0) as mrr_start,
        count(*) filter (where m.mrr_start > 0) as customers_start,
        sum(m.amount) filter (where m.movement = 'new') as new_mrr,
        sum(m.amount) filter (where m.movement = 'expansion') as expansion_mrr,
        sum(m.amount) filter (where m.movement = 'contraction') as contraction_mrr,
        sum(m.amount) filter (where m.movement = 'churn') as churned_mrr,
        sum(m.amount) filter (where m.movement = 'reactivation') as reactivation_mrr,
        count(*) filter (where m.movement = 'new') as new_customers,
        count(*) filter (where m.movement = 'churn') as churned_customers,
        count(*) filter (where m.movement = 'reactivation') as reactivated_customers
    from movements m
    join account_segments g on g.account_id = m.account_id
    group by m.snapshot_date, m.grain, g.segment
),

-- 12. Revenue and retention metrics on the full grid (no account: zero sums, undefined ratios).
revenue_metrics as (
    select
        g.snapshot_date,
        g.grain,
        g.segment,
        coalesce(r.mrr, 0) as mrr,
        coalesce(r.active_customers, 0) as active_customers,
        r.mrr / nullif(r.active_customers, 0) as arpa,
        coalesce(r.new_mrr, 0) as new_mrr,
        coalesce(r.expansion_mrr, 0) as expansion_mrr,
        coalesce(r.contraction_mrr, 0) as contraction_mrr,
        coalesce(r.churned_mrr, 0) as churned_mrr,
        coalesce(r.reactivation_mrr, 0) as reactivation_mrr,
        coalesce(r.new_customers, 0) as new_customers,
        coalesce(r.churned_customers, 0) as churned_customers,
        coalesce(r.reactivated_customers, 0) as reactivated_customers,
        r.churned_customers / nullif(r.customers_start, 0) as logo_churn_rate,
        (r.mrr_start + coalesce(r.expansion_mrr, 0) - coalesce(r.contraction_mrr, 0)
            - coalesce(r.churned_mrr, 0)) / nullif(r.mrr_start, 0) as nrr,
        (r.mrr_start - coalesce(r.contraction_mrr, 0) - coalesce(r.churned_mrr, 0))
            / nullif(r.mrr_start, 0) as grr
    from grid g
    left join revenue r using (snapshot_date, grain, segment)
),

-- 13. Survey responses with their local calendar date, fanned out to their segments.
responses as (
    select
        g.segment,
        r.survey_type,
        r.score,
        cast(timezone($timezone, r.responded_at) as date) as responded_date
    from surveys r
    join account_segments g on g.account_id = r.account_id
),

-- 14. NPS (Bain) over nps responses in the NPS window; CSAT (top two box) over csat responses
--     in the CSAT window. Passives count in the NPS denominator only.
survey_metrics as (
    select
        g.snapshot_date,
        g.grain,
        g.segment,
        100.0 * (count(*) filter (where r.survey_type = 'nps' and r.responded_date >= s.nps_start
                                  and r.score >= 9)
                 - count(*) filter (where r.survey_type = 'nps' and r.responded_date >= s.nps_start
                                    and r.score <= 6))
            / nullif(count(*) filter (where r.survey_type = 'nps'
                                      and r.responded_date >= s.nps_start), 0) as nps,
        1.0 * count(*) filter (where r.survey_type = 'csat' and r.responded_date >= s.csat_start
                               and r.score in (4, 5))
            / nullif(count(*) filter (where r.survey_type = 'csat'
                                      and r.responded_date >= s.csat_start), 0) as csat
    from grid g
    join snapshots s using (snapshot_date, grain)
    left join responses r
        on r.segment = g.segment
        and r.responded_date between least(s.nps_start, s.csat_start) and s.window_end
    group by g.snapshot_date, g.grain, g.segment
),

-- 15. Solved tickets with their local solve date, fanned out to their segments.
solved_tickets as (
    select
        g.segment,
        cast(timezone($timezone, t.solved_at) as date) as solved_date,
        t.agent_replies <= 1 and t.reopens = 0 as first_contact,
        t.handle_seconds
    from tickets t
    join account_segments g on g.account_id = t.account_id
    where t.solved_at is not null
),

-- 16. FCR and AHT over the tickets solved in the support window.
support_metrics as (
    select
        g.snapshot_date,
        g.grain,
        g.segment,
        1.0 * count(*) filter (where t.first_contact) / nullif(count(t.solved_date), 0)
            as fcr_rate,
        avg(t.handle_seconds) / 60.0 as aht_minutes
    from grid g
    join snapshots s using (snapshot_date, grain)
    left join solved_tickets t
        on t.segment = g.segment
        and t.solved_date between s.support_start and s.window_end
    group by g.snapshot_date, g.grain, g.segment
)

-- 17. Long rows: one per snapshot, segment and metric.
select snapshot_date, grain, segment, metric, value
from (
    select *
    from revenue_metrics
    join survey_metrics using (snapshot_date, grain, segment)
    join support_metrics using (snapshot_date, grain, segment)
)
unpivot include nulls (
    value for metric in (
        mrr, active_customers, arpa,
        new_mrr, expansion_mrr, contraction_mrr, churned_mrr, reactivation_mrr,
        new_customers, churned_customers, reactivated_customers,
        logo_churn_rate, nrr, grr,
        nps, csat, fcr_rate, aht_minutes
    )
)
order by grain, snapshot_date, metric, segment
