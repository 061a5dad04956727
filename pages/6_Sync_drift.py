"""Sync drift: per integration flow, how late objects reach their target, which are missing, where state
disagrees between systems, the oldest objects still waiting, and the match exceptions drift caused."""

import plotly.express as px
import streamlit as st

from metrics import drift
from metrics.flows import flows
from r2p.ui import frame

page = frame("Sync drift")
con, filters = page.con, page.filters


def trace_links(frame, column: str = "trace_id"):
    """A link column to the Trace page for rows that hold a trace."""
    frame["trace"] = [f"./Trace?trace={t}" if isinstance(t, str) else None for t in frame[column]]
    return frame


LINK = {"trace": st.column_config.LinkColumn("trace", display_text="open")}

summary = drift.flow_summary(con, filters)
if summary.empty:
    st.info("No object of a configured integration flow in this selection (flows: metrics/defaults/flows.toml, "
            "or flows.toml in the data directory).")
    st.stop()
for column in ("lag_p50_s", "lag_p95_s", "lag_max_s", "sla_s"):
    summary[column.replace("_s", "_min")] = summary[column] / 60
st.subheader("Flows")
st.dataframe(summary, hide_index=True, key="drift_summary",
             column_order=["flow", "objects", "synced", "late", "missing", "lag_p50_min", "lag_p95_min",
                           "lag_max_min", "sla_min"],
             column_config={name: st.column_config.NumberColumn(name.replace("_min", " (min)"), format="%.1f")
                            for name in ("lag_p50_min", "lag_p95_min", "lag_max_min", "sla_min")})

names = flows(con)["name"].tolist()
if "drift_flow" not in st.session_state:
    wanted = st.query_params.get("flow")
    st.session_state["drift_flow"] = wanted if wanted in names else summary["flow"].iloc[0]
flow = st.selectbox("Flow", names, key="drift_flow")
st.query_params["flow"] = flow

lags = drift.lag_over_time(con, filters, flow)
missing = drift.missing_over_time(con, filters, flow)
left, right = st.columns(2)
if not lags.empty:
    lags[["p50 (min)", "p95 (min)", "max (min)"]] = lags[["lag_p50_s", "lag_p95_s", "lag_max_s"]] / 60
    left.plotly_chart(px.line(lags, x="period", y=["p50 (min)", "p95 (min)", "max (min)"], log_y=True,
                              title=f"{flow}: lag per day", labels={"value": "minutes", "variable": ""}),
                      key="drift_lag_chart")
if not missing.empty:
    right.plotly_chart(px.line(missing, x="hour_end", y="missing", line_shape="hv",
                               title=f"{flow}: missing past SLA"), key="drift_missing_chart")

by_facility, by_supplier = st.columns(2)
by_facility.caption("By facility")
by_facility.dataframe(drift.drift_by(con, filters, "facility_id", flow), hide_index=True, key="drift_by_facility")
by_supplier.caption("By supplier")
by_supplier.dataframe(drift.drift_by(con, filters, "supplier_id", flow), hide_index=True, key="drift_by_supplier")

st.subheader("Oldest unsynced objects")
waiting = drift.oldest_unsynced(con, filters, flow)
waiting["age_h"] = waiting["age_s"] / 3600
st.dataframe(trace_links(waiting), hide_index=True, key="drift_unsynced",
             column_order=["object_key", "source_system", "source_at", "age_h", "is_past_sla", "facility_id",
                           "supplier_id", "priority", "amount", "po_number", "trace"],
             column_config={**LINK, "age_h": st.column_config.NumberColumn("age (h)", format="%.1f")})

st.subheader("State drift")
states = drift.state_drift(con, filters)
states["duration_h"] = states["duration_s"] / 3600
st.dataframe(states, hide_index=True, key="drift_states",
             column_order=["flow", "object_key", "source_value", "target_value", "drift_start", "drift_end",
                           "duration_h", "is_open", "supplier_id", "facility_id"],
             column_config={"duration_h": st.column_config.NumberColumn("lasted (h)", format="%.1f")})

st.subheader("Three-way-match exceptions and their integration cause")
integration, total = drift.integration_share(con, filters)
if total:
    st.metric("Match exceptions caused by integration drift", f"{integration / total:.0%}",
              help=f"{integration:,} of {total:,} invoices that failed three-way match in this selection")
    attribution = drift.match_attribution(con, filters)
    st.plotly_chart(px.bar(attribution, x="invoices", y="cause", orientation="h", hover_data=["share", "amount"]),
                    key="drift_attribution")
    st.dataframe(trace_links(drift.match_exceptions(con, filters)), hide_index=True, key="drift_exceptions",
                 column_order=["invoice_id", "exception_at", "exception_type", "cause", "cause_detail", "facility_id",
                               "supplier_id", "po_number", "receipt_id", "amount", "exception_count", "trace"],
                 column_config=LINK)
else:
    st.success("No invoice failed three-way match in this selection.")
