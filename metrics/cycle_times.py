"""Cycle times (DOMAIN.md section 3): per stage, between two stages, end to end and the headline sub-cycles.

Everything is read from ``fct_requisition_timeline`` (one row per case) and ``fct_stage_durations``
(one row per stage transition); the durations are defined there, once. The headline figures and the
stage breakdown read the same durations from ``fct_case_measures``, the timeline's duration columns one
row per case and measure, sorted by value so that exact quantiles over them are cheaper; a case's
filter attributes are there its cohort's (``fct_case_cohorts``). Figures are
medians (p50) and p90 in seconds, always with the count of cases behind them (``cases``). A case is in
the slice when its first event's day is in the date range and its facility / supplier are selected;
``dimensions`` narrows further by department, priority, category (lists of values).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import duckdb
import pandas as pd

from metrics.filters import Filters
from r2p.schema import STAGES

TIMELINE = "fct_requisition_timeline"
CASE_MEASURES = "fct_case_measures"
COHORTS = "fct_case_cohorts"


@dataclass(frozen=True)
class Measure:
    """One duration: its seconds and the moment it ended (the week it is counted in) as timeline SQL."""

    label: str
    seconds: str
    ended_at: str
    definition: str


SUB_CYCLES: dict[str, Measure] = {
    "end_to_end": Measure(
        "End to end", "end_to_end_s", "last_event_at",
        "First event to last event of a paid requisition (created to paid).",
    ),
    "requisition_to_po": Measure(
        "Requisition to PO", "req_to_po_s", "po_creation_at",
        "Requisition created to its purchase order created.",
    ),
    "po_to_receipt": Measure(
        "PO to receipt", "po_to_receipt_s", "receipt_at", "Purchase order created to goods received.",
    ),
    "receipt_to_match": Measure(
        "Receipt to matched invoice", "receipt_to_match_s", "matched_at",
        "Goods received to the invoice matching PO and receipt (three-way match passed).",
    ),
    "invoice_to_payment": Measure(
        "Invoice to payment", "invoice_to_payment_s", "paid_at", "Invoice received to supplier paid.",
    ),
}
"""End to end and the four headline sub-cycles of DOMAIN.md section 3, in flow order."""

STAGE_MEASURES: dict[str, Measure] = {
    stage: Measure(
        stage.replace("_", " ").capitalize(), f"{stage}_s", f"{stage}_at + to_seconds({stage}_s)",
        f"Time from entering {stage} to entering any later stage.",
    )
    for stage in STAGES
}

MEASURES: dict[str, Measure] = {**SUB_CYCLES, **STAGE_MEASURES}

DIMENSIONS = ("facility_id", "supplier_id", "department", "priority", "category", "week")
"""What cycle times can be broken down by; week is the week the measured interval ended."""


def case_where(filters: Filters, dimensions: dict[str, list[str]] | None = None) -> tuple[str, dict[str, object]]:
    """WHERE clause on the timeline: the global filters (stage excluded: a case has every stage) plus ``dimensions``."""
    where, params = dataclasses.replace(filters, stages=()).where(day="day")
    clauses = [where]
    for column, values in (dimensions or {}).items():
        if column not in ("department", "priority", "category", "status"):
            raise ValueError(f"cannot filter cases by {column}")
        if values:
            clauses.append(f"{column} IN (SELECT unnest(${column}))")
            params[column] = list(values)
    return " AND ".join(clauses), params


def week_of(moment: str) -> str:
    """SQL: the ISO week (its Monday, a DATE) of a UTC timestamp expression, by arithmetic on epoch seconds.

    The warehouse keeps UTC; ICU's time-zone-aware ``date_trunc`` costs several times more per row, and the
    weekly queries truncate every case of the slice."""
    return f"(DATE '1970-01-05' + 7 * floor((epoch({moment}) - 345600) / 604800)::INTEGER)"


def _measure(name: str) -> Measure:
    if name not in MEASURES:
        raise ValueError(f"unknown measure {name!r}; one of {', '.join(MEASURES)}")
    return MEASURES[name]


def _condition(name: str) -> str:
    """End to end counts paid cases only; every other measure counts cases where both ends exist."""
    return "status = 'paid'" if name == "end_to_end" else "true"


def summary(con: duckdb.DuckDBPyConnection, filters: Filters, measures: tuple[str, ...] = tuple(SUB_CYCLES),
            dimensions: dict[str, list[str]] | None = None) -> pd.DataFrame:
    """One row per measure: measure, label, definition, cases, p50_s, p90_s."""
    rows = _quantiles(con, filters, dimensions, [(measure, _condition(measure)) for measure in measures], (0.5, 0.9))
    return pd.DataFrame(
        [(name, MEASURES[name].label, MEASURES[name].definition, cases, *quantiles)
         for name, (cases, quantiles) in zip(measures, rows)],
        columns=["measure", "label", "definition", "cases", "p50_s", "p90_s"],
    ).astype({"cases": "int64", "p50_s": "float64", "p90_s": "float64"})


def _quantiles(con: duckdb.DuckDBPyConnection, filters: Filters, dimensions: dict[str, list[str]] | None,
               measures: list[tuple[str, str]], fractions: tuple[float, ...]) -> list[tuple[int, tuple[float | None, ...]]]:
    """Per (measure, condition on the case's attributes): the cases of the slice with that measure and its exact
    quantiles (quantile_cont) at ``fractions`` (NULLs when no case). One query, a branch per measure, each
    reading the measure's sorted run of fct_case_measures; the day range applies to its rows, the other
    filters to the cases' cohorts."""
    days, params = Filters(start=filters.start, end=filters.end).where(day="day")
    attributes, attribute_params = case_where(dataclasses.replace(filters, start=None, end=None), dimensions)
    params.update(attribute_params)
    branches = []
    for index, (name, condition) in enumerate(measures):
        selected = [clause for clause in (attributes, condition) if clause != "true"]
        # a slice on no case attribute takes every cohort: no semi-join
        cohorts = f"cohort IN (SELECT cohort FROM {COHORTS} WHERE {' AND '.join(selected)})" if selected else "true"
        branches.append(
            f"SELECT {index} AS position, count(seconds) AS cases, quantile_cont(seconds, {list(fractions)}) AS quantiles "
            f"FROM {CASE_MEASURES} WHERE measure = '{_measure(name).seconds}' AND {days} AND {cohorts}")
    rows = dict((position, (cases, tuple(quantiles or (None,) * len(fractions))))
                for position, cases, quantiles in con.execute(" UNION ALL ".join(branches), params).fetchall())
    return [rows[index] for index in range(len(measures))]


def by_dimension(con: duckdb.DuckDBPyConnection, filters: Filters, measure: str, dimension: str,
                 dimensions: dict[str, list[str]] | None = None) -> pd.DataFrame:
    """One row per value of ``dimension``: value, cases, p50_s, p90_s (ordered by value)."""
    if dimension not in DIMENSIONS:
        raise ValueError(f"cannot break cycle times down by {dimension}")
    spec = _measure(measure)
    where, params = case_where(filters, dimensions)
    key = week_of(spec.ended_at) if dimension == "week" else dimension
    return con.execute(
        f"""
        SELECT {dimension}, cases, quantiles[1] AS p50_s, quantiles[2] AS p90_s FROM (
            SELECT {key} AS {dimension}, count(*) AS cases, quantile_cont({spec.seconds}, [0.5, 0.9]) AS quantiles
            FROM {TIMELINE}
            WHERE {where} AND {_condition(measure)} AND {spec.seconds} IS NOT NULL
            GROUP BY 1
        ) ORDER BY 1 NULLS LAST
        """,
        params,
    ).df()


def weekly(con: duckdb.DuckDBPyConnection, filters: Filters, measure: str, by: str | None = None,
           dimensions: dict[str, list[str]] | None = None) -> pd.DataFrame:
    """One row per week the interval ended (and value of ``by``): cases, p50_s, p90_s, and the change of the
    median from the previous week with data: previous_p50_s, previous_cases, p50_change_s, p50_change_pct."""
    spec = _measure(measure)
    where, params = case_where(filters, dimensions)
    group = [f"{week_of(spec.ended_at)} AS week"]
    if by is not None:
        if by not in DIMENSIONS or by == "week":
            raise ValueError(f"cannot split weekly cycle times by {by}")
        group.append(by)
    partition, order = (f"PARTITION BY {by}", f"{by}, week") if by else ("", "week")
    return con.execute(
        f"""
        WITH grouped AS (
            SELECT {', '.join(group)}, count(*) AS cases, quantile_cont({spec.seconds}, [0.5, 0.9]) AS quantiles
            FROM {TIMELINE}
            WHERE {where} AND {_condition(measure)} AND {spec.seconds} IS NOT NULL
            GROUP BY ALL
        ),
        weeks AS (SELECT * EXCLUDE (quantiles), quantiles[1] AS p50_s, quantiles[2] AS p90_s FROM grouped)
        SELECT *,
            lag(p50_s) OVER w AS previous_p50_s,
            lag(cases) OVER w AS previous_cases,
            p50_s - previous_p50_s AS p50_change_s,
            100.0 * (p50_s - previous_p50_s) / nullif(previous_p50_s, 0) AS p50_change_pct
        FROM weeks
        WINDOW w AS ({partition} ORDER BY week)
        ORDER BY {order}
        """,
        params,
    ).df()


def stage_breakdown(con: duckdb.DuckDBPyConnection, filters: Filters,
                    dimensions: dict[str, list[str]] | None = None) -> pd.DataFrame:
    """One row per stage (flow order; the stage filter's stages when set) with a duration:
    stage, cases, p10_s, p25_s, p50_s, p75_s, p90_s of its cycle time (the box of a box plot)."""
    stages = [stage for stage in STAGES if not filters.stages or stage in filters.stages]
    rows = _quantiles(con, filters, dimensions, [(stage, "true") for stage in stages], (0.1, 0.25, 0.5, 0.75, 0.9))
    return pd.DataFrame(
        [(stage, cases, *quantiles) for stage, (cases, quantiles) in zip(stages, rows) if cases],
        columns=["stage", "cases", "p10_s", "p25_s", "p50_s", "p75_s", "p90_s"],
    ).astype({"cases": "int64", **{column: "float64" for column in ("p10_s", "p25_s", "p50_s", "p75_s", "p90_s")}})


def between(con: duckdb.DuckDBPyConnection, filters: Filters, from_stage: str, to_stage: str,
            dimension: str | None = None, dimensions: dict[str, list[str]] | None = None) -> pd.DataFrame:
    """Time from the first entry into ``from_stage`` to the first entry into ``to_stage``: cases, p50_s, p90_s,
    overall or per value of ``dimension``."""
    for stage in (from_stage, to_stage):
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}")
    if dimension is not None and dimension not in DIMENSIONS:
        raise ValueError(f"cannot break cycle times down by {dimension}")
    where, params = case_where(filters, dimensions)
    seconds = f"epoch({to_stage}_at - {from_stage}_at)"
    key = week_of(f"{to_stage}_at") if dimension == "week" else dimension
    select, group = (f"{key} AS {dimension}, ", "GROUP BY 1 ORDER BY 1 NULLS LAST") if dimension else ("", "")
    return con.execute(
        f"""
        SELECT {select}count(*) AS cases, quantile_cont({seconds}, 0.5) AS p50_s, quantile_cont({seconds}, 0.9) AS p90_s
        FROM {TIMELINE} WHERE {where} AND {seconds} IS NOT NULL {group}
        """,
        params,
    ).df()


def variants(con: duckdb.DuckDBPyConnection, filters: Filters, limit: int = 10,
             dimensions: dict[str, list[str]] | None = None) -> pd.DataFrame:
    """The most common stage sequences: variant, cases, share (of the slice's cases), p50_s and p90_s of
    end_to_end_s (first to last event, every case of the variant), most common first."""
    where, params = case_where(filters, dimensions)
    return con.execute(
        f"""
        SELECT variant, cases, share, quantiles[1] AS p50_s, quantiles[2] AS p90_s FROM (
            SELECT variant, count(*) AS cases, count(*) / sum(count(*)) OVER () AS share,
                quantile_cont(end_to_end_s, [0.5, 0.9]) AS quantiles
            FROM {TIMELINE} WHERE {where}
            GROUP BY variant
        ) ORDER BY cases DESC, variant LIMIT {int(limit)}
        """,
        params,
    ).df()


def slowest(con: duckdb.DuckDBPyConnection, filters: Filters, stage: str, limit: int = 20,
            dimensions: dict[str, list[str]] | None = None) -> pd.DataFrame:
    """The cases that spent longest in ``stage``: case_id, facility_id, supplier_id, priority, value,
    entered_at, seconds (its cycle time), status; slowest first."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}")
    where, params = case_where(filters, dimensions)
    return con.execute(
        f"""
        SELECT case_id, facility_id, supplier_id, priority, value, {stage}_at AS entered_at, {stage}_s AS seconds, status
        FROM {TIMELINE} WHERE {where} AND {stage}_s IS NOT NULL
        ORDER BY seconds DESC, case_id LIMIT {int(limit)}
        """,
        params,
    ).df()


def transitions(con: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    """One row per stage pair that directly follows (fct_stage_durations): from_stage, to_stage, transitions,
    rework (is it a step back), p50_s, p90_s; most frequent first."""
    where, params = dataclasses.replace(filters, stages=()).where(day="day")
    return con.execute(
        f"""
        SELECT from_stage, to_stage, count(*) AS transitions, bool_or(is_rework) AS rework,
            quantile_cont(duration_s, 0.5) AS p50_s, quantile_cont(duration_s, 0.9) AS p90_s
        FROM fct_stage_durations WHERE {where}
        GROUP BY ALL ORDER BY transitions DESC, from_stage, to_stage
        """,
        params,
    ).df()


def format_duration(seconds: float | None) -> str:
    """A duration for people: `45 s`, `12 min`, `3.5 h`, `2.1 d`; an em dash for none."""
    if seconds is None or seconds != seconds:
        return "—"
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    if seconds < 60:
        return f"{sign}{seconds:.0f} s"
    if seconds < 3600:
        return f"{sign}{seconds / 60:.0f} min"
    if seconds < 86400:
        return f"{sign}{seconds / 3600:.1f} h"
    return f"{sign}{seconds / 86400:.1f} d"


def distinct_values(con: duckdb.DuckDBPyConnection, column: str) -> list[str]:
    """The values of a case dimension (department, priority, category) present in the timeline, sorted (read
    from its cohorts, a few rows)."""
    if column not in ("department", "priority", "category"):
        raise ValueError(f"no case filter on {column}")
    rows = con.execute(f"SELECT DISTINCT {column} FROM {COHORTS} WHERE {column} IS NOT NULL ORDER BY 1").fetchall()
    return [row[0] for row in rows]
