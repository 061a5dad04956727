-- One row per invoice that failed three-way match (a `match`-stage event with outcome exception), with the
-- likely integration cause of its first failure when there is one (DOMAIN.md section 5, reference scenario):
-- the exception came from integration drift, not from the supplier, when at that moment
--   receipt_dead_lettered: a message of the invoice's receipt sat in a dead-letter queue (a span of a trace that
--     touched the receipt ran on a dead-letter queue before the exception);
--   asn_failed: the PO's advance ship notice (856) failed (an error span or a failed event at stage shipment);
--   receipt_sync_late: the receipt was in the warehouse system but not yet in the target of its receipt flow
--     (a flow of object_type receipt in metrics/defaults/flows.toml), i.e. receipt-sync drift;
--   stale_master_data: a price or quantity variance while a state drift (fct_state_drift, breaching its SLA) of an
--     item, contract or the supplier itself was open for the invoice's supplier;
-- checked in that order (the first that holds is the cause); else none (a supplier or process exception).
-- Every exception of the invoice is checked (a missing receipt fails again at every nightly re-run, and the
-- receipt may reach the warehouse system only after the first run); the earliest one with an integration
-- cause explains the invoice, else its first exception does.
-- invoice_id, exception_event_id, exception_at: the invoice and its first match exception.
-- exception_type: the reason the AP system gave for the explaining exception (attribute exception_reason,
--   reason or detail), else the event type.
-- exception_count: match exception events of the invoice (a missing receipt fails again at every re-run).
-- facility_id, supplier_id, po_number, receipt_id, amount, trace_id: of the explaining exception event.
-- day: UTC day of exception_at. stage: always match (for the page filters). cause: one of the causes above or none.
-- is_integration_cause: cause is not none. cause_at: when the explaining exception happened.
-- cause_detail: one line of evidence (flow, lag, queue, drift).
-- evidence_trace_id: a trace showing the cause (the dead-letter span's, the failed 856's, the receipt's), else NULL.
with

exceptions as (
    select
        invoice_id,
        event_id,
        occurred_at as exception_at,
        coalesce(attributes ->> 'exception_reason', attributes ->> 'reason', attributes ->> 'detail', event_type)
            as exception_type,
        facility_id,
        supplier_id,
        po_number,
        receipt_id,
        amount,
        trace_id
    from stg_transaction_events
    where stage = 'match' and outcome = 'exception' and invoice_id is not null
),

dead_letter_spans as (
    select trace_id, start_time, name
    from stg_spans
    where regexp_matches(lower(name), '(dlq|dead.?letter|parking.?lot)')
       or regexp_matches(lower(coalesce(attributes ->> 'messaging.destination.name', '')), '(dlq|dead.?letter|parking.?lot)')
),

dead_lettered_receipts as (
    select fct_trace_index.business_id as receipt_id, dead_letter_spans.start_time, dead_letter_spans.name,
        dead_letter_spans.trace_id
    from dead_letter_spans
    join fct_trace_index on fct_trace_index.trace_id = dead_letter_spans.trace_id
    where fct_trace_index.key_type = 'receipt_id'
),

failed_shipments as (
    select po_number, start_time as failed_at, trace_id from stg_spans
    where stage = 'shipment' and is_error and po_number is not null
    union all
    select po_number, occurred_at, trace_id from stg_transaction_events
    where stage = 'shipment' and is_failure and po_number is not null
),

receipt_syncs as (
    select * from fct_sync_drift where object_type = 'receipt'
),

master_drift as (
    select * from fct_state_drift where is_breach and object_type in ('item', 'contract', 'price', 'supplier')
),

evidence as (
    select
        e.*,
        (select arg_min(d.trace_id, d.start_time) from dead_lettered_receipts d
            where d.receipt_id = e.receipt_id and d.start_time <= e.exception_at) as dead_letter_trace_id,
        (select arg_min(d.name, d.start_time) from dead_lettered_receipts d
            where d.receipt_id = e.receipt_id and d.start_time <= e.exception_at) as dead_letter_span,
        (select arg_min(f.trace_id, f.failed_at) from failed_shipments f
            where f.po_number = e.po_number and f.failed_at <= e.exception_at) as failed_asn_trace_id,
        (select count(*) from failed_shipments f
            where f.po_number = e.po_number and f.failed_at <= e.exception_at) as failed_asns,
        (select arg_min(s.flow, s.source_at) from receipt_syncs s
            where s.object_key = e.receipt_id and s.source_at <= e.exception_at
              and (s.target_at is null or s.target_at > e.exception_at)) as late_receipt_flow,
        (select arg_min(s.trace_id, s.source_at) from receipt_syncs s
            where s.object_key = e.receipt_id and s.source_at <= e.exception_at
              and (s.target_at is null or s.target_at > e.exception_at)) as late_receipt_trace_id,
        (select arg_min(s.lag_s, s.source_at) from receipt_syncs s
            where s.object_key = e.receipt_id and s.source_at <= e.exception_at
              and (s.target_at is null or s.target_at > e.exception_at)) as late_receipt_lag_s,
        (select arg_min(concat(m.flow, ' ', m.object_key, ': ', m.source_value, ' vs ', m.target_value), m.drift_start)
            from master_drift m
            where m.supplier_id = e.supplier_id and m.drift_start <= e.exception_at
              and coalesce(m.drift_end, 'infinity'::timestamptz) > e.exception_at) as open_master_drift
    from exceptions e
),

verdicts as (
    select
        *,
        case
            when dead_letter_trace_id is not null then 'receipt_dead_lettered'
            when failed_asns > 0 then 'asn_failed'
            when late_receipt_flow is not null then 'receipt_sync_late'
            when open_master_drift is not null and regexp_matches(lower(exception_type), 'price|quantity')
                then 'stale_master_data'
            else 'none'
        end as cause
    from evidence
),

explained as (
    select
        *,
        case cause
            when 'receipt_dead_lettered' then concat('receipt ', receipt_id, ' dead-lettered: ', dead_letter_span)
            when 'asn_failed' then concat(failed_asns, ' failed 856 for PO ', po_number)
            when 'receipt_sync_late' then concat('receipt ', receipt_id, ' not in target of ', late_receipt_flow,
                ' at match time', case when late_receipt_lag_s is not null
                    then concat(' (arrived ', round(late_receipt_lag_s / 3600, 1), ' h after posting)')
                    else ' (never arrived)' end)
            when 'stale_master_data' then concat('open drift ', open_master_drift)
        end as cause_detail,
        case cause
            when 'receipt_dead_lettered' then dead_letter_trace_id
            when 'asn_failed' then failed_asn_trace_id
            when 'receipt_sync_late' then late_receipt_trace_id
        end as evidence_trace_id,
        -- the first exception with an integration cause explains the invoice; else its first exception
        row_number() over (partition by invoice_id order by cause = 'none', exception_at, event_id) as pick
    from verdicts
),

per_invoice as (
    select
        invoice_id,
        min(exception_at) as first_exception_at,
        arg_min(event_id, exception_at) as first_event_id,
        count(*) as exception_count
    from verdicts
    group by invoice_id
)

select
    explained.invoice_id,
    per_invoice.first_event_id as exception_event_id,
    per_invoice.first_exception_at as exception_at,
    cast(per_invoice.first_exception_at as date) as day,
    'match' as stage,
    explained.exception_type,
    per_invoice.exception_count,
    explained.facility_id,
    explained.supplier_id,
    explained.po_number,
    explained.receipt_id,
    explained.amount,
    explained.trace_id,
    explained.cause,
    explained.cause <> 'none' as is_integration_cause,
    explained.exception_at as cause_at,
    explained.cause_detail,
    explained.evidence_trace_id
from explained
join per_invoice using (invoice_id)
where explained.pick = 1
order by exception_at, invoice_id
