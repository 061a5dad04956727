-- One row per interval during which a case waited on a system, not a person, around approval:
-- the evidence that splits a stalled approval's wait into human and system time.
-- Taken from the case's spans (int_case_spans) in approval, budget_check and po_creation:
-- * a failed call: from the start of an error span to the start of the next span of the same name for
--   the case (its retry); without a retry, to the case's next event after the failure; without one, open;
-- * a queued message: from the end of a producer span to the start of the consumer span linked to it
--   (span_links), when the consumer started later.
-- Overlapping or touching intervals of a case are merged, so the intervals of a case are disjoint.
-- case_id: the case. started_at: interval start. ended_at: interval end ('infinity': still failing at the data's end).
with case_spans as (
    select case_id, trace_id, span_id, name, kind, start_time, end_time, is_error
    from int_case_spans
    where stage in ('approval', 'budget_check', 'po_creation')
),

retries as (
    select *, lead(start_time) over (partition by case_id, name order by start_time, span_id) as retried_at
    from case_spans
),

failing_case_events as (
    -- the events of cases with a failed call only: the as-of join below sorts what it is given
    select case_id, occurred_at
    from int_case_events
    where case_id in (select case_id from retries where is_error)
),

failures as (
    select
        retries.case_id,
        retries.start_time as started_at,
        coalesce(retries.retried_at, next_event.occurred_at, 'infinity'::timestamptz) as ended_at
    from retries
    asof left join failing_case_events as next_event
        on next_event.case_id = retries.case_id and next_event.occurred_at >= retries.end_time
    where retries.is_error
),

queued as (
    select consumer.case_id, producer.end_time as started_at, consumer.start_time as ended_at
    from case_spans as consumer
    join span_links as link on link.trace_id = consumer.trace_id and link.span_id = consumer.span_id
    join spans as producer on producer.trace_id = link.linked_trace_id and producer.span_id = link.linked_span_id
    where consumer.kind = 'consumer' and consumer.start_time > producer.end_time
),

intervals as (
    select * from failures
    union all
    select * from queued
),

islands as (
    select
        *,
        max(ended_at) over (
            partition by case_id order by started_at, ended_at rows between unbounded preceding and 1 preceding
        ) as reached_before
    from intervals
),

numbered as (
    select
        *,
        sum(case when reached_before >= started_at then 0 else 1 end) over (
            partition by case_id order by started_at, ended_at rows between unbounded preceding and current row
        ) as island
    from islands
)

select case_id, min(started_at) as started_at, max(ended_at) as ended_at
from numbered
group by case_id, island
