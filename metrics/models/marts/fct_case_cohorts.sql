-- One row per combination of the case attributes the cycle-time filters select on (a cohort of cases in
-- fct_requisition_timeline): the small dimension the sorted per-case measures refer to, and where the
-- Cycle times page reads the values its filters offer.
-- cohort: the combination's number. facility_id, supplier_id, department, priority, category, status: the
--   cases' (fct_requisition_timeline).
select
    dense_rank() over (order by facility_id, supplier_id, department, priority, category, status)::integer as cohort,
    facility_id,
    supplier_id,
    department,
    priority,
    category,
    status
from (select distinct facility_id, supplier_id, department, priority, category, status from fct_requisition_timeline)
order by cohort
