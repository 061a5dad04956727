-- One row per exception group (fingerprint): what it is, how much and whom it touches, and its
-- triage state (DOMAIN.md section 3). Occurrences are fct_exception_occurrences'; the state is the
-- latest row of fct_triage_history, reopened by the occurrences that came after it.
-- fingerprint: the group's id. grouping_rule, group_key: the rule and the `dimension=value` key behind it.
-- source, system, interface, target_system, flow, stage, error_type, error_codes, endpoint, masked_message:
--   of its latest occurrence.
-- flows: the integration flows of its occurrences (sorted).
-- burning_flows: those of its flows whose SLO burned (an slo_burn occurrence, fct_exception_occurrences) in a
--   UTC hour in which the group occurred: the flow it hurts was burning its error budget meanwhile.
-- sample_message: the raw message of its latest occurrence.
-- first_seen, last_seen: its first and latest occurrence. occurrences: how many.
-- occurrences_24h, occurrences_prior_24h: in the 24 h up to as_of, and the 24 h before those.
-- as_of: the latest occurrence of any group (the figures are relative to it, not to the clock).
-- daily_counts: occurrences per UTC day over the 14 days up to as_of's day, oldest first (the sparkline).
-- facilities, suppliers: sorted lists of those affected; facility_count, supplier_count.
-- objects: distinct affected business objects (requisition, else PO, else object id).
-- requisitions: distinct affected requisitions. amount: money at stake, each object's largest amount once.
-- stat_occurrences, urgent_occurrences: occurrences on stat / urgent requisitions.
-- items: item texts of the affected requisitions and POs (for critical-item ranking), cut at 2,000 characters.
-- sample_traces: up to 5 trace ids of its latest traced occurrences.
-- recorded_status: the status its last triage decision set (new when none).
-- status: recorded_status, except: resolved and occurred again after the resolve -> regressed;
--   ignored until a time and occurred after it, or ignored until it escalates and escalated -> new.
-- reopened_reason: regressed, ignore expired or escalated when status differs from recorded_status.
-- reopened_at: the first occurrence after the resolve (or after the ignore's end) that reopened it.
-- escalated: since the ignore, one UTC day held more than twice its busiest day before it.
-- assignee, status_changed_at, ignored_until: from its latest triage decision.
-- last_event_id, last_changed_at, last_changed_by: its latest triage decision (last_event_id is the
--   version a new decision is based on). decisions, notes: how many decisions and notes it has.
with

occurrences as (
    select * from fct_exception_occurrences
),

clock as (
    select max(occurred_at) as as_of from occurrences
),

triage as (
    select * from fct_triage_history where is_latest
),

triage_counts as (
    select fingerprint, count(*) as decisions, count(note) as notes
    from fct_triage_history
    group by fingerprint
),

daily as (
    select fingerprint, day, count(*) as occurrences
    from occurrences
    group by all
),

sparklines as (
    select
        g.fingerprint,
        list(coalesce(d.occurrences, 0) order by spine.day) as daily_counts
    from (select distinct fingerprint from occurrences) g
    cross join (
        select cast(unnest(generate_series(cast(as_of as date) - 13, cast(as_of as date), interval 1 day)) as date) as day
        from clock
    ) spine
    left join daily d on d.fingerprint = g.fingerprint and d.day = spine.day
    group by g.fingerprint
),

objects as (
    select
        fingerprint,
        coalesce(requisition_id, po_number, object_type || ':' || object_id) as object_key,
        max(amount) as amount
    from occurrences
    where coalesce(requisition_id, po_number, object_id) is not null
    group by all
),

burning_hours as (
    select distinct flow, date_trunc('hour', occurred_at) as hour
    from occurrences
    where source = 'slo_burn'
),

burning as (
    select fingerprint, list_sort(list(distinct o.flow)) as burning_flows
    from occurrences o
    join burning_hours b on b.flow = o.flow and b.hour = date_trunc('hour', o.occurred_at)
    group by fingerprint
),

object_totals as (
    select fingerprint, count(*) as objects, sum(amount) as amount
    from objects
    group by fingerprint
),

summary as (
    select
        fingerprint,
        any_value(grouping_rule) as grouping_rule,
        any_value(group_key) as group_key,
        arg_max(source, occurred_at) as source,
        arg_max(system, occurred_at) as system,
        arg_max(interface, occurred_at) as interface,
        arg_max(target_system, occurred_at) as target_system,
        arg_max(flow, occurred_at) as flow,
        coalesce(list_sort(list(distinct flow) filter (where flow is not null)), []) as flows,
        arg_max(stage, occurred_at) as stage,
        arg_max(error_type, occurred_at) as error_type,
        arg_max(error_codes, occurred_at) as error_codes,
        arg_max(endpoint, occurred_at) as endpoint,
        arg_max(masked_message, occurred_at) as masked_message,
        arg_max(message, occurred_at) as sample_message,
        min(occurred_at) as first_seen,
        max(occurred_at) as last_seen,
        count(*) as occurrences,
        count(*) filter (where occurred_at > as_of - interval 24 hour) as occurrences_24h,
        count(*) filter (where occurred_at <= as_of - interval 24 hour and occurred_at > as_of - interval 48 hour)
            as occurrences_prior_24h,
        any_value(as_of) as as_of,
        list_sort(list(distinct facility_id) filter (where facility_id is not null)) as facilities,
        list_sort(list(distinct supplier_id) filter (where supplier_id is not null)) as suppliers,
        count(distinct requisition_id) as requisitions,
        count(*) filter (where priority = 'stat') as stat_occurrences,
        count(*) filter (where priority = 'urgent') as urgent_occurrences,
        left(string_agg(distinct items, ' ; '), 2000) as items
    from occurrences, clock
    group by fingerprint
),

sample_traces as (
    select fingerprint, list(trace_id order by last_at desc, trace_id)[1:5] as sample_traces
    from (
        select fingerprint, trace_id, max(occurred_at) as last_at
        from occurrences
        where trace_id is not null
        group by all
    )
    group by fingerprint
),

reopening as (
    -- The first occurrence after the resolve, or after the ignore's end; and escalation of an open-ended ignore.
    select
        t.fingerprint,
        min(o.occurred_at) filter (where t.status = 'resolved' and o.occurred_at > t.status_changed_at) as regressed_at,
        min(o.occurred_at) filter (where t.status = 'ignored' and o.occurred_at > t.ignored_until) as ignore_expired_at
    from triage t
    join occurrences o using (fingerprint)
    where t.status in ('resolved', 'ignored')
    group by t.fingerprint
),

escalation as (
    select
        t.fingerprint,
        max(d.occurrences) filter (where d.day > cast(t.status_changed_at as date)) as busiest_day_after,
        max(d.occurrences) filter (where d.day <= cast(t.status_changed_at as date)) as busiest_day_before,
        min(d.day) filter (where d.day > cast(t.status_changed_at as date)) as first_day_after
    from triage t
    join daily d using (fingerprint)
    where t.status = 'ignored' and t.ignored_until is null
    group by t.fingerprint
),

state as (
    select
        s.fingerprint,
        coalesce(t.status, 'new') as recorded_status,
        coalesce(e.busiest_day_after > 2 * coalesce(e.busiest_day_before, 0), false) as escalated,
        r.regressed_at,
        r.ignore_expired_at,
        e.first_day_after
    from summary s
    left join triage t using (fingerprint)
    left join reopening r using (fingerprint)
    left join escalation e using (fingerprint)
)

select
    s.fingerprint,
    s.grouping_rule,
    s.group_key,
    s.source,
    s.system,
    s.interface,
    s.target_system,
    s.flow,
    s.flows,
    coalesce(b.burning_flows, []) as burning_flows,
    s.stage,
    s.error_type,
    s.error_codes,
    s.endpoint,
    s.masked_message,
    s.sample_message,
    s.first_seen,
    s.last_seen,
    s.occurrences,
    s.occurrences_24h,
    s.occurrences_prior_24h,
    s.as_of,
    p.daily_counts,
    s.facilities,
    len(s.facilities) as facility_count,
    s.suppliers,
    len(s.suppliers) as supplier_count,
    coalesce(o.objects, 0) as objects,
    s.requisitions,
    o.amount,
    s.stat_occurrences,
    s.urgent_occurrences,
    s.items,
    coalesce(st.sample_traces, []) as sample_traces,
    x.recorded_status,
    case
        when x.regressed_at is not null then 'regressed'
        when x.ignore_expired_at is not null or x.escalated then 'new'
        else x.recorded_status
    end as status,
    case
        when x.regressed_at is not null then 'regressed'
        when x.ignore_expired_at is not null then 'ignore expired'
        when x.escalated then 'escalated'
    end as reopened_reason,
    coalesce(x.regressed_at, x.ignore_expired_at, case when x.escalated then cast(x.first_day_after as timestamptz) end)
        as reopened_at,
    x.escalated,
    t.assignee,
    t.status_changed_at,
    t.ignored_until,
    t.triage_event_id as last_event_id,
    t.changed_at as last_changed_at,
    t.changed_by as last_changed_by,
    coalesce(c.decisions, 0) as decisions,
    coalesce(c.notes, 0) as notes
from summary s
join state x using (fingerprint)
left join sparklines p using (fingerprint)
left join object_totals o using (fingerprint)
left join sample_traces st using (fingerprint)
left join burning b using (fingerprint)
left join triage t using (fingerprint)
left join triage_counts c using (fingerprint)
