"""One requisition end to end: its stages (a Gantt), its events from every system and the spans of its traces.

Reached from any table row or chart point, and by URL: ``?requisition=<case id>``.
"""

import plotly.express as px
import streamlit as st

from metrics import cycle_times, requisition
from r2p.ui import frame

page = frame("Requisition")

if "req_search" not in st.session_state:
    st.session_state["req_search"] = st.query_params.get("requisition", "")
wanted = st.text_input("Requisition, PO line or PO number", key="req_search").strip()
if not wanted:
    st.query_params.pop("requisition", None)
    st.info("Enter a requisition id (or a PO number), or open one from the Cycle times or Stalled approvals pages.")
    st.stop()

case = requisition.case(page.con, wanted)
if case is None:
    matches = requisition.find(page.con, wanted)
    if len(matches) == 1:
        case = requisition.case(page.con, matches[0])
    else:
        st.warning(f"No requisition {wanted!r}." + (" Did you mean:" if matches else ""))
        for match in matches:
            st.page_link("pages/4_Requisition.py", label=match, query_params={"requisition": match})
        st.stop()
st.query_params["requisition"] = case["case_id"]

st.subheader(case["case_id"])
tiles = st.columns(6)
tiles[0].metric("Status", case["status"])
tiles[1].metric("Current stage", case["current_stage"] or "—")
tiles[2].metric("Facility", case["facility_id"] or "—")
tiles[3].metric("Priority", case["priority"] or "—")
tiles[4].metric("Value", "—" if case["value"] is None else f"{float(case['value']):,.2f} {case['currency'] or ''}")
tiles[5].metric("First to last event", cycle_times.format_duration(case["end_to_end_s"]))
facts = [f"Supplier {case['supplier_id'] or '—'}", f"department {case['department'] or '—'}",
         f"POs {', '.join(case['po_numbers']) or '—'}", f"approval entries {case['approval_entries']}",
         f"returned {case['returned']}", f"exceptions {case['exceptions']}", f"variant: {case['variant']}"]
if case["stages_from_spans"]:
    facts.append(f"known from spans only: {', '.join(case['stages_from_spans'])}")
st.caption("; ".join(facts))

st.subheader("Stages")
bars = requisition.stage_bars(page.con, case["case_id"])
bars = bars.assign(time=bars["seconds"].map(cycle_times.format_duration))
gantt = px.timeline(bars, x_start="started_at", x_end="ended_at", y="stage", color="is_rework", hover_data=["time", "visit"],
                    labels={"is_rework": "rework"})
gantt.update_yaxes(autorange="reversed")
st.plotly_chart(gantt, key="req_gantt")

st.subheader("Events from every system")
events = requisition.events(page.con, case["case_id"])
if not events.empty:
    st.plotly_chart(px.scatter(events, x="occurred_at", y="system", color="stage", symbol="outcome",
                               hover_data=["event_type", "actor", "recorded_at"]), key="req_events_chart")
st.dataframe(events, hide_index=True, key="req_events")

st.subheader("Spans of its traces")
spans = requisition.spans(page.con, case["case_id"])
if spans.empty:
    st.caption("No span carries this requisition's ids.")
else:
    chart = px.timeline(spans, x_start="start_time", x_end="end_time", y="service_name", color="status_code",
                        hover_data=["name", "trace_id", "duration_ms", "error_type"])
    st.plotly_chart(chart, key="req_spans_chart")
    st.dataframe(spans, hide_index=True, key="req_spans")
