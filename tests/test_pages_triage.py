"""AppTest: the triage page ranks and explains the queue, decides in bulk, shows a group's detail, and
two sessions deciding on the same group at once keep both decisions (last write wins, flagged)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from r2p.landing import LandingZone
from r2p.triage import landed_events
from samples import land_records
from test_triage import DEADLOCK, T0, deadlock_span, receipt_failure, stat_requisition

REPO = Path(__file__).resolve().parents[1]
PAGE = "pages/8_Triage.py"


@pytest.fixture
def triage_data(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    land_records(data_dir, {
        "spans": [deadlock_span(n, T0 + dt.timedelta(hours=n)) for n in range(2)],
        "transaction_events": [stat_requisition(), *(receipt_failure(n, T0 + dt.timedelta(minutes=n)) for n in range(3))],
    })
    monkeypatch.setenv("R2P_DATA_DIR", str(data_dir))
    return data_dir


def session(name: str, **query: str) -> AppTest:
    # the page runs under the app's entry point, so its link to the trace page resolves as when served
    app = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
    app.switch_page(PAGE)
    for key, value in query.items():
        app.query_params[key] = value
    app.session_state["triage_user"] = name
    return app.run()


def test_queue_is_ranked_explained_and_bulk_acknowledged(triage_data: Path) -> None:
    app = session("alice")
    assert not app.exception
    queue = app.dataframe(key="queue").value
    assert list(queue["fingerprint"])[0] == DEADLOCK
    assert queue["risk_reasons"][0].startswith("2 on stat requisitions (+40)")
    assert list(queue["status"]) == ["new", "new"]
    app.session_state["queue"] = {"selection": {"rows": [0, 1], "columns": [], "cells": []}}
    app.run()
    assert app.subheader[0].value == "Decide on the 2 selected group(s)"
    app.selectbox(key="bulk_action").set_value("acknowledge")
    app.text_input(key="bulk_note").set_value("looking")
    app.button(key="bulk_apply").click().run()
    assert not app.exception
    assert [s.value for s in app.success] == [f"{fp}: acknowledge -> acknowledged" for fp in queue["fingerprint"]]
    assert app.dataframe(key="queue").value["status"].tolist() == ["acknowledged", "acknowledged"]
    events = landed_events(LandingZone(triage_data))
    assert sorted((e.action, e.changed_by, e.note, e.status_before) for e in events) == [
        ("acknowledge", "alice", "looking", "new")] * 2


def test_group_detail_from_a_shared_link(triage_data: Path) -> None:
    app = session("alice", group=DEADLOCK)
    assert not app.exception
    assert app.subheader[1].value == "legacy-erp-adapter · po_creation · SoapFaultException"
    metrics = {metric.label: metric.value for metric in app.metric}
    assert (metrics["Occurrences"], metrics["Facilities"], metrics["At stake"]) == ("2", "1", "4,200")
    assert any("[Runbook](https://runbooks.example.org/r2p/legacy-erp-adapter)" in m.value for m in app.markdown)
    assert app.selectbox(key="sample_trace").options == [f"{2:032x}", f"{1:032x}"]


def test_two_sessions_deciding_at_once_keep_both_decisions(triage_data: Path) -> None:
    alice = session("alice", group=DEADLOCK)
    bob = session("bob", group=DEADLOCK)  # both now see the group as new, with no decision
    alice.selectbox(key="single_action").set_value("acknowledge")
    alice.button(key="single_apply").click().run()
    assert [s.value for s in alice.success] == [f"{DEADLOCK}: acknowledge -> acknowledged"]
    bob.selectbox(key="single_action").set_value("resolve")
    bob.button(key="single_apply").click().run()
    assert not bob.exception
    assert len(bob.warning) >= 1 and bob.warning[0].value.startswith(
        f"{DEADLOCK}: resolve -> resolved (applied after alice's acknowledge at ")
    # A second click of the same form acts on the view that click showed: resolved, so it is refused.
    bob.selectbox(key="single_action").set_value("resolve")
    bob.button(key="single_apply").click().run()
    assert [e.value for e in bob.error] == [f"{DEADLOCK} is resolved: cannot resolve it"]
    events = landed_events(LandingZone(triage_data))
    assert [(e.changed_by, e.action, e.status_before, e.based_on_event_id) for e in events] == [
        ("alice", "acknowledge", "new", None), ("bob", "resolve", "new", None)]
    carol = session("carol", group=DEADLOCK)
    assert carol.warning[0].value.startswith("Some decisions were made on a stale view")
    history = next(frame.value for frame in carol.dataframe if "concurrent" in frame.value.columns)
    assert list(zip(history["changed_by"], history["status"], history["concurrent"])) == [
        ("bob", "resolved", True), ("alice", "acknowledged", False)]


def test_what_changed_compares_a_picked_spike_window_and_keeps_it_in_the_link(triage_data: Path) -> None:
    app = session("alice", group=DEADLOCK)
    assert not app.exception
    whole = app.dataframe(key="what_changed").value
    # both deadlocks (09:00 and 10:00) against the three receipt failures
    assert whole.set_index(["dimension", "value"]).loc[("facility_id", "EAST-LEGACY"), "count"] == 2
    slider = app.slider(key=f"spike_{DEADLOCK}")
    # whole hours around the group's first and last occurrence (AppTest reports them in epoch microseconds)
    assert (slider.min, slider.max) == (T0.timestamp() * 1e6, (T0 + dt.timedelta(hours=2)).timestamp() * 1e6)
    app = slider.set_value((T0 + dt.timedelta(hours=1), T0 + dt.timedelta(hours=2))).run()
    assert not app.exception
    assert app.query_params["spike"] == "2026-03-02T10:00:00+00:00/2026-03-02T11:00:00+00:00"
    spike = app.dataframe(key="what_changed").value.set_index(["dimension", "value"])
    # the 10:00 deadlock alone; the 09:00 one is now baseline beside the receipt failures
    assert spike.loc[("facility_id", "EAST-LEGACY"), ["count", "baseline_count"]].tolist() == [1, 1]
