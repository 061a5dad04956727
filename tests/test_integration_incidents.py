"""The integration models against the simulator's ground truth: every injected incident of the kinds this
issue measures is found in its flow, facility or supplier and window, with no alarm of the same kind
outside them. One small simulated health system (14 days) is landed through the real collectors."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from metrics import drift, failures
from metrics.filters import Filters
from r2p.demo import land_inputs
from r2p.landing import LandingZone
from r2p.warehouse import Warehouse
from simulator.cli import simulate

DAY = dt.timedelta(days=1)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("sim")
    simulate.main(["--days", "14", "--scale", "0.03", "--suppliers", "15", "--snapshot-interval", "900",
                   "--out", str(out)], standalone_mode=False)
    manifest = json.loads((out / "manifest.json").read_text())
    incidents = {incident["kind"]: incident for incident in manifest["incidents"]}
    data_dir = tmp_path_factory.mktemp("data")
    land_inputs(out, LandingZone(data_dir))
    warehouse = Warehouse(data_dir)
    warehouse.refresh()
    yield warehouse.reader(), incidents
    warehouse.close()


def window(incident: dict) -> tuple[dt.datetime, dt.datetime]:
    return (dt.datetime.fromisoformat(incident["start"].replace("Z", "+00:00")),
            dt.datetime.fromisoformat(incident["end"].replace("Z", "+00:00")))


def days_of(incident: dict) -> set[dt.date]:
    start, end = window(incident)
    return {(start + n * DAY).date() for n in range((end - start).days)}


def test_receipt_lag_at_the_late_facility_in_its_window_only(simulated) -> None:
    con, incidents = simulated
    late = incidents["late_receipts"]
    by_day = con.execute(
        """SELECT facility_id, day, quantile_cont(lag_s, 0.95) / 3600 AS p95_h FROM fct_sync_drift
           WHERE flow = 'receipt-sync' GROUP BY ALL HAVING quantile_cont(lag_s, 0.95) > 3600"""
    ).fetchall()
    assert by_day, "no facility-day with a receipt lag p95 over 1 h"
    assert {facility for facility, _, _ in by_day} == {late["facility"]}
    assert {day for _, day, _ in by_day} <= days_of(late)
    assert max(p95 for *_, p95 in by_day) > late["expected"]["p95_lag_hours_over"]


def test_missing_acks_only_from_the_silent_supplier(simulated) -> None:
    con, incidents = simulated
    outage = incidents["missing_acks"]
    start, end = window(outage)
    missing = con.execute(
        "SELECT supplier_id, source_at FROM fct_sync_drift WHERE flow = 'po-ack' AND is_missing").fetchall()
    assert len(missing) >= 1
    assert {supplier for supplier, _ in missing} == {outage["supplier"]}
    # POs sent the day before the window wait for an acknowledgment that would have come inside it
    assert all(start - DAY <= sent < end for _, sent in missing)


def test_supplier_status_drift_found_for_its_supplier_and_window(simulated) -> None:
    con, incidents = simulated
    incident = incidents["supplier_status_drift"]
    start, end = window(incident)
    breaches = drift.state_drift(con, Filters())
    assert set(breaches["object_key"]) == {incident["supplier"]}
    assert ((breaches["drift_start"] >= start) & (breaches["drift_start"] <= end + dt.timedelta(hours=1))).all()
    erp_blocked = breaches[breaches["source_value"] == incident["expected"]["erp_status"]]
    assert erp_blocked["target_value"].tolist() == [incident["expected"]["procurement_status_in_window"]]


def test_erp_throttling_failures_only_in_the_throttled_hours(simulated) -> None:
    con, incidents = simulated
    throttle = incidents["erp_throttling"]
    # client calls to the ERP API fail only when throttled; its server spans keep an unset status
    rows = con.execute(
        """SELECT hour, sum(failures) FROM fct_failure_rates WHERE input = 'spans' AND interface LIKE '%/api/v1/%'
           AND system <> 'erp-api' GROUP BY hour HAVING sum(failures) > 0"""
    ).fetchall()
    assert rows
    start, end = window(throttle)
    for hour, _ in rows:
        local = hour.astimezone(dt.timezone(dt.timedelta(hours=-6)))  # America/Chicago in January
        assert start <= hour < end and local.hour == 9 and local.weekday() < 5, hour


def test_legacy_adapter_outage_days_by_wilson_lower_bound(simulated) -> None:
    con, incidents = simulated
    outage = incidents["legacy_adapter_failure"]
    daily = failures.over_time(con, Filters(facilities=(outage["facility"],)), "spans", "day")
    legacy = con.execute(
        f"""SELECT day, sum(attempts), sum(failures), {failures.rate_columns('sum(failures)', 'sum(attempts)')}
            FROM fct_failure_rates WHERE input = 'spans' AND system = 'legacy-erp-adapter' GROUP BY day"""
    ).fetchall()
    assert not daily.empty
    alarming = {day for day, _, _, _, low, _ in legacy if low > 0.05}
    assert alarming == days_of(outage)


def test_dead_letters_grow_only_on_throttled_days(simulated) -> None:
    con, incidents = simulated
    throttle = incidents["erp_throttling"]
    series = drift.backlog_over_time(con, Filters(), "receipt-sync", bucket_minutes=60)
    growing = series[series["dead_letter_growth"] > 0]
    assert not growing.empty
    start, end = window(throttle)
    assert ((growing["observed_at"] >= start) & (growing["observed_at"] < end + DAY)).all()


def test_match_exceptions_blamed_on_receipt_sync_only_at_the_late_facility(simulated) -> None:
    con, incidents = simulated
    late = incidents["late_receipts"]
    start, end = window(late)
    blamed = con.execute(
        "SELECT facility_id, cause_at FROM fct_match_exception_causes WHERE cause = 'receipt_sync_late'").fetchall()
    assert {facility for facility, _ in blamed} <= {late["facility"]}
    assert all(start <= at < end + DAY for _, at in blamed)
