"""fct_failure_rates and metrics.failures: counts, Wilson intervals, heatmap cells, previous-period change."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from metrics import failures
from metrics.filters import Filters
from r2p import schema
from r2p.warehouse import Warehouse
from samples import loaded_warehouse

UTC = dt.timezone.utc
DAY1 = dt.datetime(2026, 3, 2, 9, 15, tzinfo=UTC)
DAY2 = DAY1 + dt.timedelta(days=1)


def span(n: int, start: dt.datetime, *, error: bool = False, facility: str = "NORTH-GENERAL", stage: str = "receipt",
         service: str = "erp-integration", name: str = "process wms.north.receipts", supplier: str = "S07") -> schema.Span:
    return schema.Span(
        trace_id=f"{n:032x}", span_id=f"{n:016x}", name=name, kind="consumer", start_time=start,
        end_time=start + dt.timedelta(milliseconds=40), duration_ms=40.0, status_code="error" if error else "ok",
        service_name=service, facility_id=facility, supplier_id=supplier, stage=stage,
        attributes="{}", resource_attributes=json.dumps({"service.name": service}),
    )


def event(n: int, occurred: dt.datetime, outcome: str, *, system: str = "ap", stage: str = "match",
          facility: str = "NORTH-GENERAL", trace: int | None = None) -> schema.TransactionEvent:
    return schema.TransactionEvent(
        event_id=f"ev-{n}", system=system, occurred_at=occurred, object_type="invoice", object_id=f"INV-{n}",
        event_type="MATCH_EXCEPTION" if outcome == "exception" else "MATCHED", stage=stage, outcome=outcome,
        facility_id=facility, supplier_id="S07", trace_id=None if trace is None else f"{trace:032x}", attributes="{}",
    )


@pytest.fixture
def warehouse(data_dir: Path) -> Warehouse:
    # Day 1: north receipt consumer 1 of 2 failed; south receipt 0 of 3; north match (ap-platform) 0 of 1.
    # Day 2: north receipt consumer 3 of 4 failed; south receipt 1 of 1.
    spans = [
        span(1, DAY1, error=True), span(2, DAY1),
        span(3, DAY1, facility="SOUTH-COMMUNITY", name="process wms.south.receipts"),
        span(4, DAY1, facility="SOUTH-COMMUNITY", name="process wms.south.receipts"),
        span(5, DAY1, facility="SOUTH-COMMUNITY", name="process wms.south.receipts"),
        span(6, DAY1, stage="match", service="ap-platform", name="three-way-match"),
        span(7, DAY2, error=True), span(8, DAY2 + dt.timedelta(minutes=30), error=True),
        span(9, DAY2 + dt.timedelta(hours=1), error=True), span(10, DAY2),
        span(11, DAY2, error=True, facility="SOUTH-COMMUNITY", name="process wms.south.receipts"),
    ]
    # Business: day 1 one exception of 2 match events (trace 21), day 2 two exceptions of 2 and one failed erp event.
    events = [
        event(1, DAY1, "exception", trace=21), event(2, DAY1, "succeeded"),
        event(3, DAY2, "exception"), event(4, DAY2, "exception", trace=22),
        event(5, DAY2, "failed", system="erp", stage="receipt"),
    ]
    with loaded_warehouse(data_dir, {"spans": spans, "transaction_events": events}) as warehouse:
        yield warehouse


def test_mart_counts_attempts_and_failures_per_hour_and_interface(warehouse: Warehouse) -> None:
    rows = warehouse.reader().execute(
        """SELECT hour, input, facility_id, stage, system, interface, attempts, failures, sample_failed_trace_id
           FROM fct_failure_rates WHERE input = 'spans' AND facility_id = 'NORTH-GENERAL' AND stage = 'receipt'
           ORDER BY hour"""
    ).fetchall()
    assert rows == [
        (DAY1.replace(minute=0), "spans", "NORTH-GENERAL", "receipt", "erp-integration",
         "erp-integration · process wms.north.receipts", 2, 1, f"{1:032x}"),
        (DAY2.replace(minute=0), "spans", "NORTH-GENERAL", "receipt", "erp-integration",
         "erp-integration · process wms.north.receipts", 3, 2, f"{8:032x}"),
        (DAY2.replace(hour=10, minute=0), "spans", "NORTH-GENERAL", "receipt", "erp-integration",
         "erp-integration · process wms.north.receipts", 1, 1, f"{9:032x}"),
    ]


def test_wilson_interval_of_one_in_two_is_wide() -> None:
    import duckdb

    con = duckdb.connect()
    rate, low, high = con.execute(f"SELECT {failures.rate_columns('1', '2')}").fetchone()
    # p = 0.5, n = 2, z = 1.96: centre (0.5 + 0.9604) / 2.9208 = 0.5, half 1.96 * sqrt(0.125 + 0.2401) / 2.9208
    assert rate == 0.5
    assert low == pytest.approx(0.0945, abs=1e-4)
    assert high == pytest.approx(0.9055, abs=1e-4)
    rate, low, high = con.execute(f"SELECT {failures.rate_columns('0', '0')}").fetchone()
    assert (rate, low, high) == (None, None, None)
    rate, low, high = con.execute(f"SELECT {failures.rate_columns('0', '10')}").fetchone()
    # k = 0: the interval is [0, z^2 / (n + z^2)] = [0, 3.8415 / 13.8415]
    assert (rate, low) == (0.0, 0.0) and high == pytest.approx(0.27754, abs=1e-4)


def test_heatmap_cells_carry_counts_and_intervals(warehouse: Warehouse) -> None:
    cells = failures.heatmap(warehouse.reader(), Filters(), "spans").set_index(["facility_id", "stage"])
    assert cells.loc[("NORTH-GENERAL", "receipt"), ["attempts", "failures"]].tolist() == [6, 4]
    assert cells.loc[("NORTH-GENERAL", "match"), ["attempts", "failures"]].tolist() == [1, 0]
    assert cells.loc[("SOUTH-COMMUNITY", "receipt"), ["attempts", "failures"]].tolist() == [4, 1]
    north = cells.loc[("NORTH-GENERAL", "receipt")]
    # 4 of 6: p = 0.6667; Wilson 95 %: [0.3000, 0.9032]
    assert north.failure_rate == pytest.approx(4 / 6)
    assert (round(north.ci_low, 4), round(north.ci_high, 4)) == (0.3000, 0.9032)


def test_business_failure_rate_and_change_against_the_previous_day(warehouse: Warehouse) -> None:
    con = warehouse.reader()
    day2 = Filters(start=DAY2.date(), end=DAY2.date())
    business = failures.totals(con, day2, "transactions")
    assert (business["attempts"], business["failures"]) == (3, 3)
    assert (business["previous_attempts"], business["previous_failures"]) == (2, 1)
    assert business["previous_rate"] == 0.5
    top = failures.by_dimension(con, day2, "interface", "spans")
    assert top[["interface", "attempts", "failures", "previous_attempts", "previous_failures"]].values.tolist() == [
        ["erp-integration · process wms.north.receipts", 4, 3, 2, 1],
        ["erp-integration · process wms.south.receipts", 1, 1, 3, 0],
    ]
    assert top["change"].tolist() == pytest.approx([0.75 - 0.5, 1.0 - 0.0])
    assert top["first_failure_at"].iloc[0] == DAY2
    assert top["sample_failed_trace_id"].tolist() == [f"{9:032x}", f"{11:032x}"]


def test_a_heatmap_cell_narrows_the_list_and_filters_apply(warehouse: Warehouse) -> None:
    con = warehouse.reader()
    cell = failures.by_dimension(con, Filters(), "interface", "spans", facility_id="NORTH-GENERAL", stage="match")
    assert cell[["interface", "attempts", "failures"]].values.tolist() == [["ap-platform · three-way-match", 1, 0]]
    south = failures.totals(con, Filters(facilities=("SOUTH-COMMUNITY",)), "spans")
    assert (south["attempts"], south["failures"]) == (4, 1)
    daily = failures.over_time(con, Filters(), "transactions", "day")
    assert daily[["attempts", "failures"]].values.tolist() == [[2, 1], [3, 3]]
    with pytest.raises(ValueError):
        failures.by_dimension(con, Filters(), "amount")
