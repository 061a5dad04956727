"""Integration health: what is failing now, where, since when and how much; SLO burn and backlog per flow.

Refreshes itself every 30 s (a fragment, so filters and the selected heatmap cell stay as they are).
Clicking a heatmap cell narrows the interfaces and the failure list to that facility and stage; the cell
is kept in the URL (?cell=FACILITY|stage) so the view is a shareable link.
"""

import plotly.express as px
import streamlit as st

from metrics import drift, failures, slo
from r2p.ui import clicked, frame

AUTO_REFRESH_S = 30
INPUT_LABELS = {"spans": "Integration operations (spans)", "transactions": "Business transactions (events)"}
TRACE_PAGE = "pages/7_Trace.py"

page = frame("Integration health")

if "health_input" not in st.session_state:
    wanted = st.query_params.get("input", "spans")
    st.session_state["health_input"] = wanted if wanted in failures.INPUTS else "spans"
chosen_input = st.radio("Failures of", failures.INPUTS, format_func=INPUT_LABELS.get, horizontal=True,
                        key="health_input")
st.query_params["input"] = chosen_input


def percent(value) -> str:
    return "–" if value is None or value != value else f"{value:.1%}"


def selected_cell(event) -> tuple[str, str] | None:
    """The clicked heatmap cell (facility, stage), else the one in the URL."""
    value = clicked(event)
    if value and "|" in value:
        facility, stage = value.split("|", 1)
        st.query_params["cell"] = value
        return facility, stage
    if "cell" in st.query_params and "|" in st.query_params["cell"]:
        facility, stage = st.query_params["cell"].split("|", 1)
        return facility, stage
    return None


@st.fragment(run_every=AUTO_REFRESH_S)
def live() -> None:
    con, filters = page.con, page.filters
    totals = failures.totals(con, filters, chosen_input)
    attempted, failed, rate = st.columns(3)
    attempted.metric("Attempted", f"{totals['attempts']:,}")
    failed.metric("Failed", f"{totals['failures']:,}")
    change = None
    if totals["failure_rate"] is not None and totals["previous_rate"] is not None:
        change = f"{(totals['failure_rate'] - totals['previous_rate']) * 100:+.2f} pp vs previous period"
    rate.metric("Failure rate", percent(totals["failure_rate"]), change, delta_color="inverse",
                help=f"95 % Wilson interval {percent(totals['ci_low'])} – {percent(totals['ci_high'])}; "
                     f"previous period {totals['previous_failures']:,} of {totals['previous_attempts']:,}")

    st.subheader("Failure rate by facility and stage")
    cells = failures.heatmap(con, filters, chosen_input)
    cell = None
    if cells.empty:
        st.info("Nothing attempted in this selection.")
    else:
        cells["cell"] = cells["facility_id"] + "|" + cells["stage"]
        cells["label"] = [f"{f}/{a}" for f, a in zip(cells["failures"], cells["attempts"])]
        cells["interval"] = [f"{percent(low)} – {percent(high)}" for low, high in zip(cells["ci_low"], cells["ci_high"])]
        figure = px.scatter(
            cells, x="stage", y="facility_id", color="failure_rate", text="label", custom_data=["cell"],
            hover_data={"attempts": True, "failures": True, "interval": True, "cell": False, "label": False},
            color_continuous_scale="Reds", range_color=(0, max(0.05, float(cells["failure_rate"].max()))),
            labels={"failure_rate": "failure rate", "facility_id": "facility"},
        )
        figure.update_traces(marker={"symbol": "square", "size": 46}, textfont={"size": 10})
        figure.update_layout(height=120 + 60 * cells["facility_id"].nunique(), clickmode="event+select")
        event = st.plotly_chart(figure, on_select="rerun", selection_mode="points", key="health_heatmap")
        cell = selected_cell(event)
        st.caption("Cells read failures/attempts; hover for the 95 % interval. Click a cell to drill into it.")

    left, right = st.columns(2)
    with left:
        where = f" in {cell[0]} · {cell[1]}" if cell else ""
        st.subheader(f"Top failing interfaces{where}")
        interfaces = failures.by_dimension(con, filters, "interface", chosen_input,
                                           facility_id=None if not cell or cell[0] == "(none)" else cell[0],
                                           stage=None if not cell or cell[1] == "(none)" else cell[1])
        if not interfaces.empty:
            interfaces["trace"] = [f"./Trace?trace={t}" if isinstance(t, str) else None
                                   for t in interfaces["sample_failed_trace_id"]]
        st.dataframe(
            interfaces, hide_index=True, key="health_interfaces",
            column_order=["interface", "failures", "attempts", "failure_rate", "ci_low", "ci_high", "change",
                          "first_failure_at", "last_failure_at", "trace"],
            column_config={
                "failure_rate": st.column_config.NumberColumn("rate", format="percent"),
                "ci_low": st.column_config.NumberColumn("95 % low", format="percent"),
                "ci_high": st.column_config.NumberColumn("95 % high", format="percent"),
                "change": st.column_config.NumberColumn("change", format="percent",
                                                        help="Rate minus the previous period's rate"),
                "trace": st.column_config.LinkColumn("trace", display_text="open"),
            },
        )
    with right:
        st.subheader(f"Latest failures{where}")
        failed_now = failures.failed_operations(con, filters, chosen_input,
                                                facility_id=cell[0] if cell else None,
                                                stage=cell[1] if cell else None, limit=50)
        if failed_now.empty:
            st.success("No failure in this slice.")
        for row in failed_now.head(8).itertuples():
            business = row.po_number if isinstance(row.po_number, str) else None
            label = f"{'PO ' + business if business else row.object_id or row.trace_id} · {row.system} · {row.error_type}"
            query = {"po": business} if business else {"trace": row.trace_id} if isinstance(row.trace_id, str) else None
            if query:
                st.page_link(TRACE_PAGE, label=label, query_params=query, icon="🔎")
        if len(failed_now) > 8:
            with st.expander(f"All {len(failed_now)} latest failures"):
                st.dataframe(failed_now, hide_index=True)

    st.subheader("Business SLOs: error budget burn")
    rates = slo.burn_rates(con, facilities=filters.facilities)
    st.dataframe(
        rates, hide_index=True, key="health_slo",
        column_order=["flow", "stage", "slo_target", "sla_s", "eligible", "bad", "budget_remaining",
                      "fast_long_burn", "fast_short_burn", "slow_long_burn", "slow_short_burn", "burning"],
        column_config={
            "slo_target": st.column_config.NumberColumn("target", format="percent"),
            "sla_s": st.column_config.NumberColumn("within (s)"),
            "budget_remaining": st.column_config.NumberColumn("budget left", format="percent"),
            "fast_long_burn": st.column_config.NumberColumn("1 h burn", format="%.1fx"),
            "fast_short_burn": st.column_config.NumberColumn("5 min burn", format="%.1fx"),
            "slow_long_burn": st.column_config.NumberColumn("6 h burn", format="%.1fx"),
            "slow_short_burn": st.column_config.NumberColumn("30 min burn", format="%.1fx"),
        },
    )

    st.subheader("Backlog per flow")
    backlog = drift.backlog_business(con, filters)
    st.dataframe(
        backlog, hide_index=True, key="health_backlog",
        column_order=["flow", "facility_id", "waiting_objects", "past_sla_objects", "waiting_amount", "waiting_stat",
                      "waiting_urgent", "business_drain_h", "queue_backlog", "oldest_message_age_s",
                      "queue_time_to_drain_s", "dead_letter_depth", "observed_at"],
        column_config={"business_drain_h": st.column_config.NumberColumn("drain (h)", format="%.1f"),
                       "waiting_amount": st.column_config.NumberColumn("money waiting", format="%.0f")},
    )
    observed = sorted(backlog.loc[backlog["observed_at"].notna(), "flow"].unique())
    for flow in observed:
        series = drift.backlog_over_time(con, filters, flow)
        if series.empty:
            continue
        figure = px.line(series, x="observed_at", y=["backlog", "dead_letter_depth"], title=flow,
                         labels={"value": "messages", "variable": ""})
        st.plotly_chart(figure, key=f"health_backlog_{flow}")


live()
