-- One row per case and measured duration: the non-NULL duration columns of fct_requisition_timeline (each
-- stage's cycle time <stage>_s, end_to_end_s and the four headline sub-cycles) with the case's filter columns,
-- stored sorted by measure and seconds. The durations are defined in fct_requisition_timeline only; this
-- copy exists for speed: an exact quantile of one measure reads one sorted run of values, about three
-- times faster than over the timeline's case order (metrics/cycle_times.py: summary, stage_breakdown).
-- measure: the timeline column (approval_s, req_to_po_s, end_to_end_s ...). seconds: its value for the case.
-- day, facility_id, supplier_id, department, priority, category, status: the case's (fct_requisition_timeline).
select measure, seconds, day, facility_id, supplier_id, department, priority, category, status
from fct_requisition_timeline
unpivot (seconds for measure in (
    requisition_s, approval_s, budget_check_s, po_creation_s, po_transmission_s, supplier_ack_s, shipment_s,
    receipt_s, invoice_s, match_s, payment_s,
    end_to_end_s, req_to_po_s, po_to_receipt_s, receipt_to_match_s, invoice_to_payment_s
))
order by measure, seconds
