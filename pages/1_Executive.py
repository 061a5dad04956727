"""Executive overview: KPI tiles with trends and definitions, cycle-time trend with p50/p90, facility comparison.

Click a facility bar to open its cycle times; click a week of the trend to open that week's cycle times.
"""

import datetime as dt

import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from metrics import cycle_times, executive
from r2p.ui import clicked, frame

page = frame("Executive overview")


def shown(tile: dict) -> str:
    if tile["value"] is None:
        return "—"
    return cycle_times.format_duration(tile["value"]) if tile["unit"] == "s" else f"{100 * tile['value']:.1f} %"


def delta(tile: dict) -> str | None:
    if tile["change"] is None:
        return None
    if tile["unit"] == "s":
        return f"{'+' if tile['change'] >= 0 else ''}{cycle_times.format_duration(tile['change'])} vs week before"
    return f"{100 * tile['change']:+.1f} pts vs week before"


tiles = executive.tiles(page.con, page.filters)
if all(tile["value"] is None for tile in tiles):
    st.info("No requisition in this selection yet: widen the filters or load data.")
    st.stop()

columns = st.columns(3)
for position, tile in enumerate(tiles):
    with columns[position % 3]:
        st.metric(
            tile["label"], shown(tile), delta(tile),
            delta_color="normal" if tile["better"] is None or tile["better"] == (tile["change"] > 0) else "inverse",
            help=tile["definition"],
        )
        week = tile["week"].strftime("%d %b") if tile["week"] is not None else "no week"
        st.caption(f"{tile['definition']} Week of {week}, n = {int(tile['count'])}.")

measure = st.radio(
    "Cycle-time trend", ["requisition_to_po", "end_to_end"], horizontal=True, key="exec_measure",
    format_func=lambda name: cycle_times.SUB_CYCLES[name].label,
)
trend = cycle_times.weekly(page.con, page.filters, measure)
st.subheader(f"{cycle_times.SUB_CYCLES[measure].label} by week (hours)")
if trend.empty:
    st.info("No completed interval in this selection.")
else:
    trend = trend.assign(week_id=trend["week"].dt.strftime("%Y-%m-%d"), p50_h=trend["p50_s"] / 3600, p90_h=trend["p90_s"] / 3600)
    figure = go.Figure([
        go.Scatter(x=trend["week"], y=trend["p90_h"], name="p90", mode="lines+markers", line={"dash": "dot"},
                   customdata=trend[["week_id"]], hovertemplate="p90 %{y:.1f} h<extra></extra>"),
        go.Scatter(x=trend["week"], y=trend["p50_h"], name="median", mode="lines+markers", fill="tonexty",
                   customdata=trend[["week_id", "cases"]].astype(str),
                   hovertemplate="median %{y:.1f} h, n = %{customdata[1]}<extra></extra>"),
    ])
    figure.update_layout(yaxis_title="hours", xaxis_title="week", height=320)
    week_event = st.plotly_chart(figure, on_select="rerun", selection_mode=("points",), key="exec_trend")
    chosen_week = clicked(week_event)
    if chosen_week:
        start = dt.date.fromisoformat(chosen_week)
        st.switch_page("pages/2_Cycle_times.py", query_params={
            "from": start.isoformat(), "to": (start + dt.timedelta(days=6)).isoformat(),
            "facility": list(page.filters.facilities), "measure": measure})
    st.caption("Shaded: between median and p90. Click a week to open its cycle times.")

st.subheader("Facilities")
comparison = executive.facility_comparison(page.con, page.filters)
if comparison.empty:
    st.info("No facility in this selection.")
else:
    bars = comparison.dropna(subset=["requisition_to_po_p50_s"]).assign(
        hours=lambda frame: frame["requisition_to_po_p50_s"] / 3600)
    figure = px.bar(bars, x="facility_id", y="hours", custom_data=["facility_id"], hover_data=["po_cases"],
                    labels={"facility_id": "facility", "hours": "requisition to PO, median hours", "po_cases": "cases"})
    facility_event = st.plotly_chart(figure, on_select="rerun", selection_mode=("points",), key="exec_facilities")
    chosen = clicked(facility_event)
    if chosen:
        query = {"facility": chosen, "measure": measure}
        for key, value in (("from", page.filters.start), ("to", page.filters.end)):
            if value:
                query[key] = value.isoformat()
        st.switch_page("pages/2_Cycle_times.py", query_params=query)
    st.caption("Click a facility to open its cycle times.")
    table = comparison.assign(**{
        "requisition to PO (median)": comparison["requisition_to_po_p50_s"].map(cycle_times.format_duration),
        "end to end (median)": comparison["end_to_end_p50_s"].map(cycle_times.format_duration),
        **{executive.KPIS[name].label: (100 * comparison[name]).round(1) for name in executive.RATES},
    })
    st.dataframe(table[["facility_id", "po_cases", "requisition to PO (median)", "paid_cases", "end to end (median)",
                        *[executive.KPIS[name].label for name in executive.RATES]]],
                 hide_index=True, key="exec_facility_table")
