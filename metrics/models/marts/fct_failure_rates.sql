-- One row per UTC hour, input, facility, supplier, stage, system and interface: attempted and failed
-- operations, the counts behind every failure rate of the Integration health page (DOMAIN.md section 3).
-- Rates and their Wilson intervals are computed from these counts after grouping (metrics/failures.py),
-- never averaged from rates.
-- hour: UTC hour the span started or the event occurred. day: its UTC day.
-- input: `spans` (technical: integration operations) or `transactions` (business events).
-- facility_id, supplier_id, stage: the business dimensions; NULL where the record has none.
-- system: for spans the service (`service.name`), for events the system that recorded them.
-- interface: for spans the service and span name (`erp-integration · process wms.north-general.receipts`,
--   the queue is in the name of messaging spans); for events the system and object type (`erp · receipt`).
-- attempts: spans, or events. failures: spans with error status, or events with a failed or exception outcome.
-- sample_failed_trace_id: the greatest trace id among the failures (a deterministic example to open), NULL
--   when none failed or the failing events carry no trace id.
-- first_failure_at, last_failure_at: earliest and latest failing span start or event occurrence in the row.
with

technical as (
    select
        date_trunc('hour', start_time) as hour,
        'spans' as input,
        facility_id,
        supplier_id,
        stage,
        coalesce(service_name, '(unknown service)') as system,
        concat(coalesce(service_name, '(unknown service)'), ' · ', name) as interface,
        count(*) as attempts,
        count(*) filter (where is_error) as failures,
        max(trace_id) filter (where is_error) as sample_failed_trace_id,
        min(start_time) filter (where is_error) as first_failure_at,
        max(start_time) filter (where is_error) as last_failure_at
    from stg_spans
    group by all
),

business as (
    select
        date_trunc('hour', occurred_at) as hour,
        'transactions' as input,
        facility_id,
        supplier_id,
        stage,
        system,
        concat(system, ' · ', object_type) as interface,
        count(*) as attempts,
        count(*) filter (where is_failure) as failures,
        max(trace_id) filter (where is_failure) as sample_failed_trace_id,
        min(occurred_at) filter (where is_failure) as first_failure_at,
        max(occurred_at) filter (where is_failure) as last_failure_at
    from stg_transaction_events
    group by all
),

both_inputs as (
    select * from technical
    union all
    select * from business
)

select
    hour,
    cast(hour as date) as day,
    input,
    facility_id,
    supplier_id,
    stage,
    system,
    interface,
    attempts,
    failures,
    sample_failed_trace_id,
    first_failure_at,
    last_failure_at
from both_inputs
order by hour, input
