-- One row per span that belongs to a case (same case rule as int_case_events), with its stage order.
-- Columns of stg_spans keep their meaning; added: case_id, stage_order (NULL when the span names no stage).
-- A span belongs to the case of its requisition_id; else to the requisition the events of its PO name;
-- else to its PO (`po_number`). Spans carry no PO line, so a PO-line case (BPIC 2019) gets no spans.
with po_requisitions as (
    -- as in int_case_events (events with a stage), read straight from staging so no case join runs twice; only
    -- for the POs of spans without a requisition id
    select po_number, min(requisition_id) as po_requisition_id
    from stg_transaction_events
    where stage is not null and po_number is not null and requisition_id is not null
        and po_number in (select po_number from stg_spans where requisition_id is null)
    group by po_number
)

select
    coalesce(stg_spans.requisition_id, po_requisitions.po_requisition_id, stg_spans.po_number) as case_id,
    stg_spans.*,
    list_position(
        ['requisition', 'approval', 'budget_check', 'po_creation', 'po_transmission', 'supplier_ack',
         'shipment', 'receipt', 'invoice', 'match', 'payment'],
        stg_spans.stage
    ) as stage_order
from stg_spans
left join po_requisitions on stg_spans.requisition_id is null and po_requisitions.po_number = stg_spans.po_number
where coalesce(stg_spans.requisition_id, stg_spans.po_number) is not null
