-- One row per queue (RabbitMQ) or topic partition and consumer group (Kafka) per observation, with
-- the backlog measures of DOMAIN.md section 3 derived against the same queue's earlier observations.
-- Identity, flow and raw figures are stg_backlog_snapshots' (observed_at, broker, vhost, queue,
-- consumer_group, partition, queue_key, is_aggregate, flow, stage, source_system, target_system,
-- facility_id, is_dead_letter, depth, ready, unacked, consumers, lag, backlog, oldest_message_age_s,
-- depth_mismatch). Derived:
-- previous_observed_at: the queue's previous observation; NULL for its first.
-- interval_s: seconds since that previous observation.
-- backlog_change: backlog minus the previous observation's backlog (positive: growing).
-- publish_rate: messages published per second: the broker's reported rate, else the published counter's
--   increase over interval_s; NULL when neither is known or the counter went back (broker restart).
-- deliver_rate: messages delivered per second, the same way from the delivered counter.
-- drain_rate_per_s: net messages removed from the backlog per second over the trailing window of up to
--   5 intervals (backlog at the window's start minus backlog now, over its seconds); negative while the
--   backlog grows; NULL on a queue's first observation.
-- time_to_drain_s: backlog / drain_rate_per_s when draining; 0 when the backlog is empty; NULL when it is
--   not draining (it would never empty at this rate) or the rate is unknown.
-- dead_letter_growth: for a dead-letter queue, its depth minus the previous depth (negative when it was
--   replayed or purged); for a node row (`*`), the increase of its dead-lettered counter; else NULL.
-- dead_letter_growth_per_s: dead_letter_growth over interval_s.
-- no_consumer_with_messages: a queue or partition (not a dead-letter queue, which is drained by hand) has a
--   backlog and no consumer; NULL when either is unknown.
-- publish_rate_derived: publish_rate came from the counters, not from the broker.
with

snapshots as (
    select * from stg_backlog_snapshots
),

with_history as (
    select
        *,
        lag(observed_at) over by_queue as previous_observed_at,
        lag(backlog) over by_queue as previous_backlog,
        lag(depth) over by_queue as previous_depth,
        lag(published_total) over by_queue as previous_published_total,
        lag(delivered_total) over by_queue as previous_delivered_total,
        lag(dead_lettered_total) over by_queue as previous_dead_lettered_total,
        first_value(observed_at) over recent as window_start_at,
        first_value(backlog) over recent as window_start_backlog
    from snapshots
    window
        by_queue as (partition by queue_key order by observed_at),
        recent as (partition by queue_key order by observed_at rows between 5 preceding and current row)
),

intervals as (
    select
        *,
        date_diff('millisecond', previous_observed_at, observed_at) / 1000.0 as interval_s,
        date_diff('millisecond', window_start_at, observed_at) / 1000.0 as window_s
    from with_history
),

rates as (
    select
        *,
        case when window_s > 0 then (window_start_backlog - backlog) / window_s end as drain_rate_per_s,
        case
            when publish_rate is not null then publish_rate
            when interval_s > 0 and published_total >= previous_published_total
                then (published_total - previous_published_total) / interval_s
        end as publish_rate_resolved,
        case
            when deliver_rate is not null then deliver_rate
            when interval_s > 0 and delivered_total >= previous_delivered_total
                then (delivered_total - previous_delivered_total) / interval_s
        end as deliver_rate_resolved,
        case
            when is_dead_letter then depth - previous_depth
            when dead_lettered_total >= previous_dead_lettered_total
                then dead_lettered_total - previous_dead_lettered_total
        end as dead_letter_growth
    from intervals
)

select
    observed_at,
    broker,
    vhost,
    queue,
    consumer_group,
    partition,
    queue_key,
    is_aggregate,
    flow,
    stage,
    source_system,
    target_system,
    facility_id,
    is_dead_letter,
    depth,
    ready,
    unacked,
    consumers,
    lag,
    backlog,
    oldest_message_age_s,
    depth_mismatch,
    previous_observed_at,
    interval_s,
    backlog - previous_backlog as backlog_change,
    publish_rate_resolved as publish_rate,
    deliver_rate_resolved as deliver_rate,
    publish_rate is null and publish_rate_resolved is not null as publish_rate_derived,
    drain_rate_per_s,
    case
        when backlog = 0 then 0.0
        when drain_rate_per_s > 0 then backlog / drain_rate_per_s
    end as time_to_drain_s,
    dead_letter_growth,
    case when interval_s > 0 then dead_letter_growth / interval_s end as dead_letter_growth_per_s,
    not is_dead_letter and backlog > 0 and consumers = 0 as no_consumer_with_messages
from rates
