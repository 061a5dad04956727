"""One case end to end: its timeline row, stage visits (a Gantt), events from every system and its traces' spans."""

from __future__ import annotations

import duckdb
import pandas as pd


def case(con: duckdb.DuckDBPyConnection, case_id: str) -> dict | None:
    """The case's fct_requisition_timeline row as a dict, or None when there is no such case."""
    result = con.execute("SELECT * FROM fct_requisition_timeline WHERE case_id = $id", {"id": case_id})
    row = result.fetchone()
    return None if row is None else dict(zip([column[0] for column in result.description], row))


def find(con: duckdb.DuckDBPyConnection, text: str, limit: int = 20) -> list[str]:
    """Case ids containing ``text`` (case-insensitive), or whose POs do, shortest first."""
    rows = con.execute(
        """
        SELECT case_id FROM fct_requisition_timeline
        WHERE contains(lower(case_id), lower($text)) OR list_contains(po_numbers, $text)
        ORDER BY length(case_id), case_id LIMIT $limit
        """,
        {"text": text.strip(), "limit": limit},
    ).fetchall()
    return [row[0] for row in rows]


def stage_bars(con: duckdb.DuckDBPyConnection, case_id: str) -> pd.DataFrame:
    """The case's stage visits as Gantt bars: visit, stage, started_at, ended_at (the next visit's entry; the
    case's last event for the last visit), seconds, is_rework."""
    return con.execute(
        """
        WITH timeline AS (SELECT * FROM fct_requisition_timeline WHERE case_id = $id),
        transitions AS (SELECT * FROM fct_stage_durations WHERE case_id = $id)
        SELECT transition_index AS visit, from_stage AS stage, from_entered_at AS started_at,
            to_entered_at AS ended_at, duration_s AS seconds, is_rework
        FROM transitions
        UNION ALL
        SELECT coalesce((SELECT max(transition_index) FROM transitions), 0) + 1, timeline.current_stage,
            coalesce((SELECT max(to_entered_at) FROM transitions), timeline.first_event_at), timeline.last_event_at,
            epoch(timeline.last_event_at - coalesce((SELECT max(to_entered_at) FROM transitions), timeline.first_event_at)),
            coalesce((SELECT is_rework FROM transitions ORDER BY transition_index DESC LIMIT 1), false)
        FROM timeline
        ORDER BY visit
        """,
        {"id": case_id},
    ).df()


def _event_match(row: dict) -> tuple[str, dict[str, object]]:
    """The WHERE clause selecting the case's events, by the case rule of int_case_events."""
    if row["requisition_id"] is not None:
        return (
            "(requisition_id = $requisition OR (requisition_id IS NULL AND list_contains($pos, po_number)))",
            {"requisition": row["requisition_id"], "pos": list(row["po_numbers"])},
        )
    po_number, _, line = row["case_id"].partition("/")
    return (
        "(requisition_id IS NULL AND po_number = $po AND po_line IS NOT DISTINCT FROM $line)",
        {"po": po_number, "line": int(line) if line else None},
    )


def events(con: duckdb.DuckDBPyConnection, case_id: str) -> pd.DataFrame:
    """Every business event of the case from every system, in occurred_at order (recorded_at beside it)."""
    row = case(con, case_id)
    if row is None:
        return pd.DataFrame()
    where, params = _event_match(row)
    return con.execute(
        f"""
        SELECT occurred_at, recorded_at, system, stage, event_type, outcome, actor, amount, currency,
            po_number, po_line, receipt_id, invoice_id, trace_id, event_id
        FROM transaction_events WHERE {where} AND stage IS NOT NULL
        ORDER BY occurred_at, event_id
        """,
        params,
    ).df()


def spans(con: duckdb.DuckDBPyConnection, case_id: str) -> pd.DataFrame:
    """The spans of the case's traces: every span of a trace that one of its events or spans belongs to."""
    row = case(con, case_id)
    if row is None:
        return pd.DataFrame()
    where, params = _event_match(row)
    span_where = where.replace("po_line IS NOT DISTINCT FROM $line", "$line IS NULL")
    return con.execute(
        f"""
        WITH traces AS (
            SELECT trace_id FROM transaction_events WHERE {where} AND trace_id IS NOT NULL
            UNION
            SELECT trace_id FROM spans WHERE {span_where}
        )
        SELECT trace_id, span_id, parent_span_id, name, kind, service_name, stage, start_time, end_time,
            duration_ms, status_code, error_type, http_status_code
        FROM spans WHERE trace_id IN (SELECT trace_id FROM traces)
        ORDER BY start_time, trace_id, span_id
        """,
        params,
    ).df()
