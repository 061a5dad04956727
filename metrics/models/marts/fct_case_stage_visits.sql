-- One row per visit of a case to a stage: a run of consecutive points of the case in the same stage.
-- Materialised (not a view) because the timeline, the stage durations and the approval waits all read it;
-- the one sort of a case's points happens here (the next visit comes from the same window), so no later
-- model sorts events again.
-- Points are the case's business events (int_case_events) plus, for each stage where the case has
-- spans (int_case_spans) but no event, the start of its first span there (events missing: spans fill in).
-- Points are ordered by occurred_at, never recorded_at: an event delivered or exported late still
-- sits where it happened; ties go in flow order (points of one stage at one moment are one visit
-- whatever their order, so nothing finer is needed), then by stage code. A clock a few minutes off can put
-- a point before the one that caused it; the order is kept as measured; durations keep the skew.
-- case_id: the case (int_case_events). visit_index: 1, 2, ... in time order.
-- stage, stage_order: the stage visited and its flow position (NULL for a stage code outside DOMAIN.md).
-- entered_at: the first point of the visit. last_point_at: its last point.
-- events: business events in the visit (0 when the visit comes from spans only). from_spans: it does.
-- returned: events with outcome `returned` in the visit (an approver sent it back).
-- next_stage, next_stage_order, next_entered_at: the stage, its flow position and the entry of the case's next
--   visit (NULL: this is its last visit).
with span_only_entries as (
    select case_id, stage, stage_order, min(start_time) as point_at
    from int_case_spans
    where stage is not null
        and not exists (
            select 1 from int_case_events
            where int_case_events.case_id = int_case_spans.case_id and int_case_events.stage = int_case_spans.stage
        )
    group by case_id, stage, stage_order
),

points as (
    -- narrow rows: the two sorts below carry every column
    select case_id, occurred_at as point_at, stage, stage_order, outcome = 'returned' as is_returned, false as from_spans
    from int_case_events
    union all
    select case_id, point_at, stage, stage_order, false, true
    from span_only_entries
),

ordered as (
    select
        *,
        lag(stage) over by_time is distinct from stage as starts_visit,
        lead(stage) over by_time as next_point_stage,
        lead(stage_order) over by_time as next_point_stage_order,
        lead(point_at) over by_time as next_point_at
    from points
    window by_time as (partition by case_id order by point_at, stage_order nulls last, stage)
),

numbered as (
    select
        *,
        sum(starts_visit::integer) over (
            partition by case_id order by point_at, stage_order nulls last, stage
            rows between unbounded preceding and current row
        )::bigint as visit_index
    from ordered
)

select
    case_id,
    visit_index,
    any_value(stage) as stage,
    any_value(stage_order) as stage_order,
    min(point_at) as entered_at,
    max(point_at) as last_point_at,
    count(*) filter (where not from_spans) as events,
    bool_and(from_spans) as from_spans,
    count(*) filter (where is_returned) as returned,
    -- only the visit's last point is followed by a point of another stage
    any_value(next_point_stage) filter (where next_point_stage <> stage) as next_stage,
    any_value(next_point_stage_order) filter (where next_point_stage <> stage) as next_stage_order,
    min(next_point_at) filter (where next_point_stage <> stage) as next_entered_at
from numbered
group by case_id, visit_index
