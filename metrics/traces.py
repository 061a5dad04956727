"""Business-keyed trace lookup and one trace's spans, from fct_trace_index, fct_trace_summary and spans.

``lookup`` probes the index (sorted by business id) for every trace that touched an id; ``spans`` reads
one trace's spans within the trace's extent from fct_trace_summary, so neither scans the raw tables.
"""

from __future__ import annotations

import re

import duckdb
import pandas as pd

TRACE_ID = re.compile(r"^[0-9a-f]{32}$")


def lookup(con: duckdb.DuckDBPyConnection, business_id: str) -> pd.DataFrame:
    """Every trace that touched ``business_id`` (any key type), earliest first.

    Columns: trace_id, key_type, via, trace_start, trace_end, span_count, error_count, root_service, root_name.
    """
    return con.execute(
        """
        SELECT trace_id, key_type, via, trace_start, trace_end, span_count, error_count, root_service, root_name
        FROM fct_trace_index WHERE business_id = $id
        ORDER BY trace_start NULLS LAST, trace_id, key_type
        """,
        {"id": business_id.strip()},
    ).df()


def summary(con: duckdb.DuckDBPyConnection, trace_id: str) -> dict | None:
    """fct_trace_summary's row of one trace, or None when no span of it was loaded."""
    frame = con.execute("SELECT * FROM fct_trace_summary WHERE trace_id = $t", {"t": trace_id.lower()}).df()
    return None if frame.empty else frame.iloc[0].to_dict()


def spans(con: duckdb.DuckDBPyConnection, trace_id: str) -> pd.DataFrame:
    """The spans of one trace in waterfall order (parents before children, siblings by start).

    Columns: span_id, parent_span_id, depth, service_name, name, kind, start_time, end_time, offset_ms
    (start after the trace's start), duration_ms, status_code, status_message, is_error, error_type,
    http_status_code, the business columns, attributes (JSON text), exceptions (list of
    {type, message, stacktrace, time} from exception events), links (list of linked trace ids).
    """
    extent = summary(con, trace_id)
    if extent is None:
        return pd.DataFrame()
    params = {"t": trace_id.lower(), "start": extent["trace_start"], "end": extent["trace_end"]}
    frame = con.execute(
        """
        WITH trace_spans AS (
            SELECT * FROM spans WHERE trace_id = $t AND start_time BETWEEN $start AND $end
        ),
        exceptions AS (
            SELECT span_id, list({'type': attributes ->> 'exception.type', 'message': attributes ->> 'exception.message',
                                  'stacktrace': attributes ->> 'exception.stacktrace', 'time': time} ORDER BY event_index)
                AS exceptions
            FROM span_events WHERE trace_id = $t AND name = 'exception' AND time BETWEEN $start AND $end
            GROUP BY span_id
        ),
        links AS (
            SELECT span_id, list(DISTINCT linked_trace_id) AS linked_traces FROM span_links WHERE trace_id = $t GROUP BY span_id
        )
        SELECT s.span_id, s.parent_span_id, s.service_name, s.name, s.kind, s.start_time, s.end_time,
            date_diff('microsecond', $start::TIMESTAMPTZ, s.start_time) / 1000.0 AS offset_ms, s.duration_ms,
            s.status_code, s.status_message, s.status_code = 'error' AS is_error, s.error_type, s.http_status_code,
            s.facility_id, s.supplier_id, s.stage, s.requisition_id, s.po_number, s.receipt_id, s.invoice_id,
            s.object_type, s.object_id, s.source_system, s.target_system, s.priority, s.attributes,
            coalesce(e.exceptions, []) AS exceptions, coalesce(l.linked_traces, []) AS links
        FROM trace_spans s LEFT JOIN exceptions e USING (span_id) LEFT JOIN links l USING (span_id)
        ORDER BY s.start_time, s.span_id
        """,
        params,
    ).df()
    return _waterfall_order(frame)


def linked_from(con: duckdb.DuckDBPyConnection, trace_id: str) -> list[str]:
    """Traces with a span that links to a span of ``trace_id`` (e.g. the consumers of its messages)."""
    rows = con.execute(
        "SELECT DISTINCT trace_id FROM span_links WHERE linked_trace_id = $t AND trace_id <> $t ORDER BY 1",
        {"t": trace_id.lower()},
    ).fetchall()
    return [row[0] for row in rows]


def _waterfall_order(frame: pd.DataFrame) -> pd.DataFrame:
    """Depth-first order of the span tree; spans whose parent is missing start their own branch."""
    present = set(frame["span_id"])
    children: dict[str | None, list[int]] = {}
    for position, (span_id, parent) in enumerate(zip(frame["span_id"], frame["parent_span_id"])):
        children.setdefault(parent if parent in present else None, []).append(position)
    order, depths = [], {}
    stack = [(position, 0) for position in reversed(children.get(None, []))]
    while stack:
        position, depth = stack.pop()
        order.append(position)
        depths[position] = depth
        stack.extend((child, depth + 1) for child in reversed(children.get(frame["span_id"].iat[position], [])))
    for position in range(len(frame)):  # spans caught in a parent cycle: shown flat at the end
        if position not in depths:
            order.append(position)
            depths[position] = 0
    ordered = frame.iloc[order].copy()
    ordered.insert(2, "depth", [depths[position] for position in order])
    return ordered.reset_index(drop=True)
