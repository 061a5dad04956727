"""Exception triage: the queue ranked by clinical risk, bulk decisions, and one group's detail."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import plotly.express as px
import streamlit as st

from metrics import traces
from metrics import triage as queries
from r2p import triage as decisions
from r2p.errors import UserError
from r2p.ui import frame

page = frame("Exception triage")
settings = queries.load_settings()
TRACE_PAGE = "pages/7_Trace.py"
ACTIONS = {"acknowledge": "Acknowledge", "resolve": "Resolve", "ignore": "Ignore", "reopen": "Reopen",
           "assign": "Assign", "note": "Add a note"}


def who() -> str | None:
    """The login name when login is on, else the name the user entered once (kept in session state)."""
    user = getattr(st, "user", None)
    try:
        if user is not None and user.is_logged_in:
            return user.get("name") or user.get("email")
    except (AttributeError, KeyError):  # no authentication configured
        pass
    st.sidebar.text_input("Your name, for the triage history", key="triage_user")
    return (st.session_state.get("triage_user") or "").strip() or None


def apply(rows: list[dict], action: str, assignee: str, note: str, ignore_until: dt.date | None) -> None:
    """Land one decision per group, based on the version each row showed; keep the outcome for the next run."""
    name = who_name
    if not name:
        st.session_state["triage_outcome"] = [("error", "Enter your name in the sidebar first: decisions carry it.")]
        return
    until = dt.datetime.combine(ignore_until, dt.time(), dt.timezone.utc) if action == "ignore" and ignore_until else None
    outcome = []
    for row in rows:
        seen = shown_before.get(row["fingerprint"]) or version(row)
        try:
            event = decisions.decide(seen, action, name, assignee=assignee if action == "assign" else None,
                                     note=note or None, ignore_until=until)
        except UserError as error:
            outcome.append(("error", str(error)))
            continue
        recorded = decisions.record(page.warehouse.landing, event)
        kind = "info" if not recorded.landed else "warning" if recorded.overtaken_by else "success"
        outcome.append((kind, recorded.line()))
    page.warehouse.refresh()
    st.session_state["triage_outcome"] = outcome


def version(row: dict) -> decisions.Seen:
    """The version of a group a row shows: its status and latest decision."""
    last = row["last_event_id"]
    return decisions.Seen(row["fingerprint"], row["status"], last if isinstance(last, str) else None)


def history_line(group: dict) -> str:
    """The group's latest decision in words."""
    latest = queries.history(page.con, group["fingerprint"]).iloc[0]
    return f"{latest['action']} by {latest['changed_by']} at {latest['changed_at']:%Y-%m-%d %H:%M} UTC"


def decision_form(key: str, rows: list[dict]) -> None:
    """The decision form for ``rows`` (the groups as this page showed them)."""
    with st.form(key):
        columns = st.columns([2, 2, 3, 2])
        action = columns[0].selectbox("Action", list(ACTIONS), format_func=ACTIONS.get, key=f"{key}_action")
        assignee = columns[1].text_input("Assignee (for assign)", key=f"{key}_assignee")
        note = columns[2].text_input("Note", key=f"{key}_note")
        until = columns[3].date_input("Ignore until (empty: until it escalates)", value=None, key=f"{key}_until")
        label = f"Apply to {len(rows)} group{'s' if len(rows) != 1 else ''}"
        if st.form_submit_button(label, type="primary", disabled=not rows, key=f"{key}_apply"):
            apply(rows, action, assignee, note, until)
            st.rerun()


def spike_window(group: dict) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The spike the user picked between the group's first and last occurrence (whole hours, UTC), kept in
    the URL as ``spike=<start>/<end>``; (None, None) for all of the group's occurrences."""
    first = group["first_seen"].to_pydatetime().replace(minute=0, second=0, microsecond=0)
    last = group["last_seen"].to_pydatetime().replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
    if last - first <= dt.timedelta(hours=1):
        return None, None
    chosen = (first, last)
    if "/" in st.query_params.get("spike", ""):
        try:
            start, end = (dt.datetime.fromisoformat(part) for part in st.query_params["spike"].split("/", 1))
            chosen = (max(first, min(start, last)), min(last, max(end, first)))
        except ValueError:  # a hand-edited link: fall back to the whole span
            pass
    start, end = st.slider("Spike window (UTC)", min_value=first, max_value=last, value=chosen,
                           step=dt.timedelta(hours=1), format="YYYY-MM-DD HH:mm", key=f"spike_{group['fingerprint']}")
    if (start, end) == (first, last):
        st.query_params.pop("spike", None)
        return None, None
    st.query_params["spike"] = f"{start.isoformat()}/{end.isoformat()}"
    return start, end


who_name = who()
# A decision is based on the version its author saw: the one the previous run showed, not one
# re-read while the submit reruns this script (that would hide a concurrent change).
shown_before: dict[str, decisions.Seen] = st.session_state.get("triage_shown", {})
for kind, message in st.session_state.pop("triage_outcome", []):
    getattr(st, kind)(message)

# The queue.
status_choices = list(decisions.STATUSES)
if "triage_statuses" not in st.session_state:
    from_url = [s for s in st.query_params.get_all("status") if s in status_choices]
    st.session_state["triage_statuses"] = from_url or list(queries.OPEN_STATUSES)
statuses = st.multiselect("Status", status_choices, key="triage_statuses")
st.query_params["status"] = statuses
focus = None
if "=" in st.query_params.get("focus", ""):
    dimension, value = st.query_params["focus"].split("=", 1)
    if dimension in queries.DIMENSIONS or dimension.startswith(queries.ATTRIBUTE_PREFIX):
        focus = (dimension, value)
if focus:
    chip, clear = st.columns([6, 1])
    chip.info(f"Only groups with an occurrence where **{focus[0]} = {focus[1]}**")
    if clear.button("Clear", key="clear_focus"):
        del st.query_params["focus"]
        st.rerun()

queue = queries.queue(page.con, page.filters, tuple(statuses), focus, settings)
st.caption(f"{len(queue)} group(s); select rows for bulk decisions, one row for its detail.")
shown = queue[["risk", "status", "occurrences", "daily_counts", "last_seen", "system", "stage", "error_type",
               "masked_message", "facility_count", "amount", "assignee", "risk_reasons", "fingerprint"]]
selection = st.dataframe(
    shown, key="queue", on_select="rerun", selection_mode="multi-row", hide_index=True,
    column_config={
        "daily_counts": st.column_config.LineChartColumn("Last 14 days"),
        "risk": st.column_config.NumberColumn("Risk", format="%.1f"),
        "amount": st.column_config.NumberColumn("At stake", format="%.0f"),
        "masked_message": "Message",
        "risk_reasons": "Why this rank",
        "facility_count": "Facilities",
    },
)
selected_rows = [queue.iloc[i].to_dict() for i in selection.selection.rows if i < len(queue)]
with st.expander("How the queue is ranked"):
    weights = settings.rank
    st.markdown(
        f"Risk is a sum of points, each factor between 0 and its weight: a **stat** requisition affected "
        f"(+{weights.stat:g}, urgent half), a **critical item** ({', '.join(settings.critical_items)}) "
        f"(+{weights.critical_item:g}), a critical facility (+{weights.critical_facility:g}), the **money at stake** "
        f"(up to +{weights.value:g} at {weights.value_scale:,.0f}, log scale), the **occurrences** (up to "
        f"+{weights.volume:g} at {weights.volume_scale:,.0f}, log scale), the share of **facilities** touched "
        f"(+{weights.breadth:g}), **reopened** after a resolve or ignore (+{weights.regressed:g}), **rising** over "
        f"the last 24 h (+{weights.trend:g}), **age** (up to +{weights.age:g} at {weights.age_scale_days:g} days), "
        f"the **SLO of its flow burning** (a fast or slow burn alert of `r2p check`) in an hour it occurred "
        f"(+{weights.slo_burn:g}) and **acute**: every occurrence within {weights.acute_days:g} days of the first, "
        f"an incident rather than chronic background (+{weights.acute:g}). "
        "Each row's *Why this rank* lists its points. Weights: metrics/defaults/triage.toml."
    )
exports = st.columns(4)
exports[0].download_button("Queue as CSV", queries.export(queue, "csv"), "exception-queue.csv", "text/csv")
exports[1].download_button("Queue as Parquet", queries.export(queue, "parquet"), "exception-queue.parquet")

st.subheader(f"Decide on the {len(selected_rows)} selected group(s)" if selected_rows else "Select groups to decide on them")
decision_form("bulk", selected_rows)

# One group's detail.
if len(selected_rows) == 1:
    st.query_params["group"] = selected_rows[0]["fingerprint"]
fingerprint = st.query_params.get("group")
group = queries.group(page.con, fingerprint, settings) if fingerprint else None
st.session_state["triage_shown"] = {row["fingerprint"]: version(row) for row in
                                   ([group] if group is not None else []) + queue.to_dict("records")}
if fingerprint and group is None:
    st.warning(f"No exception group {fingerprint} in the warehouse.")
if group is not None:
    st.divider()
    st.subheader(f"{group['system']} · {group['stage'] or 'no stage'} · {group['error_type']}")
    st.markdown(f"`{group['masked_message'] or '(no message)'}`  \nStatus **{group['status']}**"
                + (f" (assigned to {group['assignee']})" if group["assignee"] else ""))
    if group["decisions"]:
        st.caption(f"Last decision: {history_line(group)}; {group['decisions']} decision(s) in the History tab.")
    if group["reopened_reason"]:
        st.error(f"Reopened ({group['reopened_reason']}) at {group['reopened_at']:%Y-%m-%d %H:%M} UTC: "
                 f"it was {group['recorded_status']} since {group['status_changed_at']:%Y-%m-%d %H:%M} UTC.")
    cells = st.columns(5)
    cells[0].metric("Occurrences", f"{group['occurrences']:,}")
    cells[1].metric("First seen", f"{group['first_seen']:%Y-%m-%d %H:%M}")
    cells[2].metric("Last seen", f"{group['last_seen']:%Y-%m-%d %H:%M}")
    cells[3].metric("Facilities", group["facility_count"])
    cells[4].metric("At stake", f"{group['amount']:,.0f}" if pd.notna(group["amount"]) else "-")
    st.caption(f"Risk {group['risk']:.1f}: {group['risk_reasons']}")
    links = [f"[Link to share](?group={fingerprint})"]
    if group["runbook"]:
        links.append(f"[Runbook]({group['runbook']})")
    st.markdown(" · ".join(links))
    decision_form("single", [group])

    timeline_tab, affected_tab, trace_tab, changed_tab, history_tab, occurrences_tab = st.tabs(
        ["Timeline", "Affected", "Sample trace", "What changed", "History", "Occurrences"])
    with timeline_tab:
        timeline = queries.timeline(page.con, fingerprint)
        st.plotly_chart(px.bar(timeline, x="bucket", y="occurrences", color="source"), key="timeline")
    with affected_tab:
        st.write("Facilities: " + (", ".join(group["facilities"]) or "-") + " · Suppliers: "
                 + (", ".join(group["suppliers"]) or "-"))
        st.dataframe(queries.affected_objects(page.con, fingerprint), hide_index=True)
    with trace_tab:
        samples = list(group["sample_traces"])
        if not samples:
            st.info("No occurrence of this group carries a trace id.")
        else:
            trace_id = st.selectbox("Trace", samples, key="sample_trace")
            spans = traces.spans(page.con, trace_id)
            if spans.empty:
                st.info("The spans of this trace are not loaded.")
            else:
                spans = spans.assign(label=[f"{'  ' * d}{s}: {n}" for d, s, n in
                                            zip(spans["depth"], spans["service_name"], spans["name"])])
                figure = px.bar(spans, x="duration_ms", base="offset_ms", y="label", orientation="h",
                                color="status_code", color_discrete_map={"error": "#d62728", "ok": "#2ca02c",
                                                                         "unset": "#7f7f7f"})
                figure.update_yaxes(autorange="reversed", title=None)
                figure.update_xaxes(title="ms from the trace's start")
                st.plotly_chart(figure, key="waterfall")
            if Path(TRACE_PAGE).exists():
                st.page_link(TRACE_PAGE, label="Open in the trace view", query_params={"trace": trace_id})
    with changed_tab:
        st.caption("Values over-represented in this group's occurrences (within the spike window when one is "
                   "picked) against every other occurrence in the filters (lift = share here / share there). "
                   "Select a row to filter the queue by it.")
        spike = spike_window(group)
        changed = queries.what_changed(page.con, fingerprint, page.filters, *spike)
        picked = st.dataframe(changed, key="what_changed", on_select="rerun", selection_mode="single-row",
                              hide_index=True, column_config={"lift": st.column_config.NumberColumn(format="%.1f"),
                                                              "share": st.column_config.NumberColumn(format="percent"),
                                                              "baseline_share": st.column_config.NumberColumn(format="percent")})
        if picked.selection.rows:
            row = changed.iloc[picked.selection.rows[0]]
            st.query_params["focus"] = f"{row['dimension']}={row['value']}"
            st.rerun()
    with history_tab:
        history = queries.history(page.con, fingerprint)
        if history.empty:
            st.info("No triage decision yet.")
        else:
            if history["concurrent"].any():
                st.warning("Some decisions were made on a stale view (another decision landed in between): "
                           "the later one wins; both are kept below.")
            st.dataframe(history[["changed_at", "changed_by", "action", "status_seen", "status", "assignee", "note",
                                  "ignore_until", "concurrent"]], hide_index=True)
    with occurrences_tab:
        occurrences = queries.occurrences(page.con, fingerprint)
        downloads = st.columns(4)
        downloads[0].download_button("Occurrences as CSV", queries.export(occurrences, "csv"),
                                     f"exception-{fingerprint}.csv", "text/csv")
        downloads[1].download_button("Occurrences as Parquet", queries.export(occurrences, "parquet"),
                                     f"exception-{fingerprint}.parquet")
        st.dataframe(occurrences.head(500), hide_index=True)
