-- One row per configured integration flow (integration_flows, metrics/defaults/flows.toml) and occurrence of
-- its object in the source system, paired with the object's arrival in the target system (DOMAIN.md section 3,
-- sync drift). The same object is named by the flow's key (object_id, po_number ...) in both systems; the
-- arrival is the first target record of that key at or after the source occurrence, less the flow's clock
-- tolerance (so a master-data object changed ten times pairs each change with its own arrival).
-- flow, object_type, stage: the flow's. object_key: the object's id (the flow's key column).
-- source_event_id, source_system, source_at: the earliest source event of the occurrence and when it occurred.
-- facility_id, supplier_id, priority, requisition_id, po_number, receipt_id, invoice_id, trace_id: from the
--   source events (the first non-NULL). amount: the largest amount they carry.
-- target_event_id, target_system, target_at: the arrival: the target event and when the target recorded it
--   (recorded_at, else occurred_at); NULL while the object has not arrived.
-- lag_s: target_at - source_at in seconds (negative when the target's clock runs behind).
-- sla_s, due_at: the flow's SLA in seconds, and source_at + sla_s.
-- data_as_of: the latest record time of all transaction events: the moment the data describes, against
--   which "missing" is judged (an export that ends cannot show what arrived after it).
with

flows as (
    select * from integration_flows
),

events as (
    select *, coalesce(recorded_at, occurred_at) as arrived_at from stg_transaction_events
),

data_horizon as (
    select max(arrived_at) as data_as_of from events
),

keyed as (
    select
        flows.name as flow,
        flows.object_type,
        flows.stage as flow_stage,
        flows.sla_minutes,
        flows.clock_tolerance_minutes,
        list_contains(flows.source_events, events.event_type) and events.system glob flows.source_system as is_source,
        list_contains(flows.target_events, events.event_type) and events.system glob flows.target_system as is_target,
        case flows.key
            when 'object_id' then events.object_id
            when 'po_number' then events.po_number
            when 'receipt_id' then events.receipt_id
            when 'invoice_id' then events.invoice_id
            when 'requisition_id' then events.requisition_id
        end as object_key,
        events.*
    from flows
    join events on events.object_type = flows.object_type
),

source_occurrences as (
    select
        flow,
        object_type,
        flow_stage as stage,
        object_key,
        occurred_at as source_at,
        min(event_id) as source_event_id,
        min(system) as source_system,
        min(facility_id) as facility_id,
        min(supplier_id) as supplier_id,
        min(priority) as priority,
        min(requisition_id) as requisition_id,
        min(po_number) as po_number,
        min(receipt_id) as receipt_id,
        min(invoice_id) as invoice_id,
        min(trace_id) as trace_id,
        max(amount) as amount,
        any_value(sla_minutes) * 60 as sla_s,
        any_value(clock_tolerance_minutes) as clock_tolerance_minutes
    from keyed
    where is_source and object_key is not null
    group by flow, object_type, flow_stage, object_key, occurred_at
),

arrivals as (
    select flow, object_key, arrived_at as target_at, min(event_id) as target_event_id, min(system) as target_system
    from keyed
    where is_target and object_key is not null
    group by flow, object_key, arrived_at
),

searchable as (
    select *, source_at - to_microseconds(cast(clock_tolerance_minutes * 60e6 as bigint)) as earliest_arrival
    from source_occurrences
)

select
    s.flow,
    s.object_type,
    s.stage,
    s.object_key,
    s.source_event_id,
    s.source_system,
    s.source_at,
    s.facility_id,
    s.supplier_id,
    s.priority,
    s.requisition_id,
    s.po_number,
    s.receipt_id,
    s.invoice_id,
    s.trace_id,
    s.amount,
    a.target_event_id,
    a.target_system,
    a.target_at,
    date_diff('millisecond', s.source_at, a.target_at) / 1000.0 as lag_s,
    s.sla_s,
    s.source_at + to_microseconds(cast(s.sla_s * 1e6 as bigint)) as due_at,
    data_horizon.data_as_of
from searchable s
asof left join arrivals a
    on a.flow = s.flow and a.object_key = s.object_key and a.target_at >= s.earliest_arrival
cross join data_horizon
