"""Trace view: one trace's spans as a waterfall, reached from any business id (requisition, PO, receipt,
invoice) or a trace id: the search box, or ?po=... / ?requisition=... / ?receipt=... / ?invoice=... / ?trace=...
in the URL. Failing spans are marked, with their exception events."""

import json

import plotly.graph_objects as go
import streamlit as st

from metrics import traces
from r2p.ui import frame

ID_KEYS = ("po", "requisition", "receipt", "invoice", "id")

page = frame("Trace")
con = page.con

# A link (from another page, or to a linked trace on this one) seeds the search box; typing then rewrites the URL.
linked_value = next((st.query_params[key] for key in ("trace", *ID_KEYS) if key in st.query_params), "")
if st.session_state.get("_trace_seeded_from") != linked_value or "trace_search" not in st.session_state:
    st.session_state["trace_search"] = linked_value
    st.session_state["_trace_seeded_from"] = linked_value
search = st.text_input("Business id or trace id", key="trace_search",
                       placeholder="PO number, requisition, receipt or invoice id, or a 32-hex-digit trace id").strip()
if not search:
    st.info("Enter an id, or open a trace from a table on the Integration health or Sync drift page.")
    st.stop()

# Keep the URL a shareable link to what is shown.
for key in ("trace", *ID_KEYS):
    if st.query_params.get(key) not in (search, search.lower()):
        st.query_params.pop(key, None)
if traces.TRACE_ID.match(search.lower()):
    trace_id = search.lower()
    st.query_params["trace"] = trace_id
    st.session_state["_trace_seeded_from"] = trace_id
else:
    if not any(st.query_params.get(key) == search for key in ID_KEYS):
        st.query_params["id"] = search
    st.session_state["_trace_seeded_from"] = search
    found = traces.lookup(con, search)
    if found.empty:
        st.warning(f"No trace touched {search}.")
        st.stop()
    st.caption(f"{len(found)} trace(s) touched {search}, across services and broker hops.")
    found["label"] = [
        f"{'✖ ' if (errors or 0) > 0 else ''}{(start.strftime('%Y-%m-%d %H:%M:%S') if start == start and start is not None else 'spans not loaded')}"
        f" · {root_service or '?'} · {root_name or trace} ({via})"
        for trace, start, root_service, root_name, via, errors in zip(
            found["trace_id"], found["trace_start"], found["root_service"], found["root_name"], found["via"],
            found["error_count"].fillna(0))
    ]
    labels = dict(zip(found["trace_id"], found["label"]))
    first_failing = found.loc[found["error_count"].fillna(0) > 0, "trace_id"]
    default = first_failing.iloc[0] if not first_failing.empty else found["trace_id"].iloc[0]
    ids = list(labels)
    trace_id = st.radio("Traces", ids, index=ids.index(default), format_func=labels.get, key=f"trace_pick_{search}")

extent = traces.summary(con, trace_id)
if extent is None:
    st.warning(f"No span of trace {trace_id} has been loaded (a business event names it).")
    st.stop()
spans = traces.spans(con, trace_id)
st.subheader(f"Trace {trace_id}")
duration, count, errors = st.columns(3)
duration.metric("Duration", f"{extent['duration_ms']:,.0f} ms")
count.metric("Spans", f"{extent['span_count']:,}")
errors.metric("Failing spans", f"{extent['error_count']:,}")

failing = spans[spans["is_error"]]
for row in failing.itertuples():
    problem = row.error_type or (row.exceptions[0]["type"] if len(row.exceptions) else "error")
    st.error(f"Failing span: {row.service_name} · {row.name} — {problem}: {row.status_message or ''}".rstrip(": "))

labels = [f"{'  ' * depth}{'✖ ' if error else ''}{service} · {name}"
          for depth, error, service, name in zip(spans["depth"], spans["is_error"], spans["service_name"], spans["name"])]
rows = list(range(len(spans)))  # one row per span, even when two spans read alike
figure = go.Figure(go.Bar(
    y=rows, x=spans["duration_ms"].clip(lower=0.5), base=spans["offset_ms"], orientation="h",
    marker={"color": ["#d62728" if error else "#1f77b4" for error in spans["is_error"]]},
    customdata=spans["span_id"], text=labels, textposition="none", hovertemplate="%{text}<br>start +%{base:.1f} ms, %{x:.1f} ms<extra></extra>",
))
figure.update_yaxes(autorange="reversed", tickfont={"family": "monospace"}, tickmode="array", tickvals=rows,
                    ticktext=labels)
figure.update_layout(height=160 + 28 * len(spans), xaxis_title="ms since the trace started", margin={"l": 10})
st.plotly_chart(figure, key="trace_waterfall")

st.dataframe(
    spans, hide_index=True, key="trace_spans",
    column_order=["depth", "service_name", "name", "kind", "status_code", "duration_ms", "offset_ms", "error_type",
                  "http_status_code", "facility_id", "supplier_id", "stage", "requisition_id", "po_number",
                  "receipt_id", "invoice_id", "start_time"],
)
for row in spans.itertuples():
    if row.is_error or len(row.exceptions):
        with st.expander(f"{'✖ ' if row.is_error else ''}{row.service_name} · {row.name}: attributes and exceptions"):
            st.json(json.loads(row.attributes or "{}"))
            for exception in row.exceptions:
                st.code(f"{exception['type']}: {exception['message']}\n{exception['stacktrace'] or ''}")

linked = sorted({t for links in spans["links"] for t in links} | set(traces.linked_from(con, trace_id)))
if linked:
    st.caption("Linked traces (broker hops)")
    for other in linked:
        st.page_link("pages/7_Trace.py", label=other, query_params={"trace": other}, icon="🔗")
