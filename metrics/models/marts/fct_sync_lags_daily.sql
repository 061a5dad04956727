-- One row per integration flow, UTC day of source occurrence, stage, facility, supplier and lag bucket of
-- fct_sync_drift: the daily rollup the Sync drift page's per-flow, per-day, per-facility and per-supplier
-- figures are summed from (metrics/drift.py). The verdicts are fct_sync_drift's and the counts add up exactly.
-- Lags are bucketed to three significant digits (so a query sorts at most about 900 buckets a decade of
-- lag, however many objects): lag quantiles computed from the buckets are APPROXIMATE, within 0.5 % of
-- quantile_cont over fct_sync_drift's rows (within 0.5 s under 1000 s), and exact when every lag has at
-- most three significant digits (20 s, 300 s, 7200 s); lag_max_s stays exact.
-- flow, stage, day, facility_id, supplier_id, sla_s: fct_sync_drift's.
-- lag_s: the bucket, lag_s rounded to three significant digits (NULL: not arrived by data_as_of).
-- max_lag_s: the largest exact lag_s in the bucket.
-- objects: source occurrences in the bucket. synced, late, missing: how many of them are is_synced, is_late,
--   is_missing.
with

bucketed as (
    select
        *,
        case when lag_s = 0 then lag_s else round(lag_s, 2 - floor(log10(abs(lag_s)))::integer) end as lag_bucket
    from fct_sync_drift
)

select
    flow,
    stage,
    day,
    facility_id,
    supplier_id,
    lag_bucket as lag_s,
    max(lag_s) as max_lag_s,
    any_value(sla_s) as sla_s,
    count(*) as objects,
    count(*) filter (where is_synced) as synced,
    count(*) filter (where is_late) as late,
    count(*) filter (where is_missing) as missing
from bucketed
group by flow, stage, day, facility_id, supplier_id, lag_bucket
order by flow, day, lag_bucket
