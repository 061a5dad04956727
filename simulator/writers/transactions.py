"""Transaction exports: one CSV per source system, each with its own columns and timestamp format.

``simulator/EXPORTS.md`` documents every file; ``COLUMNS`` below is the single definition of the
columns (the tests check the document against it).
"""

from __future__ import annotations

import csv
from pathlib import Path

from simulator.model import from_us, local
from simulator.spool import Txn

COLUMNS: dict[str, tuple[str, ...]] = {
    "procurement": ("event_id", "event_name", "entity_type", "entity_id", "state", "event_timestamp",
                    "logged_timestamp", "facility_code", "department", "priority", "supplier_number", "total_amount",
                    "currency", "requisition_number", "po_number", "trace_id", "user", "note"),
    "erp": ("EVENT_UUID", "EVENT_CODE", "OBJECT_CATEGORY", "OBJECT_KEY", "STATUS", "POSTING_TIME", "ENTRY_TIME",
            "PLANT", "VENDOR", "NET_VALUE", "CURRENCY", "QUANTITY", "REQUISITION", "PURCHASE_ORDER", "GOODS_RECEIPT",
            "INVOICE_REF", "TRACE_ID", "USER_NAME", "MESSAGE"),
    "legacy-erp": ("TXNID", "TXNTYPE", "DOCTYPE", "DOCNO", "DOCSTAT", "TXNTIME_MS", "POSTTIME_MS", "SITE", "VENDNO",
                   "AMT", "CURR", "QTY", "REQNO", "PONO", "RCPTNO", "INVNO", "USR", "MSG"),
    "wms": ("txn_id", "txn_type", "doc_type", "doc_no", "txn_status", "event_time_utc", "posted_time_utc", "site",
            "vendor_id", "po_no", "po_line", "item_no", "qty", "receipt_no", "trace_id", "operator"),
    "ap": ("invoice_event_id", "event", "document_type", "document_id", "match_status", "event_time",
           "received_time", "entity", "supplier_id", "invoice_number", "po_number", "receipt_number",
           "invoice_amount", "currency", "invoice_qty", "exception_reason", "trace_id", "processed_by"),
}
"""Columns per export kind; every ``wms-<facility>.csv`` shares the ``wms`` layout."""


def kind_of(system: str) -> str:
    return "wms" if system.startswith("wms-") else system


def procurement_time(us: int) -> str:
    """ISO 8601 with the local offset, milliseconds: 2025-01-06T09:15:02.123-06:00."""
    return local(us).isoformat(timespec="milliseconds")


def erp_time(us: int) -> str:
    """Local wall-clock time (America/Chicago) without a zone: 2025-01-06 09:15:02."""
    return local(us).strftime("%Y-%m-%d %H:%M:%S")


def epoch_ms(us: int) -> str:
    return str(us // 1000)


def wms_time(us: int) -> str:
    """ISO 8601 UTC with Z, seconds: 2025-01-06T15:15:02Z."""
    return from_us(us).strftime("%Y-%m-%dT%H:%M:%SZ")


def ap_time(us: int) -> str:
    """ISO 8601 UTC with +00:00 and microseconds."""
    return from_us(us).isoformat(timespec="microseconds")


def money(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def number(value) -> str:
    return "" if value is None else (str(int(value)) if float(value).is_integer() else str(value))


def text(value) -> str:
    return "" if value is None else str(value)


def row(t: Txn) -> list[str]:
    """One event in its system's own columns and formats."""
    kind = kind_of(t.system)
    if kind == "procurement":
        return [t.event_id, t.event_type, t.object_type, t.object_id, t.status, procurement_time(t.occurred),
                procurement_time(t.recorded), text(t.facility), text(t.department), text(t.priority),
                text(t.supplier), money(t.amount), "USD" if t.amount is not None else "", text(t.requisition_id),
                text(t.po_number), text(t.trace_id), text(t.actor), text(t.detail)]
    if kind == "erp":
        return [t.event_id, t.event_type, t.object_type.upper(), t.object_id, t.status.upper(), erp_time(t.occurred),
                erp_time(t.recorded), text(t.facility), text(t.supplier), money(t.amount),
                "USD" if t.amount is not None else "", number(t.quantity), text(t.requisition_id), text(t.po_number),
                text(t.receipt_id), text(t.invoice_id), text(t.trace_id), text(t.actor), text(t.detail)]
    if kind == "legacy-erp":
        return [t.event_id, t.event_type, t.object_type[:4].upper(), t.object_id, t.status[:4].upper(),
                epoch_ms(t.occurred), epoch_ms(t.recorded), text(t.facility), text(t.supplier), money(t.amount),
                "USD" if t.amount is not None else "", number(t.quantity), text(t.requisition_id), text(t.po_number),
                text(t.receipt_id), text(t.invoice_id), text(t.actor), text(t.detail)]
    if kind == "wms":
        item = t.detail if t.event_type == "RECEIPT_POSTED" else ""
        return [t.event_id, t.event_type, t.object_type, t.object_id, t.status, wms_time(t.occurred),
                wms_time(t.recorded), text(t.facility), text(t.supplier), text(t.po_number), text(t.po_line), item,
                number(t.quantity), text(t.receipt_id), text(t.trace_id), text(t.actor)]
    return [t.event_id, t.event_type, t.object_type, t.object_id, t.status, ap_time(t.occurred), ap_time(t.recorded),
            text(t.facility), text(t.supplier), text(t.invoice_id), text(t.po_number), text(t.receipt_id),
            money(t.amount), "USD" if t.amount is not None else "", number(t.quantity),
            text(t.detail) if t.event_type == "MATCH_EXCEPTION" else "", text(t.trace_id), text(t.actor)]


class TransactionWriter:
    """Appends each day's events to ``transactions/<system>.csv`` in the order each system recorded them."""

    def __init__(self, out_dir: Path, systems: list[str]):
        self.directory = out_dir / "transactions"
        self.directory.mkdir(parents=True, exist_ok=True)
        self.handles = {}
        self.writers = {}
        self.rows: dict[str, int] = {}
        for system in systems:
            handle = open(self.directory / f"{system}.csv", "w", encoding="utf-8", newline="")
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(COLUMNS[kind_of(system)])
            self.handles[system], self.writers[system], self.rows[system] = handle, writer, 0

    def write_day(self, events: list[Txn], broken_timestamp: bool) -> dict | None:
        """Write a day's events; with ``broken_timestamp``, one extra procurement row whose time cannot parse."""
        events.sort(key=lambda t: t.recorded)
        broken = None
        for event in events:
            self.writers[event.system].writerow(row(event))
            self.rows[event.system] += 1
            if broken_timestamp and broken is None and event.system == "procurement":
                bad = row(event._replace(event_id=event.event_id + "-R"))
                bad[5] = bad[5][:11] + "25:61:00" + bad[5][23:]
                self.writers["procurement"].writerow(bad)
                self.rows["procurement"] += 1
                broken = {"file": "transactions/procurement.csv", "line": self.rows["procurement"] + 1,
                          "locator": f"event_id {bad[0]}", "why": f"unparseable event_timestamp {bad[5]!r}"}
        return broken

    def close(self) -> dict[str, int]:
        for handle in self.handles.values():
            handle.close()
        return dict(self.rows)
