-- One row per trace: its extent and what it did, so a trace opens with an index probe (the table is
-- sorted by trace_id) and its spans are read within [trace_start, trace_end] only.
-- trace_id: 32 hex digits. trace_start, trace_end: earliest span start and latest span end (UTC).
-- duration_ms: trace_end - trace_start in milliseconds. span_count, error_count: spans, and those with error status.
-- root_service, root_name: service and name of the earliest-starting span (the root when the trace is whole).
-- services: the distinct services of its spans, sorted. facility_id, supplier_id, stage: of the root span
--   where it has them, else of any span that has them.
with

by_trace as (
    select
        trace_id,
        min(start_time) as trace_start,
        max(end_time) as trace_end,
        count(*) as span_count,
        count(*) filter (where is_error) as error_count,
        arg_min(service_name, start_time) as root_service,
        arg_min(name, start_time) as root_name,
        list_sort(list_distinct(list(service_name))) as services,
        coalesce(arg_min(facility_id, start_time), max(facility_id)) as facility_id,
        coalesce(arg_min(supplier_id, start_time), max(supplier_id)) as supplier_id,
        coalesce(arg_min(stage, start_time), max(stage)) as stage
    from stg_spans
    group by trace_id
)

select
    trace_id,
    trace_start,
    trace_end,
    date_diff('microsecond', trace_start, trace_end) / 1000.0 as duration_ms,
    span_count,
    error_count,
    root_service,
    root_name,
    services,
    facility_id,
    supplier_id,
    stage
from by_trace
order by trace_id
