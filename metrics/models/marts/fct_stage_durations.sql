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
select
    visits.case_id,
    visits.visit_index as transition_index,
    visits.stage as from_stage,
    visits.next_stage as to_stage,
    visits.entered_at as from_entered_at,
    visits.next_entered_at as to_entered_at,
    -- seconds from the epoch_us difference: subtracting TIMESTAMPTZ values goes through ICU's calendar, ~20x slower
    (epoch_us(visits.next_entered_at) - epoch_us(visits.entered_at)) / 1e6 as duration_s,
    coalesce(visits.next_stage_order < visits.stage_order, false) as is_rework,
    timeline.facility_id,
    timeline.supplier_id,
    timeline.priority,
    timeline.day,
    timeline.week
from fct_case_stage_visits as visits
join fct_requisition_timeline as timeline using (case_id)
where visits.next_stage is not null
-- stored in case order: the requisition page reads one case's transitions from one row group (zone maps)
order by visits.case_id, visits.visit_index
