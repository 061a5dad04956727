-- One row per period in which the latest value of a configured state field of one object disagreed between
-- the source and the target system of an integration flow (DOMAIN.md section 3, state drift): for example a
-- supplier blocked in ERP but still active in the procurement suite. Flows with source_state / target_state
-- in metrics/defaults/flows.toml take part; values are compared lower-cased, each system's value as of
-- each moment being the latest it recorded (by occurred_at) up to that moment.
-- flow, object_type, object_key: the flow and the object (its key column's value).
-- facility_id, supplier_id: of the object's events (the supplier itself for supplier master data).
-- source_value, target_value: the disagreeing values. drift_start: when they started to disagree.
-- drift_end: when they agreed again (or changed to another disagreement); NULL while it lasts at data_as_of.
-- duration_s: (drift_end, else data_as_of) - drift_start in seconds. sla_s: the flow's SLA in seconds.
-- is_breach: the disagreement lasted longer than the SLA (a short one is sync latency, not drift).
-- is_open: it still lasts at data_as_of. day: UTC day of drift_start.
with

flows as (
    select * from integration_flows where source_state is not null and target_state is not null
),

events as (
    select * from stg_transaction_events
),

data_horizon as (
    select max(coalesce(recorded_at, occurred_at)) as data_as_of from events
),

state_changes as (
    select
        flows.name as flow,
        flows.object_type,
        flows.sla_minutes * 60 as sla_s,
        case flows.key
            when 'object_id' then events.object_id
            when 'po_number' then events.po_number
            when 'receipt_id' then events.receipt_id
            when 'invoice_id' then events.invoice_id
            when 'requisition_id' then events.requisition_id
        end as object_key,
        events.occurred_at as changed_at,
        events.facility_id,
        events.supplier_id,
        case when events.system glob flows.source_system and list_contains(flows.source_events, events.event_type)
            then lower(events.attributes ->> flows.source_state) end as source_value,
        case when events.system glob flows.target_system and list_contains(flows.target_events, events.event_type)
            then lower(events.attributes ->> flows.target_state) end as target_value,
        events.event_id
    from flows
    join events on events.object_type = flows.object_type
),

relevant as (
    select * from state_changes where object_key is not null and (source_value is not null or target_value is not null)
),

values_at as (
    select
        flow, object_type, sla_s, object_key, changed_at, event_id, facility_id, supplier_id,
        last_value(source_value ignore nulls) over timeline as source_now,
        last_value(target_value ignore nulls) over timeline as target_now
    from relevant
    window timeline as (partition by flow, object_key order by changed_at, event_id rows between unbounded preceding and current row)
),

-- several events at one moment: the state after the last of them
per_moment as (
    select flow, object_type, any_value(sla_s) as sla_s, object_key, changed_at,
        max(facility_id) as facility_id, max(supplier_id) as supplier_id,
        arg_max(source_now, event_id) as source_now, arg_max(target_now, event_id) as target_now
    from values_at
    group by flow, object_type, object_key, changed_at
),

islands as (
    select *,
        sum(case when changed then 1 else 0 end) over (partition by flow, object_key order by changed_at) as island
    from (
        select *,
            coalesce(source_now is distinct from lag(source_now) over w or target_now is distinct from lag(target_now) over w, true)
                as changed
        from per_moment
        window w as (partition by flow, object_key order by changed_at)
    )
),

periods as (
    select flow, object_type, any_value(sla_s) as sla_s, object_key, island,
        min(changed_at) as period_start, any_value(source_now) as source_value, any_value(target_now) as target_value,
        max(facility_id) as facility_id, max(supplier_id) as supplier_id
    from islands
    group by flow, object_type, object_key, island
),

bounded as (
    select *, lead(period_start) over (partition by flow, object_key order by island) as period_end
    from periods
)

select
    flow,
    object_type,
    object_key,
    facility_id,
    supplier_id,
    source_value,
    target_value,
    period_start as drift_start,
    period_end as drift_end,
    date_diff('millisecond', period_start, coalesce(period_end, data_as_of)) / 1000.0 as duration_s,
    sla_s,
    date_diff('millisecond', period_start, coalesce(period_end, data_as_of)) / 1000.0 > sla_s as is_breach,
    period_end is null as is_open,
    cast(period_start as date) as day
from bounded
cross join data_horizon
where source_value is not null and target_value is not null and source_value <> target_value
order by drift_start, flow, object_key
