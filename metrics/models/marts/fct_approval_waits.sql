-- One row per wait of a case in approval or budget check that lasted (or, still open, may last) past its
-- SLA: the interval from an approval or budget-check event to the case's next event. Only these waits
-- can ever be stalled, so the stall queries look nowhere else.
-- A wait starts at every approval or budget_check event except a rejected, cancelled or returned one
-- (the case left the approvers' hands) and ends at the case's next event in time order (occurred_at).
-- case_id, requisition_id: the case (fct_requisition_timeline). event_id, event_type: the event that started it.
-- stage: approval or budget_check. approval_level: the level the event names (NULL: not said).
-- waiting_on_kind: approver when the event is pending with an actor (an approval request), else system.
-- waiting_on: the approver role (the pending event's actor), else the system that recorded the event.
-- started_at: the event's occurred_at. ended_at: the next event's occurred_at (NULL: still waiting at the data's end).
-- stage_entered_at: when the case entered this visit to the stage (fct_case_stage_visits).
-- sla_s: the SLA of the case's priority (int_approval_slas; routine without a priority). breach_at: started_at + SLA.
-- facility_id, supplier_id, department, priority, value, currency, day: the case's (fct_requisition_timeline).
with ordered as (
    select
        case_id, event_id, event_type, stage, stage_order, outcome, actor, system, approval_level, occurred_at,
        lead(occurred_at) over (partition by case_id order by occurred_at, stage_order, event_id) as next_at
    from int_case_events
),

waits as (
    select * from ordered
    where stage in ('approval', 'budget_check') and outcome not in ('rejected', 'cancelled', 'returned')
)

select
    waits.case_id,
    timeline.requisition_id,
    waits.event_id,
    waits.event_type,
    waits.stage,
    waits.approval_level,
    case when waits.outcome = 'pending' and waits.actor is not null then 'approver' else 'system' end as waiting_on_kind,
    case when waits.outcome = 'pending' and waits.actor is not null then waits.actor else waits.system end as waiting_on,
    waits.occurred_at as started_at,
    waits.next_at as ended_at,
    visits.entered_at as stage_entered_at,
    slas.sla_s,
    waits.occurred_at + to_seconds(slas.sla_s) as breach_at,
    timeline.facility_id,
    timeline.supplier_id,
    timeline.department,
    timeline.priority,
    timeline.value,
    timeline.currency,
    timeline.day
from waits
join fct_requisition_timeline as timeline using (case_id)
join int_approval_slas as slas on slas.priority = coalesce(timeline.priority, 'routine')
asof join fct_case_stage_visits as visits
    on visits.case_id = waits.case_id and visits.stage = waits.stage and visits.entered_at <= waits.occurred_at
where waits.next_at is null or epoch(waits.next_at - waits.occurred_at) > slas.sla_s
