"""AppTest of the integration pages' wiring: Integration health (heatmap cell drill, failure links, SLO and
backlog tables), Sync drift (flows, unsynced, state drift, match attribution) and Trace (from ?po= and ?trace=)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from r2p import schema
from samples import land_records
from test_drift import T0, drift_records

REPO = Path(__file__).resolve().parents[1]
PO_TRACE = f"{0xF0:032x}"


def po_trace() -> list[schema.Span]:
    """PO-77 at NORTH-GENERAL: its transmission call to the ERP is throttled (429) once, then succeeds."""
    context = {"facility_id": "NORTH-GENERAL", "supplier_id": "S07", "stage": "po_transmission", "po_number": "PO-77"}

    def span(n: int, name: str, service: str, start_ms: int, end_ms: int, parent: int | None, error: bool = False):
        return schema.Span(
            trace_id=PO_TRACE, span_id=f"{n:016x}", parent_span_id=None if parent is None else f"{parent:016x}",
            name=name, kind="client" if parent else "consumer", start_time=T0 + dt.timedelta(milliseconds=start_ms),
            end_time=T0 + dt.timedelta(milliseconds=end_ms), duration_ms=float(end_ms - start_ms),
            status_code="error" if error else "ok", status_message="429 Too Many Requests" if error else None,
            service_name=service, error_type="429" if error else None, http_status_code=429 if error else 200,
            attributes=json.dumps({"http.request.method": "POST"}), resource_attributes="{}", **context,
        )

    return [
        span(1, "process erp.po.outbound", "erp-integration", 0, 3000, None),
        span(2, "POST /api/v1/purchase-orders", "erp-integration", 10, 300, 1, error=True),
        span(3, "POST /api/v1/purchase-orders", "erp-integration", 2300, 2600, 1),
    ]


@pytest.fixture
def landed(data_dir: Path) -> Path:
    records = drift_records()
    records["spans"] = records["spans"] + po_trace()
    land_records(data_dir, records)
    return data_dir


def run_page(data_dir: Path, monkeypatch: pytest.MonkeyPatch, script: str, **query: str) -> AppTest:
    monkeypatch.setenv("R2P_DATA_DIR", str(data_dir))
    # Pages run under the app's entry point, so links to other pages resolve as in the served dashboard.
    app = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
    app.switch_page(script)
    for key, value in query.items():
        app.query_params[key] = value
    return app.run()


def table(app: AppTest, *columns: str):
    """The one table on the page holding all these columns (tables without selection carry no key)."""
    found = [frame.value for frame in app.dataframe if set(columns) <= set(frame.value.columns)]
    assert len(found) == 1, f"{len(found)} tables with {columns}"
    return found[0]


def metrics(app: AppTest) -> dict[str, str]:
    return {metric.label: metric.value for metric in app.metric}


def test_integration_health_drills_into_the_clicked_cell(landed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = run_page(landed, monkeypatch, "pages/5_Integration_health.py")
    assert not app.exception
    # spans: the dead-letter consumer (ok) and the 3 PO spans, one failed
    assert metrics(app)["Attempted"] == "4" and metrics(app)["Failed"] == "1"
    assert metrics(app)["Failure rate"] == "25.0%"
    heatmap = app.get("plotly_chart")[0].proto.spec
    assert "NORTH-GENERAL|po_transmission" in heatmap
    links = [link.proto.label for link in app.get("page_link")]
    assert links == ["PO PO-77 · erp-integration · 429"]
    app.session_state["health_heatmap"] = {"selection": {"points": [{"customdata": ["(none)|(none)"]}],
                                                         "point_indices": [0], "box": [], "lasso": []}}
    app.run()
    assert app.query_params["cell"] == "(none)|(none)"
    assert "Top failing interfaces in (none) · (none)" in [header.value for header in app.subheader]
    assert app.success[0].value == "No failure in this slice."
    assert not app.get("page_link")
    slo_table = table(app, "flow", "budget_remaining")
    assert slo_table["flow"].tolist() == ["po-ack", "po-transmission", "receipt-sync", "supplier-master"]
    backlog = table(app, "queue_backlog")
    assert backlog.loc[backlog["facility_id"] == "NORTH-GENERAL", "queue_backlog"].tolist() == [4]


def test_integration_health_business_failures_from_the_url(landed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = run_page(landed, monkeypatch, "pages/5_Integration_health.py", input="transactions")
    assert not app.exception
    assert app.radio(key="health_input").value == "transactions"
    # 6 match exceptions and the failed ASN of 19 events (8 receipt, 4 supplier, 6 match, 1 ASN)
    assert (metrics(app)["Attempted"], metrics(app)["Failed"]) == ("19", "7")


def test_sync_drift_page(landed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = run_page(landed, monkeypatch, "pages/6_Sync_drift.py", flow="receipt-sync")
    assert not app.exception
    assert app.selectbox(key="drift_flow").value == "receipt-sync"
    summary = table(app, "synced").set_index("flow")
    assert summary.loc["receipt-sync", ["objects", "late", "missing"]].tolist() == [4, 1, 1]
    assert table(app, "is_past_sla")["object_key"].tolist() == ["GR-3"]
    assert table(app, "source_value")["object_key"].tolist() == ["S11"]
    assert metrics(app)["Match exceptions caused by integration drift"] == "80%"
    exceptions = table(app, "cause_detail").set_index("invoice_id")
    assert exceptions.loc["INV-5", "trace"] == f"./Trace?trace={0xD1:032x}"
    app.selectbox(key="drift_flow").set_value("supplier-master").run()
    assert app.query_params["flow"] == "supplier-master"
    assert table(app, "is_past_sla").empty


def test_trace_page_from_a_po_number_marks_the_failing_span(landed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = run_page(landed, monkeypatch, "pages/7_Trace.py", po="PO-77")
    assert not app.exception
    assert app.text_input(key="trace_search").value == "PO-77"
    assert app.error[0].value == "Failing span: erp-integration · POST /api/v1/purchase-orders — 429: 429 Too Many Requests"
    assert (metrics(app)["Spans"], metrics(app)["Failing spans"]) == ("3", "1")
    spans = table(app, "depth")
    assert spans["depth"].tolist() == [0, 1, 1] and spans["status_code"].tolist() == ["ok", "error", "ok"]
    app.text_input(key="trace_search").set_value("PO-404").run()
    assert app.warning[0].value == "No trace touched PO-404."
    assert app.query_params["id"] == "PO-404" and "po" not in app.query_params


def test_trace_page_from_a_trace_id(landed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = run_page(landed, monkeypatch, "pages/7_Trace.py", trace=PO_TRACE)
    assert not app.exception
    assert app.subheader[0].value == f"Trace {PO_TRACE}"
    empty = run_page(landed, monkeypatch, "pages/7_Trace.py")
    assert "Enter an id" in empty.info[0].value
