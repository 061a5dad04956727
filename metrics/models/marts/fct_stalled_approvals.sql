-- One row per requisition stalled in approval or budget check as of a moment: waiting at its current step
-- longer than its priority's SLA (DOMAIN.md section 3). The moment is the variable `stalls_as_of` when set
-- (metrics.stalls runs this same SELECT for any moment), else the latest occurred_at in the warehouse
-- (the data's "now": for a live feed, the refresh time). Only what occurred by then counts.
-- case_id, requisition_id, stage, approval_level, waiting_on, waiting_on_kind, event_type, started_at,
--   stage_entered_at, sla_s, facility_id, supplier_id, department, priority, value, currency: as in fct_approval_waits.
-- as_of: the moment. age_s: as_of - started_at (the wait at the current step). stage_age_s: as_of - stage_entered_at.
-- over_sla_s: age_s - sla_s (> 0). sla_multiple: age_s / sla_s.
-- system_wait_s: the part of the wait spent on systems: all of it when waiting_on_kind is system (a budget
--   check or PO creation in progress); else the time inside fct_approval_system_intervals (failed calls until
--   retried, messages sitting in a queue) between started_at and as_of.
-- human_wait_s: age_s - system_wait_s: time pending with an approver.
-- priority_rank: 1 stat, 2 urgent, 3 routine or none (risk order: priority, then over_sla_s, then value).
with moment as (
    select coalesce(
        cast(getvariable('stalls_as_of') as timestamptz),
        (select max(occurred_at) from transaction_events)
    ) as as_of
),

stalled as (
    select waits.*, moment.as_of
    from fct_approval_waits as waits, moment
    where waits.started_at <= moment.as_of
        and (waits.ended_at is null or waits.ended_at > moment.as_of)
        and waits.breach_at < moment.as_of
),

system_time as (
    select
        stalled.case_id,
        stalled.started_at,
        -- seconds from the epoch_us difference: subtracting TIMESTAMPTZ values goes through ICU's calendar, ~20x slower
        sum((epoch_us(least(intervals.ended_at, stalled.as_of)) - epoch_us(greatest(intervals.started_at, stalled.started_at))) / 1e6) as seconds
    from stalled
    join fct_approval_system_intervals as intervals
        on intervals.case_id = stalled.case_id
        and intervals.started_at < stalled.as_of
        and intervals.ended_at > stalled.started_at
    group by stalled.case_id, stalled.started_at
)

select
    stalled.case_id,
    stalled.requisition_id,
    stalled.stage,
    stalled.approval_level,
    stalled.waiting_on,
    stalled.waiting_on_kind,
    stalled.event_type,
    stalled.started_at,
    stalled.stage_entered_at,
    stalled.as_of,
    (epoch_us(stalled.as_of) - epoch_us(stalled.started_at)) / 1e6 as age_s,
    (epoch_us(stalled.as_of) - epoch_us(stalled.stage_entered_at)) / 1e6 as stage_age_s,
    stalled.sla_s,
    age_s - stalled.sla_s as over_sla_s,
    age_s / stalled.sla_s as sla_multiple,
    case when stalled.waiting_on_kind = 'system' then age_s else coalesce(system_time.seconds, 0) end as system_wait_s,
    age_s - system_wait_s as human_wait_s,
    stalled.facility_id,
    stalled.supplier_id,
    stalled.department,
    stalled.priority,
    case stalled.priority when 'stat' then 1 when 'urgent' then 2 else 3 end as priority_rank,
    stalled.value,
    stalled.currency,
    stalled.day
from stalled
left join system_time using (case_id, started_at)
