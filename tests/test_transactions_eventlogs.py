"""OCEL 2.0 (JSON, XML, SQLite) and XES event logs through the mapping engine.

The pm4py examples are GPL and the OCEL 2.0 P2P log's licence is unverified, so they are not in
the repository: these tests read them from ../shared/data/external/p2p_eventlogs when it exists.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from pathlib import Path

import pytest

from collectors import ocel
from test_transactions import MAPPINGS, ingest, landed

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "external" / "p2p_eventlogs"
pytestmark = pytest.mark.skipif(not SHARED.exists(), reason="GPL / unlicensed event logs live in ../shared only")
UTC = dt.timezone.utc


@pytest.mark.parametrize("encoding", ["jsonocel", "xmlocel", "sqlite"])
def test_pm4py_ocel_example_encodings_give_identical_events(encoding: str, data_dir: Path, tmp_path: Path) -> None:
    reference_dir = tmp_path / "reference"
    ingest(reference_dir, MAPPINGS / "pm4py_ocel20_example.toml", SHARED / "pm4py_ocel20_example.jsonocel")
    summary = ingest(data_dir, MAPPINGS / "pm4py_ocel20_example.toml", SHARED / f"pm4py_ocel20_example.{encoding}")
    assert (summary.accepted["transaction_events"], summary.rejected) == (13, 0)
    events = landed(data_dir, order="event_id")
    assert events == landed(reference_dir, order="event_id")
    by_id = {e["event_id"]: e for e in events}
    created = by_id["ocel-example:e1"]
    assert (created["event_type"], created["stage"], created["object_type"], created["object_id"]) == (
        "Create Purchase Requisition",
        "requisition",
        "requisition",
        "PR1",
    )
    assert (created["actor"], created["occurred_at"]) == ("Mike", dt.datetime(2022, 1, 9, 14, 0, tzinfo=UTC))
    maverick = by_id["ocel-example:e10"]  # a PO created after its invoice: the event's object is the PO
    assert (maverick["object_type"], maverick["object_id"], maverick["po_number"], maverick["invoice_id"]) == (
        "purchase_order",
        "PO2",
        "PO2",
        "R3",
    )
    assert Counter(e["stage"] for e in events) == {
        "requisition": 1, "approval": 1, "po_creation": 3, "invoice": 3, "match": 2, "payment": 3,
    }


def test_ocel2_p2p_log_object_links_become_correlation_ids(data_dir: Path) -> None:
    summary = ingest(data_dir, MAPPINGS / "ocel2_p2p.toml", SHARED / "ocel2_p2p.sqlite")
    assert (summary.accepted["transaction_events"], summary.rejected) == (14671, 0)
    events = landed(data_dir, order="event_id")
    assert Counter(e["event_type"] for e in events) == {
        "Create Purchase Requisition": 729,
        "Approve Purchase Requisition": 607,
        "Delegate Purchase Requisition Approval": 122,
        "Create Request for Quotation": 927,
        "Create Purchase Order": 1598,
        "Approve Purchase Order": 1598,
        "Create Goods Receipt": 4042,
        "Create Invoice Receipt": 1941,
        "Perform Two-Way Match": 1941,
        "Execute Payment": 1166,
    }
    payments = [e for e in events if e["event_type"] == "Execute Payment"]
    assert all(e["requisition_id"] and e["po_number"] and e["receipt_id"] and e["invoice_id"] for e in payments)
    payment = next(e for e in events if e["event_id"] == "sap-p2p:event:1002")
    assert (payment["object_type"], payment["object_id"], payment["stage"]) == ("payment", "payment:24", "payment")
    assert (payment["requisition_id"], payment["po_number"], payment["receipt_id"], payment["invoice_id"]) == (
        "purchase_requisition:14:pr_trigger_14",
        "purchase_order:34",
        "goods receipt:48",
        "invoice receipt:49",
    )
    assert payment["occurred_at"] == dt.datetime(2022, 5, 15, 8, 37, tzinfo=UTC)
    # correlation only looks upstream: a PO creation knows its requisition, not its later receipts
    created = [e for e in events if e["event_type"] == "Create Purchase Order"]
    assert all(e["requisition_id"] and e["receipt_id"] is None and e["invoice_id"] is None for e in created)
    log = ocel.read(SHARED / "ocel2_p2p.sqlite")
    for event in events:  # every correlation id is a related object or reached by object-to-object links
        reachable = set(log.event_objects[event["event_id"].removeprefix("sap-p2p:")])
        for _ in range(5):  # requisition <- quotation <- PO <- receipt <- invoice <- payment
            reachable |= {n for o in reachable for n in log.links[o] if log.object_types.get(n) != "material"}
        ids = [event[c] for c in ("requisition_id", "po_number", "receipt_id", "invoice_id") if event[c]]
        assert set(ids) <= reachable
    assert json.loads(payment["attributes"])["ocel:objects"]


def test_xes_running_example(data_dir: Path) -> None:
    summary = ingest(data_dir, MAPPINGS / "running_example_xes.toml", SHARED / "pm4py_running-example.xes")
    assert (summary.accepted["transaction_events"], summary.rejected) == (42, 0)
    events = landed(data_dir)
    assert len({e["object_id"] for e in events}) == 6
    first = events[0]
    assert (first["object_id"], first["event_type"], first["actor"], first["amount"]) == ("1", "register request", "Pete", 50)
    assert first["occurred_at"] == dt.datetime(2010, 12, 30, 10, 2, tzinfo=UTC)  # 11:02+01:00
    assert json.loads(first["attributes"]) == {"case:creator": "Fluxicon Nitro"}
    assert Counter(e["outcome"] for e in events) == {"succeeded": 27, "pending": 9, "returned": 3, "rejected": 3}
