-- One row per exception occurrence: int_exception_occurrences kept as a table, so the triage
-- queue, a group's timeline and the what-changed comparison read masked, fingerprinted rows.
-- occurrence_id, source (span, transaction, match, edi_rejection, dead_letter, sync_drift, state_drift,
-- slo_burn), occurred_at, day, system, interface, target_system, flow, stage, error_type, message (raw),
-- masked_message, error_codes, cause, endpoint, http_status_code, http_status_class, queue, facility_id,
-- supplier_id, object_type, object_id, requisition_id, po_number, invoice_id, priority, amount, items,
-- trace_id, span_id, attributes, grouping_rule, group_key, fingerprint: as documented in
-- int_exception_occurrences.
select * from int_exception_occurrences
