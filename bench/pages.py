"""Page query speed and model build time:
``python -m bench pages [--events N] [--build-events N] [--runs N] [--spans N] [--keep-dir DIR] [--only-build yes]``.

Synthetic canonical transaction events (and one span per case, 3 % of them failed) are generated
directly in DuckDB SQL into a file warehouse with the canonical tables: a flow template of 15
events a case over 11 stages, lognormal-ish gaps from a hash, 4 % of cases returned once and
re-approved, 6 % stopping in approval (open), priorities 5 / 20 / 75 %, 5 facilities, 40 suppliers,
8 departments over 10 weeks.

* ``model_build_s``: the marts of the procurement models (issue 7) built from ``build_events``
  events (default 1.5 M), views first, every mart of this issue timed together. ``--only-build yes`` stops
  there (no page timings, no 10 M warehouse): the quick way to measure a model change.
* page timings at ``events`` events (default 10 M): each page's query functions, called as the page
  calls them, warm; the median of ``runs`` runs of the whole set, in milliseconds. Whole cases are
  generated until there are at least ``events`` events; the figures' ``events`` is the real count.

``PAGES`` maps a page to the functions it runs; other issues' pages may add their own entries.
The integration pages of issue 8 and ``trace_lookup_ms`` are timed by bench.pages_integration.extend
over ``spans`` spans (default 10 M) added to the same warehouse after these timings.

``--keep-dir DIR`` keeps the generated warehouses in DIR (``build-<build_events>.duckdb``,
``procurement-<events>.duckdb``, and ``integration-<events>-<spans>.duckdb``, a copy with issue 8's data added)
and reuses them on later runs with the same sizes: their raw tables are not generated again, but views and
marts are rebuilt, so a changed model is measured (``setup_s`` and ``integration_setup_s`` then time only that
rebuild). Delete DIR when the generators change.
"""

from __future__ import annotations

import datetime as dt
import math
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

from bench import pages_integration
from bench._timing import median_ms_per_page
from metrics import build, cycle_times, executive, overview, requisition, stalls
from metrics.filters import Filters
from r2p import schema

ISSUE_MARTS = ("fct_case_stage_visits", "fct_requisition_timeline", "fct_case_cohorts", "fct_case_measures",
               "fct_stage_durations", "fct_approval_waits", "fct_approval_system_intervals", "fct_stalled_approvals",
               "fct_executive_kpis_weekly")
EVENTS_PER_CASE = 15
OPEN_PERCENT = 6
MEAN_EVENTS_PER_CASE = ((100 - OPEN_PERCENT) * EVENTS_PER_CASE + OPEN_PERCENT * 4) / 100
"""A case open in its second approval stops after 4 events."""

STEPS = """
    SELECT * FROM (VALUES
        (1, 'requisition', 'REQUISITION_SUBMITTED', 'succeeded', 10.0),
        (2, 'approval', 'APPROVAL_REQUESTED', 'pending', 5.0),
        (3, 'approval', 'LEVEL_APPROVED', 'succeeded', 240.0),
        (4, 'approval', 'APPROVAL_REQUESTED', 'pending', 0.1),
        (5, 'approval', 'LEVEL_APPROVED', 'succeeded', 240.0),
        (6, 'budget_check', 'BUDGET_CHECK_PASSED', 'succeeded', 1.0),
        (7, 'po_creation', 'PO_CREATED', 'succeeded', 2.0),
        (8, 'po_transmission', 'PO_TRANSMITTED', 'succeeded', 1.0),
        (9, 'supplier_ack', 'PO_ACKNOWLEDGED', 'succeeded', 120.0),
        (10, 'shipment', 'ASN_RECEIVED', 'succeeded', 2880.0),
        (11, 'receipt', 'RECEIPT_POSTED', 'succeeded', 1440.0),
        (12, 'invoice', 'INVOICE_RECEIVED', 'succeeded', 720.0),
        (13, 'match', 'MATCH_RESULT', 'succeeded', 5.0),
        (14, 'payment', 'PAYMENT_SCHEDULED', 'pending', 4320.0),
        (15, 'payment', 'PAID', 'succeeded', 2880.0)
    ) AS steps(step, stage, event_type, outcome, median_min)
"""


def generate(con: duckdb.DuckDBPyConnection, events: int) -> int:
    """Fill transaction_events with at least ``events`` rows (whole cases) and one span per case; returns the
    number of cases. Which cases stay open is a hash roll, so cases are added until the count is reached."""
    cases, generated = 0, 0
    while generated < events:
        more = max(1, math.ceil((events - generated) / MEAN_EVENTS_PER_CASE))
        generate_cases(con, cases, cases + more)
        cases += more
        generated = con.execute("SELECT count(*) FROM transaction_events").fetchone()[0]
    return cases


def generate_cases(con: duckdb.DuckDBPyConnection, first: int, last: int) -> None:
    """Insert the events and the span of cases ``first`` to ``last - 1``."""
    con.execute(f"""
        INSERT INTO transaction_events BY NAME
        WITH cases AS (
            SELECT range AS n,
                hash(range, 'f') % 5 AS facility, hash(range, 's') % 40 AS supplier, hash(range, 'd') % 8 AS department,
                (hash(range, 'p') % 100) AS priority_roll, (hash(range, 'r') % 100) AS fate_roll,
                TIMESTAMPTZ '2025-01-06 00:00:00+00' + to_seconds((hash(range, 't') % (70 * 86400))::BIGINT) AS created
            FROM range({first}, {last})
        ),
        steps AS ({STEPS}),
        walked AS (
            SELECT cases.*, steps.*,
                -- a gap around the step's median: exp of a uniform in [-1, 1] times the median
                median_min * 60 * exp(((hash(n, step) % 2001) / 1000.0) - 1) AS gap_s
            FROM cases, steps
            WHERE NOT (fate_roll < {OPEN_PERCENT} AND step > 4)            -- open: waiting on the second approval
        ),
        timed AS (
            SELECT *, created + to_seconds(sum(gap_s) OVER (PARTITION BY n ORDER BY step)::BIGINT) AS occurred
            FROM walked
        )
        SELECT
            'E' || n || '-' || step AS event_id,
            CASE WHEN stage IN ('budget_check', 'po_creation', 'payment') THEN 'erp'
                 WHEN stage IN ('supplier_ack', 'shipment') THEN 'supplier-network'
                 WHEN stage = 'receipt' THEN 'wms'
                 WHEN stage IN ('invoice', 'match') THEN 'ap' ELSE 'procurement' END AS system,
            occurred AS occurred_at, occurred + INTERVAL 3 SECOND AS recorded_at,
            CASE WHEN step <= 6 THEN 'requisition' ELSE 'purchase_order' END AS object_type,
            'REQ-' || n AS object_id,
            -- 4 % of cases: the second approval level returns it (and the walk re-approves)
            CASE WHEN step = 3 AND fate_roll BETWEEN 10 AND 13 THEN 'RETURNED' ELSE event_type END AS event_type,
            stage,
            CASE WHEN step = 3 AND fate_roll BETWEEN 10 AND 13 THEN 'returned'
                 WHEN step = 13 AND fate_roll BETWEEN 20 AND 27 THEN 'exception' ELSE outcome END AS outcome,
            (100 + hash(n, 'v') % 20000)::DECIMAL(18, 4) AS amount, 'USD' AS currency,
            'FAC-' || facility AS facility_id, 'S' || lpad(supplier::VARCHAR, 2, '0') AS supplier_id,
            'DEPT-' || department AS department,
            CASE WHEN priority_roll < 5 THEN 'stat' WHEN priority_roll < 25 THEN 'urgent' ELSE 'routine' END AS priority,
            'REQ-' || n AS requisition_id,
            CASE WHEN step >= 7 THEN 'PO-' || n END AS po_number,
            CASE WHEN stage = 'approval' AND outcome = 'pending' THEN 'FAC-' || facility || '/APPROVER-L' || (step // 2) END AS actor,
            '{{}}' AS attributes, 'bench' AS batch_id
        FROM timed
    """)
    con.execute(f"""
        INSERT INTO spans BY NAME
        SELECT lpad(to_hex(range), 32, '0') AS trace_id, lpad(to_hex(range), 16, '0') AS span_id,
            'POST /api/approvals/callback' AS name, 'client' AS kind,
            TIMESTAMPTZ '2025-01-06 00:00:00+00' + to_seconds((hash(range, 't') % (70 * 86400))::BIGINT + 1800) AS start_time,
            start_time + INTERVAL 200 MILLISECOND AS end_time, 200.0 AS duration_ms,
            CASE WHEN hash(range, 'e') % 100 < 3 THEN 'error' ELSE 'ok' END AS status_code,
            'procurement-suite' AS service_name, 'approval' AS stage, 'REQ-' || range AS requisition_id,
            '{{}}' AS attributes, '{{}}' AS resource_attributes, 'bench' AS batch_id
        FROM range({first}, {last})
    """)


def warehouse(path: Path, events: int) -> tuple[duckdb.DuckDBPyConnection, int]:
    """The file warehouse at ``path`` with the views of every model; a new file first gets the canonical tables
    and at least ``events`` synthetic events. Returns it and its number of cases."""
    fresh = not path.exists()
    con = duckdb.connect(str(path))
    con.execute("SET TimeZone = 'UTC'")
    if fresh:
        for model in schema.TABLES:
            con.execute(schema.ddl(model))
        cases = generate(con, events)
    else:
        cases = con.execute("SELECT count(*) FROM spans WHERE batch_id = 'bench'").fetchone()[0]
    build.build_views(con)
    return con, cases


def build_issue_marts(con: duckdb.DuckDBPyConnection) -> float:
    """Rebuild this issue's marts in dependency order; returns seconds."""
    started = time.perf_counter()
    for model in build.models():
        if model.name in ISSUE_MARTS:
            con.execute(f"CREATE OR REPLACE TABLE {model.name} AS {model.sql}")
    return time.perf_counter() - started


def page_calls(con: duckdb.DuckDBPyConnection, case_id: str, moment: dt.datetime) -> dict[str, list[Callable[[], object]]]:
    """Page -> the metrics calls it makes on one render with no filter (the frame's filter options included)."""
    everything = Filters()
    frame = [lambda: overview.filter_options(con)]
    return {
        "executive": frame + [
            lambda: executive.tiles(con, everything),
            lambda: cycle_times.weekly(con, everything, "requisition_to_po"),
            lambda: executive.facility_comparison(con, everything),
        ],
        "cycle_times": frame + [
            *[lambda column=column: cycle_times.distinct_values(con, column) for column in ("priority", "department", "category")],
            lambda: cycle_times.summary(con, everything),
            lambda: cycle_times.stage_breakdown(con, everything),
            lambda: cycle_times.slowest(con, everything, "approval"),
            lambda: cycle_times.weekly(con, everything, "requisition_to_po"),
            lambda: cycle_times.by_dimension(con, everything, "requisition_to_po", "facility_id"),
            lambda: cycle_times.variants(con, everything),
        ],
        "stalled_approvals": frame + [
            lambda: stalls.latest_moment(con),
            lambda: stalls.aging(stalls.stalled(con, everything)),
        ],
        "stalled_approvals_as_of": frame + [
            lambda: stalls.latest_moment(con),
            lambda: stalls.aging(stalls.stalled(con, everything, as_of=moment)),
        ],
        "requisition": frame + [
            lambda: requisition.case(con, case_id),
            lambda: requisition.stage_bars(con, case_id),
            lambda: requisition.events(con, case_id),
            lambda: requisition.spans(con, case_id),
        ],
    }


def run(events: str = "10000000", build_events: str = "1500000", runs: str = "5", spans: str = "10000000",
        keep_dir: str | None = None, only_build: str = "no") -> dict:
    """Build time at ``build_events`` events, then (unless ``only_build`` is yes) page timings at ``events`` events
    (warehouses kept in ``keep_dir``)."""
    if only_build not in ("yes", "no"):
        raise SystemExit(f"--only-build takes yes or no, not {only_build!r}")
    figures: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="bench-pages-") as scratch:
        build_dir = Path(keep_dir or scratch)
        build_dir.mkdir(parents=True, exist_ok=True)
        con, cases = warehouse(build_dir / f"build-{int(build_events)}.duckdb", int(build_events))
        figures["build_events"] = con.execute("SELECT count(*) FROM transaction_events").fetchone()[0]
        figures["model_build_s"] = round(build_issue_marts(con), 2)
        print(f"marts of issue 7 from {figures['build_events']:,} events ({cases:,} cases): {figures['model_build_s']} s")
        con.close()
    if only_build == "yes":
        return figures
    with tempfile.TemporaryDirectory(prefix="bench-pages-") as scratch:
        directory = Path(keep_dir or scratch)
        directory.mkdir(parents=True, exist_ok=True)
        procurement = directory / f"procurement-{int(events)}.duckdb"
        started = time.perf_counter()
        con, cases = warehouse(procurement, int(events))
        build.build_marts(con)
        figures["events"] = con.execute("SELECT count(*) FROM transaction_events").fetchone()[0]
        figures["cases"] = con.execute("SELECT count(*) FROM fct_requisition_timeline").fetchone()[0]
        figures["stalled_now"] = con.execute("SELECT count(*) FROM fct_stalled_approvals").fetchone()[0]
        figures["setup_s"] = round(time.perf_counter() - started, 1)
        moment = stalls.latest_moment(con) - dt.timedelta(days=20)
        case_id = con.execute("SELECT case_id FROM fct_requisition_timeline WHERE returned > 0 LIMIT 1").fetchone()[0]
        figures["page_ms"] = median_ms_per_page(page_calls(con, case_id, moment), int(runs))
        for page, ms in figures["page_ms"].items():
            print(f"{page}: {ms} ms (median of {runs}, warm) over {figures['events']:,} events, {figures['cases']:,} cases")
        # Issue 8's pages (Integration health, Sync drift, Trace) and trace_lookup_ms, over `spans` spans added
        # to this warehouse (to a copy of it, kept beside it, with --keep-dir): see bench/pages_integration.py.
        if keep_dir:
            con.close()
            integration = directory / f"integration-{int(events)}-{int(spans)}.duckdb"
            add_data = not integration.exists()
            if add_data:
                shutil.copyfile(procurement, integration)
            con, _ = warehouse(integration, int(events))
            figures.update(pages_integration.extend(con, int(spans), int(runs), add_data))
        else:
            figures.update(pages_integration.extend(con, int(spans), int(runs)))
        con.close()
    return figures
