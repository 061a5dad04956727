"""fct_trace_index / fct_trace_summary and metrics.traces: business id -> traces (spans, events, links) -> waterfall."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from metrics import traces
from r2p import schema
from r2p.warehouse import Warehouse
from samples import loaded_warehouse

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
WMS_TRACE, ERP_TRACE, AP_TRACE, OTHER_TRACE = (f"{n:032x}" for n in (0xA, 0xB, 0xC, 0xD))


def span(trace: str, span_id: int, name: str, service: str, start_ms: int, end_ms: int, *, parent: int | None = None,
         kind: str = "internal", error: bool = False, **business: str) -> schema.Span:
    return schema.Span(
        trace_id=trace, span_id=f"{span_id:016x}", parent_span_id=None if parent is None else f"{parent:016x}",
        name=name, kind=kind, start_time=T0 + dt.timedelta(milliseconds=start_ms),
        end_time=T0 + dt.timedelta(milliseconds=end_ms), duration_ms=float(end_ms - start_ms),
        status_code="error" if error else "unset", status_message="429 Too Many Requests" if error else None,
        service_name=service, error_type="429" if error else None, http_status_code=429 if error else None,
        attributes="{}", resource_attributes=json.dumps({"service.name": service}), **business,
    )


@pytest.fixture
def warehouse(data_dir: Path) -> Warehouse:
    receipt = {"receipt_id": "GR-1", "po_number": "PO-7", "facility_id": "NORTH-GENERAL", "stage": "receipt"}
    spans = [
        # The warehouse system posts receipt GR-1 and publishes it (trace A).
        span(WMS_TRACE, 1, "POST /receipts", "wms-north", 0, 400, kind="server", **receipt),
        span(WMS_TRACE, 2, "send wms.north.receipts", "wms-north", 450, 455, parent=1, kind="producer", **receipt),
        # The ERP integration consumes it in its own trace (B), linked to the producer; no business attribute
        # on the consumer: B is found through the link. Its ERP call is throttled.
        span(ERP_TRACE, 3, "process wms.north.receipts", "erp-integration", 20_000, 21_000, kind="consumer"),
        span(ERP_TRACE, 5, "POST /api/v1/goods-receipts", "erp-api", 20_060, 20_300, parent=4, kind="server"),
        span(ERP_TRACE, 4, "POST /api/v1/goods-receipts", "erp-integration", 20_050, 20_400, parent=3, kind="client",
             error=True),
        # An unrelated trace with another PO.
        span(OTHER_TRACE, 6, "POST /po", "erp-api", 0, 10, po_number="PO-8"),
    ]
    links = [schema.SpanLink(trace_id=ERP_TRACE, span_id=f"{3:016x}", link_index=0, linked_trace_id=WMS_TRACE,
                             linked_span_id=f"{2:016x}", attributes="{}")]
    exception = schema.SpanEvent(
        trace_id=ERP_TRACE, span_id=f"{4:016x}", event_index=0, time=T0 + dt.timedelta(milliseconds=20_400),
        name="exception", attributes=json.dumps({"exception.type": "HttpClientErrorException",
                                                 "exception.message": "429 Too Many Requests"}),
    )
    # The AP platform's invoice event names its own trace C (whose spans were never collected).
    invoice = schema.TransactionEvent(
        event_id="ap-1", system="ap", occurred_at=T0 + dt.timedelta(days=2), object_type="invoice", object_id="INV-9",
        event_type="INVOICE_RECEIVED", stage="invoice", outcome="succeeded", po_number="PO-7", receipt_id="GR-1",
        invoice_id="INV-9", trace_id=AP_TRACE, attributes="{}",
    )
    with loaded_warehouse(data_dir, {"spans": spans, "span_links": links, "span_events": [exception],
                            "transaction_events": [invoice]}) as warehouse:
        yield warehouse


def test_receipt_id_finds_its_span_trace_the_linked_consumer_and_the_event_trace(warehouse: Warehouse) -> None:
    found = traces.lookup(warehouse.reader(), "GR-1")
    assert found[["trace_id", "key_type", "via"]].values.tolist() == [
        [WMS_TRACE, "receipt_id", "span"],
        [ERP_TRACE, "receipt_id", "link"],
        [AP_TRACE, "receipt_id", "event"],
    ]
    # The event's trace has no loaded span: no extent, no counts.
    assert found[["span_count", "error_count"]].fillna(-1).values.tolist() == [[2, 0], [3, 1], [-1, -1]]
    assert found["root_name"].tolist()[:2] == ["POST /receipts", "process wms.north.receipts"]


def test_po_number_and_unknown_ids(warehouse: Warehouse) -> None:
    con = warehouse.reader()
    assert traces.lookup(con, "PO-7")["trace_id"].tolist() == [WMS_TRACE, ERP_TRACE, AP_TRACE]
    assert traces.lookup(con, " PO-8 ")["trace_id"].tolist() == [OTHER_TRACE]
    assert traces.lookup(con, "PO-404").empty


def test_waterfall_orders_the_tree_and_marks_the_failing_span_with_its_exception(warehouse: Warehouse) -> None:
    con = warehouse.reader()
    waterfall = traces.spans(con, ERP_TRACE)
    assert waterfall[["span_id", "depth", "offset_ms", "duration_ms", "is_error"]].values.tolist() == [
        [f"{3:016x}", 0, 0.0, 1000.0, False],
        [f"{4:016x}", 1, 50.0, 350.0, True],
        [f"{5:016x}", 2, 60.0, 240.0, False],
    ]
    failing = waterfall.iloc[1]
    assert [(e["type"], e["message"]) for e in failing.exceptions] == [("HttpClientErrorException", "429 Too Many Requests")]
    assert list(waterfall.iloc[0]["links"]) == [WMS_TRACE]
    assert traces.linked_from(con, WMS_TRACE) == [ERP_TRACE]
    assert traces.summary(con, ERP_TRACE)["root_name"] == "process wms.north.receipts"
    assert traces.spans(con, AP_TRACE).empty
