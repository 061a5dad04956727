"""Stalled approvals as of a moment: aging by facility and priority, the riskiest first, human vs system wait.

The moment is ``?as_of=`` (ISO 8601, UTC) or the data's latest event; pick a row to open the requisition.
"""

import datetime as dt

import plotly.express as px
import streamlit as st

from metrics import cycle_times, stalls
from r2p.schema import PRIORITIES
from r2p.ui import frame

page = frame("Stalled approvals")

latest = stalls.latest_moment(page.con)
if latest is None:
    st.info("No business event loaded yet.")
    st.stop()

as_of = None
try:
    as_of = dt.datetime.fromisoformat(st.query_params["as_of"]) if "as_of" in st.query_params else None
except ValueError:
    st.warning(f"Ignored as_of={st.query_params['as_of']!r}: not an ISO 8601 moment.")
if as_of is not None and as_of.tzinfo is None:
    as_of = as_of.replace(tzinfo=dt.timezone.utc)

controls = st.columns([1, 1, 2])
moment = as_of or latest
if "stall_day" not in st.session_state:
    st.session_state["stall_day"] = moment.date()
    st.session_state["stall_time"] = moment.time().replace(microsecond=0, tzinfo=None)
day = controls[0].date_input("As of (UTC day)", key="stall_day")
clock = controls[1].time_input("time", key="stall_time", step=dt.timedelta(minutes=15))
chosen = dt.datetime.combine(day, clock, tzinfo=dt.timezone.utc)
if abs((chosen - latest).total_seconds()) < 60 and as_of is None:
    chosen = None  # the data's now: the mart
else:
    st.query_params["as_of"] = chosen.isoformat()
if "stall_priority" not in st.session_state:
    st.session_state["stall_priority"] = [p for p in st.query_params.get_all("priority") if p in PRIORITIES]
priorities = controls[2].multiselect("Priority", list(PRIORITIES), key="stall_priority")
if priorities:
    st.query_params["priority"] = priorities
else:
    st.query_params.pop("priority", None)

stalled = stalls.stalled(page.con, page.filters, as_of=chosen, priorities=tuple(priorities))
st.caption(f"As of {(chosen or latest):%Y-%m-%d %H:%M} UTC (the data's latest event: {latest:%Y-%m-%d %H:%M}). "
           "Stalled: waiting at the current approval or budget-check step longer than the priority's SLA "
           "(STAT 2 h, urgent 8 h, routine 48 h).")
if stalled.empty:
    st.success("No requisition is stalled in approval or budget check in this selection.")
    st.stop()

split = stalls.wait_split(stalled)
tiles = st.columns(4)
tiles[0].metric("Stalled requisitions", f"{len(stalled):,}")
tiles[1].metric("Value waiting", f"{stalled['value'].astype(float).sum():,.0f}")
tiles[2].metric("Human wait", cycle_times.format_duration(split["human_s"]),
                help="Time pending with an approver, summed over the stalled requisitions.")
tiles[3].metric("System wait", cycle_times.format_duration(split["system_s"]),
                help="Time on systems: budget check or PO creation in progress, failed calls until retried, "
                     "messages sitting in a queue.")

st.subheader("Aging by facility and priority")
buckets = stalls.aging(stalled)
st.plotly_chart(
    px.bar(buckets, x="facility_id", y="requisitions", color="aging", facet_col="priority", hover_data=["value"],
           category_orders={"aging": [label for label, _ in stalls.AGE_BUCKETS], "priority": list(PRIORITIES)},
           labels={"facility_id": "facility"}),
    key="stall_aging",
)

st.subheader("Riskiest first")
table = stalled.assign(
    waiting=stalled["age_s"].map(cycle_times.format_duration),
    over_sla=stalled["over_sla_s"].map(cycle_times.format_duration),
    human=stalled["human_wait_s"].map(cycle_times.format_duration),
    system=stalled["system_wait_s"].map(cycle_times.format_duration),
    value=stalled["value"].astype(float),
)
columns = ["case_id", "priority", "facility_id", "stage", "approval_level", "waiting_on", "waiting", "over_sla",
           "human", "system", "value", "department", "supplier_id", "started_at"]
picked = st.dataframe(table[columns], hide_index=True, on_select="rerun", selection_mode="single-row", key="stall_table")
if picked["selection"]["rows"]:
    st.switch_page("pages/4_Requisition.py", query_params={"requisition": table["case_id"].iloc[picked["selection"]["rows"][0]]})
st.download_button(
    "Download CSV", stalled.drop(columns=["aging"]).to_csv(index=False).encode(),
    file_name=f"stalled-approvals-{(chosen or latest):%Y%m%dT%H%M}.csv", mime="text/csv", key="stall_csv",
)
