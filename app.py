"""R2P Observatory home: the Overview of business events and integration operations by stage and facility."""

import plotly.express as px
import streamlit as st

from metrics import overview
from r2p.demo import land_demo_in_child_process
from r2p.ui import frame

page = frame("Overview")

if overview.is_empty(page.con):
    st.info(
        "The warehouse is empty. Load data with `r2p ingest traces|backlog|transactions PATH...` "
        "(the dashboard picks new batches up by itself), or load the demo health system now."
    )
    if st.button("Load the demo health system", type="primary", key="load_demo"):
        with st.spinner("Simulating the demo health system and ingesting it (about a minute)..."):
            result = land_demo_in_child_process(page.warehouse.data_dir)
        if result.returncode:
            st.error(f"Loading the demo failed: {result.stderr.strip().splitlines()[-1]}")
            st.stop()
        page.warehouse.refresh()
        st.rerun()
    st.stop()

totals = overview.totals(page.con, page.filters)
events, spans = st.columns(2)
events.metric("Business events", f"{totals['events']:,}", help="Transaction events from ERP, procurement, warehouse, EDI and AP systems.")
events.metric("Failed or exception events", f"{totals['failed_events']:,}")
spans.metric("Integration operations (spans)", f"{totals['spans']:,}", help="OpenTelemetry spans from the integration services.")
spans.metric("Failed operations", f"{totals['failed_spans']:,}")

INPUT_LABELS = {"transactions": "business events", "spans": "integration operations"}
by_stage = overview.activity_by(page.con, page.filters, "stage").replace({"input": INPUT_LABELS})
by_facility = overview.activity_by(page.con, page.filters, "facility_id").replace({"input": INPUT_LABELS})

st.subheader("By stage")
st.plotly_chart(
    px.bar(by_stage, x="stage", y="records", color="input", barmode="group", hover_data=["failures"],
           labels={"records": "count", "input": ""}),
    key="overview_by_stage",
)
st.subheader("By facility")
st.plotly_chart(
    px.bar(by_facility, x="facility_id", y="records", color="input", barmode="group", hover_data=["failures"],
           labels={"records": "count", "facility_id": "facility", "input": ""}),
    key="overview_by_facility",
)
