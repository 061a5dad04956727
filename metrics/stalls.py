"""Stalled approvals (DOMAIN.md section 3) as of any moment, sorted by risk, with the human / system split.

The definition lives in one model, ``fct_stalled_approvals``: the table holds the stalls as of the
data's latest event (built at every refresh); for any other moment this module runs the same SELECT
with the variable ``stalls_as_of`` set, over the precomputed waits (``fct_approval_waits``).
"""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd

from metrics import build
from metrics.filters import Filters

AGE_BUCKETS: tuple[tuple[str, float], ...] = (
    ("< 1 day", 86400.0),
    ("1-3 days", 3 * 86400.0),
    ("3-7 days", 7 * 86400.0),
    ("> 7 days", float("inf")),
)
"""Aging buckets of a stalled requisition's wait at its current step (upper bounds in seconds, exclusive)."""

RISK_ORDER = "priority_rank, over_sla_s DESC, value DESC NULLS LAST, case_id"
"""Risk first: clinical priority, then how far past its SLA, then the money behind it."""


def _model_sql() -> str:
    return next(model.sql for model in build.models() if model.name == "fct_stalled_approvals")


def stalled(con: duckdb.DuckDBPyConnection, filters: Filters, as_of: dt.datetime | None = None,
            priorities: tuple[str, ...] = ()) -> pd.DataFrame:
    """Requisitions stalled as of ``as_of`` (None: the data's latest event), riskiest first, with an ``aging``
    bucket column. The global date range does not apply (a stall is a state at a moment); facility,
    supplier and stage (approval / budget_check) filters do, and ``priorities`` (stat / urgent / routine)."""
    where, params = Filters(facilities=filters.facilities, suppliers=filters.suppliers, stages=filters.stages).where()
    if priorities:
        where += " AND coalesce(priority, 'routine') IN (SELECT unnest($priorities))"
        params["priorities"] = list(priorities)
    if as_of is None:
        frame = con.execute(f"SELECT * FROM fct_stalled_approvals WHERE {where} ORDER BY {RISK_ORDER}", params).df()
    else:
        con.execute("SET VARIABLE stalls_as_of = $as_of", {"as_of": as_of})
        try:
            frame = con.execute(f"SELECT * FROM ({_model_sql()}) WHERE {where} ORDER BY {RISK_ORDER}", params).df()
        finally:
            con.execute("RESET VARIABLE stalls_as_of")
    frame["aging"] = pd.Categorical([aging_bucket(age) for age in frame["age_s"]], categories=[b for b, _ in AGE_BUCKETS])
    return frame


def aging_bucket(age_s: float) -> str:
    """The AGE_BUCKETS label of a wait of ``age_s`` seconds."""
    return next(label for label, upper in AGE_BUCKETS if age_s < upper)


def aging(frame: pd.DataFrame) -> pd.DataFrame:
    """Stalled requisitions and their value per facility, priority and aging bucket (from ``stalled``)."""
    table = frame.assign(priority=frame["priority"].fillna("routine"), value=frame["value"].astype(float))
    return (
        table.groupby(["facility_id", "priority", "aging"], observed=True)
        .agg(requisitions=("case_id", "size"), value=("value", "sum"))
        .reset_index()
    )


def wait_split(frame: pd.DataFrame) -> dict[str, float]:
    """Total human and system wait in seconds over the stalled requisitions of ``frame``."""
    return {"human_s": float(frame["human_wait_s"].sum()), "system_s": float(frame["system_wait_s"].sum())}


def latest_moment(con: duckdb.DuckDBPyConnection) -> dt.datetime | None:
    """The data's "now": the latest occurred_at in the warehouse (the default moment of ``stalled``)."""
    return con.execute("SELECT max(occurred_at) FROM transaction_events").fetchone()[0]
