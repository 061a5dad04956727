-- One row per case and stage it entered: when it first entered, and when it first reached a later stage.
-- case_id, stage, stage_order: as in fct_case_stage_visits.
-- entered_at: the first point of the case in the stage (first event; first span where no event exists).
-- next_entered_at: the earliest entry into any later stage of the flow (NULL: none yet). The stage's
--   cycle time (DOMAIN.md section 3) is next_entered_at - entered_at; it is negative when a clock
--   skew puts a later stage's first point before this one, and is kept so, to show the skew.
-- visits: how many times the case entered the stage (more than 1: rework, e.g. re-approval).
-- events: business events in the stage. from_spans: the entry comes from spans only (events missing).
with stages as (
    select
        case_id,
        stage,
        any_value(stage_order) as stage_order,
        min(entered_at) as entered_at,
        count(*) as visits,
        sum(events) as events,
        bool_and(from_spans) as from_spans
    from fct_case_stage_visits
    group by case_id, stage
)

select
    case_id,
    stage,
    stage_order,
    entered_at,
    min(entered_at) over (
        partition by case_id order by stage_order rows between 1 following and unbounded following
    ) as next_entered_at,
    visits,
    events,
    from_spans
from stages
