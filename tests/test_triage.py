"""Triage: decisions landed as events, replayed into state; transitions, regression, ignore, concurrency,
double submits, the risk ranking, history across a rebuild, and the `r2p triage` commands."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest

from metrics import triage as queries
from metrics.filters import Filters
from r2p import schema
from r2p.cli import main
from r2p.errors import UserError
from r2p.landing import LandingZone
from r2p.triage import Seen, decide, landed_events, record, replayed_status
from r2p.warehouse import Warehouse
from samples import land_records

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DEADLOCK_KEY = "system=legacy-erp-adapter | error_type=SoapFaultException | error_codes=ORA-00060"
DEADLOCK = hashlib.sha256(f"adapter-faults-per-error-type\n{DEADLOCK_KEY}".encode()).hexdigest()[:16]


def deadlock_span(n: int, at: dt.datetime, requisition: str = "REQ-000001") -> schema.Span:
    """A failed legacy ERP adapter call on a stat requisition (one occurrence of the DEADLOCK group)."""
    return schema.Span(
        trace_id=f"{n + 1:032x}", span_id=f"{n + 1:016x}", name="POST /soap/PostPO", kind="client", start_time=at,
        end_time=at + dt.timedelta(milliseconds=90), duration_ms=90.0, status_code="error",
        status_message=f"ORA-00060: deadlock detected while posting PO-{n:06d}", service_name="legacy-erp-adapter",
        facility_id="EAST-LEGACY", supplier_id="S02", stage="po_creation", requisition_id=requisition,
        priority="stat", error_type="SoapFaultException", attributes=json.dumps({"rpc.system": "soap"}),
        resource_attributes=json.dumps({"service.name": "legacy-erp-adapter"}),
    )


def receipt_failure(n: int, at: dt.datetime) -> schema.TransactionEvent:
    """A failed routine receipt sync (one occurrence of the routine, bigger group)."""
    return schema.TransactionEvent(
        event_id=f"rcpt-{n}", system="erp", occurred_at=at, object_type="receipt", object_id=f"RC-{n:05d}",
        event_type="RECEIPT_SYNC", stage="receipt", outcome="failed", facility_id="NORTH-GENERAL", supplier_id="S01",
        priority="routine", amount=Decimal("10.00"), requisition_id=f"REQ-9{n:05d}",
        attributes=json.dumps({"reason": "receipt sync failed"}),
    )


def stat_requisition() -> schema.TransactionEvent:
    """The stat requisition for a hip implant behind the DEADLOCK group's occurrences."""
    return schema.TransactionEvent(
        event_id="req-1", system="procurement", occurred_at=T0 - dt.timedelta(hours=1), object_type="requisition",
        object_id="REQ-000001", event_type="REQUISITION_SUBMITTED", stage="requisition", outcome="succeeded",
        priority="stat", amount=Decimal("4200.00"), requisition_id="REQ-000001", facility_id="EAST-LEGACY",
        attributes=json.dumps({"item_description": "hip implant, cemented"}),
    )


@pytest.fixture
def warehouse(data_dir: Path):
    spans = [deadlock_span(n, T0 + dt.timedelta(hours=n)) for n in range(2)]
    events = [receipt_failure(n, T0 + dt.timedelta(minutes=10 * n)) for n in range(6)]
    events.append(stat_requisition())
    land_records(data_dir, {"spans": spans, "transaction_events": events})
    opened = Warehouse(data_dir)
    opened.refresh()
    yield opened
    opened.close()


def current(warehouse: Warehouse, fingerprint: str) -> dict:
    warehouse.refresh()
    return queries.group(warehouse.reader(), fingerprint)


def seen(warehouse: Warehouse, fingerprint: str) -> Seen:
    row = current(warehouse, fingerprint)
    return Seen(fingerprint, row["status"], row["last_event_id"])


def land_more(warehouse: Warehouse, spans: list[schema.Span], name: str) -> None:
    land_records(warehouse.data_dir, {"spans": spans}, name=name)
    warehouse.refresh()


def test_stat_implant_group_ranks_above_the_bigger_routine_one_and_says_why(warehouse: Warehouse) -> None:
    ranked = queries.queue(warehouse.reader(), Filters())
    assert list(ranked["fingerprint"])[0] == DEADLOCK
    top = ranked.iloc[0]
    assert (top["occurrences"], top["status"]) == (2, "new")
    # stat 40; implant 25; value log10(4201)/log10(100001) * 15 = 10.9; volume log10(3)/log10(1001) * 10 = 1.6;
    # breadth 1 of 2 facilities * 10 = 5; trend: last 24 h 2 vs 0 before -> 10; age 1 h / 14 d * 5 = 0;
    # acute: both within 1 h -> 20; no flow, so no SLO burn.
    assert top["risk"] == pytest.approx(40 + 25 + 10.9 + 1.6 + 5 + 10 + 0.0 + 20)
    assert (top["points_acute"], top["points_slo_burn"]) == (20, 0)
    assert top["risk_reasons"].startswith("2 on stat requisitions (+40) · critical items (implant) (+25)")
    assert top["runbook"] == "https://runbooks.example.org/r2p/legacy-erp-adapter"
    routine = ranked.iloc[1]
    assert routine["occurrences"] == 6 and routine["points_stat"] == 0 and routine["risk"] < top["risk"]


def test_workflow_transitions_and_invalid_ones(warehouse: Warehouse) -> None:
    zone = warehouse.landing
    record(zone, decide(seen(warehouse, DEADLOCK), "acknowledge", "alice", now=T0 + dt.timedelta(days=1)))
    assert current(warehouse, DEADLOCK)["status"] == "acknowledged"
    with pytest.raises(UserError, match="is acknowledged: cannot acknowledge it"):
        decide(seen(warehouse, DEADLOCK), "acknowledge", "alice")
    record(zone, decide(seen(warehouse, DEADLOCK), "assign", "alice", assignee="dave", now=T0 + dt.timedelta(days=1, hours=1)))
    record(zone, decide(seen(warehouse, DEADLOCK), "note", "dave", note="DBA paged", now=T0 + dt.timedelta(days=1, hours=2)))
    row = current(warehouse, DEADLOCK)
    assert (row["status"], row["assignee"], row["decisions"], row["notes"]) == ("acknowledged", "dave", 3, 1)
    with pytest.raises(UserError, match="a note needs text"):
        decide(seen(warehouse, DEADLOCK), "note", "dave", note="  ")
    with pytest.raises(UserError, match="only ignore takes an end time"):
        decide(seen(warehouse, DEADLOCK), "resolve", "dave", ignore_until=T0)
    record(zone, decide(seen(warehouse, DEADLOCK), "resolve", "dave", now=T0 + dt.timedelta(days=2)))
    with pytest.raises(UserError, match="is resolved: cannot ignore it"):
        decide(seen(warehouse, DEADLOCK), "ignore", "dave")
    assert current(warehouse, DEADLOCK)["status"] == "resolved"


def test_a_resolved_group_that_occurs_again_is_regressed_and_says_so(warehouse: Warehouse) -> None:
    resolved_at = T0 + dt.timedelta(days=1)
    record(warehouse.landing, decide(seen(warehouse, DEADLOCK), "resolve", "alice", now=resolved_at))
    # A late-landing occurrence from before the resolve does not reopen it.
    land_more(warehouse, [deadlock_span(10, resolved_at - dt.timedelta(minutes=5))], "late")
    assert current(warehouse, DEADLOCK)["status"] == "resolved"
    again = resolved_at + dt.timedelta(hours=3)
    land_more(warehouse, [deadlock_span(11, again)], "again")
    row = current(warehouse, DEADLOCK)
    assert (row["status"], row["recorded_status"], row["reopened_reason"]) == ("regressed", "resolved", "regressed")
    assert row["reopened_at"] == again
    assert "reopened: regressed (+15)" in row["risk_reasons"]
    record(warehouse.landing, decide(seen(warehouse, DEADLOCK), "acknowledge", "bob", now=again + dt.timedelta(hours=1)))
    row = current(warehouse, DEADLOCK)
    assert (row["status"], row["reopened_reason"]) == ("acknowledged", None)


def test_ignore_until_a_time_and_until_it_escalates(warehouse: Warehouse) -> None:
    until = T0 + dt.timedelta(days=2)
    record(warehouse.landing, decide(seen(warehouse, DEADLOCK), "ignore", "alice", ignore_until=until,
                                     now=T0 + dt.timedelta(days=1)))
    land_more(warehouse, [deadlock_span(20, until - dt.timedelta(hours=1))], "inside")
    assert current(warehouse, DEADLOCK)["status"] == "ignored"
    land_more(warehouse, [deadlock_span(21, until + dt.timedelta(hours=1))], "after")
    row = current(warehouse, DEADLOCK)
    assert (row["status"], row["reopened_reason"]) == ("new", "ignore expired")

    record(warehouse.landing, decide(seen(warehouse, DEADLOCK), "ignore", "alice", now=T0 + dt.timedelta(days=3)))
    assert current(warehouse, DEADLOCK)["status"] == "ignored"
    # Before the ignore its busiest day held 2; a day with 5 is more than twice that.
    day = T0 + dt.timedelta(days=4)
    land_more(warehouse, [deadlock_span(30 + n, day + dt.timedelta(minutes=n)) for n in range(4)], "four")
    assert current(warehouse, DEADLOCK)["status"] == "ignored"
    land_more(warehouse, [deadlock_span(40, day + dt.timedelta(hours=2))], "fifth")
    row = current(warehouse, DEADLOCK)
    assert (row["status"], row["reopened_reason"], row["escalated"]) == ("new", "escalated", True)


def test_concurrent_decisions_both_stand_last_write_wins_and_a_double_submit_lands_once(warehouse: Warehouse) -> None:
    both_saw = seen(warehouse, DEADLOCK)
    alice = decide(both_saw, "acknowledge", "alice", now=T0 + dt.timedelta(days=1))
    bob = decide(both_saw, "resolve", "bob", now=T0 + dt.timedelta(days=1, seconds=5))
    first = record(warehouse.landing, alice)
    assert first.landed and first.overtaken_by is None
    second = record(warehouse.landing, bob)
    assert second.landed and second.overtaken_by == alice
    assert "applied after alice's acknowledge at 2026-03-03 09:00 UTC" in second.line()
    again = record(warehouse.landing, decide(both_saw, "resolve", "bob", now=T0 + dt.timedelta(days=1, seconds=6)))
    assert not again.landed and again.event.triage_event_id == bob.triage_event_id
    assert again.line().endswith("(already recorded: nothing changed)")
    assert current(warehouse, DEADLOCK)["status"] == "resolved"
    history = queries.history(warehouse.reader(), DEADLOCK)
    assert list(zip(history["changed_by"], history["status"], history["concurrent"])) == [
        ("bob", "resolved", True), ("alice", "acknowledged", False)]
    assert replayed_status(landed_events(warehouse.landing))[DEADLOCK] == Seen(DEADLOCK, "resolved", bob.triage_event_id)


def r2p(data_dir: Path, *args: str, capsys: pytest.CaptureFixture) -> tuple[int, str]:
    code = main(["--data-dir", str(data_dir), *args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_cli_decisions_land_the_same_events_and_survive_a_rebuild(data_dir: Path, capsys: pytest.CaptureFixture) -> None:
    land_records(data_dir, {"spans": [deadlock_span(n, T0 + dt.timedelta(hours=n)) for n in range(2)]})
    code, out = r2p(data_dir, "triage", "list", capsys=capsys)
    assert code == 0 and out.splitlines()[0].startswith(f"{DEADLOCK}  new          risk ")
    code, out = r2p(data_dir, "triage", "ack", DEADLOCK, "--by", "carol", "--note", "on it", capsys=capsys)
    assert code == 0 and out.splitlines()[0] == f"{DEADLOCK}: acknowledge -> acknowledged"
    assert r2p(data_dir, "triage", "assign", DEADLOCK, "--to", "dave", "--by", "carol", capsys=capsys)[0] == 0
    assert r2p(data_dir, "triage", "note", DEADLOCK, "vendor ticket 4411", "--by", "dave", capsys=capsys)[0] == 0
    code, out = r2p(data_dir, "triage", "ack", DEADLOCK, "--by", "carol", capsys=capsys)
    assert (code, out.strip()) == (2, f"r2p: error: {DEADLOCK} is acknowledged: cannot acknowledge it")
    assert r2p(data_dir, "rebuild", capsys=capsys)[0] == 0
    warehouse = Warehouse(data_dir)
    try:
        history = queries.history(warehouse.reader(), DEADLOCK)
        row = queries.group(warehouse.reader(), DEADLOCK)
    finally:
        warehouse.close()
    assert list(zip(history["action"], history["changed_by"])) == [("note", "dave"), ("assign", "carol"),
                                                                   ("acknowledge", "carol")]
    assert list(history["note"].fillna("")) == ["vendor ticket 4411", "", "on it"]
    assert (row["status"], row["assignee"]) == ("acknowledged", "dave")
    assert {e.action for e in landed_events(LandingZone(data_dir))} == {"acknowledge", "assign", "note"}


def test_cli_lands_decisions_while_the_dashboard_holds_the_warehouse(data_dir: Path, capsys: pytest.CaptureFixture) -> None:
    land_records(data_dir, {"spans": [deadlock_span(0, T0)]})
    Warehouse(data_dir).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from r2p.warehouse import Warehouse; w = Warehouse(sys.argv[1]); "
         "w.refresh(); print('held', flush=True); time.sleep(60)", str(data_dir)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        code, out = r2p(data_dir, "triage", "ack", DEADLOCK, "--by", "erin", capsys=capsys)
        lines = out.splitlines()
        assert code == 0
        assert lines[0].startswith("warehouse held by process ") and "status from landed decisions only" in lines[0]
        assert lines[1] == f"{DEADLOCK}: acknowledge -> acknowledged"
        code, out = r2p(data_dir, "triage", "list", capsys=capsys)
        assert out.splitlines()[1:] == [f"{DEADLOCK}  acknowledged"]
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)
    code, out = r2p(data_dir, "triage", "list", "--status", "acknowledged", capsys=capsys)
    assert out.splitlines()[0].startswith(f"{DEADLOCK}  acknowledged")
