"""Business SLOs per integration flow with error budgets and multi-window burn rates, and ``r2p check``.

Each configured flow (metrics/defaults/flows.toml) has an SLO in business terms: ``slo_target`` of its
objects reach the target within ``sla_minutes`` (for example 99 % of receipts reach ERP within 15 min).
fct_slo_burn counts, per 5 minutes, the objects whose SLA passed and the bad ones among them. The burn
rate of a window is its bad share over the allowed share (1 - target): 1 spends the budget exactly over the
SLO period. As in Google's SRE workbook, a flow burns when both a long and a short window exceed the
threshold (fast: 1 h and 5 min over 14.4; slow: 6 h and 30 min over 6), so an old spike does not page and
a brief blip does not either.

``r2p check`` prints the burning SLOs and exits 1 when any burns (0 when none), for cron or CI. It loads new
landing batches into the warehouse first (``r2p refresh`` semantics). When a running dashboard holds the
warehouse file (DuckDB lets one process open it), it says so in one line and evaluates a private warehouse
built from the landing zone in a temporary directory instead (slower, same answer); ``--no-fallback``
exits 2 in that case.
"""

from __future__ import annotations

import datetime as dt
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import click
import duckdb
import pandas as pd

from r2p.cli import Context, pass_context
from r2p.errors import UserError


@dataclass(frozen=True)
class BurnAlert:
    """A multi-window burn-rate condition: both windows' burn rates above the threshold."""

    name: str
    long_window: dt.timedelta
    short_window: dt.timedelta
    threshold: float


ALERTS = (
    BurnAlert("fast", dt.timedelta(hours=1), dt.timedelta(minutes=5), 14.4),
    BurnAlert("slow", dt.timedelta(hours=6), dt.timedelta(minutes=30), 6.0),
)
SLO_PERIOD = dt.timedelta(days=28)
"""The period an error budget covers."""


def as_of(con: duckdb.DuckDBPyConnection) -> dt.datetime | None:
    """The moment the data describes (fct_slo_burn's data_as_of), None when there is none."""
    return con.execute("SELECT max(data_as_of) FROM fct_slo_burn").fetchone()[0]


def burn_rates(con: duckdb.DuckDBPyConnection, at: dt.datetime | None = None,
               facilities: tuple[str, ...] = ()) -> pd.DataFrame:
    """Per flow at moment ``at`` (default: the data's as-of): target, SLA, the SLO period's eligible and bad
    objects, error budget remaining (share of the allowed bad objects not yet spent; negative when overspent),
    each alert window's burn rate (``fast_long_burn`` ...), and ``burning``: the first alert that fires, else None.
    """
    at = at or as_of(con)
    if at is None:
        return pd.DataFrame(columns=["flow", "stage", "slo_target", "sla_s", "eligible", "bad", "budget_remaining",
                                     "burning"])
    windows = {"period": SLO_PERIOD}
    for alert in ALERTS:
        windows[f"{alert.name}_long"] = alert.long_window
        windows[f"{alert.name}_short"] = alert.short_window
    sums = ",\n".join(
        f"sum(eligible) FILTER (WHERE bucket >= $at - INTERVAL {int(window.total_seconds())} SECOND) AS {name}_eligible, "
        f"sum(bad) FILTER (WHERE bucket >= $at - INTERVAL {int(window.total_seconds())} SECOND) AS {name}_bad"
        for name, window in windows.items()
    )
    facility = "AND facility_id IN (SELECT unnest($facilities))" if facilities else ""
    params: dict[str, object] = {"at": at}
    if facilities:
        params["facilities"] = list(facilities)
    frame = con.execute(
        f"""
        SELECT f.name AS flow, f.stage, f.slo_target, f.sla_minutes * 60 AS sla_s, {sums}
        FROM integration_flows f
        LEFT JOIN fct_slo_burn b ON b.flow = f.name AND b.bucket < $at {facility}
        GROUP BY ALL ORDER BY flow
        """,
        params,
    ).df()
    allowed = 1 - frame["slo_target"]
    result = frame[["flow", "stage", "slo_target", "sla_s"]].copy()
    result["eligible"] = frame["period_eligible"].fillna(0).astype(int)
    result["bad"] = frame["period_bad"].fillna(0).astype(int)
    result["budget_remaining"] = 1 - result["bad"] / (allowed * result["eligible"]).where(result["eligible"] > 0)
    burning = pd.Series([None] * len(frame), dtype=object)
    for alert in reversed(ALERTS):  # the first alert in ALERTS wins when several fire
        fires = pd.Series(True, index=frame.index)
        for part in ("long", "short"):
            name = f"{alert.name}_{part}"
            eligible = frame[f"{name}_eligible"]
            rate = (frame[f"{name}_bad"] / eligible.where(eligible > 0)) / allowed
            result[f"{name}_burn"] = rate
            fires &= rate > alert.threshold
        burning = burning.where(~fires, alert.name)
    result["burning"] = burning
    result["as_of"] = at
    return result


def burning(con: duckdb.DuckDBPyConnection, at: dt.datetime | None = None) -> pd.DataFrame:
    """The flows whose SLO burns at ``at`` (fast before slow, then by flow)."""
    rates = burn_rates(con, at)
    return rates[rates["burning"].notna()].sort_values(["burning", "flow"]).reset_index(drop=True)


def describe(row: pd.Series) -> str:
    """One line for a burning SLO."""
    alert = next(a for a in ALERTS if a.name == row["burning"])
    return (
        f"{row['flow']}: {alert.name} burn {row[f'{alert.name}_long_burn']:.1f}x over "
        f"{_span(alert.long_window)} and {row[f'{alert.name}_short_burn']:.1f}x over {_span(alert.short_window)} "
        f"(threshold {alert.threshold:g}x) against {row['slo_target']:.2%} within {row['sla_s'] / 60:g} min; "
        f"budget remaining {row['budget_remaining']:.0%}"
    )


def _span(window: dt.timedelta) -> str:
    minutes = int(window.total_seconds() // 60)
    return f"{minutes // 60} h" if minutes % 60 == 0 else f"{minutes} min"


def _evaluate(data_dir: Path, at: dt.datetime | None, fallback: bool) -> pd.DataFrame:
    from r2p.warehouse import Warehouse, WarehouseBusy

    try:
        warehouse = Warehouse(data_dir)
    except WarehouseBusy as busy:
        if not fallback:
            raise UserError(f"warehouse held by {busy.holder} (a running dashboard?): stop it or drop --no-fallback") from None
        click.echo(f"warehouse held by {busy.holder}: checking a private copy built from the landing zone", err=True)
        return _evaluate_private_copy(data_dir, at)
    try:
        warehouse.refresh()
        return burning(warehouse.reader(), at)
    finally:
        warehouse.close()


def _evaluate_private_copy(data_dir: Path, at: dt.datetime | None) -> pd.DataFrame:
    from metrics.flows import FLOWS_FILE
    from r2p.warehouse import Warehouse

    with tempfile.TemporaryDirectory(prefix="r2p-check-") as scratch:
        scratch_dir = Path(scratch)
        (scratch_dir / "landing").symlink_to((data_dir / "landing").resolve(), target_is_directory=True)
        if (data_dir / FLOWS_FILE).exists():
            shutil.copy(data_dir / FLOWS_FILE, scratch_dir / FLOWS_FILE)
        warehouse = Warehouse(scratch_dir)
        try:
            warehouse.refresh()
            return burning(warehouse.reader(), at)
        finally:
            warehouse.close()


@click.command()
@click.option("--at", "at", type=click.DateTime(formats=["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d"]),
              help="Evaluate at this UTC moment instead of the data's latest.")
@click.option("--no-fallback", is_flag=True, help="Exit 2 when a dashboard holds the warehouse instead of "
              "building a private copy from the landing zone.")
@pass_context
def check(context: Context, at: dt.datetime | None, no_fallback: bool) -> None:
    """Print the business SLOs burning their error budget; exit 1 when any burns, 0 when none."""
    if not (context.data_dir / "landing").is_dir():
        raise UserError(f"no landing zone in {context.data_dir}: nothing has been ingested there")
    moment = at.replace(tzinfo=dt.timezone.utc) if at else None
    burning_now = _evaluate(context.data_dir, moment, fallback=not no_fallback)
    if burning_now.empty:
        click.echo("no SLO is burning")
        return
    for _, row in burning_now.iterrows():
        click.echo(describe(row))
    sys.exit(1)


COMMANDS = [check]
