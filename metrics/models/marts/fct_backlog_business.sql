-- One row per configured integration flow and facility with objects waiting, arriving or queued: the broker backlog of the flow's queues (fct_backlog,
-- queues matched by the flow's `queues` globs in metrics/defaults/flows.toml) beside the business objects
-- waiting in the flow (fct_unsynced_objects: entered the source, not yet in the target), the money and
-- priorities behind them, and the time to drain them at the current rate, as of data_as_of.
-- flow, facility_id: the flow; the facility of the objects or of the per-facility queue (NULL: shared queues,
--   or objects without a facility).
-- waiting_objects, past_sla_objects: objects waiting; those past the flow's SLA (missing).
-- waiting_amount: money of the waiting objects. waiting_stat, waiting_urgent, waiting_routine: by priority.
-- oldest_waiting_since: source time of the oldest waiting object.
-- arrivals_last_hour: objects that reached the target in the hour before data_as_of (the business drain rate).
-- business_drain_h: waiting_objects / arrivals_last_hour in hours; NULL when nothing arrived (not draining).
-- queues: the matched non-dead-letter queues. queue_backlog: their messages waiting at their latest observation.
-- oldest_message_age_s: the oldest of their oldest messages. queue_drain_rate_per_s: sum of their drain rates.
-- queue_time_to_drain_s: queue_backlog / queue_drain_rate_per_s when draining; 0 when empty; else NULL.
-- dead_letter_depth: messages in the matched dead-letter queues at their latest observation.
-- observed_at: the latest broker observation used; NULL when no queue of the flow was observed.
-- data_as_of: fct_sync_drift's.
with

flows as (
    select name as flow, unnest(queues) as queue_glob from integration_flows
),

latest_queues as (
    select * from fct_backlog
    where not is_aggregate
    qualify observed_at = max(observed_at) over (partition by queue_key)
),

flow_queues as (
    select distinct flows.flow, latest_queues.*
    from flows join latest_queues on latest_queues.queue glob flows.queue_glob
),

broker as (
    select
        flow,
        facility_id,
        list(distinct queue order by queue) filter (where not is_dead_letter) as queues,
        sum(backlog) filter (where not is_dead_letter) as queue_backlog,
        max(oldest_message_age_s) filter (where not is_dead_letter) as oldest_message_age_s,
        sum(drain_rate_per_s) filter (where not is_dead_letter) as queue_drain_rate_per_s,
        coalesce(sum(depth) filter (where is_dead_letter), 0) as dead_letter_depth,
        max(observed_at) as observed_at
    from flow_queues
    group by flow, facility_id
),

horizon as (
    select max(data_as_of) as data_as_of from fct_sync_drift
),

waiting as (
    select
        flow,
        facility_id,
        count(*) as waiting_objects,
        count(*) filter (where is_past_sla) as past_sla_objects,
        sum(amount) as waiting_amount,
        count(*) filter (where priority = 'stat') as waiting_stat,
        count(*) filter (where priority = 'urgent') as waiting_urgent,
        count(*) filter (where priority = 'routine') as waiting_routine,
        min(source_at) as oldest_waiting_since
    from fct_unsynced_objects
    group by flow, facility_id
),

arrivals as (
    select flow, facility_id, count(*) as arrivals_last_hour
    from fct_sync_drift, horizon
    where target_at > horizon.data_as_of - interval 1 hour and target_at <= horizon.data_as_of
    group by flow, facility_id
),

keys as (
    select flow, facility_id from waiting
    union
    select flow, facility_id from arrivals
    union
    select flow, facility_id from broker
)

select
    keys.flow,
    keys.facility_id,
    coalesce(waiting.waiting_objects, 0) as waiting_objects,
    coalesce(waiting.past_sla_objects, 0) as past_sla_objects,
    waiting.waiting_amount,
    coalesce(waiting.waiting_stat, 0) as waiting_stat,
    coalesce(waiting.waiting_urgent, 0) as waiting_urgent,
    coalesce(waiting.waiting_routine, 0) as waiting_routine,
    waiting.oldest_waiting_since,
    coalesce(arrivals.arrivals_last_hour, 0) as arrivals_last_hour,
    case when arrivals.arrivals_last_hour > 0
        then coalesce(waiting.waiting_objects, 0)::double / arrivals.arrivals_last_hour end as business_drain_h,
    broker.queues,
    broker.queue_backlog,
    broker.oldest_message_age_s,
    broker.queue_drain_rate_per_s,
    case
        when broker.queue_backlog = 0 then 0.0
        when broker.queue_drain_rate_per_s > 0 then broker.queue_backlog / broker.queue_drain_rate_per_s
    end as queue_time_to_drain_s,
    broker.dead_letter_depth,
    broker.observed_at,
    horizon.data_as_of
from keys
cross join horizon
left join waiting on waiting.flow = keys.flow and waiting.facility_id is not distinct from keys.facility_id
left join arrivals on arrivals.flow = keys.flow and arrivals.facility_id is not distinct from keys.facility_id
left join broker on broker.flow = keys.flow and broker.facility_id is not distinct from keys.facility_id
order by keys.flow, keys.facility_id
