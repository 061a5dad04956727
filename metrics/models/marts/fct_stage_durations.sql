-- One row per case and stage transition: a visit to a stage followed by a visit to another stage
-- (fct_case_stage_visits), in time order. Rework shows as a transition back (approval > requisition)
-- and a second visit. The last visit of a case has no transition and no row.
-- case_id: the case (fct_requisition_timeline). transition_index: 1, 2, ... in time order.
-- from_stage, to_stage: the stages left and entered. from_entered_at: entry into the visit left.
-- to_entered_at: entry into the next visit. duration_s: to_entered_at - from_entered_at in seconds (the time
--   spent in the from_stage visit; negative never, as visits are ordered by time; a clock skew between
--   systems shifts it by the skew).
-- is_rework: to_stage comes earlier in the flow than from_stage (sent back).
-- facility_id, supplier_id, priority, day, week: the case's (fct_requisition_timeline), for filtering.
with transitions as (
    select
        case_id,
        visit_index as transition_index,
        stage as from_stage,
        stage_order as from_stage_order,
        lead(stage) over by_visit as to_stage,
        lead(stage_order) over by_visit as to_stage_order,
        entered_at as from_entered_at,
        lead(entered_at) over by_visit as to_entered_at
    from fct_case_stage_visits
    window by_visit as (partition by case_id order by visit_index)
)

select
    transitions.case_id,
    transition_index,
    from_stage,
    to_stage,
    from_entered_at,
    to_entered_at,
    epoch(to_entered_at - from_entered_at) as duration_s,
    coalesce(to_stage_order < from_stage_order, false) as is_rework,
    timeline.facility_id,
    timeline.supplier_id,
    timeline.priority,
    timeline.day,
    timeline.week
from transitions
join fct_requisition_timeline as timeline using (case_id)
where to_stage is not null
