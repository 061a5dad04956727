-- One row per queue (RabbitMQ) or topic partition and consumer group (Kafka) per observation,
-- as landed in backlog_snapshots, with the figures that sit in its attributes pulled out.
-- Columns of backlog_snapshots keep their meaning (docs/schema.md); added here:
-- queue_key: broker|vhost|queue|consumer_group|partition, the identity of one queue or partition over time.
-- is_aggregate: the row covers a whole node or consumer group (queue `*`), not one queue or partition.
-- backlog: messages waiting: depth for RabbitMQ, consumer lag for Kafka; NULL when the source gave neither.
-- published_total: cumulative messages published into the queue (RabbitMQ message_stats.publish), where given.
-- delivered_total: cumulative messages delivered from it (message_stats.deliver_get, else deliver), where given.
-- dead_lettered_total: cumulative messages dead-lettered on the node (Prometheus counters, `*` rows only).
-- depth_mismatch: messages minus (ready + unacked) where the broker's figures disagree; NULL when they agree.
select
    observed_at,
    broker,
    vhost,
    queue,
    consumer_group,
    partition,
    concat_ws('|', broker, coalesce(vhost, ''), queue, coalesce(consumer_group, ''), coalesce(cast(partition as varchar), '')) as queue_key,
    queue = '*' as is_aggregate,
    depth,
    ready,
    unacked,
    consumers,
    lag,
    coalesce(depth, lag) as backlog,
    oldest_message_age_s,
    publish_rate,
    deliver_rate,
    is_dead_letter,
    flow,
    stage,
    source_system,
    target_system,
    facility_id,
    cast(attributes ->> 'publish_total' as bigint) as published_total,
    cast(coalesce(attributes ->> 'deliver_get_total', attributes ->> 'deliver_total') as bigint) as delivered_total,
    cast(attributes ->> 'dead_lettered_total' as bigint) as dead_lettered_total,
    cast(attributes ->> 'depth_mismatch' as bigint) as depth_mismatch,
    batch_id
from backlog_snapshots
