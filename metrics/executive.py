"""Executive KPIs: cycle-time trends and rates, each with a one-line definition and the counts behind it.

Rates come from ``fct_executive_kpis_weekly`` (numerators and denominators per week, facility and
supplier, so any selection sums exactly); cycle times from ``metrics.cycle_times`` (medians over the
timeline, computed per query because medians do not add up).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

import duckdb
import pandas as pd

from metrics import cycle_times
from metrics.filters import Filters


@dataclass(frozen=True)
class Kpi:
    label: str
    definition: str
    unit: str
    """`s` for a duration (median seconds), `%` for a rate."""
    higher_is_better: bool


KPIS: dict[str, Kpi] = {
    "requisition_to_po": Kpi("Requisition to PO (median)", cycle_times.SUB_CYCLES["requisition_to_po"].definition
                             + " Counted in the week the PO was created.", "s", False),
    "end_to_end": Kpi("End to end (median)", cycle_times.SUB_CYCLES["end_to_end"].definition
                      + " Counted in the week of its last event.", "s", False),
    "touchless": Kpi("Touchless rate", "Paid requisitions with no manual step, return, rejection or exception, "
                     "of all paid; counted in the payment week.", "%", True),
    "on_time_payment": Kpi("On-time payment rate", "Paid by the due date (invoice date + terms, net 30 when not "
                           "given), of all paid; counted in the payment week.", "%", True),
    "first_pass_match": Kpi("First-pass three-way match", "Invoices whose first three-way match passed, of all "
                            "matched; counted in the week of the first match.", "%", True),
    "exception_spend": Kpi("Spend touched by exceptions", "Value of requisitions with a failed or exception event "
                           "or an error span, of all requisition value; by week created.", "%", False),
}
"""The executive KPIs, in tile order."""

RATES = tuple(name for name, kpi in KPIS.items() if kpi.unit == "%")


def _weekly_filters(filters: Filters) -> Filters:
    """The filters on week columns: a date range covers the weeks that start within it (start moved to its Monday)."""
    start = filters.start - dt.timedelta(days=filters.start.weekday()) if filters.start else None
    return dataclasses.replace(filters, start=start, stages=())


def rate_trends(con: duckdb.DuckDBPyConnection, filters: Filters, by: str | None = None) -> pd.DataFrame:
    """One row per rate KPI and week (and facility_id when ``by`` is facility_id): kpi, week, numerator,
    denominator, value (numerator / denominator, NULL when the denominator is 0)."""
    if by not in (None, "facility_id"):
        raise ValueError(f"cannot split executive rates by {by}")
    where, params = _weekly_filters(filters).where(day="week")
    keys = "kpi, week" + (", facility_id" if by else "")
    return con.execute(
        f"""
        SELECT {keys}, sum(numerator) AS numerator, sum(denominator) AS denominator,
            sum(numerator) / nullif(sum(denominator), 0) AS value
        FROM fct_executive_kpis_weekly WHERE {where}
        GROUP BY ALL ORDER BY {keys}
        """,
        params,
    ).df()


def tiles(con: duckdb.DuckDBPyConnection, filters: Filters) -> list[dict]:
    """One dict per KPI (KPIS order): name, label, definition, unit, value and count of the latest week with data,
    previous (the week before), change (value - previous) and better (True, False, or None when unknown)."""
    result = []
    rates = rate_trends(con, filters)
    for name, kpi in KPIS.items():
        if kpi.unit == "%":
            weeks = rates[rates["kpi"] == name].dropna(subset=["value"])
            values = [(row.week, row.value, row.denominator) for row in weeks.itertuples()]
        else:
            weeks = cycle_times.weekly(con, filters, name)
            values = [(row.week, row.p50_s, row.cases) for row in weeks.itertuples()]
        latest = values[-1] if values else (None, None, 0)
        previous = values[-2] if len(values) > 1 else (None, None, 0)
        change = latest[1] - previous[1] if latest[1] is not None and previous[1] is not None else None
        result.append({
            "name": name, "label": kpi.label, "definition": kpi.definition, "unit": kpi.unit,
            "week": latest[0], "value": latest[1], "count": latest[2], "previous": previous[1],
            "previous_count": previous[2], "change": change,
            "better": None if not change else (change > 0) == kpi.higher_is_better,
        })
    return result


def facility_comparison(con: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    """One row per facility: cases, requisition-to-PO and end-to-end medians, and each rate over the slice."""
    cycle = cycle_times.by_dimension(con, filters, "requisition_to_po", "facility_id").rename(
        columns={"cases": "po_cases", "p50_s": "requisition_to_po_p50_s", "p90_s": "requisition_to_po_p90_s"})
    end = cycle_times.by_dimension(con, filters, "end_to_end", "facility_id").rename(
        columns={"cases": "paid_cases", "p50_s": "end_to_end_p50_s", "p90_s": "end_to_end_p90_s"})
    rates = rate_trends(con, filters, by="facility_id")
    totals = rates.groupby(["facility_id", "kpi"])[["numerator", "denominator"]].sum().reset_index()
    totals["value"] = totals["numerator"] / totals["denominator"].where(totals["denominator"] != 0)
    wide = totals.pivot(index="facility_id", columns="kpi", values="value").reindex(columns=list(RATES)).reset_index()
    return cycle.merge(end, on="facility_id", how="outer").merge(wide, on="facility_id", how="outer").sort_values(
        "facility_id").reset_index(drop=True)
