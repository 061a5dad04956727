-- One row per integration flow, UTC day of source occurrence, stage, facility, supplier and lag value of
-- fct_sync_drift (lag_s NULL: not arrived by data_as_of): the daily rollup the Sync drift page's per-flow,
-- per-day, per-facility and per-supplier figures are summed from (metrics/drift.py). The verdicts are
-- fct_sync_drift's; counts add up, and lag quantiles are computed exactly from the (lag_s, objects) pairs,
-- so they equal quantile_cont over fct_sync_drift's rows (to the last bit of a double). The table is the
-- smaller the more lags repeat within a day (lags to the whole second, as most exports record them); with
-- every lag distinct it is as large as fct_sync_drift.
-- flow, stage, day, facility_id, supplier_id, lag_s, sla_s: fct_sync_drift's.
-- objects: source occurrences with that lag. synced, late, missing: how many of them are is_synced, is_late,
--   is_missing.
select
    flow,
    stage,
    day,
    facility_id,
    supplier_id,
    lag_s,
    any_value(sla_s) as sla_s,
    count(*) as objects,
    count(*) filter (where is_synced) as synced,
    count(*) filter (where is_late) as late,
    count(*) filter (where is_missing) as missing
from fct_sync_drift
group by flow, stage, day, facility_id, supplier_id, lag_s
order by flow, day, lag_s
