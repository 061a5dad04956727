"""Issue 7's models against the simulator's ground truth: every injected stall appears in its facility, stage,
approval level and window, no stall is reported that the source systems contradict (nor missed), and the injected
slowdowns show in the cycle times of their stage where the incident was and not elsewhere. One small simulated
health system (14 days) is landed through the real collectors; the models are read through the functions the
pages call (metrics.stalls, metrics.cycle_times).

The ground truth is the simulator's manifest (each incident: kind, facility or supplier, stage, window, and what it
counted while generating) and its raw exports, read here with plain pandas, never through the warehouse.

Stalls are taken as of every hour of the run, and every 15 minutes from each stall incident's start until four
days after its end (the absent approver returns after the window and decides at the next business hour, which
may be after a weekend), so that a wait which breached its SLA shortly before its decision is still seen.

No false stall, precisely. Approvers keep business hours (weekdays 07:00-17:00 local; STAT round the clock)
while the SLA (STAT 2 h, urgent 8 h, routine 48 h) runs on the wall clock, so requisitions submitted before a
night or a weekend, or meeting a slow approver, really are past their SLA without any fault injected: those are
stalls and must be reported. What must never be reported is a stall the source systems contradict. A stall of
requisition R as of moment T, started at S, is true when, in the procurement suite's and both ERPs' exports:
(1) R's latest event at or before T happened at S and is a step that leaves R waiting in approval or budget
check (an approval requested or a level approved, a budget check passed, the final approval before its PO);
(2) R has no purchase order by T (no PO created, failed or numbered); (3) T - S exceeds the SLA of R's priority;
(4) a stall waiting on an approver names the approver role and level of the approval requested at S.
Any reported stall that fails one of these is false, and there must be none. Conversely none is missed: as of
every moment the list holds exactly the requisitions that (1) to (3) find in the exports. And every requisition
the manifest says was held past its SLA by an absent approver is reported with that facility, stage, level and
approver, started in the incident's window, as many as the simulator counted.

Slowdowns. Of the incidents with a stage in the manifest: an absent approver (stalled_approvals) lengthens the
approval stage of its facility's requisitions created in the window, checked where the approver came back
before the run ended (a wait still open has no duration yet: the stalls above cover it); a supplier whose
acknowledgments stop (missing_acks, stage supplier_ack) leaves its POs sent in the window without a
supplier_ack stage, so their PO-transmission stage lasts until the shipment. The late receipts' lag lies
inside the receipt stage (dock posting to ERP sync), which is measured by issue 8's sync drift
(tests/test_integration_incidents.py), not by a stage cycle time. The approval-before-budget-check race is not
checked as a slowdown: the models enter a stage at its first event when it has any (spans only fill in stages
without events), and this budget check's only event is the ERP's answer after the PO was created, so its
duration comes out negative rather than the suite's 30 s timeout that the request span shows.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from metrics import cycle_times, stalls
from metrics.filters import Filters
from r2p.demo import land_inputs
from r2p.landing import LandingZone
from r2p.warehouse import Warehouse
from simulator import SimulationConfig, simulate
from simulator.model import APPROVAL_SLA_H, LOCAL_ZONE

HOUR = pd.Timedelta(hours=1)
DAY = pd.Timedelta(days=1)
WAITING_STEPS = {"APPROVAL_REQUESTED", "LEVEL_APPROVED", "BUDGET_CHECK_PASSED", "REQUISITION_APPROVED"}
"""Events after which a requisition waits in approval or budget check (an approver, the ERP, or its PO)."""
PO_EVENTS = {"PO_CREATED", "PO_CREATION_FAILED", "PO_NUMBER_RECEIVED"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    """(read connection, manifest incidents, the raw exports' requisition events, the moments stalls are taken
    at, the stalled list as of each)."""
    root = tmp_path_factory.mktemp("procurement")
    config = SimulationConfig(seed=3, days=14, scale=0.03, snapshot_interval_s=900)
    manifest = simulate(config, root / "input").as_dict()
    land_inputs(root / "input", LandingZone(root / "data"))
    warehouse = Warehouse(root / "data")
    warehouse.refresh()
    con = warehouse.reader()
    incidents = manifest["incidents"]
    moments = stall_moments(con, incidents)
    yield con, incidents, exported_events(root / "input" / "transactions"), moments, stall_history(con, moments)
    warehouse.close()


def exported_events(transactions: Path) -> pd.DataFrame:
    """Every requisition event of the procurement suite, the cloud ERP and the legacy ERP, from their CSV exports
    (each in its own time format, EXPORTS.md): requisition, event, at (UTC), user, note, priority."""
    suite = pd.read_csv(transactions / "procurement.csv", dtype=str)
    suite = suite[suite["entity_type"] == "requisition"]
    erp = pd.read_csv(transactions / "erp.csv", dtype=str).dropna(subset=["REQUISITION"])
    legacy = pd.read_csv(transactions / "legacy-erp.csv", dtype=str).dropna(subset=["REQNO"])
    events = pd.concat([
        pd.DataFrame({"requisition": suite["requisition_number"], "event": suite["event_name"],
                      "at": pd.to_datetime(suite["event_timestamp"], utc=True, format="ISO8601"),
                      "user": suite["user"], "note": suite["note"], "priority": suite["priority"]}),
        pd.DataFrame({"requisition": erp["REQUISITION"], "event": erp["EVENT_CODE"],
                      "at": pd.to_datetime(erp["POSTING_TIME"]).dt.tz_localize(LOCAL_ZONE, ambiguous=True)
                      .dt.tz_convert("UTC")}),
        pd.DataFrame({"requisition": legacy["REQNO"], "event": legacy["TXNTYPE"],
                      "at": pd.to_datetime(legacy["TXNTIME_MS"].astype("int64"), unit="ms", utc=True)}),
    ], ignore_index=True)
    priority = events.dropna(subset=["priority"]).groupby("requisition")["priority"].first()
    return events.drop(columns="priority").join(priority, on="requisition")


def window(incident: dict) -> tuple[pd.Timestamp, pd.Timestamp]:
    return pd.Timestamp(incident["start"]), pd.Timestamp(incident["end"])


def of_kind(incidents: list[dict], kind: str) -> list[dict]:
    found = [incident for incident in incidents if incident["kind"] == kind]
    assert found, f"the simulation injected no {kind}"
    return found


def stall_moments(con, incidents: list[dict]) -> list[pd.Timestamp]:
    """Every hour of the run, and every 15 minutes around each stall incident (module docstring)."""
    latest = pd.Timestamp(stalls.latest_moment(con)).tz_convert("UTC")
    run_start = min(window(incident)[0] for incident in incidents)
    moments = set(pd.date_range(run_start + HOUR, latest, freq="h"))
    for incident in of_kind(incidents, "stalled_approvals"):
        start, end = window(incident)
        moments |= set(pd.date_range(start, min(end + 4 * DAY, latest), freq="15min"))
    return sorted(moments)


def stall_history(con, moments: list[pd.Timestamp]) -> pd.DataFrame:
    """The stalled-approvals list as of each moment, in one frame with as_of (UTC)."""
    frames = [stalls.stalled(con, Filters(), as_of=moment.to_pydatetime()) for moment in moments]
    history = pd.concat([frame for frame in frames if not frame.empty], ignore_index=True)
    return history.assign(as_of=history["as_of"].dt.tz_convert("UTC"),
                          started_at=history["started_at"].dt.tz_convert("UTC"))


def exported_stalls(events: pd.DataFrame, moments: list[pd.Timestamp]) -> pd.DataFrame:
    """(case_id, as_of, started_at) of every requisition the exports show stalled at a moment: its latest event
    by then leaves it waiting in approval or budget check, it has no PO yet, and that event is older than its
    priority's SLA (points 1 to 3 of the module docstring)."""
    pairs = events[["requisition"]].drop_duplicates().merge(pd.DataFrame({"as_of": moments}), how="cross")
    latest = pd.merge_asof(pairs.sort_values("as_of"), events[["requisition", "at"]].sort_values("at"),
                           left_on="as_of", right_on="at", by="requisition").dropna(subset=["at"])
    steps = events.groupby(["requisition", "at"])["event"].agg(frozenset).rename("steps")
    first_po = events[events["event"].isin(PO_EVENTS)].groupby("requisition")["at"].min().rename("first_po_at")
    priority = events.groupby("requisition")["priority"].first()
    latest = latest.join(steps, on=["requisition", "at"]).join(first_po, on="requisition").join(priority, on="requisition")
    sla = latest["priority"].map({name: pd.Timedelta(hours=hours) for name, hours in APPROVAL_SLA_H.items()})
    stalled = (latest["steps"].map(lambda names: bool(names & WAITING_STEPS))
               & (latest["first_po_at"].isna() | (latest["first_po_at"] > latest["as_of"]))
               & (latest["as_of"] - latest["at"] > sla))
    return latest[stalled].rename(columns={"requisition": "case_id", "at": "started_at"})[["case_id", "as_of", "started_at"]]


def test_each_absent_approver_is_reported_in_its_facility_stage_level_and_window(world) -> None:
    con, incidents, _, _, history = world
    for incident in of_kind(incidents, "stalled_approvals"):
        start, end = window(incident)
        at_site = history[(history["facility_id"] == incident["facility"]) & (history["stage"] == incident["stage"])
                          & (history["approval_level"] == incident["approval_level"])
                          & (history["waiting_on"] == incident["waiting_on"])
                          & (history["started_at"] >= start) & (history["started_at"] < end)]
        held = set(at_site["case_id"])
        observed = incident["observed"]
        assert len(held) == observed["count_over"], incident["id"]
        sample = set(observed["sample_requisitions"])
        assert sample <= held if observed["count_over"] > len(sample) else sample == held, incident["id"]
        # while the approver was away, the sampled requisitions stalled there and nowhere else
        theirs = history[history["case_id"].isin(sample) & (history["started_at"] < end)]
        assert set(theirs["facility_id"]) == {incident["facility"]}
        assert set(theirs["stage"]) == {incident["stage"]}
        assert set(theirs["approval_level"]) == {incident["approval_level"]}
        assert set(theirs["waiting_on"]) == {incident["waiting_on"]}
        assert ((theirs["started_at"] >= start) & (theirs["started_at"] < end)).all()
        # an absent approver is human time, all of it
        assert (at_site["waiting_on_kind"] == "approver").all()
        assert (at_site["system_wait_s"] == 0).all() and (at_site["human_wait_s"] == at_site["age_s"]).all()
        # those still waiting when the run ends are on the list as of now (the data's latest moment)
        now = stalls.stalled(con, Filters(facilities=(incident["facility"],)))
        now = now[(now["waiting_on"] == incident["waiting_on"]) & (now["started_at"] >= start) & (now["started_at"] < end)]
        assert len(now) == observed.get("still_waiting_at_end", 0), incident["id"]


def test_no_stall_is_reported_that_the_source_systems_contradict(world) -> None:
    _, _, events, moments, history = world
    truth = exported_stalls(events, moments)
    assert len(truth) > 0 and not history.empty
    keys = ["case_id", "as_of", "started_at"]
    compared = history.merge(truth.assign(exported=True), on=keys, how="outer", indicator=True)
    false = compared[compared["_merge"] == "left_only"]
    assert false.empty, false[[*keys, "stage", "waiting_on", "event_type"]]
    # and none is missed: the list as of every moment is exactly what the exports say
    missed = compared[compared["_merge"] == "right_only"]
    assert missed.empty, missed[keys]
    # (4) a stall waiting on an approver names the role and level of the approval requested when it started
    requested = events[events["event"] == "APPROVAL_REQUESTED"]
    requested = pd.DataFrame({"case_id": requested["requisition"], "started_at": requested["at"],
                              "waiting_on": requested["user"], "level": requested["note"]}).drop_duplicates()
    on_approvers = history[history["waiting_on_kind"] == "approver"]
    named = on_approvers.assign(level="level " + on_approvers["approval_level"].astype("string")).merge(
        requested, on=["case_id", "started_at", "waiting_on", "level"], how="left", indicator=True)
    assert len(named) == len(on_approvers) and (named["_merge"] == "both").all()


def test_an_absent_approver_slows_approval_at_its_facility_in_its_window_only(world) -> None:
    con, incidents, _, _, _ = world
    latest = pd.Timestamp(stalls.latest_moment(con)).tz_convert("UTC")
    resolved = [incident for incident in of_kind(incidents, "stalled_approvals")
                if window(incident)[1] + 4 * DAY < latest]
    assert resolved, "no stall incident ended early enough for its approvals to complete in the run"
    for incident in resolved:
        start, end = window(incident)
        created_in_window = Filters(start=start.date(), end=(end - DAY).date())
        by_facility = cycle_times.by_dimension(con, created_in_window, "approval", "facility_id").set_index("facility_id")
        slowed = by_facility.loc[incident["facility"], "p50_s"]
        others = by_facility.drop(index=incident["facility"])
        assert len(others) >= 3 and (slowed > 3 * others["p50_s"]).all(), by_facility
        before = cycle_times.summary(
            con, Filters(start=(start - 3 * DAY).date(), end=(start - DAY).date(), facilities=(incident["facility"],)),
            measures=("approval",)).iloc[0]
        assert before["cases"] >= 5 and slowed > 3 * before["p50_s"], before


def test_silent_supplier_leaves_its_pos_unacknowledged_until_the_shipment(world) -> None:
    con, incidents, _, _, _ = world
    (outage,) = of_kind(incidents, "missing_acks")
    start, end = window(outage)
    supplier = Filters(suppliers=(outage["supplier"],))
    acked = cycle_times.slowest(con, supplier, "supplier_ack", limit=10_000)
    assert not acked.empty and not ((acked["entered_at"] >= start) & (acked["entered_at"] < end)).any()
    everyone = cycle_times.slowest(con, Filters(), "po_transmission", limit=100_000)
    sent_in_window = (everyone["entered_at"] >= start) & (everyone["entered_at"] < end)
    silent = everyone[sent_in_window & (everyone["supplier_id"] == outage["supplier"])]["seconds"]
    answered = everyone[sent_in_window & (everyone["supplier_id"] != outage["supplier"])]["seconds"]
    before = everyone[~sent_in_window & (everyone["supplier_id"] == outage["supplier"])
                      & (everyone["entered_at"] < start)]["seconds"]
    assert len(silent) >= 3 and len(answered) >= 20 and len(before) >= 3
    assert silent.median() > 3 * answered.median() and silent.median() > 3 * before.median()
    overall = cycle_times.stage_breakdown(con, Filters(stages=("po_transmission",))).iloc[0]
    assert silent.median() > 3 * overall["p50_s"]
