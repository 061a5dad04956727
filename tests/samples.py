"""A small exact sample of canonical records, and landing it as one batch, for storage and page tests."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import duckdb

from r2p import schema
from r2p.landing import LandingZone, content_hash
from r2p.warehouse import Warehouse, refresh_now

UTC = dt.timezone.utc
FACILITIES = ("NORTH-GENERAL", "SOUTH-COMMUNITY", "EAST-LEGACY")


def sample_records() -> dict[str, list[schema.Record]]:
    """A small exact sample: 3 facilities x 4 stages of events (one failed each), spans with one error."""
    events, spans = [], []
    start = dt.datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    for f, facility in enumerate(FACILITIES):
        for s, stage in enumerate(("requisition", "approval", "po_creation", "receipt")):
            occurred = start + dt.timedelta(days=f, hours=s)
            events.append(
                schema.TransactionEvent(
                    event_id=f"ev-{facility}-{stage}",
                    system="erp",
                    occurred_at=occurred,
                    recorded_at=occurred + dt.timedelta(minutes=3),
                    object_type="requisition",
                    object_id=f"REQ-{f}",
                    event_type=f"{stage} done",
                    stage=stage,
                    outcome="failed" if stage == "receipt" else "succeeded",
                    amount=Decimal("1250.50"),
                    currency="USD",
                    facility_id=facility,
                    supplier_id="S07",
                    requisition_id=f"REQ-{f}",
                    attributes=json.dumps({"source_row": s}),
                )
            )
            spans.append(
                schema.Span(
                    trace_id=f"{f:032x}",
                    span_id=f"{s + 1:016x}",
                    parent_span_id=None if s == 0 else f"{1:016x}",
                    trace_state=None,
                    flags=1,
                    name=f"POST /{stage}",
                    kind="server",
                    start_time=occurred,
                    end_time=occurred + dt.timedelta(milliseconds=250),
                    duration_ms=250.0,
                    status_code="error" if (f, stage) == (1, "receipt") else "ok",
                    status_message=None,
                    service_name="erp-adapter",
                    scope_name="r2p.tests",
                    scope_version="1",
                    facility_id=facility,
                    supplier_id="S07",
                    stage=stage,
                    requisition_id=f"REQ-{f}",
                    po_number=None,
                    receipt_id=None,
                    invoice_id=None,
                    object_type="requisition",
                    object_id=f"REQ-{f}",
                    source_system="procurement",
                    target_system="erp",
                    priority="routine",
                    error_type=None,
                    http_status_code=200,
                    attributes=json.dumps({"http.request.method": "POST"}),
                    resource_attributes=json.dumps({"service.name": "erp-adapter"}),
                    scope_attributes=None,
                )
            )
    return {"transaction_events": events, "spans": spans}


def land_records(data_dir: Path, records: dict[str, list[schema.Record]], name: str = "sample") -> str:
    """Land records as one batch named by their content; returns the batch id."""
    payload = json.dumps({t: [r.model_dump(mode="json") for r in rs] for t, rs in records.items()}, sort_keys=True)
    batch_id = content_hash("tests", [payload.encode()])
    with LandingZone(data_dir).batch("tests", name, batch_id) as writer:
        if writer is not None:
            for table, rows in records.items():
                writer.add(table, rows)
    return batch_id


@contextmanager
def loaded_warehouse(data_dir: Path, records: dict[str, list[schema.Record]], name: str = "sample") -> Iterator[Warehouse]:
    """The records landed as one batch and loaded into the warehouse of ``data_dir``, closed on exit."""
    land_records(data_dir, records, name=name)
    warehouse = Warehouse(data_dir)
    try:
        warehouse.refresh()
        yield warehouse
    finally:
        warehouse.close()


def warehouse_rows(data_dir: Path, sql: str) -> list[tuple]:
    """Load what ``data_dir`` has landed into its warehouse, then the rows of ``sql`` there."""
    refresh_now(data_dir)
    con = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
    try:
        return con.sql(sql).fetchall()
    finally:
        con.close()
