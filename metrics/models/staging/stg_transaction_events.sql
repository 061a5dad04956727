-- One row per business event (transaction_events), with row-level flags.
-- is_failure: the outcome is failed or exception (DOMAIN.md section 3, failure rate).
-- day: UTC day the event occurred.
select
    *,
    outcome in ('failed', 'exception') as is_failure,
    cast(occurred_at as date) as day
from transaction_events
