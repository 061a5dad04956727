"""Ingest: what landed, from where, and every record that was rejected with its reason."""

import streamlit as st

from metrics import ingest
from r2p.ui import frame

page = frame("Ingest")

st.caption("Collectors land immutable batches; the dashboard loads new ones every few seconds. Bad records are kept here, never dropped.")
st.subheader("Rejected records by reason")
reasons = ingest.rejects_by_reason(page.con)
if reasons.empty:
    st.success("No record has been rejected.")
else:
    st.dataframe(reasons, hide_index=True)
    st.subheader("Rejected records")
    st.dataframe(ingest.rejects(page.con), hide_index=True)
st.subheader("Batches")
st.dataframe(ingest.batches(page.con), hide_index=True)
