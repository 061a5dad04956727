"""Cycle times: headline sub-cycles, a stage-by-stage waterfall, weekly trend, breakdowns and variants.

Click a stage bar to list its slowest requisitions (``?focus=<stage>``); pick a row to open it.
"""

import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from metrics import cycle_times
from r2p.ui import clicked, frame

page = frame("Cycle times")
options = page.options


def url_list(key: str) -> list[str]:
    return st.query_params.get_all(key)


def keep_in_url(key: str, values) -> None:
    if values:
        st.query_params[key] = values
    else:
        st.query_params.pop(key, None)


# Page filters beside the global ones, kept in the URL too.
narrow = st.columns(4)
dimensions = {}
for column, (name, label) in zip(narrow[:3], (("priority", "Priority"), ("department", "Department"),
                                               ("category", "Category"))):
    choices = cycle_times.distinct_values(page.con, name)
    if f"ct_{name}" not in st.session_state:
        st.session_state[f"ct_{name}"] = [value for value in url_list(name) if value in choices]
    dimensions[name] = column.multiselect(label, choices, key=f"ct_{name}")
    keep_in_url(name, dimensions[name])
measures = list(cycle_times.MEASURES)
if "ct_measure" not in st.session_state:
    st.session_state["ct_measure"] = st.query_params.get("measure") if st.query_params.get("measure") in measures \
        else "requisition_to_po"
measure = narrow[3].selectbox("Trend of", measures, key="ct_measure", format_func=lambda m: cycle_times.MEASURES[m].label)
st.query_params["measure"] = measure

summary = cycle_times.summary(page.con, page.filters, dimensions=dimensions)
if int(summary["cases"].sum()) == 0 and cycle_times.stage_breakdown(page.con, page.filters, dimensions).empty:
    st.info("No requisition in this selection: widen the filters.")
    st.stop()

tiles = st.columns(len(summary))
for tile, row in zip(tiles, summary.itertuples()):
    tile.metric(row.label, cycle_times.format_duration(row.p50_s), help=row.definition)
    tile.caption(f"median; p90 {cycle_times.format_duration(row.p90_s)}; n = {row.cases}")

st.subheader("Stage by stage")
stages = cycle_times.stage_breakdown(page.con, page.filters, dimensions)
if stages.empty:
    st.info("No case has left a stage in this selection.")
else:
    stages = stages.assign(
        start_h=stages["p50_s"].cumsum().shift(fill_value=0) / 3600, p50_h=stages["p50_s"] / 3600,
        label=[f"median {cycle_times.format_duration(p50)}, p90 {cycle_times.format_duration(p90)}, n = {n}"
               for p50, p90, n in zip(stages["p50_s"], stages["p90_s"], stages["cases"])],
    )
    figure = go.Figure(go.Bar(
        y=stages["stage"], x=stages["p50_h"], base=stages["start_h"], orientation="h",
        customdata=stages[["stage", "label"]], hovertemplate="%{customdata[0]}: %{customdata[1]}<extra></extra>",
    ))
    figure.update_layout(yaxis={"autorange": "reversed", "title": ""}, xaxis_title="hours (medians laid end to end)",
                         height=60 + 32 * len(stages))
    stage_event = st.plotly_chart(figure, on_select="rerun", selection_mode=("points",), key="ct_stages")
    focus = clicked(stage_event)
    if focus:
        st.query_params["focus"] = focus
    focus = st.query_params.get("focus")
    st.caption("Each bar: a stage's median time, from entering it to entering a later stage. Click one for its slowest requisitions.")
    if focus in cycle_times.STAGE_MEASURES:
        st.markdown(f"**Slowest in {focus}**")
        slowest = cycle_times.slowest(page.con, page.filters, focus, dimensions=dimensions)
        slowest = slowest.assign(time_in_stage=slowest["seconds"].map(cycle_times.format_duration))
        picked = st.dataframe(slowest[["case_id", "time_in_stage", "facility_id", "supplier_id", "priority", "value",
                                       "entered_at", "status"]],
                              hide_index=True, on_select="rerun", selection_mode="single-row", key="ct_slowest")
        links = st.columns(5)
        for link, case_id in zip(links, slowest["case_id"].head(5)):
            link.page_link("pages/4_Requisition.py", label=f"Open {case_id}", query_params={"requisition": case_id})
        if picked["selection"]["rows"]:
            st.switch_page("pages/4_Requisition.py",
                           query_params={"requisition": slowest["case_id"].iloc[picked["selection"]["rows"][0]]})

st.subheader(f"{cycle_times.MEASURES[measure].label} by week")
trend = cycle_times.weekly(page.con, page.filters, measure, dimensions=dimensions)
if trend.empty:
    st.info("No completed interval in this selection.")
else:
    long = trend.melt(id_vars=["week", "cases"], value_vars=["p50_s", "p90_s"], var_name="figure", value_name="seconds")
    long = long.assign(hours=long["seconds"] / 3600, figure=long["figure"].map({"p50_s": "median", "p90_s": "p90"}))
    st.plotly_chart(px.line(long, x="week", y="hours", color="figure", markers=True, hover_data=["cases"]),
                    key="ct_trend")
    changes = trend.assign(
        median=trend["p50_s"].map(cycle_times.format_duration), p90=trend["p90_s"].map(cycle_times.format_duration),
        change=trend["p50_change_s"].map(lambda s: None if s != s else ("+" if s >= 0 else "") + cycle_times.format_duration(s)),
        change_pct=trend["p50_change_pct"].round(1),
    )
    st.dataframe(changes[["week", "cases", "median", "p90", "change", "change_pct", "previous_cases"]],
                 hide_index=True, key="ct_changes", column_config={
                     "week": st.column_config.DateColumn("week (Monday)", format="YYYY-MM-DD"),
                     "change": "median change", "change_pct": st.column_config.NumberColumn("change %", format="%+.1f"),
                     "previous_cases": "cases the week before"})

st.subheader("Breakdown")
by = st.selectbox("By", list(cycle_times.DIMENSIONS), key="ct_by")
breakdown = cycle_times.by_dimension(page.con, page.filters, measure, by, dimensions)
if breakdown.empty:
    st.info("Nothing to break down.")
else:
    breakdown = breakdown.assign(**{by: breakdown[by].astype(str)}, p50_h=breakdown["p50_s"] / 3600,
                                 p90_h=breakdown["p90_s"] / 3600)
    st.plotly_chart(px.bar(breakdown, x=by, y=["p50_h", "p90_h"], barmode="group", hover_data=["cases"],
                           labels={"value": "hours", "variable": ""}), key="ct_breakdown")

st.subheader("Process variants")
variants = cycle_times.variants(page.con, page.filters, dimensions=dimensions)
variants = variants.assign(share=(100 * variants["share"]).round(1), median=variants["p50_s"].map(cycle_times.format_duration),
                           p90=variants["p90_s"].map(cycle_times.format_duration))
st.dataframe(variants[["variant", "cases", "share", "median", "p90"]], hide_index=True, key="ct_variants")
