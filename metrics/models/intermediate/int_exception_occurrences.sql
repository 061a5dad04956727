-- One row per exception occurrence (DOMAIN.md section 3), with its fingerprint: the failure
-- occurrences of every input in one shape, so each lands in exactly one exception group.
-- Sources: failed spans (status error); failed or exception business events, three-way match
-- exceptions (stage match, outcome exception) and supplier rejections of POs (outcome rejected at
-- po_transmission or supplier_ack); dead-lettered messages (the growth of a dead-letter queue
-- between two backlog observations, one row per message).
-- occurrence_id: trace_id:span_id, the event_id, or queue_key@observed_at#n for a dead letter.
-- source: span, transaction, match, edi_rejection or dead_letter.
-- occurred_at, day: when it happened (span start, event time, backlog observation) and its UTC day.
-- system: the system that failed or reported it (span service.name, event system, DLQ target system).
-- interface: `source_system -> target_system` of the flow, where known.
-- error_type: span error.type, else exception.type, else `HTTP <code>`; for an event its
--   error_type / detail / reason attribute, else its event type; `dead-lettered` for a dead letter.
-- message: the raw message (exception.message, else the status message; for an event its message,
--   detail or reason attribute). masked_message: message through stg_fingerprint_rules' masks.
-- error_codes: the codes of keep_codes found in the raw message, comma-separated.
-- endpoint: span name, event type or queue. http_status_code and http_status_class (e.g. 5xx).
-- queue: broker queue or topic involved. facility_id, supplier_id, stage, object_type, object_id,
--   requisition_id, po_number, invoice_id, trace_id, span_id: the affected business context.
-- priority: the occurrence's priority, else its requisition's (stat, urgent, routine).
-- amount: money at stake: the event's amount, else its requisition's (or PO's) largest amount.
-- items: item numbers and descriptions known for its requisition or PO (for critical-item ranking).
-- attributes: the source's remaining attributes (JSON), for the what-changed comparison.
-- grouping_rule: the fingerprint rule that matched; group_key: `dimension=value | ...` it keyed on;
-- fingerprint: first 16 hex digits of SHA-256 of grouping_rule and group_key (stable across rebuilds).
with

rules as (
    select * from stg_fingerprint_rules
),

events as (
    select * from stg_transaction_events
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

failed_events as (
    select
        event_id as occurrence_id,
        case
            when stage = 'match' and outcome = 'exception' then 'match'
            when outcome = 'rejected' then 'edi_rejection'
            else 'transaction'
        end as source,
        occurred_at,
        system,
        cast(null as varchar) as source_system,
        cast(null as varchar) as target_system,
        coalesce(attributes ->> 'error_type', attributes ->> 'detail', attributes ->> 'reason', event_type) as error_type,
        coalesce(attributes ->> 'message', attributes ->> 'error_message', attributes ->> 'detail',
            attributes ->> 'reason', event_type || ' ' || outcome) as message,
        event_type as endpoint,
        cast(null as bigint) as http_status_code,
        cast(null as varchar) as queue,
        facility_id,
        supplier_id,
        stage,
        object_type,
        object_id,
        requisition_id,
        po_number,
        invoice_id,
        priority,
        amount,
        trace_id,
        cast(null as varchar) as span_id,
        attributes
    from events
    where is_failure or (outcome = 'rejected' and stage in ('po_transmission', 'supplier_ack'))
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
        cast(json_object('flow', flow, 'broker', broker, 'vhost', vhost) as json) as attributes
    from dead_letter_growth, range(dead_letter_growth) as messages(n)
),

occurrences as (
    select * from failed_spans
    union all by name
    select * from failed_events
    union all by name
    select * from dead_letters
),

in_context as (
    select
        o.* exclude (requisition_id, priority, amount),
        coalesce(o.requisition_id, p.requisition_id) as requisition_id,
        coalesce(o.priority, r.priority) as priority,
        coalesce(o.amount, r.amount, p.amount) as amount,
        coalesce(r.items, p.items) as items
    from occurrences o
    left join po_context p on p.po_number = o.po_number
    left join requisition_context r on r.requisition_id = coalesce(o.requisition_id, p.requisition_id)
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
            ['source', 'system', 'interface', 'stage', 'error_type', 'error_codes', 'message', 'endpoint',
             'http_status_class', 'queue', 'facility_id', 'supplier_id', 'object_type'],
            [source, system, interface, stage, error_type, error_codes, masked_message, endpoint,
             http_status_class, queue, facility_id, supplier_id, object_type]
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
    stage,
    error_type,
    message,
    masked_message,
    error_codes,
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
