"""AppTest: the Overview and Ingest pages render from the warehouse, with data and empty; filters follow the URL."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parents[1]


def run_page(data_dir: Path, monkeypatch: pytest.MonkeyPatch, script: str = "app.py", **query: str | list[str]) -> AppTest:
    monkeypatch.setenv("R2P_DATA_DIR", str(data_dir))
    app = AppTest.from_file(str(REPO / script), default_timeout=60)
    for key, value in query.items():
        app.query_params[key] = value
    return app.run()


def test_overview_with_data_shows_totals_and_both_charts(landed_sample: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = run_page(landed_sample, monkeypatch)
    assert not app.exception
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["Business events"] == "12"
    assert metrics["Failed or exception events"] == "3"
    assert metrics["Integration operations (spans)"] == "12"
    assert metrics["Failed operations"] == "1"
    charts = app.get("plotly_chart")
    assert len(charts) == 2
    by_stage = charts[0].proto.spec
    assert '"requisition"' in by_stage and '"receipt"' in by_stage


def test_overview_filters_come_from_the_url_and_go_back_to_it(landed_sample: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = run_page(landed_sample, monkeypatch, facility=["SOUTH-COMMUNITY"], stage=["receipt"])
    assert not app.exception
    assert app.multiselect(key="filter_facilities").value == ["SOUTH-COMMUNITY"]
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["Business events"] == "1"
    assert metrics["Failed operations"] == "1"
    app.multiselect(key="filter_facilities").set_value(["NORTH-GENERAL", "SOUTH-COMMUNITY"]).run()
    assert app.query_params["facility"] == ["NORTH-GENERAL", "SOUTH-COMMUNITY"]
    assert {metric.label: metric.value for metric in app.metric}["Business events"] == "2"


def test_unknown_filter_values_in_a_link_are_ignored(landed_sample: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = run_page(landed_sample, monkeypatch, facility=["NO-SUCH-PLACE"])
    assert not app.exception
    assert app.multiselect(key="filter_facilities").value == []
    assert {metric.label: metric.value for metric in app.metric}["Business events"] == "12"


def test_empty_warehouse_explains_how_to_load_and_offers_the_demo(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = run_page(data_dir, monkeypatch)
    assert not app.exception
    assert "warehouse is empty" in app.info[0].value
    assert app.button(key="load_demo").label == "Load the demo health system"
    assert not app.get("plotly_chart")


def test_ingest_page_lists_batches(landed_sample: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = run_page(landed_sample, monkeypatch, script="pages/9_Ingest.py")
    assert not app.exception
    assert app.success[0].value == "No record has been rejected."
    batches = app.dataframe[-1].value
    assert list(batches["source"]) == ["tests"]
    assert '"transaction_events": 12' in batches["record_counts"][0]


def test_a_warehouse_held_by_another_process_is_explained(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess
    import sys

    from test_storage import HOLDER

    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(data_dir)], stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert holder.stdout.readline().strip() == "holding"
        app = run_page(data_dir, monkeypatch)
        assert not app.exception
        assert f"held by process {holder.pid}" in app.error[0].value
    finally:
        holder.kill()
        holder.wait()


def test_dates_in_a_link_outside_the_data_are_clamped(landed_sample: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import datetime as dt

    app = run_page(landed_sample, monkeypatch, **{"from": "2020-01-01", "to": "2030-12-31"})
    assert not app.exception
    assert app.date_input(key="filter_start").value == dt.date(2026, 3, 2)
    assert app.date_input(key="filter_end").value == dt.date(2026, 3, 4)
    assert {metric.label: metric.value for metric in app.metric}["Business events"] == "12"


def test_the_sidebar_says_when_loaded_batches_wait_for_the_next_model_build(
    landed_sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from r2p.ui import open_warehouse
    from samples import land_records, sample_records

    app = run_page(landed_sample, monkeypatch)
    assert not [caption for caption in app.sidebar.caption if "next model build" in caption.value]
    warehouse = open_warehouse(str(landed_sample))  # the page's own gateway: a cached resource of this process
    monkeypatch.setattr(warehouse, "_marts_due", lambda: False)  # as if the last build was long and recent
    more = {"transaction_events": [r.model_copy(update={"event_id": r.event_id + "-again"}) for r in sample_records()["transaction_events"]]}
    land_records(landed_sample, more, name="more")
    assert warehouse.refresh(defer_marts=True).marts_deferred
    app.run()
    assert [caption for caption in app.sidebar.caption if "next model build" in caption.value]
    assert {metric.label: metric.value for metric in app.metric}["Business events"] == "12", "the marts of the last build"
    next(button for button in app.sidebar.button if button.label == "Refresh").click().run()
    assert not [caption for caption in app.sidebar.caption if "next model build" in caption.value]
    assert {metric.label: metric.value for metric in app.metric}["Business events"] == "24"
