-- One row per exception occurrence (DOMAIN.md section 3), with its fingerprint: the failure
-- occurrences of every input in one shape, so each lands in exactly one exception group.
-- Sources: failed spans (status error); failed or exception business events, three-way match
-- exceptions (stage match, outcome exception) and supplier rejections of POs (outcome rejected at
-- po_transmission or supplier_ack); dead-lettered messages (the growth of a dead-letter queue
-- between two backlog observations, one row per message); drift past SLA: objects of an integration
-- flow not in its target within the SLA (fct_sync_drift late or missing, one row per object) and state
-- drift breaches (fct_state_drift, one row per breaching period); SLO burn: one row per flow and
-- 5-minute step at whose end a burn alert of metrics.slo.ALERTS fires (both its windows over the threshold).
-- occurrence_id: trace_id:span_id, the event_id, queue_key@observed_at#n for a dead letter,
--   sync:<flow>:<object_key>@<source_at>, state:<flow>:<object_key>@<drift_start>, slo:<flow>@<step end>.
-- source: span, transaction, match, edi_rejection, dead_letter, sync_drift, state_drift or slo_burn.
-- occurred_at, day: when it happened (span start, event time, backlog observation, the moment the SLA
--   passed, the step's end) and its UTC day.
-- system: the system that failed or reported it (span service.name, event system, DLQ target system;
--   for drift and SLO burn the flow's target system).
-- interface: `source_system -> target_system` of the flow, where known. target_system: its target.
-- flow: the integration flow (metrics/defaults/flows.toml) it belongs to: the drift's or burn's flow, the
--   dead-letter queue's, else the flow serving its stage (for a stage-less flow: its object type).
-- error_type: span error.type, else exception.type, else `HTTP <code>`; for an event `<event type>: <value>`
--   of its first event_error_type_attributes (stg_fingerprint_rules), else its event type; `dead-lettered`,
--   `not in target within SLA`, `state <source value> vs <target value>`, `SLO burn`.
-- message: the raw message (exception.message, else the status message; for an event its first
--   event_message_attributes, else `<error type> <outcome>`; for drift and burn a generated sentence).
--   masked_message: message through stg_fingerprint_rules' masks.
-- error_codes: the codes of keep_codes found in the raw message, comma-separated.
-- cause: for a match exception, its invoice's integration cause (fct_match_exception_causes: receipt_sync_late,
--   receipt_dead_lettered, asn_failed, stale_master_data or none); NULL for other occurrences.
-- endpoint: span name, event type or queue. http_status_code and http_status_class (e.g. 5xx).
-- queue: broker queue or topic involved. facility_id, supplier_id, stage, object_type, object_id,
--   requisition_id, po_number, invoice_id, trace_id, span_id: the affected business context.
-- priority: the occurrence's priority, else its requisition's (stat, urgent, routine).
-- amount: money at stake: the event's amount, else its requisition's (or PO's) largest amount.
-- items: item numbers and descriptions known for its requisition or PO (for critical-item ranking).
-- attributes: the source's remaining attributes (JSON), for the what-changed comparison (for drift: lag_s,
--   sla_s, arrived; for SLO burn: the alert and its two burn rates).
-- grouping_rule: the fingerprint rule that matched; group_key: `dimension=value | ...` it keyed on;
-- fingerprint: first 16 hex digits of SHA-256 of grouping_rule and group_key (stable across rebuilds).
with

rules as (
    select * from stg_fingerprint_rules
),

events as (
    select * from stg_transaction_events
),

flows as (
    select * from integration_flows
),

match_causes as (
    select invoice_id as cause_invoice_id, exception_type, cause from fct_match_exception_causes
),

flow_of_stage as (
    select stage, min(name) as flow from flows where stage is not null group by stage
),

flow_of_object_type as (
    select object_type, min(name) as flow from flows where stage is null group by object_type
),

item_texts as (
    select
        requisition_id,
        po_number,
        nullif(concat_ws(' ', attributes ->> 'item', attributes ->> 'item_number', attributes ->> 'item_description',
            attributes ->> 'item_category'), '') as item_text
    from events
),

requisition_context as (
    select
        requisition_id,
        any_value(priority) filter (where priority is not null) as priority,
        max(amount) as amount,
        string_agg(distinct item_text, ' ; ') as items
    from events left join (select distinct requisition_id, item_text from item_texts) using (requisition_id)
    where requisition_id is not null
    group by requisition_id
),

po_context as (
    select
        po_number,
        any_value(requisition_id) filter (where requisition_id is not null) as requisition_id,
        max(amount) as amount,
        string_agg(distinct item_text, ' ; ') as items
    from events left join (select distinct po_number, item_text from item_texts) using (po_number)
    where po_number is not null
    group by po_number
),

span_exceptions as (
    select
        trace_id,
        span_id,
        arg_min(attributes ->> 'exception.type', event_index) as exception_type,
        arg_min(attributes ->> 'exception.message', event_index) as exception_message
    from span_events
    where name = 'exception'
    group by trace_id, span_id
),

failed_spans as (
    select
        s.trace_id || ':' || s.span_id as occurrence_id,
        'span' as source,
        s.start_time as occurred_at,
        coalesce(s.service_name, s.target_system, 'unknown') as system,
        s.source_system,
        s.target_system,
        coalesce(s.error_type, e.exception_type,
            case when s.http_status_code is not null then 'HTTP ' || s.http_status_code end, 'error') as error_type,
        coalesce(e.exception_message, s.status_message, '') as message,
        s.name as endpoint,
        s.http_status_code,
        coalesce(s.attributes ->> 'messaging.destination.name', s.attributes ->> 'messaging.destination') as queue,
        s.facility_id,
        s.supplier_id,
        s.stage,
        s.object_type,
        s.object_id,
        s.requisition_id,
        s.po_number,
        s.invoice_id,
        s.priority,
        cast(null as decimal(18, 4)) as amount,
        s.trace_id,
        s.span_id,
        s.attributes
    from stg_spans s
    left join span_exceptions e using (trace_id, span_id)
    where s.is_error
),

event_failures as (
    select
        events.*,
        case
            when stage = 'match' and outcome = 'exception' then 'match'
            when outcome = 'rejected' then 'edi_rejection'
            else 'transaction'
        end as source,
        list_filter(list_transform(rules.event_error_type_attributes,
            lambda k: nullif(trim(attributes ->> k), '')), lambda v: v is not null)[1] as reason,
        list_filter(list_transform(rules.event_message_attributes,
            lambda k: nullif(trim(attributes ->> k), '')), lambda v: v is not null)[1] as detail
    from events, rules
    where is_failure or (outcome = 'rejected' and stage in ('po_transmission', 'supplier_ack'))
),

failed_events as (
    select
        f.event_id as occurrence_id,
        f.source,
        f.occurred_at,
        f.system,
        cast(null as varchar) as source_system,
        cast(null as varchar) as target_system,
        -- the invoice's cause explains its exceptions of the same reason (a later price variance is another matter)
        case when f.source = 'match' then coalesce(c.cause, 'none') end as cause,
        f.event_type || coalesce(': ' || f.reason, '') as error_type,
        coalesce(f.detail, f.event_type || coalesce(': ' || f.reason, '') || ' ' || f.outcome) as message,
        f.event_type as endpoint,
        cast(null as bigint) as http_status_code,
        cast(null as varchar) as queue,
        f.facility_id,
        f.supplier_id,
        f.stage,
        f.object_type,
        f.object_id,
        f.requisition_id,
        f.po_number,
        f.invoice_id,
        f.priority,
        f.amount,
        f.trace_id,
        cast(null as varchar) as span_id,
        f.attributes
    from event_failures f
    left join match_causes c
        on f.source = 'match' and c.cause_invoice_id = f.invoice_id and c.exception_type = coalesce(f.reason, f.event_type)
),

dead_letter_growth as (
    select * from fct_backlog
    where is_dead_letter and not is_aggregate and dead_letter_growth > 0
),

dead_letters as (
    select
        queue_key || '@' || strftime(observed_at, '%Y-%m-%dT%H:%M:%S.%fZ') || '#' || n as occurrence_id,
        'dead_letter' as source,
        observed_at as occurred_at,
        coalesce(target_system, broker) as system,
        source_system,
        target_system,
        'dead-lettered' as error_type,
        'message dead-lettered on ' || queue as message,
        queue as endpoint,
        cast(null as bigint) as http_status_code,
        queue,
        facility_id,
        cast(null as varchar) as supplier_id,
        stage,
        cast(null as varchar) as object_type,
        cast(null as varchar) as object_id,
        cast(null as varchar) as requisition_id,
        cast(null as varchar) as po_number,
        cast(null as varchar) as invoice_id,
        cast(null as varchar) as priority,
        cast(null as decimal(18, 4)) as amount,
        cast(null as varchar) as trace_id,
        cast(null as varchar) as span_id,
        flow,
        cast(json_object('broker', broker, 'vhost', vhost) as json) as attributes
    from dead_letter_growth, range(dead_letter_growth) as messages(n)
),

past_sla as (
    select
        *,
        row_number() over (partition by flow, object_key, source_at order by due_at, target_at) as n
    from fct_sync_drift
    where is_late or is_missing
),

sync_drift as (
    select
        'sync:' || d.flow || ':' || d.object_key || '@' || strftime(d.source_at, '%Y-%m-%dT%H:%M:%S.%fZ')
            || if(d.n > 1, '#' || d.n, '') as occurrence_id,
        'sync_drift' as source,
        d.due_at as occurred_at,
        coalesce(d.target_system, f.target_system) as system,
        d.source_system,
        coalesce(d.target_system, f.target_system) as target_system,
        'not in target within SLA' as error_type,
        d.object_type || ' ' || d.object_key || ' from ' || d.source_system || ' not in '
            || coalesce(d.target_system, f.target_system) || ' within ' || (d.sla_s // 60) || ' min' as message,
        d.flow as endpoint,
        cast(null as bigint) as http_status_code,
        cast(null as varchar) as queue,
        d.facility_id,
        d.supplier_id,
        d.stage,
        d.object_type,
        d.object_key as object_id,
        d.requisition_id,
        d.po_number,
        d.invoice_id,
        d.priority,
        d.amount,
        d.trace_id,
        cast(null as varchar) as span_id,
        d.flow,
        cast(json_object('lag_s', d.lag_s, 'sla_s', d.sla_s, 'arrived', d.is_late) as json) as attributes
    from past_sla d
    join flows f on f.name = d.flow
),

state_drift as (
    select
        'state:' || d.flow || ':' || d.object_key || '@' || strftime(d.drift_start, '%Y-%m-%dT%H:%M:%S.%fZ')
            as occurrence_id,
        'state_drift' as source,
        d.drift_start + to_seconds(d.sla_s) as occurred_at,
        f.target_system as system,
        f.source_system,
        f.target_system,
        'state ' || d.source_value || ' vs ' || d.target_value as error_type,
        d.object_type || ' ' || d.object_key || ' ' || d.source_value || ' in ' || f.source_system || ' but '
            || d.target_value || ' in ' || f.target_system || ' past ' || (d.sla_s // 60) || ' min' as message,
        d.flow as endpoint,
        cast(null as bigint) as http_status_code,
        cast(null as varchar) as queue,
        d.facility_id,
        d.supplier_id,
        f.stage,
        d.object_type,
        d.object_key as object_id,
        cast(null as varchar) as requisition_id,
        cast(null as varchar) as po_number,
        cast(null as varchar) as invoice_id,
        cast(null as varchar) as priority,
        cast(null as decimal(18, 4)) as amount,
        cast(null as varchar) as trace_id,
        cast(null as varchar) as span_id,
        d.flow,
        cast(json_object('duration_s', d.duration_s, 'sla_s', d.sla_s, 'open', d.is_open) as json) as attributes
    from fct_state_drift d
    join flows f on f.name = d.flow
    where d.is_breach
),

slo_buckets as (
    select flow, bucket, sum(eligible) as eligible, sum(bad) as bad, any_value(slo_target) as slo_target,
        any_value(data_as_of) as data_as_of
    from fct_slo_burn
    group by flow, bucket
),

slo_steps as (
    -- every 5-minute step end from a flow's first bucket until its last one has left the longest short window
    -- (or the data ends): an alert is evaluated at each step's end over the buckets starting in
    -- [end - window, end), as metrics.slo.burn_rates does at that moment
    select flow, any_value(slo_target) as slo_target,
        unnest(generate_series(min(bucket) + interval 5 minute,
            least(max(bucket) + to_seconds(any_value(rules.longest_short_s)), max(data_as_of)),
            interval 5 minute)) as step_end
    from slo_buckets, (select list_max(list_transform(burn_alerts, lambda a: a.short_s)) as longest_short_s from rules) rules
    group by flow
),

burn_rates as (
    select
        s.flow,
        s.step_end,
        a.alert.name as alert,
        a.position,
        a.alert.threshold as threshold,
        (sum(w.bad) filter (where w.bucket >= s.step_end - to_seconds(a.alert.long_s))
            / nullif(sum(w.eligible) filter (where w.bucket >= s.step_end - to_seconds(a.alert.long_s)), 0))
            / (1 - any_value(s.slo_target)) as long_burn,
        (sum(w.bad) filter (where w.bucket >= s.step_end - to_seconds(a.alert.short_s))
            / nullif(sum(w.eligible) filter (where w.bucket >= s.step_end - to_seconds(a.alert.short_s)), 0))
            / (1 - any_value(s.slo_target)) as short_burn
    from slo_steps s
    cross join (select unnest(burn_alerts) as alert, generate_subscripts(burn_alerts, 1) as position from rules) a
    join slo_buckets w on w.flow = s.flow and w.bucket < s.step_end
        and w.bucket >= s.step_end - to_seconds(greatest(a.alert.long_s, a.alert.short_s))
    group by s.flow, s.step_end, a.alert.name, a.position, a.alert.threshold
),

firing as (
    select * from burn_rates
    where long_burn > threshold and short_burn > threshold
    qualify row_number() over (partition by flow, step_end order by position) = 1
),

slo_burn as (
    select
        'slo:' || b.flow || '@' || strftime(b.step_end, '%Y-%m-%dT%H:%M:%S.%fZ') as occurrence_id,
        'slo_burn' as source,
        b.step_end as occurred_at,
        f.target_system as system,
        f.source_system,
        f.target_system,
        'SLO burn' as error_type,
        b.flow || ' SLO (' || round(f.slo_target * 100, 2) || ' % within ' || f.sla_minutes || ' min) burning: '
            || b.alert || ' alert, ' || round(b.long_burn, 1) || 'x and ' || round(b.short_burn, 1) || 'x over '
            || b.threshold || 'x' as message,
        b.flow as endpoint,
        cast(null as bigint) as http_status_code,
        cast(null as varchar) as queue,
        cast(null as varchar) as facility_id,
        cast(null as varchar) as supplier_id,
        f.stage,
        f.object_type,
        cast(null as varchar) as object_id,
        cast(null as varchar) as requisition_id,
        cast(null as varchar) as po_number,
        cast(null as varchar) as invoice_id,
        cast(null as varchar) as priority,
        cast(null as decimal(18, 4)) as amount,
        cast(null as varchar) as trace_id,
        cast(null as varchar) as span_id,
        b.flow,
        cast(json_object('alert', b.alert, 'long_burn', round(b.long_burn, 2), 'short_burn', round(b.short_burn, 2))
            as json) as attributes
    from firing b
    join flows f on f.name = b.flow
),

occurrences as (
    select * from failed_spans
    union all by name
    select * from failed_events
    union all by name
    select * from dead_letters
    union all by name
    select * from sync_drift
    union all by name
    select * from state_drift
    union all by name
    select * from slo_burn
),

in_context as (
    select
        o.* exclude (requisition_id, priority, amount, flow),
        coalesce(o.requisition_id, p.requisition_id) as requisition_id,
        coalesce(o.priority, r.priority) as priority,
        coalesce(o.amount, r.amount, p.amount) as amount,
        coalesce(r.items, p.items) as items,
        coalesce(o.flow, fs.flow, fo.flow) as flow
    from occurrences o
    left join po_context p on p.po_number = o.po_number
    left join requisition_context r on r.requisition_id = coalesce(o.requisition_id, p.requisition_id)
    left join flow_of_stage fs on fs.stage = o.stage
    left join flow_of_object_type fo on fo.object_type = o.object_type
),

masked as (
    select
        o.*,
        cast(o.occurred_at as date) as day,
        case when o.source_system is not null or o.target_system is not null
            then coalesce(o.source_system, '?') || ' -> ' || coalesce(o.target_system, '?') end as interface,
        case when o.http_status_code between 100 and 599 then (o.http_status_code // 100) || 'xx' end as http_status_class,
        left(trim(regexp_replace(
            list_reduce(rules.masks, lambda text, mask: regexp_replace(text, mask.pattern, mask.replacement, 'g'), o.message),
            '\s+', ' ', 'g')), 300) as masked_message,
        array_to_string(list_distinct(regexp_extract_all(o.message, rules.keep_codes)), ',') as error_codes,
        rules.groups
    from in_context o, rules
),

with_dimensions as (
    select
        *,
        map(
            ['source', 'system', 'interface', 'target_system', 'flow', 'stage', 'error_type', 'error_codes', 'message',
             'endpoint', 'http_status_class', 'queue', 'facility_id', 'supplier_id', 'object_type', 'cause'],
            [source, system, interface, target_system, flow, stage, error_type, error_codes, masked_message,
             endpoint, http_status_class, queue, facility_id, supplier_id, object_type, cause]
        ) as dimensions
    from masked
),

grouped as (
    select
        o.* exclude (groups, dimensions),
        rule.name as grouping_rule,
        array_to_string(list_transform(rule.key, lambda k: k || '=' || coalesce(o.dimensions[k], '')), ' | ') as group_key
    from with_dimensions o, unnest(o.groups) as r(rule)
    where coalesce(list_bool_and(list_transform(map_keys(rule.when),
        lambda k: regexp_full_match(coalesce(o.dimensions[k], ''), rule.when[k]))), true)
    qualify row_number() over (partition by o.occurrence_id, o.source order by rule.position) = 1
)

select
    occurrence_id,
    source,
    occurred_at,
    day,
    system,
    interface,
    target_system,
    flow,
    stage,
    error_type,
    message,
    masked_message,
    error_codes,
    cause,
    endpoint,
    http_status_code,
    http_status_class,
    queue,
    facility_id,
    supplier_id,
    object_type,
    object_id,
    requisition_id,
    po_number,
    invoice_id,
    priority,
    amount,
    items,
    trace_id,
    span_id,
    attributes,
    grouping_rule,
    group_key,
    left(sha256(grouping_rule || chr(10) || group_key), 16) as fingerprint
from grouped
