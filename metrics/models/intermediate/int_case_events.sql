-- One row per business event that belongs to a case, with the case it belongs to.
-- A case is a requisition where the events carry one; otherwise a PO line (or a PO, for header
-- events), as in BPI Challenge 2019 where the case is the purchase-order item.
-- Columns of stg_transaction_events keep their meaning (docs/schema.md); added here:
-- case_id: requisition_id; else the requisition any other event of the same PO names; else
--   `po_number/po_line`, or `po_number` for events without a line. Events with none of these
--   (supplier master data, say) or without a stage belong to no case and are left out here.
-- stage_order: position of the stage in the flow of DOMAIN.md section 1 (1 = requisition, 11 = payment).
-- is_manual: the source flagged the event as a manual step (attribute `manual` = true).
-- approval_level: the approval level the event names: attribute `approval_level`, else `level N` in its attributes.
with po_requisitions as (
    -- The requisition of each PO, from the events that carry both ids (one requisition per PO); only for the POs
    -- of events without a requisition id, the only ones that look it up (none where every event names one).
    select po_number, min(requisition_id) as po_requisition_id
    from stg_transaction_events
    where stage is not null and po_number is not null and requisition_id is not null
        and po_number in (select po_number from stg_transaction_events where stage is not null and requisition_id is null)
    group by po_number
),

cased as (
    -- Events naming a requisition are its case outright; only the others look up their PO (the events
    -- are scanned twice rather than held in a CTE, and the lookup runs only where needed).
    select requisition_id as case_id, *
    from stg_transaction_events
    where stage is not null and requisition_id is not null
    union all
    select
        coalesce(po_requisitions.po_requisition_id, staged.po_number || coalesce('/' || staged.po_line, '')),
        staged.*
    from stg_transaction_events as staged
    left join po_requisitions using (po_number)
    where staged.stage is not null and staged.requisition_id is null and staged.po_number is not null
)

select
    *,
    list_position(
        ['requisition', 'approval', 'budget_check', 'po_creation', 'po_transmission', 'supplier_ack',
         'shipment', 'receipt', 'invoice', 'match', 'payment'],
        stage
    ) as stage_order,
    coalesce(lower(attributes ->> 'manual') in ('true', '1', 'yes'), false) as is_manual,
    coalesce(
        try_cast(attributes ->> 'approval_level' as integer),
        -- the regular expression only where it can match: a substring test is several times cheaper
        case when contains(cast(attributes as varchar), 'level ')
            then try_cast(regexp_extract(cast(attributes as varchar), 'level (\d+)', 1) as integer) end
    ) as approval_level
from cased
