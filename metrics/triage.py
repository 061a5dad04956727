"""The exception triage queue: groups ranked by clinical risk (explained), a group's detail, what changed.

Reads fct_exception_groups, fct_exception_occurrences and fct_triage_history; the rank weights,
runbooks and critical items come from ``defaults/triage.toml``. Decisions are written by
``r2p.triage``, never here.
"""

from __future__ import annotations

import io
import math
import re
from pathlib import Path

import duckdb
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from metrics.filters import Filters
from r2p.config import load_toml

SETTINGS = Path(__file__).parent / "defaults" / "triage.toml"

OPEN_STATUSES: tuple[str, ...] = ("new", "regressed", "acknowledged")
"""The statuses the queue shows unless asked otherwise."""

DIMENSIONS: tuple[str, ...] = (
    "facility_id", "supplier_id", "system", "interface", "stage", "error_type", "source", "priority",
    "endpoint", "http_status_code", "queue",
)
"""Occurrence columns the what-changed comparison and the queue's focus filter look at; attribute
values are looked at too, as ``attr:<key>``."""

ATTRIBUTE_PREFIX = "attr:"


def _check_regex(pattern: str) -> str:
    re.compile(pattern)
    return pattern


class Runbook(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pattern: str
    url: str

    _valid = field_validator("pattern")(_check_regex)


class RankWeights(BaseModel):
    """Weights of the rank's factors (see defaults/triage.toml for each factor's meaning)."""

    model_config = ConfigDict(extra="forbid")

    stat: float = Field(ge=0)
    critical_item: float = Field(ge=0)
    critical_facility: float = Field(ge=0)
    value: float = Field(ge=0)
    volume: float = Field(ge=0)
    breadth: float = Field(ge=0)
    regressed: float = Field(ge=0)
    trend: float = Field(ge=0)
    age: float = Field(ge=0)
    slo_burn: float = Field(ge=0)
    acute: float = Field(ge=0)
    value_scale: float = Field(gt=0)
    volume_scale: float = Field(gt=0)
    age_scale_days: float = Field(gt=0)
    acute_days: float = Field(gt=0)


class TriageSettings(BaseModel):
    """Runbooks per error type, clinically critical items and facilities, rank weights."""

    model_config = ConfigDict(extra="forbid")

    runbooks: list[Runbook] = Field(default_factory=list)
    critical_items: list[str] = Field(default_factory=list)
    critical_facilities: list[str] = Field(default_factory=list)
    rank: RankWeights

    @field_validator("critical_items")
    @classmethod
    def _valid_items(cls, patterns: list[str]) -> list[str]:
        return [_check_regex(pattern) for pattern in patterns]


def load_settings(path: Path = SETTINGS) -> TriageSettings:
    """The validated triage settings."""
    return load_toml(TriageSettings, path, "triage settings")


def _focus_clause(focus: tuple[str, str] | None) -> tuple[str, dict[str, object]]:
    """A WHERE clause keeping occurrences whose dimension (or attribute) has the focused value."""
    if focus is None:
        return "true", {}
    dimension, value = focus
    if dimension.startswith(ATTRIBUTE_PREFIX):
        return "attributes ->> $focus_key = $focus_value", {"focus_key": dimension[len(ATTRIBUTE_PREFIX):],
                                                            "focus_value": value}
    if dimension not in DIMENSIONS:
        raise ValueError(f"unknown dimension {dimension!r}")
    return f"cast({dimension} as varchar) = $focus_value", {"focus_value": value}


def queue(
    con: duckdb.DuckDBPyConnection,
    filters: Filters,
    statuses: tuple[str, ...] = OPEN_STATUSES,
    focus: tuple[str, str] | None = None,
    settings: TriageSettings | None = None,
) -> pd.DataFrame:
    """Groups with an occurrence inside the filters (and the focus), in ``statuses``, ranked by risk.

    Columns: fct_exception_groups' columns, ``matching`` (occurrences inside the filters), ``risk``
    (the score), ``risk_reasons`` (its factors with their points, largest first), one ``points_<factor>``
    column per factor, ``runbook``.
    """
    settings = settings or load_settings()
    where, params = filters.where(day="day")
    focus_where, focus_params = _focus_clause(focus)
    frame = con.execute(
        f"""
        WITH matching AS (
            SELECT fingerprint, count(*) AS matching
            FROM fct_exception_occurrences
            WHERE {where} AND {focus_where}
            GROUP BY fingerprint
        ),
        spread AS (SELECT count(DISTINCT facility_id) AS facilities_total FROM fct_exception_occurrences)
        SELECT g.*, m.matching, s.facilities_total
        FROM fct_exception_groups g JOIN matching m USING (fingerprint), spread s
        WHERE g.status IN (SELECT unnest($statuses))
        """,
        {**params, **focus_params, "statuses": list(statuses)},
    ).df()
    return rank(frame, settings)


def _capped(value: float) -> float:
    return max(0.0, min(1.0, value))


def _factors(row: pd.Series, settings: TriageSettings) -> dict[str, tuple[float, str]]:
    """Each factor's value (0..1) and how to say it, for one group."""
    weights = settings.rank
    items = row["items"] if isinstance(row["items"], str) else ""
    critical_item = next((p for p in settings.critical_items if re.search(p, items, re.IGNORECASE)), None)
    # a group with no facility holds NULL, which pandas may hand over as None or as pd.NA
    facilities = [] if row["facilities"] is None or row["facilities"] is pd.NA else list(row["facilities"])
    critical_facility = next((f for f in facilities if f in settings.critical_facilities), None)
    amount = float(row["amount"]) if pd.notna(row["amount"]) else 0.0
    age_days = (row["as_of"] - row["first_seen"]).total_seconds() / 86400
    span_days = (row["last_seen"] - row["first_seen"]).total_seconds() / 86400
    stat = 1.0 if row["stat_occurrences"] else 0.5 if row["urgent_occurrences"] else 0.0
    total = row.get("facilities_total") or 0
    burning = [] if row["burning_flows"] is None or row["burning_flows"] is pd.NA else list(row["burning_flows"])
    return {
        "stat": (stat, f"{row['stat_occurrences']} on stat requisitions" if row["stat_occurrences"]
                 else f"{row['urgent_occurrences']} on urgent requisitions"),
        "critical_item": (1.0 if critical_item else 0.0, f"critical items ({critical_item})"),
        "critical_facility": (1.0 if critical_facility else 0.0, f"critical facility {critical_facility}"),
        "value": (_capped(math.log10(1 + amount) / math.log10(1 + weights.value_scale)), f"{amount:,.0f} at stake"),
        "volume": (_capped(math.log10(1 + row["occurrences"]) / math.log10(1 + weights.volume_scale)),
                   f"{row['occurrences']:,} occurrences"),
        "breadth": (_capped(len(facilities) / total) if total else 0.0, f"{len(facilities)} of {total} facilities"),
        "regressed": (1.0 if row["reopened_reason"] else 0.0, f"reopened: {row['reopened_reason']}"),
        "trend": (1.0 if row["occurrences_24h"] > row["occurrences_prior_24h"] else 0.0,
                  f"rising: {row['occurrences_24h']} in the last 24 h vs {row['occurrences_prior_24h']}"),
        "age": (_capped(age_days / weights.age_scale_days), f"open {age_days:.1f} days"),
        "slo_burn": (1.0 if burning else 0.0, f"SLO of {', '.join(burning)} burning while it occurred"),
        "acute": (1.0 if span_days <= weights.acute_days else 0.0, f"acute: all within {span_days * 24:.0f} h"),
    }


def rank(frame: pd.DataFrame, settings: TriageSettings) -> pd.DataFrame:
    """Score and explain groups (rows of fct_exception_groups with ``facilities_total``), highest risk first."""
    names = ("stat", "critical_item", "critical_facility", "value", "volume", "breadth", "regressed", "trend", "age",
             "slo_burn", "acute")
    if frame.empty:
        for name in names:
            frame[f"points_{name}"] = pd.Series(dtype=float)
        return frame.assign(risk=pd.Series(dtype=float), risk_reasons=pd.Series(dtype=str),
                            runbook=pd.Series(dtype=str))
    points_rows, reasons = [], []
    for _, row in frame.iterrows():
        factors = _factors(row, settings)
        points = {name: round(getattr(settings.rank, name) * factors[name][0], 1) for name in names}
        points_rows.append(points)
        said = sorted(((p, factors[name][1]) for name, p in points.items() if p > 0), key=lambda x: -x[0])
        reasons.append(" · ".join(f"{text} (+{p:g})" for p, text in said) or "no risk factor")
    points_frame = pd.DataFrame(points_rows, index=frame.index)
    frame = frame.assign(
        risk=points_frame.sum(axis=1).round(1),
        risk_reasons=reasons,
        runbook=[runbook(settings, row) for _, row in frame.iterrows()],
        **{f"points_{name}": points_frame[name] for name in names},
    )
    return frame.sort_values(["risk", "last_seen", "fingerprint"], ascending=[False, False, True]).reset_index(drop=True)


def runbook(settings: TriageSettings, group: pd.Series | dict) -> str | None:
    """The configured runbook link for a group's error type (else its grouping rule), or None."""
    for text in (group["error_type"], group["grouping_rule"]):
        for entry in settings.runbooks:
            if text and re.search(entry.pattern, str(text), re.IGNORECASE):
                return entry.url
    return None


def group(con: duckdb.DuckDBPyConnection, fingerprint: str, settings: TriageSettings | None = None) -> dict | None:
    """One group's row of fct_exception_groups, ranked and explained like the queue, or None."""
    frame = con.execute(
        """
        SELECT g.*, (SELECT count(DISTINCT facility_id) FROM fct_exception_occurrences) AS facilities_total,
               g.occurrences AS matching
        FROM fct_exception_groups g WHERE fingerprint = $f
        """,
        {"f": fingerprint},
    ).df()
    if frame.empty:
        return None
    return rank(frame, settings or load_settings()).iloc[0].to_dict()


def occurrences(con: duckdb.DuckDBPyConnection, fingerprint: str, limit: int | None = None) -> pd.DataFrame:
    """A group's occurrences, latest first (every column of fct_exception_occurrences)."""
    return con.execute(
        f"SELECT * FROM fct_exception_occurrences WHERE fingerprint = $f ORDER BY occurred_at DESC, occurrence_id"
        f"{' LIMIT ' + str(int(limit)) if limit else ''}",
        {"f": fingerprint},
    ).df()


def timeline(con: duckdb.DuckDBPyConnection, fingerprint: str) -> pd.DataFrame:
    """Occurrences per hour (per day when the group spans more than 3 days): bucket, source, occurrences."""
    return con.execute(
        """
        WITH span AS (
            SELECT CASE WHEN max(occurred_at) - min(occurred_at) > INTERVAL 3 DAY THEN 'day' ELSE 'hour' END AS unit
            FROM fct_exception_occurrences WHERE fingerprint = $f
        )
        SELECT date_trunc(unit, occurred_at) AS bucket, source, count(*) AS occurrences
        FROM fct_exception_occurrences, span WHERE fingerprint = $f
        GROUP BY ALL ORDER BY bucket, source
        """,
        {"f": fingerprint},
    ).df()


def affected_objects(con: duckdb.DuckDBPyConnection, fingerprint: str, limit: int = 200) -> pd.DataFrame:
    """The business objects a group touches, most occurrences first: object, object_type, facility_id,
    supplier_id, priority, amount, occurrences, last_seen, trace_id (its latest traced occurrence)."""
    return con.execute(
        """
        SELECT coalesce(requisition_id, po_number, object_id) AS object,
               CASE WHEN requisition_id IS NOT NULL THEN 'requisition'
                    WHEN po_number IS NOT NULL THEN 'purchase_order' ELSE object_type END AS object_type,
               any_value(facility_id) AS facility_id, any_value(supplier_id) AS supplier_id,
               any_value(priority) AS priority, max(amount) AS amount, count(*) AS occurrences,
               max(occurred_at) AS last_seen, arg_max(trace_id, occurred_at) AS trace_id
        FROM fct_exception_occurrences
        WHERE fingerprint = $f AND coalesce(requisition_id, po_number, object_id) IS NOT NULL
        GROUP BY ALL ORDER BY occurrences DESC, last_seen DESC, object LIMIT $limit
        """,
        {"f": fingerprint, "limit": limit},
    ).df()


def what_changed(
    con: duckdb.DuckDBPyConnection,
    fingerprint: str,
    filters: Filters,
    start=None,
    end=None,
    limit: int = 15,
) -> pd.DataFrame:
    """The dimension values most over-represented in a group's occurrences (between ``start`` and
    ``end`` when given: a spike) against every other occurrence inside the filters: the baseline.

    Columns: dimension, value, count (in the group), share (of the group), baseline_count,
    baseline_share, lift = share / smoothed baseline share ((baseline_count + 1) / (baseline total + 1)).
    Values that define the group (in its key) are left out; a value must occur twice (once in a
    group of one) to count.
    """
    where, params = filters.where(day="day")
    key = con.execute("SELECT group_key FROM fct_exception_groups WHERE fingerprint = $f", {"f": fingerprint}).fetchone()
    defining = {tuple(part.split("=", 1)) for part in key[0].split(" | ")} if key else set()
    columns = " UNION ALL ".join(
        f"SELECT in_group, '{d}' AS dimension, cast({d} AS varchar) AS value FROM scoped" for d in DIMENSIONS
    )
    frame = con.execute(
        f"""
        WITH scoped AS (
            SELECT *, fingerprint = $f AND occurred_at >= coalesce($start, occurred_at)
                      AND occurred_at <= coalesce($end, occurred_at) AS in_group
            FROM fct_exception_occurrences WHERE {where}
        ),
        pairs AS (
            {columns}
            UNION ALL
            SELECT in_group, '{ATTRIBUTE_PREFIX}' || k AS dimension, attributes ->> k AS value
            FROM scoped, unnest(json_keys(attributes)) AS keys(k)
            WHERE json_type(attributes -> k) IN ('VARCHAR', 'BIGINT', 'UBIGINT', 'BOOLEAN', 'DOUBLE')
        ),
        totals AS (
            SELECT count(*) FILTER (WHERE in_group) AS group_total, count(*) FILTER (WHERE NOT in_group) AS baseline_total
            FROM scoped
        )
        SELECT dimension, value,
               count(*) FILTER (WHERE in_group) AS count,
               count(*) FILTER (WHERE in_group) / any_value(group_total) AS share,
               count(*) FILTER (WHERE NOT in_group) AS baseline_count,
               count(*) FILTER (WHERE NOT in_group) / greatest(any_value(baseline_total), 1) AS baseline_share,
               (count(*) FILTER (WHERE in_group) / any_value(group_total))
                 / ((count(*) FILTER (WHERE NOT in_group) + 1.0) / (any_value(baseline_total) + 1.0)) AS lift
        FROM pairs, totals
        WHERE value IS NOT NULL AND value <> ''
        GROUP BY dimension, value
        HAVING count(*) FILTER (WHERE in_group) >= least(2, any_value(group_total))
        ORDER BY lift DESC, count DESC, dimension, value
        """,
        {**params, "f": fingerprint, "start": start, "end": end},
    ).df()
    keep = [(row.dimension, row.value) not in defining for row in frame.itertuples()]
    return frame[keep].head(limit).reset_index(drop=True)


def history(con: duckdb.DuckDBPyConnection, fingerprint: str) -> pd.DataFrame:
    """A group's triage decisions, latest first (fct_triage_history's columns)."""
    return con.execute(
        "SELECT * FROM fct_triage_history WHERE fingerprint = $f ORDER BY sequence DESC", {"f": fingerprint}
    ).df()


def export(frame: pd.DataFrame, fmt: str) -> bytes:
    """A frame as CSV or Parquet bytes, for download; list columns become text in CSV."""
    if fmt == "parquet":
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        return buffer.getvalue()
    if fmt == "csv":
        return frame.to_csv(index=False).encode()
    raise ValueError(f"unknown export format {fmt!r}")
