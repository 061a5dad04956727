"""Sync drift, unsynced objects, state drift and match-exception attribution (the Sync drift page).

Reads fct_sync_drift (one row per flow object occurrence), its daily rollup fct_sync_lags_daily,
fct_unsynced_objects, fct_state_drift and fct_match_exception_causes; the verdicts (late, missing, breach,
cause) are defined once in those models. Lag p50 / p95 per flow, day, facility or supplier come from the
rollup's lag buckets: approximate, within 0.5 % (fct_sync_lags_daily says how).
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import duckdb
import pandas as pd

from metrics.filters import Filters


def _flow_where(filters: Filters, flow: str | None, day: str = "day") -> tuple[str, dict[str, object]]:
    where, params = filters.where(day=day)
    if flow is not None:
        where += " AND flow = $flow"
        params["flow"] = flow
    return where, params


LAG_ROWS = ("(SELECT *, lag_s AS max_lag_s, 1 AS objects, is_synced::INTEGER AS synced, is_late::INTEGER AS late, "
            "is_missing::INTEGER AS missing FROM fct_sync_drift)")
"""fct_sync_drift's rows in the shape of fct_sync_lags_daily (each its own exact bucket), for what the daily
rollup cannot answer (hours)."""


def _lag_figures(con: duckdb.DuckDBPyConnection, source: str, keys: dict[str, str], where: str,
                 params: dict[str, object], columns: str, order: str) -> pd.DataFrame:
    """Per value of ``keys`` (name: SQL over ``source``) in the slice ``where``: objects, synced, late, missing,
    lag_p50_s, lag_p95_s, lag_max_s (seconds, of arrived objects) and sla_s; ``columns`` and ``order`` shape the
    result. ``source`` holds objects, synced, late, missing and max_lag_s per lag_s bucket (fct_sync_lags_daily,
    approximate quantiles: see there; or LAG_ROWS, exact).

    The quantiles are quantile_cont's, computed from the (lag_s, objects) pairs: position (n - 1) * q among the
    n arrived objects, interpolated between the lags at its floor and ceiling. The lag at 0-based position i is
    the lowest lag with more than i objects at or below it."""
    names = ", ".join(keys)
    percentiles = {"p50": 0.5, "p95": 0.95}
    positions = ", ".join(f"{q}::DOUBLE * (arrived - 1) AS {name}_at" for name, q in percentiles.items())
    bounds = ", ".join(
        f"min(lag_s) FILTER (WHERE upto > floor({name}_at)) AS {name}_lo, "
        f"min(lag_s) FILTER (WHERE upto > ceil({name}_at)) AS {name}_hi"
        for name in percentiles)
    interpolated = ", ".join(f"{name}_lo + ({name}_at - floor({name}_at)) * ({name}_hi - {name}_lo) AS lag_{name}_s"
                             for name in percentiles)
    return con.execute(
        f"""
        WITH slice AS (
            SELECT {", ".join(f"{sql} AS {name}" for name, sql in keys.items())}, lag_s, max(max_lag_s) AS max_lag_s,
                sum(objects) AS objects, sum(synced) AS synced, sum(late) AS late, sum(missing) AS missing,
                any_value(sla_s) AS sla_s
            FROM {source} WHERE {where} GROUP BY ALL
        ),
        totals AS (
            SELECT {names}, sum(objects)::BIGINT AS objects, sum(synced)::BIGINT AS synced, sum(late)::BIGINT AS late,
                sum(missing)::BIGINT AS missing, max(max_lag_s) AS lag_max_s, any_value(sla_s) AS sla_s,
                sum(objects) FILTER (WHERE lag_s IS NOT NULL) AS arrived
            FROM slice GROUP BY ALL
        ),
        ranked AS (
            SELECT slice.lag_s, slice.{" , slice.".join(keys)}, {positions},
                sum(slice.objects) OVER (PARTITION BY {", ".join(f"slice.{name}" for name in keys)} ORDER BY slice.lag_s
                                         ROWS UNBOUNDED PRECEDING) AS upto
            FROM slice JOIN totals USING ({names}) WHERE slice.lag_s IS NOT NULL
        ),
        quantiles AS (SELECT {names}, {", ".join(f"any_value({name}_at) AS {name}_at" for name in percentiles)}, {bounds}
                      FROM ranked GROUP BY ALL),
        figures AS (SELECT totals.*, {interpolated} FROM totals LEFT JOIN quantiles USING ({names}))
        SELECT {columns} FROM figures ORDER BY {order}
        """,
        params,
    ).df()


def flow_summary(con: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    """Per flow: objects, synced, late, missing, lag p50 / p95 / max (seconds, of synced objects), SLA.
    p50 and p95 are approximate (within 0.5 %, fct_sync_lags_daily), the rest exact."""
    where, params = filters.where()
    return _lag_figures(con, "fct_sync_lags_daily", {"flow": "flow"}, where, params,
                        "flow, objects, synced, late, missing, lag_p50_s, lag_p95_s, lag_max_s, sla_s", "flow")


def drift_by(con: duckdb.DuckDBPyConnection, filters: Filters, dimension: str, flow: str | None = None) -> pd.DataFrame:
    """The same measures as ``flow_summary`` per flow and facility_id or supplier_id, most late or missing first
    (p50 and p95 approximate, as there)."""
    if dimension not in ("facility_id", "supplier_id"):
        raise ValueError(f"cannot group sync drift by {dimension}")
    where, params = _flow_where(filters, flow)
    return _lag_figures(con, "fct_sync_lags_daily", {"flow": "flow", dimension: f"coalesce({dimension}, '(none)')"},
                        where, params, f"flow, {dimension}, objects, late, missing, lag_p50_s, lag_p95_s, lag_max_s",
                        "late + missing DESC, objects DESC, 1, 2")


def lag_over_time(con: duckdb.DuckDBPyConnection, filters: Filters, flow: str | None = None,
                  grain: str = "day") -> pd.DataFrame:
    """Per flow and day (or hour) of source occurrence: objects, late, lag p50 / p95 / max in seconds (per day,
    p50 and p95 approximate as in ``flow_summary``; per hour exact)."""
    if grain not in ("hour", "day"):
        raise ValueError("grain must be hour or day")
    where, params = _flow_where(filters, flow)
    return _lag_figures(con, "fct_sync_lags_daily" if grain == "day" else LAG_ROWS, {"flow": "flow", "period": grain},
                        where, params, "flow, period, objects, late, lag_p50_s, lag_p95_s, lag_max_s", "flow, period")


def missing_at(con: duckdb.DuckDBPyConnection, moment: dt.datetime, filters: Filters = Filters(),
               flow: str | None = None) -> pd.DataFrame:
    """Per flow: objects present in the source and absent from the target past their SLA at ``moment``."""
    where, params = _flow_where(dataclasses.replace(filters, start=None, end=None), flow)
    return con.execute(
        f"""
        SELECT flow, count(*) AS missing, sum(amount) AS amount
        FROM fct_sync_drift
        WHERE {where} AND due_at <= $moment AND (target_at IS NULL OR target_at > $moment)
        GROUP BY flow ORDER BY flow
        """,
        {**params, "moment": moment},
    ).df()


def missing_over_time(con: duckdb.DuckDBPyConnection, filters: Filters, flow: str | None = None) -> pd.DataFrame:
    """Per flow and hour_end: objects missing at the end of that hour (past SLA, not yet in the target).

    Counted from the moments objects became missing (due_at) and arrived (target_at), so an object missing
    for three days counts in every hour of them; hours before the date filter's start are summed in, not shown.
    """
    where, params = _flow_where(dataclasses.replace(filters, start=None), flow)
    start = filters.start
    return con.execute(
        f"""
        WITH changes AS (
            SELECT flow, date_trunc('hour', missing_from) + INTERVAL 1 HOUR AS hour, 1 AS change
            FROM fct_sync_drift WHERE {where} AND missing_from IS NOT NULL
            UNION ALL
            SELECT flow, date_trunc('hour', missing_until) + INTERVAL 1 HOUR, -1
            FROM fct_sync_drift WHERE {where} AND missing_until IS NOT NULL
        ),
        hourly AS (SELECT flow, hour, sum(change) AS change FROM changes GROUP BY ALL),
        running AS (
            SELECT flow, hour, sum(change) OVER (PARTITION BY flow ORDER BY hour) AS missing FROM hourly
        )
        SELECT flow, hour AS hour_end, missing::BIGINT AS missing FROM running
        WHERE $start IS NULL OR hour >= $start::DATE
        ORDER BY flow, hour
        """,
        {**params, "start": start},
    ).df()


def oldest_unsynced(con: duckdb.DuckDBPyConnection, filters: Filters, flow: str | None = None,
                    limit: int = 50) -> pd.DataFrame:
    """Objects waiting in a source for their target, oldest first, with age, SLA verdict, money and trace."""
    where, params = _flow_where(filters, flow)
    return con.execute(
        f"""
        SELECT flow, object_key, source_system, source_at, age_s, is_past_sla, facility_id, supplier_id, priority,
            amount, po_number, requisition_id, trace_id
        FROM fct_unsynced_objects WHERE {where}
        ORDER BY source_at, flow, object_key LIMIT {int(limit)}
        """,
        params,
    ).df()


def state_drift(con: duckdb.DuckDBPyConnection, filters: Filters, breaches_only: bool = True) -> pd.DataFrame:
    """Periods where an object's state disagreed between systems; longest first. Stage filters do not apply."""
    where, params = dataclasses.replace(filters, stages=()).where()
    breach = " AND is_breach" if breaches_only else ""
    return con.execute(
        f"""
        SELECT flow, object_key, supplier_id, facility_id, source_value, target_value, drift_start, drift_end,
            duration_s, sla_s, is_open
        FROM fct_state_drift WHERE {where}{breach}
        ORDER BY duration_s DESC, drift_start
        """,
        params,
    ).df()


def match_exceptions(con: duckdb.DuckDBPyConnection, filters: Filters, limit: int = 200) -> pd.DataFrame:
    """Invoices that failed three-way match with their attributed cause, newest first."""
    where, params = filters.where()
    return con.execute(
        f"""
        SELECT invoice_id, exception_at, exception_type, cause, cause_detail, facility_id, supplier_id, po_number,
            receipt_id, amount, exception_count, coalesce(evidence_trace_id, trace_id) AS trace_id
        FROM fct_match_exception_causes WHERE {where}
        ORDER BY exception_at DESC, invoice_id LIMIT {int(limit)}
        """,
        params,
    ).df()


def match_attribution(con: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    """Match exceptions per cause, with their share of all and the money behind them."""
    where, params = filters.where()
    return con.execute(
        f"""
        SELECT cause, count(*) AS invoices, count(*)::DOUBLE / sum(count(*)) OVER () AS share, sum(amount) AS amount
        FROM fct_match_exception_causes WHERE {where}
        GROUP BY cause ORDER BY cause = 'none', invoices DESC, cause
        """,
        params,
    ).df()


def integration_share(con: duckdb.DuckDBPyConnection, filters: Filters) -> tuple[int, int]:
    """(match exceptions with an integration cause, all match exceptions) in the slice."""
    where, params = filters.where()
    integration, total = con.execute(
        f"SELECT count(*) FILTER (WHERE is_integration_cause), count(*) FROM fct_match_exception_causes WHERE {where}",
        params,
    ).fetchone()
    return int(integration), int(total)


def backlog_business(con: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    """fct_backlog_business for the selected facilities (all rows when none is selected), biggest backlog first."""
    clause, params = "true", {}
    if filters.facilities:
        clause, params = "facility_id IN (SELECT unnest($facilities))", {"facilities": list(filters.facilities)}
    return con.execute(
        f"SELECT * FROM fct_backlog_business WHERE {clause} "
        "ORDER BY waiting_objects DESC, coalesce(queue_backlog, 0) DESC, flow, facility_id",
        params,
    ).df()


def backlog_over_time(con: duckdb.DuckDBPyConnection, filters: Filters, flow: str,
                      bucket_minutes: int = 15) -> pd.DataFrame:
    """A flow's queues over time (fct_backlog, latest observation per bucket): backlog of its queues and
    dead-letter depth, with the dead-letter growth in the bucket."""
    where, params = _flow_where(dataclasses.replace(filters, suppliers=(), stages=()), None, day="observed_at::DATE")
    return con.execute(
        f"""
        WITH queues AS (
            SELECT DISTINCT b.* FROM fct_backlog b
            JOIN (SELECT unnest(queues) AS queue_glob FROM integration_flows WHERE name = $flow) f
              ON b.queue GLOB f.queue_glob
            WHERE NOT b.is_aggregate AND {where}
        ),
        bucketed AS (
            SELECT time_bucket(INTERVAL {int(bucket_minutes)} MINUTE, observed_at) AS bucket, queue_key, is_dead_letter,
                arg_max(backlog, observed_at) AS backlog, sum(coalesce(dead_letter_growth, 0)) AS dead_letter_growth
            FROM queues GROUP BY ALL
        )
        SELECT bucket AS observed_at,
            coalesce(sum(backlog) FILTER (WHERE NOT is_dead_letter), 0)::BIGINT AS backlog,
            coalesce(sum(backlog) FILTER (WHERE is_dead_letter), 0)::BIGINT AS dead_letter_depth,
            coalesce(sum(dead_letter_growth) FILTER (WHERE is_dead_letter), 0)::BIGINT AS dead_letter_growth
        FROM bucketed GROUP BY 1 ORDER BY 1
        """,
        {**params, "flow": flow},
    ).df()
