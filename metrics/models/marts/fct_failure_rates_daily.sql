-- fct_failure_rates rolled up to UTC days: one row per day, input, facility, supplier, stage, system and
-- interface, so page queries over weeks read a twentieth of the rows. Columns are fct_failure_rates' (without
-- hour): day, input, facility_id, supplier_id, stage, system, interface, attempts, failures,
-- sample_failed_trace_id (the greatest of the day's), first_failure_at, last_failure_at.
select
    day,
    input,
    facility_id,
    supplier_id,
    stage,
    system,
    interface,
    sum(attempts)::bigint as attempts,
    sum(failures)::bigint as failures,
    max(sample_failed_trace_id) as sample_failed_trace_id,
    min(first_failure_at) as first_failure_at,
    max(last_failure_at) as last_failure_at
from fct_failure_rates
group by all
order by day, input
