-- One row per integration flow object present in its source and not (yet) in its target at data_as_of:
-- the waiting list behind the backlog and the oldest-unsynced table of the Sync drift page, oldest first.
-- flow, object_type, stage, object_key, source_system, source_at, day, facility_id, supplier_id, priority,
--   requisition_id, po_number, receipt_id, invoice_id, trace_id, amount, sla_s, due_at, data_as_of:
--   fct_sync_drift's.
-- age_s: data_as_of - source_at in seconds. is_past_sla: the SLA has passed (the object is missing).
select
    flow,
    object_type,
    stage,
    object_key,
    source_system,
    source_at,
    day,
    facility_id,
    supplier_id,
    priority,
    requisition_id,
    po_number,
    receipt_id,
    invoice_id,
    trace_id,
    amount,
    sla_s,
    due_at,
    data_as_of,
    date_diff('millisecond', source_at, data_as_of) / 1000.0 as age_s,
    is_missing as is_past_sla
from fct_sync_drift
where not is_synced
order by source_at, flow, object_key
