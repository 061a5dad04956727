"""fct_slo_burn, metrics.slo burn rates and error budget, and `r2p check` (also while a dashboard holds the file)."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

from metrics import slo
from r2p import schema
from r2p.cli import main
from r2p.warehouse import Warehouse
from samples import land_records

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
M = dt.timedelta(minutes=1)


def receipt(n: int, posted: dt.datetime, synced: dt.datetime | None) -> list[schema.TransactionEvent]:
    common = {"object_type": "receipt", "object_id": f"GR-{n}", "stage": "receipt", "outcome": "succeeded",
              "facility_id": "NORTH-GENERAL", "receipt_id": f"GR-{n}", "attributes": "{}"}
    events = [schema.TransactionEvent(event_id=f"p{n}", system="wms-north", occurred_at=posted, recorded_at=posted,
                                      event_type="RECEIPT_POSTED", **common)]
    if synced:
        events.append(schema.TransactionEvent(event_id=f"s{n}", system="erp", occurred_at=synced, recorded_at=synced,
                                              event_type="RECEIPT_SYNCED", **common))
    return events


@pytest.fixture
def landed(data_dir: Path) -> Path:
    # receipt-sync, SLO 99 % within 15 min. 117 receipts posted every 5 min from 00:00, synced in 1 min (good);
    # 3 posted at 09:40 never synced (bad, due 09:55). An AP event at 12:00 ends the data.
    events = [e for k in range(117) for e in receipt(k, T0 + 5 * k * M, T0 + (5 * k + 1) * M)]
    events += [e for k in range(200, 203) for e in receipt(k, T0 + 580 * M, None)]
    events.append(schema.TransactionEvent(
        event_id="end", system="ap", occurred_at=T0 + 12 * 60 * M, object_type="invoice", object_id="INV-1",
        event_type="INVOICE_RECEIVED", outcome="succeeded", attributes="{}"))
    land_records(data_dir, {"transaction_events": events})
    return data_dir


def run_check(capsys: pytest.CaptureFixture, data_dir: Path, *options: str) -> tuple[int, list[str], list[str]]:
    """`r2p --data-dir DIR check OPTIONS` as the console script runs it: exit code, stdout and stderr lines."""
    try:
        code = main(["--data-dir", str(data_dir), "check", *options])
    except SystemExit as exit:
        code = exit.code
    out, err = capsys.readouterr()
    return code, out.splitlines(), err.splitlines()


def test_burn_rates_by_window_and_error_budget(landed: Path) -> None:
    warehouse = Warehouse(landed)
    warehouse.refresh()
    try:
        rates = slo.burn_rates(warehouse.reader(), T0 + 600 * M).set_index("flow")
        receipts = rates.loc["receipt-sync"]
        # 1 h window: dues 09:00-09:55: 12 good + 3 bad -> 0.2 / 0.01 = 20x; 5 min: 1 good + 3 bad -> 75x
        assert receipts.fast_long_burn == pytest.approx(20.0)
        assert receipts.fast_short_burn == pytest.approx(75.0)
        # 6 h: dues 04:00-09:55: 72 good + 3 bad -> 0.04 / 0.01 = 4x (under 6: slow alone would not fire)
        assert receipts.slow_long_burn == pytest.approx(4.0)
        assert (receipts.eligible, receipts.bad) == (120, 3)
        # allowed bad: 1 % of 120 = 1.2; spent 3: remaining 1 - 3 / 1.2 = -1.5
        assert receipts.budget_remaining == pytest.approx(-1.5)
        assert receipts.burning == "fast"
        assert rates.loc["po-transmission"].burning is None
        assert slo.burning(warehouse.reader(), T0 + 600 * M)["flow"].tolist() == ["receipt-sync"]
        assert slo.burning(warehouse.reader(), T0 + 480 * M).empty
    finally:
        warehouse.close()


def test_check_command_exits_1_while_burning_and_0_otherwise(landed: Path, capsys: pytest.CaptureFixture) -> None:
    code, out, err = run_check(capsys, landed, "--at", "2026-03-02T10:00")
    assert (code, err) == (1, [])
    assert out == [
        "receipt-sync: fast burn 20.0x over 1 h and 75.0x over 5 min (threshold 14.4x) against 99.00% within 15 min;"
        " budget remaining -150%"]
    assert run_check(capsys, landed, "--at", "2026-03-02T08:00") == (0, ["no SLO is burning"], [])


def test_check_while_another_process_holds_the_warehouse(landed: Path, capsys: pytest.CaptureFixture) -> None:
    Warehouse(landed).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); "
         "time.sleep(60)", str(landed / "warehouse.duckdb")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        code, out, err = run_check(capsys, landed, "--no-fallback")
        assert (code, out) == (2, [])
        assert err == [f"r2p: error: warehouse held by process {holder.pid} (a running dashboard?): stop it or drop --no-fallback"]
        code, out, err = run_check(capsys, landed, "--at", "2026-03-02T10:00")
        assert code == 1
        assert err == [f"warehouse held by process {holder.pid}: checking a private copy built from the landing zone"]
        assert out[0].startswith("receipt-sync: fast burn 20.0x")
    finally:
        holder.kill()
        holder.wait()
