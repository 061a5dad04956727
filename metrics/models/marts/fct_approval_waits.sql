-- One row per wait of a case in approval or budget check that lasted (or, still open, may last) past its
-- SLA: the interval from an approval or budget-check event to the case's next event. Only these waits
-- can ever be stalled, so the stall queries look nowhere else.
-- A wait starts at every approval or budget_check event before the case's first PO creation event
-- (fct_requisition_timeline.po_creation_at, unless from spans) except a rejected, cancelled or returned one
-- (the case left the approvers' hands) and ends at the case's next point in time order (occurred_at):
-- the next event of its visit to the stage, else the entry into the case's next visit
-- (fct_case_stage_visits, which sorted the case's points once; a stage known from spans only counts).
-- case_id, requisition_id: the case (fct_requisition_timeline). event_id, event_type: the event that started it.
-- stage: approval or budget_check. approval_level: the level the event names (NULL: not said).
-- waiting_on_kind: approver when the event is pending with an actor (an approval request), else system.
-- waiting_on: the approver role (the pending event's actor), else the system that recorded the event.
-- started_at: the event's occurred_at. ended_at: the next point's time (NULL: still waiting at the data's end).
-- stage_entered_at: when the case entered this visit to the stage (fct_case_stage_visits).
-- sla_s: the SLA of the case's priority (int_approval_slas; routine without a priority). breach_at: started_at + SLA.
-- facility_id, supplier_id, department, priority, value, currency, day: the case's (fct_requisition_timeline).
with steps as (
    -- only the two stages' events are sorted here, and only within a stage of a case
    select
        case_id, event_id, event_type, stage, outcome, actor, system, approval_level, occurred_at,
        lead(occurred_at) over (partition by case_id, stage order by occurred_at, event_id) as next_in_stage_at
    from int_case_events
    where stage in ('approval', 'budget_check')
),

candidates as (
    -- the wait ends by the next event of the stage at the latest, so a shorter gap can never breach
    select steps.*, timeline.requisition_id, timeline.facility_id, timeline.supplier_id, timeline.department,
        timeline.priority, timeline.value, timeline.currency, timeline.day, slas.sla_s
    from steps
    join fct_requisition_timeline as timeline using (case_id)
    join int_approval_slas as slas on slas.priority = coalesce(timeline.priority, 'routine')
    where steps.outcome not in ('rejected', 'cancelled', 'returned')
        -- once the ERP has recorded its PO nobody waits on approval: a budget-check result that comes back
        -- after the approval (the suite timed out and approved without it) opens no wait. A PO creation seen in
        -- spans only (still retried, or dead-lettered) is not a PO: the approved requisition waits on the system.
        and (timeline.po_creation_at is null or steps.occurred_at < timeline.po_creation_at
            or list_contains(coalesce(timeline.stages_from_spans, []), 'po_creation'))
        -- (seconds from the epoch_us difference: subtracting TIMESTAMPTZ values goes through ICU's calendar, ~20x slower)
        and (steps.next_in_stage_at is null or (epoch_us(steps.next_in_stage_at) - epoch_us(steps.occurred_at)) / 1e6 > slas.sla_s)
),

stage_visits as (
    select case_id, stage, entered_at, next_entered_at
    from fct_case_stage_visits
    where stage in ('approval', 'budget_check')
),

waits as (
    -- the next point is the next event of the visit, else the next visit's entry: whichever comes first
    select
        candidates.*,
        visits.entered_at as stage_entered_at,
        least(candidates.next_in_stage_at, visits.next_entered_at) as next_at
    from candidates
    asof join stage_visits as visits
        on visits.case_id = candidates.case_id
        and visits.stage = candidates.stage
        and visits.entered_at <= candidates.occurred_at
)

select
    case_id,
    requisition_id,
    event_id,
    event_type,
    stage,
    approval_level,
    case when outcome = 'pending' and actor is not null then 'approver' else 'system' end as waiting_on_kind,
    case when outcome = 'pending' and actor is not null then actor else system end as waiting_on,
    occurred_at as started_at,
    next_at as ended_at,
    stage_entered_at,
    sla_s,
    occurred_at + to_seconds(sla_s) as breach_at,
    facility_id,
    supplier_id,
    department,
    priority,
    value,
    currency,
    day
from waits
where next_at is null or (epoch_us(next_at) - epoch_us(occurred_at)) / 1e6 > sla_s
