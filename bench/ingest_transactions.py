"""Benchmark: ingest a CSV export of N business events (default 10 million) through a mapping file.

``python -m bench ingest_transactions [--events N] [--runs R]`` writes a procurement-style CSV (ISO
8601 times with offsets, decimal amounts, the source's own event ids), then, R times (default 3),
times ``transactions.ingest`` into a fresh landing zone and right after it, as the floor, DuckDB's
own ``read_csv`` of the same file into a table. Targets on a 2-core machine: at least 1 million
events per second and no slower than 1.5x the floor.

The same code on a shared machine varies by a fifth from one run to the next, so the figures are
medians over the runs; ``ratio_to_floor`` is the median of each run's ingest over its own floor,
and the per-run figures are printed as they come.

For scale it also times ``parquet_floor_s``: DuckDB reading the same file straight into one zstd
Parquet file (no mapping, no day partitions, no hash): what any Parquet landing costs at least.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path

import duckdb

MAPPING = """
[source]
system = "procurement"
format = "csv"

[columns]
event_id = "EventId"
object_id = "RequisitionId"
requisition_id = "RequisitionId"
event_type = "Status"
occurred_at = { column = "EventTime", format = "iso8601" }
recorded_at = { column = "RecordedTime", format = "iso8601" }
facility_id = "Facility"
supplier_id = "Supplier"
amount = "Amount"
currency = "Currency"
po_number = "PoNumber"
actor = "UserName"

[constants]
object_type = "requisition"

[event_types."Requisition Created"]
stage = "requisition"
[event_types."Approved"]
stage = "approval"
[event_types."PO Created"]
stage = "po_creation"
[event_types."PO Sent"]
stage = "po_transmission"
[event_types."Receipt Posted"]
stage = "receipt"
[event_types."Invoice Received"]
stage = "invoice"
[event_types."Paid"]
stage = "payment"
"""


def generate(path: Path, events: int) -> None:
    """Write ``events`` rows of a procurement export: one requisition per 7 events, 3 events a second."""
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")  # figures only on stdout
    con.execute(
        f"""COPY (
        SELECT 'EV' || i AS EventId, 'REQ-' || (i // 7) AS RequisitionId,
            ['Requisition Created', 'Approved', 'PO Created', 'PO Sent', 'Receipt Posted', 'Invoice Received', 'Paid'][i % 7 + 1]
                AS Status,
            strftime(TIMESTAMP '2024-01-01' + to_seconds(i // 3), '%Y-%m-%dT%H:%M:%S') || '-05:00' AS EventTime,
            strftime(TIMESTAMP '2024-01-01' + to_seconds(i // 3 + 40), '%Y-%m-%dT%H:%M:%S') || '-05:00' AS RecordedTime,
            ['NORTH-GENERAL', 'SOUTH-COMMUNITY', 'EAST-LEGACY'][i % 3 + 1] AS Facility, 'SUP-' || (i % 500) AS Supplier,
            CAST((i % 100000) / 100 AS DECIMAL(12, 2)) AS Amount, 'USD' AS Currency, 'PO-' || (i // 7) AS PoNumber,
            'user_' || (i % 50) AS UserName
        FROM range({events}) AS t(i)) TO '{path}' (HEADER)"""
    )
    con.close()


def _timed_duckdb(sql: str) -> float:
    """Seconds one statement takes on a fresh in-memory DuckDB connection."""
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    started = time.perf_counter()
    con.execute(sql)
    seconds = time.perf_counter() - started
    con.close()
    return seconds


def run(events: str | int = 10_000_000, runs: str | int = 3) -> dict:
    """Generate, then ingest and measure the floors ``runs`` times; return the median figures
    (events_per_s and floor_events_per_s last)."""
    from collectors import transactions
    from collectors.mapping import Mapping
    from r2p.landing import LandingZone
    import tomllib

    events = int(events)
    work = Path(tempfile.mkdtemp(prefix="r2p-bench-tx-"))
    try:
        export = work / "procurement.csv"
        started = time.perf_counter()
        generate(export, events)
        generate_s = time.perf_counter() - started
        print(f"generated {events:,} events, {export.stat().st_size / 1e6:,.0f} MB, in {generate_s:.1f} s", flush=True)

        mapping = Mapping.model_validate(tomllib.loads(MAPPING))
        ingests, floors, parquet_floors = [], [], []
        for attempt in range(1, int(runs) + 1):
            zone_dir = work / "data"
            started = time.perf_counter()
            summary = transactions.ingest([export], LandingZone(zone_dir), mapping)
            ingests.append(time.perf_counter() - started)
            landed = summary.accepted["transaction_events"]
            if landed != events or summary.rejected:
                raise RuntimeError(f"expected {events} events and no rejects, got {summary.line()}")
            shutil.rmtree(zone_dir)
            floors.append(_timed_duckdb(f"CREATE TABLE floor AS SELECT * FROM read_csv('{export}')"))
            parquet_floors.append(_timed_duckdb(
                f"COPY (SELECT * FROM read_csv('{export}')) TO '{work / 'floor.parquet'}' (FORMAT parquet, COMPRESSION zstd)"
            ))
            print(
                f"run {attempt}: ingest {ingests[-1]:.2f} s ({summary.line()}); floor (DuckDB read_csv into a table) "
                f"{floors[-1]:.2f} s, ratio {ingests[-1] / floors[-1]:.2f}; parquet floor (DuckDB read_csv straight "
                f"into one zstd Parquet file) {parquet_floors[-1]:.2f} s",
                flush=True,
            )
        ingest_s, floor_s = statistics.median(ingests), statistics.median(floors)
        ratios = [ingest / floor for ingest, floor in zip(ingests, floors)]
        return {
            "events": events,
            "runs": len(ingests),
            "ingest_s": round(ingest_s, 2),
            "floor_s": round(floor_s, 2),
            "ratio_to_floor": round(statistics.median(ratios), 2),
            "ratio_range": [round(min(ratios), 2), round(max(ratios), 2)],
            "parquet_floor_s": round(statistics.median(parquet_floors), 2),
            "events_per_s": round(events / ingest_s),
            "floor_events_per_s": round(events / floor_s),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
