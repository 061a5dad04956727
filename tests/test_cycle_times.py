"""Requisition timeline, stage durations and cycle times on a small event log with hand-computed answers.

The log (``procurement_log``) holds: a happy path through every stage (REQ-A); a requisition returned
by its approver, re-approved, its receipt known only from a span and its first match an exception
(REQ-B); a rejected one (REQ-C); one stalled at its second approval level with a failed and retried
callback (REQ-D, its first event delivered out of order); one whose budget check comes from a clock
3 minutes slow (REQ-E); one stalled on a failed budget check (REQ-H); and a PO with two lines and no
requisition, as in BPI Challenge 2019 (P-F/1, P-F/2). Times are minutes from Monday 2025-03-03 08:00 UTC.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pandas as pd
import pytest

from metrics import cycle_times, executive, requisition
from metrics.filters import Filters
from r2p import schema
from r2p.warehouse import Warehouse
from samples import loaded_warehouse

UTC = dt.timezone.utc
T0 = dt.datetime(2025, 3, 3, 8, 0, tzinfo=UTC)


def at(day: int, clock: str) -> dt.datetime:
    """Day ``day`` after T0's date at ``HH:MM`` or ``HH:MM:SS`` UTC."""
    parts = [int(part) for part in clock.split(":")] + [0]
    return T0.replace(hour=parts[0], minute=parts[1], second=parts[2]) + dt.timedelta(days=day)


def event(case: str, n: int, when: dt.datetime, stage: str, event_type: str, outcome: str = "succeeded", *,
          system: str = "procurement", recorded: dt.datetime | None = None, **fields) -> schema.TransactionEvent:
    attributes = fields.pop("attributes", {})
    return schema.TransactionEvent(
        event_id=f"{case}-{n:02d}", system=system, occurred_at=when, recorded_at=recorded or when + dt.timedelta(seconds=5),
        object_type=fields.pop("object_type", "requisition"), object_id=fields.pop("object_id", case),
        event_type=event_type, stage=stage, outcome=outcome, attributes=json.dumps(attributes), **fields,
    )


def span(trace: int, n: int, start: dt.datetime, seconds: float, name: str, stage: str, *, error: bool = False,
         kind: str = "client", **fields) -> schema.Span:
    return schema.Span(
        trace_id=f"{trace:032x}", span_id=f"{n:016x}", name=name, kind=kind, start_time=start,
        end_time=start + dt.timedelta(seconds=seconds), duration_ms=seconds * 1000, status_code="error" if error else "ok",
        service_name="procurement-suite", stage=stage, attributes="{}", resource_attributes="{}", **fields,
    )


def procurement_log() -> dict[str, list[schema.Record]]:
    north = dict(facility_id="NORTH-GENERAL", supplier_id="S01", department="SURGERY", currency="USD")
    south = dict(facility_id="SOUTH-COMMUNITY", supplier_id="S02", department="ICU", currency="USD")
    a = dict(requisition_id="REQ-A", priority="routine", amount=Decimal("1000"), attributes={"category": "MEDSURG"}, **north)
    a_po = dict(po_number="P-A", object_type="purchase_order", object_id="P-A", facility_id="NORTH-GENERAL")
    b = dict(requisition_id="REQ-B", priority="urgent", amount=Decimal("400"), **north)
    c = dict(requisition_id="REQ-C", priority="stat", amount=Decimal("90"), **south)
    d = dict(requisition_id="REQ-D", priority="routine", amount=Decimal("25000"), **south)
    e = dict(requisition_id="REQ-E", priority="routine", amount=Decimal("700"), **north)
    h = dict(requisition_id="REQ-H", priority="stat", amount=Decimal("3000"), **north)
    f = dict(po_number="P-F", object_type="purchase_order", object_id="P-F", facility_id="EAST-CHILDRENS",
             supplier_id="S09", amount=Decimal("50"))
    events = [
        event("REQ-A", 1, at(0, "08:00"), "requisition", "REQUISITION_SUBMITTED", **a),
        event("REQ-A", 2, at(0, "08:10"), "approval", "APPROVAL_REQUESTED", "pending", actor="NORTH-GENERAL/APPROVER-L1", **a),
        event("REQ-A", 3, at(0, "09:10"), "approval", "LEVEL_APPROVED", actor="NORTH-GENERAL/APPROVER-L1", **a),
        event("REQ-A", 4, at(0, "09:11"), "budget_check", "BUDGET_CHECK_PASSED", system="erp", **a),
        event("REQ-A", 5, at(0, "09:20"), "po_creation", "PO_CREATED", system="erp", **{**a, **a_po}),
        event("REQ-A", 6, at(0, "09:30"), "po_transmission", "PO_TRANSMITTED", system="erp", **a_po),
        event("REQ-A", 7, at(0, "11:30"), "supplier_ack", "855", system="supplier-network", **a_po),
        event("REQ-A", 8, at(1, "08:00"), "shipment", "856", system="supplier-network", **a_po),
        event("REQ-A", 9, at(2, "10:00"), "receipt", "RECEIPT_POSTED", system="wms-north", po_line=1, **a_po),
        event("REQ-A", 10, at(2, "12:00"), "invoice", "INVOICE_RECEIVED", system="ap", invoice_id="INV-A", **a_po),
        event("REQ-A", 11, at(2, "12:05"), "match", "MATCHED", system="ap", invoice_id="INV-A", **a_po),
        event("REQ-A", 12, at(10, "09:00"), "payment", "PAID", system="erp", invoice_id="INV-A", **a_po),

        event("REQ-B", 1, at(0, "08:00"), "requisition", "REQUISITION_SUBMITTED", **b),
        event("REQ-B", 2, at(0, "08:05"), "approval", "APPROVAL_REQUESTED", "pending", actor="NORTH-GENERAL/APPROVER-L1", **b),
        event("REQ-B", 3, at(0, "10:05"), "approval", "RETURNED", "returned", actor="NORTH-GENERAL/APPROVER-L1", **b),
        event("REQ-B", 4, at(0, "11:00"), "requisition", "REQUISITION_RESUBMITTED", **b),
        event("REQ-B", 5, at(0, "11:05"), "approval", "APPROVAL_REQUESTED", "pending", actor="NORTH-GENERAL/APPROVER-L1", **b),
        event("REQ-B", 6, at(0, "12:05"), "approval", "LEVEL_APPROVED", actor="NORTH-GENERAL/APPROVER-L1", **b),
        event("REQ-B", 7, at(0, "12:06"), "budget_check", "BUDGET_CHECK_PASSED", system="erp", **b),
        event("REQ-B", 8, at(0, "12:30"), "po_creation", "PO_CREATED", system="erp", po_number="P-B", **b),
        event("REQ-B", 9, at(3, "09:00"), "invoice", "INVOICE_RECEIVED", system="ap", po_number="P-B", invoice_id="INV-B"),
        event("REQ-B", 10, at(3, "09:05"), "match", "PRICE_VARIANCE", "exception", system="ap", po_number="P-B", invoice_id="INV-B"),
        event("REQ-B", 11, at(4, "09:00"), "match", "MATCHED", system="ap", po_number="P-B", invoice_id="INV-B"),
        event("REQ-B", 12, at(5, "09:00"), "payment", "PAID", system="erp", po_number="P-B", invoice_id="INV-B"),

        event("REQ-C", 1, at(0, "08:00"), "requisition", "REQUISITION_SUBMITTED", **c),
        event("REQ-C", 2, at(0, "08:01"), "approval", "APPROVAL_REQUESTED", "pending", actor="SOUTH-COMMUNITY/APPROVER-L1", **c),
        event("REQ-C", 3, at(0, "08:30"), "approval", "REJECTED", "rejected", actor="SOUTH-COMMUNITY/APPROVER-L1", **c),

        event("REQ-D", 1, at(0, "08:00"), "requisition", "REQUISITION_SUBMITTED", **d),
        # Recorded hours after the events that follow it: ordering goes by occurred_at.
        event("REQ-D", 2, at(0, "08:10"), "approval", "APPROVAL_REQUESTED", "pending", recorded=at(0, "12:00"),
              actor="SOUTH-COMMUNITY/APPROVER-L1", attributes={"detail": "level 1"}, **d),
        event("REQ-D", 3, at(0, "09:00"), "approval", "LEVEL_APPROVED", actor="SOUTH-COMMUNITY/APPROVER-L1",
              attributes={"detail": "level 1"}, **d),
        event("REQ-D", 4, at(0, "09:00:05"), "approval", "APPROVAL_REQUESTED", "pending",
              actor="SOUTH-COMMUNITY/APPROVER-L2", attributes={"detail": "level 2"}, **d),

        event("REQ-E", 1, at(0, "08:00"), "requisition", "REQUISITION_SUBMITTED", **e),
        event("REQ-E", 2, at(0, "08:05"), "approval", "APPROVAL_REQUESTED", "pending", actor="NORTH-GENERAL/APPROVER-L1", **e),
        event("REQ-E", 3, at(0, "09:10"), "approval", "LEVEL_APPROVED", actor="NORTH-GENERAL/APPROVER-L1", **e),
        # legacy-erp's clock runs 3 minutes slow: the check really passed at 09:11.
        event("REQ-E", 4, at(0, "09:08"), "budget_check", "BUDGET_CHECK_PASSED", system="legacy-erp", **e),
        event("REQ-E", 5, at(0, "09:11:01"), "approval", "REQUISITION_APPROVED", **e),
        event("REQ-E", 6, at(0, "09:20"), "po_creation", "PO_CREATED", system="legacy-erp", po_number="P-E", **e),

        event("REQ-H", 1, at(0, "08:00"), "requisition", "REQUISITION_SUBMITTED", **h),
        event("REQ-H", 2, at(0, "08:02"), "approval", "APPROVAL_REQUESTED", "pending", actor="NORTH-GENERAL/APPROVER-L1", **h),
        event("REQ-H", 3, at(0, "08:30"), "approval", "LEVEL_APPROVED", actor="NORTH-GENERAL/APPROVER-L1", **h),
        event("REQ-H", 4, at(0, "08:31"), "budget_check", "BUDGET_CHECK_FAILED", "failed", system="erp", actor="BUDGET_ENGINE", **h),

        event("P-F", 1, at(0, "10:00"), "po_creation", "Create Purchase Order Item", system="sap", po_line=1, **f),
        event("P-F", 2, at(0, "10:00"), "po_creation", "Create Purchase Order Item", system="sap", po_line=2, **f),
        event("P-F", 3, at(1, "10:00"), "receipt", "Record Goods Receipt", system="sap", po_line=1, **f),
        event("P-F", 4, at(1, "12:00"), "invoice", "Record Invoice Receipt", system="sap", po_line=1, **f),
        event("P-F", 5, at(5, "10:00"), "payment", "Clear Invoice", system="sap", po_line=1, **f),
    ]
    spans = [
        # REQ-B's receipt event never arrived; the warehouse adapter's span carries its PO.
        span(0xB, 1, at(2, "15:00"), 0.4, "POST /receipts", "receipt", po_number="P-B", facility_id="NORTH-GENERAL"),
        # REQ-D's approval callback failed at day 1 10:00 and was retried at 12:00.
        span(0xD, 1, at(1, "10:00"), 60, "POST /api/approvals/callback", "approval", error=True, requisition_id="REQ-D"),
        span(0xD, 2, at(1, "12:00"), 1, "POST /api/approvals/callback", "approval", requisition_id="REQ-D"),
        # Its reminder sat an hour in a queue: published 13:00:01, consumed 14:00:01.
        span(0xD, 3, at(1, "13:00"), 1, "send approvals.reminders", "approval", kind="producer", requisition_id="REQ-D"),
        span(0xD0, 1, at(1, "14:00:01"), 1, "process approvals.reminders", "approval", kind="consumer",
             requisition_id="REQ-D"),
    ]
    links = [schema.SpanLink(trace_id=f"{0xD0:032x}", span_id=f"{1:016x}", link_index=0, linked_trace_id=f"{0xD:032x}",
                             linked_span_id=f"{3:016x}", attributes="{}")]
    return {"transaction_events": events, "spans": spans, "span_links": links}


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory):
    """The log landed and loaded once for the module (the tests only read)."""
    data_dir = tmp_path_factory.mktemp("procurement") / "data"
    with loaded_warehouse(data_dir, procurement_log(), name="procurement-log") as warehouse:
        yield warehouse


def timeline(warehouse: Warehouse) -> dict[str, dict]:
    frame = warehouse.reader().execute("SELECT * FROM fct_requisition_timeline").df()
    return {row["case_id"]: row for row in frame.to_dict("records")}


def test_cases_are_requisitions_else_po_lines(warehouse: Warehouse) -> None:
    assert sorted(timeline(warehouse)) == ["P-F/1", "P-F/2", "REQ-A", "REQ-B", "REQ-C", "REQ-D", "REQ-E", "REQ-H"]


def test_happy_path_enters_every_stage_and_measures_each(warehouse: Warehouse) -> None:
    a = timeline(warehouse)["REQ-A"]
    assert (a["first_event_at"], a["last_event_at"]) == (at(0, "08:00"), at(10, "09:00"))
    assert a["end_to_end_s"] == 10 * 86400 + 3600
    expected_entries = {
        "requisition": at(0, "08:00"), "approval": at(0, "08:10"), "budget_check": at(0, "09:11"),
        "po_creation": at(0, "09:20"), "po_transmission": at(0, "09:30"), "supplier_ack": at(0, "11:30"),
        "shipment": at(1, "08:00"), "receipt": at(2, "10:00"), "invoice": at(2, "12:00"), "match": at(2, "12:05"),
        "payment": at(10, "09:00"),
    }
    assert {stage: a[f"{stage}_at"] for stage in schema.STAGES} == expected_entries
    expected_seconds = {
        "requisition": 600, "approval": 3660, "budget_check": 540, "po_creation": 600, "po_transmission": 7200,
        "supplier_ack": 73800, "shipment": 93600, "receipt": 7200, "invoice": 300, "match": 680100,
    }
    assert {stage: a[f"{stage}_s"] for stage in expected_seconds} == expected_seconds
    assert pd.isna(a["payment_s"])  # no later stage
    assert (a["req_to_po_s"], a["po_to_receipt_s"], a["receipt_to_match_s"], a["invoice_to_payment_s"]) == (
        4800, 175200, 7500, 680400)
    assert (a["status"], a["is_paid"], a["paid_on_time"], a["is_touchless"], a["first_pass_match"]) == (
        "paid", True, True, True, True)
    assert a["po_numbers"].tolist() == ["P-A"] and a["category"] == "MEDSURG" and a["value"] == 1000
    assert a["variant"] == " > ".join(schema.STAGES)
    assert a["systems"].tolist() == ["ap", "erp", "procurement", "supplier-network", "wms-north"]


def test_rework_is_kept_and_a_missing_receipt_comes_from_its_span(warehouse: Warehouse) -> None:
    b = timeline(warehouse)["REQ-B"]
    assert (b["approval_entries"], b["returned"]) == (2, 1)
    assert b["variant"] == ("requisition > approval > requisition > approval > budget_check > po_creation > receipt"
                            " > invoice > match > payment")
    assert (b["requisition_s"], b["approval_s"]) == (300, 14460)  # first entry to first later stage
    assert b["receipt_at"] == at(2, "15:00") and b["stages_from_spans"].tolist() == ["receipt"]
    assert (b["receipt_to_match_s"], b["invoice_to_payment_s"], b["end_to_end_s"]) == (151200, 172800, 435600)
    assert (b["first_pass_match"], b["exceptions"], b["is_touchless"], b["status"]) == (False, 1, False, "paid")
    durations = warehouse.reader().execute(
        "SELECT from_stage, to_stage, duration_s, is_rework FROM fct_stage_durations WHERE case_id = 'REQ-B' "
        "ORDER BY transition_index").fetchall()
    assert durations == [
        ("requisition", "approval", 300, False), ("approval", "requisition", 10500, True),
        ("requisition", "approval", 300, False), ("approval", "budget_check", 3660, False),
        ("budget_check", "po_creation", 1440, False), ("po_creation", "receipt", 181800, False),
        ("receipt", "invoice", 64800, False), ("invoice", "match", 300, False), ("match", "payment", 172500, False),
    ]


def test_rejected_out_of_order_and_skewed_cases_are_kept(warehouse: Warehouse) -> None:
    cases = timeline(warehouse)
    c = cases["REQ-C"]
    assert (c["status"], c["current_stage"], c["last_outcome"], c["end_to_end_s"], c["requisition_s"]) == (
        "rejected", "approval", "rejected", 1800, 60)
    d = cases["REQ-D"]
    assert (d["approval_at"], d["approval_entries"], d["variant"]) == (at(0, "08:10"), 1, "requisition > approval")
    assert (d["exceptions"], d["touched_by_exception"]) == (1, True)  # the failed callback span
    e = cases["REQ-E"]
    # The slow clock puts the budget check before the level approval: kept as measured, a second approval visit.
    assert e["variant"] == "requisition > approval > budget_check > approval > po_creation"
    assert (e["approval_s"], e["budget_check_s"], e["approval_entries"]) == (3780, 720, 2)
    f1, f2 = cases["P-F/1"], cases["P-F/2"]
    assert pd.isna(f1["requisition_id"])
    assert (f1["end_to_end_s"], f1["po_to_receipt_s"], f1["invoice_to_payment_s"]) == (5 * 86400, 86400, 4 * 86400 - 7200)
    assert (f2["end_to_end_s"], f2["variant"], f2["status"]) == (0, "po_creation", "open")


def test_sub_cycle_medians_and_p90_by_facility(warehouse: Warehouse) -> None:
    con = warehouse.reader()
    north = Filters(facilities=("NORTH-GENERAL",))
    summary = cycle_times.summary(con, north).set_index("measure")
    # requisition to PO in NORTH: A 4800, B 16200, E 4800 -> median 4800, p90 4800 + 0.8 * 11400.
    assert summary.loc["requisition_to_po", ["cases", "p50_s", "p90_s"]].tolist() == [3, 4800, 13920]
    # end to end counts paid cases: A 867600 and B 435600.
    assert summary.loc["end_to_end", ["cases", "p50_s"]].tolist() == [2, (867600 + 435600) / 2]
    by_facility = cycle_times.by_dimension(con, Filters(), "po_to_receipt", "facility_id")
    assert by_facility[["facility_id", "cases", "p50_s"]].values.tolist() == [
        ["EAST-CHILDRENS", 1, 86400], ["NORTH-GENERAL", 2, (175200 + 181800) / 2]]
    by_priority = cycle_times.by_dimension(con, north, "requisition_to_po", "priority", {"department": ["SURGERY"]})
    assert by_priority[["priority", "cases", "p50_s"]].values.tolist() == [["routine", 2, 4800], ["urgent", 1, 16200]]


def test_weekly_trend_counts_the_week_each_interval_ended(warehouse: Warehouse) -> None:
    weeks = cycle_times.weekly(warehouse.reader(), Filters(), "invoice_to_payment")
    # P-F/1 and B paid in the week of 3 March, A on 13 March (the next week).
    assert weeks[["week", "cases", "p50_s"]].values.tolist() == [
        [pd.Timestamp("2025-03-03"), 2, (338400 + 172800) / 2], [pd.Timestamp("2025-03-10"), 1, 680400]]
    assert weeks["previous_cases"].tolist()[1] == 2
    assert weeks["p50_change_s"].tolist()[1] == 680400 - (338400 + 172800) / 2


def test_stage_breakdown_between_variants_and_slowest(warehouse: Warehouse) -> None:
    con = warehouse.reader()
    breakdown = cycle_times.stage_breakdown(con, Filters(stages=("approval", "budget_check"))).set_index("stage")
    # approval: H 1740, A 3660, E 3780, B 14460 (C and D never left approval).
    assert breakdown.loc["approval", ["cases", "p50_s"]].tolist() == [4, (3660 + 3780) / 2]
    # budget_check: A 540, B 1440, E 720, H has no later stage.
    assert breakdown.loc["budget_check", ["cases", "p50_s", "p90_s"]].tolist() == [3, 720, 720 + 0.8 * 720]
    span = cycle_times.between(con, Filters(), "requisition", "payment")
    assert span[["cases", "p50_s"]].values.tolist() == [[2, (867600 + 435600) / 2]]
    variants = cycle_times.variants(con, Filters(), limit=2)
    assert variants[["variant", "cases"]].values.tolist() == [["requisition > approval", 2],
                                                              ["po_creation", 1]]  # ties: by name
    assert variants["share"].tolist()[0] == 2 / 8
    slowest = cycle_times.slowest(con, Filters(), "approval", limit=2)
    assert slowest[["case_id", "seconds"]].values.tolist() == [["REQ-B", 14460], ["REQ-E", 3780]]


def test_executive_rates_sum_the_counts_behind_them(warehouse: Warehouse) -> None:
    con = warehouse.reader()
    rates = executive.rate_trends(con, Filters()).set_index(["kpi", "week"])
    week1, week2 = pd.Timestamp("2025-03-03"), pd.Timestamp("2025-03-10")
    # Paid in week 1: B (not touchless, on time) and P-F/1 (touchless: no approval visit, no exception).
    assert rates.loc[("touchless", week1), ["numerator", "denominator"]].tolist() == [1, 2]
    assert rates.loc[("touchless", week2), ["numerator", "denominator"]].tolist() == [1, 1]
    assert rates.loc[("first_pass_match", week1), ["numerator", "denominator"]].tolist() == [1, 2]
    # Exception spend: B 400 (match exception), D 25000 (error span), H 3000 (failed check) of all value.
    total = 1000 + 400 + 90 + 25000 + 700 + 3000 + 50 + 50
    assert rates.loc[("exception_spend", week1), ["numerator", "denominator"]].tolist() == [28400, total]
    tiles = {tile["name"]: tile for tile in executive.tiles(con, Filters())}
    assert (tiles["touchless"]["value"], tiles["touchless"]["previous"], tiles["touchless"]["better"]) == (1.0, 0.5, True)
    assert tiles["end_to_end"]["value"] == 867600 and tiles["end_to_end"]["count"] == 1
    comparison = executive.facility_comparison(con, Filters()).set_index("facility_id")
    assert comparison.loc["NORTH-GENERAL", "requisition_to_po_p50_s"] == 4800
    assert comparison.loc["SOUTH-COMMUNITY", "exception_spend"] == 25000 / 25090


def test_requisition_detail_lists_events_from_every_system_and_its_spans(warehouse: Warehouse) -> None:
    con = warehouse.reader()
    assert requisition.find(con, "req-b") == ["REQ-B"] and requisition.find(con, "P-B") == ["REQ-B"]
    events = requisition.events(con, "REQ-B")
    assert events["event_type"].tolist()[-4:] == ["INVOICE_RECEIVED", "PRICE_VARIANCE", "MATCHED", "PAID"]
    assert len(events) == 12
    assert requisition.spans(con, "REQ-B")["name"].tolist() == ["POST /receipts"]
    bars = requisition.stage_bars(con, "REQ-B")
    assert bars["stage"].tolist() == ["requisition", "approval", "requisition", "approval", "budget_check",
                                      "po_creation", "receipt", "invoice", "match", "payment"]
    assert bars["seconds"].tolist()[-1] == 0
    assert len(requisition.events(con, "P-F/1")) == 4 and requisition.case(con, "NOPE") is None


def test_a_later_stage_entered_earlier_does_not_end_a_stage(tmp_path) -> None:
    """The invoice arrives before its late receipt (the reference scenario): the receipt stage ends at the
    next later stage entered after it (the match), and no stage duration is negative."""
    g = dict(requisition_id="REQ-G", priority="routine", facility_id="NORTH-GENERAL", supplier_id="S01")
    log = [
        event("REQ-G", 1, at(0, "08:00"), "po_creation", "PO_CREATED", system="erp", **g),
        event("REQ-G", 2, at(0, "09:00"), "invoice", "INVOICE_RECEIVED", system="ap", **g),
        event("REQ-G", 3, at(0, "09:05"), "match", "MATCH_EXCEPTION", "exception", system="ap", **g),
        event("REQ-G", 4, at(1, "10:00"), "receipt", "RECEIPT_SYNCED", system="erp", **g),
        event("REQ-G", 5, at(1, "12:30"), "match", "MATCHED", system="ap", **g),
    ]
    with loaded_warehouse(tmp_path / "data", {"transaction_events": log}) as warehouse:
        g_row = timeline(warehouse)["REQ-G"]
    assert (g_row["po_creation_s"], g_row["invoice_s"], g_row["receipt_s"]) == (3600, 300, 9000)
