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

visit_ends as (
    -- The last point of each visit (the next point is of another stage, or there is none) with running counts of
    -- the case's points up to it: a visit's counts are the difference to the previous visit's last point, so no
    -- visit number has to be spread over its points and grouped by. A stage known from spans only has one point,
    -- alone in its visit (no event has that stage), so the points of a visit are all events or one span entry.
    select
        case_id,
        point_at,
        stage,
        stage_order,
        from_spans,
        min(point_at) over case_points as case_first_at,
        row_number() over by_time as points_so_far,
        count(*) filter (where is_returned) over (by_time rows between unbounded preceding and current row) as returned_so_far,
        lead(stage) over by_time as next_stage,
        lead(stage_order) over by_time as next_stage_order,
        lead(point_at) over by_time as next_entered_at
    from points
    window
        case_points as (partition by case_id),
        by_time as (partition by case_id order by point_at, stage_order nulls last, stage)
    qualify next_stage is distinct from stage
)

select
    case_id,
    row_number() over visits as visit_index,
    stage,
    stage_order,
    -- a visit starts at the point after the previous visit's last one
    coalesce(lag(next_entered_at) over visits, case_first_at) as entered_at,
    point_at as last_point_at,
    case when from_spans then 0 else points_so_far - coalesce(lag(points_so_far) over visits, 0) end as events,
    from_spans,
    returned_so_far - coalesce(lag(returned_so_far) over visits, 0) as returned,
    next_stage,
    next_stage_order,
    next_entered_at
from visit_ends
window visits as (partition by case_id order by point_at, stage_order nulls last, stage)
