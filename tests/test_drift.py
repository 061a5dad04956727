"""Sync drift models (int_flow_sync, fct_sync_drift, fct_unsynced_objects, fct_state_drift,
fct_match_exception_causes) and metrics.drift on a small hand-made health system, values worked out by hand."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest

from metrics import drift
from metrics.filters import Filters
from r2p import schema
from r2p.warehouse import Warehouse
from samples import loaded_warehouse

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
M = dt.timedelta(minutes=1)
H = dt.timedelta(hours=1)


def event(event_id: str, system: str, event_type: str, object_type: str, object_id: str, at: dt.datetime,
          recorded: dt.datetime | None = None, *, outcome: str = "succeeded", stage: str | None = None,
          attributes: dict | None = None, **fields) -> schema.TransactionEvent:
    return schema.TransactionEvent(
        event_id=event_id, system=system, occurred_at=at, recorded_at=recorded or at, object_type=object_type,
        object_id=object_id, event_type=event_type, stage=stage, outcome=outcome,
        attributes=json.dumps(attributes or {}), **fields,
    )


def receipt_posted(receipt: str, at: dt.datetime, system: str = "wms-north", line: int = 1) -> schema.TransactionEvent:
    facility = "NORTH-GENERAL" if system == "wms-north" else "SOUTH-COMMUNITY"
    return event(f"{receipt}-posted-{line}", system, "RECEIPT_POSTED", "receipt", receipt, at, stage="receipt",
                 facility_id=facility, supplier_id="S07", receipt_id=receipt, po_line=line, amount=Decimal("100"))


def receipt_synced(receipt: str, recorded: dt.datetime) -> schema.TransactionEvent:
    return event(f"{receipt}-synced", "erp", "RECEIPT_SYNCED", "receipt", receipt, recorded - 2 * M, recorded,
                 stage="receipt", receipt_id=receipt)


def supplier_status(system: str, status: str, at: dt.datetime) -> schema.TransactionEvent:
    column = "STATUS" if system == "erp" else "state"
    return event(f"{system}-S11-{status}", system, "SUPPLIER_STATUS_CHANGED", "supplier", "S11", at,
                 supplier_id="S11", attributes={column: status.upper() if system == "erp" else status})


def match_exception(invoice: str, at: dt.datetime, reason: str, *, receipt: str | None = None,
                    po: str | None = None, supplier: str = "S07", n: int = 1) -> schema.TransactionEvent:
    return event(f"{invoice}-exc-{n}", "ap", "MATCH_EXCEPTION", "invoice", invoice, at, stage="match",
                 outcome="exception", invoice_id=invoice, receipt_id=receipt, po_number=po, supplier_id=supplier,
                 facility_id="NORTH-GENERAL", amount=Decimal("500"), attributes={"exception_reason": reason})


def drift_records() -> dict[str, list[schema.Record]]:
    """The hand-made system of these tests (also landed by the page tests)."""
    events = [
        # receipt-sync (SLA 15 min): GR-1 in 5 min; GR-2 (two lines) 2 h late; GR-3 never; GR-4 at a facility whose
        # warehouse clock runs 3 min fast (ERP records it 3 min "before" it was posted: within the tolerance).
        receipt_posted("GR-1", T0), receipt_synced("GR-1", T0 + 5 * M),
        receipt_posted("GR-2", T0), receipt_posted("GR-2", T0, line=2), receipt_synced("GR-2", T0 + 2 * H),
        receipt_posted("GR-3", T0 + H),
        receipt_posted("GR-4", T0 + 30 * M, system="wms-south"), receipt_synced("GR-4", T0 + 27 * M),
        # supplier-master: S11 active in both; blocked in ERP at T0+1h, in procurement only at T0+5h (the data's end).
        supplier_status("erp", "active", T0), supplier_status("procurement", "active", T0 + 20 * dt.timedelta(seconds=1)),
        supplier_status("erp", "blocked", T0 + H), supplier_status("procurement", "blocked", T0 + 5 * H),
        # Match exceptions and their causes.
        match_exception("INV-2", T0 + H, "missing_receipt", receipt="GR-2"),  # GR-2 still on its way: sync late
        match_exception("INV-2", T0 + 3 * H, "missing_receipt", receipt="GR-2", n=2),  # second run, same invoice
        match_exception("INV-1", T0 + H, "price_variance", receipt="GR-1"),  # GR-1 synced long before: none
        match_exception("INV-5", T0 + 2 * H, "missing_receipt", receipt="GR-5"),  # GR-5 dead-lettered
        match_exception("INV-6", T0 + H, "quantity_variance", po="PO-6"),  # its 856 failed
        match_exception("INV-7", T0 + 2 * H, "price_variance", supplier="S11"),  # S11's status drift is open
        event("asn-6", "supplier-network", "ASN_RECEIVED", "asn", "ASN-6", T0, stage="shipment", outcome="failed",
              po_number="PO-6"),
    ]
    dead_letter = schema.Span(
        trace_id=f"{0xD1:032x}", span_id=f"{1:016x}", name="process erp.integration.dlq", kind="consumer",
        start_time=T0 + 30 * M, end_time=T0 + 31 * M, duration_ms=60_000.0, status_code="unset",
        service_name="erp-integration", receipt_id="GR-5", attributes="{}", resource_attributes="{}",
    )
    # The north receipts queue drains from 10 to 4 messages in the last hour; the shared ERP dead-letter queue fills.
    snapshots = [
        schema.BacklogSnapshot(observed_at=T0 + hours * H, broker="rabbitmq", vhost="/", queue=queue, depth=depth,
                               is_dead_letter=queue.endswith(".dlq"), facility_id=facility, attributes="{}")
        for hours, queue, depth, facility in [
            (4, "wms.north.receipts", 10, "NORTH-GENERAL"), (5, "wms.north.receipts", 4, "NORTH-GENERAL"),
            (4, "erp.integration.dlq", 0, None), (5, "erp.integration.dlq", 3, None),
        ]
    ]
    return {"transaction_events": events, "spans": [dead_letter], "backlog_snapshots": snapshots}


@pytest.fixture
def warehouse(data_dir: Path) -> Warehouse:
    with loaded_warehouse(data_dir, drift_records()) as warehouse:
        yield warehouse


def test_each_source_occurrence_pairs_with_its_arrival(warehouse: Warehouse) -> None:
    rows = warehouse.reader().execute(
        "SELECT flow, object_key, lag_s, is_late, is_missing FROM fct_sync_drift ORDER BY flow, source_at, object_key"
    ).fetchall()
    assert rows == [
        ("receipt-sync", "GR-1", 300.0, False, False),
        ("receipt-sync", "GR-2", 7200.0, True, False),
        ("receipt-sync", "GR-4", -180.0, False, False),
        ("receipt-sync", "GR-3", None, False, True),
        ("supplier-master", "S11", 20.0, False, False),
        ("supplier-master", "S11", 4 * 3600.0, True, False),
    ]


def test_flow_summary_lag_distribution_and_missing(warehouse: Warehouse) -> None:
    summary = drift.flow_summary(warehouse.reader(), Filters()).set_index("flow")
    receipts = summary.loc["receipt-sync"]
    assert receipts[["objects", "synced", "late", "missing"]].tolist() == [4, 3, 1, 1]
    # lags -180, 300, 7200: median 300; p95 at position 1.9 = 300 + 0.9 * 6900 = 6510
    assert [receipts.lag_p50_s, receipts.lag_p95_s, receipts.lag_max_s, receipts.sla_s] == pytest.approx([300, 6510, 7200, 900])
    north = drift.drift_by(warehouse.reader(), Filters(), "facility_id", flow="receipt-sync")
    assert north[["facility_id", "objects", "late", "missing"]].values.tolist() == [
        ["NORTH-GENERAL", 3, 1, 1], ["SOUTH-COMMUNITY", 1, 0, 0]]


def test_missing_as_of_any_moment_and_over_time(warehouse: Warehouse) -> None:
    con = warehouse.reader()
    at = drift.missing_at(con, T0 + 90 * M)
    # GR-2 (due 08:15, arrived 10:00) and GR-3 (due 09:15); S11 blocked (due 09:15, arrived 13:00)
    assert at[["flow", "missing"]].values.tolist() == [["receipt-sync", 2], ["supplier-master", 1]]
    assert drift.missing_at(con, T0 + 10 * M)["missing"].tolist() == []
    timeline = drift.missing_over_time(con, Filters(), flow="receipt-sync")
    # end of 08:xx: GR-2; end of 09:xx: GR-2 and GR-3; end of 10:xx: GR-3 (GR-2 arrived at 10:00)
    assert timeline[["hour_end", "missing"]].values.tolist() == [[T0 + H, 1], [T0 + 2 * H, 2], [T0 + 3 * H, 1]]


def test_oldest_unsynced_objects(warehouse: Warehouse) -> None:
    waiting = drift.oldest_unsynced(warehouse.reader(), Filters())
    assert waiting[["flow", "object_key", "age_s", "is_past_sla", "facility_id"]].values.tolist() == [
        ["receipt-sync", "GR-3", 4 * 3600.0, True, "NORTH-GENERAL"]]


def test_state_drift_periods_and_breach(warehouse: Warehouse) -> None:
    con = warehouse.reader()
    periods = drift.state_drift(con, Filters(), breaches_only=False)
    assert periods[["flow", "object_key", "source_value", "target_value", "drift_start", "drift_end", "duration_s",
                    "is_open"]].values.tolist() == [
        ["supplier-master", "S11", "blocked", "active", T0 + H, T0 + 5 * H, 4 * 3600.0, False]]
    assert len(drift.state_drift(con, Filters(suppliers=("S07",)))) == 0


def test_match_exceptions_are_attributed_to_their_integration_cause(warehouse: Warehouse) -> None:
    con = warehouse.reader()
    exceptions = drift.match_exceptions(con, Filters()).set_index("invoice_id")
    assert exceptions.loc[["INV-1", "INV-2", "INV-5", "INV-6", "INV-7"], "cause"].tolist() == [
        "none", "receipt_sync_late", "receipt_dead_lettered", "asn_failed", "stale_master_data"]
    assert exceptions.loc["INV-2", "exception_count"] == 2
    assert exceptions.loc["INV-2", "cause_detail"] == "receipt GR-2 not in target of receipt-sync at match time (arrived 2.0 h after posting)"
    assert exceptions.loc["INV-5", "trace_id"] == f"{0xD1:032x}"
    attribution = drift.match_attribution(con, Filters())
    assert attribution[["cause", "invoices"]].values.tolist() == [
        ["asn_failed", 1], ["receipt_dead_lettered", 1], ["receipt_sync_late", 1], ["stale_master_data", 1], ["none", 1]]
    assert drift.integration_share(con, Filters()) == (4, 5)


def test_backlog_in_business_terms(warehouse: Warehouse) -> None:
    backlog = drift.backlog_business(warehouse.reader(), Filters())
    rows = backlog[["flow", "facility_id", "waiting_objects", "past_sla_objects", "waiting_amount", "arrivals_last_hour",
                    "business_drain_h", "queue_backlog", "queue_time_to_drain_s", "dead_letter_depth"]]
    assert rows.astype(object).where(rows.notna(), None).values.tolist() == [
        # GR-3 waits at north (100 of money); the queue drains 6 messages an hour: 4 left, 2400 s to drain.
        ["receipt-sync", "NORTH-GENERAL", 1, 1, 100.0, 0, None, 4, 2400.0, 0],
        # the shared dead-letter queue of the flow holds 3 messages
        ["receipt-sync", None, 0, 0, None, 0, None, None, None, 3],
        # S11's blocked status reached procurement in the last hour; nothing waits; no queue of it observed
        ["supplier-master", None, 0, 0, None, 1, 0.0, None, None, None],
    ]
    timeline = drift.backlog_over_time(warehouse.reader(), Filters(), "receipt-sync", bucket_minutes=60)
    assert timeline[["backlog", "dead_letter_depth", "dead_letter_growth"]].values.tolist() == [[10, 0, 0], [4, 3, 3]]
