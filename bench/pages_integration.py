"""The integration pages' query speed (issue 8): ``python -m bench pages_integration [--events N] [--spans N] [--runs N]``.

``python -m bench pages`` calls ``extend`` on its 10 M-event warehouse, so its figures include these; this
module's own ``run`` builds the same synthetic events (bench.pages.generate) without issue 7's timings.

``extend`` adds, in DuckDB SQL: ``spans`` spans (default 10 M) in traces of five (a warehouse-system
receipt post and publish, the ERP integration's consumer, its ERP API call, 2 % of them throttled with an
exception event, and the ERP server span), inserted in time order as collectors land them; a span link
from each consumer to its producer; and the receipt
flow's business events (posted in the warehouse system, synced to ERP: 1 % late, 0.1 % never), with a
three-way-match exception for 2 % of them. It rebuilds the marts, then times each integration page's query
functions as the page calls them (no filter, warm, median of ``runs``) and the trace lookup by a PO number.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

from bench._timing import median_ms_per_page
from metrics import build, drift, failures, overview, slo, traces
from metrics.filters import Filters

SPANS_PER_TRACE = 5


def add_spans_and_receipts(con: duckdb.DuckDBPyConnection, spans: int, cases: int) -> int:
    """Insert the synthetic receipt traces and events (see the module docstring); returns the number of traces."""
    count = max(1, spans // SPANS_PER_TRACE)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE receipts AS
        SELECT range AS n, 'GR-' || range AS receipt_id, 'PO-' || (hash(range, 'po') % {cases}) AS po_number,
            'FAC-' || (hash(range, 'f') % 5) AS facility_id, 'S' || lpad((hash(range, 's') % 40)::VARCHAR, 2, '0') AS supplier_id,
            TIMESTAMPTZ '2025-01-06 00:00:00+00' + to_seconds((hash(range, 't') % (70 * 86400))::BIGINT) AS posted,
            hash(range, 'e') % 1000 AS roll,
            md5('trace' || range) AS trace_id  -- random-looking, as real trace ids are (zone maps key on prefixes)
        FROM range({count})
    """)
    con.execute("""
        INSERT INTO spans BY NAME
        SELECT r.trace_id, lpad(to_hex(r.n * 8 + s.k), 16, '0') AS span_id,
            CASE WHEN s.k = 1 THEN NULL WHEN s.k = 3 THEN lpad(to_hex(r.n * 8 + 2), 16, '0')
                 WHEN s.k = 5 THEN lpad(to_hex(r.n * 8 + 4), 16, '0') ELSE lpad(to_hex(r.n * 8 + s.k - 1), 16, '0') END
                AS parent_span_id,
            s.name, s.kind,
            r.posted + to_microseconds((s.offset_ms * 1000)::BIGINT) AS start_time,
            r.posted + to_microseconds(((s.offset_ms + s.duration_ms) * 1000)::BIGINT) AS end_time, s.duration_ms,
            CASE WHEN s.k = 4 AND r.roll < 20 THEN 'error' ELSE 'ok' END AS status_code,
            CASE WHEN s.k = 4 AND r.roll < 20 THEN '429 Too Many Requests' END AS status_message,
            s.service_name, r.facility_id, r.supplier_id, 'receipt' AS stage, r.po_number, r.receipt_id,
            'receipt' AS object_type, r.receipt_id AS object_id, 'wms' AS source_system, 'erp' AS target_system,
            CASE WHEN s.k = 4 AND r.roll < 20 THEN '429' END AS error_type,
            CASE WHEN s.k IN (4, 5) THEN CASE WHEN r.roll < 20 THEN 429 ELSE 201 END END AS http_status_code,
            '{}' AS attributes, '{}' AS resource_attributes, 'bench-integration' AS batch_id
        FROM receipts r, (VALUES
            (1, 'POST /receipts', 'server', 'wms', 0, 400.0),
            (2, 'send wms.receipts', 'producer', 'wms', 450, 5.0),
            (3, 'process wms.receipts', 'consumer', 'erp-integration', 20000, 500.0),
            (4, 'POST /api/v1/goods-receipts', 'client', 'erp-integration', 20020, 300.0),
            (5, 'POST /api/v1/goods-receipts', 'server', 'erp-api', 20035, 250.0)
        ) AS s(k, name, kind, service_name, offset_ms, duration_ms)
        ORDER BY start_time  -- collectors land spans file by file, roughly in time order
    """)
    con.execute("""
        INSERT INTO span_links BY NAME
        SELECT trace_id, lpad(to_hex(n * 8 + 3), 16, '0') AS span_id, 0 AS link_index, trace_id AS linked_trace_id,
            lpad(to_hex(n * 8 + 2), 16, '0') AS linked_span_id, '{}' AS attributes, 'bench-integration' AS batch_id
        FROM receipts
    """)
    con.execute("""
        INSERT INTO span_events BY NAME
        SELECT trace_id, lpad(to_hex(n * 8 + 4), 16, '0') AS span_id, 0 AS event_index,
            posted + INTERVAL 20 SECOND AS time, 'exception' AS name,
            '{"exception.type": "HttpClientErrorException", "exception.message": "429 Too Many Requests"}' AS attributes,
            'bench-integration' AS batch_id
        FROM receipts WHERE roll < 20
    """)
    con.execute("""
        INSERT INTO transaction_events BY NAME
        SELECT 'RP-' || n AS event_id, 'wms' AS system, posted AS occurred_at, posted AS recorded_at,
            'receipt' AS object_type, receipt_id AS object_id, 'RECEIPT_POSTED' AS event_type, 'receipt' AS stage,
            'succeeded' AS outcome, facility_id, supplier_id, po_number, receipt_id, trace_id,
            '{}' AS attributes, 'bench-integration' AS batch_id
        FROM receipts
        UNION ALL
        SELECT 'RS-' || n, 'erp', posted + to_seconds(CASE WHEN roll < 10 THEN 7200 ELSE 20 END),
            posted + to_seconds(CASE WHEN roll < 10 THEN 7201 ELSE 21 END), 'receipt', receipt_id, 'RECEIPT_SYNCED',
            'receipt', 'succeeded', facility_id, supplier_id, po_number, receipt_id, NULL, '{}', 'bench-integration'
        FROM receipts WHERE roll <> 999
        UNION ALL
        SELECT 'MX-' || n, 'ap', posted + INTERVAL 1 HOUR, posted + INTERVAL 1 HOUR, 'invoice', 'INV-' || n,
            'MATCH_EXCEPTION', 'match', 'exception', facility_id, supplier_id, po_number, receipt_id, NULL,
            '{"exception_reason": "missing_receipt"}', 'bench-integration'
        FROM receipts WHERE roll BETWEEN 5 AND 24
    """)
    con.execute("UPDATE transaction_events SET invoice_id = object_id WHERE event_type = 'MATCH_EXCEPTION' AND batch_id = 'bench-integration'")
    return count


def page_calls(con: duckdb.DuckDBPyConnection, po_number: str, trace_id: str) -> dict[str, list[Callable[[], object]]]:
    """Integration page -> the calls it makes on one render with no filter (the frame's filter options included)."""
    everything = Filters()
    frame = [lambda: overview.filter_options(con)]
    flow = "receipt-sync"
    return {
        "integration_health": frame + [
            lambda: failures.totals(con, everything, "spans"),
            lambda: failures.heatmap(con, everything, "spans"),
            lambda: failures.by_dimension(con, everything, "interface", "spans"),
            lambda: failures.failed_operations(con, everything, "spans", limit=50),
            lambda: slo.burn_rates(con),
            lambda: drift.backlog_business(con, everything),
        ],
        "sync_drift": frame + [
            lambda: drift.flow_summary(con, everything),
            lambda: drift.lag_over_time(con, everything, flow),
            lambda: drift.missing_over_time(con, everything, flow),
            lambda: drift.drift_by(con, everything, "facility_id", flow),
            lambda: drift.drift_by(con, everything, "supplier_id", flow),
            lambda: drift.oldest_unsynced(con, everything, flow),
            lambda: drift.state_drift(con, everything),
            lambda: drift.integration_share(con, everything),
            lambda: drift.match_attribution(con, everything),
            lambda: drift.match_exceptions(con, everything),
        ],
        "trace": frame + [
            lambda: traces.lookup(con, po_number),
            lambda: traces.summary(con, trace_id),
            lambda: traces.spans(con, trace_id),
            lambda: traces.linked_from(con, trace_id),
        ],
        "trace_lookup": [lambda: traces.lookup(con, po_number)],
    }


def extend(con: duckdb.DuckDBPyConnection, spans: int = 10_000_000, runs: int = 5, add_data: bool = True) -> dict:
    """Add the integration data to a bench warehouse (unless it holds them already: ``add_data`` false),
    rebuild the marts and time the integration pages."""
    started = time.perf_counter()
    if add_data:
        cases = con.execute("SELECT count(DISTINCT requisition_id) FROM transaction_events").fetchone()[0] or 1
        add_spans_and_receipts(con, spans, cases)
    build.build_marts(con)
    figures: dict[str, object] = {"integration_setup_s": round(time.perf_counter() - started, 1)}
    figures["integration_spans"] = con.execute("SELECT count(*) FROM spans").fetchone()[0]
    figures["integration_events"] = con.execute("SELECT count(*) FROM transaction_events").fetchone()[0]
    trace_id, po_number = con.execute(
        "SELECT trace_id, po_number FROM spans WHERE status_code = 'error' AND po_number IS NOT NULL LIMIT 1").fetchone()
    timings = median_ms_per_page(page_calls(con, po_number, trace_id), runs)
    figures["trace_lookup_ms"] = timings.pop("trace_lookup")
    figures["integration_page_ms"] = timings
    for page, ms in timings.items():
        print(f"{page}: {ms} ms (median of {runs}, warm) over {figures['integration_spans']:,} spans, "
              f"{figures['integration_events']:,} events")
    print(f"trace lookup by PO number: {figures['trace_lookup_ms']} ms")
    return figures


def run(events: str = "10000000", spans: str = "10000000", runs: str = "5") -> dict:
    """Integration page timings over ``events`` synthetic events plus ``spans`` spans."""
    from bench.pages import warehouse

    with tempfile.TemporaryDirectory(prefix="bench-integration-") as scratch:
        con, _ = warehouse(Path(scratch) / "bench.duckdb", int(events))
        figures = extend(con, int(spans), int(runs))
        con.close()
    return figures
