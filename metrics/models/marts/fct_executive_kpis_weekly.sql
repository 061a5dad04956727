-- One row per week, facility, supplier and rate KPI: the counts behind the executive rates, additive so
-- any selection of facilities, suppliers and weeks sums them exactly (metrics.executive).
-- A case counts in the week its outcome is decided: payment week for touchless and on-time payment,
-- week of its first match for first-pass match, week of its first event for spend touched by exceptions.
-- week: ISO week (Monday, UTC). facility_id, supplier_id: the case's (fct_requisition_timeline).
-- kpi: touchless (paid cases with no manual step or exception, of paid cases); on_time_payment (paid by the
--   due date, of paid cases); first_pass_match (first three-way match passed, of cases matched at all);
--   exception_spend (value of cases touched by an exception, of all cases' value).
-- numerator, denominator: the rate is numerator / denominator (cases; money for exception_spend).
with paid as (
    select cast(date_trunc('week', paid_at) as date) as week, facility_id, supplier_id,
        count(*) filter (where is_touchless) as touchless,
        count(*) filter (where paid_on_time) as on_time,
        count(*) as cases
    from fct_requisition_timeline
    where is_paid
    group by all
),

matched as (
    select cast(date_trunc('week', match_at) as date) as week, facility_id, supplier_id,
        count(*) filter (where first_pass_match) as first_pass,
        count(*) as cases
    from fct_requisition_timeline
    where match_at is not null
    group by all
),

spend as (
    select week, facility_id, supplier_id,
        coalesce(sum(value) filter (where touched_by_exception), 0) as exception_value,
        coalesce(sum(value), 0) as value
    from fct_requisition_timeline
    group by all
)

select week, facility_id, supplier_id, 'touchless' as kpi, touchless::double as numerator, cases::double as denominator from paid
union all
select week, facility_id, supplier_id, 'on_time_payment', on_time, cases from paid
union all
select week, facility_id, supplier_id, 'first_pass_match', first_pass, cases from matched
union all
select week, facility_id, supplier_id, 'exception_spend', exception_value, value from spend
