-- One row per span, with row-level flags.
-- is_error: the span's status is error (a failed integration operation).
-- day: UTC day the span started.
select
    *,
    status_code = 'error' as is_error,
    cast(start_time as date) as day
from spans
