"""Stage visits when many events of one stage happen at the same moment (EDI batches: one 856 per carton, all
stamped with the same second): those events are one visit, whatever order the sorts put them in, and the visit
before them ends at its own last event."""

from __future__ import annotations

import datetime as dt

import pytest

from r2p import schema
from r2p.warehouse import Warehouse
from samples import loaded_warehouse

UTC = dt.timezone.utc
SUBMITTED = dt.datetime(2025, 3, 3, 8, 0, tzinfo=UTC)
ACKNOWLEDGED = dt.datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
SHIPPED = dt.datetime(2025, 3, 4, 9, 0, tzinfo=UTC)
CASES = [f"REQ-T{n:02d}" for n in range(20)]
CARTONS = 30


def event(case: str, n: int, when: dt.datetime, stage: str, event_type: str) -> schema.TransactionEvent:
    return schema.TransactionEvent(
        event_id=f"{case}-{n:02d}", system="supplier-network", occurred_at=when, object_type="purchase_order",
        object_id=case, event_type=event_type, stage=stage, outcome="succeeded", requisition_id=case, attributes="{}",
    )


def log() -> dict[str, list[schema.Record]]:
    events = []
    for case in CASES:
        events.append(event(case, 0, SUBMITTED, "requisition", "REQUISITION_SUBMITTED"))
        events += [event(case, n, ACKNOWLEDGED, "supplier_ack", "855") for n in (1, 2)]
        events += [event(case, 3 + carton, SHIPPED, "shipment", "856") for carton in range(CARTONS)]
    return {"transaction_events": events}


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory):
    data_dir = tmp_path_factory.mktemp("ties") / "data"
    with loaded_warehouse(data_dir, log(), name="stage-visit-ties") as warehouse:
        yield warehouse


def test_events_of_one_stage_at_one_moment_are_one_visit(warehouse: Warehouse) -> None:
    rows = warehouse.reader().execute(
        "SELECT case_id, visit_index, stage, entered_at, last_point_at, events, next_stage, next_entered_at "
        "FROM fct_case_stage_visits ORDER BY case_id, visit_index").fetchall()
    expected = []
    for case in CASES:
        expected += [
            (case, 1, "requisition", SUBMITTED, SUBMITTED, 1, "supplier_ack", ACKNOWLEDGED),
            (case, 2, "supplier_ack", ACKNOWLEDGED, ACKNOWLEDGED, 2, "shipment", SHIPPED),
            (case, 3, "shipment", SHIPPED, SHIPPED, CARTONS, None, None),
        ]
    assert rows == expected


def test_the_timeline_and_durations_see_the_same_visits(warehouse: Warehouse) -> None:
    con = warehouse.reader()
    timelines = con.execute("SELECT DISTINCT variant, events, supplier_ack_s FROM fct_requisition_timeline").fetchall()
    assert timelines == [("requisition > supplier_ack > shipment", 1 + 2 + CARTONS, 86400.0)]
    transitions = con.execute(
        "SELECT DISTINCT transition_index, from_stage, to_stage, duration_s FROM fct_stage_durations ORDER BY 1").fetchall()
    assert transitions == [(1, "requisition", "supplier_ack", 3600.0), (2, "supplier_ack", "shipment", 86400.0)]
