"""What the Overview page shows: activity and failures by stage and by facility, from fct_daily_activity."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import pandas as pd

from metrics.filters import Filters
from r2p.schema import STAGES


@dataclass(frozen=True)
class FilterOptions:
    """The values the sidebar filters offer, and the data's date span (None when empty)."""

    facilities: list[str]
    suppliers: list[str]
    stages: list[str]
    first_day: dt.date | None
    last_day: dt.date | None


def filter_options(con: duckdb.DuckDBPyConnection) -> FilterOptions:
    def distinct(column: str) -> list[str]:
        rows = con.execute(f"SELECT DISTINCT {column} FROM fct_daily_activity WHERE {column} IS NOT NULL ORDER BY 1")
        return [row[0] for row in rows.fetchall()]

    first_day, last_day = con.execute("SELECT min(day), max(day) FROM fct_daily_activity").fetchone()
    present = set(distinct("stage"))
    return FilterOptions(
        facilities=distinct("facility_id"),
        suppliers=distinct("supplier_id"),
        stages=[stage for stage in STAGES if stage in present] + sorted(present - set(STAGES)),
        first_day=first_day,
        last_day=last_day,
    )


def is_empty(con: duckdb.DuckDBPyConnection) -> bool:
    """True when nothing has been loaded yet."""
    return con.execute("SELECT count(*) FROM ingest_batches").fetchone()[0] == 0


def totals(con: duckdb.DuckDBPyConnection, filters: Filters) -> dict[str, int]:
    """Business events, integration operations and the failures of each, in the filtered slice."""
    where, params = filters.where()
    row = con.execute(
        f"""
        SELECT
            coalesce(sum(records) FILTER (WHERE input = 'transactions'), 0),
            coalesce(sum(failures) FILTER (WHERE input = 'transactions'), 0),
            coalesce(sum(records) FILTER (WHERE input = 'spans'), 0),
            coalesce(sum(failures) FILTER (WHERE input = 'spans'), 0)
        FROM fct_daily_activity WHERE {where}
        """,
        params,
    ).fetchone()
    return dict(zip(("events", "failed_events", "spans", "failed_spans"), map(int, row)))


def activity_by(con: duckdb.DuckDBPyConnection, filters: Filters, dimension: str) -> pd.DataFrame:
    """Records and failures per value of ``dimension`` (stage or facility_id) and input, stages in flow order."""
    if dimension not in ("stage", "facility_id"):
        raise ValueError(f"cannot group the overview by {dimension}")
    where, params = filters.where()
    frame = con.execute(
        f"""
        SELECT coalesce({dimension}, '(none)') AS {dimension}, input,
            sum(records)::BIGINT AS records, sum(failures)::BIGINT AS failures
        FROM fct_daily_activity WHERE {where}
        GROUP BY ALL ORDER BY 1, 2
        """,
        params,
    ).df()
    if dimension == "stage":
        order = {stage: position for position, stage in enumerate(STAGES)}
        frame = frame.sort_values("stage", key=lambda column: column.map(lambda s: order.get(s, len(order))), kind="stable")
    return frame.reset_index(drop=True)
