"""AppTest of the procurement pages (issue 7) over the hand-made log of test_cycle_times: filters, seeded
chart and table selections, empty results and deep links.

AppTest cannot click inside a Plotly chart, so selections are seeded into session state under the
chart's key, as Streamlit stores them. Pages run from app.py, the entrypoint, so switch_page resolves.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from samples import land_records
from test_cycle_times import procurement_log

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("pages") / "data"
    land_records(data_dir, procurement_log(), name="procurement-log")
    return data_dir


def open_page(data_dir: Path, monkeypatch: pytest.MonkeyPatch, page: str, **query: str | list[str]) -> AppTest:
    monkeypatch.setenv("R2P_DATA_DIR", str(data_dir))
    app = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
    for key, value in query.items():
        app.query_params[key] = value
    app.switch_page(f"pages/{page}.py")
    return app.run()


def chart_click(*ids: str) -> dict:
    """A Plotly selection of one point whose customdata holds ``ids``, as the chart widget stores it."""
    return {"selection": {"points": [{"customdata": list(ids)}], "point_indices": [0], "box": [], "lasso": []}}


def param(app: AppTest, key: str) -> list[str]:
    """A URL parameter's values (AppTest keeps one value as a string, several as a list)."""
    value = app.query_params[key]
    return list(value) if isinstance(value, list) else [value]


def metrics(app: AppTest) -> dict[str, str]:
    return {metric.label: metric.value for metric in app.metric}


def test_executive_tiles_show_latest_week_with_definitions(log_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = open_page(log_dir, monkeypatch, "1_Executive")
    assert not app.exception
    tiles = metrics(app)
    assert tiles["Touchless rate"] == "100.0 %"  # week of 10 March: REQ-A
    assert tiles["First-pass three-way match"] == "50.0 %"
    assert tiles["End to end (median)"] == "10.0 d"
    assert any("Paid requisitions with no manual step" in caption.value for caption in app.caption)
    assert len(app.get("plotly_chart")) == 2


def test_executive_facility_click_opens_its_cycle_times(log_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = open_page(log_dir, monkeypatch, "1_Executive")
    app.session_state["exec_facilities"] = chart_click("SOUTH-COMMUNITY")
    app.run()
    assert not app.exception
    assert app.title[0].value == "Cycle times"
    assert param(app, "facility") == ["SOUTH-COMMUNITY"]
    assert app.multiselect(key="filter_facilities").value == ["SOUTH-COMMUNITY"]
    assert metrics(app)["Requisition to PO"] == "—"  # neither C (rejected) nor D (stalled) got a PO


def test_executive_week_click_opens_that_week(log_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = open_page(log_dir, monkeypatch, "1_Executive")
    app.session_state["exec_trend"] = chart_click("2025-03-03", "3")
    app.run()
    assert not app.exception
    assert (param(app, "from"), param(app, "to")) == (["2025-03-03"], ["2025-03-09"])
    assert app.title[0].value == "Cycle times"


def test_cycle_times_from_a_link_with_page_filters_and_a_focused_stage(log_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = open_page(log_dir, monkeypatch, "2_Cycle_times", facility=["NORTH-GENERAL"], priority=["routine", "stat"],
                    focus="approval")
    assert not app.exception
    assert app.multiselect(key="ct_priority").value == ["routine", "stat"]
    assert metrics(app)["Requisition to PO"] == "1.3 h"  # A and E: 80 min each
    slowest = app.dataframe[0].value
    assert slowest["case_id"].tolist() == ["REQ-E", "REQ-A", "REQ-H"]  # 3780 s, 3660 s, 1740 s
    app.multiselect(key="ct_priority").set_value(["stat"]).run()
    assert param(app, "priority") == ["stat"]
    assert app.dataframe[0].value["case_id"].tolist() == ["REQ-H"]


def test_cycle_times_stage_click_lists_slowest_and_a_row_opens_the_requisition(
        log_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = open_page(log_dir, monkeypatch, "2_Cycle_times")
    app.session_state["ct_stages"] = chart_click("match", "median")
    app.run()
    assert param(app, "focus") == ["match"]
    assert app.dataframe[0].value["case_id"].tolist() == ["REQ-A", "REQ-B"]  # 680100 s, 172500 s
    app.session_state["ct_slowest"] = {"selection": {"rows": [1], "columns": [], "cells": []}}
    app.run()
    assert not app.exception
    assert app.title[0].value == "Requisition"
    assert param(app, "requisition") == ["REQ-B"]


def test_cycle_times_empty_selection_says_so(log_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = open_page(log_dir, monkeypatch, "2_Cycle_times", facility=["EAST-CHILDRENS"], priority=["stat"])
    assert not app.exception
    assert "No requisition in this selection" in app.info[0].value


def test_stalled_approvals_riskiest_first_with_csv(log_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = open_page(log_dir, monkeypatch, "3_Stalled_approvals")
    assert not app.exception
    assert metrics(app)["Stalled requisitions"] == "2"
    table = app.dataframe[0].value
    assert table["case_id"].tolist() == ["REQ-H", "REQ-D"]
    assert table["waiting_on"].tolist() == ["erp", "SOUTH-COMMUNITY/APPROVER-L2"]
    assert table["system"].tolist() == ["10.0 d", "3.0 h"]
    assert app.get("download_button")[0].proto.label == "Download CSV"
    app.session_state["stall_table"] = {"selection": {"rows": [1], "columns": [], "cells": []}}
    app.run()
    assert param(app, "requisition") == ["REQ-D"]


def test_stalled_approvals_as_of_a_linked_moment_and_priority(log_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = open_page(log_dir, monkeypatch, "3_Stalled_approvals", as_of="2025-03-04T11:00:00+00:00")
    assert not app.exception
    assert app.dataframe[0].value["case_id"].tolist() == ["REQ-H"]
    app = open_page(log_dir, monkeypatch, "3_Stalled_approvals", as_of="2025-03-03T10:00:00+00:00")
    assert "No requisition is stalled" in app.success[0].value
    app = open_page(log_dir, monkeypatch, "3_Stalled_approvals", priority=["routine"])
    assert app.dataframe[0].value["case_id"].tolist() == ["REQ-D"]


def test_requisition_deep_link_shows_its_whole_timeline(log_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = open_page(log_dir, monkeypatch, "4_Requisition", requisition="REQ-B")
    assert not app.exception
    assert (metrics(app)["Status"], metrics(app)["Priority"], metrics(app)["Value"]) == ("paid", "urgent", "400.00 USD")
    assert any("known from spans only: receipt" in caption.value for caption in app.caption)
    events, spans = app.dataframe[0].value, app.dataframe[1].value
    assert len(events) == 12 and sorted(set(events["system"])) == ["ap", "erp", "procurement"]
    assert spans["name"].tolist() == ["POST /receipts"]
    assert len(app.get("plotly_chart")) == 3  # stages, events, spans


def test_requisition_by_po_number_and_unknown_ids(log_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = open_page(log_dir, monkeypatch, "4_Requisition", requisition="P-B")
    assert param(app, "requisition") == ["REQ-B"]
    app = open_page(log_dir, monkeypatch, "4_Requisition", requisition="REQ-ZZZ")
    assert not app.exception
    assert app.warning[0].value == "No requisition 'REQ-ZZZ'."
    app = open_page(log_dir, monkeypatch, "4_Requisition")
    assert "Enter a requisition id" in app.info[0].value


def test_pages_on_an_empty_warehouse(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    executive = open_page(data_dir, monkeypatch, "1_Executive")
    assert not executive.exception and "No requisition in this selection" in executive.info[0].value
    stalled = open_page(data_dir, monkeypatch, "3_Stalled_approvals")
    assert not stalled.exception and stalled.info[0].value == "No business event loaded yet."
