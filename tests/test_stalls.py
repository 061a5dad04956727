"""Stalled approvals as of any moment on the hand-made log of test_cycle_times, with the human / system split.

REQ-D (routine, 48 h SLA) waits on its level-2 approver from day 0 09:00:05; its approval callback
failed at day 1 10:00 and was retried at 12:00 (2 h on the system) and a reminder sat in a queue from
13:00:01 to 14:00:01 (1 h). REQ-H (stat, 2 h SLA) waits on a failed budget check from day 0 08:31. The
data's latest event is REQ-A's payment, day 10 09:00.
"""

from __future__ import annotations

import pytest

from metrics import stalls
from metrics.filters import Filters
from samples import loaded_warehouse
from test_cycle_times import at, procurement_log


@pytest.fixture(scope="module")
def con(tmp_path_factory: pytest.TempPathFactory):
    data_dir = tmp_path_factory.mktemp("stalls") / "data"
    with loaded_warehouse(data_dir, procurement_log(), name="procurement-log") as warehouse:
        yield warehouse.reader()


def test_only_waits_that_can_outlast_their_sla_are_kept(con) -> None:
    rows = con.execute("SELECT case_id, event_type, started_at, ended_at FROM fct_approval_waits ORDER BY case_id").fetchall()
    assert rows == [("REQ-D", "APPROVAL_REQUESTED", at(0, "09:00:05"), None),
                    ("REQ-H", "BUDGET_CHECK_FAILED", at(0, "08:31"), None)]
    intervals = con.execute("SELECT case_id, started_at, ended_at FROM fct_approval_system_intervals ORDER BY 2").fetchall()
    assert intervals == [("REQ-D", at(1, "10:00"), at(1, "12:00")), ("REQ-D", at(1, "13:00:01"), at(1, "14:00:01"))]


def test_stalled_now_is_the_mart_sorted_by_risk(con) -> None:
    frame = stalls.stalled(con, Filters())
    assert frame["case_id"].tolist() == ["REQ-H", "REQ-D"]  # stat before routine
    h, d = frame.to_dict("records")
    assert (h["as_of"], h["stage"], h["waiting_on_kind"], h["waiting_on"], h["priority"]) == (
        at(10, "09:00"), "budget_check", "system", "erp", "stat")
    assert (h["age_s"], h["system_wait_s"], h["human_wait_s"], h["over_sla_s"]) == (865740, 865740, 0, 865740 - 7200)
    assert (d["stage"], d["approval_level"], d["waiting_on"], d["waiting_on_kind"]) == (
        "approval", 2, "SOUTH-COMMUNITY/APPROVER-L2", "approver")
    assert (d["age_s"], d["stage_age_s"], d["over_sla_s"]) == (863995, 867000, 863995 - 172800)
    assert (d["system_wait_s"], d["human_wait_s"], float(d["value"])) == (10800, 863995 - 10800, 25000)
    assert frame["aging"].tolist() == ["> 7 days", "> 7 days"]
    assert frame.equals(stalls.stalled(con, Filters(), as_of=at(10, "09:00")))


def test_as_of_a_moment_counts_only_what_had_happened(con) -> None:
    assert stalls.stalled(con, Filters(), as_of=at(0, "10:00")).empty  # H's 2 h not over yet
    early = stalls.stalled(con, Filters(), as_of=at(1, "11:00"))
    assert early[["case_id", "age_s", "aging"]].values.tolist() == [["REQ-H", 26 * 3600 + 29 * 60, "1-3 days"]]
    # One second past D's 48 h: the callback outage is system time, the queued reminder is too.
    later = stalls.stalled(con, Filters(), as_of=at(2, "09:00:06")).set_index("case_id")
    assert later.loc["REQ-D", ["age_s", "system_wait_s", "human_wait_s"]].tolist() == [172801, 10800, 172801 - 10800]
    midway = stalls.stalled(con, Filters(), as_of=at(1, "13:30:01"), priorities=("routine",))
    assert midway.empty  # D at 28.5 h is not stalled yet


def test_filters_priorities_and_aging_buckets(con) -> None:
    assert stalls.stalled(con, Filters(facilities=("SOUTH-COMMUNITY",)))["case_id"].tolist() == ["REQ-D"]
    assert stalls.stalled(con, Filters(), priorities=("stat",))["case_id"].tolist() == ["REQ-H"]
    assert stalls.stalled(con, Filters(stages=("approval",)), as_of=at(1, "11:00")).empty
    buckets = stalls.aging(stalls.stalled(con, Filters()))
    assert buckets.values.tolist() == [["NORTH-GENERAL", "stat", "> 7 days", 1, 3000.0],
                                       ["SOUTH-COMMUNITY", "routine", "> 7 days", 1, 25000.0]]
    assert stalls.wait_split(stalls.stalled(con, Filters())) == {"human_s": 863995 - 10800, "system_s": 865740 + 10800}
    assert stalls.latest_moment(con) == at(10, "09:00")
    assert stalls.stalled(con, Filters(), as_of=at(0, "07:00")).empty  # before any event
