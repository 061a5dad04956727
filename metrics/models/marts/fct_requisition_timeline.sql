-- One row per case (a requisition; a PO line where the source has no requisition, as in BPI Challenge 2019):
-- its whole timeline, its stage entries and cycle times, and the flags the executive KPIs count.
-- Built from transaction events and, where a stage has no event, from spans with the same correlation
-- ids (fct_case_stage_visits). Rework and rejected cases are kept. Times are occurred_at (never
-- recorded_at), so out-of-order delivery changes nothing; clock skew shows as measured.
-- case_id: requisition id, else `po_number/po_line` (int_case_events). requisition_id: the case's requisition, if any.
-- po_numbers: the POs of the case, sorted.
-- facility_id, supplier_id, department, priority: the first non-NULL value among the case's events (spans where
--   no event has one). priority defaults to nothing: a case without one is treated as routine by the SLA.
-- category: the first non-NULL `category` attribute of its events (the mapping decides: spend area, item category).
-- value, currency: the latest amount up to PO creation (the requisition's value), else the latest amount at all.
-- first_event_at, last_event_at: the case's first and last point (event, or span-only stage entry).
-- end_to_end_s: last_event_at - first_event_at in seconds (throughput time; for a paid case, created to paid).
-- day, week: UTC day and ISO week (Monday) of first_event_at: the filters' date and the case's cohort.
-- events: business events. systems: the systems that recorded them, sorted.
-- status: rejected (any rejected outcome), cancelled, paid (a succeeded payment event), else open.
-- current_stage, last_outcome: stage of the last visit; outcome of the last event by occurred_at.
-- <stage>_at: first entry into each stage of DOMAIN.md section 1 (NULL: never entered).
-- <stage>_s: the stage's cycle time in seconds: from its entry to the first visit to any later stage that
--   starts at or after it (NULL while there is none); a later stage entered earlier, as an invoice that
--   arrives before its late receipt, does not end it, so it is never negative.
-- matched_at: first match event with outcome succeeded. paid_at: first payment event with outcome succeeded.
-- due_at: the earliest `due_date` attribute of its invoice or payment events, else invoice entry + 30 days (net 30).
-- req_to_po_s, po_to_receipt_s, receipt_to_match_s, invoice_to_payment_s: the headline sub-cycles of
--   DOMAIN.md section 3: requisition entry to PO creation entry, PO creation to receipt entry, receipt entry
--   to matched_at, invoice entry to paid_at (NULL until both ends exist).
-- approval_entries: times the case entered approval (more than 1: re-approval after a return or rework).
-- returned: events with outcome returned. manual_steps: events flagged manual.
-- exceptions: failed or exception events plus error spans of the case (DOMAIN.md section 3, exception).
-- is_paid: status paid. paid_on_time: paid_at <= due_at (NULL when not paid).
-- is_touchless: paid with no exception, no return, no rejection and no manual step. Re-entering approval
--   is not counted: systems confirm approval after the budget check (an echo, not rework); rework is a return.
-- first_pass_match: the case's first match event succeeded (NULL when it has no match event).
-- touched_by_exception: exceptions > 0.
-- variant: the sequence of stage visits, `requisition > approval > ...` (repeats show rework).
-- stages_from_spans: stages whose entry comes from spans because no event of that stage arrived.
with visits as (
    -- one pass over the case's visits: its span, path and first entry into each stage
    select
        case_id,
        min(entered_at) as first_event_at,
        max(last_point_at) as last_event_at,
        count(*) filter (where stage = 'approval') as approval_entries,
        string_agg(stage, ' > ' order by visit_index) as variant,
        arg_max(stage, visit_index) as current_stage,
        min(entered_at) filter (where stage = 'requisition') as requisition_at,
        min(entered_at) filter (where stage = 'approval') as approval_at,
        min(entered_at) filter (where stage = 'budget_check') as budget_check_at,
        min(entered_at) filter (where stage = 'po_creation') as po_creation_at,
        min(entered_at) filter (where stage = 'po_transmission') as po_transmission_at,
        min(entered_at) filter (where stage = 'supplier_ack') as supplier_ack_at,
        min(entered_at) filter (where stage = 'shipment') as shipment_at,
        min(entered_at) filter (where stage = 'receipt') as receipt_at,
        min(entered_at) filter (where stage = 'invoice') as invoice_at,
        min(entered_at) filter (where stage = 'match') as match_at,
        min(entered_at) filter (where stage = 'payment') as payment_at,
        -- a span-only stage has one visit, from spans
        list(stage order by stage_order) filter (where from_spans) as stages_from_spans
    from fct_case_stage_visits
    group by case_id
),

stage_exits as (
    -- a stage is left at the first visit to a later stage that starts at or after its own entry: a later
    -- stage entered before it (an invoice before its late receipt) does not end it, a re-entry after it does
    select
        visits.case_id,
        min(later.entered_at) filter (where later.stage_order > 1 and later.entered_at >= visits.requisition_at) as requisition_left_at,
        min(later.entered_at) filter (where later.stage_order > 2 and later.entered_at >= visits.approval_at) as approval_left_at,
        min(later.entered_at) filter (where later.stage_order > 3 and later.entered_at >= visits.budget_check_at) as budget_check_left_at,
        min(later.entered_at) filter (where later.stage_order > 4 and later.entered_at >= visits.po_creation_at) as po_creation_left_at,
        min(later.entered_at) filter (where later.stage_order > 5 and later.entered_at >= visits.po_transmission_at) as po_transmission_left_at,
        min(later.entered_at) filter (where later.stage_order > 6 and later.entered_at >= visits.supplier_ack_at) as supplier_ack_left_at,
        min(later.entered_at) filter (where later.stage_order > 7 and later.entered_at >= visits.shipment_at) as shipment_left_at,
        min(later.entered_at) filter (where later.stage_order > 8 and later.entered_at >= visits.receipt_at) as receipt_left_at,
        min(later.entered_at) filter (where later.stage_order > 9 and later.entered_at >= visits.invoice_at) as invoice_left_at,
        min(later.entered_at) filter (where later.stage_order > 10 and later.entered_at >= visits.match_at) as match_left_at
    from visits
    join fct_case_stage_visits as later using (case_id)
    group by visits.case_id
),

entries as (
    -- seconds from the epoch_us difference: subtracting TIMESTAMPTZ values goes through ICU's calendar, ~20x slower
    select
        visits.*,
        (epoch_us(stage_exits.requisition_left_at) - epoch_us(visits.requisition_at)) / 1e6 as requisition_s,
        (epoch_us(stage_exits.approval_left_at) - epoch_us(visits.approval_at)) / 1e6 as approval_s,
        (epoch_us(stage_exits.budget_check_left_at) - epoch_us(visits.budget_check_at)) / 1e6 as budget_check_s,
        (epoch_us(stage_exits.po_creation_left_at) - epoch_us(visits.po_creation_at)) / 1e6 as po_creation_s,
        (epoch_us(stage_exits.po_transmission_left_at) - epoch_us(visits.po_transmission_at)) / 1e6 as po_transmission_s,
        (epoch_us(stage_exits.supplier_ack_left_at) - epoch_us(visits.supplier_ack_at)) / 1e6 as supplier_ack_s,
        (epoch_us(stage_exits.shipment_left_at) - epoch_us(visits.shipment_at)) / 1e6 as shipment_s,
        (epoch_us(stage_exits.receipt_left_at) - epoch_us(visits.receipt_at)) / 1e6 as receipt_s,
        (epoch_us(stage_exits.invoice_left_at) - epoch_us(visits.invoice_at)) / 1e6 as invoice_s,
        (epoch_us(stage_exits.match_left_at) - epoch_us(visits.match_at)) / 1e6 as match_s,
        null::double as payment_s
    from visits
    join stage_exits using (case_id)
),

events as (
    select
        case_id,
        min(requisition_id) as requisition_id,
        -- DISTINCT aggregates: cheaper and smaller than listing every event's value and deduplicating after
        list_sort(list(distinct po_number) filter (where po_number is not null)) as po_numbers,
        -- arg_min and arg_max skip rows whose value is NULL: the first non-NULL value by time
        arg_min(facility_id, occurred_at) as facility_id,
        arg_min(supplier_id, occurred_at) as supplier_id,
        arg_min(department, occurred_at) as department,
        arg_min(priority, occurred_at) as priority,
        arg_min(attributes ->> 'category', occurred_at) as category,
        coalesce(
            arg_max(amount, occurred_at) filter (where amount is not null and stage_order <= 4),
            arg_max(amount, occurred_at) filter (where amount is not null)
        ) as value,
        coalesce(
            arg_max(currency, occurred_at) filter (where amount is not null and stage_order <= 4),
            arg_max(currency, occurred_at) filter (where amount is not null)
        ) as currency,
        count(*) as events,
        list_sort(list(distinct system) filter (where system is not null)) as systems,
        arg_max(outcome, occurred_at) as last_outcome,
        bool_or(outcome = 'rejected') as has_rejection,
        bool_or(outcome = 'cancelled') as has_cancellation,
        min(occurred_at) filter (where stage = 'match' and outcome = 'succeeded') as matched_at,
        min(occurred_at) filter (where stage = 'payment' and outcome = 'succeeded') as paid_at,
        min(try_cast(attributes ->> 'due_date' as timestamptz)) filter (where stage in ('invoice', 'payment')) as stated_due_at,
        arg_min(outcome, occurred_at) filter (where stage = 'match') as first_match_outcome,
        count(*) filter (where outcome = 'returned') as returned,
        count(*) filter (where is_manual) as manual_steps,
        count(*) filter (where is_failure) as failed_events
    from int_case_events
    group by case_id
),

spans as (
    select
        case_id,
        arg_min(facility_id, start_time) as facility_id,
        arg_min(supplier_id, start_time) as supplier_id,
        arg_min(priority, start_time) as priority,
        count(*) filter (where is_error) as error_spans
    from int_case_spans
    group by case_id
)

select
    entries.case_id,
    events.requisition_id,
    coalesce(events.po_numbers, []) as po_numbers,
    coalesce(events.facility_id, spans.facility_id) as facility_id,
    coalesce(events.supplier_id, spans.supplier_id) as supplier_id,
    events.department,
    coalesce(events.priority, spans.priority) as priority,
    events.category,
    events.value,
    events.currency,
    entries.first_event_at,
    entries.last_event_at,
    (epoch_us(entries.last_event_at) - epoch_us(entries.first_event_at)) / 1e6 as end_to_end_s,
    cast(entries.first_event_at as date) as day,
    cast(date_trunc('week', entries.first_event_at) as date) as week,
    coalesce(events.events, 0) as events,
    coalesce(events.systems, []) as systems,
    case
        when events.has_rejection then 'rejected'
        when events.has_cancellation then 'cancelled'
        when events.paid_at is not null then 'paid'
        else 'open'
    end as status,
    entries.current_stage,
    events.last_outcome,
    entries.requisition_at,
    entries.approval_at,
    entries.budget_check_at,
    entries.po_creation_at,
    entries.po_transmission_at,
    entries.supplier_ack_at,
    entries.shipment_at,
    entries.receipt_at,
    entries.invoice_at,
    entries.match_at,
    entries.payment_at,
    entries.requisition_s,
    entries.approval_s,
    entries.budget_check_s,
    entries.po_creation_s,
    entries.po_transmission_s,
    entries.supplier_ack_s,
    entries.shipment_s,
    entries.receipt_s,
    entries.invoice_s,
    entries.match_s,
    entries.payment_s,
    events.matched_at,
    events.paid_at,
    coalesce(events.stated_due_at, entries.invoice_at + interval 30 days) as due_at,
    (epoch_us(entries.po_creation_at) - epoch_us(entries.requisition_at)) / 1e6 as req_to_po_s,
    (epoch_us(entries.receipt_at) - epoch_us(entries.po_creation_at)) / 1e6 as po_to_receipt_s,
    (epoch_us(events.matched_at) - epoch_us(entries.receipt_at)) / 1e6 as receipt_to_match_s,
    (epoch_us(events.paid_at) - epoch_us(entries.invoice_at)) / 1e6 as invoice_to_payment_s,
    entries.approval_entries,
    coalesce(events.returned, 0) as returned,
    coalesce(events.manual_steps, 0) as manual_steps,
    coalesce(events.failed_events, 0) + coalesce(spans.error_spans, 0) as exceptions,
    events.paid_at is not null and not coalesce(events.has_rejection or events.has_cancellation, false) as is_paid,
    case when is_paid then events.paid_at <= coalesce(events.stated_due_at, entries.invoice_at + interval 30 days) end as paid_on_time,
    is_paid and exceptions = 0 and returned = 0 and manual_steps = 0 as is_touchless,
    events.first_match_outcome = 'succeeded' as first_pass_match,
    exceptions > 0 as touched_by_exception,
    entries.variant,
    coalesce(entries.stages_from_spans, []) as stages_from_spans
from entries
left join events using (case_id)
left join spans using (case_id)
-- stored in case order: a page looking up one case reads one row group (zone maps), not the whole table
order by case_id
