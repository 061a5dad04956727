"""Failure rates of integration operations and business events, from fct_failure_rates (hourly) and its
daily roll-up fct_failure_rates_daily (read wherever hours are not asked for).

Every rate comes with its counts and a Wilson score interval (95 %), so that 1 failure of 2 shows as
"50 %, somewhere between 9 % and 91 %" and is not read as half of many. Counts are summed over the
selected slice first and the rate is computed once from the sums (``RATE_COLUMNS``).
"""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd

from metrics.filters import Filters

Z = 1.959963984540054
"""Normal quantile of a two-sided 95 % interval."""

INPUTS = ("spans", "transactions")
DIMENSIONS = ("facility_id", "supplier_id", "stage", "system", "interface")


def rate_columns(failures: str = "failures", attempts: str = "attempts") -> str:
    """SQL for ``failure_rate``, ``ci_low`` and ``ci_high`` (Wilson score interval) from two count expressions."""
    n, k, z2 = f"({attempts})", f"({failures})", f"{Z * Z!r}"
    p = f"({k}::DOUBLE / nullif({n}, 0))"
    centre = f"(({p} + {z2} / (2 * {n})) / (1 + {z2} / {n}))"
    half = f"({Z!r} * sqrt({p} * (1 - {p}) / {n} + {z2} / (4 * {n} * {n})) / (1 + {z2} / {n}))"
    return (
        f"{p} AS failure_rate, "
        f"CASE WHEN {n} > 0 THEN greatest({centre} - {half}, 0.0) END AS ci_low, "
        f"CASE WHEN {n} > 0 THEN least({centre} + {half}, 1.0) END AS ci_high"
    )


def _check_input(input: str) -> None:
    if input not in INPUTS:
        raise ValueError(f"input must be one of {INPUTS}, not {input!r}")


def _where(filters: Filters, input: str, **equal: str | None) -> tuple[str, dict[str, object]]:
    _check_input(input)
    where, params = filters.where()
    clauses = [where, "input = $input"]
    params["input"] = input
    for column, value in equal.items():
        if value is not None:
            clauses.append(f"{column} IS NOT DISTINCT FROM ${column}")
            params[column] = value
    return " AND ".join(clauses), params


def period(con: duckdb.DuckDBPyConnection, filters: Filters) -> tuple[dt.date, dt.date] | None:
    """The selected days: the filter's range, open ends closed by the data's first and last day."""
    first, last = con.execute("SELECT min(day), max(day) FROM fct_failure_rates_daily").fetchone()
    if first is None:
        return None
    return (filters.start or first, filters.end or last)


def previous_filters(filters: Filters, selected: tuple[dt.date, dt.date]) -> Filters:
    """The same slice over the equally long period just before ``selected``."""
    start, end = selected
    length = end - start + dt.timedelta(days=1)
    return Filters(start=start - length, end=start - dt.timedelta(days=1), facilities=filters.facilities,
                   suppliers=filters.suppliers, stages=filters.stages)


def totals(con: duckdb.DuckDBPyConnection, filters: Filters, input: str) -> dict[str, float | int | None]:
    """Attempts, failures, rate and interval of the whole slice, and the same of the previous period."""
    selected = period(con, filters)
    if selected is None:
        return {"attempts": 0, "failures": 0, "failure_rate": None, "ci_low": None, "ci_high": None,
                "previous_attempts": 0, "previous_failures": 0, "previous_rate": None}
    current = Filters(start=selected[0], end=selected[1], facilities=filters.facilities,
                      suppliers=filters.suppliers, stages=filters.stages)
    where, params = _where(current, input)
    previous_where, previous_params = _where(previous_filters(filters, selected), input)
    sql = f"""
        WITH now AS (SELECT coalesce(sum(attempts), 0) AS attempts, coalesce(sum(failures), 0) AS failures
                     FROM fct_failure_rates_daily WHERE {where}),
        before AS (SELECT coalesce(sum(attempts), 0) AS attempts, coalesce(sum(failures), 0) AS failures
                   FROM fct_failure_rates_daily WHERE {previous_where.replace('$', '$p_')})
        SELECT now.attempts::BIGINT AS attempts, now.failures::BIGINT AS failures, {rate_columns('now.failures', 'now.attempts')},
            before.attempts::BIGINT AS previous_attempts, before.failures::BIGINT AS previous_failures,
            before.failures::DOUBLE / nullif(before.attempts, 0) AS previous_rate
        FROM now, before
    """
    cursor = con.execute(sql, {**params, **{f"p_{k}": v for k, v in previous_params.items()}})
    names = [column[0] for column in cursor.description]
    return dict(zip(names, cursor.fetchone()))


def heatmap(con: duckdb.DuckDBPyConnection, filters: Filters, input: str = "spans") -> pd.DataFrame:
    """Facility x stage cells: attempts, failures, failure_rate, ci_low, ci_high (cells with attempts only)."""
    where, params = _where(filters, input)
    return con.execute(
        f"""
        SELECT coalesce(facility_id, '(none)') AS facility_id, coalesce(stage, '(none)') AS stage,
            sum(attempts)::BIGINT AS attempts, sum(failures)::BIGINT AS failures,
            {rate_columns('sum(failures)', 'sum(attempts)')}
        FROM fct_failure_rates_daily WHERE {where}
        GROUP BY ALL ORDER BY 1, 2
        """,
        params,
    ).df()


def by_dimension(
    con: duckdb.DuckDBPyConnection,
    filters: Filters,
    dimension: str,
    input: str = "spans",
    limit: int = 20,
    facility_id: str | None = None,
    stage: str | None = None,
) -> pd.DataFrame:
    """The values of ``dimension`` with the most failures (ties: higher Wilson lower bound first).

    Columns: the dimension, attempts, failures, failure_rate, ci_low, ci_high, previous_attempts,
    previous_failures, previous_rate, change (rate minus previous rate, percentage points as a fraction),
    first_failure_at, last_failure_at, sample_failed_trace_id. ``facility_id`` / ``stage`` narrow the slice
    to one heatmap cell (``(none)`` is not a value: pass None for no narrowing).
    """
    if dimension not in DIMENSIONS:
        raise ValueError(f"cannot group failure rates by {dimension}")
    selected = period(con, filters)
    if selected is None:
        return pd.DataFrame(columns=[dimension, "attempts", "failures", "failure_rate", "ci_low", "ci_high"])
    current = Filters(start=selected[0], end=selected[1], facilities=filters.facilities,
                      suppliers=filters.suppliers, stages=filters.stages)
    narrowing = {"cell_facility": facility_id, "cell_stage": stage}
    where, params = _where(current, input)
    previous_where, previous_params = _where(previous_filters(filters, selected), input)
    cell = "".join(
        f" AND {column} = ${name}" for name, column in (("cell_facility", "facility_id"), ("cell_stage", "stage"))
        if narrowing[name] is not None
    )
    params.update({name: value for name, value in narrowing.items() if value is not None})
    params.update({f"p_{k}": v for k, v in previous_params.items()})
    return con.execute(
        f"""
        WITH now AS (
            SELECT coalesce({dimension}, '(none)') AS {dimension},
                sum(attempts)::BIGINT AS attempts, sum(failures)::BIGINT AS failures,
                min(first_failure_at) AS first_failure_at, max(last_failure_at) AS last_failure_at,
                max(sample_failed_trace_id) AS sample_failed_trace_id
            FROM fct_failure_rates_daily WHERE {where}{cell} GROUP BY 1
        ),
        before AS (
            SELECT coalesce({dimension}, '(none)') AS {dimension},
                sum(attempts)::BIGINT AS previous_attempts, sum(failures)::BIGINT AS previous_failures
            FROM fct_failure_rates_daily WHERE {previous_where.replace('$', '$p_')}{cell} GROUP BY 1
        )
        SELECT now.{dimension}, attempts, failures, {rate_columns()},
            coalesce(previous_attempts, 0) AS previous_attempts, coalesce(previous_failures, 0) AS previous_failures,
            previous_failures::DOUBLE / nullif(previous_attempts, 0) AS previous_rate,
            failures::DOUBLE / attempts - previous_failures::DOUBLE / nullif(previous_attempts, 0) AS change,
            first_failure_at, last_failure_at, sample_failed_trace_id
        FROM now LEFT JOIN before USING ({dimension})
        ORDER BY failures DESC, ci_low DESC, now.{dimension}
        LIMIT {int(limit)}
        """,
        params,
    ).df()


def over_time(
    con: duckdb.DuckDBPyConnection, filters: Filters, input: str = "spans", grain: str = "day"
) -> pd.DataFrame:
    """Attempts, failures, rate and interval per hour or day of the slice."""
    if grain not in ("hour", "day"):
        raise ValueError("grain must be hour or day")
    where, params = _where(filters, input)
    return con.execute(
        f"""
        SELECT {grain} AS period, sum(attempts)::BIGINT AS attempts, sum(failures)::BIGINT AS failures,
            {rate_columns('sum(failures)', 'sum(attempts)')}
        FROM {"fct_failure_rates" if grain == "hour" else "fct_failure_rates_daily"} WHERE {where} GROUP BY 1 ORDER BY 1
        """,
        params,
    ).df()


def failed_operations(
    con: duckdb.DuckDBPyConnection,
    filters: Filters,
    input: str = "spans",
    facility_id: str | None = None,
    stage: str | None = None,
    limit: int = 100,
) -> pd.DataFrame:
    """The latest failures of the slice (one heatmap cell when facility_id / stage are given), from the
    exception occurrences (fct_exception_occurrences): when, where, what failed, the business ids and the trace."""
    _check_input(input)
    where, params = filters.where()
    sources = ["span"] if input == "spans" else ["transaction", "match", "edi_rejection"]
    clauses = [where, "source IN (SELECT unnest($sources))"]
    params["sources"] = sources
    for name, column, value in (("cell_facility", "facility_id", facility_id), ("cell_stage", "stage", stage)):
        if value is not None:
            clauses.append(f"coalesce({column}, '(none)') = ${name}")
            params[name] = value
    return con.execute(
        f"""
        SELECT occurred_at, system, endpoint, error_type, message, facility_id, supplier_id, stage,
            requisition_id, po_number, invoice_id, object_type, object_id, trace_id, span_id
        FROM fct_exception_occurrences WHERE {' AND '.join(clauses)}
        ORDER BY occurred_at DESC, occurrence_id LIMIT {int(limit)}
        """,
        params,
    ).df()
