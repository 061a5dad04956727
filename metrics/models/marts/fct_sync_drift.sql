-- One row per integration flow and occurrence of its object in the source system (int_flow_sync), with
-- the sync-drift verdicts of DOMAIN.md section 3. Lag distributions, late and missing counts and the
-- missing-over-time line of the Sync drift page are aggregated from these rows (metrics/drift.py).
-- flow, object_type, stage, object_key, source_system, source_at, facility_id, supplier_id, priority,
--   requisition_id, po_number, receipt_id, invoice_id, trace_id, amount, target_system, target_at, lag_s,
--   sla_s, due_at, data_as_of: int_flow_sync's.
-- day, hour: UTC day and hour of source_at (the filters' day).
-- is_synced: the object arrived in the target by data_as_of.
-- is_late: it arrived after its SLA (lag_s > sla_s).
-- is_missing: it had not arrived at data_as_of although its SLA had passed (present in source, absent in target).
-- missing_from, missing_until: the moment it became missing (due_at) and the moment it stopped (target_at, NULL
--   while still missing); both NULL when it arrived within the SLA.
with

sync as (
    select * from int_flow_sync
)

select
    flow,
    object_type,
    stage,
    object_key,
    source_system,
    source_at,
    cast(source_at as date) as day,
    date_trunc('hour', source_at) as hour,
    facility_id,
    supplier_id,
    priority,
    requisition_id,
    po_number,
    receipt_id,
    invoice_id,
    trace_id,
    amount,
    target_system,
    target_at,
    lag_s,
    sla_s,
    due_at,
    data_as_of,
    target_at is not null and target_at <= data_as_of as is_synced,
    coalesce(lag_s > sla_s, false) as is_late,
    (target_at is null or target_at > data_as_of) and due_at <= data_as_of as is_missing,
    case when coalesce(lag_s > sla_s, due_at <= data_as_of) then due_at end as missing_from,
    case when lag_s > sla_s then target_at end as missing_until
from sync
order by flow, source_at
