-- One row per business id and trace that touched it: the index behind "from a requisition, PO, receipt or
-- invoice id to every trace" (sorted by business_id, so a lookup is a probe, not a scan).
-- A trace touches an id when one of its spans carries it (procurement.* attributes), when a business event
-- carrying the id names the trace (transaction_events.trace_id), or when it is one broker hop away: a span
-- of it links to, or is linked from, a span of a trace that carries the id (span_links: producer and
-- consumer traces of one message).
-- business_id: the id as written (requisition id, PO number, receipt id, invoice id or object id).
-- key_type: the column that held it: requisition_id, po_number, receipt_id, invoice_id or object_id.
-- trace_id: the trace. via: how the trace was found: span, event or link (the most direct when several).
-- trace_start, trace_end, span_count, error_count, root_service, root_name: fct_trace_summary's, NULL when the
--   trace's spans were not loaded (an event naming a trace the collector never saw).
with

span_keys as (
    select distinct key_type, business_id, trace_id
    from (
        select 'requisition_id' as key_type, requisition_id as business_id, trace_id from stg_spans
        union all select 'po_number', po_number, trace_id from stg_spans
        union all select 'receipt_id', receipt_id, trace_id from stg_spans
        union all select 'invoice_id', invoice_id, trace_id from stg_spans
        union all select 'object_id', object_id, trace_id from stg_spans
    )
    where business_id is not null
),

event_keys as (
    select distinct key_type, business_id, trace_id
    from (
        select 'requisition_id' as key_type, requisition_id as business_id, trace_id from stg_transaction_events
        union all select 'po_number', po_number, trace_id from stg_transaction_events
        union all select 'receipt_id', receipt_id, trace_id from stg_transaction_events
        union all select 'invoice_id', invoice_id, trace_id from stg_transaction_events
        union all select 'object_id', object_id, trace_id from stg_transaction_events
    )
    where business_id is not null and trace_id is not null
),

trace_hops as (
    select distinct trace_id, linked_trace_id as other_trace_id from span_links where linked_trace_id <> trace_id
    union
    select distinct linked_trace_id, trace_id from span_links where linked_trace_id <> trace_id
),

link_keys as (
    select distinct span_keys.key_type, span_keys.business_id, trace_hops.other_trace_id as trace_id
    from span_keys
    join trace_hops on trace_hops.trace_id = span_keys.trace_id
),

found as (
    select key_type, business_id, trace_id, 1 as directness, 'span' as via from span_keys
    union all
    select key_type, business_id, trace_id, 2, 'event' from event_keys
    union all
    select key_type, business_id, trace_id, 3, 'link' from link_keys
),

most_direct as (
    select key_type, business_id, trace_id, arg_min(via, directness) as via
    from found
    group by all
)

select
    most_direct.business_id,
    most_direct.key_type,
    most_direct.trace_id,
    most_direct.via,
    fct_trace_summary.trace_start,
    fct_trace_summary.trace_end,
    fct_trace_summary.span_count,
    fct_trace_summary.error_count,
    fct_trace_summary.root_service,
    fct_trace_summary.root_name
from most_direct
left join fct_trace_summary using (trace_id)
order by most_direct.business_id, fct_trace_summary.trace_start, most_direct.trace_id
